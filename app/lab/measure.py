"""Measure a scenario on a real server: ``measure(scenario) -> Trace``.

The run: validate the scenario; take its arrival schedule from the simulator (same seed,
same arrival times and paths as ``simulator.run``); start the real server
(:mod:`.launcher`); sample its accept queue (:mod:`.sampler`); fire the schedule with the
load driver (:mod:`.driver`, its own process); stop everything;
then merge what the clients saw (connect, connected, first byte, finished, status) with what
the server recorded (accept, thread, stages, CPU time) into the same :class:`Trace` the
simulator produces, with ``source = "measured"``.

Everything the lab starts is stopped and reaped, and the run's scratch directory removed,
before :func:`measure` returns or raises, whatever happens (an error, a timeout, a killed
driver, Ctrl-C). Run in the main thread (``wsgiscope measure``), SIGTERM and SIGHUP stop a
run the same way; once it has cleaned up, the signal does what it would have done (by
default the process ends, killed by that signal: exit status 128 + n), and Ctrl-C raises
``KeyboardInterrupt``. If the process is killed outright (SIGKILL), every process of the
run dies with it (see :mod:`.launcher`), and its scratch directory goes at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.kernel import syn_offsets_ms
from wsgiscope.simulator.trace import Event, RequestRecord, Trace, summarise

from . import flask_hooks, interpreter
from .driver import fresh_source
from .launcher import (
    LabError,
    Server,
    child_of_this_process,
    machine_cpu_s,
    make_run_dir,
)
from .recorder import read_records
from .sampler import BacklogSampler, ThreadSampler
from .stopping import LabInterrupted as LabInterrupted
from .stopping import RunScope, reap_group, stop_on_signals
from .threadstates import gil_waits, measured_events

#: A lab run is bounded: at most this many requests ...
MAX_REQUESTS = 2000
#: ... sent over at most this many seconds.
MAX_SPAN_S = 120.0
#: Extra wall-clock time allowed after the last send (client timeout permitting).
TAIL_S = 60.0

Progress = Callable[[float, str], None]


def lab_plan(
    scenario: dict[str, Any] | simulator.Scenario, seed: int | None = None
) -> dict[str, Any]:
    """Validate a scenario for the lab and work out its schedule.

    Returns ``{"scenario": normalised dict, "seed": int, "requests": [{"id", "at_ms",
    "path", "segments"}], "span_s": float}``. Raises ``simulator.ScenarioError`` naming the
    field when the scenario is invalid or outside the lab's bounds, before anything starts.
    """
    sc = simulator.load_scenario(scenario)
    if sc.expected_requests > MAX_REQUESTS * 2:
        raise simulator.ScenarioError(
            "workload",
            f"asks for about {sc.expected_requests:,} requests; a lab run allows at most "
            f"{MAX_REQUESTS:,}",
        )
    seed = sc.seed if seed is None else int(seed)
    sim = simulator.run(sc, seed)
    requests = [
        {"id": r.id, "at_ms": r.sent_ms, "path": r.path, "segments": None,
         "send_ms": r.send_ms}
        for r in sim.requests
    ]
    if len(requests) > MAX_REQUESTS:
        raise simulator.ScenarioError(
            "workload",
            f"makes {len(requests):,} requests; a lab run allows at most {MAX_REQUESTS:,}",
        )
    span_s = (requests[-1]["at_ms"] / 1000.0) if requests else 0.0
    if span_s > MAX_SPAN_S:
        raise simulator.ScenarioError(
            "workload",
            f"sends requests over {span_s:.0f} s; a lab run allows at most {MAX_SPAN_S:.0f} s",
        )
    return {"scenario": sc.to_dict(), "seed": seed, "requests": requests, "span_s": span_s}


def measure(
    scenario: dict[str, Any] | simulator.Scenario,
    progress: Progress | None = None,
    seed: int | None = None,
    keep_dir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    watch: bool = True,
) -> Trace:
    """Run ``scenario`` on the real server it describes and return the measured Trace.

    ``progress(fraction, message)`` is called now and then. ``keep_dir`` keeps the raw
    records (config, server log, per-process record files, driver output) there.
    ``python`` is the interpreter that runs the server (default: this one); it must be the
    kind the scenario describes (``machine.gil``, see :mod:`.interpreter`).
    ``watch=False`` runs it without the samplers (no accept-queue depth, no thread
    states): they take CPU from the server, and a CPU-bound run is slower watched (see
    :mod:`.sampler`); the driver's times and the server's records are the same either way.
    Raises ``simulator.ScenarioError`` for a bad scenario or an interpreter that cannot run
    it (nothing started) and :class:`LabError` when the run fails; either way nothing is
    left running.
    """
    plan = lab_plan(scenario, seed)
    norm = plan["scenario"]
    interpreter.check(norm, python)
    report = progress or (lambda _f, _m: None)
    scope = RunScope()
    with stop_on_signals(scope):
        try:
            scope.run_dir = run_dir = make_run_dir()
            report(0.0, "starting the server")
            server = Server(norm, run_dir, plan["seed"], python=python)
            scope.servers.append(server)
            with server:
                load = _LoadMeter(server)
                sampler = BacklogSampler(server.port).start() if watch else None
                threads = _thread_sampler(norm, server) if watch else None
                try:
                    results = _drive(server, plan, run_dir, report, scope, load.sample)
                finally:
                    cpu_s = 0.0
                    if sampler is not None:
                        sampler.stop()
                        cpu_s = sampler.cpu_s
                    if threads is not None:
                        threads.stop()
                        cpu_s += threads.cpu_s
                    load.stop(cpu_s)
                load.steal_over(_requests_window(results))
            report(0.99, "building the trace")
            records = list(read_records(server.record_dir))
            samples = (
                {"changes": threads.changes, "sweeps": threads.sweeps}
                if threads is not None
                else None
            )
            backlog = sampler.samples if sampler is not None else []
            trace = build_trace(plan, results, records, backlog, samples)
            if threads is not None:
                trace.summary["lab"]["thread_sweeps"] = len(threads.sweeps)
                trace.summary["lab"]["thread_sampler_cpu_s"] = round(threads.cpu_s, 3)
            trace.summary["lab"]["backlog_polls"] = sampler.polls if sampler is not None else 0
            trace.summary["lab"]["port"] = server.port
            trace.summary["lab"].update(load.figures())
            report(1.0, "done")
            return trace
        finally:
            if keep_dir is not None and scope.run_dir is not None:
                shutil.copytree(scope.run_dir, keep_dir, dirs_exist_ok=True)
            scope.sweep()


def sampled_threads(scenario: dict[str, Any]) -> bool:
    """Whether the server's processes run several threads that share a GIL (werkzeug
    ``threaded=True``, gunicorn gthread): those threads' states are sampled from ``/proc``
    (:class:`.sampler.ThreadSampler`); a single-threaded process's come from its records."""
    srv = scenario["server"]
    if srv["kind"] == "gunicorn":
        return bool(srv.get("worker_class") == "gthread")
    return bool(srv.get("threaded", True)) and int(srv.get("processes", 1)) == 1


