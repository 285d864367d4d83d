"""The `direct` tier's bounds: at most --direct-concurrency go processes at once, and a git
server that never answers costs a fill deadline, after which the whole process group (go and
its git children) is gone and the client has its answer. Processes are counted by a
`--go-binary` wrapper (tests/support/direct_harness.py) that logs each one it runs."""

from __future__ import annotations

import concurrent.futures
import time

import direct_harness as dh
import git_repos as gr
import module_tree as mt
from polling import wait_for

PRIVATE = "git.corp.example.test/*"


def info_url(module_path: str, version: str = "v1.0.0") -> str:
    return f"/{mt.escape_path(module_path)}/@v/{version}.info"


def test_concurrent_misses_never_run_more_than_direct_concurrency_processes(
        make_git_server, start_proxy, tmp_path):
    """N+5 misses for different repositories at once with --direct-concurrency N: every one is
    answered, at most N go processes ran at any moment, and N did (each git request is held a
    second, so the processes overlap when allowed to)."""
    limit = 2
    modules = gr.CONCURRENT[: limit + 5]
    server = make_git_server()
    server.delay(r"/team/c\d+/info/refs", 1.0)
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", str(wrapper.path),
                        "--direct-concurrency", str(limit), "--fill-timeout", "120s",
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))

    with concurrent.futures.ThreadPoolExecutor(len(modules)) as pool:
        answers = list(pool.map(lambda m: proxy.get(info_url(m), timeout=150), modules))
    assert [a.status for a in answers] == [200] * len(modules), [a.text for a in answers]
    assert [a.body.count(b'"v1.0.0"') for a in answers] == [1] * len(modules)
    assert wrapper.started() >= len(modules), wrapper.text()
    assert wrapper.max_running() <= limit, wrapper.text()
    assert wrapper.max_running() == limit, wrapper.text()
    fetched = {r.path.split("/")[2] for r in server.requests if r.is_fetch}
    assert fetched == {m.rsplit("/", 1)[1] for m in modules}


def test_concurrent_misses_for_one_repository_share_its_clone(
        git_repos, make_git_server, start_proxy, tmp_path):
    """Four versions of team/lib (the /v2 module included, same repository) asked at once with
    room for four processes: the go processes for that repository never overlap (they are
    serialised or coalesced), and the repository is cloned once."""
    server = make_git_server()
    server.delay(r"/team/lib/info/refs", 0.5)
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", str(wrapper.path),
                        "--direct-concurrency", "4", "--fill-timeout", "120s",
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))
    wanted = [(gr.LIB, "v1.0.0"), (gr.LIB, gr.RETRACTED), (gr.LIB, "v1.1.0"),
              (gr.LIB_V2, "v2.0.0")]
    with concurrent.futures.ThreadPoolExecutor(len(wanted)) as pool:
        answers = list(pool.map(lambda mv: proxy.get(info_url(*mv), timeout=150), wanted))
    assert [a.status for a in answers] == [200] * len(wanted), [a.text for a in answers]
    assert wrapper.started() >= 1
    assert wrapper.max_running_matching(r"team/lib") == 1, wrapper.text()
    fetches = [r for r in server.for_repo(gr.PRIVATE_HOST, "team/lib") if r.is_fetch]
    assert sum(r.is_fresh_clone for r in fetches) == 1, [(r.wants, r.haves) for r in fetches]


def test_hanging_git_server_gets_the_process_group_killed_at_the_fill_deadline(
        make_git_server, start_proxy, tmp_path):
    """Git requests for team/slow are read and never answered. With --fill-timeout 6s the client
    is answered about then, naming the deadline; every process of the go command's process group
    (go and the git processes it started) is gone; and, a timeout not being a not-found, the
    next request after the server recovers fetches and serves the module."""
    server = make_git_server()
    hang = server.hang(r"/team/slow/(info/refs|git-upload-pack)")
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", str(wrapper.path),
                        "--fill-timeout", "6s",
                        env=dh.proxy_env(server, tmp_path / "proxy-home", gr.PRIVATE_HOST))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(proxy.get, info_url(gr.SLOW), timeout=60)
        assert hang.wait_arrivals(1, timeout=30), "git never reached the hanging server"
        [group] = wrapper.process_groups()
        [[_, pid, _, _, _]] = wrapper.starts()
        assert int(pid) == group, "the go command leads a process group of its own"
        names = {name for _, name in dh.processes_in_group(group)}
        assert any(name.startswith("git") for name in names), names
        answer = pending.result(timeout=60)
        elapsed = time.monotonic() - started

    assert answer.status in (404, 502), answer.text
    assert answer.header("Cache-Control") == "no-store", answer.text
    # The answer names the deadline (the tier's own "timeout" line, or the fill's).
    assert "deadline" in answer.text or "timeout" in answer.text, answer.text
    assert 4.5 <= elapsed <= 20.0, (elapsed, answer.text)
    wait_for(lambda: not dh.processes_in_group(group), 10.0,
             f"process group {group} to be gone")

    server.clear_hangs()
    again = proxy.get(info_url(gr.SLOW), timeout=60)
    assert again.status == 200, again.text
