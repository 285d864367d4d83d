"""The tiles the real go command loads from a checksum database, against sumdb::client_tiles (the
plan a bundle export follows, printed by build/tests/client_tiles_tool): a client with no
remembered tree, then the same client once the tree has grown, proving the older tree too. The
database's own tiles for that plan then pass sumdb::check_records_in_tree (what a bundle import
runs), and fail it with any one byte changed.

The database's record log is seeded before it starts, so the tree has hundreds of records (full
and partial level-0 tiles, later level-2 tiles) and the verified modules sit at chosen record ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import module_tree as mt
from conftest import http_request, proxy_binary

COLD_TREE_SIZE = 700  # level-0 tiles 0 and 1 full, tile 2 partial; level-1 tile 0 partial
COLD_IDS = [0, 255, 256, COLD_TREE_SIZE - 1]
GROWN_TREE_SIZE = 66000  # past 65536 records, so level-2 tiles appear
GROWN_IDS = [65536, GROWN_TREE_SIZE - 1]


def client_tiles_tool() -> Path:
    """The test tool built next to the proxy (build/tests/client_tiles_tool), or
    $GOMODPROXY_CLIENT_TILES_TOOL."""
    configured = os.environ.get("GOMODPROXY_CLIENT_TILES_TOOL")
    tool = Path(configured) if configured else proxy_binary().parent / "tests" / "client_tiles_tool"
    if not tool.exists():
        pytest.fail(f"{tool} not found (build the client_tiles_tool target, or set "
                    "GOMODPROXY_CLIENT_TILES_TOOL)")
    return tool


def planned_tiles(tree_size: int, record_ids: list[int], older_tree_size: int = 0) -> list[str]:
    proc = subprocess.run([str(client_tiles_tool()), "plan", str(tree_size), str(older_tree_size),
                           *map(str, record_ids)], capture_output=True, text=True, timeout=30)
    # Empty stderr too: a sanitizer build reports there and still exits 0.
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return sorted(proc.stdout.split())


def record_text(mv: mt.ModuleVersion) -> str:
    return (f"{mv.path} {mv.version} {mv.zip_sum}\n"
            f"{mv.path} {mv.version}/go.mod {mv.mod_sum}\n")


def record_hash(mv: mt.ModuleVersion) -> str:
    """The log's leaf hash of the module's record, hex."""
    return hashlib.sha256(b"\0" + record_text(mv).encode()).hexdigest()


def record_line(path: str, version: str, text: str) -> str:
    return json.dumps({"path": path, "version": version, "text": text}) + "\n"


def seed_records(records_file: Path, first_id: int, size: int,
                 modules: dict[int, mt.ModuleVersion]) -> None:
    """Appends records first_id..size-1 to the database's log: the go.sum lines of `modules` at
    their ids, filler records the go command never looks up elsewhere."""
    with records_file.open("a") as out:
        for record_id in range(first_id, size):
            mv = modules.get(record_id)
            if mv is None:
                path = f"filler.invalid/r{record_id}"
                out.write(record_line(path, "v1.0.0", f"{path} v1.0.0 h1:{record_id:043d}=\n"))
            else:
                out.write(record_line(mv.path, mv.version, record_text(mv)))


def fetched_tiles(sumdb, lookups: int) -> list[str]:
    """The tile paths the go command asked for, once the log shows its `lookups` lookups."""
    assert sumdb.wait_count("/lookup/", lookups) == lookups, sumdb.paths()
    tiles = [r for r in sumdb.requests if r.path.startswith("/tile/")]
    # A 404 would have sent the client to the full tile instead, which is not the plan.
    assert all(r.status == 200 for r in tiles), tiles
    return sorted({r.path.removeprefix("/") for r in tiles})


def check_tiles(tile_dir: Path, tree_size: int, root: bytes,
                records: dict[int, mt.ModuleVersion]) -> tuple[int, str]:
    """check_records_in_tree over the files under tile_dir: (exit code, "ok" or the reason)."""
    hashes = [f"{record_id}={record_hash(mv)}" for record_id, mv in records.items()]
    proc = subprocess.run([str(client_tiles_tool()), "check", str(tree_size), root.hex(),
                           str(tile_dir), *hashes], capture_output=True, text=True, timeout=30)
    assert not proc.stderr, proc.stderr
    return proc.returncode, proc.stdout.strip()


def assert_database_tiles_check(sumdb, tile_dir: Path, tiles: list[str], tree_size: int,
                                records: dict[int, mt.ModuleVersion]) -> None:
    """The database's bytes of `tiles` pass check_records_in_tree against its signed tree head;
    the same with any one tile's first byte changed does not."""
    note = http_request(sumdb.port, "/latest").body.decode().split("\n")
    assert int(note[1]) == tree_size, note
    root = base64.b64decode(note[2])
    for path in tiles:
        resp = http_request(sumdb.port, f"/{path}")
        assert resp.status == 200, path
        (tile_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (tile_dir / path).write_bytes(resp.body)
    assert check_tiles(tile_dir, tree_size, root, records) == (0, "ok")
    for path in tiles:
        genuine = (tile_dir / path).read_bytes()
        (tile_dir / path).write_bytes(bytes([genuine[0] ^ 1]) + genuine[1:])
        code, reason = check_tiles(tile_dir, tree_size, root, records)
        assert code == 1 and reason != "ok", path
        (tile_dir / path).write_bytes(genuine)


def remembered_tree_size(go, sumdb) -> int:
    latest = (go.gopath / "pkg" / "sumdb" / sumdb.name / "latest").read_text()
    return int(latest.splitlines()[1])


def add_modules(tree: mt.ModuleTree, record_ids: list[int]) -> dict[int, mt.ModuleVersion]:
    """One module per record id, example.com/tileplan/r<id>@v1.0.0."""
    modules = {}
    for record_id in record_ids:
        path = f"example.com/tileplan/r{record_id}"
        modules[record_id] = tree.add(path, "v1.0.0", {
            "go.mod": f"module {path}\n\ngo 1.19\n".encode(),
            "r.go": f"package r\n\nconst ID = {record_id}\n".encode(),
        })
    return modules


def seeded_sumdb(make_sumdb, tree: mt.ModuleTree, size: int,
                 modules: dict[int, mt.ModuleVersion]):
    """A test checksum database whose log holds `size` records, `modules` at their ids."""
    sumdb = make_sumdb(tree.root)
    sumdb.stop()
    seed_records(sumdb.records_file, 0, size, modules)
    sumdb.start()
    return sumdb


def download(go, modules: dict[int, mt.ModuleVersion], record_ids: list[int]) -> None:
    go.download_json(*(f"{modules[i].path}@{modules[i].version}" for i in record_ids))


# (tree size, record ids the go command verifies): around the 256- and 65536-record boundaries
# where tiles turn full and a new tile level appears.
EDGE_CASES = [
    (1, [0]),
    (255, [0, 254]),
    (256, [0, 255]),
    (257, [0, 256]),
    (65536, [0, 65535]),
    (65537, [255, 65536]),
    (70000, [65535, 65536, 69887, 69888, 69999]),
]


def test_go_fetches_the_planned_tiles_at_edge_tree_sizes(tmp_path, make_upstream, make_sumdb,
                                                         make_go):
    tree = mt.ModuleTree(tmp_path / "tree")
    modules = add_modules(tree, sorted({i for _, ids in EDGE_CASES for i in ids}))
    upstream = make_upstream(tree.root)
    for size, record_ids in EDGE_CASES:
        sumdb = seeded_sumdb(make_sumdb, tree, size, {i: modules[i] for i in record_ids})
        go = make_go(upstream.url)
        go.gosumdb = sumdb.gosumdb
        download(go, modules, record_ids)
        planned = planned_tiles(size, record_ids)
        assert fetched_tiles(sumdb, len(record_ids)) == planned, size
        assert remembered_tree_size(go, sumdb) == size
        assert_database_tiles_check(sumdb, tmp_path / f"tiles{size}", planned, size,
                                    {i: modules[i] for i in record_ids})
        sumdb.stop()


def test_go_fetches_the_planned_tiles_cold_and_after_the_tree_grows(tmp_path, make_upstream,
                                                                    make_sumdb, make_go):
    tree = mt.ModuleTree(tmp_path / "tree")
    modules = add_modules(tree, COLD_IDS + GROWN_IDS)
    upstream = make_upstream(tree.root)
    sumdb = seeded_sumdb(make_sumdb, tree, COLD_TREE_SIZE,
                         {i: modules[i] for i in COLD_IDS})

    go = make_go(upstream.url)
    go.gosumdb = sumdb.gosumdb
    download(go, modules, COLD_IDS)
    assert fetched_tiles(sumdb, len(COLD_IDS)) == planned_tiles(COLD_TREE_SIZE, COLD_IDS)
    assert remembered_tree_size(go, sumdb) == COLD_TREE_SIZE

    # The tree grows; the client keeps its remembered tree head (GOPATH/pkg/sumdb) but loses its
    # tile cache (GOMODCACHE/cache/download/sumdb), so every tile it needs comes from the server.
    sumdb.stop()
    seed_records(sumdb.records_file, COLD_TREE_SIZE, GROWN_TREE_SIZE, modules)
    sumdb.start()
    sumdb.clear_log()
    shutil.rmtree(go.modcache / "cache" / "download" / "sumdb")
    download(go, modules, GROWN_IDS)
    planned = planned_tiles(GROWN_TREE_SIZE, GROWN_IDS, COLD_TREE_SIZE)
    assert fetched_tiles(sumdb, len(GROWN_IDS)) == planned
    assert remembered_tree_size(go, sumdb) == GROWN_TREE_SIZE
    # The older tree's own tiles (narrower) are checked as prefixes of the grown tree's tiles.
    assert "tile/8/0/002.p/188" in planned and "tile/8/0/002" in planned
    assert_database_tiles_check(sumdb, tmp_path / "tiles", planned, GROWN_TREE_SIZE,
                                {i: modules[i] for i in GROWN_IDS})