def _thread_sampler(scenario: dict[str, Any], server: Server) -> ThreadSampler | None:
    if not sampled_threads(scenario) or server.proc is None:
        return None
    if scenario["server"]["kind"] == "gunicorn":  # the workers, found by their record files
        return ThreadSampler([], server.record_dir, exclude=(server.proc.pid,)).start()
    return ThreadSampler([server.proc.pid]).start()


def _drive(
    server: Server,
    plan: dict[str, Any],
    run_dir: Path,
    report: Progress,
    scope: RunScope | None = None,
    on_poll: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the load driver to completion; return its per-request results. ``on_poll`` is
    called every 50 ms meanwhile."""
    sc = plan["scenario"]
    timeout_s = float(sc["client"]["timeout_s"])
    plan_path = run_dir / "plan.json"
    out_path = run_dir / "driver.jsonl"
    plan_path.write_text(
        json.dumps(
            {
                "port": server.port,
                "timeout_s": timeout_s,
                "start_in_ms": 150,
                "source": fresh_source(),
                "requests": plan["requests"],
            }
        )
    )
    env = dict(os.environ)
    total = len(plan["requests"])
    deadline = time.monotonic() + 5.0 + plan["span_s"] + min(timeout_s, TAIL_S) + 5.0
    with open(run_dir / "driver.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.lab.driver", str(plan_path), str(out_path)],
            cwd=run_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=child_of_this_process(),
        )  # fmt: skip
    if scope is not None:
        scope.driver = proc
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise LabError(f"the run did not finish in time (server log:\n{server.log_tail()})")
            if server.proc is not None and server.proc.poll() is not None:
                raise LabError(f"the server died during the run:\n{server.log_tail()}")
            done = _count_lines(out_path) - 1
            report(0.05 + 0.9 * max(done, 0) / max(total, 1), f"{max(done, 0)} of {total} done")
            if on_poll is not None:
                on_poll()
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reap_group(proc.pid)
        if scope is not None:
            scope.driver = None
    if proc.returncode != 0:
        how = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        log = (run_dir / "driver.log").read_text(errors="replace")[-2000:]
        raise LabError(f"the load driver {how} before the run ended{': ' + log if log else ''}")
    results = []
    with open(out_path, encoding="utf-8") as fh:
        for line in fh:
            results.append(json.loads(line))
    return results


class _LoadMeter:
    """How busy the machine was during a run, and how much of that was the lab itself.

    ``other_cpu_cores`` -- the average number of cores used by everything else on the
    machine while the run lasted -- says whether CPU-bound figures can be trusted: a
    measured CPU segment takes longer when other programs compete for the cores.
    ``steal_cores`` -- the time a virtual machine's host took from it, whoever asked for it,
    over the requests' own window (:meth:`steal_over`): a stall of 30 ms while ten 300 ms
    requests run shifts them all, and averaged over the whole run, server start and driver
    start included, it would look three times smaller.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.t = time.monotonic()
        self.busy, self.total, self.steal = machine_cpu_s()
        self.server_cpu = server.cpu_s()
        self.children = _children_cpu_s()
        self.result: dict[str, float] = {}
        self.steals: list[tuple[float, float]] = [(self.t, self.steal)]

    def sample(self) -> None:
        """Note the machine's steal now (the run's window is cut from these)."""
        self.steals.append((time.monotonic(), machine_cpu_s()[2]))

    def steal_over(self, window: tuple[float, float] | None) -> None:
        """``steal_cores`` over ``window`` (lab clock, ms), from the samples around it."""
        if window is None:
            return
        start, end = window[0] / 1000.0, window[1] / 1000.0
        before = [s for s in self.steals if s[0] <= start] or self.steals[:1]
        after = [s for s in self.steals if s[0] >= end] or self.steals[-1:]
        (t0, s0), (t1, s1) = before[-1], after[0]
        if t1 > t0:
            self.result["steal_cores"] = round((s1 - s0) / (t1 - t0), 3)

    def stop(self, sampler_cpu_s: float) -> None:
        now = time.monotonic()
        wall = now - self.t
        busy, _total, steal = machine_cpu_s()
        self.steals.append((now, steal))
        lab = (
            self.server.cpu_s()
            - self.server_cpu
            + _children_cpu_s()
            - self.children  # the driver, reaped by now
            + sampler_cpu_s
        )
        machine = busy - self.busy
        self.result = {
            "wall_s": round(wall, 3),
            "machine_busy_cores": round(machine / wall, 3) if wall > 0 else 0.0,
            "lab_cpu_cores": round(lab / wall, 3) if wall > 0 else 0.0,
            "other_cpu_cores": round(max(machine - lab, 0.0) / wall, 3) if wall > 0 else 0.0,
            "steal_cores": round((steal - self.steal) / wall, 3) if wall > 0 else 0.0,
        }

    def figures(self) -> dict[str, float]:
        return self.result


def _requests_window(results: list[dict[str, Any]]) -> tuple[float, float] | None:
    """From the first request's planned send to the last one's end (lab clock, ms)."""
    starts = [r["planned"] for r in results if r.get("planned") is not None]
    ends = [r["finished"] for r in results if r.get("finished") is not None]
    return (min(starts), max(ends)) if starts and ends else None


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(65536), b""))
    except OSError:
        return 0


