"""The client's side: a slow client sending its request, and how each request ended for
the user who sent it (answered, HTTP 5xx, reset, or given up after the client's timeout)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..trace import RequestRecord
from .base import AT_ONCE_MS, DETAIL, Handler, Rule, fmt_dur, lane_name, user


def _took(rec: RequestRecord | None) -> str:
    """How long a request took, from sending to its end."""
    return fmt_dur(rec.latency_ms) if rec is not None and rec.latency_ms is not None else "?"


class Client(Rule):
    """Tells slow clients as the server starts reading them, and each request's end."""

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        if any(r.send_ms >= AT_ONCE_MS for r in self.story.trace.requests):
            yield ("req", "stage", self.stage)  # a run without slow clients skips them all
        yield ("req", "done", self.finished)

    def stage(self, t: float, who: Any, what: Any, ref: Any) -> None:
        if ref != "recv":
            return
        r = int(who)
        rec = self.story.records.get(r)
        if rec is not None and rec.send_ms >= AT_ONCE_MS:
            self.slow_client(t, r, rec.send_ms, self.world.on_thread.get(r) or rec.thread)

    def slow_client(self, t: float, r: int, send_ms: float, lane: str | None) -> None:
        story = self.story
        who = lane_name(story.scenario, lane) if lane else "the server"
        if story.gevent:
            what = (f"its greenlet ({who}) waits for the bytes, but it yields, so the worker "
                    "serves other requests meanwhile")
        else:
            what = (f"{who} can do nothing else until the whole request has arrived; a "
                    "buffering proxy such as nginx in front would absorb the slow client")
        text = (f"{user(r)} is a slow client: it takes {fmt_dur(send_ms)} to send its request, "
                f"and {what}")
        again = f"{user(r)} is a slow client too ({fmt_dur(send_ms)})"
        story.tell("slow-client", t, r, text, again)

    def finished(self, t: float, who: Any, what: Any, ref: Any) -> None:
        story = self.story
        r = int(who)
        status = str(ref)
        if status == "ok":
            if story.detailed_req(r):
                story.say(DETAIL, t, self.answered(r))
            else:
                story.skipped += 1
            return
        rec = story.records.get(r)
        took = _took(rec)
        if status == "error":
            code = rec.http_status if rec is not None and rec.http_status else 500
            text = f"{user(r)} gets HTTP {code} after {took}"
            if rec is not None and rec.note:
                text += f" ({rec.note})"
        elif status == "timeout":
            text = f"{user(r)} gives up after {took} without a response (client timeout)"
        elif status == "reset":
            text = f"{user(r)}'s connection is reset after {took}"
            if rec is not None and rec.note:
                text += f" ({rec.note})"
        else:
            text = f"{user(r)} ends with status {status} after {took}"
        story.tell(f"status:{status}", t, r, text)

    def answered(self, r: int) -> str:
        """The line for a request answered normally, with where its time went."""
        rec = self.story.records.get(r)
        code = rec.http_status if rec is not None and rec.http_status else 200
        text = f"{user(r)} gets its response (HTTP {code}), {_took(rec)} after sending"
        if rec is not None and rec.latency_ms:
            parts = []
            if rec.queue_ms >= max(AT_ONCE_MS, 0.1 * rec.latency_ms):
                parts.append(f"{fmt_dur(rec.queue_ms)} waiting to be accepted")
            if rec.pool_wait_ms >= max(AT_ONCE_MS, 0.1 * rec.latency_ms):
                parts.append(f"{fmt_dur(rec.pool_wait_ms)} in a worker's queue")
            if rec.gil_wait_ms >= max(AT_ONCE_MS, 0.1 * rec.latency_ms):
                parts.append(f"{fmt_dur(rec.gil_wait_ms)} waiting for the GIL")
            if rec.syn_retries:
                s = "s" if rec.syn_retries != 1 else ""
                parts.append(f"{rec.syn_retries} SYN retransmit{s}")
            if parts:
                text += " (" + ", ".join(parts) + ")"
        return text
