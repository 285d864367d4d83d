"""The container image and compose stack (docker/), driven as a user would: the image built from
docker/Dockerfile, docker/compose.yaml with tests/container/compose.test.yaml started by
docker-compose against podman's API socket on the compose file's own network (the project's
bridge, service names resolved by aardvark-dns), the real go command building through the
containerised proxy on its published loopback port with checksum verification on (a test
checksum database in the stack), Prometheus scraping the proxy by its service name, a restart that
keeps the cache volume, a stop that the server ends by itself on SIGTERM, and a second stack with
TLS and client tokens taken from .env settings and a secrets directory.

Run by `make container-test` (as root, after scripts/install-container-tools.sh and
scripts/make-base-images.sh). Every address used on the host is on 127.0.0.1, the containers talk
over the host's virtual bridge only; every wait is bounded."""

from __future__ import annotations

import json
import re
import os
import shutil
import socket
import ssl
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
from loopback_pki import LOOPBACK_NAMES, CertificateAuthority  # noqa: E402
from polling import stop_process  # noqa: E402
import test_sumdb  # noqa: E402

COMPOSE_FILE = REPO / "docker" / "compose.yaml"
TEST_OVERRIDE = REPO / "tests" / "container" / "compose.test.yaml"
PROXY_IMAGE = "localhost/gomodproxy:test"
PROMETHEUS_IMAGE = "localhost/gomodproxy-test-prometheus:latest"
SUPPORT_IMAGE = "localhost/gomodproxy-test-support:latest"
# The test services of compose.test.yaml, by the names the proxy reaches them at.
UPSTREAM_URL = "http://test-upstream:8080"
SUMDB_URL = "http://test-sumdb:8080"
GO_BINARIES = ["/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.23/bin/go"]
# The uids the compose file's services run as: gomodproxy's image user, and nobody, which both
# the upstream Prometheus image and the test's Prometheus image run as.
PROXY_UID = 10001
PROMETHEUS_UID = 65534

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


def http_get(url: str, timeout: float = 10.0, ca: Path | None = None,
             token: str | None = None) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
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
    service fails). `settings` are what a user would put in docker/.env."""

    def __init__(self, work: Path, tree_root: Path, sumdb: "SumdbMaterial",
                 settings: dict | None = None, ca: Path | None = None):
        self.work = work
        self.ca = ca
        self.project = f"gmptest{uuid.uuid4().hex[:8]}"
        self.proxy_port = free_port()
        self.prometheus_port = free_port()
        self.socket = work / "podman.sock"
        self.service: subprocess.Popen | None = None
        self.service_log = None
        # Each stack's checksum database keeps its own record log, signed by the one test key.
        sumdb_state = work / "sumdb-state"
        sumdb_state.mkdir()
        shutil.copy(sumdb.key_file, sumdb_state / "key")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GOMODPROXY_", "DOCKER_"))},
            "DOCKER_HOST": f"unix://{self.socket}",
            "COMPOSE_PROJECT_NAME": self.project,
            "GOMODPROXY_IMAGE": PROXY_IMAGE,
            "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
            "GOMODPROXY_PUBLISH_ADDR": "127.0.0.1",
            "GOMODPROXY_PORT": str(self.proxy_port),
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "GOMODPROXY_UPSTREAMS": UPSTREAM_URL,
            "GRAFANA_ADMIN_PASSWORD": "not-started-in-this-test",
            "TEST_SUPPORT_IMAGE": SUPPORT_IMAGE,
            "TEST_MODULE_TREE": str(tree_root),
            "TEST_SUMDB_SERVER": str(sumdb.server),
            "TEST_SUMDB_STATE": str(sumdb_state),
            "TEST_SUMDB_NAME": test_sumdb.DEFAULT_NAME,
            "TEST_SUMDB": f"{test_sumdb.DEFAULT_NAME}={SUMDB_URL}",
            "TEST_SUMDB_KEY": sumdb.vkey,
            **(settings or {}),
        }

    def start_api(self) -> None:
        self.service_log = open(self.work / "podman-service.log", "wb")
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.service_log)
        wait_for("the podman API socket", 20, self.socket.exists)

    def stop_api(self) -> None:
        stop_process(self.service, 20)
        if self.service_log is not None:
            self.service_log.close()

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["docker-compose", "-f", str(COMPOSE_FILE), "-f", str(TEST_OVERRIDE), *args],
                   COMPOSE_SECONDS, env=self.env, check=check, cwd=COMPOSE_FILE.parent)

    def up(self, *services: str) -> None:
        # Grafana stays out: no registry can provide its image here; its provisioning is checked
        # by test_grafana_provisioning_matches_the_stack.
        self.compose("up", "-d", "--no-build", *(services or (
            "gomodproxy", "prometheus", "test-upstream", "test-sumdb")))
        wait_for("gomodproxy's /readyz on the published port", READY_SECONDS,
                 lambda: http_get(f"{self.proxy_url}/readyz", timeout=2, ca=self.ca)[0] == 200)

    def down(self) -> None:
        for service in ("gomodproxy", "prometheus", "test-upstream", "test-sumdb"):
            logs = run(["podman", "logs", self.container(service)], 30, check=False)
            (self.work / f"{service}.log").write_text(logs.stdout + logs.stderr)
        self.compose("down", "--volumes", "--timeout", "15", check=False)
        self.stop_api()

    def logs(self, service: str) -> str:
        """The service's output, stdout and stderr (where the proxy and the sumdb log)."""
        proc = run(["podman", "logs", self.container(service)], 30)
        return proc.stdout + proc.stderr

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    @property
    def proxy_url(self) -> str:
        scheme = "https" if self.ca is not None else "http"
        return f"{scheme}://127.0.0.1:{self.proxy_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"


