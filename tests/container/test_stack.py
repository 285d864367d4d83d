"""The container image and compose stack (docker/), driven as a user would: the image built from
docker/Dockerfile, docker/compose.yaml with tests/container/compose.test.yaml started by
docker-compose against podman's API socket, the real go command building through the
containerised proxy on its published loopback port, Prometheus scraping it, a restart that keeps
the cache volume, and a stop that the server ends by itself on SIGTERM.

Run by `make container-test` (as root, after scripts/install-container-tools.sh and
scripts/make-base-images.sh). Every address used on the host is on 127.0.0.1; every wait is
bounded."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

import module_tree as mt  # noqa: E402
from test_upstream import TestUpstream  # noqa: E402

COMPOSE_FILE = REPO / "docker" / "compose.yaml"
TEST_OVERRIDE = REPO / "tests" / "container" / "compose.test.yaml"
PROXY_IMAGE = "localhost/gomodproxy:test"
PROMETHEUS_IMAGE = "localhost/gomodproxy-test-prometheus:latest"
# The host's loopback as seen from a container on slirp4netns with allow_host_loopback.
HOST_LOOPBACK_IN_CONTAINER = "10.0.2.2"
GO_BINARIES = ["/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.23/bin/go"]

BUILD_SECONDS = 3600
COMPOSE_SECONDS = 300
READY_SECONDS = 60
SCRAPE_SECONDS = 90
GO_SECONDS = 180
STOP_LIMIT_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], timeout: float, env: dict | None = None, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}\nstdout:\n{proc.stdout[-5000:]}"
                    f"\nstderr:\n{proc.stderr[-5000:]}")
    return proc


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(what: str, seconds: float, probe) -> object:
    """Calls probe() until it returns something truthy, at most `seconds`."""
    deadline = time.monotonic() + seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except (OSError, ValueError) as error:
            last_error = error
        time.sleep(0.5)
    pytest.fail(f"{what} not seen within {seconds}s (last error: {last_error!r})")


class Stack:
    """docker/compose.yaml plus the test override under one compose project, reached through a
    podman API socket of its own (docker-compose, unlike podman-compose, exits non-zero when a
    service fails)."""

    def __init__(self, work: Path, upstream_port: int):
        self.work = work
        self.project = f"gmptest{uuid.uuid4().hex[:8]}"
        self.proxy_port = free_port()
        self.prometheus_port = free_port()
        self.socket = work / "podman.sock"
        self.service: subprocess.Popen | None = None
        self.service_log = None
        prometheus_config = work / "prometheus.yml"
        # The shipped docker/prometheus.yml with the target the test's network can reach.
        config = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())
        [job] = config["scrape_configs"]
        job["static_configs"] = [{"targets": [
            f"{HOST_LOOPBACK_IN_CONTAINER}:{self.proxy_port}"]}]
        prometheus_config.write_text(yaml.safe_dump(config))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GOMODPROXY_", "DOCKER_"))},
            "DOCKER_HOST": f"unix://{self.socket}",
            "COMPOSE_PROJECT_NAME": self.project,
            "GOMODPROXY_IMAGE": PROXY_IMAGE,
            "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
            "GOMODPROXY_PUBLISH_ADDR": "127.0.0.1",
            "GOMODPROXY_PORT": str(self.proxy_port),
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "GOMODPROXY_UPSTREAMS": f"http://{HOST_LOOPBACK_IN_CONTAINER}:{upstream_port}",
            "GRAFANA_ADMIN_PASSWORD": "not-started-in-this-test",
            "TEST_PROMETHEUS_CONFIG": str(prometheus_config),
        }

    def start_api(self) -> None:
        self.service_log = open(self.work / "podman-service.log", "wb")
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.service_log)
        wait_for("the podman API socket", 20, self.socket.exists)

    def stop_api(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(20)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(10)
        if self.service_log is not None:
            self.service_log.close()

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["docker-compose", "-f", str(COMPOSE_FILE), "-f", str(TEST_OVERRIDE), *args],
                   COMPOSE_SECONDS, env=self.env, check=check, cwd=COMPOSE_FILE.parent)

    def up(self) -> None:
        # Grafana stays out: no registry can provide its image here; its provisioning is checked
        # by test_grafana_provisioning_matches_the_stack.
        self.compose("up", "-d", "--no-build", "gomodproxy", "prometheus")
        wait_for("gomodproxy's /readyz on the published port", READY_SECONDS,
                 lambda: http_get(f"{self.proxy_url}/readyz", timeout=2)[0] == 200)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"


def go_build(go: str, base: Path, goproxy: str) -> str:
    """Builds and runs the program importing the test modules with a fresh module cache."""
    base.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO") and k != "CGO_ENABLED"}
    env.update({
        "HOME": str(base / "home"), "GOENV": str(base / "goenv"), "GOPATH": str(base / "gopath"),
        "GOMODCACHE": str(base / "gopath" / "pkg" / "mod"), "GOCACHE": str(base / "gocache"),
        "GOPROXY": goproxy, "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    })
    program = base / "prog"
    mt.write_program(program)
    run([go, "build", "-o", "prog", "."], GO_SECONDS, env=env, cwd=program)
    return run([str(program / "prog")], 30).stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> mt.ModuleTree:
    return mt.build_standard_tree(tmp_path_factory.mktemp("tree") / "root", with_big=False)


@pytest.fixture(scope="module")
def upstream(tree):
    server = TestUpstream(tree.root, "upstream").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, upstream):
    if os.geteuid() != 0:
        pytest.fail("the container test runs podman as root (make container-test)")
    for tool in ("podman", "docker-compose"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run scripts/install-container-tools.sh")
    run(["podman", "build", "--format", "docker", "-f", "docker/Dockerfile", "-t", PROXY_IMAGE,
         "."], BUILD_SECONDS, cwd=REPO)
    run(["podman", "build", "--format", "docker", "-f",
         "tests/container/prometheus.Dockerfile", "-t", PROMETHEUS_IMAGE, "tests/container"],
        BUILD_SECONDS, cwd=REPO)
    work = tmp_path_factory.mktemp("stack")
    stack = Stack(work, upstream.port)
    stack.start_api()
    try:
        stack.up()
        yield stack
    finally:
        for service in ("gomodproxy", "prometheus"):
            logs = run(["podman", "logs", stack.container(service)], 30, check=False)
            (work / f"{service}.log").write_text(logs.stdout + logs.stderr)
        stack.compose("down", "--volumes", "--timeout", "15", check=False)
        stack.stop_api()


def _compose_config(env: dict, *files: Path) -> subprocess.CompletedProcess:
    args = ["docker-compose"]
    for f in files:
        args += ["-f", str(f)]
    return run([*args, "config", "-q"], 60, env=env, check=False, cwd=COMPOSE_FILE.parent)


def test_compose_files_are_valid_and_grafana_needs_a_password(tmp_path):
    example = dict(line.split("=", 1) for line in
                   (REPO / "docker" / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GOMODPROXY_", "DOCKER_"))}
    # As shipped, .env.example leaves the Grafana password empty and compose refuses.
    refused = _compose_config({**base_env, **example}, COMPOSE_FILE)
    assert refused.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in refused.stderr
    env = {**base_env, **example, "GRAFANA_ADMIN_PASSWORD": "x",
           "TEST_PROMETHEUS_CONFIG": str(tmp_path / "prometheus.yml")}
    for files in ([COMPOSE_FILE], [COMPOSE_FILE, TEST_OVERRIDE]):
        proc = _compose_config(env, *files)
        assert proc.returncode == 0, proc.stderr


def test_grafana_provisioning_matches_the_stack():
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
        if not source.startswith((".", "/")):
            continue  # a named volume
        assert (COMPOSE_FILE.parent / source).exists(), source

    datasource_target = next(t for t in mounts if "/provisioning/datasources/" in t)
    [datasource] = yaml.safe_load(
        (COMPOSE_FILE.parent / mounts[datasource_target]).read_text())["datasources"]
    shipped = yaml.safe_load((REPO / "dashboards" / "grafana" / "provisioning" / "datasources" /
                              "prometheus.yml").read_text())["datasources"][0]
    # The compose copy differs from the shipped provisioning only in where Prometheus is.
    assert {k: v for k, v in datasource.items() if k != "url"} == \
        {k: v for k, v in shipped.items() if k != "url"}
    url = urllib.parse.urlsplit(datasource["url"])
    assert url.hostname in compose["services"]
    prometheus_ports = compose["services"][url.hostname]["ports"]
    assert any(p.endswith(f":{url.port}") for p in prometheus_ports), prometheus_ports

    providers = yaml.safe_load((COMPOSE_FILE.parent / mounts[
        "/etc/grafana/provisioning/dashboards"] / "gomodproxy.yml").read_text())["providers"]
    [provider] = providers
    dashboards_dir = COMPOSE_FILE.parent / mounts[provider["options"]["path"]]
    dashboards = list(dashboards_dir.glob("*.json"))
    assert dashboards
    for dashboard in dashboards:
        assert json.loads(dashboard.read_text())["panels"]

    # Prometheus in the stack loads the shipped alert rules next to its config.
    prometheus = compose["services"]["prometheus"]
    rules = yaml.safe_load((COMPOSE_FILE.parent / "prometheus.yml").read_text())["rule_files"]
    for rule_file in rules:
        assert any(v.split(":")[1] == f"/etc/prometheus/{rule_file}"
                   for v in prometheus["volumes"]), rule_file


@pytest.mark.parametrize("go", GO_BINARIES, ids=["go1.19", "go1.23"])
def test_go_builds_through_the_published_port(stack, upstream, go, tmp_path):
    if not os.access(go, os.X_OK):
        pytest.fail(f"{go} is not installed (scripts/install-deps.sh)")
    assert go_build(go, tmp_path / "go", stack.proxy_url) == mt.PROGRAM_OUTPUT
    assert any(r.path.endswith(".zip") for r in upstream.requests)


def test_prometheus_scrapes_the_proxy_and_loads_the_alert_rules(stack):
    query = urllib.parse.urlencode({"query": 'up{job="gomodproxy"}'})

    def scraped_up():
        status, body = http_get(f"{stack.prometheus_url}/api/v1/query?{query}", timeout=5)
        if status != 200:
            return False
        result = json.loads(body)["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    wait_for('up{job="gomodproxy"} == 1 in Prometheus', SCRAPE_SECONDS, scraped_up)
    status, body = http_get(f"{stack.prometheus_url}/api/v1/rules")
    assert status == 200
    rules = [r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert rules, "no alert rules loaded from dashboards/prometheus/alerts.yml"


def test_runs_as_non_root_with_a_working_health_check(stack):
    uid = run(["podman", "exec", stack.container("gomodproxy"), "id", "-u"], 30).stdout.strip()
    assert uid != "0"
    # Health checks are not scheduled without systemd, but the image's check runs on demand.
    run(["podman", "healthcheck", "run", stack.container("gomodproxy")], 30)


def test_restarted_stack_builds_from_its_cache_volume_without_the_upstream(stack, upstream,
                                                                           tmp_path):
    upstream.stop()
    stack.compose("down", "--timeout", "15")
    stack.up()
    assert go_build(GO_BINARIES[0], tmp_path / "go", stack.proxy_url) == mt.PROGRAM_OUTPUT


def test_stop_ends_the_server_by_sigterm_as_pid_1(stack):
    container = stack.container("gomodproxy")
    started = time.monotonic()
    run(["podman", "stop", "--time", "10", container], 30)
    took = time.monotonic() - started
    state = json.loads(run(["podman", "inspect", container], 30).stdout)[0]["State"]
    # A PID 1 that ignored SIGTERM would be killed after the 10 s: exit code 137.
    assert state["ExitCode"] == 0, state
    assert took < STOP_LIMIT_SECONDS, f"podman stop took {took:.1f}s"
