"""Scenario validation: defaults, and one clear message per bad field."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope.simulator import ScenarioError, load_scenario
from wsgiscope.simulator.presets import PRESETS


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
