#include "probe_report/probe_report.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::probe_report {
namespace {

using std::chrono::microseconds;

request_sample answered(request_kind kind, int status, long ttfb_us, long elapsed_us,
                        std::uint64_t bytes = 0) {
  request_sample sample;
  sample.kind = kind;
  sample.status = status;
  sample.answered = true;
  sample.ttfb = microseconds(ttfb_us);
  sample.elapsed = microseconds(elapsed_us);
  sample.body_bytes = bytes;
  return sample;
}

request_sample failed(request_kind kind, std::string reason, int status = 0) {
  request_sample sample;
  sample.kind = kind;
  sample.status = status;
  sample.failure = std::move(reason);
  if (status != 0) sample.ttfb = microseconds(100);
  return sample;
}

module_lookup lookup(std::size_t module, list_answer list, std::vector<std::string> versions,
                     bool info_found = false) {
  module_lookup out;
  out.module_index = module;
  out.list = list;
  out.versions = std::move(versions);
  out.info_found = info_found;
  return out;
}

// Three modules: hello (unpinned), tools (unpinned), pinned@v0.0.0-... (pinned, no list).
probe_run three_module_run() {
  probe_run run;
  run.modules = {{"example.com/hello", std::nullopt},
                 {"example.com/tools", std::nullopt},
                 {"example.com/pinned", "v0.0.0-20240102030405-abcdef123456"}};
  run.rounds = 1;
  run.timeout = std::chrono::seconds(10);
  return run;
}

TEST(summarize, counts_success_as_answers_including_not_found) {
  auto run = three_module_run();
  upstream_run a;
  a.name = "a.example";
  a.requests = {answered(request_kind::list, 200, 1000, 1200),
                answered(request_kind::info, 404, 2000, 2100),
                failed(request_kind::mod, "500 internal error", 500),
                failed(request_kind::zip, "timeout after 10s (first byte)")};
  run.upstreams.push_back(a);
  auto report = summarize(run);
  const auto& s = report.upstreams[0];
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.answered, 2u);
  ASSERT_TRUE(s.success_rate);
  EXPECT_DOUBLE_EQ(*s.success_rate, 0.5);
  // TTFB covers every request that got headers (the 500 too), not the timeout.
  EXPECT_EQ(s.ttfb.samples, 3u);
  EXPECT_EQ(s.by_kind[static_cast<int>(request_kind::list)].requests, 1u);
  EXPECT_EQ(s.by_kind[static_cast<int>(request_kind::mod)].answered, 0u);
  EXPECT_EQ(s.by_kind[static_cast<int>(request_kind::zip)].ttfb.samples, 0u);
  ASSERT_EQ(s.failures.size(), 2u);
}

TEST(summarize, hit_rate_counts_modules_with_versions_or_a_found_pinned_info) {
  auto run = three_module_run();
  run.rounds = 2;
  upstream_run a;
  a.name = "a.example";
  for (int round = 0; round < 2; ++round) {
    a.lookups.push_back(lookup(0, list_answer::found, {"v1.0.0"}));
    // An empty list is "exists, no tagged versions": not a hit for an unpinned module.
    a.lookups.push_back(lookup(1, list_answer::found, {}));
    // The pinned module is a hit through its .info even though the list lacks it.
    a.lookups.push_back(lookup(2, list_answer::not_found, {}, round == 0));
  }
  run.upstreams.push_back(a);
  auto report = summarize(run);
  const auto& s = report.upstreams[0];
  EXPECT_EQ(s.lookups, 6u);
  EXPECT_EQ(s.hits, 3u);
  ASSERT_TRUE(s.hit_rate);
  EXPECT_DOUBLE_EQ(*s.hit_rate, 0.5);
}

TEST(summarize, sync_lag_is_measured_against_the_upstream_listing_the_most_versions) {
  auto run = three_module_run();
  run.rounds = 2;
  upstream_run fresh, stale, gone, broken;
  fresh.name = "fresh";
  stale.name = "stale";
  gone.name = "gone";
  broken.name = "broken";
  for (int round = 0; round < 2; ++round) {
    fresh.lookups.push_back(lookup(0, list_answer::found, {"v1.0.0", "v1.1.0", "v1.2.0"}));
    fresh.lookups.push_back(lookup(1, list_answer::not_found, {}));
    // The stale mirror learns v1.1.0 only in round two: the union over rounds counts.
    stale.lookups.push_back(lookup(0, list_answer::found,
                                   round == 0 ? std::vector<std::string>{"v1.0.0"}
                                              : std::vector<std::string>{"v1.0.0", "v1.1.0"}));
    // It is the only one with tools, so tools' freshest list is its own.
    stale.lookups.push_back(lookup(1, list_answer::found, {"v0.2.0", "v0.10.0"}));
    gone.lookups.push_back(lookup(0, list_answer::not_found, {}));
    gone.lookups.push_back(lookup(1, list_answer::not_found, {}));
    broken.lookups.push_back(lookup(0, list_answer::failed, {}));
    broken.lookups.push_back(
        lookup(1, round == 0 ? list_answer::failed : list_answer::found,
               round == 0 ? std::vector<std::string>{} : std::vector<std::string>{"v0.10.0"}));
  }
  run.upstreams = {fresh, stale, gone, broken};
  auto report = summarize(run);

  EXPECT_EQ(report.upstreams[0].lag.compared_modules, 2u);
  EXPECT_EQ(report.upstreams[0].lag.missing,
            (std::vector<std::string>{"example.com/tools@v0.2.0", "example.com/tools@v0.10.0"}));
  EXPECT_EQ(report.upstreams[1].lag.compared_modules, 2u);
  EXPECT_EQ(report.upstreams[1].lag.missing,
            (std::vector<std::string>{"example.com/hello@v1.2.0"}));
  EXPECT_EQ(report.upstreams[2].lag.missing,
            (std::vector<std::string>{"example.com/hello@v1.0.0", "example.com/hello@v1.1.0",
                                      "example.com/hello@v1.2.0", "example.com/tools@v0.2.0",
                                      "example.com/tools@v0.10.0"}));
  // A module whose list never answered is not compared.
  EXPECT_EQ(report.upstreams[3].lag.compared_modules, 1u);
  EXPECT_EQ(report.upstreams[3].lag.missing,
            (std::vector<std::string>{"example.com/tools@v0.2.0"}));
}

