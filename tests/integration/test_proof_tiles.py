"""The tiles a verified fill's proof lacks travel together: a cold zip whose record proof needs
three tiles of a distant checksum database has all three requests in flight at once (read from
the database's request log, which stamps when each request arrived and was answered), each asked
once, and the zip is served only once proven. A tampered tile among them still fails the fill,
and the tiles are asked again next time."""

from __future__ import annotations

import json
import re

import pytest

import module_tree as mt
from conftest import http_request

TREE_SIZE = 700
# Record 0's proof in a tree of 700 records: its own full level-0 tile, the partial level-0 tile
# of records 512-699, and the partial level-1 tile holding the subtree of records 256-511.
PROOF_TILES = ["/tile/8/0/000", "/tile/8/0/002.p/188", "/tile/8/1/000.p/2"]
DELAY = 0.5  # seconds the database waits before each answer, so requests in flight together
# overlap by far more than the proxy takes to send them


def seed_log(records_file, module: mt.ModuleVersion, first: int = 0, size: int = TREE_SIZE,
             module_id: int = 0) -> None:
    """Appends records first..size-1 to the database's log: `module` at `module_id`, filler
    records elsewhere."""
    with records_file.open("a") as out:
        for record_id in range(first, size):
            if record_id == module_id:
                path, version = module.path, module.version
                text = (f"{path} {version} {module.zip_sum}\n"
                        f"{path} {version}/go.mod {module.mod_sum}\n")
            else:
                path, version = f"filler.invalid/r{record_id}", "v1.0.0"
                text = f"{path} v1.0.0 h1:{record_id:043d}=\n"
            out.write(json.dumps({"path": path, "version": version, "text": text}) + "\n")


def seeded_tree_and_sumdb(tmp_path, make_sumdb, delay: float = 0.0, size: int = TREE_SIZE):
    """A tree holding one module and a database whose log holds it at record 0 of `size`."""
    tree = mt.ModuleTree(tmp_path / "tree")
    module = tree.add("example.com/prooftiles", "v1.0.0", {
        "go.mod": b"module example.com/prooftiles\n\ngo 1.19\n",
        "p.go": b"package prooftiles\n",
    })
    sumdb = make_sumdb(tree.root, delay=delay)
    sumdb.stop()
    seed_log(sumdb.records_file, module, size=size)
    sumdb.start()
    return tree, module, sumdb


def test_a_proof_fetches_the_tiles_it_lacks_together(tmp_path, make_upstream, make_sumdb,
                                                     start_proxy):
    tree, module, sumdb = seeded_tree_and_sumdb(tmp_path, make_sumdb, DELAY)
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)

    resp = proxy.get(module.url_path(".zip"))
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(module.url_path(".zip"))

    assert sumdb.wait_count("/tile/", len(PROOF_TILES)) == len(PROOF_TILES), sumdb.paths()
    tiles = [r for r in sumdb.requests if r.path.startswith("/tile/")]
    assert sorted(r.path for r in tiles) == PROOF_TILES
    assert all(r.status == 200 for r in tiles), tiles
    # Fetched one after another, no two would overlap: each would start after the previous
    # answer was read.
    pairs = sumdb.overlapping("/tile/")
    assert len(pairs) == len(PROOF_TILES) * (len(PROOF_TILES) - 1) // 2, tiles


def test_a_tampered_tile_fetched_with_the_others_fails_the_fill(tmp_path, make_upstream,
                                                                make_sumdb, start_proxy):
    tree, module, sumdb = seeded_tree_and_sumdb(tmp_path, make_sumdb)
    # A copy of the database's answers, served by a scriptable server that changes one tile.
    mirror = tmp_path / "mirror"
    for path in [module.lookup_path, *PROOF_TILES]:
        answer = http_request(sumdb.port, path)
        assert answer.status == 200, path
        (mirror / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path.lstrip("/")).write_bytes(answer.body)
    tampered_path = "/tile/8/1/000.p/2"
    genuine = (mirror / tampered_path.lstrip("/")).read_bytes()
    database = make_upstream(mirror, "database")
    # Its second hash (records 256-511) is in record 0's proof; the first is not.
    tampered = genuine[:32] + bytes([genuine[32] ^ 1]) + genuine[33:]
    database.serve_body(re.escape(tampered_path) + "$", tampered)
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--sumdb", f"{sumdb.name}={database.url}",
                        "--sumdb-key", sumdb.vkey)

    refused = proxy.get(module.url_path(".zip"))
    assert refused.status != 200, refused.text
    assert all(database.count(path) == 1 for path in PROOF_TILES), database.paths()

    # Nothing of the failed proof was kept: the tiles are asked again, the zip fetched again.
    database.clear_faults()
    resp = proxy.get(module.url_path(".zip"))
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(module.url_path(".zip"))
    assert database.count(tampered_path) == 2, database.paths()
    assert upstream.count(module.url_path(".zip")) == 2


