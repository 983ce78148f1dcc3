"""``wsgiscope serve``: run the web app (gunicorn's gthread worker, or Flask's dev server)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import LOOPBACK_HOSTS
from .common import CliError, add_lessons_flag, load_lessons_arg


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the visualiser in a browser",
        description="Serve the wsgiscope page. Open the printed address in a browser.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--dev", action="store_true",
                   help="Flask's development server with auto-reload, for working on wsgiscope")
    p.add_argument("--allow-lab", action="store_true",
                   help="let the page start real servers even when listening beyond loopback")
    p.add_argument("--threads", type=int, default=64,
                   help="gunicorn threads; each open page holds one for its WebSocket (default 64)")
    add_lessons_flag(p)
    p.set_defaults(func=serve)


def lab_enabled(host: str, allow_lab: bool) -> bool:
    """The lab starts processes on the serving machine: only for loopback unless asked."""
    return allow_lab or host in LOOPBACK_HOSTS


def serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise CliError(f"--port must be between 1 and 65535 (got {args.port})")
    if not 1 <= args.threads <= 1000:
        raise CliError(f"--threads must be between 1 and 1000 (got {args.threads})")
    config: dict[str, Any] = {"LAB_ENABLED": lab_enabled(args.host, args.allow_lab)}
    if getattr(args, "lessons", None) is not None:
        config["LESSONS"] = args.lessons
    load_lessons_arg(config.get("LESSONS"))  # a bad lesson file stops here, in one line
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    if args.dev:
        from .. import create_app

        app = create_app(config)
        print(f"wsgiscope: serving on {where} (development server, auto-reload)",
              file=sys.stderr)
        # The interactive debugger runs code typed into the browser: loopback only.
        app.run(host=args.host, port=args.port, debug=True, use_reloader=True, threaded=True,
                use_debugger=args.host in LOOPBACK_HOSTS)
        return 0
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"{args.host}:{args.port}",
                "worker_class": "gthread",
                "workers": 1,  # every socket's run lives in its own thread; one process is enough
                "threads": args.threads,
                # gthread's heartbeat comes from its main thread, so long-lived sockets are safe
                "timeout": 30,
                "graceful_timeout": 5,
                "accesslog": None,
                "control_socket_disable": True,
            }
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            from .. import create_app

            return create_app(config)

    print(f"wsgiscope: serving on {where}", file=sys.stderr)
    _Server().run()
    return 0
