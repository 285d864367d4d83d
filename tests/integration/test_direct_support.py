"""The direct tier's test support on its own, with the real go command and no proxy: the git
repositories (tests/support/git_repos.py) and the git server (tests/support/git_server.py) give
go 1.19 and 1.23 every kind of version the direct tests rely on, and the server's request log
tells a fresh clone from an incremental fetch."""

from __future__ import annotations

import gzip
import http.client
import subprocess

import pytest

import direct_harness as dh
import git_repos as gr
from conftest import direct_go_params
from go_output import decode_json_stream
from polling import wait_for


@pytest.mark.parametrize("go", direct_go_params())
def test_go_alone_fetches_lists_and_builds_from_the_git_server(go, git_repos, direct_sums,
                                                               make_git_server, tmp_path):
    server = make_git_server()
    base = tmp_path / "go"
    specs = [f"{path}@{version}" for path, version in git_repos.versions()]
    assert dh.direct_sums(go, server, base, specs) == direct_sums

    def run(*args: str) -> str:
        proc = dh.go_direct(go, server, base, *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert run("list", "-m", "-versions", gr.LIB).split() == [gr.LIB, "v1.0.0", "v1.1.0"]
    assert run("list", "-m", "-retracted", "-versions", gr.LIB).split() == \
        [gr.LIB, "v1.0.0", gr.RETRACTED, "v1.1.0"]
    [feature] = decode_json_stream(run("list", "-m", "-json", f"{gr.LIB}@feature"))
    assert feature["Version"] == git_repos.lib_feature
    assert feature["Origin"]["Hash"] == git_repos.feature_hash

    # Reached only through the server as a proxy: HTTPS refused at CONNECT, then plain http.
    assert any(r.method == "CONNECT" and r.status == 403 for r in server.requests)
    # One module cache so far: one clone of team/lib, every later fetch incremental.
    fetches = [r for r in server.for_repo(gr.PRIVATE_HOST, "team/lib") if r.is_fetch]
    assert fetches[0].is_fresh_clone
    assert len(fetches) > 1 and not any(r.is_fresh_clone for r in fetches[1:])

    prog = tmp_path / "prog"
    gr.write_program(prog, git_repos)
    proc = dh.go_direct(go, server, prog, "build", "-mod=mod", "-o", "prog", ".")
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(prog / "prog")], capture_output=True, text=True, timeout=30)
    assert out.stdout == gr.PROGRAM_OUTPUT



def test_a_fresh_module_cache_clones_again(make_git_server, tmp_path):
    """What the direct tier's reuse test tells apart: two versions into one module cache are one
    clone and one incremental fetch; into two fresh module caches, two clones."""
    server = make_git_server()
    for version in ("v1.0.0", "v1.1.0"):
        assert dh.go_direct(dh.PROXY_GO, server, tmp_path / "shared", "mod", "download",
                            f"{gr.LIB}@{version}").returncode == 0
    shared = [r for r in server.requests if r.is_fetch]
    assert [r.is_fresh_clone for r in shared] == [True] + [False] * (len(shared) - 1)

    server.clear_log()
    for version in ("v1.0.0", "v1.1.0"):
        assert dh.go_direct(dh.PROXY_GO, server, tmp_path / f"fresh-{version}", "mod", "download",
                            f"{gr.LIB}@{version}").returncode == 0
    assert sum(r.is_fresh_clone for r in server.requests) == 2


def test_git_server_auth_hang_and_compressed_chunked_bodies(make_git_server, tmp_path):
    server = make_git_server()
    server.require_auth(gr.PRIVATE_HOST, "team/secret", "deploy", "pw-1")
    denied = dh.go_direct(dh.PROXY_GO, server, tmp_path / "nocreds", "mod", "download",
                          f"{gr.SECRET}@v1.0.0", timeout=60)
    assert denied.returncode != 0 and "terminal prompts disabled" in denied.stderr, \
        denied.stderr
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine {gr.PRIVATE_HOST} login deploy password pw-1\n")
    allowed = dh.go_direct(dh.PROXY_GO, server, tmp_path / "creds", "mod", "download",
                           f"{gr.SECRET}@v1.0.0", home=home, timeout=60)
    assert allowed.returncode == 0, allowed.stderr

    # A gzip-compressed, chunked protocol v2 ls-refs request, as git sends large ones.
    body = gzip.compress(b"0014command=ls-refs\n0000")
    seen_before = len(server.requests)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", f"http://{gr.PRIVATE_HOST}/team/lib/git-upload-pack",
                    skip_host=True)
    for name, value in (("Host", gr.PRIVATE_HOST), ("Transfer-Encoding", "chunked"),
                        ("Content-Encoding", "gzip"), ("Git-Protocol", "version=2"),
                        ("Content-Type", "application/x-git-upload-pack-request")):
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    answer = conn.getresponse()
    refs = answer.read()
    conn.close()
    assert answer.status == 200 and b"refs/tags/v1.1.0" in refs, refs
    # The server records a request once its answer is written, which may be after the client
    # has read that answer.
    wait_for(lambda: [r.command for r in server.requests[seen_before:]] == ["ls-refs"], 5,
             "the ls-refs request recorded")

    hang = server.hang(r"/team/slow/")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    conn.request("GET", f"http://{gr.PRIVATE_HOST}/team/slow/info/refs?service=git-upload-pack")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    assert hang.wait_arrivals(1, timeout=5)
