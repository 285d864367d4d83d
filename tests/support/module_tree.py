"""Builds real Go modules into a directory laid out like the GOPROXY URL space.

A tree root holds, per module, `<escaped path>/@v/list`, `<escaped version>.info|.mod|.zip` and
optionally `<escaped path>/@latest`, so a static file server (tests/support/test_upstream.py) or
`GOPROXY=file://<root>` can serve it. Zips follow the module zip rules (spec section 4): entries
`<path>@<version>/...`, no directory entries, a root go.mod unless the version is +incompatible.
The h1 helpers implement dirhash Hash1 (spec sections 4.6-4.8) so tests can compare against what
`go mod download -json` reports.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Callable, Iterable

# Fixed entry time: zip bytes must be identical on every build so hashes are reproducible.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)

# Read size when hashing a zip entry: a toolchain zip holds files of tens of MB.
_HASH_CHUNK = 1 << 20

BIG_BLOB_SIZE = 40 * 1024 * 1024


def escape_path(module_path: str) -> str:
    """Case-encodes a module path or version: 'A' -> '!a' (spec 2.1)."""
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in module_path)


escape_version = escape_path


def hash1_of_digests(digests: Iterable[tuple[str, str]]) -> str:
    """dirhash.Hash1 from (name, sha256 hex) pairs, names sorted bytewise, one line each; taking
    digests lets a caller hash a file while it streams it, so no content is read twice."""
    lines = []
    for name, digest in sorted(digests, key=lambda d: d[0].encode()):
        if "\n" in name:
            raise ValueError(f"file name with newline: {name!r}")
        lines.append(f"{digest}  {name}\n")
    summary = hashlib.sha256("".join(lines).encode()).digest()
    return "h1:" + base64.b64encode(summary).decode()


def hash1(files: Iterable[tuple[str, bytes]]) -> str:
    """dirhash.Hash1 over (name, content) pairs."""
    return hash1_of_digests((name, hashlib.sha256(content).hexdigest()) for name, content in files)


def zip_hash(zip_file: bytes | Path) -> str:
    """h1 of a module zip, given as bytes or as a path: every entry as stored, directory entries
    included with empty content. Entries are read a chunk at a time, never whole."""
    digests = []
    with zipfile.ZipFile(io.BytesIO(zip_file) if isinstance(zip_file, bytes) else zip_file) as zf:
        for info in zf.infolist():
            digest = hashlib.sha256()
            if not info.filename.endswith("/"):
                with zf.open(info) as entry:
                    while chunk := entry.read(_HASH_CHUNK):
                        digest.update(chunk)
            digests.append((info.filename, digest.hexdigest()))
    return hash1_of_digests(digests)


def gomod_hash(mod_bytes: bytes) -> str:
    """h1 of a .mod answer: Hash1 over the single name 'go.mod' (spec 4.7)."""
    return hash1([("go.mod", mod_bytes)])


def make_zip(module_path: str, version: str, files: dict[str, bytes],
             stored: Iterable[str] = (), executable: Iterable[str] = ()) -> bytes:
    """Module zip with entries `<path>@<version>/<name>`; Deflate except names in `stored`; mode
    0644 except names in `executable`, which get 0755 (h1 ignores modes, unzip keeps them)."""
    stored, executable = set(stored), set(executable)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{module_path}@{version}/{name}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            # The plain 0644 entries carry no file type bits: adding them would change the bytes
            # of every existing zip.
            info.external_attr = ((stat.S_IFREG | 0o755) if name in executable else 0o644) << 16
            zf.writestr(info, files[name])
    return buf.getvalue()


@dataclasses.dataclass
class ModuleVersion:
    """One module@version as the tree serves it; the byte answers live on disk under the root."""

    path: str
    version: str
    time: str
    listed: bool = True
    zip_sum: str = ""
    mod_sum: str = ""
    zip_size: int = 0

    @property
    def escaped_path(self) -> str:
        return escape_path(self.path)

    @property
    def escaped_version(self) -> str:
        return escape_version(self.version)

    def url_path(self, suffix: str) -> str:
        """URL path (leading '/') of this version's `.info`, `.mod` or `.zip`."""
        return f"/{self.escaped_path}/@v/{self.escaped_version}{suffix}"

    @property
    def lookup_path(self) -> str:
        """The checksum database's lookup path, e.g. '/lookup/example.com/!upper@v1.0.0'."""
        return f"/lookup/{self.escaped_path}@{self.escaped_version}"

    def info_json(self) -> bytes:
        return json.dumps({"Version": self.version, "Time": self.time}).encode()


