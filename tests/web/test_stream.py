import json
import time

import pytest
import simple_websocket
from wsgiscope import simulator
from wsgiscope.app.runs import REQUEST_STATES, THREAD_STATES, pick_tick, prepare, run_key
from wsgiscope.app.stream import CHUNK_FRAMES, LEAD_S, Session

TEN_USERS = "dev-single-thread"


class FakeSocket:
    """Collects what a Session sends."""

    def __init__(self):
        self.sent = []

    def send(self, text):
        self.sent.append(json.loads(text))

    def take(self, kind=None):
        out = [m for m in self.sent if kind is None or m["type"] == kind]
        self.sent = [m for m in self.sent if not (kind is None or m["type"] == kind)]
        return out


def scenario(name=TEN_USERS):
    return simulator.presets.get(name).scenario


def started(name=TEN_USERS, **extra):
    ws = FakeSocket()
    s = Session(ws, 4000)
    s.handle(json.dumps({"op": "start", "scenario": scenario(name), **extra}))
    return s, ws


def test_pick_tick_is_a_1_2_5_step_within_the_frame_budget():
    assert pick_tick(10_000, 4000) == 5.0
    assert pick_tick(360, 4000) == 0.1
    assert pick_tick(50_000, 4000) == 20.0
    for end in (1, 7, 123.4, 9_999, 86_400_000):
        tick = pick_tick(end, 4000)
        assert end / tick <= 4000 + 1e-9


def rebuild(meta, chunks):
    """Undo the wire encoding: frames as simulator.frames.sample gives them."""
    out = []
    threads, procs = meta["threads"], meta["processes"]
    for c in chunks:
        for j, t in enumerate(c["t"]):
            th = {}
            for h, key in enumerate(threads):
                state = THREAD_STATES[c["th"][(j * len(threads) + h) * 2]]
                if state != "absent":
                    th[key] = [state, c["th"][(j * len(threads) + h) * 2 + 1]]
            gil = {}
            for p, proc in enumerate(procs):
                holder = c["g"][j * len(procs) + p]
                gil[proc["key"]] = threads[holder] if holder >= 0 else ""
            out.append({"t": t, "backlog": c["b"][j], "threads": th, "gil": gil,
                        "busy_cores": c["c"][j], "in_flight": c["q"][j],
                        "completed": c["d"][j], "failed": c["x"][j], "connecting": c["k"][j]})
    return out


@pytest.mark.parametrize("name", [TEN_USERS, "gunicorn-gthread-1x4", "gil-cpu-threads"])
def test_frames_on_the_wire_match_the_engine(name):
    s, ws = started(name, speed="max", play=True)
    while s.busy:
        s.pump()
    meta = ws.take("meta")[0]
    chunks = ws.take("frames")
    assert ws.take("end")
    trace = simulator.run(scenario(name))
    expected = simulator.frames.sample(trace, meta["tick_ms"])
    assert rebuild(meta, chunks) == expected
    assert chunks[-1]["last"] is True
    # every request span, finished request and narration line arrives exactly once
    spans = [tuple(c["rs"][i:i + 4]) for c in chunks for i in range(0, len(c["rs"]), 4)]
    want = sorted((r, round(a, 3), round(b, 3), REQUEST_STATES.index(st))
                  for r, a, b, st in simulator.frames.spans(trace)["requests"])
    assert sorted(spans) == want
    assert sorted(r[0] for c in chunks for r in c["done"]) == list(range(len(trace.requests)))
    lines = [line[1] for c in chunks for line in c["n"]]
    assert lines == [text for _, text in simulator.narration.narrate(trace)]


def test_the_ten_users_finish_one_second_apart():
    s, ws = started(speed="max", play=True)
    while s.busy:
        s.pump()
    done = sorted((r for c in ws.take("frames") for r in c["done"]), key=lambda r: r[0])
    finished = [r[4] / 1000 for r in done]
    assert [round(f) for f in finished] == list(range(1, 11))


def test_start_sends_meta_and_the_first_frames_then_waits_while_paused():
    s, ws = started()
    meta = ws.take("meta")[0]
    assert meta["key"] == run_key(simulator.load_scenario(scenario()).to_dict(), None)
    assert meta["n_requests"] == 10 and meta["threads"] == ["server/main"]
    first = ws.take("frames")
    assert first and first[0]["i"] == 0
    assert not s.busy  # paused: nothing more goes out
    s.pump()
    assert ws.take("frames") == []


def test_a_short_run_arrives_whole_while_paused():
    """A run shorter than the first moments the page is sent goes out whole, even when it
    has more frames than one chunk: a paused page has it complete (a lesson's answer)."""
    s, ws = started("gil-cpu-processes")
    assert s.run is not None and s.run.n > CHUNK_FRAMES
    assert s.run.times[-1] < LEAD_S * 1000.0
    frames = ws.take("frames")
    assert len(frames) > 1 and sum(len(f["t"]) for f in frames) == s.run.n
    assert ws.take("end") == [{"type": "end", "n_frames": s.run.n}]


def test_seek_beyond_what_was_sent_sends_up_to_there():
    s, ws = started()
    ws.take()
    s.handle(json.dumps({"op": "seek", "t": 5000}))
    chunks = ws.take("frames")
    assert chunks and chunks[-1]["t"][-1] >= 5000
    assert chunks[0]["i"] == s.frame_index(0) or chunks[0]["i"] > 0
    s.handle(json.dumps({"op": "seek", "t": 1000}))  # back: the browser has it already
    assert ws.take("frames") == []


