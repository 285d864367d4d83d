#include "probe_report/probe_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::probe_report {
namespace {

using kind = upstream::tier_spec::kind;

probe_options parsed_ok(const std::vector<std::string>& args) {
  auto parsed = parse_probe_flags(args);
  if (!parsed) {
    ADD_FAILURE() << parsed.error().detail;
    return {};
  }
  return *parsed;
}

TEST(parse_probe_flags, has_documented_defaults) {
  auto options = parsed_ok({});
  EXPECT_EQ(options.sweep.rounds, 1);
  EXPECT_EQ(options.sweep.timeout, std::chrono::seconds(10));
  EXPECT_EQ(options.sweep.zip_timeout, std::chrono::minutes(5));
  EXPECT_EQ(options.format, output_format::table);
  EXPECT_FALSE(options.modules_file);
  EXPECT_TRUE(options.sweep.ca_file.empty());
  // serve's default list: two mirrors and direct.
  ASSERT_EQ(options.sweep.tiers.size(), 3u);
  EXPECT_EQ(options.sweep.tiers[0].url, "https://goproxy.cn");
  EXPECT_EQ(options.sweep.tiers[2].type, kind::direct);
}

TEST(parse_probe_flags, reads_every_flag_in_both_spellings) {
  auto options = parsed_ok({"--upstreams", "http://127.0.0.1:1,http://127.0.0.1:2|direct",
                            "--modules=mods.txt", "--rounds", "3", "--format=json", "--timeout",
                            "1m30s", "--zip-timeout=250ms", "--ca-file", "ca.pem"});
  ASSERT_EQ(options.sweep.tiers.size(), 3u);
  EXPECT_EQ(options.sweep.tiers[1].url, "http://127.0.0.1:2");
  EXPECT_EQ(options.modules_file, "mods.txt");
  EXPECT_EQ(options.sweep.rounds, 3);
  EXPECT_EQ(options.format, output_format::json);
  EXPECT_EQ(options.sweep.timeout, std::chrono::seconds(90));
  EXPECT_EQ(options.sweep.zip_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(options.sweep.ca_file, "ca.pem");
  EXPECT_EQ(parsed_ok({"--format", "markdown"}).format, output_format::markdown);
  EXPECT_EQ(parsed_ok({"--format", "table"}).format, output_format::table);
}

TEST(parse_probe_flags, help_wins) {
  EXPECT_TRUE(parsed_ok({"--help"}).help);
  EXPECT_TRUE(parsed_ok({"--rounds", "2", "-h", "--bogus"}).help);
}

TEST(parse_probe_flags, rejects_bad_input_with_one_line_naming_the_flag) {
  const struct {
    std::vector<std::string> args;
    std::string want;
  } cases[] = {
      {{"--bogus"}, "unknown flag \"--bogus\""},
      {{"--rounds=2", "--nope=1"}, "unknown flag \"--nope\""},
      {{"extra"}, "unexpected argument \"extra\""},
      {{"--rounds"}, "--rounds needs a value"},
      {{"--rounds", "0"}, "--rounds: bad value \"0\""},
      {{"--rounds", "1001"}, "--rounds: bad value"},
      {{"--rounds", "2x"}, "--rounds: bad value"},
      {{"--rounds", "-1"}, "--rounds: bad value"},
      {{"--format", "yaml"}, "--format: bad value \"yaml\"; expected table, json or markdown"},
      {{"--timeout", "0s"}, "--timeout: bad value \"0s\""},
      {{"--timeout", "10 s"}, "--timeout: bad value"},
      {{"--zip-timeout", "soon"}, "--zip-timeout: bad value"},
      {{"--modules="}, "--modules: bad value"},
      {{"--upstreams", "ftp://x.example"}, "--upstreams: invalid proxy URL scheme"},
      {{"--upstreams", " , |"}, "--upstreams: the list names no upstream"},
      {{"--upstreams", "foo"}, "--upstreams: invalid proxy URL missing scheme"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args.front());
    auto parsed = parse_probe_flags(c.args);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, errc::invalid_request);
    const auto& problem = parsed.error().detail;
    EXPECT_TRUE(problem.starts_with("gomodproxy probe: ")) << problem;
    EXPECT_NE(problem.find(c.want), std::string::npos) << problem;
    EXPECT_EQ(problem.find('\n'), std::string::npos) << problem;
  }
}

TEST(parse_probe_upstreams, keeps_entries_after_direct_and_off_and_drops_repeats) {
  auto parsed = parse_probe_upstreams(
      "https://a.example|direct,https://b.example,off|https://a.example/,http://a.example");
  ASSERT_TRUE(parsed) << parsed.error().detail;
  const auto* tiers = &*parsed;
  ASSERT_EQ(tiers->size(), 5u);
  EXPECT_EQ((*tiers)[0].url, "https://a.example");
  EXPECT_EQ((*tiers)[1].type, kind::direct);
  EXPECT_EQ((*tiers)[2].url, "https://b.example");
  EXPECT_EQ((*tiers)[3].type, kind::off);
  EXPECT_EQ((*tiers)[4].url, "http://a.example");
}

TEST(parse_probe_upstreams, refuses_credentials_over_plain_http) {
  auto parsed = parse_probe_upstreams("http://user:secret@a.example");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, errc::invalid_request);
  EXPECT_EQ(parsed.error().detail.find("secret"), std::string::npos);
}

TEST(probe_usage_text, names_every_flag) {
  const auto text = probe_usage_text();
  for (const char* flag : {"--upstreams", "--modules", "--rounds", "--format", "--timeout",
                           "--zip-timeout", "--ca-file", "--help"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(text.find("golang.org/x/mod"), std::string::npos);
}

}  // namespace
}  // namespace gomodproxy::probe_report
