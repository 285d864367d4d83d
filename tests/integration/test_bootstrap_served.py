"""The proxy serves config/bootstrap.sh at /bootstrap.sh, so the README's one-line setup
(`curl -fsSL <proxy>/bootstrap.sh | sh -s -- --proxy <proxy>`) needs nothing but curl."""

import os
import subprocess
from pathlib import Path

import module_tree as mt

SCRIPT = Path(__file__).resolve().parents[2] / "config" / "bootstrap.sh"


def test_bootstrap_script_is_served_byte_for_byte(tree, make_upstream, start_proxy):
    proxy = start_proxy(make_upstream(tree.root).url)
    answer = proxy.get("/bootstrap.sh")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/x-shellscript")
    assert answer.body == SCRIPT.read_bytes()


def test_one_line_setup_through_the_served_script(tree, make_upstream, start_proxy, tmp_path):
    proxy = start_proxy(make_upstream(tree.root).url)
    home = tmp_path / "home"
    home.mkdir()
    hello = tree.get(mt.HELLO, "v1.2.0")
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "SHELL": "/bin/bash"}
    command = (f"curl -fsSL {proxy.url}/bootstrap.sh | "
               f"sh -s -- --proxy {proxy.url} --check-module {hello.path}@{hello.version}")
    run = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"change: go env -w GOPROXY={proxy.url}|direct" in run.stdout
    assert f"resolved {hello.version} through the proxy" in run.stdout
    env_file = home / ".config" / "go" / "env"
    assert f"GOPROXY={proxy.url}|direct\n" in env_file.read_text()
