"""Rooms: the teacher's secret drives, students follow and answer, messages stay small."""

from __future__ import annotations

import json
import time

import pytest
import servekit
import simple_websocket
from wsgiscope import simulator
from wsgiscope.app.pubsub import MemoryBroker
from wsgiscope.app.rooms import Member, RoomError, check_code, new_room, secret_for

KEY = b"k" * 32


def room(broker: MemoryBroker, code: str, role: str, secret: str = "") -> tuple[Member, object]:
    sub = broker.subscribe(f"room:{code}")
    m = Member(code, KEY, lambda text: broker.publish(f"room:{code}", text))
    m.handle(json.dumps({"op": "hello", "role": role, "secret": secret}))
    return m, sub


def delivered(member: Member, sub) -> list[dict]:
    out = []
    while (text := sub.get(timeout=0)) is not None:
        if member.wants(text):
            out.append(json.loads(text[2:]))
    return out


def test_codes_and_secrets() -> None:
    code, secret = new_room(KEY)
    assert check_code(code.lower()) == code and len(code) == 6
    assert secret == secret_for(KEY, code) != secret_for(b"other", code)
    for bad in ("", "ABC", "ABCDEF1", "O0O0O0", "ab-cde"):
        with pytest.raises(RoomError, match="a room code is 6 letters"):
            check_code(bad)


def test_only_the_secret_drives_and_students_see_no_answers() -> None:
    broker = MemoryBroker()
    code, secret = new_room(KEY)
    teacher, tsub = room(broker, code, "teacher", secret)
    with pytest.raises(RoomError, match="secret does not match"):
        room(broker, code, "teacher", "guess")
    a, asub = room(broker, code, "student")
    b, bsub = room(broker, code, "student")
    assert {m["type"] for m in delivered(teacher, tsub)} == {"hello"}
    scenario = simulator.presets.get("dev-single-thread").scenario
    teacher.handle(json.dumps({"op": "run", "lesson": "dev-single-thread",
                               "scenario": scenario, "seed": 1}))
    teacher.handle(json.dumps({"op": "play", "t": 1234.5, "playing": True, "speed": 2,
                               "inspect": 3, "question": "wait"}))
    got = delivered(a, asub)
    assert [m["type"] for m in got] == ["run", "play"]
    assert got[1] == {"type": "play", "t": 1234.5, "playing": True, "speed": 2.0, "inspect": 3,
                      "question": "wait", "from": teacher.id}
    assert len(json.dumps(got[1])) < 160  # a playhead message is tiny
    # a student may not drive, and its answer goes to the teacher only
    with pytest.raises(RoomError, match="only the teacher's page drives the room"):
        a.handle(json.dumps({"op": "play", "t": 0, "playing": False}))
    assert a.handle(json.dumps({"op": "answer", "lesson": "dev-single-thread",
                                "kind": "number", "value": 9.5})) == {"type": "answered"}
    answers = [m for m in delivered(teacher, tsub) if m["type"] == "answer"]
    assert answers == [{"type": "answer", "lesson": "dev-single-thread", "kind": "number",
                        "value": 9.5, "from": a.id}]
    assert all(m["type"] != "answer" for m in delivered(b, bsub))
    b.leave()
    assert [m["type"] for m in delivered(teacher, tsub)][-1:] == ["bye"]


@pytest.mark.parametrize(("message", "words"), [
    ("not json", "not valid JSON"),
    ('{"op": "play"}', "say hello first"),
    ('{"op": "hello", "role": "admin"}', "role must be teacher or student"),
])
def test_a_bad_message_is_one_line(message: str, words: str) -> None:
    m = Member("ABCDEF", KEY, lambda text: None)
    with pytest.raises(RoomError, match=words):
        m.handle(message)


def test_bad_fields_name_themselves() -> None:
    broker = MemoryBroker()
    code, secret = new_room(KEY)
    teacher, _ = room(broker, code, "teacher", secret)
    student, _ = room(broker, code, "student")
    for member, msg, field in [
        (teacher, {"op": "play", "t": -1}, "t"),
        (teacher, {"op": "play", "t": 1, "speed": 1000}, "speed"),
        (teacher, {"op": "play", "t": 1, "inspect": "x"}, "inspect"),
        (teacher, {"op": "run", "scenario": []}, "scenario"),
        (student, {"op": "answer", "kind": "essay", "value": 1}, "kind"),
        (student, {"op": "answer", "kind": "number", "value": float("nan")}, "value"),
    ]:
        with pytest.raises(RoomError) as info:
            member.handle(json.dumps(msg))
        assert info.value.field == field
        assert "\n" not in str(info.value)


