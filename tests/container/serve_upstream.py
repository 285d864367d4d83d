"""The test upstream (tests/support/test_upstream.py) as a service of the container test's compose
stack: serves the module tree mounted at TREE on 0.0.0.0:PORT inside its container, so the proxy
reaches it by its service name on the stack's network, and prints each request as
`upstream: GET PATH` for the test to read from `podman logs`. Ends on SIGTERM.

    python3 serve_upstream.py TREE PORT"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from test_upstream import TestUpstream  # noqa: E402


class ContainerUpstream(TestUpstream):
    listen_host = "0.0.0.0"

    def _record(self, record) -> None:
        super()._record(record)
        print(f"upstream: {record.method} {record.path}", flush=True)


def main() -> None:
    tree, port = Path(sys.argv[1]), int(sys.argv[2])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    server = ContainerUpstream(tree)
    server.port = port
    server.start()
    print(f"upstream listening on 0.0.0.0:{port}", flush=True)
    while not stopping.wait(1.0):
        pass
    server.stop()


if __name__ == "__main__":
    main()