TEST(summarize, sync_lag_ties_go_to_the_earlier_upstream) {
  auto run = three_module_run();
  upstream_run first, second;
  first.name = "first";
  second.name = "second";
  first.lookups.push_back(lookup(0, list_answer::found, {"v1.0.0", "v1.1.0"}));
  second.lookups.push_back(lookup(0, list_answer::found, {"v1.0.0", "v1.2.0"}));
  run.upstreams = {first, second};
  auto report = summarize(run);
  EXPECT_TRUE(report.upstreams[0].lag.missing.empty());
  EXPECT_EQ(report.upstreams[1].lag.missing,
            (std::vector<std::string>{"example.com/hello@v1.1.0"}));
}

TEST(summarize, zip_figures_cover_complete_200_zips_only) {
  auto run = three_module_run();
  upstream_run a;
  a.name = "a";
  a.requests = {answered(request_kind::zip, 200, 1000, 2000, 3000),
                answered(request_kind::zip, 200, 1000, 6000, 9000),
                answered(request_kind::zip, 404, 1000, 1000),
                failed(request_kind::zip, "truncated body", 200)};
  run.upstreams.push_back(a);
  auto report = summarize(run);
  const auto& s = report.upstreams[0];
  EXPECT_EQ(s.zips, 2u);
  EXPECT_EQ(s.zip_bytes, 12000u);
  EXPECT_EQ(s.zip_time.samples, 2u);
  EXPECT_DOUBLE_EQ(*s.zip_time.mean_ms, 4.0);
  ASSERT_TRUE(s.zip_bytes_per_second);
  EXPECT_DOUBLE_EQ(*s.zip_bytes_per_second, 12000.0 / 0.008);
}

TEST(summarize, lists_the_most_frequent_failure_reasons_first_at_most_three) {
  auto run = three_module_run();
  upstream_run a;
  a.name = "a";
  for (int i = 0; i < 1; ++i) a.requests.push_back(failed(request_kind::list, "tls: handshake"));
  for (int i = 0; i < 4; ++i) a.requests.push_back(failed(request_kind::list, "refused"));
  for (int i = 0; i < 2; ++i) a.requests.push_back(failed(request_kind::info, "503", 503));
  for (int i = 0; i < 3; ++i) a.requests.push_back(failed(request_kind::mod, "timeout"));
  run.upstreams.push_back(a);
  auto report = summarize(run);
  const auto& failures = report.upstreams[0].failures;
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].reason, "refused");
  EXPECT_EQ(failures[0].count, 4u);
  EXPECT_EQ(failures[1].reason, "timeout");
  EXPECT_EQ(failures[2].reason, "503");
  EXPECT_DOUBLE_EQ(*report.upstreams[0].success_rate, 0.0);
}

TEST(summarize, keeps_skipped_entries_in_order_without_figures) {
  auto run = three_module_run();
  upstream_run a, direct;
  a.name = "a";
  a.lookups.push_back(lookup(0, list_answer::found, {"v1.0.0"}));
  direct.name = "direct";
  direct.skipped = "not an HTTP mirror";
  run.upstreams = {a, direct};
  auto report = summarize(run);
  ASSERT_EQ(report.upstreams.size(), 2u);
  EXPECT_EQ(report.upstreams[1].name, "direct");
  EXPECT_EQ(report.upstreams[1].skipped, "not an HTTP mirror");
  EXPECT_FALSE(report.upstreams[1].success_rate);
  EXPECT_FALSE(report.upstreams[1].hit_rate);
  EXPECT_EQ(report.upstreams[1].lag.compared_modules, 0u);
  EXPECT_EQ(report.modules, 3u);
  EXPECT_EQ(report.timeout, std::chrono::seconds(10));
}

}  // namespace
}  // namespace gomodproxy::probe_report
