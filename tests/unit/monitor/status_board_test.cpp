#include "monitor/status_board.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "monitor/metrics.hpp"
#include "monitor/status_page.hpp"

namespace gomodproxy::monitor {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

// A wall clock the test moves by hand.
struct fake_clock {
  wall_time now{std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + 12h};
  wall_clock_fn fn() {
    return [this] { return now; };
  }
};

const std::function<bool(std::size_t)> all_up;

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The `points` attribute of the sparkline in the row of `tier`, split into its points.
std::vector<std::string> sparkline_points(const std::string& html, const std::string& tier) {
  auto row = html.find("data-tier=\"" + tier + "\"");
  EXPECT_NE(row, std::string::npos) << tier;
  auto row_end = html.find("</tr>", row);
  auto polyline = html.find("<polyline", row);
  if (polyline == std::string::npos || polyline > row_end) return {};
  auto start = html.find("points=\"", polyline) + 8;
  auto end = html.find('"', start);
  std::vector<std::string> points;
  std::string text = html.substr(start, end - start);
  for (std::size_t at = 0; at <= text.size();) {
    auto space = text.find(' ', at);
    if (space == std::string::npos) space = text.size();
    points.push_back(text.substr(at, space - at));
    at = space + 1;
  }
  return points;
}

TEST(status_board, probe_samples_older_than_an_hour_are_dropped) {
  fake_clock clock;
  status_board board({"a", "b"}, clock.fn());
  const wall_time start = clock.now;
  board.record_probe(0, true, 10ms);
  clock.now += 30min;
  board.record_probe(0, false, std::nullopt);
  clock.now += 29min;
  board.record_probe(0, true, 30ms);
  clock.now += 1min;
  board.record_probe(0, true, 20ms);

  auto at_hour = board.report({}, all_up);
  ASSERT_EQ(at_hour.tiers[0].probes.size(), 4u);  // the first is exactly one hour old
  EXPECT_EQ(at_hour.tiers[0].probes.front().at, start);

  clock.now += 2min;
  auto later = board.report({}, all_up);
  const auto& tier = later.tiers[0];
  ASSERT_EQ(tier.probes.size(), 3u);
  EXPECT_EQ(tier.probes.front().at, start + 30min);
  EXPECT_FALSE(tier.probes.front().ttfb);
  EXPECT_EQ(tier.probe_successes, 2u);
  EXPECT_EQ(tier.probe_failures, 1u);
  EXPECT_EQ(tier.probe_ttfb_now, microseconds(20ms));
  EXPECT_EQ(tier.probe_ttfb_median, microseconds(25ms));
  EXPECT_EQ(tier.probe_ttfb_max, microseconds(30ms));
  EXPECT_TRUE(later.tiers[1].probes.empty());
  EXPECT_FALSE(later.tiers[1].probe_ttfb_now);

  clock.now += 2h;
  auto empty = board.report({}, all_up);
  EXPECT_TRUE(empty.tiers[0].probes.empty());
  EXPECT_EQ(empty.tiers[0].probe_successes, 0u);
  EXPECT_FALSE(empty.tiers[0].probe_ttfb_median);
}

TEST(status_board, a_failed_last_probe_has_no_ttfb_now) {
  fake_clock clock;
  status_board board({"a"}, clock.fn());
  board.record_probe(0, true, 10ms);
  board.record_probe(0, false, 99ms);  // a failure's time is never shown as an answer
  auto report = board.report({}, all_up);
  EXPECT_FALSE(report.tiers[0].probe_ttfb_now);
  EXPECT_EQ(report.tiers[0].probe_ttfb_max, microseconds(10ms));
}

TEST(status_board, probe_samples_per_tier_are_bounded) {
  fake_clock clock;
  status_board board({"a"}, clock.fn());
  for (std::size_t i = 0; i < status_board::max_probe_samples + 500; ++i) {
    board.record_probe(0, true, microseconds(i));
  }
  auto report = board.report({}, all_up);
  ASSERT_EQ(report.tiers[0].probes.size(), status_board::max_probe_samples);
  EXPECT_EQ(report.tiers[0].probes.front().ttfb, microseconds(500));
}

TEST(status_board, rates_follow_their_definitions) {
  fake_clock clock;
  status_board board({"a", "b", "idle"}, clock.fn());
  auto attempts = [&](std::size_t tier, upstream_outcome outcome, int n) {
    for (int i = 0; i < n; ++i) board.record_attempt(tier, outcome, std::nullopt);
  };
  attempts(0, upstream_outcome::ok, 6);
  attempts(0, upstream_outcome::not_found, 2);
  attempts(0, upstream_outcome::error, 1);
  attempts(0, upstream_outcome::timeout, 1);
  attempts(0, upstream_outcome::skipped, 5);
  attempts(1, upstream_outcome::skipped, 3);
  board.record_attempt(1, upstream_outcome::not_found, 40ms);
  board.record_attempt(1, upstream_outcome::error, std::nullopt);
  board.record_attempt(7, upstream_outcome::ok, 1ms);  // unknown tier: ignored
  for (int i = 0; i < 3; ++i) board.record_cache_lookup(cache_result::hit);
  board.record_cache_lookup(cache_result::miss);
  board.record_cache_lookup(cache_result::stale);
  clock.now += 10s;

  auto report = board.report({12, 3456}, all_up);
  const auto& a = report.tiers[0];
  EXPECT_EQ(a.attempts[static_cast<std::size_t>(upstream_outcome::skipped)], 5u);
  ASSERT_TRUE(a.success_rate && a.hit_rate);
  EXPECT_DOUBLE_EQ(*a.success_rate, 0.8);  // (6 + 2) / 10; skipped ones were never sent
  EXPECT_DOUBLE_EQ(*a.hit_rate, 0.75);     // 6 / (6 + 2)
  EXPECT_FALSE(a.last_traffic_ttfb);
  const auto& b = report.tiers[1];
  ASSERT_TRUE(b.success_rate && b.hit_rate);
  EXPECT_DOUBLE_EQ(*b.success_rate, 0.5);
  EXPECT_DOUBLE_EQ(*b.hit_rate, 0.0);
  EXPECT_EQ(b.last_traffic_ttfb, microseconds(40ms));
  EXPECT_FALSE(report.tiers[2].success_rate);
  EXPECT_FALSE(report.tiers[2].hit_rate);
  EXPECT_EQ(report.cache.figures.entries, 12u);
  EXPECT_EQ(report.cache.figures.bytes, 3456u);
  ASSERT_TRUE(report.cache.hit_rate);
  EXPECT_DOUBLE_EQ(*report.cache.hit_rate, 0.6);  // 3 / (3 + 1 + 1)
  EXPECT_EQ(report.traffic_window, 10s);
}

TEST(status_board, traffic_counts_cover_about_the_last_hour) {
  fake_clock clock;
  status_board board({"a"}, clock.fn());
  for (int i = 0; i < 10; ++i) board.record_cache_lookup(cache_result::hit);
  board.record_attempt(0, upstream_outcome::ok, std::nullopt);

  clock.now += 30min;
  auto first = board.report({}, all_up);  // also the checkpoint the window moves to later
  EXPECT_EQ(first.traffic_window, 30min);
  EXPECT_EQ(first.cache.lookups[0], 10u);

  for (int i = 0; i < 5; ++i) board.record_cache_lookup(cache_result::miss);
  board.record_attempt(0, upstream_outcome::error, std::nullopt);
  clock.now += 31min;
  auto second = board.report({}, all_up);  // the start is still the newest checkpoint in range
  EXPECT_EQ(second.traffic_window, 61min);
  EXPECT_EQ(second.cache.lookups[0], 10u);
  EXPECT_EQ(second.cache.lookups[1], 5u);

  clock.now += 30min;
  auto third = board.report({}, all_up);
  EXPECT_EQ(third.traffic_window, 61min);
  EXPECT_EQ(third.cache.lookups[0], 0u);
  EXPECT_EQ(third.cache.lookups[1], 5u);
  ASSERT_TRUE(third.cache.hit_rate);
  EXPECT_DOUBLE_EQ(*third.cache.hit_rate, 0.0);
  ASSERT_TRUE(third.tiers[0].success_rate);
  EXPECT_DOUBLE_EQ(*third.tiers[0].success_rate, 0.0);

  // Probes alone keep checkpoints coming, so nothing read for hours still gives an hour.
  for (int minute = 0; minute < 180; ++minute) {
    clock.now += 1min;
    board.record_probe(0, true, 5ms);
  }
  board.record_cache_lookup(cache_result::stale);
  auto fourth = board.report({}, all_up);
  EXPECT_EQ(fourth.traffic_window, 60min);
  EXPECT_EQ(fourth.cache.lookups[2], 1u);
  EXPECT_EQ(fourth.cache.lookups[1], 0u);
}

TEST(status_board, problems_are_bounded_newest_first_and_folded) {
  fake_clock clock;
  status_board board({"a", "b"}, clock.fn());
  const wall_time start = clock.now;
  for (std::size_t i = 0; i < status_board::max_problems + 10; ++i) {
    board.record_problem(i % 2, "mod", "reason " + std::to_string(i));
    clock.now += 1s;
  }
  board.record_problem(9, "mod", "unknown tier");  // ignored
  auto report = board.report({}, all_up);
  ASSERT_EQ(report.problems.size(), status_board::max_problems);
  EXPECT_EQ(report.problems.front().reason, "reason 59");
  EXPECT_EQ(report.problems.front().tier, "b");
  EXPECT_EQ(report.problems.back().reason, "reason 10");
  for (std::size_t i = 1; i < report.problems.size(); ++i) {
    EXPECT_GT(report.problems[i - 1].last_at, report.problems[i].last_at);
  }

  board.record_problem(0, "mod", "reason 20");
  board.record_problem(0, "zip", "reason 20");  // another kind: another row
  auto folded = board.report({}, all_up);
  ASSERT_EQ(folded.problems.size(), status_board::max_problems);
  EXPECT_EQ(folded.problems[0].kind, "zip");
  EXPECT_EQ(folded.problems[0].count, 1u);
  EXPECT_EQ(folded.problems[1].reason, "reason 20");
  EXPECT_EQ(folded.problems[1].kind, "mod");
  EXPECT_EQ(folded.problems[1].count, 2u);
  EXPECT_EQ(folded.problems[1].first_at, start + 20s);
  EXPECT_EQ(folded.problems[1].last_at, clock.now);
  EXPECT_EQ(occurrences(status_json(folded), "\"reason 20\""), 2u);
  EXPECT_EQ(folded.problems.back().reason, "reason 11");  // "reason 10" made room
}

TEST(status_board, reasons_are_one_short_line) {
  fake_clock clock;
  status_board board({"a"}, clock.fn());
  board.record_problem(0, "info", "status 500\nsecond line");
  board.record_problem(0, "info", "tab\there");
  std::string long_reason(status_board::max_reason_bytes - 1, 'x');
  long_reason += "\xC3\xA9 and more";  // a two-byte character across the limit
  board.record_problem(0, "info", long_reason);
  auto report = board.report({}, all_up);
  ASSERT_EQ(report.problems.size(), 3u);
  EXPECT_EQ(report.problems[2].reason, "status 500");
  EXPECT_EQ(report.problems[1].reason, "tab here");
  EXPECT_EQ(report.problems[0].reason, std::string(status_board::max_reason_bytes - 1, 'x'));
}

TEST(status_board, an_upstream_error_body_is_shown_as_its_status_only) {
  fake_clock clock;
  status_board board({"a"}, clock.fn());
  board.record_problem(0, "mod", "404: example.com/private/thing: not found", 404);
  board.record_problem(0, "probe", "stopped after 10 redirects", 302);  // our words: kept
  board.record_problem(0, "zip", "500: a body", 0);  // no status given: taken as ours
  auto report = board.report({}, all_up);
  ASSERT_EQ(report.problems.size(), 3u);
  EXPECT_EQ(report.problems[2].reason, "status 404");
  EXPECT_EQ(report.problems[1].reason, "stopped after 10 redirects");
  EXPECT_EQ(report.problems[0].reason, "500: a body");
}

TEST(status_board, the_slowest_up_tier_is_marked) {
  fake_clock clock;
  status_board board({"fast", "slow", "dead", "quiet"}, clock.fn());
  for (auto ms : {10, 12, 11}) board.record_probe(0, true, std::chrono::milliseconds(ms));
  // One old fast answer does not hide five recent slow ones.
  board.record_probe(1, true, 1ms);
  for (auto ms : {150, 160, 170, 155, 165})
    board.record_probe(1, true, std::chrono::milliseconds(ms));
  for (int i = 0; i < 3; ++i) board.record_probe(2, true, 900ms);
  board.record_attempt(3, upstream_outcome::ok, 50ms);  // no probes: the last request counts

  auto up_but_dead = [](std::size_t tier) { return tier != 2; };
  auto report = board.report({}, up_but_dead);
  EXPECT_FALSE(report.tiers[0].slowest);
  EXPECT_TRUE(report.tiers[1].slowest);
  EXPECT_FALSE(report.tiers[2].slowest);  // slower still, but down: shown as down instead
  EXPECT_FALSE(report.tiers[3].slowest);
  EXPECT_EQ(report.tiers[0].recent_ttfb, microseconds(11ms));
  EXPECT_EQ(report.tiers[1].recent_ttfb, microseconds(160ms));
  EXPECT_EQ(report.tiers[3].recent_ttfb, microseconds(50ms));
  auto json = boost::json::parse(status_json(report));
  EXPECT_EQ(json.at("slowest_tier"), "slow");
  EXPECT_DOUBLE_EQ(json.at("tiers").at(1).at("recent_ttfb_ms").as_double(), 160.0);
  auto html = status_html(report);
  EXPECT_NE(html.find("Slowest right now: <b>slow</b>, 160 ms to first byte"), std::string::npos);
  EXPECT_NE(html.find("data-tier=\"slow\"><td class=\"name\"><span class=\"host\">slow</span> "
                      "<span class=\"tag\">SLOWEST</span>"),
            std::string::npos);

  auto only_fast = [](std::size_t tier) { return tier == 0; };
  auto alone = board.report({}, only_fast);
  for (const auto& tier : alone.tiers) EXPECT_FALSE(tier.slowest) << tier.name;
  EXPECT_TRUE(boost::json::parse(status_json(alone)).at("slowest_tier").is_null());

  status_board tied({"x", "y"}, clock.fn());
  tied.record_probe(0, true, 20ms);
  tied.record_probe(1, true, 20ms);
  for (const auto& tier : tied.report({}, all_up).tiers) EXPECT_FALSE(tier.slowest) << tier.name;
}

TEST(status_board, offline_is_said_on_both_pages) {
  fake_clock clock;
  status_board board({"goproxy.example"}, clock.fn());
  auto online = board.report({}, all_up);
  EXPECT_EQ(boost::json::parse(status_json(online)).at("offline"), false);
  EXPECT_EQ(status_html(online).find("Offline"), std::string::npos);

  auto offline = board.report({}, all_up);
  offline.offline = true;
  EXPECT_EQ(boost::json::parse(status_json(offline)).at("offline"), true);
  auto html = status_html(offline);
  EXPECT_NE(html.find("<b>Offline</b>: answering from the cache only"), std::string::npos);
  // The tier is shown as it stands, but never claimed up: nothing checks it.
  EXPECT_EQ(html.find("upstream tier is up"), std::string::npos);
}

TEST(status_board, the_size_cap_and_how_full_the_cache_is_are_said_on_both_pages) {
  fake_clock clock;
  status_board board({"goproxy.example"}, clock.fn());
  auto uncapped = board.report({.entries = 3, .bytes = 300}, all_up);
  auto cap = boost::json::parse(status_json(uncapped)).at("cache").at("size_cap");
  EXPECT_EQ(cap.at("max_bytes"), 0);
  EXPECT_TRUE(cap.at("disk_bytes").is_null());
  EXPECT_TRUE(cap.at("full").is_null());
  EXPECT_NE(status_html(uncapped).find("Size cap: none"), std::string::npos);

  auto capped = board.report({.entries = 3,
                              .bytes = 300,
                              .max_bytes = 100u << 20,
                              .disk_bytes = 45u << 20,
                              .evictions = 7,
                              .evicted_bytes = 70u << 20},
                             all_up);
  cap = boost::json::parse(status_json(capped)).at("cache").at("size_cap");
  EXPECT_EQ(cap.at("max_bytes"), 100u << 20);
  EXPECT_EQ(cap.at("disk_bytes"), 45u << 20);
  EXPECT_DOUBLE_EQ(cap.at("full").as_double(), 0.45);
  EXPECT_EQ(cap.at("evictions"), 7);
  EXPECT_EQ(cap.at("evicted_bytes"), 70u << 20);
  const auto html = status_html(capped);
  EXPECT_NE(html.find("Size cap: 100 MiB; directory on disk 45.0 MiB (45% full); 7 entries "
                      "(70.0 MiB) evicted so far."),
            std::string::npos)
      << html;
}

TEST(status_board, the_cache_memory_budget_and_its_use_are_said_on_both_pages) {
  fake_clock clock;
  status_board board({"goproxy.example"}, clock.fn());
  const auto report = board.report({.entries = 3,
                                    .bytes = 300,
                                    .memory_limit_bytes = 16u << 20,
                                    .memory_block_bytes = 3u << 20,
                                    .memory_write_buffer_bytes = 2u << 20,
                                    .memory_table_reader_bytes = 5u << 10},
                                   all_up);
  const auto memory = boost::json::parse(status_json(report)).at("cache").at("memory");
  EXPECT_EQ(memory.at("limit_bytes"), 16u << 20);
  EXPECT_EQ(memory.at("block_bytes"), 3u << 20);
  EXPECT_EQ(memory.at("write_buffer_bytes"), 2u << 20);
  EXPECT_EQ(memory.at("table_reader_bytes"), 5u << 10);
  const auto html = status_html(report);
  EXPECT_NE(html.find("Cache memory: 16.0 MiB for metadata blocks (3.00 MiB now) and write "
                      "buffers (2.00 MiB); table indexes 5.00 KiB."),
            std::string::npos)
      << html;
}

TEST(status_board, json_carries_every_figure) {
  fake_clock clock;
  status_board board({"goproxy.example", "down.example"}, clock.fn());
  board.record_probe(0, true, 1500us);
  clock.now += 30s;
  board.record_probe(0, false, std::nullopt);
  board.record_attempt(0, upstream_outcome::ok, 2500us);
  board.record_attempt(1, upstream_outcome::skipped, std::nullopt);
  board.record_cache_lookup(cache_result::hit);
  board.record_cache_lookup(cache_result::miss);
  board.record_problem(1, "zip", "connection refused");
  auto report = board.report({7, 2048}, [](std::size_t tier) { return tier == 0; });

  auto root = boost::json::parse(status_json(report));
  EXPECT_TRUE(std::regex_match(std::string(root.at("generated_at").as_string()),
                               std::regex(R"(2024-05-01T12:00:30\.000Z)")));
  EXPECT_EQ(
      root.at("generated_at_unix_ms").as_int64(),
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.now.time_since_epoch()).count());
  EXPECT_EQ(root.at("traffic_window_seconds").as_int64(), 30);
  EXPECT_EQ(root.at("probe_window_seconds").as_int64(), 3600);
  const auto& tiers = root.at("tiers").as_array();
  ASSERT_EQ(tiers.size(), 2u);
  const auto& first = tiers[0];
  EXPECT_EQ(first.at("name"), "goproxy.example");
  EXPECT_EQ(first.at("up"), true);
  EXPECT_EQ(first.at("slowest"), false);
  const auto& probe = first.at("probe");
  EXPECT_TRUE(probe.at("ttfb_ms_now").is_null());  // the last probe failed
  EXPECT_DOUBLE_EQ(probe.at("ttfb_ms_median").as_double(), 1.5);
  EXPECT_DOUBLE_EQ(probe.at("ttfb_ms_max").as_double(), 1.5);
  EXPECT_EQ(probe.at("successes").to_number<int>(), 1);
  EXPECT_EQ(probe.at("failures").to_number<int>(), 1);
  EXPECT_DOUBLE_EQ(probe.at("success_rate").as_double(), 0.5);
  const auto& samples = probe.at("samples").as_array();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_DOUBLE_EQ(samples[0].at("ttfb_ms").as_double(), 1.5);
  EXPECT_TRUE(samples[1].at("ttfb_ms").is_null());
  EXPECT_EQ(samples[1].at("at_unix_ms").as_int64() - samples[0].at("at_unix_ms").as_int64(), 30000);
  const auto& traffic = first.at("traffic");
  for (const char* outcome : {"ok", "not_found", "error", "timeout", "skipped"}) {
    EXPECT_TRUE(traffic.as_object().contains(outcome)) << outcome;
  }
  EXPECT_EQ(traffic.at("ok").to_number<int>(), 1);
  EXPECT_DOUBLE_EQ(traffic.at("success_rate").as_double(), 1.0);
  EXPECT_DOUBLE_EQ(traffic.at("hit_rate").as_double(), 1.0);
  EXPECT_DOUBLE_EQ(traffic.at("last_ttfb_ms").as_double(), 2.5);
  const auto& second = tiers[1];
  EXPECT_EQ(second.at("up"), false);
  EXPECT_EQ(second.at("traffic").at("skipped").to_number<int>(), 1);
  EXPECT_TRUE(second.at("traffic").at("success_rate").is_null());
  EXPECT_TRUE(second.at("probe").at("ttfb_ms_now").is_null());
  const auto& cache = root.at("cache");
  EXPECT_EQ(cache.at("entries").to_number<int>(), 7);
  EXPECT_EQ(cache.at("bytes").to_number<int>(), 2048);
  EXPECT_EQ(cache.at("hit").to_number<int>(), 1);
  EXPECT_EQ(cache.at("miss").to_number<int>(), 1);
  EXPECT_EQ(cache.at("stale").to_number<int>(), 0);
  EXPECT_DOUBLE_EQ(cache.at("hit_rate").as_double(), 0.5);
  const auto& errors = root.at("recent_errors").as_array();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].at("tier"), "down.example");
  EXPECT_EQ(errors[0].at("kind"), "zip");
  EXPECT_EQ(errors[0].at("reason"), "connection refused");
  EXPECT_EQ(errors[0].at("count").to_number<int>(), 1);
  EXPECT_EQ(errors[0].at("at"), "2024-05-01T12:00:30.000Z");
}

