"""Versions known only by their go.mod, with verification on (the default): a module graph may
require a version that ships .info and .mod but no zip, and a checksum database may hold only the
`<module> <version>/go.mod h1:...` line for it. The go command accepts such a record for the
go.mod; so must the proxy, while a zip fill still needs the zip line."""

import shutil
import subprocess
from pathlib import Path

import module_tree as mt

MODONLY = "example.com/modonly"
USES = "example.com/uses"
PROG_GOMOD = f"module example.com/prog\n\ngo 1.19\n\nrequire {USES} v1.0.0\n".encode()
PROG_MAIN = (b'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/uses"\n)\n\n'
             b'func main() { fmt.Println(uses.Uses()) }\n')


def _graph_tree(root: Path) -> mt.ModuleTree:
    """`uses` (go 1.16, so its requirements are not pruned) requires `modonly`, which exists only
    as .info and .mod: building a program that imports `uses` needs modonly's go.mod only."""
    tree = mt.ModuleTree(root)
    tree.add_mod_only(MODONLY, "v1.0.0", f"module {MODONLY}\n\ngo 1.16\n".encode())
    uses_mod = f"module {USES}\n\ngo 1.16\n\nrequire {MODONLY} v1.0.0\n".encode()
    tree.add(USES, "v1.0.0", {
        "go.mod": uses_mod,
        "uses.go": b'package uses\n\nfunc Uses() string { return "uses v1.0.0" }\n',
    })
    return tree


def _build(go, directory: Path) -> str:
    directory.mkdir(parents=True)
    (directory / "go.mod").write_bytes(PROG_GOMOD)
    (directory / "main.go").write_bytes(PROG_MAIN)
    downloaded = go.run("mod", "download", "-json", cwd=directory)
    go.run("build", "-o", "prog", ".", cwd=directory)
    ran = subprocess.run([str(directory / "prog")], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    return downloaded.stdout + "\n" + ran.stdout


def test_go_builds_a_graph_with_go_mod_only_requirements_cold_then_warm(
        tmp_path, make_upstream, make_sumdb, start_proxy, make_go):
    tree = _graph_tree(tmp_path / "tree")
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    # Verification left at its default (sumdb); only the database's address and key are ours.
    proxy = start_proxy(upstream.url, *sumdb.flags)

    modonly = tree.get(MODONLY, "v1.0.0")
    uses = tree.get(USES, "v1.0.0")
    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey  # go verifies too, through the proxy's /sumdb/
    output = _build(go, tmp_path / "cold")
    assert "uses v1.0.0" in output
    go_sum = (tmp_path / "cold" / "go.sum").read_text()
    assert f"{MODONLY} v1.0.0/go.mod {modonly.mod_sum}\n" in go_sum
    assert f"{USES} v1.0.0 {uses.zip_sum}\n" in go_sum
    # The record the database holds for modonly is the go.mod line alone.
    record = proxy.get(f"/sumdb/{sumdb.name}{modonly.lookup_path}")
    assert record.status == 200
    assert record.body.split(b"\n\n")[0].split(b"\n")[1:2] == [
        f"{MODONLY} v1.0.0/go.mod {modonly.mod_sum}".encode()]
    assert upstream.count(modonly.url_path(".mod")) == 1

    # Warm: upstream and database gone, a fresh module cache.
    upstream.stop()
    sumdb.stop()
    go.fresh_modcache()
    output = _build(go, tmp_path / "warm")
    assert "uses v1.0.0" in output
    assert (tmp_path / "warm" / "go.sum").read_text() == go_sum


def test_a_zip_fill_needs_the_zip_line(tmp_path, make_upstream, make_sumdb, start_proxy):
    """The database knows the version by its go.mod alone while a tier serves a zip for it: the
    go.mod is vouched for and cached; the zip is not (nothing to check it against)."""
    tree = _graph_tree(tmp_path / "tree")
    served = mt.ModuleTree(tmp_path / "served")
    shutil.copytree(tree.root, served.root, dirs_exist_ok=True)
    lone = served.add(MODONLY, "v1.0.0", {
        "go.mod": f"module {MODONLY}\n\ngo 1.16\n".encode(),
        "modonly.go": b"package modonly\n",
    })
    upstream = make_upstream(served.root)
    sumdb = make_sumdb(tree.root)  # its record for modonly has the go.mod line only
    proxy = start_proxy(upstream.url, *sumdb.flags)

    mod = proxy.get(lone.url_path(".mod"))
    assert mod.status == 200 and mod.body == served.file_bytes(lone.url_path(".mod"))
    zip_answer = proxy.get(lone.url_path(".zip"))
    assert zip_answer.status == 404, zip_answer.status
    assert b"no hash" in zip_answer.body, zip_answer.body
    assert zip_answer.header("Cache-Control") == "no-store"
    # Not cached: a second request asks the tier again.
    assert proxy.get(lone.url_path(".zip")).status == 404
    assert upstream.count(lone.url_path(".zip")) == 2
