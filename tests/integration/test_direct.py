"""The `direct` tier against real git repositories (tests/support/git_repos.py) served by
`git http-backend` (tests/support/git_server.py), with the real go command on both sides; all on
127.0.0.1. The git server is also the HTTP(S) proxy through which the go command the proxy runs
reaches the made-up host git.corp.example.test (its environment: HTTP(S)_PROXY, NO_PROXY,
GOINSECURE, HOME), so no name is looked up and nothing leaves the machine."""

from __future__ import annotations

import io
import zipfile

import pytest

import direct_harness as dh
import git_repos as gr
import module_tree as mt
from conftest import GoRunner, direct_go_params
from go_output import decode_json_stream
from test_upstream import refused_port

PRIVATE = "git.corp.example.test/*"


def url(module_path: str, version: str, suffix: str) -> str:
    return f"/{mt.escape_path(module_path)}/@v/{mt.escape_version(version)}{suffix}"


def served_sums(proxy, versions) -> dict:
    """(path, version) -> (h1 of the served .zip, h1 of the served .mod)."""
    sums = {}
    for path, version in versions:
        zip_answer = proxy.get(url(path, version, ".zip"), timeout=120)
        mod_answer = proxy.get(url(path, version, ".mod"), timeout=120)
        assert zip_answer.status == 200, (path, version, zip_answer.text)
        assert mod_answer.status == 200, (path, version, mod_answer.text)
        sums[(path, version)] = (mt.zip_hash(zip_answer.body), mt.gomod_hash(mod_answer.body))
    return sums


@pytest.fixture(params=direct_go_params())
def client_go(request) -> str:
    return request.param


def test_go_builds_from_private_git_through_the_proxy_with_shipped_defaults_then_warm(
        client_go, git_repos, direct_sums, make_git_server, start_proxy, tmp_path):
    """--private alone (so its upstreams are the default `direct`, and `go` comes from PATH):
    go 1.19 and 1.23 download every kind of version, list, query a branch and build a program
    importing every module; the files' h1 are what `go mod download` computes from git; then
    the same again with the git server stopped, from the cache."""
    server = make_git_server()
    with refused_port() as nowhere:
        proxy = start_proxy("off", "--private", PRIVATE,
                            "--sumdb", f"sum.golang.org={nowhere.url}/sumdb/sum.golang.org",
                            env=dh.proxy_env(server, tmp_path / "proxy-home",
                                             gr.PRIVATE_HOST))
        go = GoRunner(client_go, tmp_path / "client", proxy.url)
        specs = [f"{path}@{version}" for path, version in git_repos.versions()]
        results = go.download_json(*specs)
        assert {(r["Path"], r["Version"]): (r["Sum"], r["GoModSum"]) for r in results} \
            == direct_sums
        assert served_sums(proxy, git_repos.versions()) == direct_sums

        assert go.list_versions(gr.LIB) == ["v1.0.0", "v1.1.0"]  # v1.0.1 is retracted
        assert go.list_versions(gr.LIB, "-retracted") == ["v1.0.0", gr.RETRACTED, "v1.1.0"]
        assert go.list_versions(gr.INCOMPAT) == [gr.INCOMPAT_VERSION]
        [feature] = decode_json_stream(go.run("list", "-m", "-json", f"{gr.LIB}@feature").stdout)
        assert feature["Version"] == git_repos.lib_feature
        [latest] = decode_json_stream(go.run("list", "-m", "-json", f"{gr.LIB}@latest").stdout)
        assert latest["Version"] == "v1.1.0"
        assert _run_program(go, git_repos, tmp_path / "prog1") == gr.PROGRAM_OUTPUT

        # The nested modules (sub/, v2/) are not part of the parent's zip.
        lib_zip = proxy.get(url(gr.LIB, "v1.1.0", ".zip")).body
        names = zipfile.ZipFile(io.BytesIO(lib_zip)).namelist()
        assert sorted(names) == [f"{gr.LIB}@v1.1.0/go.mod", f"{gr.LIB}@v1.1.0/lib.go"]

        server.stop()
        go.fresh_modcache()
        results = go.download_json(*specs)
        assert {(r["Path"], r["Version"]): (r["Sum"], r["GoModSum"]) for r in results} \
            == direct_sums
        assert go.list_versions(gr.LIB) == ["v1.0.0", "v1.1.0"]
        assert _run_program(go, git_repos, tmp_path / "prog2") == gr.PROGRAM_OUTPUT
        assert served_sums(proxy, git_repos.versions()) == direct_sums