TEST(status_board, html_escapes_hostile_names_and_reasons) {
  fake_clock clock;
  const std::string hostile = "<script>alert(\"x\")</script>&'<img src=x onerror=y>";
  status_board board({hostile, "plain"}, clock.fn());
  board.record_probe(0, true, 5ms);
  board.record_problem(0, "mod", "status 500: <b>boom</b> & \"quotes\"");
  auto html = status_html(board.report({}, all_up));

  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>boom"), std::string::npos);
  const std::string escaped =
      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&lt;img src=x onerror=y&gt;";
  // The name cell, the row's data-tier attribute and the errors table.
  EXPECT_EQ(occurrences(html, escaped), 3u);
  EXPECT_NE(html.find("status 500: &lt;b&gt;boom&lt;/b&gt; &amp; &quot;quotes&quot;"),
            std::string::npos);
}

TEST(status_board, html_is_one_self_contained_page) {
  fake_clock clock;
  status_board board({"a", "b"}, clock.fn());
  board.record_probe(0, true, 5ms);
  board.record_cache_lookup(cache_result::hit);
  auto html =
      status_html(board.report({3, 5u << 20}, [](std::size_t tier) { return tier == 0; }), 10);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta http-equiv=\"refresh\" content=\"10\">"), std::string::npos);
  for (const char* external :
       {"http://", "https://", "<script", "<link", "src=", "@import", "url("}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("Generated 2024-05-01 12:00:00 UTC"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"badge up\">UP</span>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"badge down\">DOWN</span>"), std::string::npos);
  EXPECT_NE(html.find("1 of 2 upstream tiers down: <b>b</b>."), std::string::npos);
  EXPECT_NE(html.find(">5.00 MiB<"), std::string::npos);
  EXPECT_NE(html.find(">100%<"), std::string::npos);
  EXPECT_NE(html.find(">5.00 ms<"), std::string::npos);
  EXPECT_NE(html.find("No upstream error recorded."), std::string::npos);
}

