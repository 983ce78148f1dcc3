"""``wsgiscope serve``'s production server: gunicorn, gevent workers, a simulation pool each.

Why this shape (the figures are in the README's "Deploy" section):

* A WebSocket viewer is long-lived and mostly idle. Under gunicorn's ``gthread`` worker
  flask-sock holds a thread per socket, so the thread count is the viewer count: 64 idle
  sockets left no thread for ``GET /``. gunicorn's ``gevent`` worker gives each connection
  a greenlet (a few KB), so a worker holds ``worker_connections`` viewers; flask-sock and
  simple-websocket work under gevent's monkey patching unchanged (their reader thread
  becomes a greenlet).
* One gevent loop must never run a simulation (seconds of CPU would freeze every viewer):
  runs are simulated in :mod:`.pool`'s helper processes, cached by :mod:`.cache`, and the
  loop only decodes and sends them.
* More workers (``--workers``) use more cores for sending; with ``--redis`` they and other
  instances share the run cache and the rooms.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .commands.common import CliError

#: Connections a gevent worker keeps beside its viewers, for pages, exports and health checks.
PAGE_CONNECTIONS = 100
#: The schemes ``--redis`` takes (redis-py's).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def add_flags(p: argparse.ArgumentParser) -> None:
    """``wsgiscope serve``'s flags for serving many viewers."""
    g = p.add_argument_group("serving many viewers (see the README's Deploy section)")
    g.add_argument("--workers", type=int, default=1,
                   help="gunicorn worker processes (default 1); with more than one, give "
                   "--redis so that they share the runs")
    g.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent",
                   help="gevent (default): a greenlet per socket; gthread: a thread per "
                   "socket, as before (for comparison)")
    g.add_argument("--max-viewers", type=int, default=1000,
                   help="open sockets per worker (default 1000); more are told the server "
                   "is full")
    g.add_argument("--sim-processes", type=int, default=None,
                   help="simulation processes per worker (default: cores / workers, at "
                   "least 1)")
    g.add_argument("--sim-timeout", type=float, default=60.0,
                   help="seconds one simulation may take before it is stopped (default 60)")
    g.add_argument("--cache-mb", type=int, default=256,
                   help="each worker's cache of prepared runs, in MB (default 256; 0: none)")
    g.add_argument("--send-timeout", type=float, default=10.0,
                   help="seconds a viewer may stay behind before it is dropped (default 10)")
    g.add_argument("--redis", metavar="URL", default=None,
                   help="share the run cache and the rooms with other workers and instances "
                   "through Redis (redis://host:6379/0); needs wsgiscope[redis]")


def _check(name: str, value: float, low: float, high: float, why: str) -> None:
    if not low <= value <= high:
        raise CliError(f"{name} must be between {low:g} and {high:g} (got {value:g}): {why}")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The app settings (:mod:`.serving`) for the serving flags; CliError if one is off."""
    _check("--workers", args.workers, 1, 64, "gunicorn needs at least one worker")
    _check("--max-viewers", args.max_viewers, 1, 100_000, "each worker serves its own")
    cores = os.cpu_count() or 1
    sim = args.sim_processes
    if sim is None:
        sim = max(1, cores // args.workers)
    _check("--sim-processes", sim, 0, 256, "0 simulates in the worker itself")
    _check("--sim-timeout", args.sim_timeout, 1, 3600, "a simulation needs some time")
    _check("--cache-mb", args.cache_mb, 0, 1_000_000, "0 turns the cache off")
    _check("--send-timeout", args.send_timeout, 0.5, 600, "a slow network needs a moment")
    config: dict[str, Any] = {
        "SIM_PROCESSES": sim,
        "SIM_TIMEOUT_S": args.sim_timeout,
        "RUN_CACHE_BYTES": args.cache_mb * 1024 * 1024,
        "MAX_VIEWERS": args.max_viewers,
        "SEND_TIMEOUT_S": args.send_timeout,
    }
    if args.redis is not None:
        config["REDIS_URL"] = check_redis(args.redis)
    elif args.workers > 1:
        print(f"wsgiscope: {args.workers} workers without --redis: each simulates and caches "
              "runs on its own (give --redis URL to share them)", file=sys.stderr)
    return config


def check_redis(url: str) -> str:
    """``url`` if Redis answers there; a one-line CliError otherwise."""
    if not url.startswith(REDIS_SCHEMES):
        raise CliError(f"--redis must be a URL starting with {', '.join(REDIS_SCHEMES)} "
                       f"(got {url!r})")
    try:
        import redis
    except ImportError:
        raise CliError("--redis needs the redis package: pip install 'wsgiscope[redis]'"
                       ) from None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise CliError(f"--redis: cannot reach Redis at {url} ({exc})") from None
    return url


def gunicorn_options(host: str, port: int, workers: int, worker_class: str, threads: int,
                     max_viewers: int) -> dict[str, Any]:
    """gunicorn settings for ``wsgiscope serve``."""
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "worker_class": worker_class,
        "workers": workers,
        # The heartbeat comes from the worker's own loop (gevent) or main thread (gthread),
        # so long-lived sockets are safe; a loop blocked this long is a bug worth a restart.
        "timeout": 30,
        "graceful_timeout": 5,
        "accesslog": None,
        # gunicorn >= 25.1 opens a control socket per user by default; two instances collide.
        "control_socket_disable": True,
    }
    if worker_class == "gevent":
        options["worker_connections"] = max_viewers + PAGE_CONNECTIONS
    else:
        options["threads"] = threads
    return options


def run_gunicorn(config: dict[str, Any], options: dict[str, Any]) -> None:
    """Serve ``create_app(config)`` under gunicorn until it is stopped."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return served_app(config)

    _Server().run()


def served_app(config: dict[str, Any] | None = None) -> Any:
    """The app as a gunicorn worker serves it: ``create_app(config)``, its simulation pool
    started, its page rendered once. Called in each worker, after the fork (and after
    gevent's patching), so the pool is forked from the worker's main thread before the first
    viewer. For gunicorn's own command line::

        gunicorn -k gevent --worker-connections 1100 --no-control-socket \
            'wsgiscope.app.server:served_app({"SIM_PROCESSES": 2})'
    """
    from . import create_app, serving

    app = create_app(config)
    serving.start(app)
    _warm_up(app)
    return app


def _warm_up(app: Any) -> None:
    """Render the page once before the first user: compiling its templates takes ~50 ms of
    CPU, which on a gevent loop would be a pause in every viewer's frames."""
    try:
        with app.test_client() as client:
            client.get("/", headers={"Host": "localhost"})
    except Exception:  # a page that fails here fails for the user too, and says so there
        pass
