"""/status and /status.json against three test upstreams (one fast, one slow to answer probes,
one answering 500), and the page rendered by headless Chromium (Debian package `chromium`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import module_tree as mt
from conftest import downloadable_versions
from polling import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_TIMEOUT = 90.0
WINDOW = (1200, 900)
# How long the slow tier holds each probe before answering.
SLOW_PROBE_DELAY = 0.3
NOWHERE = "example.com/nowhere"

UP_GREEN = (0x16, 0xA3, 0x4A)
DOWN_RED = (0xDC, 0x26, 0x26)
SLOWEST_ORANGE = (0xF9, 0x73, 0x16)


def status(proxy) -> dict:
    resp = proxy.get("/status.json")
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def by_name(report: dict) -> dict:
    return {tier["name"]: tier for tier in report["tiers"]}


class SlowProbes:
    """Holds every probe of `path` on `upstream` for SLOW_PROBE_DELAY seconds: each probe meets a
    one-shot gate that a helper thread opens after the delay (the next gate is in place first)."""

    def __init__(self, upstream, path: str):
        self.upstream = upstream
        self.pattern = re.escape(path) + "$"
        self.stop = threading.Event()
        self.gate = upstream.gate(self.pattern, times=1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in range(200):  # bounded however long the test runs
            if self.stop.is_set():
                break
            if not self.gate.wait_arrivals(1, timeout=0.5):
                continue
            following = self.upstream.gate(self.pattern, times=1)
            self.stop.wait(SLOW_PROBE_DELAY)
            self.gate.open()
            self.gate = following
        self.gate.open()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.upstream.clear_faults()


def run_chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    assert os.access(CHROMIUM, os.X_OK), (
        "headless Chromium is needed: install the Debian package chromium "
        "(scripts/install-deps.sh does)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, url]
    # Chromium complains on stderr about D-Bus and the like; only its exit status and outputs
    # matter.
    proc = subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    return proc


def png_pixels(data: bytes):
    """(width, height, set of distinct RGB pixels) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None, "no IHDR"
    width, height, depth, color_type, _, _, interlace = header
    assert depth == 8 and color_type in (2, 6) and interlace == 0, header
    bpp = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "IDAT does not hold every row"
    previous = bytearray(stride)
    colors = set()
    offset = 0
    for _ in range(height):
        kind = raw[offset]
        line = bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        for i in range(0, stride, bpp):
            colors.add(bytes(line[i:i + 3]))
        previous = line
    return width, height, {tuple(c) for c in colors}


def test_status_page_shows_every_tier_and_which_is_slow(tree, make_upstream, start_proxy,
                                                        tmp_path):
    fast = make_upstream(tree.root, "fast")
    slow = make_upstream(tree.root, "slow")
    broken = make_upstream(tree.root, "broken")
    broken.fail(r".", 500)
    probe_path = f"/{mt.escape_path(mt.HELLO)}/@v/list"
    # The slow tier stays slow until the browser has seen the page.
    slow_probes = SlowProbes(slow, probe_path)
    try:
        check_status_page(tree, start_proxy, tmp_path, fast, slow, broken)
    finally:
        slow_probes.close()


