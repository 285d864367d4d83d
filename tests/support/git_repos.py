"""Builds local git repositories of Go modules for the `direct` tier's tests, with Debian's git.

Every commit gets fixed author/committer names and dates through the environment and git reads no
user or system configuration, so commit hashes (and therefore pseudo-versions) are the same on
every run. Repositories live under `<root>/<host>/<repository path>` (non-bare, which
`git http-backend` serves as well), so tests/support/git_server.py can serve several host names.

The standard set (build_standard_repos), on the private host git.corp.example.test:
  team/lib      v1.0.0, v1.0.1, v1.1.0 (its go.mod retracts v1.0.1), then an untagged commit
                (a pseudo-version); a `feature` branch off v1.1.0; from v1.1.0 on it holds a
                nested module `sub/` (tag sub/v1.0.0), which the parent's zip must not contain,
                and the `/v2` major in the `v2/` subdirectory (tag v2.0.0)
  team/incompat no go.mod, tag v3.0.0: v3.0.0+incompatible
  Team/Upper    an upper-case module path, v1.0.0
Each module has a Go package whose function returns "<name> <version>", so a program importing
them all prints which versions it was built with (PROGRAM_OUTPUT).
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
from pathlib import Path
from typing import Optional

GIT = "/usr/bin/git"
PRIVATE_HOST = "git.corp.example.test"

LIB = f"{PRIVATE_HOST}/team/lib"
LIB_SUB = f"{LIB}/sub"
LIB_V2 = f"{LIB}/v2"
INCOMPAT = f"{PRIVATE_HOST}/team/incompat"
UPPER = f"{PRIVATE_HOST}/Team/Upper"

INCOMPAT_VERSION = "v3.0.0+incompatible"
RETRACTED = "v1.0.1"

# The first commit's time; each later commit is one day after the one before.
_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
_DAY = 86400


def git_env(when: int) -> dict:
    """A git environment that reads no configuration and dates commits at `when` (UTC)."""
    stamp = f"@{when} +0000"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.test",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "LC_ALL": "C",
    }


def _go_file(package: str, func: str, result: str) -> str:
    return f'package {package}\n\nfunc {func}() string {{ return "{result}" }}\n'


def _gomod(module_path: str, extra: str = "") -> str:
    return f"module {module_path}\n\ngo 1.19\n{extra}"


@dataclasses.dataclass
class Commit:
    hash: str
    when: int

    @property
    def pseudo_time(self) -> str:
        """The yyyymmddhhmmss part of a pseudo-version for this commit."""
        import time
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(self.when))


class GitRepo:
    """One repository under construction: write files, commit, tag, branch."""

    def __init__(self, root: Path, host: str, repo_path: str):
        self.host = host
        self.repo_path = repo_path
        self.dir = root / host / repo_path
        self.dir.mkdir(parents=True)
        self._clock = _EPOCH
        self._run("init", "-q", "-b", "main")

    @property
    def root_path(self) -> str:
        """The repository's import-path root, e.g. 'git.corp.example.test/team/lib'."""
        return f"{self.host}/{self.repo_path}"

    def _run(self, *args: str, when: Optional[int] = None) -> str:
        proc = subprocess.run([GIT, *args], cwd=self.dir, env=git_env(when or self._clock),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} in {self.dir}: {proc.stderr}")
        return proc.stdout

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, message: str, files: dict[str, str]) -> Commit:
        self.write(files)
        self._run("add", "-A")
        self._run("commit", "-q", "-m", message)
        commit = Commit(self._run("rev-parse", "HEAD").strip(), self._clock)
        self._clock += _DAY
        return commit

    def tag(self, *names: str) -> None:
        for name in names:
            self._run("tag", name)

    def branch(self, name: str, start: str) -> None:
        self._run("checkout", "-q", "-b", name, start)

    def checkout(self, name: str) -> None:
        self._run("checkout", "-q", name)

    def finish(self) -> None:
        """Leaves `main` checked out and packs nothing: http-backend serves loose objects too."""
        self.checkout("main")


def pseudo_version(base: str, commit: Commit) -> str:
    """The pseudo-version of a commit after release tag `base` (vX.Y.Z -> vX.Y.(Z+1)-0.time-hash)."""
    major, minor, patch = base.lstrip("v").split(".")
    return f"v{major}.{minor}.{int(patch) + 1}-0.{commit.pseudo_time}-{commit.hash[:12]}"


@dataclasses.dataclass
class Repos:
    """What build_standard_repos made: the root to serve, and the facts tests need."""

    root: Path
    lib_pseudo: str      # pseudo-version of team/lib's untagged commit on main
    lib_feature: str     # pseudo-version of the tip of team/lib's `feature` branch
    feature_hash: str

    def versions(self) -> list[tuple[str, str]]:
        """Every module@version of the set that `go mod download` can fetch."""
        return [
            (LIB, "v1.0.0"), (LIB, RETRACTED), (LIB, "v1.1.0"), (LIB, self.lib_pseudo),
            (LIB, self.lib_feature), (LIB_SUB, "v1.0.0"), (LIB_V2, "v2.0.0"),
            (INCOMPAT, INCOMPAT_VERSION), (UPPER, "v1.0.0"),
        ]

    def program_requires(self) -> list[tuple[str, str]]:
        return [(LIB, self.lib_pseudo), (LIB_SUB, "v1.0.0"), (LIB_V2, "v2.0.0"),
                (INCOMPAT, INCOMPAT_VERSION), (UPPER, "v1.0.0")]