def test_create_and_join_pages(client) -> None:
    made = client.post("/rooms").get_json()
    assert len(made["code"]) == 6 and len(made["secret"]) == 32
    assert made["join"].endswith(f"/r/{made['code']}")
    resp = client.get(f"/r/{made['code'].lower()}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/?room={made['code']}")
    assert client.get("/r/nope").status_code == 404


def connect(address: str, code: str) -> simple_websocket.Client:
    return simple_websocket.Client.connect(f"ws://{address}/rooms/{code}/ws")


def next_of(ws, kind: str, timeout: float = 10.0) -> dict:
    return servekit.next_of(ws, kind, timeout)


def test_a_room_over_live_sockets(live_server) -> None:
    import urllib.request

    req = urllib.request.Request(f"http://{live_server}/rooms", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        made = json.loads(resp.read())
    code = made["code"]
    teacher = connect(live_server, code)
    students = [connect(live_server, code) for _ in range(3)]
    try:
        teacher.send(json.dumps({"op": "hello", "role": "teacher", "secret": made["secret"]}))
        assert next_of(teacher, "welcome")["role"] == "teacher"
        for s in students:
            s.send(json.dumps({"op": "hello", "role": "student"}))
            next_of(s, "welcome")
        hellos = {next_of(teacher, "hello")["from"] for _ in students}
        assert len(hellos) == 3
        teacher.send(json.dumps({"op": "play", "t": 500, "playing": False, "speed": 1,
                                 "inspect": -1, "question": "ask"}))
        for s in students:
            assert next_of(s, "play")["t"] == 500
        students[0].send(json.dumps({"op": "answer", "lesson": "x", "kind": "choice",
                                     "value": 1}))
        assert next_of(teacher, "answer")["value"] == 1
        # a wrong secret is refused, and that socket stays a bystander
        intruder = connect(live_server, code)
        intruder.send(json.dumps({"op": "hello", "role": "teacher", "secret": "0" * 32}))
        assert "secret does not match" in next_of(intruder, "error")["error"]
        intruder.close()
    finally:
        for ws in [teacher, *students]:
            ws.close()


def test_a_room_across_processes_through_redis(tmp_path) -> None:
    """Two serving processes (two brokers, two apps) share a room and its key through Redis:
    a teacher in one drives a student in the other."""
    from servekit import redis_server
    from wsgiscope.app import create_app
    from wsgiscope.app.pubsub import RedisBroker
    from wsgiscope.app.rooms import room_key

    with redis_server(tmp_path) as url:
        apps = [create_app({"TESTING": True, "REDIS_URL": url}) for _ in range(2)]
        keys = [room_key(app) for app in apps]
        assert keys[0] == keys[1]  # one key, so either process checks the teacher's secret
        brokers = [RedisBroker(url), RedisBroker(url)]
        try:
            assert all(b.wait_connected(5) for b in brokers)
            code, secret = new_room(keys[0])
            subs = [b.subscribe(f"room:{code}") for b in brokers]
            members = [Member(code, keys[i], lambda text, b=brokers[i]:
                              b.publish(f"room:{code}", text)) for i in range(2)]
            teacher, student = members
            teacher.handle(json.dumps({"op": "hello", "role": "teacher", "secret": secret}))
            student.handle(json.dumps({"op": "hello", "role": "student"}))
            teacher.handle(json.dumps({"op": "play", "t": 42, "playing": True}))
            deadline = time.monotonic() + 5
            got: list[dict] = []
            while time.monotonic() < deadline and not any(m["type"] == "play" for m in got):
                text = subs[1].get(timeout=0.2)
                if text is not None and student.wants(text):
                    got.append(json.loads(text[2:]))
            assert [m for m in got if m["type"] == "play"][0]["t"] == 42
        finally:
            from wsgiscope.app import serving

            for b in brokers + [serving.get(app).rooms for app in apps]:
                b.close()
