"""`gomodproxy cache verify`: re-hashes cached module files against the checksum records cached
with them, reports what is corrupt, and --repair removes it so the next request refetches."""

import re
import subprocess

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary


def _verify(cache_dir, sumdb, *extra: str) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [str(proxy_binary()), "cache", "verify", "--cache-dir", str(cache_dir),
         *sumdb.flags, *extra],
        capture_output=True, text=True, timeout=120)
    # Under a sanitizer build a report exits 1 too, which some checks below expect.
    assert not SANITIZER_RE.search(run.stderr), run.stderr
    return run


def _summary(stdout: str) -> dict:
    match = re.search(r"(\d+) entries read back, (\d+) module files matched their checksum "
                      r"record, (\d+) had no record cached, (\d+) corrupt, (\d+) removed", stdout)
    assert match, stdout
    keys = ("entries", "matched", "unvouched", "corrupt", "removed")
    return dict(zip(keys, map(int, match.groups())))


def _proxy_with_poisoned_hello(tree, make_upstream, make_sumdb, start_proxy):
    """A proxy with verification off in front of a tier serving hello v1.2.0's zip with one byte
    changed, and a test checksum database: the tampered zip gets in when fetched, as it would
    have before an upgrade. Returns (proxy, sumdb, hello)."""
    poisoned = make_upstream(tree.root, "poisoned")
    sumdb = make_sumdb(tree.root)
    hello = tree.get(mt.HELLO, "v1.2.0")
    poisoned.serve_body(re.escape(hello.url_path(".zip")) + "$",
                        mt.tampered_zip(tree.file_bytes(hello.url_path(".zip"))))
    proxy = start_proxy(poisoned.url, *sumdb.flags, "--verify", "off")
    return proxy, sumdb, hello


def test_cache_verify_reports_and_repairs_a_poisoned_zip(tree, make_upstream, make_sumdb,
                                                        start_proxy):
    proxy, sumdb, hello = _proxy_with_poisoned_hello(tree, make_upstream, make_sumdb,
                                                     start_proxy)
    upper = tree.get(mt.UPPER, "v1.0.0")
    for mv in (hello, upper):
        for suffix in (".info", ".mod", ".zip"):
            assert proxy.get(mv.url_path(suffix)).status == 200
        assert proxy.get(f"/sumdb/{sumdb.name}{mv.lookup_path}").status == 200
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
    proxy = start_proxy(genuine.url, *sumdb.flags, "--verify", "sumdb", cache_dir=cache_dir)
    assert proxy.get(hello.url_path(".zip")).body == tree.file_bytes(hello.url_path(".zip"))
    assert genuine.count(hello.url_path(".zip")) == 1


def test_cache_verify_usage_errors_exit_2(tmp_path):
    for args in (["cache"], ["cache", "scrub"], ["cache", "verify", "--no-such-flag"]):
        run = subprocess.run([str(proxy_binary()), *args], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert run.stderr.strip() and not run.stdout


def test_cache_verify_online_asks_the_database_about_files_without_a_record(
        tree, make_upstream, make_sumdb, start_proxy):
    proxy, sumdb, hello = _proxy_with_poisoned_hello(tree, make_upstream, make_sumdb,
                                                     start_proxy)
    upper = tree.get(mt.UPPER, "v1.0.0")
    private = tree.get(mt.HELLO_V2, "v2.0.0")
    # No lookup is ever asked: no record is cached for anything.
    for mv in (hello, upper, private):
        for suffix in (".mod", ".zip"):
            assert proxy.get(mv.url_path(suffix)).status == 200
    cache_dir = proxy.cache_dir
    assert proxy.terminate() == 0
    module_files = 6
    assert _summary(_verify(cache_dir, sumdb).stdout)["unvouched"] == module_files
    private_flag = ("--private", private.path)

    # The database is down: nothing can be vouched for, nothing is called corrupt.
    sumdb.stop()
    down = _verify(cache_dir, sumdb, "--online", *private_flag)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("not vouched for: ") == module_files
    assert "asked the checksum database about 6 module files: 0 vouched for, 6 not" in down.stdout
    assert f"not vouched for: {private.url_path('.zip')}: private module" in down.stdout

    # Back up: it vouches for the four public files, and the tampered zip is found against it.
    sumdb.start()
    sumdb.clear_log()
    found = _verify(cache_dir, sumdb, "--online", *private_flag)
    assert found.returncode == 1, found.stdout + found.stderr
    assert found.stdout.count("corrupt: ") == 1
    assert f"corrupt: {hello.url_path('.zip')}: h1 is " in found.stdout
    assert hello.zip_sum in found.stdout
    # A lookup proves both files of a module version, so the second is matched from the cache.
    assert "asked the checksum database about 4 module files: 2 vouched for, 2 not" in found.stdout
    summary = _summary(found.stdout)
    assert (summary["matched"], summary["corrupt"]) == (4, 1)
    # One lookup per public module, and the private one never named to the database.
    lookups = [p for p in sumdb.paths() if p.startswith("/lookup/")]
    assert sorted(lookups) == sorted(mv.lookup_path for mv in (hello, upper))
    assert not any(private.escaped_path in p for p in sumdb.paths())

    # The proven records were cached: an offline run matches the same files without asking,
    # and --repair removes the tampered zip so the next request refetches it.
    sumdb.stop()
    offline = _verify(cache_dir, sumdb)
    assert {k: v for k, v in _summary(offline.stdout).items() if k != "entries"} == {
        "matched": 4, "unvouched": 2, "corrupt": 1, "removed": 0}
    repaired = _verify(cache_dir, sumdb, "--repair")
    assert repaired.returncode == 0 and _summary(repaired.stdout)["removed"] == 1, repaired.stdout