# --- building the Trace --------------------------------------------------------------------


class _Slots:
    """Lowest-free-number lane names, like the simulator's."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.busy: list[tuple[float, int]] = []  # (free_at, n)
        self.count = 0

    def take(self, start: float, end: float) -> str:
        taken = {n for free_at, n in self.busy if free_at > start}
        n = 1
        while n in taken:
            n += 1
        self.busy = [(f, m) for f, m in self.busy if f > start]
        self.busy.append((end, n))
        self.count = max(self.count, n)
        return f"{self.prefix}{n}"


def _note(seen: list[list[Any]], req_id: int) -> str:
    for scope, name, value in seen or []:
        if value != req_id:
            who = "nothing" if value is None else f"request {value}'s"
            return f"read {scope} {name!r} and got {who} value"
    return ""


def build_trace(
    plan: dict[str, Any],
    results: list[dict[str, Any]],
    records: list[dict[str, Any]],
    backlog: list[tuple[float, int]],
    threads: dict[str, Any] | None = None,
) -> Trace:
    """Merge client results, server records, backlog samples and (``threads``, from
    :class:`.sampler.ThreadSampler`) thread samples into a measured Trace."""
    sc = plan["scenario"]
    srv = sc["server"]
    kind = srv["kind"]
    wclass = srv.get("worker_class", "")
    by_id = {r["id"]: r for r in results if "id" in r}
    start = next((r["start"] for r in results if "start" in r), 0.0)
    sends = [r["connect"] for r in by_id.values() if r.get("connect") is not None]
    t0 = min(sends) if sends else start

    def rel(t: float | None) -> float | None:
        return None if t is None else t - t0

    server_recs: dict[int, dict[str, Any]] = {}
    for rec in records:
        if rec.get("kind") == "request" and rec.get("req") is not None:
            server_recs[int(rec["req"])] = rec

    # -- processes and lanes
    worker_of_pid: dict[int, str] = {}
    events: list[Event] = []
    processes: dict[str, dict[str, Any]] = {}

    def lane(proc: str, label: str, thread: str | None = None) -> None:
        p = processes.setdefault(proc, {"key": proc, "label": label, "threads": []})
        if thread and thread not in p["threads"]:
            p["threads"].append(thread)

    if kind == "gunicorn":
        n = int(srv["workers"])
        boots = sorted((r for r in records if r.get("kind") == "boot"), key=lambda r: r["t"])
        exits = sorted((r for r in records if r.get("kind") == "exit"), key=lambda r: r["t"])
        free_keys: list[str] = []
        exit_iter = iter(exits)
        for i, b in enumerate(boots):
            if i < n:
                key = f"w{i + 1}"
            else:
                while not free_keys:
                    ex = next(exit_iter, None)
                    if ex is None:
                        break
                    if ex["worker_pid"] in worker_of_pid:
                        free_keys.append(worker_of_pid[ex["worker_pid"]])
                key = free_keys.pop(0) if free_keys else f"w{i + 1}"
            worker_of_pid[b["pid"]] = key
            label = f"worker {key[1:]} ({wclass})"
            main = f"{key}/accept" if wclass == "gevent" else f"{key}/main"
            lane(key, label, main)
            if i >= n:
                events.append(Event(max(b["t"] - t0, 0.0), "worker", key, "boot", "a new worker"))
        for r in records:
            t = r.get("t")
            if t is None:
                continue
            if r.get("kind") == "worker_ready" and r["pid"] in worker_of_pid:
                events.append(
                    Event(max(t - t0, 0.0), "worker", worker_of_pid[r["pid"]], "ready", "")
                )
            elif r.get("kind") == "abort" and r["pid"] in worker_of_pid:
                events.append(
                    Event(
                        t - t0,
                        "worker",
                        worker_of_pid[r["pid"]],
                        "killed",
                        f"no heartbeat for {srv['timeout_s']:g} s (SIGABRT)",
                    )
                )
            elif r.get("kind") == "exit" and r.get("worker_pid") in worker_of_pid and t >= t0:
                events.append(Event(t - t0, "worker", worker_of_pid[r["worker_pid"]], "exit", ""))
    elif srv.get("processes", 1) > 1:
        lane("server", f"dev server (fork per request, at most {srv['processes']})", "server/main")
    elif srv.get("threaded", True):
        lane("server", "dev server (threaded)", "server/main")
    else:
        lane("server", "dev server (1 process, 1 thread)", "server/main")

    # -- thread keys for each served request, in the order threads picked them up
    served = sorted(
        (rec for rec in server_recs.values()),
        key=lambda rec: rec.get("handle") or rec.get("accept") or rec.get("parsed") or 0.0,
    )
    thread_key: dict[int, tuple[str, str, str]] = {}  # req -> (process, thread, acceptor)
    slots: dict[str, _Slots] = {}
    tid_keys: dict[tuple[int, int], str] = {}
    for rec in served:
        rid = int(rec["req"])
        begin = rec.get("handle") or rec.get("accept") or rec["parsed"]
        end = rec.get("written") or begin
        if kind == "gunicorn":
            proc = worker_of_pid.get(rec["pid"], f"pid{rec['pid']}")
            if proc not in processes:
                lane(proc, f"worker ({wclass})", f"{proc}/main")
            if wclass == "gthread":
                k = (rec["pid"], rec["tid"])
                if k not in tid_keys:
                    used = sum(1 for (p, _t) in tid_keys if p == rec["pid"])
                    tid_keys[k] = f"{proc}/t{used + 1}"
                thread_key[rid] = (proc, tid_keys[k], f"{proc}/main")
            elif wclass == "gevent":
                s = slots.setdefault(proc, _Slots(f"{proc}/g"))
                thread_key[rid] = (proc, s.take(begin, end), f"{proc}/accept")
            else:
                thread_key[rid] = (proc, f"{proc}/main", f"{proc}/main")
        elif srv.get("processes", 1) > 1:
            s = slots.setdefault("child", _Slots("child"))
            child = s.take(begin, end)
            lane(child, f"forked child {child}")
            thread_key[rid] = (child, f"{child}/main", "server/main")
        elif srv.get("threaded", True):
            s = slots.setdefault("server", _Slots("server/t"))
            thread_key[rid] = ("server", s.take(begin, end), "server/main")
        else:
            thread_key[rid] = ("server", "server/main", "server/main")
        proc, th, _acc = thread_key[rid]
        lane(proc, processes.get(proc, {}).get("label", proc), th)

    # -- measured thread states and GIL holders of the multi-threaded processes
    covered: set[int] = set()
    multi = sampled_threads(sc)
    if threads is not None and multi:
        sampled_events, covered = measured_events(
            threads,
            _sampled_requests(server_recs, thread_key),
            _mains(sc, records, worker_of_pid),
            t0,
        )
        events.extend(sampled_events)

    # -- requests
    offsets = syn_offsets_ms(sc["machine"]["syn_schedule"], sc["client"]["syn_retries"])
    requests: list[RequestRecord] = []
    send_late: list[float] = []
    for planned in plan["requests"]:
        rid = planned["id"]
        cli = by_id.get(rid)
        srec = server_recs.get(rid, {})
        if cli is None or cli.get("connect") is None:
            requests.append(
                RequestRecord(
                    id=rid,
                    path=planned["path"],
                    sent_ms=planned["at_ms"],
                    status="timeout",
                    note="the driver never sent it",
                )
            )
            continue
        if cli.get("planned") is not None:
            send_late.append(cli["connect"] - cli["planned"])
        sent = cli["connect"] - t0
        finished = rel(cli.get("finished"))
        accepted = rel(srec.get("accept") or srec.get("handle") or srec.get("parsed"))
        started = rel(srec.get("handle") or srec.get("accept") or srec.get("parsed"))
        status = cli.get("status") or "timeout"
        note = cli.get("error", "") if status != "ok" else ""
        if srec.get("aborted") is not None:
            note = "the worker was killed (timeout) while serving it"
        segs = srec.get("segs") or []
        cpu_wall = sum(s[2] - s[1] for s in segs if s[0] == "cpu")
        cpu_own = sum(s[3] for s in segs if s[0] == "cpu")
        proc, th, acceptor = thread_key.get(rid, (None, None, None))
        rec = RequestRecord(
            id=rid,
            path=planned["path"],
            sent_ms=sent,
            accepted_ms=accepted,
            started_ms=started,
            finished_ms=finished,
            status=status,
            http_status=cli.get("http_status"),
            worker=proc,
            thread=th,
            syn_retries=int(cli.get("syn_retransmits") or 0),
            queue_ms=(accepted - sent) if accepted is not None else 0.0,
            # the view's CPU segments' wall time beyond their own CPU time: off the core for
            # the GIL, for a core or for the host; the sampled waits replace it below where
            # the thread was sampled
            gil_wait_ms=max(cpu_wall - cpu_own, 0.0),
            # greenlets share their thread's CPU clock: count only the view's own work
            cpu_ms=cpu_own if wclass == "gevent" else float(srec.get("cpu") or cpu_own),
            pool_wait_ms=(
                (started - accepted)
                if (wclass == "gthread" and started is not None and accepted is not None)
                else 0.0
            ),
            io_ms=sum(s[2] - s[1] for s in segs if s[0] == "io"),
            note=_note(srec.get("seen") or [], rid) or note,
            send_ms=float(planned.get("send_ms") or 0.0),
        )
        requests.append(rec)

        # req phases: SYNs (a dropped SYN is resent on the kernel's schedule)
        connected = rel(cli.get("connected"))
        if connected is not None and accepted is not None:
            # The driver notices "connected" a little after the kernel completed the
            # handshake; the server may have accepted the connection in between.
            connected = min(connected, accepted)
        retries = rec.syn_retries
        for k in range(retries):
            t = sent + (offsets[k - 1] if k else 0.0)
            events.append(Event(t, "req", rid, "syn", str(k)))
            events.append(Event(t, "req", rid, "drop", "accept queue full"))
        if connected is not None:
            last = sent + (offsets[retries - 1] if retries else 0.0)
            events.append(Event(min(last, connected), "req", rid, "syn", str(retries)))
            events.append(Event(connected, "req", rid, "backlog", ""))
        else:
            events.append(Event(sent, "req", rid, "syn", str(retries)))
        if accepted is not None and acceptor is not None and th is not None:
            events.append(Event(accepted, "req", rid, "accept", acceptor))
            assert started is not None
            if wclass == "gthread" and started - accepted > 2.0:
                events.append(Event(accepted, "req", rid, "pool", "waiting for a pool thread"))
            events.extend(
                _stage_events(
                    srec, rid, th, t0, kind, started,
                    states="sampled" if rid in covered else ("unknown" if multi else "cpu"),
                )
            )  # fmt: skip
            if srec.get("written") is not None:
                end_state = "dead" if proc and proc.startswith("child") else "idle"
                events.append(Event(srec["written"] - t0, "thread", th, end_state, -1))
                if end_state == "dead":
                    events.append(Event(started, "worker", proc, "boot", "fork"))
                    events.append(Event(srec["written"] - t0, "worker", proc, "exit", ""))
        if finished is not None:
            events.append(Event(finished, "req", rid, "done", status))

    for t, depth in backlog:
        events.append(Event(max(t - t0, 0.0), "backlog", "listen", int(depth), -1))
    # Workers stopped by the lab after the run are not part of it.
    last = max((r.finished_ms for r in requests if r.finished_ms is not None), default=0.0)
    events = [e for e in events if e.kind != "worker" or e.t <= last]
    events.sort(key=lambda e: e.t)  # stable: same-time events keep their logical order

    trace = Trace(
        scenario=sc,
        source="measured",
        events=events,
        requests=requests,
        processes=list(processes.values()),
        backlog_limit=accept_queue_capacity(int(srv["backlog"])),
        cores=len(os.sched_getaffinity(0)),
        seed=plan["seed"],
    )
    if covered:  # every wait on the GIL's futex while serving it, in every stage
        waits = gil_waits(trace, covered)
        for r in requests:
            # Sampled about every millisecond, a wait is seen in proportion to its length.
            # The view's wall time beyond its CPU time, kept where the thread was not
            # sampled, also counts the time it waited for a core and the time the host stole:
            # four gthread workers on two cores, the host stealing 0.56 cores, had 1,496 ms
            # of that against 409 ms sampled on the GIL's futex (the model: 153).
            if r.id in covered:
                r.gil_wait_ms = waits.get(r.id, 0.0)
    trace.summary = summarise(trace)
    trace.summary["races"] = sum(1 for r in requests if r.note.startswith("read "))
    counted = flask_hooks.counters(list(server_recs.values()))
    if counted:
        trace.summary["increments"] = counted
        trace.summary["lost_updates"] = sum(row["lost"] for row in counted.values())
    trace.summary["lab"] = {
        "server": kind if kind == "werkzeug" else f"gunicorn {wclass}",
        "send_late_ms_max": round(max(send_late), 3) if send_late else 0.0,
        "send_late_ms_median": round(sorted(send_late)[len(send_late) // 2], 3)
        if send_late
        else 0.0,
        "backlog_samples": len(backlog),
        "server_records": len(server_recs),
    }
    return trace


def accept_queue_capacity(backlog: int) -> int:
    """How many connections this machine's kernel queues for ``listen(backlog)``:
    ``min(backlog, net.core.somaxconn) + 1``."""
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as fh:
            somaxconn = int(fh.read().strip())
    except (OSError, ValueError):
        somaxconn = 4096
    return min(backlog, somaxconn) + 1


def _sampled_requests(
    server_recs: dict[int, dict[str, Any]], thread_key: dict[int, tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """The served requests whose thread is known by its /proc id, for :func:`measured_events`."""
    out = []
    for rid, rec in server_recs.items():
        begin = rec.get("handle") or rec.get("accept") or rec.get("parsed")
        if rid not in thread_key or rec.get("ntid") is None or begin is None:
            continue
        out.append({
            "req": rid, "pid": rec["pid"], "tid": rec["ntid"], "key": thread_key[rid][1],
            "start": begin, "end": rec.get("written") or begin, "segs": rec.get("segs") or [],
        })  # fmt: skip
    return out


def _mains(
    sc: dict[str, Any], records: list[dict[str, Any]], worker_of_pid: dict[int, str]
) -> dict[str, tuple[int, int, str]]:
    """Process key -> (pid, tid, thread key) of each sampled process's main thread."""
    if sc["server"]["kind"] == "gunicorn":
        return {key: (pid, pid, f"{key}/main") for pid, key in worker_of_pid.items()}
    boot = next((r for r in records if r.get("kind") == "boot"), None)
    return {"server": (boot["pid"], boot["pid"], "server/main")} if boot else {}