class ModuleTree:
    """A directory in proxy URL layout plus an index of what it holds."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.versions: dict[tuple[str, str], ModuleVersion] = {}
        self.latest: dict[str, str] = {}  # module path -> version served at @latest

    # --- building -------------------------------------------------------------------------
    def add(self, module_path: str, version: str, files: dict[str, bytes], *,
            mod: bytes | None = None, time: str = "2024-01-01T00:00:00Z", listed: bool = True,
            stored: Iterable[str] = (), executable: Iterable[str] = ()) -> ModuleVersion:
        """Writes .info/.mod/.zip for one version (make_zip says what `stored` and `executable`
        do). `mod` defaults to files['go.mod']."""
        if mod is None:
            mod = files["go.mod"]
        mv = ModuleVersion(module_path, version, time, listed)
        vdir = self.root / mv.escaped_path / "@v"
        vdir.mkdir(parents=True, exist_ok=True)
        zip_bytes = make_zip(module_path, version, files, stored, executable)
        (vdir / f"{mv.escaped_version}.zip").write_bytes(zip_bytes)
        (vdir / f"{mv.escaped_version}.mod").write_bytes(mod)
        (vdir / f"{mv.escaped_version}.info").write_bytes(mv.info_json())
        mv.zip_sum = zip_hash(zip_bytes)
        mv.mod_sum = gomod_hash(mod)
        mv.zip_size = len(zip_bytes)
        self.index(mv)
        return mv

    def add_mod_only(self, module_path: str, version: str, mod: bytes, *,
                     time: str = "2024-01-01T00:00:00Z") -> ModuleVersion:
        """Writes only .info and .mod for one version, as proxies serve a version that `go`
        needs for its module graph but never downloads (no .zip)."""
        mv = ModuleVersion(module_path, version, time)
        vdir = self.root / mv.escaped_path / "@v"
        vdir.mkdir(parents=True, exist_ok=True)
        (vdir / f"{mv.escaped_version}.mod").write_bytes(mod)
        (vdir / f"{mv.escaped_version}.info").write_bytes(mv.info_json())
        mv.mod_sum = gomod_hash(mod)
        self.index(mv)
        return mv

    def index(self, mv: ModuleVersion) -> None:
        """Records a version whose files are already under the root (written by a builder of
        its own, e.g. tests/support/toolchain_module.py) and lists it."""
        self.versions[(mv.path, mv.version)] = mv
        self._write_list(mv.path)

    def set_latest(self, module_path: str, version: str) -> None:
        """Serves `<path>/@latest` with the .info of `version`."""
        mv = self.versions[(module_path, version)]
        (self.root / mv.escaped_path / "@latest").write_bytes(mv.info_json())
        self.latest[module_path] = version

    def _write_list(self, module_path: str) -> None:
        listed = [mv.version for mv in self.versions.values()
                  if mv.path == module_path and mv.listed]
        body = "".join(v + "\n" for v in listed)
        (self.root / escape_path(module_path) / "@v" / "list").write_text(body)

    def subset(self, root: Path, keep: Callable[[str], bool]) -> "ModuleTree":
        """A second tree at `root` holding only the modules whose path satisfies `keep`."""
        out = ModuleTree(root)
        for (module_path, version), mv in self.versions.items():
            if not keep(module_path):
                continue
            src = self.root / mv.escaped_path
            dst = out.root / mv.escaped_path
            (dst / "@v").mkdir(parents=True, exist_ok=True)
            for suffix in (".info", ".mod", ".zip"):
                name = mv.escaped_version + suffix
                _link_or_copy(src / "@v" / name, dst / "@v" / name)
            out.versions[(module_path, version)] = dataclasses.replace(mv)
            out._write_list(module_path)
        for module_path, version in self.latest.items():
            if keep(module_path):
                out.set_latest(module_path, version)
        return out

    # --- reading --------------------------------------------------------------------------
    def get(self, module_path: str, version: str) -> ModuleVersion:
        return self.versions[(module_path, version)]

    def module_paths(self) -> list[str]:
        return sorted({p for p, _ in self.versions})

    def file_bytes(self, url_path: str) -> bytes:
        """The bytes this tree serves at a URL path like '/example.com/hello/@v/list'."""
        return (self.root / url_path.lstrip("/")).read_bytes()

    def list_body(self, module_path: str) -> bytes:
        return self.file_bytes(f"/{escape_path(module_path)}/@v/list")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# --- the standard tree the integration suite uses -------------------------------------------------

HELLO = "example.com/hello"
HELLO_V2 = "example.com/hello/v2"
UPPER = "example.com/Upper"
INCOMPAT = "example.com/incompat"
PSEUDO = "example.com/pseudo"
PRIVATE = "example.com/privatemod"
BIG = "example.com/big"

UPPER_RC = "v1.0.0-RC1"
INCOMPAT_VERSION = "v2.0.0+incompatible"
PSEUDO_VERSION = "v0.0.0-20240102030405-abcdef123456"

# The hello v1.0.0 files are the spec's test vector (section 4.8), so its hashes are known.
SPEC_HELLO_MOD = b"module example.com/hello\n\ngo 1.19\n"
SPEC_HELLO_MOD_H1 = "h1:RslnPMa/nR3RpskRbvoDBlr6/b2RhFS0EEnq72RQTo0="
SPEC_HELLO_ZIP_H1 = "h1:kztWu7BEAMRvHrnoFxvz3DBoscffIMIfJJefjPuIhpY="
SPEC_HELLO_ZIP_WITH_DIRS_H1 = "h1:qplMI7475b1E91OvTSvErisGqdYRMQmKt1dkck4CLi0="

RETRACT_RATIONALE = "v1.1.0 returns the wrong greeting"


def _go_file(package: str, func: str, result: str) -> bytes:
    return f'package {package}\n\nfunc {func}() string {{ return "{result}" }}\n'.encode()


def _gomod(module_path: str, extra: str = "") -> bytes:
    return f"module {module_path}\n\ngo 1.19\n{extra}".encode()


def build_standard_tree(root: Path, *, with_big: bool = True) -> ModuleTree:
    """Every module the suite needs; the function each package exports returns '<pkg> <version>'."""
    tree = ModuleTree(root)

    tree.add(HELLO, "v1.0.0", {
        "go.mod": SPEC_HELLO_MOD,
        "hello.go": b'package hello\n\nfunc Hello() string { return "v1.0.0" }\n',
    }, time="2024-01-01T00:00:00Z")
    tree.add(HELLO, "v1.1.0", {
        "go.mod": _gomod(HELLO),
        "hello.go": _go_file("hello", "Hello", "v1.1.0"),
    }, time="2024-02-01T00:00:00Z")
    tree.add(HELLO, "v1.2.0", {
        "go.mod": _gomod(HELLO, f"\n// {RETRACT_RATIONALE}\nretract v1.1.0\n"),
        "hello.go": _go_file("hello", "Hello", "v1.2.0"),
        "LICENSE": b"Test license text.\n",
    }, time="2024-03-01T00:00:00Z")

    tree.add(HELLO_V2, "v2.0.0", {
        "go.mod": _gomod(HELLO_V2),
        "hello.go": _go_file("hello", "Hello", "hello/v2 v2.0.0"),
    }, time="2024-04-01T00:00:00Z")

    for version, when in (("v1.0.0-RC1", "2024-01-15T00:00:00Z"), ("v1.0.0", "2024-01-20T00:00:00Z")):
        tree.add(UPPER, version, {
            "go.mod": _gomod(UPPER),
            "upper.go": _go_file("upper", "Upper", f"Upper {version}"),
            "sub/Mixed.go": _go_file("sub", "Mixed", f"Upper/sub {version}"),
        }, time=when)

    incompat_mod = f"module {INCOMPAT}\n".encode()
    tree.add(INCOMPAT, INCOMPAT_VERSION, {
        "incompat.go": _go_file("incompat", "Incompat", f"incompat {INCOMPAT_VERSION}"),
    }, mod=incompat_mod, time="2024-05-01T00:00:00Z")

    tree.add(PSEUDO, PSEUDO_VERSION, {
        "go.mod": _gomod(PSEUDO),
        "pseudo.go": _go_file("pseudo", "Pseudo", "pseudo"),
    }, time="2024-01-02T03:04:05Z", listed=False)
    tree.set_latest(PSEUDO, PSEUDO_VERSION)

    tree.add(PRIVATE, "v1.0.0", {
        "go.mod": _gomod(PRIVATE),
        "privatemod.go": _go_file("privatemod", "Private", "privatemod v1.0.0"),
    }, time="2024-06-01T00:00:00Z")

    if with_big:
        blob = random.Random(20240101).randbytes(BIG_BLOB_SIZE)
        tree.add(BIG, "v1.0.0", {
            "go.mod": _gomod(BIG),
            "big.go": _go_file("big", "Big", "big v1.0.0"),
            "blob.bin": blob,
        }, time="2024-07-01T00:00:00Z", stored=["blob.bin"])
    return tree


def corrupt_zip_wrong_prefix(module_path: str, version: str) -> bytes:
    """A well-formed zip whose entries carry the wrong `module@version/` prefix."""
    return make_zip(module_path, version + "-wrong", {
        "go.mod": _gomod(module_path),
        "bad.go": _go_file("bad", "Bad", "corrupt"),
    })


# Program that imports one package of each kind of module in the tree.
PROGRAM_MAIN = b"""package main