TEST(status_board, sparkline_has_one_point_per_answered_probe) {
  fake_clock clock;
  status_board board({"probed", "failing", "never"}, clock.fn());
  const int answered = 7;
  for (int i = 0; i < answered; ++i) {
    board.record_probe(0, true, std::chrono::milliseconds(10 + i));
    board.record_probe(1, false, std::nullopt);
    clock.now += 5min;
  }
  board.record_probe(0, false, std::nullopt);
  auto html = status_html(board.report({}, all_up));

  auto points = sparkline_points(html, "probed");
  ASSERT_EQ(points.size(), static_cast<std::size_t>(answered));
  // Time runs to the right; each answer was slower than the one before, so higher (a smaller
  // y), and the slowest touches the top margin.
  double previous_x = -1;
  double previous_y = 41;
  for (const auto& point : points) {
    auto comma = point.find(',');
    ASSERT_NE(comma, std::string::npos) << point;
    double x = std::stod(point.substr(0, comma));
    double y = std::stod(point.substr(comma + 1));
    EXPECT_GT(x, previous_x) << point;
    EXPECT_LT(y, previous_y) << point;
    EXPECT_GE(y, 0);
    EXPECT_LE(x, 240);
    previous_x = x;
    previous_y = y;
  }
  EXPECT_EQ(points.back().substr(points.back().find(',') + 1), "3.0");
  // The time axis starts at the first probe while the server is younger than an hour.
  EXPECT_EQ(points.front().substr(0, points.front().find(',')), "3.0");

  EXPECT_TRUE(sparkline_points(html, "failing").empty());
  auto failing_row = html.find("data-tier=\"failing\"");
  auto failing_end = html.find("</tr>", failing_row);
  std::string row = html.substr(failing_row, failing_end - failing_row);
  EXPECT_EQ(occurrences(row, "<rect class=\"fail\""), static_cast<std::size_t>(answered));
  EXPECT_NE(row.find("no probe answered in the last 35 min"), std::string::npos);

  auto never_row = html.find("data-tier=\"never\"");
  row = html.substr(never_row, html.find("</tr>", never_row) - never_row);
  EXPECT_EQ(row.find("<svg"), std::string::npos);
  EXPECT_NE(row.find("no probe yet"), std::string::npos);
}

