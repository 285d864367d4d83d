"""Replicas that share nothing, behind Debian's haproxy configured from docker/haproxy.cfg (the
shipped example with only its addresses replaced): a go build through haproxy fetches each
module file from the upstream once in total; a replica killed with SIGKILL under a loop of
requests costs nothing once haproxy has marked it down; a replica stopped with SIGTERM leaves
through a failing /readyz before its listener closes, so nothing fails; and a replica whose
upstream is a central gomodproxy (offices as a tree) builds with verification on."""

from __future__ import annotations

import csv
import http.client
import io
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

import module_tree as mt
from conftest import REPO, assert_go_downloads_match, assert_go_lists_and_builds
from conftest import _test_failed, downloadable_versions
from polling import stop_process, wait_for

EXAMPLE = REPO / "docker" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BACKEND = "gomodproxy_replicas"
REPLICAS = 3
# The request loop: how long it runs, how many clients, and when the replica is stopped.
LOOP_SECONDS = 6.0
LOOP_CLIENTS = 4
LOOP_MAX_REQUESTS = 200000
STOP_AFTER = 1.5
# The shipped default --drain-grace: the SIGTERM test runs the replicas without overriding it.
DRAIN_GRACE = 1.0

pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_from_example(port: int, replica_ports: list[int], stats_socket: Path) -> str:
    """docker/haproxy.cfg with the listen address, the stats socket and the server addresses
    replaced, logging sent to stderr; every other line exactly as shipped."""
    out, servers, replaced = [], 0, set()
    for line in EXAMPLE.read_text().splitlines():
        words = line.split()
        if words[:2] == ["log", "/dev/log"]:
            line, _ = "    log stderr format raw local0", replaced.add("log")
        elif words[:1] == ["bind"]:
            line, _ = f"    bind 127.0.0.1:{port}", replaced.add("bind")
        elif words[:2] == ["stats", "socket"]:
            line = line.replace(words[2], str(stats_socket))
            replaced.add("stats")
        elif words[:1] == ["server"]:
            assert servers < len(replica_ports), "the example names more servers than replicas"
            line = f"    server {words[1]} 127.0.0.1:{replica_ports[servers]} " + \
                   " ".join(words[3:])
            servers += 1
        out.append(line)
    assert replaced == {"log", "bind", "stats"} and servers == len(replica_ports), (
        f"{EXAMPLE} changed shape: replaced {replaced}, {servers} server lines")
    return "\n".join(out) + "\n"


class HAProxy:
    def __init__(self, workdir: Path, replica_ports: list[int]):
        self.port = free_port()
        self.socket = workdir / "haproxy.sock"
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(config_from_example(self.port, replica_ports, self.socket))
        self.log_path = workdir / "haproxy.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "HAProxy":
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True,
                               text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: self.socket.exists() and self.servers(), 10, "haproxy's stats socket")
        wait_for(lambda: all(s["status"] == "UP" for s in self.servers().values()), 15,
                 "every replica UP in haproxy")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def servers(self) -> dict[str, dict]:
        """The backend's servers from `show stat` on the stats socket, by name."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                sock.sendall(b"show stat\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return {}
        text = b"".join(chunks).decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows
                if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")}

    def stop(self) -> None:
        stop_process(self.proc, 10)
        if getattr(self, "_log", None) is not None:
            self._log.close()


@pytest.fixture
def make_haproxy(tmp_path, request):
    started: list[HAProxy] = []

    def make(replica_ports: list[int]) -> HAProxy:
        front = HAProxy(tmp_path, replica_ports)
        started.append(front)
        return front.start()

    yield make
    for front in started:
        front.stop()
    if _test_failed(request):
        for front in started:
            print("===== haproxy log (last lines) =====")
            print("\n".join(front.log_path.read_text(errors="replace").splitlines()[-200:]))


@pytest.fixture
def replicas(tree, make_upstream, start_proxy, make_haproxy):
    """(upstream, [three proxies], haproxy): every replica fills from the same upstream."""
    upstream = make_upstream(tree.root, "origin")
    proxies = [start_proxy(upstream.url) for _ in range(REPLICAS)]
    return upstream, proxies, make_haproxy([p.port for p in proxies])


def module_file_paths(tree: mt.ModuleTree) -> list[str]:
    return [mv.url_path(suffix) for mv in downloadable_versions(tree)
            for suffix in (".info", ".mod", ".zip")]


@dataclass
class Outcome:
    start: float
    end: float
    path: str
    status: Optional[int]
    error: Optional[str] = None


@dataclass
class RequestLoop:
    """LOOP_CLIENTS keep-alive clients asking haproxy for `paths` round-robin until stopped,
    bounded by LOOP_SECONDS and LOOP_MAX_REQUESTS; every answer is recorded."""
    port: int
    paths: list[str]
    expected: dict[str, bytes]
    outcomes: list[Outcome] = field(default_factory=list)

    def run(self, during) -> None:
        stop = threading.Event()
        lock = threading.Lock()
        deadline = time.monotonic() + LOOP_SECONDS

        def client(offset: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            i = offset
            while not stop.is_set() and time.monotonic() < deadline:
                path = self.paths[i % len(self.paths)]
                i += 1
                start = time.monotonic()
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    body = resp.read()
                    wrong = resp.status == 200 and body != self.expected[path]
                    outcome = Outcome(start, time.monotonic(), path, resp.status,
                                      "wrong body" if wrong else None)
                except (OSError, http.client.HTTPException) as exc:
                    outcome = Outcome(start, time.monotonic(), path, None, repr(exc))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                with lock:
                    self.outcomes.append(outcome)
                    if len(self.outcomes) >= LOOP_MAX_REQUESTS:
                        stop.set()
            conn.close()

        threads = [threading.Thread(target=client, args=(n * 7,)) for n in range(LOOP_CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            during()
        finally:
            for thread in threads:
                thread.join(LOOP_SECONDS + 30)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200 or o.error]


def watch_down(front: HAProxy, server: str, timeout: float) -> dict:
    """Polls haproxy until `server` is DOWN; returns the time and haproxy's check status then."""
    def down():
        row = front.servers().get(server)
        if row and row["status"].startswith("DOWN"):
            return {"at": time.monotonic(), "check_status": row["check_status"]}
        return None

    return wait_for(down, timeout, f"haproxy to mark {server} DOWN", interval=0.02)


