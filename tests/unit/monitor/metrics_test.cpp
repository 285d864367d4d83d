#include "monitor/metrics.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cpp/metrics_text.hpp"

namespace gomodproxy::monitor {
namespace {

using namespace std::chrono_literals;

metrics_layout two_tiers() {
  metrics_layout layout;
  layout.tiers = {"goproxy.cn", "goproxy.io", "athens.local:3000"};
  layout.chains = {{0, 1}, {2}};
  return layout;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

using test::value_of;

TEST(metrics, every_family_has_its_exact_name_and_type) {
  metrics m(two_tiers());
  std::string text = m.serialize();
  struct family {
    const char* name;
    const char* type;
  };
  const family families[] = {
      {"gomodproxy_requests_total", "counter"},
      {"gomodproxy_request_duration_seconds", "histogram"},
      {"gomodproxy_cache_lookups_total", "counter"},
      {"gomodproxy_upstream_requests_total", "counter"},
      {"gomodproxy_upstream_ttfb_seconds", "histogram"},
      {"gomodproxy_upstream_up", "gauge"},
      {"gomodproxy_probe_ttfb_seconds", "gauge"},
      {"gomodproxy_probe_duration_seconds", "gauge"},
      {"gomodproxy_probe_success_total", "counter"},
      {"gomodproxy_probe_failure_total", "counter"},
      {"gomodproxy_fallbacks_total", "counter"},
      {"gomodproxy_singleflight_shared_total", "counter"},
      {"gomodproxy_inflight_requests", "gauge"},
      {"gomodproxy_cache_bytes", "gauge"},
      {"gomodproxy_cache_entries", "gauge"},
      {"gomodproxy_bytes_sent_total", "counter"},
      {"gomodproxy_stale_served_total", "counter"},
  };
  for (const auto& f : families) {
    SCOPED_TRACE(f.name);
    EXPECT_TRUE(has_line(text, std::string("# TYPE ") + f.name + " " + f.type));
    EXPECT_NE(text.find(std::string("# HELP ") + f.name + " "), std::string::npos);
  }
}

TEST(metrics, series_exist_before_any_traffic) {
  metrics m(two_tiers());
  std::string text = m.serialize();
  for (const char* kind : {"list", "latest", "info", "mod", "zip", "query", "sumdb", "other"}) {
    SCOPED_TRACE(kind);
    std::string k = kind;
    EXPECT_EQ(value_of(text, "gomodproxy_requests_total{code=\"200\",kind=\"" + k + "\"}"), 0);
    EXPECT_EQ(value_of(text, "gomodproxy_request_duration_seconds_count{kind=\"" + k + "\"}"), 0);
    for (const char* result : {"hit", "miss", "stale"}) {
      EXPECT_EQ(value_of(text, "gomodproxy_cache_lookups_total{kind=\"" + k + "\",result=\"" +
                                   result + "\"}"),
                0);
    }
    for (const char* tier : {"goproxy.cn", "goproxy.io", "athens.local:3000"}) {
      for (const char* outcome : {"ok", "not_found", "error", "timeout", "skipped"}) {
        EXPECT_EQ(value_of(text, "gomodproxy_upstream_requests_total{kind=\"" + k +
                                     "\",outcome=\"" + outcome + "\",upstream=\"" + tier + "\"}"),
                  0);
      }
    }
  }
  for (const char* tier : {"goproxy.cn", "goproxy.io", "athens.local:3000"}) {
    std::string t = tier;
    EXPECT_EQ(value_of(text, "gomodproxy_upstream_up{upstream=\"" + t + "\"}"), 1);
    EXPECT_EQ(value_of(text, "gomodproxy_probe_ttfb_seconds{upstream=\"" + t + "\"}"), 0);
    EXPECT_EQ(value_of(text, "gomodproxy_probe_success_total{upstream=\"" + t + "\"}"), 0);
    EXPECT_EQ(value_of(text, "gomodproxy_probe_failure_total{upstream=\"" + t + "\"}"), 0);
    EXPECT_EQ(value_of(text, "gomodproxy_upstream_ttfb_seconds_count{upstream=\"" + t + "\"}"), 0);
  }
  // Only routes the chains can take: goproxy.cn -> goproxy.io.
  EXPECT_EQ(value_of(text, "gomodproxy_fallbacks_total{from=\"goproxy.cn\",to=\"goproxy.io\"}"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_fallbacks_total{from=\"goproxy.io\",to=\"goproxy.cn\"}"),
            -1);
  EXPECT_EQ(value_of(text, "gomodproxy_singleflight_shared_total"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_inflight_requests"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_bytes"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_entries"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_bytes_sent_total"), 0);
}

TEST(metrics, recording_moves_the_right_series) {
  metrics m(two_tiers());
  m.count_request(request_kind::zip, 200, 3ms);
  m.count_request(request_kind::zip, 200, 2s);
  m.count_request(request_kind::other, 404, 1ms);
  m.count_request(request_kind::info, 418, 1ms);  // not a pre-created code
  m.count_cache_lookup(request_kind::mod, cache_result::hit);
  m.count_cache_lookup(request_kind::list, cache_result::stale);
  m.count_stale_served(request_kind::list);
  m.count_upstream(1, request_kind::latest, upstream_outcome::timeout, std::nullopt);
  m.count_upstream(0, request_kind::zip, upstream_outcome::ok, 250ms);
  m.count_upstream(0, request_kind::zip, upstream_outcome::skipped, std::nullopt);
  m.count_upstream(9, request_kind::zip, upstream_outcome::ok, 1ms);  // unknown tier: ignored
  m.count_fallback(0, 1);
  m.count_fallback(1, 2);  // not a configured route, still counted
  m.count_singleflight_shared();
  m.inflight_started();
  m.inflight_started();
  m.inflight_finished();
  m.count_bytes_sent(1000);
  m.count_bytes_sent(24);
  m.count_probe(2, true, 40ms, 45ms);
  m.count_probe(2, false, std::nullopt, 5s);
  m.set_cache_source([] {
    return cache_figures{.entries = 12,
                         .bytes = 3456,
                         .max_bytes = 8192,
                         .disk_bytes = 7000,
                         .evictions = 5,
                         .evicted_bytes = 900};
  });
  m.set_up_source([](std::size_t tier) { return tier != 1; });
  std::string text = m.serialize();
  EXPECT_EQ(value_of(text, "gomodproxy_cache_max_bytes"), 8192);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_disk_bytes"), 7000);
  // The store's totals (kept across restarts) become the counters; a second scrape adds nothing.
  EXPECT_EQ(value_of(text, "gomodproxy_cache_evictions_total"), 5);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_evicted_bytes_total"), 900);
  text = m.serialize();
  EXPECT_EQ(value_of(text, "gomodproxy_cache_evictions_total"), 5);

  EXPECT_EQ(value_of(text, "gomodproxy_requests_total{code=\"200\",kind=\"zip\"}"), 2);
  EXPECT_EQ(value_of(text, "gomodproxy_requests_total{code=\"404\",kind=\"other\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_requests_total{code=\"418\",kind=\"info\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_request_duration_seconds_count{kind=\"zip\"}"), 2);
  EXPECT_EQ(value_of(text, "gomodproxy_request_duration_seconds_bucket{kind=\"zip\",le=\"0.005\"}"),
            1);
  EXPECT_NEAR(value_of(text, "gomodproxy_request_duration_seconds_sum{kind=\"zip\"}"), 2.003, 1e-9);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_lookups_total{kind=\"mod\",result=\"hit\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_lookups_total{kind=\"list\",result=\"stale\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_stale_served_total{kind=\"list\"}"), 1);
  EXPECT_EQ(value_of(text,
                     "gomodproxy_upstream_requests_total{kind=\"latest\",outcome=\"timeout\","
                     "upstream=\"goproxy.io\"}"),
            1);
  EXPECT_EQ(value_of(text,
                     "gomodproxy_upstream_requests_total{kind=\"zip\",outcome=\"ok\","
                     "upstream=\"goproxy.cn\"}"),
            1);
  EXPECT_EQ(value_of(text,
                     "gomodproxy_upstream_requests_total{kind=\"zip\",outcome=\"skipped\","
                     "upstream=\"goproxy.cn\"}"),
            1);
  EXPECT_EQ(value_of(text, "gomodproxy_upstream_ttfb_seconds_count{upstream=\"goproxy.cn\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_upstream_ttfb_seconds_count{upstream=\"goproxy.io\"}"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_fallbacks_total{from=\"goproxy.cn\",to=\"goproxy.io\"}"), 1);
  EXPECT_EQ(
      value_of(text, "gomodproxy_fallbacks_total{from=\"goproxy.io\",to=\"athens.local:3000\"}"),
      1);
  EXPECT_EQ(value_of(text, "gomodproxy_singleflight_shared_total"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_inflight_requests"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_bytes_sent_total"), 1024);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_entries"), 12);
  EXPECT_EQ(value_of(text, "gomodproxy_cache_bytes"), 3456);
  EXPECT_EQ(value_of(text, "gomodproxy_upstream_up{upstream=\"goproxy.cn\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_upstream_up{upstream=\"goproxy.io\"}"), 0);
  EXPECT_NEAR(value_of(text, "gomodproxy_probe_ttfb_seconds{upstream=\"athens.local:3000\"}"), 0.04,
              1e-9);
  EXPECT_NEAR(value_of(text, "gomodproxy_probe_duration_seconds{upstream=\"athens.local:3000\"}"),
              5, 1e-9);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_success_total{upstream=\"athens.local:3000\"}"), 1);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_failure_total{upstream=\"athens.local:3000\"}"), 1);
  EXPECT_EQ(text.find("upstream=\"9\""), std::string::npos);
}

TEST(metrics, labels_come_from_closed_sets) {
  metrics m(two_tiers());
  m.count_request(request_kind::zip, 200, 1ms);
  std::string text = m.serialize();
  const std::regex label_pair(R"re((\w+)="([^"]*)")re");
  const std::set<std::string> kinds{"list", "latest", "info",  "mod",
                                    "zip",  "query",  "sumdb", "other"};
  const std::set<std::string> tiers{"goproxy.cn", "goproxy.io", "athens.local:3000"};
  const std::set<std::string> allowed_names{"kind", "code", "result", "upstream", "outcome",
                                            "from", "to",   "le",     "route",    "reason"};
  int checked = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), label_pair);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[1];
    std::string value = (*it)[2];
    EXPECT_TRUE(allowed_names.count(name)) << name;
    if (name == "kind") {
      EXPECT_TRUE(kinds.count(value)) << value;
    }
    if (name == "upstream" || name == "from" || name == "to") {
      EXPECT_TRUE(tiers.count(value)) << value;
    }
    if (name == "result") {
      EXPECT_TRUE(value == "hit" || value == "miss" || value == "stale") << value;
    }
    if (name == "route") {
      EXPECT_TRUE(value == "client" || value == "admin") << value;
    }
    if (name == "reason") {
      EXPECT_TRUE(value == "missing" || value == "invalid") << value;
    }
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST(metrics, unauthorized_answers_are_counted_by_route_and_reason) {
  metrics m(two_tiers());
  m.count_unauthorized(refused_route::admin, refused_because::missing);
  m.count_unauthorized(refused_route::client, refused_because::invalid);
  m.count_unauthorized(refused_route::client, refused_because::invalid);
  const std::string text = m.serialize();
  EXPECT_NE(text.find("gomodproxy_unauthorized_total{reason=\"missing\",route=\"admin\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gomodproxy_unauthorized_total{reason=\"invalid\",route=\"client\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("gomodproxy_unauthorized_total{reason=\"missing\",route=\"client\"} 0"),
            std::string::npos);
}

TEST(metrics, recording_is_thread_safe) {
  metrics m(two_tiers());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 2000; ++i) {
        m.count_request(request_kind::mod, 200, 1ms);
        m.count_upstream(0, request_kind::mod, upstream_outcome::ok, 1ms);
        m.count_bytes_sent(1);
        if (i % 500 == 0) (void)m.serialize();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::string text = m.serialize();
  EXPECT_EQ(value_of(text, "gomodproxy_requests_total{code=\"200\",kind=\"mod\"}"), 8000);
  EXPECT_EQ(value_of(text, "gomodproxy_upstream_ttfb_seconds_count{upstream=\"goproxy.cn\"}"),
            8000);
  EXPECT_EQ(value_of(text, "gomodproxy_bytes_sent_total"), 8000);
}

// promtool (Debian package `prometheus`) lints the exposition the way Prometheus users will.
TEST(metrics, promtool_check_metrics_reports_nothing) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "install the Debian package prometheus";
  metrics m(two_tiers());
  m.count_request(request_kind::zip, 200, 3ms);
  m.count_probe(0, true, 10ms, 12ms);
  auto dir = std::filesystem::temp_directory_path() / ("gmp-metrics-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto input = dir / "metrics.txt";
  auto output = dir / "promtool.out";
  {
    std::ofstream out(input);
    out << m.serialize();
  }
  std::string command = std::string(promtool) + " check metrics < " + input.string() + " > " +
                        output.string() + " 2>&1";
  int status = std::system(command.c_str());
  std::ifstream in(output);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(status, 0) << report;
  EXPECT_EQ(report, "") << report;
}

}  // namespace
}  // namespace gomodproxy::monitor