TEST(status_board, sparklines_share_one_scale) {
  fake_clock clock;
  status_board board({"quick", "sluggish"}, clock.fn());
  for (int i = 0; i < 3; ++i) {
    board.record_probe(0, true, 10ms);
    board.record_probe(1, true, 200ms);
    clock.now += 1min;
  }
  auto html = status_html(board.report({}, all_up));
  // 10 ms on a 0 to 200 ms scale sits near the bottom; 200 ms at the top.
  for (const auto& point : sparkline_points(html, "quick")) {
    EXPECT_EQ(point.substr(point.find(',') + 1), "35.3") << point;
  }
  for (const auto& point : sparkline_points(html, "sluggish")) {
    EXPECT_EQ(point.substr(point.find(',') + 1), "3.0") << point;
  }
  EXPECT_NE(html.find("Probe TTFB, last hour <span class=\"small\">(0 to 200 ms)</span>"),
            std::string::npos);
}

TEST(status_board, dense_probes_are_drawn_with_a_bounded_number_of_points) {
  fake_clock clock;
  status_board board({"busy"}, clock.fn());
  for (int i = 0; i < 3000; ++i) {
    board.record_probe(0, true, std::chrono::milliseconds(i % 50));
    clock.now += 1s;
  }
  auto points = sparkline_points(status_html(board.report({}, all_up)), "busy");
  EXPECT_GT(points.size(), 100u);
  EXPECT_LE(points.size(), 480u);
}

