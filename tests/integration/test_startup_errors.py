"""A setting the process cannot use stops `gomodproxy serve` with exit status 2 and one line on
stderr naming the setting: never std::terminate, a core dump or a listening server. Every case
fails for root too (paths under a regular file, an address this machine does not have)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import proxy_binary

STARTUP_TIMEOUT = 30.0


def serve(tmp_path: Path, *flags: str, env_settings: dict | None = None
          ) -> subprocess.CompletedProcess:
    """`gomodproxy serve` with a fresh cache, no probes and no GOMODPROXY_* from the runner
    except `env_settings`; `flags` come last, so they override those."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOMODPROXY_")}
    env.update(env_settings or {})
    cmd = [str(proxy_binary()), "serve", "--listen", "127.0.0.1:0",
           "--cache-dir", str(tmp_path / "cache"), "--probe-interval", "0", *flags]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, timeout=STARTUP_TIMEOUT)


def assert_refused(proc: subprocess.CompletedProcess, setting: str) -> str:
    described = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 2, described
    assert proc.stdout == "", described  # no listening line: nothing was served
    assert "terminate" not in proc.stderr and "core dumped" not in proc.stderr, described
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), described
    assert lines[0].startswith(f"gomodproxy: {setting}: "), described
    return lines[0]


@pytest.fixture
def regular_file(tmp_path) -> Path:
    path = tmp_path / "regular"
    path.write_text("a file, so nothing can be created below it\n")
    return path


def test_access_log_that_cannot_be_opened(tmp_path, regular_file):
    line = assert_refused(serve(tmp_path, "--access-log", str(regular_file / "access.log")),
                          "access_log")
    assert str(regular_file / "access.log") in line and "Not a directory" in line
    line = assert_refused(serve(tmp_path, "--access-log", str(tmp_path)), "access_log")
    assert "Is a directory" in line


def test_ca_file_that_is_not_pem(tmp_path):
    for name, content in (("text.pem", "not a certificate\n"),
                          ("header.pem", "-----BEGIN CERTIFICATE-----\n"),
                          ("empty.pem", "")):
        ca_file = tmp_path / name
        ca_file.write_text(content)
        line = assert_refused(serve(tmp_path, "--ca-file", str(ca_file)), "ca_file")
        assert str(ca_file) in line and "flag --ca-file" in line
    line = assert_refused(serve(tmp_path, "--ca-file", str(tmp_path / "missing.pem")), "ca_file")
    assert "not a readable file" in line


def test_cache_dir_that_cannot_be_created_or_opened(tmp_path, regular_file):
    line = assert_refused(serve(tmp_path, "--cache-dir", str(regular_file / "cache")),
                          "cache_dir")
    assert str(regular_file / "cache") in line and "Not a directory" in line
    line = assert_refused(serve(tmp_path, "--cache-dir", str(regular_file)), "cache_dir")
    assert str(regular_file) in line
    # A directory that exists but that no one, root included, can create files in.
    line = assert_refused(serve(tmp_path, "--cache-dir", "/proc/self"), "cache_dir")
    assert "/proc/self" in line


def test_cache_dir_in_use_by_a_running_proxy(tmp_path, start_proxy):
    cache = tmp_path / "shared-cache"
    running = start_proxy("off", cache_dir=cache)
    line = assert_refused(serve(tmp_path, "--cache-dir", str(cache)), "cache_dir")
    assert "another gomodproxy" in line
    assert running.running() and running.get("/healthz").status == 200


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        line = assert_refused(serve(tmp_path, "--listen", address), "listen")
    assert address in line and "Address already in use" in line


def test_listen_addresses_that_cannot_be_bound(tmp_path):
    # 192.0.2.1 is TEST-NET-1: a valid address no interface here has.
    line = assert_refused(serve(tmp_path, "--listen", "192.0.2.1:8081"), "listen")
    assert "192.0.2.1:8081" in line and "Cannot assign requested address" in line
    for address in ("host.example:8081", "256.1.1.1:8081", "[1::2::3]:8081"):
        line = assert_refused(serve(tmp_path, "--listen", address), "listen")
        assert "not an IP address" in line and "flag --listen" in line


def test_other_refused_settings_keep_the_same_shape(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("listen = \n")
    assert_refused(serve(tmp_path, "--config", str(config)), "config")
    # The old, wrong key bootstrap.sh once carried: its hash does not match, as go would say.
    wrong_key = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ak9yj6Rwsz/8aZgU"
    assert_refused(serve(tmp_path, "--sumdb-key", wrong_key), "sumdb_key")


def test_drain_grace_that_is_not_a_duration(tmp_path):
    for value in ("-1s", "soon"):
        line = assert_refused(serve(tmp_path, "--drain-grace", value), "drain_grace")
        assert f'"{value}" is not a duration' in line


def test_cache_max_bytes_that_is_not_a_byte_count(tmp_path):
    for value in ("50MB", "-1", "1.5GiB", "lots", "99999999TiB"):
        line = assert_refused(serve(tmp_path, "--cache-max-bytes", value), "cache_max_bytes")
        assert f'"{value}" is not a byte count' in line and "flag --cache-max-bytes" in line
    env_line = assert_refused(serve(tmp_path, env_settings={"GOMODPROXY_CACHE_MAX_BYTES": "ten"}),
                              "cache_max_bytes")
    assert "env GOMODPROXY_CACHE_MAX_BYTES" in env_line


def test_pool_sizes_out_of_range(tmp_path):
    for flag, value, setting in (("--check-threads", "257", "check_threads"),
                                 ("--read-threads", "-1", "read_threads"),
                                 ("--fill-threads", "0", "fill_threads")):
        line = assert_refused(serve(tmp_path, flag, value), setting)
        assert f'"{value}"' in line