def test_the_tree_consistency_tiles_travel_with_the_record_tiles(tmp_path, make_upstream,
                                                                 make_sumdb, start_proxy):
    # The proxy remembers a tree of 300 records; the next lookup is signed in a tree of 1000,
    # holding the second module's record at 999. Its inclusion proof needs tile/8/0/003.p/232
    # and tile/8/1/000.p/3; the proof that 1000 extends 300 needs tile/8/0/001 as well.
    tree = mt.ModuleTree(tmp_path / "tree")
    first, second = (tree.add(f"example.com/prooftiles{i}", "v1.0.0", {
        "go.mod": f"module example.com/prooftiles{i}\n\ngo 1.19\n".encode(),
        "p.go": b"package p\n",
    }) for i in (1, 2))
    sumdb = make_sumdb(tree.root)
    sumdb.stop()
    seed_log(sumdb.records_file, first, 0, 300, module_id=0)
    sumdb.start()
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    assert proxy.get(first.url_path(".zip")).status == 200

    sumdb.stop()
    seed_log(sumdb.records_file, second, 300, 1000, module_id=999)
    sumdb.delay = DELAY
    sumdb.start()
    sumdb.clear_log()
    resp = proxy.get(second.url_path(".zip"))
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(second.url_path(".zip"))

    wanted = ["/tile/8/0/001", "/tile/8/0/003.p/232", "/tile/8/1/000.p/3"]
    assert sumdb.wait_count("/tile/", len(wanted)) == len(wanted), sumdb.paths()
    tiles = [r for r in sumdb.requests if r.path.startswith("/tile/")]
    assert sorted(r.path for r in tiles) == wanted
    # Proven one after the other, the consistency proof's tile would start after the record
    # proof's tiles were answered.
    assert len(sumdb.overlapping("/tile/")) == 3, tiles


@pytest.mark.parametrize("size, tiles, tampered_path", [
    # The first hash of tile/8/1/000.p/2 (records 0-255) is not in record 0's proof, which
    # recomputes it from tile/8/0/000.
    (TREE_SIZE, PROOF_TILES, "/tile/8/1/000.p/2"),
    # In a tree of 70000 records no hash of tile/8/2/000.p/1 (records 0-65535) is in record 0's
    # proof, so the proof never loads that tile; the go command's reader loads it for the tree
    # hash and checks tile/8/1/000 against it.
    (70000, ["/tile/8/0/000", "/tile/8/0/273.p/112", "/tile/8/1/000", "/tile/8/1/001.p/17",
             "/tile/8/2/000.p/1"], "/tile/8/2/000.p/1"),
])
def test_a_tile_tampered_off_the_proof_path_is_neither_cached_nor_served(
        tmp_path, make_upstream, make_sumdb, start_proxy, size, tiles, tampered_path):
    # The go command's tile reader checks each tile it loads against its parent tile and the tree
    # hash against the signed root, and would refuse such a tile from us.
    tree, module, sumdb = seeded_tree_and_sumdb(tmp_path, make_sumdb, size=size)
    mirror = tmp_path / "mirror"
    for path in [module.lookup_path, *tiles]:
        answer = http_request(sumdb.port, path)
        assert answer.status == 200, path
        (mirror / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path.lstrip("/")).write_bytes(answer.body)
    genuine = (mirror / tampered_path.lstrip("/")).read_bytes()
    database = make_upstream(mirror, "database")
    tampered = bytes([genuine[0] ^ 1]) + genuine[1:]
    database.serve_body(re.escape(tampered_path) + "$", tampered)
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--sumdb", f"{sumdb.name}={database.url}",
                        "--sumdb-key", sumdb.vkey)

    refused = proxy.get(module.url_path(".zip"))
    assert refused.status != 200, refused.text
    # Every tile travelled in the proof's one round of fetches.
    assert all(database.count(path) == 1 for path in tiles), database.paths()

    # The tampered tile was dropped: asked for now, it comes from the database again.
    database.clear_faults()
    tile = proxy.get(f"/sumdb/{sumdb.name}{tampered_path}")
    assert tile.status == 200, tile.text
    assert tile.body == genuine
    assert database.count(tampered_path) == 2, database.paths()

    resp = proxy.get(module.url_path(".zip"))
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(module.url_path(".zip"))


@pytest.mark.parametrize("change", ["short", "long"])
def test_a_tile_of_the_wrong_length_is_neither_cached_nor_served(tmp_path, make_upstream,
                                                                  make_sumdb, start_proxy, change):
    # The go command's tile reader refuses a tile that is not exactly its width's hashes.
    tree, module, sumdb = seeded_tree_and_sumdb(tmp_path, make_sumdb)
    tile_path = "/tile/8/0/002.p/188"
    mirror = tmp_path / "mirror"
    answer = http_request(sumdb.port, tile_path)
    assert answer.status == 200
    genuine = answer.body
    assert len(genuine) == 188 * 32
    (mirror / tile_path.lstrip("/")).parent.mkdir(parents=True)
    (mirror / tile_path.lstrip("/")).write_bytes(genuine)
    database = make_upstream(mirror, "database")
    wrong = genuine[:-1] if change == "short" else genuine + genuine[:32]
    database.serve_body(re.escape(tile_path) + "$", wrong)
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--sumdb", f"{sumdb.name}={database.url}",
                        "--sumdb-key", sumdb.vkey)

    refused = proxy.get(f"/sumdb/{sumdb.name}{tile_path}")
    assert refused.status != 200, refused.text
    database.clear_faults()
    served = proxy.get(f"/sumdb/{sumdb.name}{tile_path}")
    assert served.status == 200, served.text
    assert served.body == genuine
    assert database.count(tile_path) == 2, database.paths()