TEST(status_board, metrics_feed_the_board) {
  fake_clock clock;
  metrics_layout layout;
  layout.tiers = {"a", "b"};
  layout.chains = {{0, 1}};
  metrics m(std::move(layout), clock.fn());
  m.count_cache_lookup(request_kind::mod, cache_result::hit);
  m.count_cache_lookup(request_kind::zip, cache_result::miss);
  m.count_upstream(0, request_kind::zip, upstream_outcome::not_found, 3ms);
  m.count_upstream(1, request_kind::zip, upstream_outcome::ok, 8ms);
  m.count_upstream(5, request_kind::zip, upstream_outcome::ok, 8ms);
  m.count_probe(0, true, 4ms, 6ms);
  m.count_probe(1, false, std::nullopt, 6ms);
  m.note_upstream_problem(0, request_kind::zip, "timeout after 10s");
  m.note_probe_problem(1, "connection refused");
  m.set_cache_source([] { return cache_figures{2, 999}; });
  m.set_up_source([](std::size_t tier) { return tier == 0; });

  auto report = m.status();
  ASSERT_EQ(report.tiers.size(), 2u);
  EXPECT_EQ(report.generated_at, clock.now);
  EXPECT_TRUE(report.tiers[0].up);
  EXPECT_FALSE(report.tiers[1].up);
  EXPECT_EQ(report.tiers[0].attempts[static_cast<std::size_t>(upstream_outcome::not_found)], 1u);
  EXPECT_EQ(report.tiers[1].attempts[static_cast<std::size_t>(upstream_outcome::ok)], 1u);
  EXPECT_EQ(report.tiers[0].last_traffic_ttfb, microseconds(3ms));
  EXPECT_EQ(report.tiers[0].probe_ttfb_now, microseconds(4ms));
  EXPECT_EQ(report.tiers[1].probe_failures, 1u);
  EXPECT_EQ(report.cache.figures.bytes, 999u);
  ASSERT_TRUE(report.cache.hit_rate);
  EXPECT_DOUBLE_EQ(*report.cache.hit_rate, 0.5);
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_EQ(report.problems[0].tier, "b");
  EXPECT_EQ(report.problems[0].kind, "probe");
  EXPECT_EQ(report.problems[0].reason, "connection refused");
  EXPECT_EQ(report.problems[1].tier, "a");
  EXPECT_EQ(report.problems[1].kind, "zip");
}

TEST(status_board, recording_and_reading_are_thread_safe) {
  fake_clock clock;  // never moved, so its reads race with nothing
  status_board board({"a", "b"}, clock.fn());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&board, t] {
      for (int i = 0; i < 1000; ++i) {
        board.record_attempt(t % 2, upstream_outcome::ok, 1ms);
        board.record_cache_lookup(cache_result::hit);
        if (i % 10 == 0) board.record_probe(t % 2, true, 2ms);
        if (i % 100 == 0) board.record_problem(t % 2, "mod", "status 502");
        if (i % 250 == 0) (void)board.report({}, all_up);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto report = board.report({}, all_up);
  EXPECT_EQ(report.tiers[0].attempts[0] + report.tiers[1].attempts[0], 4000u);
  EXPECT_EQ(report.cache.lookups[0], 4000u);
  EXPECT_EQ(report.tiers[0].probes.size() + report.tiers[1].probes.size(), 400u);
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_EQ(report.problems[0].count + report.problems[1].count, 40u);
}

}  // namespace
}  // namespace gomodproxy::monitor
