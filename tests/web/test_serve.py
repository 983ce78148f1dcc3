import argparse
import re

import pytest
from wsgiscope.app.cli import build_parser
from wsgiscope.app.commands.common import CliError
from wsgiscope.app.commands.serve import lab_enabled, serve


def parse(*argv):
    return build_parser().parse_args(["serve", *argv])


def test_serve_defaults_to_loopback_port_8000_under_gunicorn():
    args = parse()
    assert (args.host, args.port, args.dev, args.allow_lab) == ("127.0.0.1", 8000, False, False)
    assert args.func is serve


@pytest.mark.parametrize(
    ("host", "allow", "expected"),
    [("127.0.0.1", False, True), ("localhost", False, True), ("::1", False, True),
     ("0.0.0.0", False, False), ("0.0.0.0", True, True), ("192.168.1.5", False, False)],
)
def test_the_lab_is_on_only_for_loopback_unless_allowed(host, allow, expected):
    assert lab_enabled(host, allow) is expected


@pytest.mark.parametrize(("flag", "value", "words"), [("--port", "0", "--port must be between"),
                                                       ("--threads", "0", "--threads must be")])
def test_bad_serve_options_are_one_line_errors(flag, value, words):
    with pytest.raises(CliError, match=words):
        serve(parse(flag, value))


def test_serve_is_registered_with_its_flags():
    text = build_parser().format_help()
    assert "serve" in text
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    help_text = sub.choices["serve"].format_help()
    for flag in ("--host", "--port", "--dev", "--allow-lab"):
        assert flag in help_text


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--workers", "0", "--workers must be between 1 and 64 (got 0)"),
    ("--max-viewers", "0", "--max-viewers must be between 1 and 100000"),
    ("--sim-processes", "-1", "--sim-processes must be between 0 and 256"),
    ("--sim-timeout", "0", "--sim-timeout must be between 1 and 3600"),
    ("--cache-mb", "-5", "--cache-mb must be between 0 and"),
    ("--send-timeout", "0.1", "--send-timeout must be between 0.5 and 600"),
    ("--redis", "localhost:6379", "--redis must be a URL starting with redis://"),
])
def test_bad_serving_flags_are_one_line_errors(flag, value, words):
    with pytest.raises(CliError, match=re.escape(words)):
        serve(parse(flag, value))


def test_the_serving_flags_become_the_apps_settings(capsys):
    from wsgiscope.app.server import config_from_args

    config = config_from_args(parse("--workers", "2", "--sim-processes", "3", "--cache-mb",
                                    "64", "--send-timeout", "4", "--max-viewers", "500"))
    assert config == {"SIM_PROCESSES": 3, "SIM_TIMEOUT_S": 60.0,
                      "RUN_CACHE_BYTES": 64 * 1024 * 1024, "MAX_VIEWERS": 500,
                      "SEND_TIMEOUT_S": 4.0}
    assert "2 workers without --redis" in capsys.readouterr().err
    assert config_from_args(parse())["SIM_PROCESSES"] >= 1  # cores / workers, at least one


def test_gunicorn_runs_gevent_workers_with_room_for_the_viewers():
    from wsgiscope.app.server import PAGE_CONNECTIONS, gunicorn_options

    options = gunicorn_options("::1", 8000, 2, "gevent", 64, 1000)
    assert options["worker_class"] == "gevent" and options["workers"] == 2
    assert options["worker_connections"] == 1000 + PAGE_CONNECTIONS
    assert options["bind"] == "[::1]:8000" and options["control_socket_disable"] is True
    assert gunicorn_options("127.0.0.1", 8000, 1, "gthread", 32, 1000)["threads"] == 32