def go_build(go: str, base: Path, goproxy: str, gosumdb: str, build_caches: Path,
             extra_env: dict | None = None) -> str:
    """Builds and runs the program importing the test modules with a fresh module cache. The
    compiled packages (GOCACHE) under `build_caches` are shared by the builds of one go command:
    each build still fetches every module afresh, but compiles the standard library once."""
    base.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GO") and k not in ("CGO_ENABLED", "NETRC", "SSL_CERT_FILE")}
    gocache = build_caches / Path(go).parents[1].name
    env.update({
        "HOME": str(base / "home"), "GOENV": str(base / "goenv"), "GOPATH": str(base / "gopath"),
        "GOMODCACHE": str(base / "gopath" / "pkg" / "mod"), "GOCACHE": str(gocache),
        "GOPROXY": goproxy, "GOSUMDB": gosumdb, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0", **(extra_env or {}),
    })
    program = base / "prog"
    mt.write_program(program)
    run([go, "build", "-o", "prog", "."], GO_SECONDS, env=env, cwd=program)
    return run([str(program / "prog")], 30).stdout


def check_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the container test runs podman as root (make container-test)")
    for tool in ("podman", "docker-compose", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run scripts/install-container-tools.sh")


@pytest.fixture(scope="module")
def images() -> None:
    check_root_and_tools()
    run(["podman", "build", "--format", "docker", "-f", "docker/Dockerfile", "-t", PROXY_IMAGE,
         "."], BUILD_SECONDS, cwd=REPO)
    for dockerfile, image in (("prometheus.Dockerfile", PROMETHEUS_IMAGE),
                              ("support.Dockerfile", SUPPORT_IMAGE)):
        run(["podman", "build", "--format", "docker", "-f", f"tests/container/{dockerfile}",
             "-t", image, "tests/container"], BUILD_SECONDS, cwd=REPO)


@pytest.fixture(scope="module")
def build_caches(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gocache")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> mt.ModuleTree:
    return mt.build_standard_tree(tmp_path_factory.mktemp("tree") / "root", with_big=False)


class SumdbMaterial:
    """The test checksum database's server binary (static, so it runs in the support image as
    it is) and a signer key made by running it once on the host."""

    def __init__(self, tree_root: Path, state: Path):
        self.server = test_sumdb.build_server()
        with test_sumdb.TestSumdb(tree_root, state) as first_run:
            self.vkey = first_run.vkey
        self.key_file = state / "key"


@pytest.fixture(scope="module")
def sumdb(tree, tmp_path_factory) -> SumdbMaterial:
    try:
        return SumdbMaterial(tree.root, tmp_path_factory.mktemp("sumdb-key"))
    except test_sumdb.SumdbError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def stack(images, tree, sumdb, tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack"), tree.root, sumdb)
    stack.start_api()
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def _compose_config(env: dict, *files: Path) -> subprocess.CompletedProcess:
    args = ["docker-compose"]
    for f in files:
        args += ["-f", str(f)]
    return run([*args, "config", "-q"], 60, env=env, check=False, cwd=COMPOSE_FILE.parent)


def read_env_example() -> dict:
    return dict(line.split("=", 1) for line in
                (REPO / "docker" / ".env.example").read_text().splitlines()
                if line and not line.startswith("#"))


def test_compose_files_are_valid_and_grafana_needs_a_password(tmp_path):
    example = read_env_example()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GOMODPROXY_", "DOCKER_"))}
    # As shipped, .env.example leaves the Grafana password empty and compose refuses.
    refused = _compose_config({**base_env, **example}, COMPOSE_FILE)
    assert refused.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in refused.stderr
    env = {**base_env, **example, "GRAFANA_ADMIN_PASSWORD": "x"}
    test_env = {**env, **{name: "x" for name in (
        "TEST_SUMDB", "TEST_SUMDB_KEY", "TEST_SUPPORT_IMAGE", "TEST_SUMDB_NAME")},
        **{name: "/x" for name in ("TEST_MODULE_TREE", "TEST_SUMDB_SERVER", "TEST_SUMDB_STATE")}}
    assert _compose_config(env, COMPOSE_FILE).returncode == 0
    proc = _compose_config(test_env, COMPOSE_FILE, TEST_OVERRIDE)
    assert proc.returncode == 0, proc.stderr


def test_shipped_defaults_serve_plain_http_with_no_secrets():
    """`up -d` needs no setup beyond the Grafana password: TLS and tokens stay off while .env
    names no files, and the secrets directory the stack mounts exists in a clone."""
    example = read_env_example()
    for name in ("GOMODPROXY_TLS_CERT", "GOMODPROXY_TLS_KEY", "GOMODPROXY_AUTH_FILE",
                 "GOMODPROXY_ADMIN_TOKEN"):
        assert example.get(name, "") == "", name
    assert example.get("PROMETHEUS_CONFIG", "./prometheus.yml") == "./prometheus.yml"
    assert (COMPOSE_FILE.parent / "secrets").is_dir()
    # The TLS scrape config is the plain one plus scheme, CA, server name and token.
    plain = yaml.safe_load((COMPOSE_FILE.parent / "prometheus.yml").read_text())
    tls = yaml.safe_load((COMPOSE_FILE.parent / "prometheus-tls.yml").read_text())
    [plain_job], [tls_job] = plain["scrape_configs"], tls["scrape_configs"]
    for key in ("scheme", "tls_config", "authorization"):
        tls_job.pop(key)
    assert tls_job == plain_job
    assert {k: v for k, v in tls.items() if k != "scrape_configs"} == \
        {k: v for k, v in plain.items() if k != "scrape_configs"}


def test_the_stack_serves_the_binarys_default_upstreams():
    """Compose cannot leave a variable unset, so the stack spells the tier list; it must be the
    one the binary ships, and .env.example must not replace it."""
    assert "GOMODPROXY_UPSTREAMS" not in read_env_example()
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    spelled = compose["services"]["gomodproxy"]["environment"]["GOMODPROXY_UPSTREAMS"]
    match = re.fullmatch(r"\$\{GOMODPROXY_UPSTREAMS:-(.+)\}", spelled)
    assert match, spelled
    help_text = run([os.environ.get("GOMODPROXY_BIN", str(REPO / "build" / "gomodproxy")),
                     "serve", "--help"], 30).stdout
    [shipped] = re.findall(r"env GOMODPROXY_UPSTREAMS; default (\S+)\)", help_text)
    assert match.group(1) == shipped


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


def test_the_stack_runs_on_its_compose_network(stack):
    """Nothing in the override changes networking: every service is on the project's default
    bridge network, the one users get."""
    for service in ("gomodproxy", "prometheus", "test-upstream", "test-sumdb"):
        state = json.loads(run(["podman", "inspect", stack.container(service)], 30).stdout)[0]
        networks = state["NetworkSettings"].get("Networks", {})
        assert list(networks) == [f"{stack.project}_default"], state["NetworkSettings"]


def test_the_proxy_verifies_against_the_checksum_database_before_caching(stack):
    # No go command asks anything here, so the lookup the checksum database sees is the proxy's
    # own verify-before-cache, through the stack's network.
    lookup = f"/lookup/{mt.PRIVATE}@v1.0.0"
    status, _ = http_get(f"{stack.proxy_url}/{mt.PRIVATE}/@v/v1.0.0.mod")
    assert status == 200
    assert wait_for(f"{lookup} in the checksum database's log", 10,
                    lambda: f"sumdb: GET {lookup} 200" in stack.logs("test-sumdb"))


@pytest.mark.parametrize("go", GO_BINARIES, ids=["go1.19", "go1.23"])
def test_go_builds_through_the_published_port(stack, sumdb, go, tmp_path, build_caches):
    if not os.access(go, os.X_OK):
        pytest.fail(f"{go} is not installed (scripts/install-deps.sh)")
    # GOSUMDB names only the key: go reaches the database through GOPROXY's /sumdb/, as the
    # README tells users.
    assert go_build(go, tmp_path / "go", stack.proxy_url, sumdb.vkey, build_caches) == \
        mt.PROGRAM_OUTPUT
    assert "upstream: GET /example.com/hello/@v/v1.2.0.zip" in stack.logs("test-upstream")
    assert f"sumdb: GET /lookup/{mt.HELLO}@v1.2.0 200" in stack.logs("test-sumdb")


def scraped_up(prometheus_url: str) -> bool:
    """up{job="gomodproxy"} is 1; otherwise a ValueError with what Prometheus says instead."""
    query = urllib.parse.urlencode({"query": 'up{job="gomodproxy"}'})
    status, body = http_get(f"{prometheus_url}/api/v1/query?{query}", timeout=5)
    result = json.loads(body)["data"]["result"] if status == 200 else None
    if result and result[0]["value"][1] == "1":
        return True
    status, targets = http_get(f"{prometheus_url}/api/v1/targets", timeout=5)
    raise ValueError(f"up: {result!r}; targets: {targets[-2000:]!r}")


def test_prometheus_scrapes_the_proxy_and_loads_the_alert_rules(stack):
    wait_for('up{job="gomodproxy"} == 1 in Prometheus', SCRAPE_SECONDS,
             lambda: scraped_up(stack.prometheus_url))
    status, body = http_get(f"{stack.prometheus_url}/api/v1/rules")
    assert status == 200
    rules = [r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert rules, "no alert rules loaded from dashboards/prometheus/alerts.yml"


def test_grafanas_data_source_url_answers_on_the_stack_network(stack):
    """Grafana's image cannot be pulled here, so another container on the stack's network asks
    the data source's URL what Grafana's proxy access would."""
    [datasource] = yaml.safe_load(
        (COMPOSE_FILE.parent / "grafana-datasource.yml").read_text())["datasources"]
    url = f"{datasource['url']}/api/v1/query?query=up"
    fetch = ("import json, sys, urllib.request; "
             "print(json.load(urllib.request.urlopen(sys.argv[1], timeout=10))['status'])")
    answer = run(["podman", "exec", stack.container("test-upstream"), "python3", "-c", fetch, url],
                 30)
    assert answer.stdout.strip() == "success"


def test_runs_as_non_root_with_a_working_health_check(stack):
    uid = run(["podman", "exec", stack.container("gomodproxy"), "id", "-u"], 30).stdout.strip()
    assert uid == str(PROXY_UID)
    # Health checks are not scheduled without systemd, but the image's check runs on demand.
    run(["podman", "healthcheck", "run", stack.container("gomodproxy")], 30)


def test_restarted_stack_builds_from_its_cache_volume_without_the_upstream(stack, sumdb,
                                                                           tmp_path,
                                                                           build_caches):
    stack.compose("down", "--timeout", "15")
    stack.up("gomodproxy", "prometheus", "test-sumdb")
    upstream = run(["podman", "container", "exists", stack.container("test-upstream")], 30,
                   check=False)
    assert upstream.returncode == 1, "the test upstream is still there"
    output = go_build(GO_BINARIES[0], tmp_path / "go", stack.proxy_url, sumdb.vkey, build_caches)
    assert output == mt.PROGRAM_OUTPUT


def test_stop_ends_the_server_by_sigterm_as_pid_1(stack):
    container = stack.container("gomodproxy")
    # /readyz was asked (Stack.up), so the server keeps answering it 503 for its drain grace
    # (default 1 s) before it closes the listener: the stop takes at least that long.
    started = time.monotonic()
    run(["podman", "stop", "--time", "10", container], 30)
    took = time.monotonic() - started
    state = json.loads(run(["podman", "inspect", container], 30).stdout)[0]["State"]
    print(f"podman stop took {took:.2f}s")
    # A PID 1 that ignored SIGTERM would be killed after the 10 s: exit code 137.
    assert state["ExitCode"] == 0, state
    assert took < STOP_LIMIT_SECONDS, f"podman stop took {took:.1f}s"


def write_secret(path: Path, text: str, uid: int, mode: int) -> None:
    path.write_text(text)
    os.chown(path, uid, -1)
    os.chmod(path, mode)


def test_tls_and_tokens_from_env_and_the_secrets_directory(images, tree, sumdb, tmp_path,
                                                           build_caches):
    """A stack set up as docs/deploy.md says for a LAN: TLS and client tokens named in .env, the
    files in a secrets directory, Prometheus scraping over https with its own token copy."""
    # The certificate names 127.0.0.1 (the published port, for go) and gomodproxy (the service
    # name, for Prometheus).
    pki = CertificateAuthority(tmp_path / "pki")
    server = pki.issue("gomodproxy", names=f"{LOOPBACK_NAMES},DNS:gomodproxy")
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    os.chmod(secrets, 0o755)
    client_token = uuid.uuid4().hex + uuid.uuid4().hex
    admin_token = uuid.uuid4().hex + uuid.uuid4().hex
    shutil.copy(pki.bundle, secrets / "ca.pem")
    shutil.copy(server.cert, secrets / "fullchain.pem")
    write_secret(secrets / "key.pem", server.key.read_text(), PROXY_UID, 0o400)
    write_secret(secrets / "tokens", f"alice:{client_token}\n", PROXY_UID, 0o400)
    write_secret(secrets / "admin-token", f"{admin_token}\n", PROXY_UID, 0o400)
    write_secret(secrets / "prometheus-token", f"{admin_token}\n", PROMETHEUS_UID, 0o400)
    settings = {
        "GOMODPROXY_SECRETS_DIR": str(secrets),
        "GOMODPROXY_TLS_CERT": "/etc/gomodproxy/secrets/fullchain.pem",
        "GOMODPROXY_TLS_KEY": "/etc/gomodproxy/secrets/key.pem",
        "GOMODPROXY_AUTH_FILE": "/etc/gomodproxy/secrets/tokens",
        "GOMODPROXY_ADMIN_TOKEN": "@/etc/gomodproxy/secrets/admin-token",
        "PROMETHEUS_CONFIG": "./prometheus-tls.yml",
    }
    example = read_env_example()
    for name, value in settings.items():
        if name != "GOMODPROXY_SECRETS_DIR":
            assert f"# {name}={value}" in (REPO / "docker" / ".env.example").read_text() or \
                example.get(name) == value, f".env.example does not show {name}={value}"
    work = tmp_path / "stack"
    work.mkdir()
    stack = Stack(work, tree.root, sumdb, settings, ca=pki.bundle)
    stack.start_api()
    try:
        stack.up()
        assert http_get(f"{stack.proxy_url}/{mt.HELLO}/@v/list", ca=pki.bundle)[0] == 401
        assert http_get(f"{stack.proxy_url}/metrics", ca=pki.bundle, token=client_token)[0] == 401
        netrc = tmp_path / "netrc"
        # go 1.19 matches the host, go 1.23 host:port (docs/deploy.md, "Client tokens").
        netrc.write_text(
            f"machine 127.0.0.1 login gomodproxy password {client_token}\n"
            f"machine 127.0.0.1:{stack.proxy_port} login gomodproxy password {client_token}\n")
        netrc.chmod(0o600)
        for go in GO_BINARIES:
            name = Path(go).parents[1].name
            assert go_build(go, tmp_path / name, stack.proxy_url, sumdb.vkey, build_caches, {
                "NETRC": str(netrc), "SSL_CERT_FILE": str(pki.bundle)}) == mt.PROGRAM_OUTPUT
        wait_for('up{job="gomodproxy"} == 1 in Prometheus with TLS and tokens', SCRAPE_SECONDS,
                 lambda: scraped_up(stack.prometheus_url))
        run(["podman", "healthcheck", "run", stack.container("gomodproxy")], 30)
        proxy_log = stack.logs("gomodproxy")
        assert "https://" in proxy_log
        assert " alice" in proxy_log
        for token in (client_token, admin_token):
            assert token not in proxy_log
    finally:
        stack.down()
