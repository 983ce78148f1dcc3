"""Built-in scenarios, one per lesson.

Each preset names the lesson it teaches in one line (``lesson``) and says what to watch for
(``watch``). Presets are plain data: ``get(name).scenario`` is a scenario dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    lesson: str
    watch: str
    scenario: dict[str, Any] = field(repr=False)
    group: str = "basics"


SLEEP = {"/sleep": [{"io_ms": 1000}]}
TEN_USERS = [{"at_ms": 0, "count": 10, "path": "/sleep", "spacing_ms": 0}]
CPU85 = {"/cpu": [{"cpu_ms": 85}]}
FOUR_CPU = [{"at_ms": 0, "count": 4, "path": "/cpu", "spacing_ms": 0}]
LONG_EXPORT = {"/export": [{"io_ms": 10000}], "/ping": [{"io_ms": 5}]}
LONG_EXPORT_LOAD = [
    {"at_ms": 0, "count": 1, "path": "/export"},
    {"at_ms": 500, "count": 3, "path": "/ping", "spacing_ms": 500},
]
RENDER = {"/render": [{"cpu_ms": 50}]}
RENDER_LOAD = [{"at_ms": 0, "count": 32, "path": "/render", "spacing_ms": 5}]
SLOW_UPLOADS = {"/upload": [{"io_ms": 5}], "/ping": [{"io_ms": 5}]}
SLOW_UPLOAD_LOAD = [
    {"at_ms": 0, "count": 2, "path": "/upload", "send_ms": 5000},
    {"at_ms": 200, "count": 10, "path": "/ping", "spacing_ms": 100},
]
CONVOY_ENDPOINTS = {
    "/report": [{"cpu_ms": 3000}],
    "/ping": [{"io_ms": 2}, {"cpu_ms": 0.3}],
}
CONVOY_LOAD = [
    {"at_ms": 0, "count": 1, "path": "/report"},
    {"at_ms": 200, "count": 20, "path": "/ping", "spacing_ms": 100},
]

_PRESETS: list[Preset] = [
    Preset(
        "dev-single-thread",
        "Ten users, one thread (app.run(threaded=False))",
        "One thread serves one request at a time: ten users of a 1 s endpoint wait 1, 2, ... 10 s.",
        "The other nine connections wait in the kernel backlog; the thread accepts the next only "
        "after it has answered the last. The tenth user waits ten seconds.",
        {
            "name": "Ten users, one thread",
            "server": {"kind": "werkzeug", "threaded": False},
            "endpoints": SLEEP,
            "workload": TEN_USERS,
        },
    ),
    Preset(
        "dev-threaded",
        "Ten users, a thread each (app.run(threaded=True))",
        "A thread per connection: ten users of a 1 s sleep all finish after about 1 s.",
        "The main thread only accepts and starts a thread; sleeping releases the GIL, so the "
        "ten sleeps overlap.",
        {
            "name": "Ten users, a thread each",
            "server": {"kind": "werkzeug", "threaded": True},
            "endpoints": SLEEP,
            "workload": TEN_USERS,
        },
    ),
    Preset(
        "dev-processes-4",
        "Ten users, at most four forked processes (processes=4)",
        "Fork per request, at most four children: requests finish in waves of four (1, 2, 3 s).",
        "With four children alive the server waits in waitpid() and accepts nothing; the rest "
        "wait in the kernel backlog.",
        {
            "name": "Ten users, processes=4",
            "server": {"kind": "werkzeug", "threaded": False, "processes": 4},
            "endpoints": SLEEP,
            "workload": TEN_USERS,
        },
    ),
    Preset(
        "gunicorn-sync-2",
        "Ten users, gunicorn -w 2 (sync)",
        "Two sync workers serve two requests at a time: pairs finish at 1, 2, 3, 4, 5 s.",
        "Both worker processes accept from the same socket; each serves one request, then "
        "accepts again.",
        {
            "name": "Ten users, gunicorn -w 2",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
            "endpoints": SLEEP,
            "workload": TEN_USERS,
        },
        group="gunicorn",
    ),
    Preset(
        "gunicorn-gthread-1x4",
        "Ten users, gunicorn -w 1 --threads 4",
        "Four threads in one worker: waves of four (1, 2, 3 s), and the kernel backlog stays "
        "empty.",
        "The main thread accepts all ten at once; six wait in the worker's own thread-pool "
        "queue, not in the kernel.",
        {
            "name": "Ten users, gunicorn -w 1 --threads 4",
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1, "threads": 4},
            "endpoints": SLEEP,
            "workload": TEN_USERS,
        },
        group="gunicorn",
    ),
    Preset(
        "gil-cpu-threads",
        "Four CPU-bound requests on threads",
        "CPU-bound threads take turns holding the GIL: four 85 ms requests take about 340 ms.",
        "Only the GIL holder runs; every 5 ms a waiting thread asks for the GIL and the holder "
        "hands it over. Each request spends most of its time waiting.",
        {
            "name": "Four CPU-bound requests, threaded",
            "server": {"kind": "werkzeug", "threaded": True},
            "endpoints": CPU85,
            "workload": FOUR_CPU,
        },
        group="gil",
    ),
    Preset(
        "gil-cpu-processes",
        "Four CPU-bound requests on processes (2 cores)",
        "Processes have a GIL each: four 85 ms requests on two cores take about 170 ms.",
        "Two children run at once, one per core; processes buy parallelism up to the core "
        "count, no further.",
        {
            "name": "Four CPU-bound requests, processes=4",
            "server": {"kind": "werkzeug", "threaded": False, "processes": 4},
            "endpoints": CPU85,
            "workload": FOUR_CPU,
        },
        group="gil",
    ),
    Preset(
        "gil-io-threads",
        "Four I/O-bound requests on threads",
        "I/O-bound threads overlap: four 85 ms waits finish together after about 85 ms.",
        "A blocking call releases the GIL, so the other threads run while one waits.",
        {
            "name": "Four I/O-bound requests, threaded",
            "server": {"kind": "werkzeug", "threaded": True},
            "endpoints": {"/io": [{"io_ms": 85}]},
            "workload": [{"at_ms": 0, "count": 4, "path": "/io"}],
        },
        group="gil",
    ),
    Preset(
        "free-threaded",
        "Four CPU-bound requests on free-threaded Python",
        "Without a GIL (python3.13t) CPU-bound threads run in parallel, up to the core count.",
        "Two threads run at once on two cores; each is a little slower than with the GIL.",
        {
            "name": "Four CPU-bound requests, no GIL",
            "server": {"kind": "werkzeug", "threaded": True},
            "machine": {"gil": False},
            "endpoints": CPU85,
            "workload": FOUR_CPU,
        },
        group="gil",
    ),
    Preset(
        "convoy-threads",
        "A CPU hog beside quick requests, same process (gunicorn --threads 4)",
        "Convoy effect: next to a CPU-bound thread, each blocking call of a quick request costs "
        "up to one switch interval.",
        "Watch /ping wait for the GIL after every blocking call (accept, recv, its 2 ms "
        "sleep): a 3 ms request takes about 18 ms while /report runs.",
        {
            "name": "CPU hog and quick requests, gunicorn -w 1 --threads 4",
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1,
                       "threads": 4},
            "endpoints": CONVOY_ENDPOINTS,
            "workload": CONVOY_LOAD,
        },
        group="gil",
    ),
    Preset(
        "convoy-processes",
        "A CPU hog beside quick requests, separate processes (gunicorn -w 2)",
        "In separate processes there is no convoy: the hog has its own GIL and core.",
        "The quick requests go to the other worker and take their usual few ms.",
        {
            "name": "CPU hog and quick requests, gunicorn -w 2",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
            "endpoints": CONVOY_ENDPOINTS,
            "workload": CONVOY_LOAD,
        },
        group="gil",
    ),
    Preset(
        "backlog-overflow",
        "Backlog overflow: gunicorn --backlog 1, ten users",
        "A full accept queue drops SYNs; clients come back after a 1 s retransmit: latency, "
        "not errors.",
        "The queue holds backlog + 1 = 2 connections. A dropped client returns only at its next "
        "retransmit, even if a slot frees up earlier; clients that return together and do not "
        "fit have their final ACK dropped and get in on a later retransmit.",
        {
            "name": "Backlog overflow",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "backlog": 1},
            "endpoints": {"/work": [{"io_ms": 100}]},
            "workload": [{"at_ms": 0, "count": 10, "path": "/work"}],
        },
        group="kernel",
    ),
    Preset(
        "worker-timeout",
        "A gunicorn worker timeout (sync, --timeout 2)",
        "A request that runs past --timeout gets its worker killed: HTTP 500, and a new worker "
        "boots.",
        "The arbiter checks about once a second; the silent worker gets SIGABRT, the next "
        "request waits for its replacement.",
        {
            "name": "Worker timeout, sync",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "timeout_s": 2},
            "endpoints": LONG_EXPORT,
            "workload": LONG_EXPORT_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "gthread-no-timeout",
        "The same long request on gthread",
        "gthread's heartbeat comes from its main thread, so a long request is not killed.",
        "The 10 s request finishes; the other requests use the worker's second thread.",
        {
            "name": "Long request, gthread",
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1,
                       "threads": 2, "timeout_s": 2},
            "endpoints": LONG_EXPORT,
            "workload": LONG_EXPORT_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "max-requests",
        "Worker recycling: gunicorn --max-requests 10",
        "A worker that has served max_requests exits and a new one boots: while it boots, "
        "its share of the traffic waits.",
        "Each recycle leaves one worker for a moment (boot 300 ms here); requests that "
        "arrive then queue in the kernel backlog. Real deployments add --max-requests-jitter "
        "so that workers do not all restart together.",
        {
            "name": "gunicorn -w 2 --max-requests 10",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2,
                       "max_requests": 10, "boot_ms": 300},
            "endpoints": {"/page": [{"cpu_ms": 5}, {"io_ms": {"exp": 40}}]},
            "workload": [{"constant": {"rate_per_s": 20, "duration_s": 5}, "path": "/page"}],
        },
        group="gunicorn",
    ),
    Preset(
        "gthread-poisson",
        "gunicorn -w 4 --threads 2 under Poisson load",
        "Realistic traffic on a mixed endpoint: 8 threads, 2 cores, the GIL in each worker.",
        "Requests queue inside busy workers (the kernel backlog stays near 0) while latency "
        "percentiles spread out.",
        {
            "name": "gunicorn -w 4 --threads 2, Poisson 40/s",
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 4, "threads": 2},
            "endpoints": {
                "/mixed": [{"cpu_ms": 2}, {"io_ms": {"exp": 20}}, {"cpu_ms": 3}],
                "/search": [{"cpu_ms": {"exp": 15}}, {"io_ms": {"exp": 60}}],
            },
            "workload": [
                {"poisson": {"rate_per_s": 40, "duration_s": 10},
                 "paths": {"/mixed": 0.8, "/search": 0.2}},
            ],
        },
        group="gunicorn",
    ),
    Preset(
        "gthread-hoarding",
        "gthread hoards connections: a busy worker beside an idle one",
        "gthread accepts while under worker_connections, not when a thread is free: requests "
        "can queue in a busy worker while another sits idle.",
        "Both workers race to accept; a worker whose only thread is busy still accepts, so "
        "some requests wait behind a slow one.",
        {
            "name": "gthread hoarding, -w 2 --threads 1",
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2,
                       "threads": 1},
            "endpoints": {"/slow": [{"io_ms": 2000}], "/fast": [{"io_ms": 20}]},
            "workload": [
                {"at_ms": 0, "count": 1, "path": "/slow"},
                {"at_ms": 100, "count": 10, "path": "/fast", "spacing_ms": 100},
            ],
        },
        group="gunicorn",
    ),
    Preset(
        "too-many-workers",
        "Too many workers for the cores (16 sync workers, 2 cores)",
        "More processes than cores buy no throughput for CPU-bound work; every request gets "
        "slower as they share the cores.",
        "Sixteen requests run at once on two cores, each at 1/8 speed plus switching costs; "
        "compare with right-sized-workers.",
        {
            "name": "16 workers on 2 cores",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 16},
            "endpoints": RENDER,
            "workload": RENDER_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "right-sized-workers",
        "Workers matched to the cores (2 sync workers, 2 cores)",
        "The same load on two workers: the same total time, but early requests finish early.",
        "Requests queue in the kernel and each runs at full speed once accepted.",
        {
            "name": "2 workers on 2 cores",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
            "endpoints": RENDER,
            "workload": RENDER_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "gevent-io",
        "gevent: a hundred slow I/O requests in one worker",
        "gevent's greenlets overlap I/O: one worker serves a hundred 1 s waits at once.",
        "Each greenlet yields at its blocking call; the hub switches to the next one.",
        {
            "name": "gevent, 100 I/O requests",
            "server": {"kind": "gunicorn", "worker_class": "gevent", "workers": 1},
            "endpoints": SLEEP,
            "workload": [{"at_ms": 0, "count": 100, "path": "/sleep", "spacing_ms": 2}],
        },
        group="gunicorn",
    ),
    Preset(
        "gevent-cpu",
        "gevent with a CPU-bound endpoint",
        "A greenlet that computes never yields: one CPU-bound request stalls every other "
        "request in its worker.",
        "While /crunch runs, the quick requests are accepted only when it finishes, then all "
        "at once.",
        {
            "name": "gevent, CPU-bound endpoint",
            "server": {"kind": "gunicorn", "worker_class": "gevent", "workers": 1},
            "endpoints": {"/crunch": [{"cpu_ms": 1500}], "/ping": [{"io_ms": 5}]},
            "workload": [
                {"at_ms": 0, "count": 1, "path": "/crunch"},
                {"at_ms": 100, "count": 10, "path": "/ping", "spacing_ms": 100},
            ],
        },
        group="gunicorn",
    ),
    Preset(
        "slow-clients-sync",
        "Slow clients tie up sync workers (gunicorn without a proxy)",
        "A sync worker reads the whole request itself: two clients that take 5 s to send "
        "theirs hold both workers, and quick requests queue behind them.",
        "This is why gunicorn's sync workers belong behind a buffering proxy such as nginx: "
        "the proxy absorbs slow (or Slowloris) clients and hands over complete requests.",
        {
            "name": "Slow clients, gunicorn -w 2 (sync)",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
            "endpoints": SLOW_UPLOADS,
            "workload": SLOW_UPLOAD_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "slow-clients-gevent",
        "Slow clients on gevent",
        "A greenlet waiting for a slow client yields, so quick requests go straight through; "
        "and gevent workers give a request only keepalive (2 s) to arrive.",
        "Compare with slow-clients-sync: same clients, same load, no queue. The two 5 s "
        "clients are cut off after 2 s without a response (gunicorn reads requests under a "
        "keepalive timeout in its async workers).",
        {
            "name": "Slow clients, gunicorn -k gevent -w 2",
            "server": {"kind": "gunicorn", "worker_class": "gevent", "workers": 2},
            "endpoints": SLOW_UPLOADS,
            "workload": SLOW_UPLOAD_LOAD,
        },
        group="gunicorn",
    ),
    Preset(
        "mm8-queue",
        "Queueing theory: gunicorn -w 8 as an M/M/8 queue",
        "Poisson arrivals (7/s) and exponential 1 s I/O on 8 sync workers: mean backlog wait "
        "matches Erlang C (0.635 s).",
        "At 87.5 % utilisation the kernel backlog grows and shrinks; waits are long-tailed.",
        {
            "name": "M/M/8, rho = 0.875",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8},
            "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
            "workload": [{"poisson": {"rate_per_s": 7, "duration_s": 120}, "path": "/io"}],
        },
        group="kernel",
    ),
    Preset(
        "flask-lifecycle",
        "One request's life through Flask",
        "Step through accept, parse, context push, routing, before_request, the view, "
        "after_request, teardown and the write.",
        "Teardown runs when the context pops, before the server writes the body; the hooks "
        "here are slow on purpose so each stage is visible.",
        {
            "name": "One request through Flask",
            "server": {"kind": "werkzeug", "threaded": True},
            "costs": {"parse_ms": 2, "context_ms": 1, "match_ms": 1, "before_request_ms": 3,
                      "after_request_ms": 3, "teardown_ms": 2, "recv_ms": 1, "write_ms": 2},
            "endpoints": {"/hello": [{"cpu_ms": 5}, {"io_ms": 10}, {"cpu_ms": 3}]},
            "workload": [{"at_ms": 0, "count": 1, "path": "/hello"}],
        },
        group="flask",
    ),
    Preset(
        "globals-race",
        "Why request state lives in g, not in a global",
        "Two overlapping requests on threads: a module global is shared and gets overwritten; "
        "flask.g is per request.",
        "/set-global stores the user in a global, waits on I/O, reads it back: the second "
        "request's write wins. /set-g does the same with g and reads its own value.",
        {
            "name": "Globals vs g",
            "server": {"kind": "werkzeug", "threaded": True},
            "endpoints": {
                "/set-global": [{"set_global": "user"}, {"io_ms": 50}, {"get_global": "user"}],
                "/set-g": [{"set_g": "user"}, {"io_ms": 50}, {"get_g": "user"}],
            },
            "workload": [
                {"at_ms": 0, "count": 2, "path": "/set-global", "spacing_ms": 10},
                {"at_ms": 200, "count": 2, "path": "/set-g", "spacing_ms": 10},
            ],
        },
        group="flask",
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get(name: str) -> Preset:
    """The preset called ``name``; KeyError lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"no preset {name!r} (known: {', '.join(PRESETS)})") from None


def names() -> list[str]:
    return list(PRESETS)
