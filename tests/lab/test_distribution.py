"""Judging measured runs against simulated seeds: the statistics, the band rule, the table,
and the suite's case files (no server is started here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wsgiscope import simulator
from wsgiscope.app.cli import main
from wsgiscope.app.lab.distribution import band, check_families, format_judgement, judge
from wsgiscope.app.lab.fidelity import CaseError, load_case, load_suite
from wsgiscope.app.lab.fidelity_report import format_report
from wsgiscope.simulator.trace import RequestRecord, Trace

SUITE = Path(__file__).resolve().parents[1] / "fidelity"

SCENARIO = {
    "name": "two sync workers",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
    "endpoints": {"/sleep": [{"io_ms": 100}], "/quick": [{"io_ms": 1}]},
    "workload": [{"count": 4, "path": "/sleep"}],
}


def trace(
    finished: list[float],
    workers: list[str] | None = None,
    statuses: list[str] | None = None,
    paths: list[str] | None = None,
) -> Trace:
    n = len(finished)
    reqs = [
        RequestRecord(
            id=i,
            path=(paths or ["/sleep"] * n)[i],
            sent_ms=0.0,
            finished_ms=finished[i],
            status=(statuses or ["ok"] * n)[i],
            worker=(workers or ["w1", "w2"] * n)[i],
        )
        for i in range(n)
    ]
    return Trace(scenario=simulator.load_scenario(SCENARIO).to_dict(), source="x", requests=reqs)


def row(result: dict, name: str) -> dict:
    return next(r for r in result["statistics"] if r["name"] == name)


def test_a_deterministic_outcome_is_the_10_percent_or_30_ms_rule() -> None:
    b = band([100.0, 100.0], "time")
    assert (b["low"], b["high"]) == (70.0, 130.0)  # 30 ms floor
    b = band([1000.0] * 3, "time")
    assert (b["low"], b["high"]) == (900.0, 1100.0)  # 10 %
    b = band([3.0, 5.0, 4.0], "count")
    assert (b["low"], b["high"]) == (3.0, 5.0)  # counts are exact


def test_every_measured_run_must_lie_inside_the_widened_spread() -> None:
    sims = [trace([100, 100, 200, 200]), trace([100, 150, 200, 260])]
    ok = judge([trace([90, 120, 210, 280]), trace([101, 101, 201, 201])], sims)
    assert ok["agrees"], format_judgement(ok)
    late = judge([trace([100, 100, 200, 200]), trace([100, 100, 200, 400])], sims)
    assert not late["agrees"]
    assert row(late, "done #4")["outside"] == [1]
    assert row(late, "done #3")["agrees"]
    assert "DISAGREES" in format_judgement(late) and "400*" in format_judgement(late)


def test_runs_all_on_one_side_of_a_wide_spread_lean_without_changing_the_verdict() -> None:
    # 20 seeds spread 100-290 ms; a model 30 % fast would still pass the band rule
    sims = [trace([ms] * 4) for ms in range(100, 300, 10)]
    slow = judge([trace([ms] * 4) for ms in (275, 285, 292, 299)], sims, ["p50"])
    assert slow["agrees"]
    assert row(slow, "p50")["rank"]["lean"] == "high"
    text = format_judgement(slow)
    assert "lean: p50: the runs sit at the seeds' 90th-100th percentiles" in text
    assert "slower than the model" in text
    even = judge([trace([ms] * 4) for ms in (125, 185, 235, 285)], sims, ["p50"])
    assert row(even, "p50")["rank"]["lean"] is None and "lean:" not in format_judgement(even)
    # seeds that barely spread (the widening makes the band): no ranks, only the rule
    tight = [trace([300 + ms / 10] * 4) for ms in range(0, 200, 10)]
    above = judge([trace([320] * 4) for _ in range(4)], tight, ["p50"])
    assert above["agrees"] and row(above, "p50")["rank"] is None


def test_worker_shares_and_statuses_are_counted_exactly() -> None:
    even = [trace([100, 100, 200, 200], ["w1", "w2", "w1", "w2"]) for _ in range(3)]
    skewed = trace([100, 100, 200, 200], ["w1", "w1", "w1", "w2"])
    result = judge([skewed], even)
    assert row(result, "share #1")["measured"] == [75.0]
    assert not row(result, "share #1")["agrees"]
    # A share is a percentage: the same even split of a run with more requests agrees.
    bigger = trace([100, 100, 200, 200, 250, 250], ["w1", "w2", "w1", "w2", "w1", "w2"])
    assert row(judge([bigger], even, ["share"]), "share #1")["agrees"]
    failed = trace([100, 100, 200, 200], statuses=["ok", "ok", "ok", "reset"])
    result = judge([failed], even, ["status"])
    assert [r["name"] for r in result["statistics"] if not r["agrees"]] == [
        "status ok",
        "status reset",
    ]


def test_per_path_percentiles_and_a_quantile_band() -> None:
    paths = ["/sleep", "/quick", "/quick", "/sleep"]
    sims = [trace([100, 5 + s, 6 + s, 200], paths=paths) for s in range(0, 100, 10)]
    meas = trace([100, 40, 40, 200], paths=paths)
    assert judge([meas], sims, ["p50 /quick"])["agrees"]  # 5..96, widened by 30 ms
    narrow = judge([meas], sims, ["p50 /quick"], q=0.25)
    assert narrow["rule"]["band"] == "0.25-0.75 quantiles"
    assert narrow["statistics"][0]["sim"]["lo"] > 5.5


def test_large_runs_are_judged_at_deciles() -> None:
    sims = [trace([float(i) for i in range(100)])]
    result = judge([trace([float(i) for i in range(100)])], sims, ["done"])
    assert [r["name"] for r in result["statistics"]][:3] == ["done 0%", "done 10%", "done 20%"]
    assert len(result["statistics"]) == 11


@pytest.mark.parametrize("bad", ["nope", "p50 quick", "share /x", ""])
def test_a_bad_statistic_name_is_one_line(bad: str) -> None:
    with pytest.raises(ValueError, match="judge"):
        check_families([bad])


def test_the_public_suite_is_broad_and_every_case_loads() -> None:
    cases = [c for _p, c in load_suite(SUITE)]
    assert len(cases) >= 25
    kinds = set()
    for c in cases:
        sc = simulator.load_scenario(c["scenario"])
        srv = sc.server
        kinds.add(
            (srv["kind"], srv.get("worker_class"), srv.get("threaded"), srv.get("processes", 1) > 1)
        )
        assert 1 <= c["runs"] <= 5 and c["seeds"] >= 20
    classes = {k[1] for k in kinds if k[0] == "gunicorn"}
    assert classes == {"sync", "gthread", "gevent"}
    werkzeug = {(k[2], k[3]) for k in kinds if k[0] == "werkzeug"}
    assert werkzeug == {(False, False), (True, False), (False, True)}


def test_a_bad_case_file_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(
        json.dumps(
            {
                "case": "x",
                "title": "t",
                "mechanism": "m",
                "runs": 0,
                "seeds": 5,
                "scenario": SCENARIO,
            }
        )
    )
    with pytest.raises(CaseError, match="x.json: runs must be an integer from 1 to 50"):
        load_case(path)
    path.write_text(
        json.dumps(
            {
                "case": "x",
                "title": "t",
                "mechanism": "m",
                "runs": 1,
                "seeds": 5,
                "scenario": {**SCENARIO, "server": {"kind": "x"}},
            }
        )
    )
    with pytest.raises(CaseError, match="x.json: server.kind"):
        load_case(path)


def test_the_report_lists_a_disagreeing_case_with_its_figures() -> None:
    sims = [trace([100, 100, 200, 200])]
    res = judge([trace([100, 100, 200, 400])], sims)
    res.update(
        {
            "case": "c1",
            "title": "T",
            "mechanism": "the accept race",
            "runs": 1,
            "seeds": [1],
            "notes": "wake-up latency",
            "busy_runs": 1,
            "conditions": [{"loadavg_before": [3.0, 0, 0], "busy": True}],
        }
    )
    md = format_report({"environment": {}, "seconds": 60, "cases": [res], "agree": 0, "total": 1})
    assert "0 of 1 cases agree" in md
    assert "| c1 | the accept race | 1 × 1 | **disagrees** |" in md
    assert "* done #4: measured 400 ms; simulated 200 ms–200 ms" in md
    assert "Suspected mechanism: wake-up latency" in md
    # a case inside the band whose runs all sit above the seeds is listed apart
    sims = [trace([ms] * 4) for ms in range(100, 300, 10)]
    leaning = judge([trace([ms] * 4) for ms in (275, 285, 292, 299)], sims, ["p50"])
    leaning.update({**{k: res[k] for k in ("title", "mechanism", "runs", "seeds", "busy_runs")},
                    "case": "c2", "conditions": [{"loadavg_before": [0.5, 0, 0]}]})
    md = format_report({"environment": {}, "seconds": 60, "cases": [leaning], "agree": 1,
                        "total": 1})
    assert "| c2 | the accept race | 1 × 1 | agrees |" in md
    assert "## Cases that agree but lean" in md and "* c2: p50: the runs sit at" in md


def test_compare_rejects_mixed_modes_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--per-request", "--runs", "3", "x.json"]) == 2
    assert "--per-request compares one run" in capsys.readouterr().err
    assert main(["compare"]) == 2
    assert "needs a SCENARIO" in capsys.readouterr().err
    assert main(["fidelity", "--suite", "/nonexistent"]) == 2
    assert "not a folder of case files" in capsys.readouterr().err


def test_compare_takes_a_case_file_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "case.json"
    bad.write_text(json.dumps({"case": "x", "scenario": SCENARIO}))
    assert main(["compare", str(bad)]) == 2
    assert "case.json: title is required" in capsys.readouterr().err
    case = SUITE / "11-sync-w2-burst.json"
    assert main(["compare", str(case), "--per-request"]) == 2
    assert "is a fidelity case" in capsys.readouterr().err


def test_the_report_files_read_back_and_are_not_taken_for_cases(tmp_path: Path) -> None:
    from wsgiscope.app.lab.fidelity_report import write_report

    sims = [trace([100, 100, 200, 200])]
    res = judge([trace([100, 100, 200, 210])], sims)
    res.update({"case": "c1", "title": "T", "mechanism": "m", "runs": 1, "seeds": [1],
                "busy_runs": 0, "conditions": [{"loadavg_before": [0.5, 0, 0], "busy": False,
                                                "other_cpu_cores": 0.1}]})
    report = {"environment": {"date": "d"}, "seconds": 1.0, "cases": [res], "agree": 1,
              "total": 1}
    md, js = write_report(report, tmp_path)
    assert json.loads(js.read_text()) == json.loads(json.dumps(report))
    assert "1 of 1 cases agree" in md.read_text()
    case = json.loads((SUITE / "11-sync-w2-burst.json").read_text())
    (tmp_path / "01-x.json").write_text(json.dumps(case))
    assert [c["case"] for _p, c in load_suite(tmp_path)] == ["sync-w2-burst"]


def test_a_run_on_a_busy_machine_is_taken_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run during which the host stole time from this virtual machine is set aside and
    taken again (at most RETAKES times); the judged run keeps what was set aside."""
    from wsgiscope.app.lab import fidelity, measure

    steals = iter([0.2, 0.0, 0.3, 0.3, 0.3])
    taken: list[int | None] = []

    def fake_measure(sc: object, seed: int | None = None, python: str | None = None,
                     watch: bool = True) -> Trace:
        assert watch is False
        taken.append(seed)
        t = trace([100.0, 100.0, 200.0, 200.0])
        t.summary = {"lab": {"other_cpu_cores": 0.0, "steal_cores": next(steals)}}
        return t

    monkeypatch.setattr(measure, "measure", fake_measure)
    monkeypatch.setattr(fidelity, "loadavg", lambda: [0.1, 0.1, 0.1])
    result = fidelity.run_case(SCENARIO, runs=2, seeds=2)
    first, second = result["conditions"]
    # run 1: stolen from, taken again, then quiet; run 2: busy three times, the last kept
    assert taken == [taken[0]] * 2 + [taken[0] + 1] * 3
    assert (first["busy"], len(first["set_aside"])) == (False, 1)
    assert (second["busy"], len(second["set_aside"])) == (True, fidelity.RETAKES)
    assert result["busy_runs"] == 1
    md = format_report({"environment": {}, "seconds": 1, "agree": 1, "total": 1,
                        "cases": [{**result, "case": "x", "mechanism": "m", "notes": ""}]})
    assert "(1 busy); 3 set aside |" in md


def test_compare_cautions_when_the_host_stole_time() -> None:
    from wsgiscope.app.lab.compare import _cautions

    sim = trace([100.0, 100.0])
    quiet, stolen = trace([100.0, 100.0]), trace([100.0, 100.0])
    quiet.summary = {"lab": {"other_cpu_cores": 0.0, "steal_cores": 0.02}}
    stolen.summary = {"lab": {"other_cpu_cores": 0.0, "steal_cores": 0.2}}
    assert not any("steal" in c for c in _cautions(sim, quiet))
    assert any("took 0.20 cores' time from it (steal)" in c for c in _cautions(sim, stolen))