def check_status_page(tree, start_proxy, tmp_path, fast, slow, broken) -> None:
    proxy = start_proxy(f"{fast.url}|{slow.url}|{broken.url}", "--probe-interval", "500ms",
                        "--probe-modules", mt.HELLO)
    FAST, SLOW, BROKEN = fast.host_port, slow.host_port, broken.host_port

    # Real traffic: two misses the fast tier serves, a hit, and a module nobody has (the fast
    # and slow tiers say not found, the broken one fails or is already skipped).
    small = downloadable_versions(tree)
    paths = [small[0].url_path(".mod"), small[1].url_path(".info")]
    for path in paths:
        resp = proxy.get(path)
        assert resp.status == 200 and resp.body == tree.file_bytes(path), path
    assert proxy.get(paths[0]).status == 200
    nowhere = proxy.get(f"/{mt.escape_path(NOWHERE)}/@v/v1.0.0.info")
    assert nowhere.status == 404, nowhere.text

    def settled():
        report = status(proxy)
        tiers = by_name(report)
        done = (not tiers[BROKEN]["up"] and tiers[FAST]["probe"]["successes"] >= 3
                and tiers[SLOW]["probe"]["successes"] >= 3 and report["slowest_tier"] == SLOW)
        return report if done else None

    report = wait_for(settled, 30, "probe rounds that mark the broken tier down and the slow "
                                   "one slowest")

    # --- /status.json ---
    assert [t["name"] for t in report["tiers"]] == [FAST, SLOW, BROKEN]
    tiers = by_name(report)
    fast_t, slow_t, broken_t = tiers[FAST], tiers[SLOW], tiers[BROKEN]
    assert fast_t["up"] and slow_t["up"] and not broken_t["up"]
    assert slow_t["slowest"] and not fast_t["slowest"] and not broken_t["slowest"]
    assert slow_t["recent_ttfb_ms"] >= SLOW_PROBE_DELAY * 1000 * 0.9
    assert fast_t["recent_ttfb_ms"] < slow_t["recent_ttfb_ms"]

    assert fast_t["probe"]["failures"] == 0
    assert fast_t["probe"]["ttfb_ms_now"] is not None
    assert slow_t["probe"]["ttfb_ms_median"] >= SLOW_PROBE_DELAY * 1000 * 0.9
    assert fast_t["probe"]["ttfb_ms_median"] < slow_t["probe"]["ttfb_ms_median"]
    assert len(fast_t["probe"]["samples"]) == (fast_t["probe"]["successes"]
                                               + fast_t["probe"]["failures"])
    assert broken_t["probe"]["successes"] == 0 and broken_t["probe"]["failures"] >= 3
    assert broken_t["probe"]["ttfb_ms_now"] is None
    assert broken_t["probe"]["success_rate"] == 0

    assert fast_t["traffic"]["ok"] == 2 and fast_t["traffic"]["not_found"] == 1
    assert fast_t["traffic"]["error"] == 0 and fast_t["traffic"]["timeout"] == 0
    assert fast_t["traffic"]["success_rate"] == 1
    assert abs(fast_t["traffic"]["hit_rate"] - 2 / 3) < 1e-9
    assert fast_t["traffic"]["last_ttfb_ms"] > 0
    assert slow_t["traffic"]["not_found"] == 1 and slow_t["traffic"]["hit_rate"] == 0
    broken_attempts = broken_t["traffic"]["error"] + broken_t["traffic"]["skipped"]
    assert broken_attempts == 1 and broken_t["traffic"]["ok"] == 0
    assert broken_t["traffic"]["success_rate"] in (0, None)

    cache = report["cache"]
    assert (cache["hit"], cache["miss"], cache["stale"]) == (1, 3, 0)
    assert cache["hit_rate"] == 0.25
    assert cache["entries"] >= 2
    assert cache["bytes"] >= sum(len(tree.file_bytes(p)) for p in paths)
    assert 0 <= report["traffic_window_seconds"] < 120
    assert report["probe_window_seconds"] == 3600

    errors = report["recent_errors"]
    assert errors, "no recent error although every probe of the broken tier failed"
    assert {e["tier"] for e in errors} == {BROKEN}
    probe_errors = [e for e in errors if e["kind"] == "probe"]
    assert len(probe_errors) == 1 and probe_errors[0]["reason"] == "status 500"
    # The prober counts a failure just before it notes the problem; a report may fall between.
    failures = broken_t["probe"]["failures"]
    assert failures - 1 <= probe_errors[0]["count"] <= failures
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", probe_errors[0]["at"])

    # --- /status ---
    page = proxy.get("/status")
    assert page.status == 200
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert page.header("Cache-Control") == "no-store"
    for name in (FAST, SLOW, BROKEN):
        assert f'data-tier="{name}"' in page.text, name
    assert '<meta http-equiv="refresh" content="10">' in page.text
    json_resp = proxy.get("/status.json")
    assert json_resp.header("Content-Type") == "application/json"
    assert json_resp.header("Cache-Control") == "no-store"
    head = proxy.head("/status")
    assert head.status == 200 and head.body == b""
    # Anyone on the network may read the page: no module path may show.
    for body in (page.text, json_resp.text):
        for module_path in (mt.HELLO, small[0].path, small[1].path, NOWHERE):
            assert module_path not in body, module_path

    # --- the page in a browser ---
    url = f"{proxy.url}/status"
    dom = run_chromium(url, tmp_path / "profile-dom", "--dump-dom").stdout.decode()
    rows = re.findall(r'<tr class="([^"]*)" data-tier="([^"]*)"', dom)
    assert [name for _, name in rows] == [FAST, SLOW, BROKEN], rows
    classes = {name: cls.split() for cls, name in rows}
    assert "slowest" in classes[SLOW] and "down" in classes[BROKEN]
    assert "slowest" not in classes[FAST] and "down" not in classes[FAST]
    assert dom.count('<svg class="spark"') == 3
    assert f"1 of 3 upstream tiers down: <b>{BROKEN}</b>" in dom
    assert f"Slowest right now: <b>{SLOW}</b>" in dom
    assert "status 500" in dom

    shot = tmp_path / "status.png"
    run_chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 0
    width, height, colors = png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    # A blank or failed page has a handful of colours; text, badges and sparklines many.
    assert len(colors) >= 50, f"only {len(colors)} distinct colours: a blank page?"
    for name, color in (("up badge", UP_GREEN), ("down badge", DOWN_RED),
                        ("slowest tag", SLOWEST_ORANGE)):
        assert color in colors, f"the {name} colour #{bytes(color).hex()} is not on the screen"