def _stage_events(
    srec: dict[str, Any],
    rid: int,
    th: str,
    t0: float,
    kind: str,
    started: float,
    states: str = "cpu",
) -> list[Event]:
    """Stage and thread events of one served request, from the server's record.

    ``states``: ``cpu`` -- the thread runs whenever the view is not in an I/O segment (a
    single-threaded process: nothing else can hold its GIL); ``unknown`` -- the same for a
    thread of a multi-threaded process whose states were not sampled (it may have been
    waiting for the GIL: never shown as running); ``sampled`` -- no thread events (they
    come from the samples)."""
    busy = "unknown" if states == "unknown" else "cpu"
    out: list[Event] = [] if states == "sampled" else [Event(started, "thread", th, busy, rid)]
    marks: list[tuple[str, Any]] = [("recv", srec.get("handle") or srec.get("accept"))]
    if kind == "werkzeug":
        marks.append(("parse", srec.get("parse_start")))
    else:
        marks.append(("parse", srec.get("parsed")))
    hooks = srec.get("hooks")
    if hooks:  # Flask's hooks in the order they ran (flask_hooks.mark)
        marks += [("context", srec.get("app_start")), ("match", srec.get("match_start"))]
        marks += [(stage, srec.get("before_start") or t if stage == "before_request" else t)
                  for stage, t in hooks]
        marks.append(("write", srec.get("app_end")))
    else:
        marks += [
            ("context", srec.get("app_start")),
            ("match", srec.get("match_start")),
            ("before_request", srec.get("before_start")),
            ("view", srec.get("view_start")),
            ("after_request", srec.get("view_end") or srec.get("before_start")),
            ("teardown", srec.get("after_end")),
            ("write", srec.get("app_end")),
        ]
    for stage, t in marks:
        if t is not None:
            out.append(Event(t - t0, "req", rid, "stage", stage))
            if stage == "teardown" and srec.get("teardown_exc"):
                out.append(Event(t - t0, "req", rid, "outcome", "teardown gets the exception "
                                 f"({srec['teardown_exc']})"))
    if states == "sampled":
        return out
    for seg in srec.get("segs") or []:
        if seg[0] == "io":
            out.append(Event(seg[1] - t0, "thread", th, "io", rid))
            out.append(Event(seg[2] - t0, "thread", th, busy, rid))
    return out
