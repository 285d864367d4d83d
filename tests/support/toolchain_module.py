"""Builds the `golang.org/toolchain` module (a Go distribution in module form, as GOTOOLCHAIN and
`config/bootstrap.sh --install-go` download it) from an installed GOROOT into a ModuleTree.

The file selection follows the Go release's distpack rules for the module zip: no VCS files, only
bin/go and bin/gofmt, of pkg/ only pkg/include and pkg/tool/<goos>_<goarch> without the release
helpers (api, dist, distpack, metadata), no api/, doc/, misc/ or test/, and every go.mod below the
root renamed to _go.mod (a module zip may hold only the root go.mod; the go command, from 1.21,
copies them back when it switches to a downloaded toolchain). Executables get mode 0755 in the
zip, everything else 0644. WITHOUT_TESTS leaves out more, for speed.

The zip is written straight to disk and hashed while it is written, so the ~200 MB of input never
sits in memory.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import os
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from time import monotonic

import module_tree as mt

TOOLCHAIN = "golang.org/toolchain"
DEBIAN_GOROOT = Path("/usr/lib/go-1.19")
MOD = f"module {TOOLCHAIN}\n".encode()

_COPY_CHUNK = 1 << 20

# distpack's removals that apply to an installed GOROOT, as path globs ('**' spans directories).
_DROP = (
    ".git/**", ".gitattributes", ".github/**", ".gitignore", "VERSION.cache",
    "misc/cgo/*/_obj/**", "**/.DS_Store", "**/*.exe~", "src/cmd/dist/dist",
    "api/**", "doc/**", "misc/**", "test/**",
)
_RELEASE_HELPERS = {"api", "dist", "distpack", "metadata"}
_EXECUTABLE_SUFFIXES = (".bash", ".sh", ".pl", ".rc")

# What the integration tests leave out on top of the release rules: the standard library's and
# the tools' own tests and test data (3,900 of 8,200 files, 25 MB of 186 MB for Go 1.19). Only
# `go test std cmd` reads them; creating each file costs the unzip on the test machine's disk
# about half a millisecond, and the tests unpack the toolchain several times. bin/, pkg/tool/,
# VERSION and every other source file stay, so the installed Go builds programs.
WITHOUT_TESTS = ("**/testdata/**", "**/*_test.go")

# The zip entry that the tampered variant changes: stored, not deflated, so one byte can be
# flipped in place without rewriting the rest of the archive.
TAMPERED_ENTRY = "VERSION"


def toolchain_version(go_version: str, goos: str = "linux", goarch: str = "amd64") -> str:
    """'go1.19.8' -> 'v0.0.1-go1.19.8.linux-amd64'."""
    return f"v0.0.1-{go_version}.{goos}-{goarch}"


def read_go_version(goroot: Path) -> str:
    """The first line of GOROOT/VERSION, e.g. 'go1.19.8'."""
    return (goroot / "VERSION").read_text().splitlines()[0].strip()


@dataclasses.dataclass
class ToolchainBuild:
    """What add_toolchain wrote, with the figures a test reports."""

    module: mt.ModuleVersion
    go_version: str
    zip_path: Path
    files: int
    uncompressed_bytes: int
    seconds: float


def _glob_match(pattern: str, name: str) -> bool:
    """path.Match per element, where a '**' element spans any number of elements, even none."""
    pat, parts = pattern.split("/"), name.split("/")

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(parts)
        if pat[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and fnmatch.fnmatchcase(parts[j], pat[i]) and match(i + 1, j + 1)

    return match(0, 0)


def _keep(name: str, goos_goarch: str, without: tuple[str, ...]) -> bool:
    if any(_glob_match(p, name) for p in _DROP + without):
        return False
    if name.startswith("bin/"):
        return name in ("bin/go", "bin/gofmt")
    if name.startswith("pkg/"):
        if name.startswith("pkg/include/"):
            return True
        tool_dir = f"pkg/tool/{goos_goarch}/"
        return name.startswith(tool_dir) and name[len(tool_dir):] not in _RELEASE_HELPERS
    return True


def _zip_name(name: str) -> str:
    if name.endswith("/go.mod"):
        return name[: -len("go.mod")] + "_go.mod"
    return name


def _mode(name: str) -> int:
    if (name.startswith(("bin/", "pkg/tool/")) or name.endswith(_EXECUTABLE_SUFFIXES)
            or fnmatch.fnmatchcase(name.rsplit("/", 1)[-1], "go_?*_?*_exec")):
        return 0o755
    return 0o644


def select_files(goroot: Path, goos_goarch: str = "linux_amd64",
                 without: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """(GOROOT-relative name, source file) of every regular file the module zip holds, names as
    in the zip (go.mod already renamed), sorted. Symlinked directories are followed; `without`
    adds globs to leave out."""
    out = []
    for dirpath, _, filenames in os.walk(goroot, followlinks=True):
        rel_dir = os.path.relpath(dirpath, goroot)
        for filename in filenames:
            source = Path(dirpath) / filename
            name = filename if rel_dir == "." else f"{rel_dir}/{filename}".replace(os.sep, "/")
            if not stat.S_ISREG(source.stat().st_mode):
                continue
            if _keep(name, goos_goarch, without):
                out.append((_zip_name(name), source))
    out.sort(key=lambda f: f[0].encode())
    return out


def add_toolchain(tree: mt.ModuleTree, goroot: Path = DEBIAN_GOROOT, *,
                  goos: str = "linux", goarch: str = "amd64", without: tuple[str, ...] = (),
                  time: str = "2023-04-04T00:00:00Z") -> ToolchainBuild:
    """Writes golang.org/toolchain@v0.0.1-<GOROOT's version>.<goos>-<goarch> (.info, .mod, .zip,
    @v/list) into `tree` and indexes it there. `goos`/`goarch` only name the version and pick
    pkg/tool/<goos>_<goarch>: the binaries are whatever `goroot` holds."""
    started = monotonic()
    go_version = read_go_version(goroot)
    version = toolchain_version(go_version, goos, goarch)
    mv = mt.ModuleVersion(TOOLCHAIN, version, time)
    vdir = tree.root / mv.escaped_path / "@v"
    vdir.mkdir(parents=True, exist_ok=True)
    zip_path = vdir / f"{mv.escaped_version}.zip"
    partial = zip_path.with_name(zip_path.name + ".partial")
    prefix = f"{TOOLCHAIN}@{version}/"

    digests, uncompressed = [], 0
    files = select_files(goroot, f"{goos}_{goarch}", without)
    with zipfile.ZipFile(partial, "w") as zf:
        for name, source in files:
            info = zipfile.ZipInfo(prefix + name, date_time=mt.ZIP_TIME)
            info.compress_type = (zipfile.ZIP_STORED if name == TAMPERED_ENTRY
                                  else zipfile.ZIP_DEFLATED)
            info.external_attr = (stat.S_IFREG | _mode(name)) << 16
            # Fastest deflate: a third of the build time of the default level for a zip only
            # about a tenth larger; the h1 does not depend on it. (Python < 3.13 has no public
            # spelling for a ZipInfo passed to open().)
            info._compresslevel = 1
            digest = hashlib.sha256()
            with open(source, "rb") as src, zf.open(info, "w") as dst:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    uncompressed += len(chunk)
            digests.append((prefix + name, digest.hexdigest()))
    os.replace(partial, zip_path)
    (vdir / f"{mv.escaped_version}.mod").write_bytes(MOD)
    (vdir / f"{mv.escaped_version}.info").write_bytes(mv.info_json())

    mv.zip_sum = mt.hash1_of_digests(digests)
    mv.mod_sum = mt.gomod_hash(MOD)
    mv.zip_size = zip_path.stat().st_size
    tree.index(mv)
    return ToolchainBuild(mv, go_version, zip_path, len(files), uncompressed,
                          monotonic() - started)


# Local file header and central directory header layouts (APPNOTE 4.3.7, 4.3.12).
_LOCAL = struct.Struct("<4s5H3I2H")
_CENTRAL = struct.Struct("<4s6H3I5H2I")
_END = struct.Struct("<4s4H2IH")
_LOCAL_CRC_AT, _CENTRAL_CRC_AT = 14, 16


def write_tampered_zip(genuine: Path, out: Path, entry: str = TAMPERED_ENTRY) -> None:
    """Copies `genuine` to `out` with the last byte of the stored file `entry` (GOROOT-relative)
    flipped and its CRC-32 fixed in both headers: a well-formed zip whose h1 differs. `out` is
    replaced, never written through, so a hard link to `genuine` there is safe."""
    with zipfile.ZipFile(genuine) as zf:
        [info] = [i for i in zf.infolist() if i.filename.split("/", 2)[-1] == entry]
    if info.compress_type != zipfile.ZIP_STORED or info.file_size == 0:
        raise ValueError(f"{info.filename}: only a non-empty stored entry can be patched")
    out.unlink(missing_ok=True)
    shutil.copyfile(genuine, out)
    with open(out, "r+b") as f:
        f.seek(info.header_offset)
        local = _LOCAL.unpack(f.read(_LOCAL.size))
        data_at = info.header_offset + _LOCAL.size + local[9] + local[10]
        f.seek(data_at)
        data = bytearray(f.read(info.file_size))
        data[-1] ^= 0x01
        f.seek(data_at)
        f.write(data)
        crc = struct.pack("<I", zlib.crc32(data))
        f.seek(info.header_offset + _LOCAL_CRC_AT)
        f.write(crc)

        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _END.size - 0xFFFF))
        tail = f.read()
        end = _END.unpack_from(tail, tail.rindex(b"PK\x05\x06"))
        count, cd_offset = end[4], end[6]
        f.seek(cd_offset)
        for _ in range(count):
            at = f.tell()
            central = _CENTRAL.unpack(f.read(_CENTRAL.size))
            name = f.read(central[10])
            f.seek(central[11] + central[12], io.SEEK_CUR)
            if name == info.filename.encode():
                f.seek(at + _CENTRAL_CRC_AT)
                f.write(crc)
                return
    raise ValueError(f"{info.filename} is not in the central directory of {genuine}")
