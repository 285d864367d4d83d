"""`gomodproxy cache verify`: re-hashes cached module files against the checksum records cached
with them, reports what is corrupt, and --repair removes it so the next request refetches."""

import re
import subprocess

import module_tree as mt
from conftest import proxy_binary


def _verify(cache_dir, sumdb, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(proxy_binary()), "cache", "verify", "--cache-dir", str(cache_dir),
         "--sumdb", f"{sumdb.name}={sumdb.url}", "--sumdb-key", sumdb.vkey, *extra],
        capture_output=True, text=True, timeout=120)


def _summary(stdout: str) -> dict:
    match = re.search(r"(\d+) entries read back, (\d+) module files matched their checksum "
                      r"record, (\d+) had no record cached, (\d+) corrupt, (\d+) removed", stdout)
    assert match, stdout
    keys = ("entries", "matched", "unvouched", "corrupt", "removed")
    return dict(zip(keys, map(int, match.groups())))


def test_cache_verify_reports_and_repairs_a_poisoned_zip(tree, make_upstream, make_sumdb,
                                                        start_proxy):
    poisoned = make_upstream(tree.root, "poisoned")
    sumdb = make_sumdb(tree.root)
    hello = tree.get(mt.HELLO, "v1.2.0")
    upper = tree.get(mt.UPPER, "v1.0.0")
    poisoned.serve_body(re.escape(hello.url_path(".zip")) + "$",
                        mt.tampered_zip(tree.file_bytes(hello.url_path(".zip"))))
    # With verification off the tampered zip gets in, as it would have before an upgrade.
    proxy = start_proxy(poisoned.url, "--sumdb", f"{sumdb.name}={sumdb.url}", "--sumdb-key",
                        sumdb.vkey, "--verify", "off")
    for mv in (hello, upper):
        for suffix in (".info", ".mod", ".zip"):
            assert proxy.get(mv.url_path(suffix)).status == 200
        lookup = f"/sumdb/{sumdb.name}/lookup/{mv.escaped_path}@{mv.escaped_version}"
        assert proxy.get(lookup).status == 200
    unvouched = tree.get(mt.HELLO_V2, "v2.0.0")
    assert proxy.get(unvouched.url_path(".mod")).status == 200  # no record cached for it
    cache_dir = proxy.cache_dir
    assert proxy.terminate() == 0

    found = _verify(cache_dir, sumdb)
    assert found.returncode == 1, found.stderr
    assert found.stdout.count("corrupt: ") == 1
    assert f"corrupt: {hello.url_path('.zip')}: h1 is " in found.stdout
    assert hello.zip_sum in found.stdout  # the record's hash, named in the report
    assert _summary(found.stdout) == {"entries": 9, "matched": 4, "unvouched": 1, "corrupt": 1,
                                      "removed": 0}
    assert "checked 9 of 9 entries" in found.stderr

    repaired = _verify(cache_dir, sumdb, "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert _summary(repaired.stdout)["removed"] == 1

    clean = _verify(cache_dir, sumdb)
    assert clean.returncode == 0, clean.stdout
    assert _summary(clean.stdout) == {"entries": 8, "matched": 3, "unvouched": 1, "corrupt": 0,
                                      "removed": 0}

    # The next request refetches the zip, now from an honest tier, and verifies it.
    genuine = make_upstream(tree.root, "genuine")
    proxy = start_proxy(genuine.url, "--sumdb", f"{sumdb.name}={sumdb.url}", "--sumdb-key",
                        sumdb.vkey, "--verify", "sumdb", cache_dir=cache_dir)
    assert proxy.get(hello.url_path(".zip")).body == tree.file_bytes(hello.url_path(".zip"))
    assert genuine.count(hello.url_path(".zip")) == 1


def test_cache_verify_usage_errors_exit_2(tmp_path):
    for args in (["cache"], ["cache", "scrub"], ["cache", "verify", "--no-such-flag"]):
        run = subprocess.run([str(proxy_binary()), *args], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert run.stderr.strip() and not run.stdout
