"""The lab's plumbing without servers: the record channel and the backlog sampler."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from wsgiscope.app.lab.recorder import RecordSink, read_records
from wsgiscope.app.lab.sampler import BacklogSampler, listen_queue, listening_ports


def test_records_from_threads_and_forked_processes_stay_whole_and_apart(tmp_path: Path) -> None:
    out = tmp_path / "records"
    out.mkdir()
    sink = RecordSink(out)
    pad = "x" * 3000  # longer than a pipe's atomic write, still one write() to a file

    def write(tag: str) -> None:
        for i in range(200):
            sink.write({"tag": tag, "i": i, "pad": pad})

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    pid = os.fork()
    if pid == 0:  # a forked child writes to its own file, never through the parent's
        try:
            write("child")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    sink.close()

    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"rec-{os.getpid()}.jsonl", f"rec-{pid}.jsonl"])
    records = list(read_records(out))
    assert len(records) == 5 * 200
    by_tag: dict[str, list[int]] = {}
    for rec in records:
        assert rec["pad"] == pad
        by_tag.setdefault(rec["tag"], []).append(rec["i"])
    assert {tag: sorted(v) for tag, v in by_tag.items()} == {
        tag: list(range(200)) for tag in ("t0", "t1", "t2", "t3", "child")
    }
    child = [json.loads(line) for line in (out / f"rec-{pid}.jsonl").read_text().splitlines()]
    assert {r["tag"] for r in child} == {"child"} and {r["pid"] for r in child} == {pid}


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "rec-1.jsonl").write_text('{"a": 1}\n{"a": 2')
    assert list(read_records(tmp_path)) == [{"a": 1}]


def test_the_sampler_sees_connections_wait_in_the_accept_queue() -> None:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients: list[socket.socket] = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        assert port in listening_ports()
        assert listen_queue(port) == 0
        sampler = BacklogSampler(port, interval_ms=1.0).start()
        try:
            for _ in range(200):  # until the sampler has seen the empty queue
                if sampler.samples:
                    break
                threading.Event().wait(0.005)
            for _ in range(3):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            for _ in range(200):  # until the sampler has polled the queue at depth 3
                if sampler.samples and sampler.samples[-1][1] == 3:
                    break
                threading.Event().wait(0.005)
            assert listen_queue(port) == 3
            conn, _ = lsock.accept()
            conn.close()
            assert listen_queue(port) == 2
        finally:
            sampler.stop()
        depths = [d for _t, d in sampler.samples]
        assert depths[0] == 0 and 3 in depths
        times = [t for t, _d in sampler.samples]
        assert times == sorted(times)
    finally:
        for c in clients:
            c.close()
        lsock.close()
    assert listen_queue(port) is None