def test_step_goes_to_the_next_narrated_moment():
    s, ws = started()
    ws.take()
    lines = s.run.line_times
    s.handle(json.dumps({"op": "step", "t": 2500}))
    goto = ws.take("goto")[0]["t"]
    assert goto == min(t for t in lines if t > 2500)
    assert s.run.times[s.sent - 1] >= goto


def test_play_at_speed_paces_the_frames():
    s, ws = started(speed=1)
    ws.take()
    s.handle(json.dumps({"op": "play", "t": 0}))
    sent_at_start = s.sent
    time.sleep(0.05)
    s.pump()
    assert s.sent > sent_at_start  # moving
    assert s.sent < s.run.n  # but not everything at once
    s.handle(json.dumps({"op": "pause", "t": 1000}))
    frozen = s.sent
    time.sleep(0.02)
    s.pump()
    assert s.sent == frozen


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", '"op"'),
        ('{"op": "fly"}', "unknown op 'fly'"),
        ('{"op": "speed", "value": 1000}', "speed must be a number from 0.1 to 100"),
        ('{"op": "seek", "t": "soon"}', "t must be a time in ms"),
        ('{"op": "inspect", "id": 99}', "id must be a request number from 0 to 9"),
        ('{"op": "start", "scenario": {"server": {"kind": "werkzeug", "processes": 0}}}',
         "endpoints"),
        ('{"op": "start", "scenario": {"endpoints": {"/a": [{"io_ms": 1}]}, "workload": '
         '[{"path": "/a"}], "server": {"kind": "gunicorn", "workers": 0}}}', "server.workers"),
    ],
)
def test_a_malformed_message_gets_an_error_frame_and_the_run_goes_on(app, message, words):
    s, ws = started()
    ws.take()
    with app.app_context():
        s.handle(message)
    errors = ws.take("error")
    assert len(errors) == 1
    assert words in errors[0]["error"] or words == errors[0]["field"]
    s.handle(json.dumps({"op": "seek", "t": 3000}))  # still usable
    assert ws.take("frames")


def test_ops_before_start_are_refused_politely():
    ws = FakeSocket()
    s = Session(ws, 4000)
    s.handle('{"op": "play"}')
    assert "send start first" in ws.take("error")[0]["error"]


def test_inspect_renders_the_lifecycle(app):
    s, ws = started()
    ws.take()
    with app.app_context():
        s.handle('{"op": "inspect", "id": 2}')
    html = ws.take("inspect")[0]["html"]
    assert "user 3" in html
    for stage in ("kernel backlog", "accept", "parse", "before_request", "view", "teardown",
                  "write"):
        assert f'<span class="wf-label">{stage}</span>' in html


def test_resume_carries_on_from_the_frames_the_browser_has():
    s, ws = started(speed="max", play=True)
    s.pump()
    meta = ws.take("meta")[0]
    got = ws.take("frames")
    have = got[0]["i"] + len(got[0]["t"])
    ws2 = FakeSocket()
    s2 = Session(ws2, 4000)
    s2.handle(json.dumps({"op": "start", "scenario": scenario(), "speed": "max", "play": True,
                          "resume": {"key": meta["key"], "have": have}}))
    while s2.busy:
        s2.pump()
    assert ws2.take("meta")[0]["key"] == meta["key"]
    chunks = ws2.take("frames")
    assert chunks[0]["i"] == have
    full = prepare(simulator.run(scenario()), 4000)
    assert sum(len(c["t"]) for c in chunks) == full.n - have


def test_measured_and_simulated_traces_encode_the_same_way():
    trace = simulator.run(scenario())
    again = simulator.Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
    a, b = prepare(trace, 4000).whole(), prepare(again, 4000).whole()
    assert a["frames"]["b"] == b["frames"]["b"] and a["frames"]["rs"] == b["frames"]["rs"]


# --- against the real server (gunicorn, gthread) -------------------------------------------


def receive_json(ws, timeout=10.0):
    text = ws.receive(timeout=timeout)
    assert text is not None, "no message in time"
    return json.loads(text)


def test_live_socket_protocol(live_server):
    ws = simple_websocket.Client.connect(f"ws://{live_server}/ws")
    try:
        ws.send("{broken")
        err = receive_json(ws)
        assert err["type"] == "error" and "not valid JSON" in err["error"]
        ws.send(json.dumps({"op": "start", "scenario": scenario(), "speed": "max", "play": True}))
        meta = receive_json(ws)
        assert meta["type"] == "meta"
        frames = 0
        while True:
            msg = receive_json(ws)
            if msg["type"] == "frames":
                frames += len(msg["t"])
            if msg["type"] == "end":
                break
        assert frames == meta["n_frames"]
        ws.send('{"op": "speed", "value": "fast"}')  # still open after the run ended
        assert receive_json(ws)["field"] == "speed"
        ws.send('{"op": "step", "t": 0}')
        assert receive_json(ws)["type"] == "goto"
    finally:
        ws.close()


def test_two_sockets_own_separate_runs(live_server):
    a = simple_websocket.Client.connect(f"ws://{live_server}/ws")
    b = simple_websocket.Client.connect(f"ws://{live_server}/ws")
    try:
        a.send(json.dumps({"op": "start", "scenario": scenario(TEN_USERS)}))
        b.send(json.dumps({"op": "start", "scenario": scenario("gunicorn-sync-2")}))
        meta_a, meta_b = receive_json(a), receive_json(b)
        assert meta_a["threads"] == ["server/main"]
        assert meta_b["threads"] != meta_a["threads"]
        a.send('{"op": "inspect", "id": 0}')
        while (msg := receive_json(a))["type"] != "inspect":
            pass
        assert "GET /sleep" in msg["html"]
    finally:
        a.close()
        b.close()
