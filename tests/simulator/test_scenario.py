"""Scenario validation: defaults, and one clear message per bad field."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope.simulator import ScenarioError, load_scenario
from wsgiscope.simulator.presets import PRESETS
from wsgiscope.simulator.scenario import SEED_MAX, check_depth, check_seed, parse_scenario_text


def base(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "server": {"kind": "werkzeug"},
        "endpoints": {"/sleep": [{"io_ms": 1000}]},
        "workload": [{"at_ms": 0, "count": 10, "path": "/sleep"}],
    }
    d.update(over)
    return d


def test_defaults_are_the_real_tools_defaults() -> None:
    sc = load_scenario(base())
    assert sc.server == {"kind": "werkzeug", "threaded": True, "processes": 1, "backlog": 128}
    g = load_scenario(base(server={"kind": "gunicorn"})).server
    assert (
        g["worker_class"],
        g["workers"],
        g["threads"],
        g["backlog"],
        g["timeout_s"],
        g["worker_connections"],
        g["keepalive_s"],
    ) == ("sync", 1, 1, 2048, 30.0, 1000, 2.0)
    assert sc.machine["switch_interval_ms"] == 5.0 and sc.machine["somaxconn"] == 4096
    assert sc.client["syn_retries"] == 6


def test_sync_with_threads_means_gthread() -> None:
    sc = load_scenario(base(server={"kind": "gunicorn", "threads": 4}))
    assert sc.server["worker_class"] == "gthread"


def test_normalised_scenario_round_trips() -> None:
    for preset in PRESETS.values():
        sc = load_scenario(preset.scenario)
        assert load_scenario(sc.to_dict()) == sc


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        (
            {"server": {"kind": "gunicorn", "workers": 0}},
            "server.workers",
            "between 1 and 256 (got 0)",
        ),
        ({"server": {"kind": "gunicorn", "workers": 300}}, "server.workers", "between 1 and 256"),
        ({"server": {"kind": "gunicorn", "threads": 2000}}, "server.threads", "1024"),
        (
            {"server": {"kind": "gunicorn", "worker_class": "eventlet"}},
            "server.worker_class",
            "'sync', 'gthread', 'gevent'",
        ),
        ({"server": {"kind": "uwsgi"}}, "server.kind", "'werkzeug', 'gunicorn'"),
        ({"server": {"kind": "werkzeug", "workers": 2}}, "server.workers", "not a known field"),
        ({"server": {"kind": "werkzeug", "threaded": "yes"}}, "server.threaded", "true or false"),
        (
            {"server": {"kind": "werkzeug", "threaded": True, "processes": 2}},
            "server.processes",
            "threaded",
        ),
        ({"machine": {"cores": "two"}}, "machine.cores", "whole number"),
        ({"machine": {"cores": 2.5}}, "machine.cores", "whole number"),
        ({"machine": {"switch_interval_ms": 0}}, "machine.switch_interval_ms", "between"),
        ({"machine": {"syn_schedule": "fast"}}, "machine.syn_schedule", "'linear'"),
        ({"costs": {"parse_ms": -1}}, "costs.parse_ms", "between 0"),
        ({"client": {"timeout_s": 0}}, "client.timeout_s", "between"),
        ({"colour": "red"}, "colour", "not a known field"),
        ({"workload": []}, "workload", "non-empty"),
        (
            {"workload": [{"count": 5, "path": "/nope"}]},
            "workload[0].path",
            "'/nope' has no endpoint (known: /sleep)",
        ),
        ({"workload": [{"count": 5}]}, "workload[0]", '"path"'),
        ({"workload": [{"count": 0, "path": "/sleep"}]}, "workload[0].count", "between 1"),
        ({"workload": [{"count": 300_000, "path": "/sleep"}]}, "workload[0].count", "200000"),
        (
            {"workload": [{"poisson": {"rate_per_s": 1000, "duration_s": 1000}, "path": "/sleep"}]},
            "workload",
            "at most 200,000",
        ),
        (
            {"workload": [{"poisson": {"rate_per_s": 5}, "path": "/sleep"}]},
            "workload[0].poisson.duration_s",
            "required",
        ),
        (
            {"workload": [{"at_ms": 0, "count": 1, "path": "/sleep", "burst": 1}]},
            "workload[0].burst",
            "not a known field",
        ),
        ({"workload": [{"count": 1, "path": "/sleep", "send_ms": -5}]}, "workload[0].send_ms",
         "between 0"),
        ({"workload": [{"count": 1, "path": "/sleep", "send_ms": {"pareto": 2}}]},
         "workload[0].send_ms", "unknown distribution"),
        ({"endpoints": {}}, "endpoints", "at least one path"),
        ({"endpoints": {"sleep": [{"io_ms": 1}]}}, "endpoints.sleep", "start with '/'"),
        (
            {"endpoints": {"/sleep": [{"disk_ms": 1}]}},
            "endpoints./sleep[0].disk_ms",
            "not a segment kind",
        ),
        (
            {"endpoints": {"/sleep": [{"io_ms": {"normal": 3}}]}},
            "endpoints./sleep[0].io_ms",
            "unknown distribution",
        ),
        (
            {"endpoints": {"/sleep": [{"io_ms": {"uniform": [5, 1]}}]}},
            "endpoints./sleep[0].io_ms.uniform",
            "lo <= hi",
        ),
        (
            {"endpoints": {"/sleep": [{"cpu_ms": 10**9}]}},
            "endpoints./sleep[0].cpu_ms",
            "between 0 and 600000",
        ),
    ],
)
def test_bad_input_names_the_field(patch: dict[str, Any], field: str, words: str) -> None:
    data = base(**patch)
    if "endpoints" in patch and "workload" not in patch and patch["endpoints"]:
        data["workload"] = [{"count": 1, "path": next(iter(patch["endpoints"]))}]
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    assert info.value.field == field
    assert words in str(info.value)


def test_not_an_object() -> None:
    with pytest.raises(ScenarioError, match="JSON object"):
        load_scenario([1, 2])


def _one_line_error(data: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and message.startswith(info.value.field + ": ")
    return info.value


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"machine": {"cores": float("inf")}}, "machine.cores", "finite"),
        ({"machine": {"rtt_ms": float("nan")}}, "machine.rtt_ms", "got NaN"),
        ({"machine": {"cores": 1e400}}, "machine.cores", "between 1 and 256"),
        ({"machine": {"cores": 10**5000}}, "machine.cores", "5000 digits"),
        ({"costs": {"parse_ms": -(10**5000)}}, "costs.parse_ms", "between 0 and 10000"),
        ({"seed": 2**32}, "seed", "between 0 and 4294967295"),
        ({"seed": -1}, "seed", "between 0 and 4294967295"),
        ({"seed": True}, "seed", "whole number"),
        ({"machine": {"gil": 1}}, "machine.gil", "true or false (got 1)"),
        ({"machine": {"cores": [2]}}, "machine.cores", "(got a list of 1 item)"),
        ({"server": {"kind": ["werkzeug"]}}, "server.kind", "'werkzeug', 'gunicorn'"),
        ({"server": "gunicorn"}, "server", "must be an object"),
        ({"name": {"a": 1}}, "name", "text"),
        ({"workload": [{"count": 1, "path": ["/sleep"]}]}, "workload[0].path", "URL path"),
        ({"workload": [{"count": 1, "path": {"/sleep": 1}}]}, "workload[0].path", "URL path"),
        ({"workload": [{"count": 1, "paths": ["/sleep"]}]}, "workload[0].paths", "map paths"),
        ({"workload": [{"count": True, "path": "/sleep"}]}, "workload[0].count", "whole number"),
        ({"workload": [1]}, "workload[0]", "must be an object"),
        ({"workload": [{"count": 1, "path": "/sleep"}] * 1001}, "workload", "at most 1,000"),
        (
            {"workload": [{"poisson": {"rate_per_s": float("inf"), "duration_s": 1},
                           "path": "/sleep"}]},
            "workload[0].poisson.rate_per_s",
            "finite",
        ),
        (
            {"endpoints": {"/sleep": [{"io_ms": {"uniform": [1, [2]]}}]}},
            "endpoints./sleep[0].io_ms.uniform[1]",
            "number",
        ),
        (
            {"endpoints": {f"/e{i}": [] for i in range(101)}, "workload": [{"path": "/e0"}]},
            "endpoints",
            "at most 100",
        ),
    ],
)
def test_extreme_and_mistyped_values_name_the_field(
    patch: dict[str, Any], field: str, words: str
) -> None:
    error = _one_line_error(base(**patch))
    assert error.field == field
    assert words in str(error)


@pytest.mark.parametrize(
    "path",
    [
        "sleep", "", "/a b", "/a\r\nX-Injected: 1", "/<int:x>", "/%2e%2e/etc", "/a/../b",
        "/..", "/./a", "//a", "/a//b", "/a?q=1", "/a#f", "/caf\u00e9", "/" + "a" * 100,
    ],
)  # fmt: skip
def test_endpoint_paths_are_plain_url_paths(path: str) -> None:
    error = _one_line_error(base(endpoints={path: []}, workload=[{"path": "/sleep"}]))
    assert error.field.startswith("endpoints.")
    assert "A-Z a-z 0-9 . _ ~ / -" in str(error)


@pytest.mark.parametrize(
    "path", ["/", "/a", "/a/b/", "/v1.2/x_y-z~w", "/..a", "/a..", "/" + "a" * 99]
)
def test_plain_paths_load(path: str) -> None:
    sc = load_scenario(base(endpoints={path: []}, workload=[{"path": path}]))
    assert list(sc.endpoints) == [path]


def test_workload_paths_outside_the_character_set_name_the_field() -> None:
    error = _one_line_error(base(workload=[{"count": 1, "paths": {"/a b": 1}}]))
    assert error.field == "workload[0].paths./a b"


def test_deep_nesting_is_refused_without_recursing() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    error = _one_line_error(base(name=deep))
    assert error.field.startswith("name[0]") and "16 levels" in str(error)
    check_depth({"a": [[{"b": 1}]]}, max_depth=4)
    with pytest.raises(ScenarioError, match="more than 3 levels"):
        check_depth({"a": [[{"b": 1}]]}, max_depth=3)


def test_a_cycle_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    _one_line_error(base(name=loop))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param('{"seed": NaN}', "NaN is not a number JSON allows", id="nan"),
        pytest.param('{"seed": -Infinity}', "-Infinity is not a number JSON", id="infinity"),
        pytest.param("[" * 200_000 + "]" * 200_000, "levels deep", id="too-deep-for-json"),
        pytest.param('{"name": ' + "[" * 20 + "]" * 20 + "}", "levels deep", id="deep"),
        pytest.param('{"seed": ', "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe", "not UTF-8", id="not-utf8"),
        pytest.param("x" * 2_000_000, "at most 1,000,000 bytes", id="too-big"),
        pytest.param("\u00e9" * 600_000, "1,200,000 bytes", id="too-big-in-utf8"),
    ],
)
def test_parse_scenario_text_refuses_in_one_line(text: str | bytes, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario_text(text, max_bytes=1_000_000)
    assert info.value.field.startswith(("scenario", "name[0]"))
    assert str(info.value).startswith(info.value.field + ": ")
    assert len(str(info.value).splitlines()) == 1 and words in str(info.value)


def test_parse_scenario_text_keeps_the_field_for_huge_numbers() -> None:
    for literal in ("9" * 5_000, "1e400", "-" + "9" * 50):
        data = parse_scenario_text(
            '{"endpoints": {"/a": []}, "workload": [{"path": "/a"}], "seed": ' + literal + "}"
        )
        error = _one_line_error(data)
        assert error.field == "seed" and "4294967295" in str(error)


def test_parse_scenario_text_returns_the_data() -> None:
    text = '{"endpoints": {"/a": [{"io_ms": 1}]}, "workload": [{"path": "/a"}], "seed": 7}'
    assert load_scenario(parse_scenario_text(text.encode())).seed == 7
    assert check_seed(SEED_MAX) == SEED_MAX
    with pytest.raises(ScenarioError, match="^--seed: "):
        check_seed(SEED_MAX + 1, "--seed")
