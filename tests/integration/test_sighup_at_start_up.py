"""A SIGHUP that reaches the proxy while it is still starting (a service manager's reload, say a
certificate renewal hook, racing a restart) must neither end it, as SIGHUP's default action
would, nor be lost: it is handled once the reloader is up. Start-up is held at a known point by
giving it a FIFO as its --config file, which it reads before anything else."""

from __future__ import annotations

import errno
import os
import signal
import subprocess

from conftest import LISTEN_RE, STARTUP_TIMEOUT, proxy_binary
from polling import wait_for


def open_writer(fifo) -> int | None:
    """A write end of `fifo`, once a reader has it open; None before."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return None
        raise


def test_a_sighup_during_start_up_is_handled_once_the_server_is_up(tree, make_upstream,
                                                                     tmp_path):
    upstream = make_upstream(tree.root)
    config = tmp_path / "gomodproxy.toml"
    os.mkfifo(config)
    log_path = tmp_path / "proxy.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOMODPROXY_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(proxy_binary()), "serve", "--config", str(config), "--listen", "127.0.0.1:0",
             "--cache-dir", str(tmp_path / "cache"), "--upstreams", upstream.url,
             "--verify", "off", "--probe-interval", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
    try:
        writer = wait_for(lambda: open_writer(config), STARTUP_TIMEOUT,
                          "the proxy opens its --config file")
        # Start-up is now reading the file, and stays there until the write end closes.
        proc.send_signal(signal.SIGHUP)
        os.write(writer, b'log_level = "info"\n')
        os.close(writer)
        listening = proc.stdout.readline().decode()
        assert LISTEN_RE.match(listening.encode()), \
            f"exit code {proc.wait(10)}, stderr:\n{log_path.read_text()}"
        wait_for(lambda: "SIGHUP: nothing to reread" in log_path.read_text(), 10,
                 "the held SIGHUP handled by the reloader")
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
