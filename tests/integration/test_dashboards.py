"""The shipped monitoring files (dashboards/) against a real Prometheus scraping the real proxy.

A Prometheus (Debian `prometheus`) is started on loopback with the shipped scrape config, its
target pointed at a test proxy, while test traffic runs: hits, misses, a not-found, a fallback
and a 502. Then every PromQL expression in the Grafana dashboard and in the alert rules is
evaluated through Prometheus's HTTP API and must parse and return data.

Substitutions made before evaluating a dashboard expression: Grafana's interval variables
($__rate_interval, $__interval, $__range) become WINDOW, and each template variable becomes its
`allValue` (the dashboard's default is "All"). An alert expression must end in one top-level
comparison with a number (dashboards/prometheus/alerts.yml says so at the top); it is evaluated
as is (it must parse, and is usually empty since nothing fires) and without that comparison,
which must return data.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

import pytest
import yaml

import module_tree as mt
from polling import stop_process

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
DASHBOARD_JSON = DASHBOARDS / "grafana" / "dashboards" / "gomodproxy.json"
PROMETHEUS_YML = DASHBOARDS / "prometheus" / "prometheus.yml"
ALERTS_YML = DASHBOARDS / "prometheus" / "alerts.yml"
DATASOURCE_YML = DASHBOARDS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_YML = DASHBOARDS / "grafana" / "provisioning" / "dashboards" / "gomodproxy.yml"
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")

SHIPPED_TARGET = "127.0.0.1:8081"
JOB = "gomodproxy"
WINDOW = "1m"
GRAFANA_INTERVALS = {
    "__rate_interval": WINDOW, "__interval": WINDOW, "__range": WINDOW,
    "__range_s": "60", "__range_ms": "60000", "__interval_ms": "60000",
}
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES_RE = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\s*\)$", re.S)
# <left-hand side> <op> <number> at the very end; the left-hand side may not end in an operator
# character, so `>=` is never split into `>` and `=`.
TRAILING_COMPARISON_RE = re.compile(
    r"^(?P<lhs>.*[^\s=!<>])\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9]+(?:\.[0-9]+)?)\s*$",
    re.S)

# Every family the issue requires; the dashboard must show each one somewhere.
REQUIRED_FAMILIES = [
    "gomodproxy_requests_total", "gomodproxy_request_duration_seconds",
    "gomodproxy_cache_lookups_total", "gomodproxy_upstream_requests_total",
    "gomodproxy_upstream_ttfb_seconds", "gomodproxy_upstream_up", "gomodproxy_probe_ttfb_seconds",
    "gomodproxy_probe_success_total", "gomodproxy_probe_failure_total",
    "gomodproxy_fallbacks_total", "gomodproxy_singleflight_shared_total",
    "gomodproxy_inflight_requests", "gomodproxy_cache_bytes", "gomodproxy_cache_entries",
    "gomodproxy_bytes_sent_total", "gomodproxy_stale_served_total",
    "gomodproxy_probe_duration_seconds",
]
REQUIRED_ALERTS = {"GomodproxyUpstreamDown", "GomodproxyCacheHitRatioLow",
                   "GomodproxyErrorRatioHigh", "GomodproxyLatencyP95High"}

PROMETHEUS_START_TIMEOUT = 30.0
DATA_TIMEOUT = 60.0        # traffic + scrapes until every expression has data
MIN_SCRAPES = 3

HELLO = "/example.com/hello/@v/v1.2.0"
UPPER = "/example.com/!upper/@v/v1.0.0-!r!c1"
FALLBACK_INFO = "/example.com/incompat/@v/v2.0.0+incompatible.info"  # tier A answers 500
BROKEN_LIST = "/example.com/broken/@v/list"                           # every tier fails
MISSING_LIST = "/example.com/nothere/@v/list"                         # every tier 404


# --- reading the shipped files ---------------------------------------------------------------

def load_dashboard() -> dict:
    return json.loads(DASHBOARD_JSON.read_text())


def load_alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS_YML.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def leaf_panels(dashboard: dict) -> list[dict]:
    """Every panel that is not a row, including panels inside collapsed rows."""
    out = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def template_variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def substitute(expr: str, variables: dict[str, dict]) -> str:
    """Grafana's rendering of `expr` for the default dashboard state, with WINDOW intervals."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        var = variables.get(name)
        assert var is not None, f"undefined variable ${name} in {expr!r}"
        assert var["type"] == "query" and var.get("includeAll") and var.get("allValue"), (
            f"variable {name} has no allValue to render {expr!r} with")
        return var["allValue"]

    return VARIABLE_RE.sub(replace, expr)


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, variables substituted."""
    variables = template_variables(dashboard)
    out = []
    for panel in leaf_panels(dashboard):
        for target in panel["targets"]:
            out.append((f"panel {panel['title']!r} target {target['refId']}",
                        substitute(target["expr"], variables)))
    return out


def split_alert_expr(expr: str) -> tuple[str, str, float]:
    match = TRAILING_COMPARISON_RE.match(expr.strip())
    assert match, f"alert expression does not end in `<op> <number>`: {expr!r}"
    return match.group("lhs").strip(), match.group("op"), float(match.group("threshold"))


# --- static checks of the shipped files ------------------------------------------------------

def test_dashboard_json_is_valid_and_every_panel_has_targets():
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = template_variables(dashboard)
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    datasource = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

    panels = leaf_panels(dashboard)
    assert len(panels) >= 10
    rows = [p for p in dashboard["panels"] if p.get("type") == "row"]
    everything = rows + panels
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    # Grafana lays panels out on a 24-column grid; overlapping panels get shoved around.
    cells: dict[tuple[int, int], str] = {}
    for panel in everything:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["y"] >= 0 and grid["h"] > 0, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    for panel in panels:
        assert panel["title"], panel
        assert panel["datasource"] == datasource, panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no target"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource, panel["title"]
            assert target["expr"].strip(), panel["title"]

    text = "\n".join(t["expr"] for p in panels for t in p["targets"])
    missing = [f for f in REQUIRED_FAMILIES if f not in text]
    assert not missing, f"families without a panel: {missing}"
    # Substitution succeeds only if every variable an expression uses is defined.
    assert len(dashboard_expressions(dashboard)) == sum(len(p["targets"]) for p in panels)


def test_alert_rules_are_complete_and_strippable():
    rules = load_alert_rules()
    alerts = {rule["alert"]: rule for rule in rules if "alert" in rule}
    assert REQUIRED_ALERTS <= set(alerts), sorted(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert re.fullmatch(r"[0-9]+[smh]", str(rule["for"])), name
        lhs, op, threshold = split_alert_expr(rule["expr"])
        assert " bool " not in f" {rule['expr']} ", name
        # The strip removes exactly the trailing comparison, nothing else.
        squeezed = re.sub(r"\s+", "", rule["expr"])
        assert squeezed.startswith(re.sub(r"\s+", "", lhs) + op), name
        assert float(squeezed[len(re.sub(r"\s+", "", lhs) + op):]) == threshold, name
    assert split_alert_expr(alerts["GomodproxyUpstreamDown"]["expr"]) == (
        "gomodproxy_upstream_up", "==", 0.0)
    assert str(alerts["GomodproxyUpstreamDown"]["for"]) == "5m"


def test_grafana_provisioning_points_at_the_dashboard():
    datasources = yaml.safe_load(DATASOURCE_YML.read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] and source["url"].startswith("http")
    assert source["isDefault"] is True  # the dashboard's DS_PROMETHEUS defaults to the default
    providers = yaml.safe_load(PROVIDER_YML.read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# --- a real Prometheus -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    def __init__(self, workdir: Path, proxy_port: int):
        self.workdir = workdir
        self.proxy_port = proxy_port
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / "prometheus.log"

    def write_config(self) -> Path:
        """The shipped config with only the target and the intervals changed; its rule files
        are copied next to it so relative rule_files keep working."""
        config = yaml.safe_load(PROMETHEUS_YML.read_text())
        [job] = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
        [static] = job["static_configs"]
        assert static["targets"] == [SHIPPED_TARGET]
        static["targets"] = [f"127.0.0.1:{self.proxy_port}"]
        job["scrape_interval"] = "1s"
        job["scrape_timeout"] = "1s"
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        assert config["rule_files"], "the shipped config must load the alert rules"
        for rule_file in config["rule_files"]:
            shutil.copy(PROMETHEUS_YML.parent / rule_file, self.workdir / rule_file)
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> "Prometheus":
        if not os.access(PROMETHEUS_BIN, os.X_OK):
            pytest.fail(f"{PROMETHEUS_BIN} not found (Debian package: prometheus)")
        config = self.write_config()
        for attempt in range(3):
            self.port = free_port()
            data = self.workdir / f"data{attempt}"
            cmd = [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={data}",
                   f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
            with open(self.log_path, "ab") as log:
                log.write(("$ " + " ".join(cmd) + "\n").encode())
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir)
            if self._wait_ready():
                return self
            self.stop()
            if "address already in use" not in self.log_text():
                break
        pytest.fail(f"prometheus did not become ready:\n{self.log_text()[-5000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + PROMETHEUS_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, params: Optional[list[tuple[str, str]]] = None,
            post: bool = False) -> dict:
        """GET or form-POST to /api/v1/<path>; returns the decoded body, also for 4xx answers
        (Prometheus explains bad queries in the body)."""
        encoded = urllib.parse.urlencode(params or [])
        url = f"{self.url}/api/v1/{path}"
        if post:
            request = urllib.request.Request(url, data=encoded.encode(), method="POST")
        else:
            request = urllib.request.Request(f"{url}?{encoded}" if encoded else url)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())

    def query(self, expr: str) -> dict:
        return self.api("query", [("query", expr)], post=True)

    def stop(self) -> None:
        stop_process(self.proc, 15)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def prometheus(tmp_path, request):
    started: list[Prometheus] = []

    def start(proxy_port: int) -> Prometheus:
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        instance = Prometheus(workdir, proxy_port)
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.stop()
        failed = any(getattr(request.node, f"rep_{when}", None) is not None
                     and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
        if failed:
            print(f"===== prometheus log =====\n{instance.log_text()[-10000:]}")


def problem_with(result: dict, need_data: bool) -> Optional[str]:
    """Why a /api/v1/query answer is not acceptable, or None."""
    if result.get("status") != "success":
        return f"{result.get('errorType')}: {result.get('error')}"
    if result.get("warnings"):
        return f"warnings: {result['warnings']}"
    data = result["data"]
    if need_data and data["resultType"] in ("vector", "matrix") and not data["result"]:
        return "empty result"
    return None


def check_everything(prom: Prometheus, dashboard: dict, rules: list[dict]) -> list[str]:
    """Every problem found, one line each; empty once the dashboards are fully served."""
    problems = []
    for where, expr in dashboard_expressions(dashboard):
        why = problem_with(prom.query(expr), need_data=True)
        if why:
            problems.append(f"{where}: {why}: {expr}")
    variables = template_variables(dashboard)
    for name, var in variables.items():
        if var["type"] != "query":
            continue
        match = LABEL_VALUES_RE.match(var["definition"])
        assert match, f"variable {name}: unsupported query {var['definition']!r}"
        selector = substitute(match.group("selector"), variables)
        answer = prom.api(f"label/{match.group('label')}/values", [("match[]", selector)])
        if answer.get("status") != "success" or not answer.get("data"):
            problems.append(f"variable {name}: no values for {var['definition']}: {answer}")
    for rule in rules:
        name = rule.get("alert") or rule.get("record")
        if "alert" in rule:
            why = problem_with(prom.query(rule["expr"]), need_data=False)
            if why:
                problems.append(f"alert {name}: {why}: {rule['expr']}")
            lhs, _, _ = split_alert_expr(rule["expr"])
            why = problem_with(prom.query(lhs), need_data=True)
            if why:
                problems.append(f"alert {name} left-hand side: {why}: {lhs}")
        else:
            why = problem_with(prom.query(rule["expr"]), need_data=True)
            if why:
                problems.append(f"recording rule {name}: {why}: {rule['expr']}")
    return problems


def scrape_health(prom: Prometheus) -> Optional[str]:
    """None when the proxy target is up with no scrape error and at least MIN_SCRAPES samples."""
    targets = prom.api("targets")["data"]["activeTargets"]
    mine = [t for t in targets if t["labels"].get("job") == JOB]
    if len(mine) != 1:
        return f"expected one {JOB} target, got {targets}"
    if mine[0]["health"] != "up" or mine[0]["lastError"]:
        return f"target {mine[0]['scrapeUrl']}: health {mine[0]['health']}: {mine[0]['lastError']}"
    answer = prom.query(f'count_over_time(up{{job="{JOB}"}}[{WINDOW}])')
    samples = answer["data"]["result"]
    if not samples or float(samples[0]["value"][1]) < MIN_SCRAPES:
        return f"fewer than {MIN_SCRAPES} scrapes so far: {samples}"
    return None


def rules_health(prom: Prometheus) -> Optional[str]:
    """None once every rule has been evaluated at least once without error."""
    groups = prom.api("rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    if len(rules) != len(load_alert_rules()):
        return f"Prometheus loaded {len(rules)} rules, alerts.yml has {len(load_alert_rules())}"
    bad = [f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules
           if r["health"] != "ok"]
    return f"rules not healthy: {bad}" if bad else None


class Traffic:
    """Keeps cache hits and negative-cache answers flowing until stopped, so rates stay
    non-zero while Prometheus scrapes."""

    PATHS = [HELLO + ".info", HELLO + ".mod", HELLO + ".zip", UPPER + ".info", MISSING_LIST,
             "/example.com/hello/@v/list"]

    def __init__(self, proxy):
        self.proxy = proxy
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.requests = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + DATA_TIMEOUT + 30
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            for path in self.PATHS:
                try:
                    status = self.proxy.get(path, timeout=10).status
                except OSError as err:
                    self.errors.append(f"{path}: {err}")
                    return
                self.requests += 1
                if status not in (200, 404, 410):
                    self.errors.append(f"{path}: status {status}")
            self.stop_event.wait(0.05)

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=20)


def test_every_dashboard_and_alert_expression_returns_data(tmp_path, make_upstream, start_proxy,
                                                           prometheus):
    dashboard = load_dashboard()
    rules = load_alert_rules()
    tree = mt.build_standard_tree(tmp_path / "tree", with_big=False)
    tier_a = make_upstream(tree.root, "A")
    tier_b = make_upstream(tree.root, "B")
    tier_a.fail(r"^/example\.com/incompat/", 500)
    for tier in (tier_a, tier_b):
        tier.fail(r"^/example\.com/broken/", 500)
    # Probes every second, of a module the tiers have, so probe TTFBs are real numbers.
    proxy = start_proxy(f"{tier_a.url}|{tier_b.url}", "--all-failed-502",
                        "--probe-interval", "1s", "--probe-modules", "example.com/hello")
    prom = prometheus(proxy.port)

    # One pass over every kind of answer. Tier A's failures are kept apart by successes so
    # that its circuit breaker (3 consecutive failures) stays closed.
    expected = [
        (HELLO + ".info", 200), (HELLO + ".mod", 200), (HELLO + ".zip", 200),
        ("/example.com/hello/@v/list", 200), ("/example.com/pseudo/@latest", 200),
        (FALLBACK_INFO, 200),
        (UPPER + ".info", 200), (UPPER + ".mod", 200),
        (BROKEN_LIST, 502),
        (UPPER + ".zip", 200),
        (MISSING_LIST, 404),
        (HELLO + ".info", 200), (HELLO + ".zip", 200),
    ]
    got = [(path, proxy.get(path).status) for path, _ in expected]
    assert got == expected
    assert tier_a.count(FALLBACK_INFO) == 1
    assert tier_b.count(FALLBACK_INFO) == 1, "the fallback must have reached tier B"
    assert tier_b.count(BROKEN_LIST) == 1

    problems: list[str] = ["not checked yet"]
    with Traffic(proxy) as traffic:
        deadline = time.monotonic() + DATA_TIMEOUT
        while time.monotonic() < deadline:
            problems = [p for p in (scrape_health(prom), rules_health(prom)) if p]
            if not problems:
                problems = check_everything(prom, dashboard, rules)
            if not problems:
                break
            time.sleep(1.0)
    assert not traffic.errors, traffic.errors
    assert traffic.requests > 0

    assert not problems, (f"after {DATA_TIMEOUT}s of traffic and scrapes:\n" +
                          "\n".join(problems))

    # The queries answered with real numbers, not just series of zeros: the proxy's own
    # counters moved, and Prometheus saw them move.
    def value(expr: str) -> float:
        result = prom.query(expr)["data"]["result"]
        assert result, expr
        return float(result[0]["value"][1])

    assert value(f'sum(increase(gomodproxy_requests_total{{code="200"}}[{WINDOW}]))') > 0
    assert value(f'sum(increase(gomodproxy_cache_lookups_total{{result="hit"}}[{WINDOW}]))') > 0
    assert value('sum(gomodproxy_requests_total{code="502"})') >= 1
    assert value('sum(gomodproxy_fallbacks_total)') >= 1
    assert value('count(gomodproxy_upstream_up)') == 2
    assert value('min(gomodproxy_probe_ttfb_seconds)') > 0
    assert value('sum(gomodproxy_probe_success_total)') >= 2
    # The dashboard's upstream variable offers exactly the two tiers.
    upstream_query = LABEL_VALUES_RE.match(
        template_variables(dashboard)["upstream"]["definition"])
    offered = prom.api("label/upstream/values", [
        ("match[]", substitute(upstream_query.group("selector"), template_variables(dashboard)))
    ])["data"]
    assert len(offered) == 2
    for tier in (tier_a, tier_b):
        assert any(tier.host_port in name for name in offered), (tier.host_port, offered)
    assert not math.isnan(value(f'sum(rate(gomodproxy_bytes_sent_total[{WINDOW}]))'))
