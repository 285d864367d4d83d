"""A git HTTP server for the `direct` tier's tests, on 127.0.0.1 only.

It serves the repositories of tests/support/git_repos.py (`<root>/<host>/<repository path>`)
with Debian's `git http-backend` (CGI), and it is also the HTTP forward proxy through which the
`go` command and git reach the made-up host names, so nothing needs DNS and nothing leaves
127.0.0.1:
  - absolute-form requests (`GET http://git.corp.example.test/team/lib?go-get=1`, as a client
    with HTTP_PROXY=http://127.0.0.1:PORT sends them) are answered by the server itself, for
    any host that has a directory under the root;
  - `CONNECT host:443` is refused (403), so the `go` command, whose HTTPS attempt fails, falls
    back to http for paths in GOINSECURE;
  - `?go-get=1` is answered with `<meta name="go-import" content="HOST/REPO git http://HOST/REPO">`
    for the longest repository path that prefixes the request, else for the first two path
    elements (as GitLab answers for a repository that does not exist);
  - smart HTTP (`info/refs`, `git-upload-pack`) goes to git http-backend; request bodies may be
    chunked and gzip-compressed, as git sends them.
Per repository (or group) path: basic auth (`require_auth`), optionally echoing the credentials
of an authorized request for a missing repository in the 404 body (`echo_credentials`), a hang
mode (`hang`: the request is read and never answered until released or the server stops) and a
delay (`delay`). Every request is logged (`requests`), and
for an upload-pack POST the log says whether its body carries `have` lines (an incremental
fetch into a repository that has objects) or none (a fresh clone).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import re
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Optional

from threaded_http_server import QuietHandler, ThreadedHttpServer

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
# Bound on how long a hung request may block, so a forgotten hang cannot wedge a test run.
MAX_BLOCK_SECONDS = 120.0
DEFAULT_HOST = "git.corp.example.test"

_PKT_HAVE = re.compile(rb"[0-9a-f]{4}have [0-9a-f]{40}")
_PKT_WANT = re.compile(rb"[0-9a-f]{4}want [0-9a-f]{40}")
_PKT_COMMAND = re.compile(rb"[0-9a-f]{4}command=([a-z-]+)")


@dataclasses.dataclass(frozen=True)
class GitRequest:
    method: str
    host: str
    path: str              # decoded path, e.g. '/team/lib/git-upload-pack'
    query: str
    service: str           # 'git-upload-pack' for info/refs and upload-pack POSTs, else ''
    command: str           # protocol v2 command of a POST ('ls-refs', 'fetch'), else ''
    wants: int             # `want` lines in a POST body
    haves: int             # `have` lines in a POST body
    authorized: bool       # carried the right credentials (or needed none)
    status: int            # answer status; 0 when never answered (hang, CONNECT closed early)
    when: float

    @property
    def is_fetch(self) -> bool:
        """An upload-pack POST that asks for objects (v0 bodies carry wants without a command)."""
        return (self.method == "POST" and self.path.endswith("/git-upload-pack")
                and self.wants > 0)

    @property
    def is_fresh_clone(self) -> bool:
        return self.is_fetch and self.haves == 0


class _Hang:
    def __init__(self, pattern: str):
        self.regex = re.compile(pattern)
        self.released = threading.Event()
        self._cond = threading.Condition()
        self.arrivals = 0

    def release(self) -> None:
        self.released.set()

    def wait_arrivals(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.arrivals >= n, timeout)

    def _arrive(self) -> None:
        with self._cond:
            self.arrivals += 1
            self._cond.notify_all()


def _read_chunked(rfile) -> bytes:
    body = bytearray()
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ConnectionError("chunked body ended early")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += rfile.read(size)
        rfile.readline(16)


class _Handler(QuietHandler):
    def do_CONNECT(self):
        owner = self.server.owner
        owner._record(GitRequest("CONNECT", self.path.split(":")[0], "", "", "", "", 0, 0, True,
                                 403, time.monotonic()))
        self._answer(403, b"CONNECT refused by the test git server\n", "text/plain")
        self.close_connection = True

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _target(self) -> tuple[str, str, str]:
        """(host, decoded path, query) of the request, absolute-form or origin-form."""
        split = urllib.parse.urlsplit(self.path)
        host = split.hostname if split.scheme else None
        if not host:
            host = (self.headers.get("Host") or "").split(":")[0]
        if not host or host in ("127.0.0.1", "localhost"):
            host = self.server.owner.default_host
        return host.lower(), urllib.parse.unquote(split.path), split.query

    def _handle(self) -> None:
        owner = self.server.owner
        host, path, query = self._target()
        params = urllib.parse.parse_qs(query)
        body = b""
        if self.command == "POST":
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = _read_chunked(self.rfile)
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if (self.headers.get("Content-Encoding") or "").lower() in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
        service = params.get("service", [""])[0]
        if path.endswith("/git-upload-pack"):
            service = "git-upload-pack"
        command_match = _PKT_COMMAND.search(body)
        repo = owner._repo_for(host, path)
        authorized = owner._authorized(host, path, self.headers.get("Authorization"))
        is_git = path.endswith(("/info/refs", "/git-upload-pack", "/git-receive-pack"))

        def record(status: int) -> None:
            owner._record(GitRequest(self.command, host, path, query, service,
                                     command_match.group(1).decode() if command_match else "",
                                     len(_PKT_WANT.findall(body)), len(_PKT_HAVE.findall(body)),
                                     authorized, status, time.monotonic()))

        if params.get("go-get") == ["1"]:
            record(200)
            self._go_import(host, path)
            return
        if not is_git:
            record(404)
            self._answer(404, b"not found\n", "text/plain")
            return
        hang = owner._hang_for(f"{host}{path}")
        if hang is not None:
            record(0)
            hang._arrive()
            owner._block(hang)
            self.close_connection = True
            return
        pause = owner._delay_for(f"{host}{path}")
        if pause:
            owner._stopping.wait(pause)
        if not authorized:
            record(401)
            self._answer(401, b"authentication required\n", "text/plain",
                         {"WWW-Authenticate": 'Basic realm="test git server"'})
            return
        if repo is None and owner.echo_credentials:
            record(404)
            self._answer(404, f"no repository at {self._url_with_userinfo(host, path)}\n"
                         .encode(), "text/plain")
            return
        status = self._http_backend(host, path, query, body)
        record(status)

    def _url_with_userinfo(self, host: str, path: str) -> str:
        """The request's URL with the credentials it carried, as careless servers echo it."""
        header = self.headers.get("Authorization") or ""
        userinfo = ""
        if header.startswith("Basic "):
            userinfo = base64.b64decode(header[6:]).decode("utf-8", "replace") + "@"
        return f"http://{userinfo}{host}{path}"

    def _go_import(self, host: str, path: str) -> None:
        owner = self.server.owner
        repo = owner._repo_for(host, path)
        if repo is None:
            parts = [p for p in path.split("/") if p]
            repo = "/".join(parts[:2])
        root = f"{host}/{repo}"
        page = (f'<!DOCTYPE html>\n<html><head>\n<meta name="go-import" '
                f'content="{root} git http://{root}">\n</head><body>go get {root}</body></html>\n')
        self._answer(200, page.encode(), "text/html; charset=utf-8")

    def _http_backend(self, host: str, path: str, query: str, body: bytes) -> int:
        owner = self.server.owner
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(owner.root / host),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "HOME": "/nonexistent",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True,
                              timeout=60)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        if proc.returncode != 0 and not proc.stdout:
            status, payload = 500, proc.stderr
        content_type = headers.pop("Content-Type", "application/octet-stream")
        self._answer(status, payload, content_type, headers)
        return status

    def _answer(self, status: int, body: bytes, content_type: str,
                extra: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()


class GitServer(ThreadedHttpServer[GitRequest]):
    """Serves `root` (see module doc) at http://127.0.0.1:<port>; start()/stop() or `with`."""

    __test__ = False

    handler = _Handler
    thread_name = "git-server"

    def __init__(self, root: Path, default_host: str = DEFAULT_HOST):
        super().__init__()
        self.root = Path(root)
        self.default_host = default_host
        self._auth: dict[tuple[str, str], str] = {}
        self._hangs: list[_Hang] = []
        # When set, an authorized git request for a repository that does not exist is answered
        # 404 with its URL, credentials included, in the text/plain body, which git prints as
        # "remote: ...": the way a secret reaches the go command's stderr.
        self.echo_credentials = False
        self._delays: list[tuple[re.Pattern, float]] = []

    def client_env(self, insecure: str = DEFAULT_HOST) -> dict:
        """Variables that route the `go` command and git to this server: it is their HTTP and
        HTTPS proxy (its CONNECT refusal makes `go` fall back to http under GOINSECURE)."""
        return {
            "HTTP_PROXY": self.url, "http_proxy": self.url,
            "HTTPS_PROXY": self.url, "https_proxy": self.url,
            "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
            "GOINSECURE": insecure,
        }

    # --- scripting ---
    def require_auth(self, host: str, prefix: str, user: str, password: str) -> None:
        """Git requests for paths under `prefix` (a repository path, or a group such as 'team',
        whose missing repositories are then answered only to authorized requests) need
        `Authorization: Basic user:password`; go-get pages stay open, as GitLab's are."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        with self._lock:
            self._auth[(host, prefix.strip("/"))] = token

    def hang(self, pattern: str) -> _Hang:
        """Git requests whose `host/path` matches `pattern` are read and never answered."""
        hang = _Hang(pattern)
        with self._lock:
            self._hangs.append(hang)
        return hang

    def delay(self, pattern: str, seconds: float) -> None:
        """Git requests whose `host/path` matches `pattern` are answered `seconds` late."""
        with self._lock:
            self._delays.append((re.compile(pattern), seconds))

    def clear_hangs(self) -> None:
        with self._lock:
            hangs, self._hangs = self._hangs, []
        for hang in hangs:
            hang.release()

    # --- observing ---
    def for_repo(self, host: str, repo_path: str) -> list[GitRequest]:
        prefix = f"/{repo_path}/"
        return [r for r in self.requests
                if r.host == host and (r.path + "/").startswith(prefix)]

    # --- handler side ---
    def _repo_for(self, host: str, path: str) -> Optional[str]:
        """The longest repository path under <root>/<host> that prefixes `path`."""
        base = self.root / host
        parts = [p for p in path.split("/") if p]
        for count in range(len(parts), 0, -1):
            candidate = "/".join(parts[:count])
            if ".." in parts[:count]:
                continue
            if (base / candidate / ".git").is_dir():
                return candidate
        return None

    def _authorized(self, host: str, path: str, header: Optional[str]) -> bool:
        with self._lock:
            tokens = [token for (auth_host, prefix), token in self._auth.items()
                      if auth_host == host and (path + "/").startswith(f"/{prefix}/")]
        if not tokens:
            return True
        return header is not None and header.strip() in {f"Basic {t}" for t in tokens}

    def _hang_for(self, target: str) -> Optional[_Hang]:
        with self._lock:
            hangs = list(self._hangs)
        for hang in hangs:
            if hang.regex.search(target) and not hang.released.is_set():
                return hang
        return None

    def _delay_for(self, target: str) -> float:
        with self._lock:
            return sum(seconds for regex, seconds in self._delays if regex.search(target))

    def _block(self, hang: _Hang) -> None:
        deadline = time.monotonic() + MAX_BLOCK_SECONDS
        while time.monotonic() < deadline:
            if hang.released.wait(0.05) or self._stopping.is_set():
                return
