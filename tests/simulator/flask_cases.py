"""One endpoint for each path Flask 3.1 can take a request down, with the hooks it runs
and the status it answers: shared by the simulator's tests and the lab's."""

from __future__ import annotations

from typing import Any

HEAD = ["recv", "parse", "context", "match", "before_request"]
TAIL = ["after_request", "teardown", "write"]

CASES: dict[str, tuple[list[dict[str, Any]], list[str], int, str]] = {
    # path: (segments, stages after before_request up to after_request, status, outcome)
    "/ok": ([{"cpu_ms": 1}], ["view"], 200, ""),
    "/empty": ([], ["view"], 200, ""),
    "/login": ([{"io_ms": 2}, {"short_circuit": 401}], [], 401, "returned a 401"),
    "/boom": ([{"cpu_ms": 1}, {"raise": "unhandled"}], ["view", "error"], 500,
              "teardown gets the exception"),
    "/gone": ([{"abort": 404}], ["view", "error"], 404, "teardown gets None"),
    "/conflict": ([{"raise": 409}], ["view", "error"], 409, "teardown gets None"),
    "/nowhere": ([{"route": "missing"}], ["error"], 404, "before_request still ran"),
    "/post-only": ([{"route": "other_method"}], ["error"], 405, "MethodNotAllowed"),
}


def scenario(cases: dict[str, Any] = CASES) -> dict[str, Any]:
    return {
        "server": {"kind": "werkzeug", "threaded": True},
        "endpoints": {path: case[0] for path, case in cases.items()},
        "workload": [{"at_ms": 30 * i, "count": 1, "path": p} for i, p in enumerate(cases)],
    }
