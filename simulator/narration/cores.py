"""The machine's cores: more threads want to run at once than there are cores to run them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import LESSON, Handler, Rule, Story


class Cores(Rule):
    """Says, the first time it happens, that runnable threads outnumber the cores."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.cores = story.trace.cores

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        # threads can only come to outnumber the cores when one starts running
        return [("thread", "cpu", self.running)]

    def running(self, t: float, who: Any, what: Any, ref: Any) -> None:
        on_cpu = self.world.on_cpu
        if on_cpu > self.cores and self.story.once("cores"):
            cores = self.cores
            self.story.say(
                LESSON,
                t,
                f"{on_cpu} threads want to run Python code at once but the machine "
                f"has {cores} core{'s' if cores != 1 else ''}: "
                "the operating system shares the cores between them, so each runs "
                "slower",
            )
