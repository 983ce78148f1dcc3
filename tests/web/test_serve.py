import argparse

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
