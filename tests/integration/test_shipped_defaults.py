"""What ships, run as shipped. The sum.golang.org verifier key in every place a user meets it (the
binary's defaults, the example config, the bootstrap script on disk and as served) is the go
command's own, read from the Go installations on this machine. The proxy started with nothing but
a listen address and a cache directory answers every endpoint with the shipped tiers and checksum
databases, none of which is reachable from here: each failure is reported and nothing hangs."""

from __future__ import annotations

import re
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, proxy_binary

HELP_DEFAULT_RE = re.compile(r"^\s*--sumdb-key KEYS\s+\(env GOMODPROXY_SUMDB_KEY; default (\S+)\)$",
                             re.MULTILINE)
SCRIPT_KEY_RE = re.compile(rb"^sum_golang_org_key=(\S+)$", re.MULTILINE)


def test_every_copy_of_the_sum_golang_org_key_is_the_go_commands(go_key, tree, make_upstream,
                                                                  start_proxy):
    # go_key (conftest) is read from each installed go command's source and binary.
    help_text = subprocess.run([str(proxy_binary()), "serve", "--help"], capture_output=True,
                               text=True, timeout=30, check=True).stdout
    assert HELP_DEFAULT_RE.findall(help_text) == [go_key]

    example = tomllib.loads((REPO / "config" / "gomodproxy.example.toml").read_text())
    assert example["sumdb_key"] == go_key

    script = (REPO / "config" / "bootstrap.sh").read_bytes()
    assert SCRIPT_KEY_RE.findall(script) == [go_key.encode()]
    served = start_proxy(make_upstream(tree.root).url).get("/bootstrap.sh")
    assert served.status == 200 and SCRIPT_KEY_RE.findall(served.body) == [go_key.encode()]

    # The one source the build generates the default from and checks the copies against.
    assert (REPO / "config" / "sum.golang.org.key").read_text() == go_key + "\n"