def front_get(front: HAProxy, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (path, resp.status, body[:200])
        return body
    finally:
        conn.close()


def warm(front: HAProxy, tree: mt.ModuleTree) -> dict[str, bytes]:
    """Every module file once through haproxy, so each sits in its replica's cache."""
    expected = {}
    for path in module_file_paths(tree):
        expected[path] = front_get(front, path)
        assert expected[path] == tree.file_bytes(path), path
    return expected


def test_go_build_through_haproxy_fetches_each_file_upstream_once(tree, replicas, make_go):
    upstream, proxies, front = replicas
    go = make_go(front.url)
    assert_go_downloads_match(go, tree)
    assert_go_lists_and_builds(go)
    # A second client with an empty module cache: everything from the replicas' caches.
    go.fresh_modcache()
    assert_go_downloads_match(go, tree)

    fetched = [p for p in upstream.paths() if p.endswith((".info", ".mod", ".zip"))]
    assert fetched, upstream.paths()
    twice = sorted({p for p in fetched if fetched.count(p) > 1})
    assert not twice, f"fetched from the upstream more than once: {twice}"
    for mv in downloadable_versions(tree):
        assert upstream.count(mv.url_path(".zip")) == 1, mv.url_path(".zip")
    # The paths were spread: every replica answered some of them.
    answered = {name: int(row["hrsp_2xx"]) for name, row in front.servers().items()}
    assert len(answered) == REPLICAS and all(n > 0 for n in answered.values()), answered
    print(f"upstream fetches of module files: {len(fetched)} distinct {len(set(fetched))}; "
          f"2xx answers per replica: {answered}")


def slow_download(port: int, path: str, outcome: dict, started: threading.Event) -> None:
    """Reads `path` through haproxy at about 8 MiB/s, so a 40 MiB answer is in flight for
    seconds; records the bytes read and what ended it (http.client's read(amt) ends quietly
    at a premature end of the connection, so a short body is told from the Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    received = 0
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        outcome["status"] = resp.status
        length = int(resp.headers["Content-Length"])
        while chunk := resp.read(256 * 1024):
            received += len(chunk)
            outcome["received"] = received
            started.set()
            time.sleep(0.03)
        outcome["error"] = None if received == length else f"cut off at {received} of {length}"
    except (OSError, http.client.HTTPException) as exc:
        outcome["error"] = repr(exc)
    finally:
        outcome["received"] = received
        started.set()
        conn.close()


def big_zip_and_its_replica(tree: mt.ModuleTree, proxies: list, front: HAProxy):
    """The 40 MiB zip's path, fetched once through haproxy, and the replica (and its name in
    haproxy) that it hashes to, read from the replicas' access logs."""
    big_zip = tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    assert front_get(front, big_zip) == tree.file_bytes(big_zip)
    [index] = [i for i, p in enumerate(proxies) if f"GET {big_zip} 200" in p.log_text()]
    return big_zip, proxies[index], f"replica{index + 1}"


def run_with_a_download_in_flight(tree: mt.ModuleTree, replicas, disrupt):
    """Runs the small-file loop through haproxy while the 40 MiB zip downloads slowly from the
    replica it hashes to; once the download is under way, `disrupt(victim, its haproxy name,
    the download's outcome so far, marks)` acts on that replica. Returns (loop, the zip's path,
    the download's outcome, marks)."""
    _, proxies, front = replicas
    loop = RequestLoop(front.port, module_file_paths(tree), warm(front, tree))
    big_zip, victim, name = big_zip_and_its_replica(tree, proxies, front)
    big: dict = {}
    reading = threading.Event()
    reader = threading.Thread(target=slow_download, args=(front.port, big_zip, big, reading))
    marks: dict = {}

    def start_then_disrupt() -> None:
        reader.start()
        time.sleep(STOP_AFTER)
        assert reading.wait(10)
        disrupt(victim, name, big, marks)

    loop.run(start_then_disrupt)
    reader.join(60)
    return loop, big_zip, big, marks