import (
\t"fmt"

\tupper "example.com/Upper"
\tuppersub "example.com/Upper/sub"
\t"example.com/hello"
\thellov2 "example.com/hello/v2"
\t"example.com/incompat"
\t"example.com/pseudo"
)

func main() {
\tfmt.Println(hello.Hello())
\tfmt.Println(hellov2.Hello())
\tfmt.Println(upper.Upper())
\tfmt.Println(uppersub.Mixed())
\tfmt.Println(incompat.Incompat())
\tfmt.Println(pseudo.Pseudo())
}
"""

PROGRAM_GOMOD = f"""module example.com/prog

go 1.19

require (
\t{UPPER} {UPPER_RC}
\t{HELLO} v1.2.0
\t{HELLO_V2} v2.0.0
\t{INCOMPAT} {INCOMPAT_VERSION}
\t{PSEUDO} {PSEUDO_VERSION}
)
""".encode()

PROGRAM_OUTPUT = "\n".join([
    "v1.2.0",
    "hello/v2 v2.0.0",
    f"Upper {UPPER_RC}",
    f"Upper/sub {UPPER_RC}",
    f"incompat {INCOMPAT_VERSION}",
    "pseudo",
]) + "\n"


def write_program(directory: Path) -> None:
    """Writes the main module that imports the test modules (see PROGRAM_OUTPUT)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "go.mod").write_bytes(PROGRAM_GOMOD)
    (directory / "main.go").write_bytes(PROGRAM_MAIN)


def tampered_zip(genuine: bytes) -> bytes:
    """The same module zip with one byte of one file changed: still a well-formed module zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(genuine)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        changed = False
        for info in source.infolist():
            data = source.read(info)
            if not changed and not info.filename.endswith("/go.mod") and data:
                data = bytes([data[0] ^ 0x01]) + data[1:]
                changed = True
            target.writestr(info, data)
        assert changed
    return out.getvalue()
