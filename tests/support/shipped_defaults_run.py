"""Runs `gomodproxy serve` as shipped, inside a network namespace of its own, and reports what a
client saw as JSON on stdout. The caller starts it under `unshare -n` (root): the namespace has
only loopback, so the public hosts the defaults name (goproxy.cn, goproxy.io, sum.golang.org)
are unreachable by construction, nothing leaves the machine, and the default listen address
127.0.0.1:8081 is free whatever else runs on the host.

    unshare -n python3 shipped_defaults_run.py --binary B --workdir DIR [--tree ROOT]
        [--get PATH]... [--await PATH TEXT] [--then CMD --then-home DIR] -- [serve flags]

--tree serves a module tree from a test upstream on 127.0.0.1 in the namespace; "{upstream}" in
a serve flag becomes its URL. The proxy runs in DIR (its default cache is DIR/var/cache). Each
--get is one request on a fresh connection, timed; --await polls PATH until its body contains
TEXT (at most AWAIT_SECONDS); --then runs a shell command with HOME=--then-home. Then SIGTERM,
and the exit status is reported.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_upstream import TestUpstream  # noqa: E402

LISTEN_RE = re.compile(r"^gomodproxy listening on http://([0-9.]+):(\d+)$")
STARTUP_SECONDS = 20.0
REQUEST_SECONDS = 60.0
AWAIT_SECONDS = 20.0
STOP_SECONDS = 40.0
THEN_SECONDS = 180.0


def get(port: int, path: str) -> dict:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_SECONDS)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return {"path": path, "status": response.status,
            "content_type": response.getheader("Content-Type"),
            "cache_control": response.getheader("Cache-Control"),
            "body": body.decode("utf-8", "replace"),
            "seconds": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--get", action="append", default=[])
    parser.add_argument("--await", dest="awaits", nargs=2, action="append", default=[])
    parser.add_argument("--then", help="a shell command to run while the proxy serves; its "
                        "exit status and output are reported")
    parser.add_argument("--then-home", type=Path, help="HOME for --then")
    parser.add_argument("flags", nargs="*")
    args = parser.parse_args()

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    upstream = TestUpstream(args.tree, "upstream").start() if args.tree else None
    flags = [f.replace("{upstream}", upstream.url if upstream else "") for f in args.flags]
    report: dict = {"flags": flags, "answers": [], "awaited": []}
    stderr_path = args.workdir / "proxy.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([args.binary, "serve", *flags], cwd=args.workdir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        # A proxy that never prints its listening line must not hold this process forever.
        watchdog = threading.Timer(STARTUP_SECONDS, proc.kill)
        watchdog.start()
        line = proc.stdout.readline().decode().rstrip("\n")
        watchdog.cancel()
        report["listening"] = line
        match = LISTEN_RE.match(line)
        if match:
            port = int(match.group(2))
            for path in args.get:
                report["answers"].append(get(port, path))
            for path, text in args.awaits:
                deadline = time.monotonic() + AWAIT_SECONDS
                seen = False
                while not seen and time.monotonic() < deadline:
                    seen = text in get(port, path)["body"]
                    if not seen:
                        time.sleep(0.2)
                report["awaited"].append({"path": path, "text": text, "seen": seen})
            if args.then:
                # Only what a user's shell would have: nothing of go's or the proxy's.
                env = {"HOME": str(args.then_home), "PATH": os.environ["PATH"],
                       "SHELL": "/bin/bash"}
                then = subprocess.run(["sh", "-c", args.then], env=env, cwd=args.then_home,
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      timeout=THEN_SECONDS)
                report["then"] = {"exit": then.returncode, "stdout": then.stdout,
                                  "stderr": then.stderr}
            proc.send_signal(signal.SIGTERM)
        try:
            report["exit"] = proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            report["exit"] = f"killed after {STOP_SECONDS}s"
    report["stderr"] = stderr_path.read_text(errors="replace")
    if upstream is not None:
        report["upstream_requests"] = [r.path for r in upstream.requests]
        upstream.stop()
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
