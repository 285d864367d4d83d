"""The go command `direct` runs (--go-binary) and its settings at start-up: a go that cannot be
found is not a start-up error (one warning, then `direct` answers 404 "cannot run go"), while a
bad direct setting stops `serve` with exit status 2 and one line naming it."""

from __future__ import annotations

import pytest

from test_startup_errors import assert_refused, serve

PRIVATE = "git.corp.example.test/*"


def test_a_missing_go_binary_starts_and_answers_cannot_run_go(start_proxy):
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", "/nonexistent/bin/go")
    answer = proxy.get("/git.corp.example.test/team/lib/@v/list")
    assert answer.status == 404, answer.text
    assert "direct: cannot run go: /nonexistent/bin/go: not found" in answer.text, answer.text
    # Not a not-found: nothing is remembered, so a go installed later is used at once.
    assert answer.header("Cache-Control") == "no-store", answer.text
    warnings = [line for line in proxy.log_text().splitlines() if "go binary" in line]
    assert len(warnings) == 1 and "[warning]" in warnings[0], proxy.log_text()
    assert proxy.running()


def test_go_found_on_path_gives_no_warning(start_proxy):
    proxy = start_proxy("off", "--private", PRIVATE, "--go-binary", "/usr/lib/go-1.23/bin/go")
    assert proxy.get("/healthz").status == 200
    assert "go binary" not in proxy.log_text()


@pytest.mark.parametrize("flags, setting", [
    (["--direct-concurrency", "0"], "direct_concurrency"),
    (["--direct-concurrency", "65"], "direct_concurrency"),
    (["--go-binary", ""], "go_binary"),
    (["--direct-allow", "a\nb"], "direct_allow"),
])
def test_bad_direct_settings_stop_start_up(tmp_path, flags, setting):
    assert_refused(serve(tmp_path, *flags), setting)


def test_a_cache_directory_inside_a_go_module_stops_start_up(tmp_path):
    """With the shipped defaults (`direct` for private modules), a go.mod above the cache
    directory would make every go command the server runs work inside that module."""
    (tmp_path / "go.mod").write_text("module example.com/project\n\ngo 1.99\n")
    line = assert_refused(serve(tmp_path), "cache_dir")
    assert str(tmp_path / "go.mod") in line, line
