#include "probe_report/report_renderer.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace gomodproxy::probe_report {
namespace {

namespace json = boost::json;

probe_report sample_report() {
  probe_report report;
  report.modules = 6;
  report.rounds = 2;
  report.timeout = std::chrono::seconds(10);

  upstream_summary full;
  full.name = "127.0.0.1:4001";
  full.url = "http://127.0.0.1:4001";
  full.requests = 48;
  full.answered = 48;
  full.success_rate = 1.0;
  full.lookups = 12;
  full.hits = 12;
  full.hit_rate = 1.0;
  full.ttfb = {48, 1.2345678, 1.0, 3.5};
  full.by_kind[0] = {12, 12, {12, 0.5, 0.4, 0.9}};
  full.zips = 12;
  full.zip_bytes = 3 * 1024 * 1024;
  full.zip_time = {12, 20.0, 18.0, 40.0};
  full.zip_bytes_per_second = 12.5e6;
  full.lag.compared_modules = 6;

  upstream_summary half = full;
  half.name = "mirror.example.com/go";
  half.url = "https://mirror.example.com/go";
  half.hits = 8;
  half.hit_rate = 8.0 / 12.0;
  half.lag.missing = {"example.com/hello@v1.2.0", "example.com/hello/v2@v2.0.0",
                      "example.com/privatemod@v1.0.0", "example.com/x@v0.1.0"};

  upstream_summary dead;
  dead.name = "127.0.0.1:4003";
  dead.url = "http://127.0.0.1:4003";
  dead.requests = 18;
  dead.success_rate = 0.0;
  dead.lookups = 12;
  dead.hit_rate = 0.0;
  dead.failures = {{"connection refused", 18}};

  upstream_summary direct;
  direct.name = "direct";
  direct.skipped = "not an HTTP mirror";

  report.upstreams = {full, half, dead, direct};
  return report;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(render_json, is_one_object_with_stable_fields_and_plain_numbers) {
  const auto text = render_json(sample_report());
  // Plain decimals, never Boost.JSON's default exponent form.
  EXPECT_EQ(text.find("E-"), std::string::npos) << text;
  EXPECT_EQ(text.find("E1"), std::string::npos) << text;
  json::value parsed = json::parse(text);
  const auto& root = parsed.as_object();
  EXPECT_EQ(root.at("modules").to_number<int>(), 6);
  EXPECT_EQ(root.at("rounds").to_number<int>(), 2);
  EXPECT_EQ(root.at("timeout_ms").to_number<int>(), 10000);
  const auto& upstreams = root.at("upstreams").as_array();
  ASSERT_EQ(upstreams.size(), 4u);

  const auto& full = upstreams[0].as_object();
  EXPECT_EQ(full.at("name").as_string(), "127.0.0.1:4001");
  EXPECT_EQ(full.at("url").as_string(), "http://127.0.0.1:4001");
  EXPECT_TRUE(full.at("skipped").is_null());
  EXPECT_EQ(full.at("requests").to_number<int>(), 48);
  EXPECT_EQ(full.at("answered").to_number<int>(), 48);
  EXPECT_DOUBLE_EQ(full.at("success_rate").to_number<double>(), 1.0);
  EXPECT_DOUBLE_EQ(full.at("ttfb_ms").at("mean").to_number<double>(), 1.235);  // to the µs
  EXPECT_DOUBLE_EQ(full.at("ttfb_ms").at("p95").to_number<double>(), 3.5);
  EXPECT_EQ(full.at("ttfb_ms").at("samples").to_number<int>(), 48);
  for (const char* kind : {"list", "info", "mod", "zip"}) {
    ASSERT_TRUE(full.at("by_kind").as_object().contains(kind)) << kind;
    EXPECT_TRUE(full.at("by_kind").at(kind).as_object().contains("ttfb_ms")) << kind;
  }
  EXPECT_DOUBLE_EQ(full.at("by_kind").at("list").at("ttfb_ms").at("p50").to_number<double>(), 0.4);
  EXPECT_EQ(full.at("zip").at("count").to_number<int>(), 12);
  EXPECT_EQ(full.at("zip").at("bytes").to_number<int>(), 3 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(full.at("zip").at("time_ms").at("mean").to_number<double>(), 20.0);
  EXPECT_DOUBLE_EQ(full.at("zip").at("bytes_per_second").to_number<double>(), 12.5e6);
  EXPECT_EQ(full.at("sync_lag").at("missing_count").to_number<int>(), 0);

  const auto& half = upstreams[1].as_object();
  EXPECT_DOUBLE_EQ(half.at("hit_rate").to_number<double>(), 0.6667);
  EXPECT_EQ(half.at("hits").to_number<int>(), 8);
  EXPECT_EQ(half.at("lookups").to_number<int>(), 12);
  EXPECT_EQ(half.at("sync_lag").at("missing_count").to_number<int>(), 4);
  EXPECT_EQ(half.at("sync_lag").at("missing").as_array().size(), 4u);
  EXPECT_EQ(half.at("sync_lag").at("missing").as_array()[0].as_string(),
            "example.com/hello@v1.2.0");

  const auto& dead = upstreams[2].as_object();
  EXPECT_DOUBLE_EQ(dead.at("success_rate").to_number<double>(), 0.0);
  EXPECT_TRUE(dead.at("ttfb_ms").at("mean").is_null());
  EXPECT_TRUE(dead.at("sync_lag").at("missing_count").is_null());  // nothing compared
  ASSERT_EQ(dead.at("failures").as_array().size(), 1u);
  EXPECT_EQ(dead.at("failures").as_array()[0].at("reason").as_string(), "connection refused");
  EXPECT_EQ(dead.at("failures").as_array()[0].at("count").to_number<int>(), 18);

  const auto& direct = upstreams[3].as_object();
  EXPECT_EQ(direct.at("skipped").as_string(), "not an HTTP mirror");
  EXPECT_TRUE(direct.at("url").is_null());
  EXPECT_TRUE(direct.at("success_rate").is_null());
  EXPECT_TRUE(direct.at("hit_rate").is_null());
}

TEST(render_json, escapes_strings) {
  auto report = sample_report();
  report.upstreams[2].failures = {{"bad \"quote\" \\ and\ttab", 1}};
  json::value parsed = json::parse(render_json(report));
  EXPECT_EQ(parsed.at("upstreams").at(2).at("failures").at(0).at("reason").as_string(),
            "bad \"quote\" \\ and\ttab");
}

TEST(render_markdown, has_a_header_row_and_one_row_per_upstream) {
  const auto report = sample_report();
  const auto lines = lines_of(render_markdown(report));
  std::vector<std::string> table;
  for (const auto& line : lines) {
    if (line.starts_with("|")) table.push_back(line);
  }
  ASSERT_EQ(table.size(), 2 + report.upstreams.size());
  EXPECT_NE(table[0].find("| Upstream |"), std::string::npos);
  EXPECT_NE(table[0].find("Hit rate"), std::string::npos);
  EXPECT_NE(table[0].find("Sync lag"), std::string::npos);
  EXPECT_TRUE(table[1].starts_with("|:--|--:|")) << table[1];
  const auto columns = std::count(table[0].begin(), table[0].end(), '|');
  for (std::size_t i = 0; i < report.upstreams.size(); ++i) {
    const auto& row = table[2 + i];
    SCOPED_TRACE(row);
    EXPECT_TRUE(row.starts_with("| `" + report.upstreams[i].name + "` |"));
    EXPECT_EQ(std::count(row.begin(), row.end(), '|'), columns);
  }
  EXPECT_NE(table[3].find("66.7%"), std::string::npos);
  EXPECT_NE(table[3].find("4 (example.com/hello@v1.2.0, example.com/hello/v2@v2.0.0, "
                          "example.com/privatemod@v1.0.0, ... (1 more))"),
            std::string::npos);
  EXPECT_NE(table[4].find("0.0%"), std::string::npos);
  EXPECT_NE(table[5].find("skipped: not an HTTP mirror"), std::string::npos);
}

TEST(render_markdown, escapes_pipes_inside_cells) {
  auto report = sample_report();
  report.upstreams[3].skipped = "a|b";
  const auto text = render_markdown(report);
  EXPECT_NE(text.find("skipped: a\\|b"), std::string::npos) << text;
}

TEST(render_table, aligns_one_row_per_upstream_and_explains_below) {
  const auto report = sample_report();
  const auto text = render_table(report);
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 3 + report.upstreams.size());
  EXPECT_EQ(lines[0], "gomodproxy probe: 6 modules x 2 rounds, timeout 10s");
  const auto& header = lines[2];
  EXPECT_TRUE(header.starts_with("UPSTREAM")) << header;
  // Right-aligned numeric columns end where their header ends.
  const auto success_end = header.find("SUCCESS") + std::string("SUCCESS").size();
  for (std::size_t i = 0; i < report.upstreams.size(); ++i) {
    const auto& row = lines[3 + i];
    SCOPED_TRACE(row);
    EXPECT_TRUE(row.starts_with(report.upstreams[i].name));
    ASSERT_GE(row.size(), success_end);
    EXPECT_NE(row[success_end - 1], ' ');
    EXPECT_TRUE(success_end == row.size() || row[success_end] == ' ');
  }
  EXPECT_NE(lines[3].find("100.0%"), std::string::npos);
  EXPECT_NE(lines[4].find("66.7%"), std::string::npos);
  EXPECT_NE(lines[3].find("3.0 MiB"), std::string::npos);
  EXPECT_NE(text.find("\n  mirror.example.com/go  4 missing: example.com/hello@v1.2.0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("18 x connection refused"), std::string::npos);
  EXPECT_NE(text.find("Skipped:\n  direct"), std::string::npos);
}

TEST(render, dispatches_on_the_format) {
  const auto report = sample_report();
  EXPECT_EQ(render(report, output_format::json), render_json(report));
  EXPECT_EQ(render(report, output_format::markdown), render_markdown(report));
  EXPECT_EQ(render(report, output_format::table), render_table(report));
}

TEST(format_duration, uses_the_flag_syntax) {
  using std::chrono::milliseconds;
  EXPECT_EQ(format_duration(milliseconds(10000)), "10s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(90000)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(3600000)), "1h");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
}

}  // namespace
}  // namespace gomodproxy::probe_report
