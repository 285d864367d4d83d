"""The network sandbox of public module paths' go command (`gomodproxy direct-sandbox`): inside
it a program reaches nothing on the host's loopback, not even where Go's net/http ignores
HTTPS_PROXY (loopback literals), and everything it sends through the proxy variables arrives at
the guard; the process group kill still takes the sandbox and everything under it."""

from __future__ import annotations

import os
import pwd
import signal
import ssl
import socket
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import direct_harness as dh
import netns
from conftest import http_request, proxy_binary
from loopback_pki import CertificateAuthority
from tiny_dns import TinyDns


class Listener:
    """A TCP listener on 127.0.0.1 of the test's namespace that records what each connection
    sends first (and counts connections as they are accepted); as `guard`, it answers a CONNECT with 200 and then echoes the tunnel's bytes
    until the client half-closes, then closes its side (so the relay's half-close is seen)."""

    def __init__(self, guard: bool = False):
        self.guard = guard
        self.heads: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            self.heads.append(head)
            if not self.guard or not head.startswith(b"CONNECT "):
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                conn.sendall(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listeners():
    made = []

    def make(guard: bool = False) -> Listener:
        made.append(Listener(guard))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


# Tries the host's loopback listener directly, then a tunnel through HTTPS_PROXY: sends a ping,
# half-closes, and reads the echo to its end. Prints one line per step.
PROBE = textwrap.dedent("""
    import os, socket, sys
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
        print("direct: connected")
    except OSError as e:
        print("direct: " + type(e).__name__)
    proxy = os.environ["HTTPS_PROXY"].removeprefix("http://")
    host, port = proxy.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"CONNECT module.example.test:443 HTTP/1.1\\r\\nHost: module.example.test:443\\r\\n\\r\\n")
    reply = b""
    while b"\\r\\n\\r\\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    print("proxy: " + reply.split(b"\\r\\n")[0].decode())
    s.sendall(b"ping")
    s.shutdown(socket.SHUT_WR)
    echoed = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        echoed += chunk
    print("echo: " + echoed.decode())
    sys.exit(3)
""")


def sandbox(guard_url: str, *command: str) -> list[str]:
    return [str(proxy_binary()), "direct-sandbox", "--guard", guard_url, "--", *command]


def probe_env(proxy_url: str) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env[name] = proxy_url
    return env


def as_nobody():
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


@pytest.mark.parametrize("user", ["server user", "nobody"])
def test_a_sandboxed_program_reaches_only_the_guard(listeners, user):
    """The program cannot connect to a listener on the host's loopback; its CONNECT through the
    proxy variable reaches the guard, bytes flow both ways, a half-close passes through, and the
    sandbox exits with the program's status. Run as the test's user (root in CI: a network
    namespace alone) and as nobody (a user namespace first) when the test can switch to it."""
    if user == "nobody" and os.geteuid() != 0:
        pytest.skip("switching to nobody needs root")
    host_service = listeners()
    guard = listeners(guard=True)
    program = [sys.executable, "-c", PROBE, str(host_service.port)]
    done = subprocess.run(sandbox(guard.url, *program), env=probe_env(guard.url),
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=as_nobody if user == "nobody" else None)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == [
        "direct: ConnectionRefusedError",
        "proxy: HTTP/1.1 200 Connection established",
        "echo: ping",
    ], done.stdout + done.stderr
    assert host_service.accepted == 0, "the sandboxed program reached the host's loopback"
    assert guard.heads and guard.heads[0].startswith(b"CONNECT module.example.test:443 "), \
        guard.heads

    # The same program outside the sandbox does reach the host's listener: what the check above
    # tells apart is the sandbox, not a listener nothing could reach.
    outside = subprocess.run(program, env=probe_env(guard.url), capture_output=True, text=True,
                             timeout=60)
    assert outside.stdout.splitlines()[0] == "direct: connected", outside.stdout + outside.stderr


def test_git_in_the_sandbox_reaches_the_guard_through_its_config_override(listeners, tmp_path):
    """Public paths give git `http.proxy` and `remote.origin.proxy` as the guard's URL in
    GIT_CONFIG_*; inside the namespace that address does not exist, so the sandbox must point
    them at its relay as it does the proxy variables, or git would fail instead of asking the
    guard."""
    guard = listeners(guard=True)
    env = probe_env(guard.url)
    env.update({"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "http.proxy", "GIT_CONFIG_VALUE_0": guard.url,
                "GIT_CONFIG_KEY_1": "remote.origin.proxy", "GIT_CONFIG_VALUE_1": guard.url})
    done = subprocess.run(sandbox(guard.url, shutil.which("git"), "ls-remote",
                                  "https://module.example.test/team/repo"),
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0  # the test guard only echoes: no TLS server behind it
    assert guard.heads and guard.heads[0].startswith(b"CONNECT module.example.test:443 "), \
        (guard.heads, done.stderr)


def go_env(tmp_path: Path, goproxy: str, proxy_url: str) -> dict:
    env = probe_env(proxy_url)
    env.update({"HOME": str(tmp_path / "home"), "GOENV": "off", "GOTOOLCHAIN": "local",
                "GO111MODULE": "on", "GOFLAGS": "-modcacherw", "GOSUMDB": "off",
                "GOPROXY": goproxy, "NO_PROXY": "", "no_proxy": "",
                "GOMODCACHE": str(tmp_path / "mod"), "GOPATH": str(tmp_path / "gopath"),
                "GOCACHE": str(tmp_path / "gocache")})
    return env


@pytest.mark.parametrize("go", sorted(dh.GOS))
def test_the_go_commands_own_request_to_loopback_stays_in_the_sandbox(listeners, tmp_path, go):
    """The way past the guard: Go's net/http never sends a request for a loopback IP literal
    through HTTPS_PROXY. Outside the sandbox the real go command connects to the host's loopback
    listener itself; inside, that listener sees nothing, while a request for a name still goes
    through the proxy variable to the guard."""
    go_path = dh.GOS[go]
    if not dh.installed(go_path):
        pytest.skip(f"{go_path} is not installed")
    host_service = listeners()
    guard = listeners(guard=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    download = [go_path, "mod", "download", "-json", "module.example.test/m@v1.0.0"]
    loopback = f"https://127.0.0.1:{host_service.port}"

    subprocess.run(download, env=go_env(tmp_path, loopback, guard.url), cwd=scratch,
                   capture_output=True, timeout=120)
    assert host_service.accepted >= 1, "outside the sandbox go connects to loopback itself"
    assert guard.heads == []

    host_service.accepted = 0
    inside = subprocess.run(sandbox(guard.url, *download),
                            env=go_env(tmp_path, loopback, guard.url), cwd=scratch,
                            capture_output=True, text=True, timeout=120)
    assert inside.returncode != 0
    assert host_service.accepted == 0, "the sandboxed go command reached the host's loopback"
    assert "connection refused" in inside.stdout + inside.stderr, inside.stdout + inside.stderr

    named = subprocess.run(sandbox(guard.url, *download),
                           env=go_env(tmp_path, "https://proxy.example.test", guard.url),
                           cwd=scratch, capture_output=True, text=True, timeout=120)
    assert named.returncode != 0
    assert any(head.startswith(b"CONNECT proxy.example.test:443 ") for head in guard.heads), \
        guard.heads


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_the_group_kill_takes_the_sandbox_and_everything_in_it(listeners, tmp_path):
    """run_process kills the process group at the deadline; the sandbox and the program's
    children stay in that group, so one SIGKILL to it ends them all."""
    guard = listeners(guard=True)
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! >> {pids}; sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    sandboxed = subprocess.Popen(sandbox(guard.url, "/bin/sh", "-c", script),
                                 env=probe_env(guard.url), start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not pids.exists() or
                                               len(pids.read_text().split()) < 3):
            time.sleep(0.05)
        inner = [int(pid) for pid in pids.read_text().split()]
        assert len(inner) == 3 and all(alive(pid) for pid in inner)
        group = {pid for pid, _ in dh.processes_in_group(sandboxed.pid)}
        assert set(inner) | {sandboxed.pid} <= group, (inner, group)
        os.killpg(sandboxed.pid, signal.SIGKILL)
        assert sandboxed.wait(timeout=10) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in inner):
            time.sleep(0.05)
        assert not any(alive(pid) for pid in inner), "a process in the sandbox outlived the kill"
    finally:
        if sandboxed.poll() is None:
            os.killpg(sandboxed.pid, signal.SIGKILL)
            sandboxed.wait(timeout=10)


def test_the_server_runs_public_paths_in_the_sandbox_by_default(start_proxy, tmp_path):
    """With the shipped defaults and `direct` in the tier list, the server checks the sandbox at
    start-up and says it uses it (this machine allows network namespaces)."""
    proxy = start_proxy("direct", env=dh.base_env(tmp_path / "home"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "network namespace" not in proxy.log_text():
        time.sleep(0.05)
    assert "public paths' go command runs in a network namespace of its own" in \
        proxy.log_text(), proxy.log_text()


PUBLIC_HOST = "public.example.test"
PUBLIC_ADDRESS = "203.0.113.7"  # TEST-NET-3: an address the policy allows


def without_namespaces(binary: Path, directory: Path) -> Path:
    """A script that runs `binary` where no network or user namespace can be made: inside a user
    namespace (root mapped to root) whose limits on new ones are 0, as a system that forbids them
    behaves."""
    script = directory / f"no-namespaces-{binary.name}"
    script.write_text(
        "#!/bin/sh\n"
        "exec unshare --user --map-root-user sh -c '"
        "echo 0 > /proc/sys/user/max_user_namespaces && "
        "echo 0 > /proc/sys/user/max_net_namespaces && "
        f"exec {binary} \"$@\"' sh \"$@\"\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("namespaces", ["allowed", "forbidden"])
def test_the_server_sandboxes_public_paths_and_only_them(start_proxy, tmp_path, monkeypatch,
                                                         namespaces):
    """Through the server: the go command of a public path (its host resolves to an allowed
    address, so a process starts) runs in a network namespace other than the server's, and the
    go command of a --private path in the server's own. Where namespaces cannot be made, the
    server says so once at start-up and runs the public path's go command in its own namespace,
    as before the sandbox. A --go-binary script records the namespace it finds itself in. Runs
    the proxy in a network namespace of its own with a DNS server on its loopback, so it needs
    root."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    recorder = tmp_path / "where-go-ran"
    fake_go = tmp_path / "go"
    fake_go.write_text(f"""#!/bin/sh
echo "$(readlink /proc/self/ns/net) $*" >> '{recorder}'
echo "go: recorded" >&2
exit 1
""")
    fake_go.chmod(0o755)
    binary = proxy_binary().resolve()
    if namespaces == "forbidden":
        binary = without_namespaces(binary, tmp_path)
    name = f"gmpsandbox{os.getpid()}"
    with netns.NetNamespace(name, "nameserver 127.0.0.1\n",
                            "127.0.0.1 localhost\n::1 localhost\n") as namespace:
        with namespace.inside():
            dns = TinyDns({PUBLIC_HOST: (PUBLIC_ADDRESS, 60)}, silent=set()).start()
            server_namespace = os.readlink("/proc/thread-self/ns/net")
            monkeypatch.setenv("GOMODPROXY_BIN", str(namespace.wrap(binary, tmp_path)))
            try:
                proxy = start_proxy("direct", "--go-binary", str(fake_go), "--private",
                                    "git.corp.example.test/*",
                                    env=dh.base_env(tmp_path / "home"))
                public = http_request(proxy.port, f"/{PUBLIC_HOST}/x/@v/list", timeout=60)
                private = http_request(proxy.port, "/git.corp.example.test/x/@v/list",
                                       timeout=60)
            finally:
                dns.stop()
    assert public.status == 404 and "recorded" in public.text, public.text
    assert private.status == 404 and "recorded" in private.text, private.text
    runs = {line.split()[-1]: line.split()[0] for line in recorder.read_text().splitlines()}
    assert runs["git.corp.example.test/x"] == server_namespace, \
        "the private path's go was sandboxed"
    log = proxy.log_text()
    if namespaces == "allowed":
        assert runs[f"{PUBLIC_HOST}/x"] != server_namespace, \
            "the public path's go was not sandboxed"
        assert "public paths' go command runs in a network namespace of its own" in log, log
    else:
        assert runs[f"{PUBLIC_HOST}/x"] == server_namespace, runs
        assert log.count("direct: no network sandbox (") == 1, log
        assert "network namespace of its own" not in log, log


class GoImportServer:
    """An https server (its certificate made for PUBLIC_HOST by a test CA, `ca_bundle`) that
    answers every request with a go-import tag of the `mod` VCS naming `target`; its socket is
    made in the namespace that is current when it is created."""

    def __init__(self, directory: Path, target: str):
        pki = CertificateAuthority(directory / "pki")
        self.ca_bundle = pki.bundle
        served = pki.issue(PUBLIC_HOST, names=f"DNS:{PUBLIC_HOST}")
        self.requests: list[str] = []
        self.target = target
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(served.cert), str(served.key))
        plain = socket.socket()
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        plain.bind((PUBLIC_ADDRESS, 443))
        plain.listen(16)
        plain.settimeout(0.2)
        self.sock = context.wrap_socket(plain, server_side=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (OSError, ssl.SSLError):
                continue
            try:
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.split(b"\r\n")[0].decode(errors="replace"))
                body = (f'<html><head><meta name="go-import" content="{PUBLIC_HOST}/x mod '
                        f'{self.target}"></head></html>').encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize("namespaces", ["allowed", "forbidden"])
def test_a_go_import_tag_naming_loopback_reaches_nothing(start_proxy, tmp_path, monkeypatch,
                                                         namespaces):
    """The gap the sandbox closes, end to end with the real go command: a public host (reached
    through the guard, on an allowed address in a second network namespace) answers the go-get
    query with `<meta name="go-import" content="... mod https://127.0.0.1:PORT">`. The go command
    does not send requests to a loopback literal through HTTPS_PROXY, so without the sandbox it
    connects to that port on the server's loopback itself (the forbidden case shows it does);
    with the sandbox the listener there sees nothing."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    binary = proxy_binary().resolve()
    if namespaces == "forbidden":
        binary = without_namespaces(binary, tmp_path)
    pid = os.getpid()
    server_side, host_side = f"gmpsrv{pid}", f"gmppub{pid}"
    veth_server, veth_host = f"gmpa{pid}"[:15], f"gmpb{pid}"[:15]
    with netns.NetNamespace(server_side, "nameserver 127.0.0.1\n",
                            "127.0.0.1 localhost\n::1 localhost\n") as namespace, \
            netns.NetNamespace(host_side, "nameserver 127.0.0.1\n") as public_side:

        def run(*args: str) -> None:
            subprocess.run([netns.IP, *args], check=True, timeout=20)

        run("link", "add", veth_server, "type", "veth", "peer", "name", veth_host)
        run("link", "set", veth_server, "netns", server_side)
        run("link", "set", veth_host, "netns", host_side)
        run("-n", server_side, "addr", "add", "203.0.113.1/24", "dev", veth_server)
        run("-n", server_side, "link", "set", veth_server, "up")
        run("-n", host_side, "addr", "add", f"{PUBLIC_ADDRESS}/24", "dev", veth_host)
        run("-n", host_side, "link", "set", veth_host, "up")
        with namespace.inside():
            dns = TinyDns({PUBLIC_HOST: (PUBLIC_ADDRESS, 60)}, silent=set()).start()
            loopback_service = Listener()
        with public_side.inside():
            meta = GoImportServer(tmp_path, f"https://127.0.0.1:{loopback_service.port}")
        with namespace.inside():
            monkeypatch.setenv("GOMODPROXY_BIN", str(namespace.wrap(binary, tmp_path)))
            env = dh.base_env(tmp_path / "home")
            env["SSL_CERT_FILE"] = str(meta.ca_bundle)
            try:
                proxy = start_proxy("direct", "--go-binary", dh.PROXY_GO, env=env)
                answer = http_request(proxy.port, f"/{PUBLIC_HOST}/x/@v/list", timeout=120)
            finally:
                dns.stop()
                meta.close()
                loopback_service.close()
    assert answer.status == 404, answer.text
    assert any("go-get=1" in line for line in meta.requests), (meta.requests, answer.text)
    if namespaces == "allowed":
        assert loopback_service.accepted == 0, \
            f"the go command reached the server's loopback: {answer.text}"
        assert "connection refused" in answer.text, answer.text
    else:
        assert loopback_service.accepted >= 1, answer.text
