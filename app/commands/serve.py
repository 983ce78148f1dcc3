"""``wsgiscope serve``: run the web app (gunicorn's gevent workers, or Flask's dev server)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import LOOPBACK_HOSTS, security, server
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
                   help="let the page start real servers even when listening beyond loopback "
                   "or behind a proxy (the printed token is still needed)")
    p.add_argument("--allow-host", metavar="NAME", action="append", default=None,
                   help="a host name the page may be opened by, beside localhost, 127.0.0.1, "
                   "::1 and --host (a guard against DNS rebinding); repeatable; * allows any")
    p.add_argument("--threads", type=int, default=64,
                   help="gunicorn threads with --worker-class gthread, where each open page "
                   "holds one for its WebSocket (default 64)")
    server.add_flags(p)
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
    config.update(server.config_from_args(args))
    config.update(security.serve_config(args.host, getattr(args, "allow_host", None),
                                        args.allow_lab, os.environ.get(security.TOKEN_ENV)))
    if getattr(args, "lessons", None) is not None:
        config["LESSONS"] = args.lessons
    load_lessons_arg(config.get("LESSONS"))  # a bad lesson file stops here, in one line
    where = security.page_url(args.host, args.port, config["LAB_TOKEN"])
    if args.dev:
        from .. import create_app

        app = create_app(config)
        os.environ[security.TOKEN_ENV] = config["LAB_TOKEN"]  # the same one after a reload
        print(f"wsgiscope: serving on {where} (development server, auto-reload)",
              file=sys.stderr)
        # The interactive debugger runs code typed into the browser: loopback only.
        app.run(host=args.host, port=args.port, debug=True, use_reloader=True, threaded=True,
                use_debugger=args.host in LOOPBACK_HOSTS)
        return 0
    options = server.gunicorn_options(args.host, args.port, args.workers, args.worker_class,
                                      args.threads, args.max_viewers)
    print(f"wsgiscope: serving on {where}", file=sys.stderr)
    server.run_gunicorn(config, options)
    return 0