def build_standard_repos(root: Path) -> Repos:
    lib = GitRepo(root, PRIVATE_HOST, "team/lib")
    lib.commit("v1.0.0", {"go.mod": _gomod(LIB), "lib.go": _go_file("lib", "Lib", "lib v1.0.0")})
    lib.tag("v1.0.0")
    lib.commit("v1.0.1", {"lib.go": _go_file("lib", "Lib", "lib v1.0.1")})
    lib.tag(RETRACTED)
    lib.commit("v1.1.0 with sub and v2", {
        "go.mod": _gomod(LIB, f"\n// {RETRACTED} is broken\nretract {RETRACTED}\n"),
        "lib.go": _go_file("lib", "Lib", "lib v1.1.0"),
        "sub/go.mod": _gomod(LIB_SUB),
        "sub/sub.go": _go_file("sub", "Sub", "sub v1.0.0"),
        "v2/go.mod": _gomod(LIB_V2),
        "v2/lib.go": _go_file("lib", "Lib", "lib/v2 v2.0.0"),
    })
    lib.tag("v1.1.0", "sub/v1.0.0", "v2.0.0")
    untagged = lib.commit("untagged", {"lib.go": _go_file("lib", "Lib", "lib untagged")})
    lib.branch("feature", "v1.1.0")
    feature = lib.commit("feature", {"lib.go": _go_file("lib", "Lib", "lib feature")})
    lib.finish()

    incompat = GitRepo(root, PRIVATE_HOST, "team/incompat")
    incompat.commit("v3", {"incompat.go": _go_file("incompat", "Incompat",
                                                   f"incompat {INCOMPAT_VERSION}")})
    incompat.tag("v3.0.0")
    incompat.finish()

    upper = GitRepo(root, PRIVATE_HOST, "Team/Upper")
    upper.commit("v1.0.0", {"go.mod": _gomod(UPPER),
                            "upper.go": _go_file("upper", "Upper", "Upper v1.0.0")})
    upper.tag("v1.0.0")
    upper.finish()

    return Repos(root, pseudo_version("v1.1.0", untagged), pseudo_version("v1.1.0", feature),
                 feature.hash)


# Further repositories the tests use, each one module at its root with tag v1.0.0 (two for
# SECOND_VERSION_REPO): credentials, a hanging server, concurrency, and two public-looking paths
# on a loopback host for the allow list.
SECRET = f"{PRIVATE_HOST}/team/secret"
VAULT = f"{PRIVATE_HOST}/team/vault"
SLOW = f"{PRIVATE_HOST}/team/slow"
CONCURRENT = [f"{PRIVATE_HOST}/team/c{i}" for i in range(8)]
LOOPBACK_HOST = "gitlab.localhost"
ALLOWED = f"{LOOPBACK_HOST}/allowed/lib"
NOT_ALLOWED = f"{LOOPBACK_HOST}/other/lib"


def build_test_repos(root: Path) -> Repos:
    """The standard set plus the further repositories above."""
    repos = build_standard_repos(root)
    for module_path in (SECRET, VAULT, SLOW, *CONCURRENT, ALLOWED, NOT_ALLOWED):
        host, repo_path = module_path.split("/", 1)
        build_simple_repo(root, host, repo_path)
    return repos


def build_simple_repo(root: Path, host: str, repo_path: str,
                      versions: tuple[str, ...] = ("v1.0.0",), padding: int = 0) -> str:
    """A repository holding one module at its root, one tagged commit per version; `padding`
    bytes of incompressible data per version make fetches measurable. Returns the module path."""
    module_path = f"{host}/{repo_path}"
    package = repo_path.rsplit("/", 1)[-1].lower().replace("-", "")
    repo = GitRepo(root, host, repo_path)
    for index, version in enumerate(versions):
        files = {"go.mod": _gomod(module_path),
                 f"{package}.go": _go_file(package, "Name", f"{package} {version}")}
        if padding:
            files[f"data{index}.txt"] = random.Random(f"{module_path}@{version}").randbytes(padding).hex()
        repo.commit(version, files)
        repo.tag(version)
    repo.finish()
    return module_path


PROGRAM_OUTPUT = "\n".join([
    "lib untagged", "sub v1.0.0", "lib/v2 v2.0.0", f"incompat {INCOMPAT_VERSION}",
    "Upper v1.0.0",
]) + "\n"


def write_program(directory: Path, repos: Repos) -> None:
    """A main module importing one package of every module of the standard set."""
    directory.mkdir(parents=True, exist_ok=True)
    requires = "".join(f"\t{path} {version}\n" for path, version in repos.program_requires())
    (directory / "go.mod").write_text(
        f"module example.test/prog\n\ngo 1.19\n\nrequire (\n{requires})\n")
    (directory / "main.go").write_text(f"""package main

import (
\t"fmt"

\tupper "{UPPER}"
\tincompat "{INCOMPAT}"
\tlib "{LIB}"
\tsub "{LIB_SUB}"
\tlibv2 "{LIB_V2}"
)

func main() {{
\tfmt.Println(lib.Lib())
\tfmt.Println(sub.Sub())
\tfmt.Println(libv2.Lib())
\tfmt.Println(incompat.Incompat())
\tfmt.Println(upper.Upper())
}}
""")
