"""The host's steal is judged over the requests' own window, not the whole run."""

from __future__ import annotations

from wsgiscope.app.lab.measure import _LoadMeter, _requests_window


def _meter(steals: list[tuple[float, float]]) -> _LoadMeter:
    meter = _LoadMeter.__new__(_LoadMeter)
    meter.steals = steals
    meter.result = {"steal_cores": 0.0}
    return meter


def test_a_stall_during_the_requests_counts_in_full() -> None:
    # a 1 s run: server and driver start until 0.4 s, the requests from 0.40 to 0.72 s and
    # 30 ms stolen meanwhile; the samples (every 50 ms in a run) nearest the window
    meter = _meter([(0.0, 0.0), (0.38, 0.0), (0.75, 0.03), (1.0, 0.03)])
    meter.steal_over(_requests_window([{"planned": 400.0, "finished": 700.0},
                                       {"planned": 400.0, "finished": 720.0}]))
    # 0.03 cores over the whole second, 0.081 over the window the requests ran in
    assert meter.result["steal_cores"] == round(0.03 / 0.37, 3)


def test_no_requests_leaves_the_run_average() -> None:
    meter = _meter([(0.0, 0.0), (1.0, 0.02)])
    meter.steal_over(_requests_window([{"planned": None, "finished": None}]))
    assert meter.result["steal_cores"] == 0.0