def test_sigkill_of_a_replica_fails_nothing_once_it_is_marked_down(tree, replicas):
    """Counts what a crash costs: the small-file loop's failures before and after haproxy marks
    the replica down, and a 40 MiB download the crash cuts off in flight (a response already
    started cannot be retried); the same download, asked again, then succeeds elsewhere."""
    front = replicas[2]

    def kill(victim, name: str, _: dict, marks: dict) -> None:
        marks["killed"] = time.monotonic()
        victim.kill()
        marks.update(watch_down(front, name, 10))

    loop, big_zip, big, marks = run_with_a_download_in_flight(tree, replicas, kill)
    failures = loop.failures()
    after_down = [o for o in failures if o.start >= marks["at"]]
    in_flight = [o for o in failures if o.start < marks["at"]]
    print(f"SIGKILL: {len(loop.outcomes)} requests, marked down "
          f"{marks['at'] - marks['killed']:.2f}s after the kill ({marks['check_status']}), "
          f"{len(in_flight)} failed before that, {len(after_down)} after; the 40 MiB download "
          f"in flight: {big['received']} bytes, then {big['error']}")
    assert len(loop.outcomes) > 100
    assert any(o.start > marks["at"] + 1 for o in loop.outcomes), "the loop ended too soon"
    assert not after_down, after_down[:10]
    # The rest kept answering throughout: a failure is only ever one the kill caught in flight.
    assert all(o.start >= marks["killed"] - 0.5 for o in in_flight), in_flight[:10]
    # Cut off, never completed with wrong bytes; asked again, another replica serves it whole.
    assert big["status"] == 200 and big["error"] is not None
    assert 0 < big["received"] < len(tree.file_bytes(big_zip))
    assert front_get(front, big_zip) == tree.file_bytes(big_zip)


def test_sigterm_takes_a_replica_out_through_readyz_before_it_stops_listening(tree, replicas):
    """Shipped --drain-grace: haproxy sees /readyz 503 (L7STS) and takes the replica out while
    its listener is still open, so no request fails or waits on a retry, and a 40 MiB download
    in flight on that replica completes during the drain."""
    front = replicas[2]

    def stop(victim, name: str, big: dict, marks: dict) -> None:
        marks["signalled"] = time.monotonic()
        marks["read_at_signal"] = big["received"]
        victim.stopped_by_test = True
        victim.proc.send_signal(signal.SIGTERM)
        marks.update(watch_down(front, name, 10))
        marks["exit_code"] = victim.proc.wait(30)
        marks["exited"] = time.monotonic()

    loop, _, big, marks = run_with_a_download_in_flight(tree, replicas, stop)
    failures = loop.failures()
    after = [o for o in loop.outcomes if o.start >= marks["signalled"]]
    slowest = max(o.end - o.start for o in after)
    print(f"SIGTERM: {len(loop.outcomes)} requests, {len(failures)} failed; marked down "
          f"{marks['at'] - marks['signalled']:.2f}s after the signal ({marks['check_status']}); "
          f"exited after {marks['exited'] - marks['signalled']:.2f}s; slowest request after the "
          f"signal {slowest * 1000:.0f} ms; the 40 MiB download in flight: {big['received']} "
          f"bytes, {big['error'] or 'complete'}")
    assert marks["exit_code"] == 0
    assert marks["check_status"] == "L7STS", marks
    assert marks["at"] - marks["signalled"] < DRAIN_GRACE, marks
    assert not failures, failures[:10]
    assert any(o.start > marks["at"] + 1 for o in loop.outcomes), "the loop ended too soon"
    assert big["status"] == 200 and big["error"] is None, big
    assert marks["read_at_signal"] < big["received"], "the download was not in flight"


def test_replica_with_a_central_gomodproxy_upstream_builds_verified(tree, make_upstream,
                                                                    make_sumdb, start_proxy,
                                                                    make_go):
    """An office replica names the central proxy as its only tier and its checksum database
    mirror; it verifies what it caches, and go verifies through it."""
    upstream = make_upstream(tree.root, "origin")
    sumdb = make_sumdb(tree.root)
    central = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb")
    office = start_proxy(central.url, "--sumdb", f"{sumdb.name}={central.url}/sumdb/{sumdb.name}",
                         "--sumdb-key", sumdb.vkey, "--verify", "sumdb")
    go = make_go(office.url)
    go.gosumdb = sumdb.vkey
    assert_go_lists_and_builds(go)
    # Each record was asked of the database once, by the centre; the office asked the centre.
    lookups = [p for p in sumdb.paths() if p.startswith("/lookup/")]
    assert lookups and len(lookups) == len(set(lookups)), sumdb.paths()
    assert f"/sumdb/{sumdb.name}/lookup/" in central.log_text()