def _run_program(go: GoRunner, repos: gr.Repos, directory) -> str:
    import subprocess

    gr.write_program(directory, repos)
    go.run("build", "-o", "prog", ".", cwd=directory)
    out = subprocess.run([str(directory / "prog")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


FROM_TIER = "git.corp.example.test/team/fromtier"


def test_a_tier_before_direct_serves_what_it_has_without_a_process(
        direct_sums, make_git_server, make_upstream, start_proxy, tmp_path):
    """`A|direct`: a module tier A has is served by A and no go process starts; one A lacks is
    fetched from git."""
    tree = mt.ModuleTree(tmp_path / "tier-a")
    held = tree.add(FROM_TIER, "v1.0.0", {
        "go.mod": f"module {FROM_TIER}\n\ngo 1.19\n".encode(),
        "fromtier.go": b'package fromtier\n\nfunc Name() string { return "fromtier" }\n',
    })
    tier_a = make_upstream(tree.root, "tier-a")
    server = make_git_server()
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("off", "--private", PRIVATE,
                        "--private-upstreams", f"{tier_a.url}|direct",
                        "--go-binary", str(wrapper.path),
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))

    for suffix in (".info", ".mod", ".zip"):
        answer = proxy.get(url(FROM_TIER, "v1.0.0", suffix))
        assert answer.status == 200, answer.text
    assert proxy.get(f"/{FROM_TIER}/@v/list").text == "v1.0.0\n"
    assert mt.zip_hash(proxy.get(url(FROM_TIER, "v1.0.0", ".zip")).body) == held.zip_sum
    assert wrapper.started() == 0, wrapper.text()
    assert server.requests == []

    assert served_sums(proxy, [(gr.LIB, "v1.0.0")]) == {(gr.LIB, "v1.0.0"):
                                                        direct_sums[(gr.LIB, "v1.0.0")]}
    assert tier_a.count(url(gr.LIB, "v1.0.0", ".zip")) == 1  # asked first, lacked it
    assert wrapper.started() >= 1
    assert any(r.is_fetch for r in server.for_repo(gr.PRIVATE_HOST, "team/lib"))


@pytest.mark.parametrize("proxy_go", direct_go_params())
def test_second_version_of_a_repository_does_not_clone_it_again(
        proxy_go, git_repos, direct_sums, make_git_server, start_proxy, tmp_path):
    """The direct tier keeps its module cache, so the git clone of a repository is reused: the
    first version's fetch is a fresh clone (an upload-pack request without `have` lines), every
    later fetch of that repository, other versions and the /v2 module in it, says what it has
    (`have` lines): an incremental fetch. A tier that cloned into a fresh module cache each time
    would send no `have` line again. With the oldest go the tier supports and a newer one."""
    server = make_git_server()
    wrapper = dh.GoWrapper(tmp_path / "wrapper", proxy_go)
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", str(wrapper.path),
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))

    def lib_fetches():
        return [r for r in server.for_repo(gr.PRIVATE_HOST, "team/lib") if r.is_fetch]

    first = [(gr.LIB, "v1.0.0")]
    assert served_sums(proxy, first) == {k: direct_sums[k] for k in first}
    assert [r.haves for r in lib_fetches()] != [] and lib_fetches()[0].haves == 0
    assert len([r for r in lib_fetches() if r.is_fresh_clone]) == 1

    later = [(gr.LIB, "v1.1.0"), (gr.LIB, gr.RETRACTED), (gr.LIB_V2, "v2.0.0"),
             (gr.LIB, git_repos.lib_pseudo)]
    seen = len(lib_fetches())
    for key in later:
        assert served_sums(proxy, [key]) == {key: direct_sums[key]}
    fetches = lib_fetches()
    assert len(fetches) > seen, "the later versions were fetched from git"
    assert [r for r in fetches[seen:] if r.is_fresh_clone] == [], \
        [(r.path, r.wants, r.haves) for r in fetches]

    # What is kept under <cache_dir>/direct: the clone and the download files, not the
    # extracted source trees (`lib@v1.0.0/`, `v2@v2.0.0/`) of the versions served.
    direct_root = proxy.cache_dir / "direct"
    assert [p for p in direct_root.rglob("*@v[0-9]*") if p.is_dir()] == []
    assert [p for p in direct_root.rglob("vcs") if p.is_dir() and any(p.iterdir())] != []


def test_a_missing_module_is_a_one_line_not_found_cached_for_the_negative_ttl(
        make_git_server, start_proxy, tmp_path):
    """The go command's failure for a repository that does not exist becomes the direct tier's
    one line in the 404 body; that not-found is cached (--negative-ttl, 30 s by default), so
    asking again starts no second process."""
    server = make_git_server()
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", str(wrapper.path),
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))
    missing = url("git.corp.example.test/team/nosuchrepo", "v1.0.0", ".info")
    answer = proxy.get(missing, timeout=120)
    assert answer.status == 404, answer.text
    direct_lines = [line for line in answer.text.splitlines() if line.startswith("direct:")]
    assert len(direct_lines) == 1, answer.text
    assert "not found" in direct_lines[0] and len(direct_lines[0]) <= 320, direct_lines
    started = wrapper.started()
    assert started >= 1

    again = proxy.get(missing, timeout=120)
    assert again.status == 404 and "direct:" in again.text, again.text
    assert wrapper.started() == started, wrapper.text()
