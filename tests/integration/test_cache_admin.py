"""The cache admin verbs: `gomodproxy cache stats | ls | rm` on a stopped proxy's cache, and the
same through a running proxy's /admin/cache/ endpoints, which exist only with --admin-token and
need it. A removed module is fetched from the upstream again on the next request."""

import json
import os
import subprocess

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary
from test_auth import assert_401, basic, bearer, new_token
from test_shipped_defaults import run_as_shipped


def _cache(cache_dir, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([str(proxy_binary()), "cache", *args, "--cache-dir", str(cache_dir)],
                         capture_output=True, text=True, timeout=60)
    assert not SANITIZER_RE.search(run.stderr), run.stderr
    return run


def _cli(*args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([str(proxy_binary()), "cache", *args], capture_output=True, text=True,
                         timeout=60)
    assert not SANITIZER_RE.search(run.stderr), run.stderr
    return run


def _stats(text: str) -> dict:
    """{"zip": (entries, bytes), ...} from `cache stats` output."""
    figures = {}
    for line in text.splitlines():
        name, _, rest = line.partition(": ")
        words = rest.split()
        if len(words) >= 4 and words[1] == "entries,":
            figures[name] = (int(words[0]), int(words[2]))
    return figures


def test_stats_ls_and_rm_on_a_stopped_cache_then_the_module_is_refetched(
        tree, make_upstream, start_proxy, make_go):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    assert make_go(proxy.url).build_and_run_program() == mt.PROGRAM_OUTPUT
    cache_dir = proxy.cache_dir

    # A running proxy holds the directory: the verbs refuse with one line saying what to do.
    busy = _cache(cache_dir, "stats")
    assert busy.returncode == 1, busy.stdout
    assert busy.stderr.count("\n") == 1, busy.stderr
    assert "is in use by a running gomodproxy" in busy.stderr
    assert proxy.terminate() == 0

    hello = tree.get(mt.HELLO, "v1.2.0")
    zip_path = hello.url_path(".zip")
    stats = _cache(cache_dir, "stats")
    assert stats.returncode == 0, stats.stderr
    figures = _stats(stats.stdout)
    # The five modules the program imports, one zip each.
    assert figures["zip"][0] == 5, stats.stdout
    assert figures["mod"][0] == 5 and figures["info"][0] == 5, stats.stdout
    assert sum(n for name, (n, _) in figures.items() if name != "total") == figures["total"][0]
    assert "oldest 20" in stats.stdout and "evictions: " in stats.stdout

    listed = _cache(cache_dir, "ls", mt.HELLO)
    assert listed.returncode == 0, listed.stderr
    zip_size = len(tree.file_bytes(zip_path))
    assert f"{mt.HELLO} v1.2.0 zip {zip_size}\n" in listed.stdout
    # A GOPRIVATE-style pattern: example.com/hello covers example.com/hello/v2 too.
    modules = {line.split()[0] for line in listed.stdout.splitlines()}
    assert modules == {mt.HELLO, mt.HELLO_V2}, listed.stdout
    upper = _cache(cache_dir, "ls", "example.com/U*").stdout
    assert upper and all(line.startswith(f"{mt.UPPER}") for line in upper.splitlines()), upper

    removed = _cache(cache_dir, "rm", f"{mt.HELLO}@v1.2.0")
    assert removed.returncode == 0, removed.stderr
    assert f"removed {zip_path}\n" in removed.stdout
    assert f"removed {hello.url_path('.mod')}\n" in removed.stdout
    assert f"{mt.HELLO} v1.2.0 zip" not in _cache(cache_dir, "ls", mt.HELLO).stdout
    again = _cache(cache_dir, "rm", f"{mt.HELLO}@v1.2.0")
    assert again.returncode == 1 and "0 entries removed" in again.stdout
    assert _stats(_cache(cache_dir, "stats").stdout)["zip"][0] == 4

    typo = _cache(cache_dir / "typo", "stats")
    assert typo.returncode == 1 and "does not exist" in typo.stderr
    assert not (cache_dir / "typo").exists()

    bad = _cache(cache_dir, "rm", "not a module")
    assert bad.returncode == 2 and "not a module path" in bad.stderr

    # Restarted on the same cache, a cold client's build asks the upstream for the removed zip
    # again, and only for what was removed.
    assert upstream.count(zip_path) == 1
    other_zip = tree.get(mt.HELLO_V2, "v2.0.0").url_path(".zip")
    proxy = start_proxy(upstream.url, cache_dir=cache_dir)
    assert make_go(proxy.url).build_and_run_program() == mt.PROGRAM_OUTPUT
    assert upstream.count(zip_path) == 2
    assert upstream.count(other_zip) == 1


def test_admin_endpoints_need_the_admin_token(tree, make_upstream, start_proxy, tmp_path):
    upstream = make_upstream(tree.root)
    admin = new_token()
    admin_file = tmp_path / "admin-token"
    admin_file.write_text(admin + "\n")
    proxy = start_proxy(upstream.url, "--admin-token", f"@{admin_file}")
    hello = tree.get(mt.HELLO, "v1.2.0")
    for suffix in (".info", ".mod", ".zip"):
        assert proxy.get(hello.url_path(suffix)).status == 200
    module = f"{mt.HELLO}@v1.2.0"

    for path in ("/admin/cache/stats", "/admin/cache/stats.json", "/admin/cache/ls"):
        assert_401(proxy.get(path))
        assert_401(proxy.get(path, headers=bearer(admin[:-1])))
    assert_401(proxy.get(f"/admin/cache/rm?module={module}", method="POST"))

    stats = proxy.get("/admin/cache/stats", headers=bearer(admin))
    assert stats.status == 200, stats.text
    assert _stats(stats.text)["zip"] == (1, len(tree.file_bytes(hello.url_path(".zip"))))
    as_json = json.loads(proxy.get("/admin/cache/stats.json", headers=bearer(admin)).body)
    assert as_json["kinds"]["zip"]["entries"] == 1
    assert as_json["total"]["entries"] == 3

    listed = proxy.get("/admin/cache/ls?glob=example.com/*", headers=basic("ops", admin))
    assert listed.status == 200
    assert sorted(line.split()[2] for line in listed.text.splitlines()) == ["info", "mod", "zip"]
    assert proxy.get("/admin/cache/ls?glob=golang.org", headers=bearer(admin)).text == ""

    # Removing is a POST: a GET (a crawler, a prefetch) never deletes anything.
    refused = proxy.get(f"/admin/cache/rm?module={module}", headers=bearer(admin))
    assert refused.status == 405 and refused.header("Allow") == "POST"
    bad = proxy.get("/admin/cache/rm?module=..", method="POST", headers=bearer(admin))
    assert bad.status == 400 and "not a module path" in bad.text
    removed = proxy.get(f"/admin/cache/rm?module={module}", method="POST", headers=bearer(admin))
    assert removed.status == 200, removed.text
    assert removed.text.endswith("3 entries removed\n")
    gone = proxy.get(f"/admin/cache/rm?module={module}", method="POST", headers=bearer(admin))
    assert gone.status == 404 and "0 entries removed" in gone.text

    assert upstream.count(hello.url_path(".zip")) == 1
    assert proxy.get(hello.url_path(".zip")).body == tree.file_bytes(hello.url_path(".zip"))
    assert upstream.count(hello.url_path(".zip")) == 2

    # The same verbs from the command line through the running proxy.
    through = ("--proxy", proxy.url, "--admin-token", f"@{admin_file}")
    stats = _cli("stats", *through)
    assert stats.returncode == 0, stats.stderr
    assert _stats(stats.stdout)["zip"][0] == 1
    listed = _cli("ls", "example.com/hello", *through)
    assert f"{mt.HELLO} v1.2.0 zip" in listed.stdout
    removed = _cli("rm", f"{mt.HELLO}@v1.2.0", *through)
    assert removed.returncode == 0 and f"removed {hello.url_path('.zip')}\n" in removed.stdout
    assert _cli("rm", f"{mt.HELLO}@v1.2.0", *through).returncode == 1
    refused = _cli("stats", "--proxy", proxy.url, "--admin-token", admin[::-1])
    assert refused.returncode == 1 and ": 401: unauthorized" in refused.stderr
    assert refused.stderr.count("\n") == 1 and admin[::-1] not in refused.stderr
    assert admin not in proxy.log_text()


def test_without_an_admin_token_there_are_no_admin_endpoints(tree, make_upstream, start_proxy):
    """As shipped: no --admin-token, so nobody could be told apart from a client."""
    proxy = start_proxy(make_upstream(tree.root).url)
    for path in ("/admin/cache/stats", "/admin/cache/stats.json", "/admin/cache/ls"):
        answer = proxy.get(path)
        assert answer.status == 404, (path, answer.status, answer.text)
    posted = proxy.get(f"/admin/cache/rm?module={mt.HELLO}", method="POST")
    assert posted.status == 404, (posted.status, posted.text)


def test_the_verbs_reach_a_proxy_over_https_with_the_test_ca(tree, make_upstream, start_proxy,
                                                            pki, tmp_path):
    admin = new_token()
    proxy = start_proxy(make_upstream(tree.root).url, *pki.issue("server", 0x3001).flags,
                        "--admin-token", admin)
    assert proxy.url.startswith("https://")
    through = ("--proxy", proxy.url, "--admin-token", admin)
    trusted = _cli("stats", *through, "--ca-file", str(pki.bundle))
    assert trusted.returncode == 0, trusted.stderr
    assert "total: 0 entries, 0 bytes\n" in trusted.stdout
    # Without the test CA the certificate is not trusted: refused, in one line.
    untrusted = _cli("stats", *through)
    assert untrusted.returncode == 1
    assert untrusted.stderr.startswith(f"gomodproxy: cannot reach {proxy.url}: ")
    assert untrusted.stderr.count("\n") == 1, untrusted.stderr


def test_shipped_defaults_have_no_admin_endpoints_and_the_verbs_find_the_default_cache(
        tmp_path):
    """As shipped (no flag at all): /admin/ is not served, and `cache stats` with no
    --cache-dir opens the default cache directory the proxy used (./var/cache)."""
    report = run_as_shipped(tmp_path, gets=["/admin/cache/stats", "/admin/cache/ls"])
    for answer in report["answers"]:
        assert answer["status"] == 404, answer
    assert report["exit"] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOMODPROXY_")}
    stats = subprocess.run([str(proxy_binary()), "cache", "stats"], cwd=report["workdir"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert stats.returncode == 0, stats.stderr
    assert "total: " in stats.stdout
    assert (report["workdir"] / "var" / "cache").is_dir()
