#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/duration.hpp"
#include "config/settings.hpp"
#include "tests/support/cpp/temp_dir.hpp"
#include "tests/support/cpp/test_certificates.hpp"

namespace gomodproxy::config {
namespace {

using namespace std::chrono_literals;
using env_map = std::map<std::string, std::string>;
using upstream::tier_spec;

using test::temp_dir;

std::filesystem::path example_file() {
  return std::filesystem::path(GOMODPROXY_SOURCE_DIR) / "config/gomodproxy.example.toml";
}

settings load_ok(const std::vector<std::string>& args, const env_map& env) {
  auto result = load_settings(args, env);
  if (!result) {
    ADD_FAILURE() << "unexpected error: " << result.error().detail;
    return {};
  }
  return std::move(*result);
}

std::string load_fail(const std::vector<std::string>& args, const env_map& env) {
  auto result = load_settings(args, env);
  if (!result) {
    // Every refusal but an unreadable config file (its errno) is a setting that is not valid.
    if (result.error().code.category() != boost::system::generic_category()) {
      EXPECT_EQ(result.error().code, errc::invalid_request) << result.error().detail;
    }
    return result.error().detail;
  }
  ADD_FAILURE() << "expected an error";
  return {};
}

// Every key the loader accepts, with its flag and env spelling derived by the documented rule.
const std::vector<std::string> all_keys = {"listen",
                                           "cache_dir",
                                           "cache_max_bytes",
                                           "cache_memory",
                                           "upstreams",
                                           "private",
                                           "private_upstreams",
                                           "list_ttl",
                                           "negative_ttl",
                                           "log_level",
                                           "access_log",
                                           "io_threads",
                                           "fill_threads",
                                           "check_threads",
                                           "read_threads",
                                           "connect_timeout",
                                           "first_byte_timeout",
                                           "fill_timeout",
                                           "request_timeout",
                                           "idle_timeout",
                                           "write_timeout",
                                           "drain_timeout",
                                           "drain_grace",
                                           "max_header_bytes",
                                           "max_connections",
                                           "tls_cert",
                                           "tls_key",
                                           "all_failed_502",
                                           "offline",
                                           "ca_file",
                                           "probe_interval",
                                           "probe_modules",
                                           "private_probe_modules",
                                           "breaker_failures",
                                           "breaker_retry_after",
                                           "hedge_after",
                                           "stall_min",
                                           "stall_max",
                                           "sumdb",
                                           "sumdb_key",
                                           "verify",
                                           "no_sumdb",
                                           "go_binary",
                                           "direct_concurrency",
                                           "direct_allow",
                                           "auth_file",
                                           "admin_token"};

std::string flag_of(std::string key) {
  for (char& c : key) c = c == '_' ? '-' : c;
  return "--" + key;
}

std::string env_of(std::string key) {
  for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "GOMODPROXY_" + key;
}

std::string describe(const std::vector<tier_spec>& tiers) {
  std::string out;
  for (const auto& tier : tiers) {
    out += tier.name + (tier.type == tier_spec::kind::url ? "=" + tier.url : "") +
           (tier.fall_through_on_error ? "|" : ",");
  }
  return out;
}

void expect_same(const settings& got, const settings& want) {
  EXPECT_EQ(got.listen, want.listen);
  EXPECT_EQ(got.cache_dir, want.cache_dir);
  EXPECT_EQ(got.cache_max_bytes, want.cache_max_bytes);
  EXPECT_EQ(got.cache_memory, want.cache_memory);
  EXPECT_EQ(got.upstreams_text, want.upstreams_text);
  EXPECT_EQ(got.private_text, want.private_text);
  EXPECT_EQ(got.private_patterns, want.private_patterns);
  EXPECT_EQ(got.private_upstreams_text, want.private_upstreams_text);
  EXPECT_EQ(got.list_ttl, want.list_ttl);
  EXPECT_EQ(got.negative_ttl, want.negative_ttl);
  EXPECT_EQ(got.log_level, want.log_level);
  EXPECT_EQ(got.access_log, want.access_log);
  EXPECT_EQ(got.io_threads, want.io_threads);
  EXPECT_EQ(got.fill_threads, want.fill_threads);
  EXPECT_EQ(got.check_threads, want.check_threads);
  EXPECT_EQ(got.read_threads, want.read_threads);
  EXPECT_EQ(got.connect_timeout, want.connect_timeout);
  EXPECT_EQ(got.first_byte_timeout, want.first_byte_timeout);
  EXPECT_EQ(got.fill_timeout, want.fill_timeout);
  EXPECT_EQ(got.request_timeout, want.request_timeout);
  EXPECT_EQ(got.idle_timeout, want.idle_timeout);
  EXPECT_EQ(got.write_timeout, want.write_timeout);
  EXPECT_EQ(got.drain_timeout, want.drain_timeout);
  EXPECT_EQ(got.drain_grace, want.drain_grace);
  EXPECT_EQ(got.max_header_bytes, want.max_header_bytes);
  EXPECT_EQ(got.max_connections, want.max_connections);
  EXPECT_EQ(got.all_failed_502, want.all_failed_502);
  EXPECT_EQ(got.offline, want.offline);
  EXPECT_EQ(got.ca_file, want.ca_file);
  EXPECT_EQ(got.tls_cert, want.tls_cert);
  EXPECT_EQ(got.tls_key, want.tls_key);
  EXPECT_EQ(got.probe_interval, want.probe_interval);
  EXPECT_EQ(got.probe_modules_text, want.probe_modules_text);
  EXPECT_EQ(got.private_probe_modules_text, want.private_probe_modules_text);
  EXPECT_EQ(got.breaker_failures, want.breaker_failures);
  EXPECT_EQ(got.breaker_retry_after, want.breaker_retry_after);
  EXPECT_EQ(got.hedge_after_text, want.hedge_after_text);
  EXPECT_EQ(got.hedge_after, want.hedge_after);
  EXPECT_EQ(got.stall_min, want.stall_min);
  EXPECT_EQ(got.stall_max, want.stall_max);
  EXPECT_EQ(got.sumdb_text, want.sumdb_text);
  EXPECT_EQ(got.sumdb_key_text, want.sumdb_key_text);
  EXPECT_EQ(got.verify, want.verify);
  EXPECT_EQ(got.no_sumdb_text, want.no_sumdb_text);
  EXPECT_EQ(got.go_binary, want.go_binary);
  EXPECT_EQ(got.direct_concurrency, want.direct_concurrency);
  EXPECT_EQ(got.direct_allow_text, want.direct_allow_text);
  EXPECT_EQ(got.direct_allow_patterns, want.direct_allow_patterns);
}

TEST(load_settings, defaults_with_no_sources) {
  const settings s = load_ok({}, {});
  expect_same(s, settings{});
  EXPECT_EQ(s.listen, "127.0.0.1:8081");
  EXPECT_EQ(s.list_ttl, 60s);
  EXPECT_EQ(s.negative_ttl, 30s);
  EXPECT_EQ(s.fill_timeout, 300000ms);
  EXPECT_EQ(describe(s.upstreams),
            "goproxy.cn=https://goproxy.cn|goproxy.io=https://goproxy.io|direct,");
  EXPECT_EQ(describe(s.private_upstreams), "direct,");
  EXPECT_TRUE(s.private_patterns.empty());
  EXPECT_EQ(s.probe_interval, 30s);
  EXPECT_EQ(s.probe_modules, (std::vector<std::string>{"golang.org/x/mod"}));
  EXPECT_TRUE(s.private_probe_modules.empty());
  EXPECT_EQ(s.breaker_failures, 3);
  EXPECT_EQ(s.breaker_retry_after, 30s);
  EXPECT_EQ(s.drain_grace, 1s);
}

// A byte count: plain, or with a binary suffix; anything else is refused naming the key, and the
// file also takes a TOML integer.
TEST(load_settings, cache_max_bytes_takes_a_byte_count_with_a_binary_suffix) {
  struct case_t {
    std::string text;
    std::optional<std::uint64_t> want;  // nullopt: refused
  };
  const std::vector<case_t> cases = {
      {"0", 0},
      {"1048576", 1048576},
      {"123B", 123},
      {"512KiB", 512u << 10},
      {"50MiB", 50u << 20},
      {"2GiB", std::uint64_t{2} << 30},
      {"3TiB", std::uint64_t{3} << 40},
      {"", std::nullopt},
      {"MiB", std::nullopt},
      {"-1", std::nullopt},
      {"+5MiB", std::nullopt},
      {"1.5GiB", std::nullopt},
      {"50MB", std::nullopt},
      {"50mib", std::nullopt},
      {"50 MiB", std::nullopt},
      {"50MiBs", std::nullopt},
      {"99999999999999999999", std::nullopt},
      {"9000000TiB", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    if (c.want) {
      EXPECT_EQ(load_ok({"--cache-max-bytes", c.text}, {}).cache_max_bytes, *c.want);
      EXPECT_EQ(load_ok({}, {{"GOMODPROXY_CACHE_MAX_BYTES", c.text}}).cache_max_bytes, *c.want);
    } else {
      const std::string message = load_fail({"--cache-max-bytes", c.text}, {});
      EXPECT_NE(message.find("cache_max_bytes: "), std::string::npos) << message;
      EXPECT_NE(message.find("is not a byte count"), std::string::npos) << message;
      EXPECT_NE(message.find("50GiB"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  temp_dir dir;
  EXPECT_EQ(
      load_ok({"--config", dir.write("n.toml", "cache_max_bytes = 4096\n")}, {}).cache_max_bytes,
      4096u);
  EXPECT_EQ(load_ok({"--config", dir.write("s.toml", "cache_max_bytes = \"8KiB\"\n")}, {})
                .cache_max_bytes,
            8192u);
  const std::string negative =
      load_fail({"--config", dir.write("m.toml", "cache_max_bytes = -5\n")}, {});
  EXPECT_NE(negative.find("is negative"), std::string::npos) << negative;
}

// The cache's memory budget is a byte count of at least 1 MiB (RocksDB needs room for its write
// buffers); a smaller one is refused saying so, from every source.
TEST(load_settings, cache_memory_takes_a_byte_count_of_at_least_one_mebibyte) {
  EXPECT_EQ(settings{}.cache_memory, 16u << 20);
  EXPECT_EQ(load_ok({"--cache-memory", "1MiB"}, {}).cache_memory, 1u << 20);
  EXPECT_EQ(load_ok({}, {{"GOMODPROXY_CACHE_MEMORY", "256MiB"}}).cache_memory, 256u << 20);
  temp_dir dir;
  EXPECT_EQ(load_ok({"--config", dir.write("n.toml", "cache_memory = 2097152\n")}, {}).cache_memory,
            2u << 20);
  for (const std::string_view text : {"0", "1048575", "1023KiB"}) {
    SCOPED_TRACE(text);
    const std::string message = load_fail({"--cache-memory", std::string(text)}, {});
    EXPECT_NE(message.find("cache_memory: \"" + std::string(text) + "\" is too small"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("at least 1MiB"), std::string::npos) << message;
  }
  const std::string small =
      load_fail({"--config", dir.write("s.toml", "cache_memory = 4096\n")}, {});
  EXPECT_NE(small.find("4096 is too small"), std::string::npos) << small;
  const std::string bad = load_fail({"--cache-memory", "16MB"}, {});
  EXPECT_NE(bad.find("is not a byte count"), std::string::npos) << bad;
  // The cap's message is unchanged: zero means no cap there.
  const std::string cap = load_fail({"--cache-max-bytes", "16MB"}, {});
  EXPECT_NE(cap.find("TiB; 0: no cap)"), std::string::npos) << cap;
}

// The grace before the listener closes may be turned off (0), not made negative.
TEST(load_settings, drain_grace_takes_zero_but_not_a_negative_duration) {
  EXPECT_EQ(load_ok({"--drain-grace", "2500ms"}, {}).drain_grace, 2500ms);
  EXPECT_EQ(load_ok({}, {{"GOMODPROXY_DRAIN_GRACE", "0s"}}).drain_grace, 0ms);
  temp_dir dir;
  const auto file = dir.write("g.toml", "drain_grace = \"3s\"\n");
  EXPECT_EQ(load_ok({"--config", file}, {}).drain_grace, 3s);
  const std::string message = load_fail({"--drain-grace=-1s"}, {});
  EXPECT_NE(message.find("drain_grace"), std::string::npos) << message;
}

TEST(load_settings, probe_and_breaker_settings) {
  struct case_t {
    std::string name;
    std::vector<std::string> args;
    env_map env;
    std::string file;
    std::chrono::milliseconds want_interval;
    std::vector<std::string> want_modules;
    std::vector<std::string> want_private_modules;
    int want_failures;
    std::chrono::milliseconds want_retry_after;
  };
  const std::vector<case_t> cases = {
      {"flags",
       {"--probe-interval", "1s", "--probe-modules", " golang.org/x/mod, example.com/Upper ,,",
        "--private", "corp.example", "--private-probe-modules", "corp.example/tools",
        "--breaker-failures", "5", "--breaker-retry-after", "2m"},
       {},
       "",
       1s,
       {"golang.org/x/mod", "example.com/Upper"},
       {"corp.example/tools"},
       5,
       2min},
      {"zero interval turns probing off; zero failures never opens",
       {"--probe-interval=0", "--breaker-failures=0"},
       {},
       "",
       0ms,
       {"golang.org/x/mod"},
       {},
       0,
       30s},
      {"environment",
       {},
       {{"GOMODPROXY_PROBE_INTERVAL", "0s"}, {"GOMODPROXY_PROBE_MODULES", ""}},
       "",
       0ms,
       {},
       {},
       3,
       30s},
      {"file",
       {},
       {},
       "probe_interval = 0\nbreaker_failures = 1\nbreaker_retry_after = 90\n",
       0ms,
       {"golang.org/x/mod"},
       {},
       1,
       90s},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    temp_dir dir;
    auto args = c.args;
    if (!c.file.empty()) args.insert(args.begin(), {"--config", dir.write("p.toml", c.file)});
    const settings s = load_ok(args, c.env);
    EXPECT_EQ(s.probe_interval, c.want_interval);
    EXPECT_EQ(s.probe_modules, c.want_modules);
    EXPECT_EQ(s.private_probe_modules, c.want_private_modules);
    EXPECT_EQ(s.breaker_failures, c.want_failures);
    EXPECT_EQ(s.breaker_retry_after, c.want_retry_after);
  }
}

TEST(load_settings, unrelated_environment_is_ignored) {
  const settings s = load_ok(
      {},
      {{"PATH", "/bin"}, {"GOPROXY", "off"}, {"GOMODPROXY_BIN", "/x"}, {"GOMODPROXYLISTEN", "x"}});
  expect_same(s, settings{});
}

// For each key: a value from the file, a different one from env, another from a flag.
struct precedence_case {
  std::string key;
  std::string file_value;  // TOML literal
  std::string env_value;
  std::string flag_value;
  std::function<std::string(const settings&)> get;
  std::string want_file;
  std::string want_env;
  std::string want_flag;
};

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

TEST(load_settings, later_sources_override_earlier_ones) {
  const std::vector<precedence_case> cases = {
      {"listen", "\"127.0.0.1:1\"", "127.0.0.1:2", "[::1]:3",
       [](const settings& s) { return s.listen; }, "127.0.0.1:1", "127.0.0.1:2", "[::1]:3"},
      {"cache_dir", "\"/f\"", "/e", "/x", [](const settings& s) { return s.cache_dir; }, "/f", "/e",
       "/x"},
      {"list_ttl", "90", "2m", "1h",
       [](const settings& s) { return std::to_string(s.list_ttl.count()); }, "90", "120", "3600"},
      {"negative_ttl", "\"5s\"", "7", "9s",
       [](const settings& s) { return std::to_string(s.negative_ttl.count()); }, "5", "7", "9"},
      {"connect_timeout", "2", "250ms", "1m30s",
       [](const settings& s) { return ms_text(s.connect_timeout); }, "2000ms", "250ms", "90000ms"},
      {"log_level", "\"debug\"", "warn", "off", [](const settings& s) { return s.log_level; },
       "debug", "warn", "off"},
      {"fill_threads", "3", "4", "5",
       [](const settings& s) { return std::to_string(s.fill_threads); }, "3", "4", "5"},
      {"max_connections", "10", "20", "30",
       [](const settings& s) { return std::to_string(s.max_connections); }, "10", "20", "30"},
      {"all_failed_502", "true", "false", "true",
       [](const settings& s) { return std::string(s.all_failed_502 ? "T" : "F"); }, "T", "F", "T"},
      {"private_upstreams", "\"https://athens.corp\"", "http://127.0.0.1:3000", "off",
       [](const settings& s) { return describe(s.private_upstreams); },
       "athens.corp=https://athens.corp,", "127.0.0.1:3000=http://127.0.0.1:3000,", "off,"},
      {"private", "\"a.com\"", "b.com,c.com", "*.corp/",
       [](const settings& s) {
         std::string out;
         for (const auto& p : s.private_patterns) out += p + ";";
         return out;
       },
       "a.com;", "b.com;c.com;", "*.corp;"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    temp_dir dir;
    const std::string file = dir.write("c.toml", c.key + " = " + c.file_value + "\n");
    const env_map with_env = {{"GOMODPROXY_CONFIG", file}, {env_of(c.key), c.env_value}};
    EXPECT_EQ(c.get(load_ok({}, {{"GOMODPROXY_CONFIG", file}})), c.want_file);
    EXPECT_EQ(c.get(load_ok({"--config", file}, {})), c.want_file);
    EXPECT_EQ(c.get(load_ok({}, with_env)), c.want_env);
    EXPECT_EQ(c.get(load_ok({flag_of(c.key), c.flag_value}, with_env)), c.want_flag);
    EXPECT_EQ(c.get(load_ok({flag_of(c.key) + "=" + c.flag_value}, with_env)), c.want_flag);
    // A flag wins over the file even without env in between.
    EXPECT_EQ(c.get(load_ok({"--config=" + file, flag_of(c.key), c.flag_value}, {})), c.want_flag);
  }
}

TEST(load_settings, config_flag_wins_over_config_env) {
  temp_dir dir;
  const std::string a = dir.write("a.toml", "listen = \"127.0.0.1:1\"\n");
  const std::string b = dir.write("b.toml", "listen = \"127.0.0.1:2\"\n");
  EXPECT_EQ(load_ok({"--config", b}, {{"GOMODPROXY_CONFIG", a}}).listen, "127.0.0.1:2");
  EXPECT_EQ(load_ok({}, {{"GOMODPROXY_CONFIG", a}}).listen, "127.0.0.1:1");
  // An empty GOMODPROXY_CONFIG means no file.
  expect_same(load_ok({}, {{"GOMODPROXY_CONFIG", ""}}), settings{});
}

TEST(load_settings, later_flag_wins_over_earlier_flag) {
  EXPECT_EQ(load_ok({"--listen", "127.0.0.1:1", "--listen=127.0.0.1:2"}, {}).listen, "127.0.0.1:2");
}

TEST(load_settings, flag_forms) {
  struct flag_case {
    std::vector<std::string> args;
    bool want_502;
    std::string want_listen;
  };
  const std::vector<flag_case> cases = {
      {{"--all-failed-502"}, true, "127.0.0.1:8081"},
      {{"--all-failed-502", "--listen", "0.0.0.0:1"}, true, "0.0.0.0:1"},
      {{"--all-failed-502", "true"}, true, "127.0.0.1:8081"},
      {{"--all-failed-502", "false"}, false, "127.0.0.1:8081"},
      {{"--all-failed-502=false"}, false, "127.0.0.1:8081"},
      {{"--all-failed-502=true", "--listen=10.1.2.3:0"}, true, "10.1.2.3:0"},
      {{"--listen", "localhost:65535"}, false, "localhost:65535"},
      {{"--listen=[::]:8081"}, false, "[::]:8081"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    const settings s = load_ok(c.args, {});
    EXPECT_EQ(s.all_failed_502, c.want_502);
    EXPECT_EQ(s.listen, c.want_listen);
  }
  // --offline is a bare flag like the other booleans, off unless asked for.
  EXPECT_FALSE(load_ok({}, {}).offline);
  EXPECT_TRUE(load_ok({"--offline"}, {}).offline);
  EXPECT_TRUE(load_ok({"--offline", "--listen", "127.0.0.1:0"}, {}).offline);
  EXPECT_TRUE(load_ok({}, {{"GOMODPROXY_OFFLINE", "true"}}).offline);
  // A value may itself contain '=' when given inline; only the first '=' splits.
  EXPECT_EQ(load_ok({"--cache-dir=/a=b"}, {}).cache_dir, "/a=b");
  EXPECT_EQ(load_ok({"--private="}, {{"GOMODPROXY_PRIVATE", "x.com"}}).private_text, "");
}

TEST(parse_duration, table) {
  struct duration_case {
    std::string text;
    std::optional<std::chrono::milliseconds> want;
  };
  const std::vector<duration_case> cases = {
      {"250ms", 250ms},
      {"60s", 60s},
      {"5m", 5min},
      {"1h", 1h},
      {"90", 90s},
      {"0", 0ms},
      {"1h30m", 90min},
      {"1m30s", 90s},
      {"2s500ms", 2500ms},
      {"", std::nullopt},
      {"abc", std::nullopt},
      {"5", 5s},
      {"-5s", std::nullopt},
      {"5 s", std::nullopt},
      {" 5s", std::nullopt},
      {"1.5s", std::nullopt},
      {"5d", std::nullopt},
      {"5S", std::nullopt},
      {"s", std::nullopt},
      {"1m30", std::nullopt},
      {"99999999999999999999", std::nullopt},
      {"100000h", std::nullopt},
      {"87600h", 87600h},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(parse_duration(c.text), c.want);
  }
}

TEST(load_settings, durations_through_every_source) {
  struct case_t {
    std::string text;
    std::chrono::milliseconds want_timeout;
    std::optional<std::chrono::seconds> want_ttl;  // nullopt: not whole seconds, rejected
  };
  const std::vector<case_t> cases = {
      {"250ms", 250ms, std::nullopt},
      {"60s", 60s, 60s},
      {"5m", 5min, 300s},
      {"1h", 1h, 3600s},
      {"45", 45s, 45s},
      {"1500ms", 1500ms, std::nullopt},
      {"2000ms", 2s, 2s},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(load_ok({"--idle-timeout", c.text}, {}).idle_timeout, c.want_timeout);
    EXPECT_EQ(load_ok({}, {{"GOMODPROXY_IDLE_TIMEOUT", c.text}}).idle_timeout, c.want_timeout);
    temp_dir dir;
    const auto file = dir.write("d.toml", "idle_timeout = \"" + c.text + "\"\n");
    EXPECT_EQ(load_ok({"--config", file}, {}).idle_timeout, c.want_timeout);
    if (c.want_ttl) {
      EXPECT_EQ(load_ok({"--list-ttl=" + c.text}, {}).list_ttl, *c.want_ttl);
    } else {
      const std::string message = load_fail({"--list-ttl=" + c.text}, {});
      EXPECT_NE(message.find("list_ttl"), std::string::npos) << message;
      EXPECT_NE(message.find("whole number of seconds"), std::string::npos) << message;
    }
  }
  temp_dir dir;
  const auto file = dir.write("i.toml", "drain_timeout = 7\nlist_ttl = 120\n");
  const settings s = load_ok({"--config", file}, {});
  EXPECT_EQ(s.drain_timeout, 7s);
  EXPECT_EQ(s.list_ttl, 120s);
}

// Bad input of every class: the message is one line, starts "gomodproxy: ", names the key and
// the source, and says what is expected.
TEST(load_settings, bad_values_name_key_and_source) {
  struct bad_case {
    std::string name;
    std::vector<std::string> args;
    env_map env;
    std::string file;  // TOML text; written and passed by --config when not empty
    std::vector<std::string> want;
  };
  const std::vector<bad_case> cases = {
      {"duration flag",
       {"--list-ttl", "abc"},
       {},
       "",
       {"gomodproxy: list_ttl: \"abc\" is not a duration; expected e.g. 60s, 5m, 1h or a number "
        "of seconds",
        "flag --list-ttl"}},
      {"duration env",
       {},
       {{"GOMODPROXY_LIST_TTL", "10x"}},
       "",
       {"list_ttl", "not a duration", "env GOMODPROXY_LIST_TTL"}},
      {"duration file",
       {},
       {},
       "list_ttl = \"soon\"\n",
       {"list_ttl", "not a duration", "file key list_ttl"}},
      {"zero duration",
       {"--connect-timeout=0s"},
       {},
       "",
       {"connect_timeout", "greater than zero", "flag --connect-timeout"}},
      {"zero duration int",
       {},
       {},
       "fill_timeout = 0\n",
       {"fill_timeout", "greater than zero", "file key fill_timeout"}},
      {"negative duration int",
       {},
       {},
       "negative_ttl = -5\n",
       {"negative_ttl", "greater than zero"}},
      {"duration wrong type",
       {},
       {},
       "idle_timeout = 1.5\n",
       {"idle_timeout", "wrong type (a float)", "expected"}},
      {"listen no port",
       {"--listen", "localhost"},
       {},
       "",
       {"listen", "HOST:PORT", "flag --listen"}},
      {"listen port range",
       {},
       {{"GOMODPROXY_LISTEN", "127.0.0.1:65536"}},
       "",
       {"listen", "invalid port", "env GOMODPROXY_LISTEN"}},
      {"listen port text", {"--listen=127.0.0.1:http"}, {}, "", {"listen", "invalid port"}},
      {"listen ipv6 unbracketed", {"--listen=::1:8081"}, {}, "", {"listen", "brackets"}},
      {"listen bad bracket", {"--listen=[::1]8081"}, {}, "", {"listen", "HOST:PORT"}},
      {"listen empty host", {"--listen=:8081"}, {}, "", {"listen", "no host"}},
      {"listen host name", {"--listen=host.example:8081"}, {}, "", {"listen", "not an IP address"}},
      {"listen bad ipv4", {"--listen=256.1.1.1:8081"}, {}, "", {"listen", "not an IP address"}},
      {"listen bad ipv6", {"--listen=[1::2::3]:8081"}, {}, "", {"listen", "not an IP address"}},
      {"listen wrong type",
       {},
       {},
       "listen = 8081\n",
       {"listen", "wrong type (an integer)", "expected a string"}},
      {"upstream scheme",
       {"--upstreams", "ftp://x"},
       {},
       "",
       {"gomodproxy: upstreams: ", "ftp://x",
        "expected GOPROXY syntax like "
        "https://goproxy.cn|https://goproxy.io|direct",
        "flag --upstreams"}},
      {"upstream empty",
       {},
       {{"GOMODPROXY_UPSTREAMS", ""}},
       "",
       {"upstreams", "expected GOPROXY syntax", "env GOMODPROXY_UPSTREAMS"}},
      {"private upstream scheme",
       {},
       {},
       "private_upstreams = \"ftp://athens\"\n",
       {"private_upstreams", "expected GOPROXY syntax", "file key private_upstreams"}},
      {"log level",
       {"--log-level", "verbose"},
       {},
       "",
       {"log_level", "\"verbose\"", "trace, debug, info, warn, error, off"}},
      {"io threads range",
       {"--io-threads=257"},
       {},
       "",
       {"io_threads", "out of range", "from 0 to 256"}},
      {"fill threads zero",
       {},
       {{"GOMODPROXY_FILL_THREADS", "0"}},
       "",
       {"fill_threads", "out of range", "from 1 to 64"}},
      {"fill threads text", {"--fill-threads", "two"}, {}, "", {"fill_threads", "not an integer"}},
      {"fill threads negative",
       {"--fill-threads", "-1"},
       {},
       "",
       {"fill_threads", "not an integer"}},
      {"check threads range",
       {"--check-threads=257"},
       {},
       "",
       {"check_threads", "out of range", "from 0 to 256"}},
      {"read threads text",
       {},
       {{"GOMODPROXY_READ_THREADS", "many"}},
       "",
       {"read_threads", "not an integer"}},
      {"header bytes low",
       {},
       {},
       "max_header_bytes = 1023\n",
       {"max_header_bytes", "out of range", "from 1024 to 1048576"}},
      {"connections high",
       {"--max-connections=1000001"},
       {},
       "",
       {"max_connections", "out of range"}},
      {"int wrong type",
       {},
       {},
       "max_connections = \"10\"\n",
       {"max_connections", "wrong type (a string)"}},
      {"bool text",
       {"--all-failed-502=yes"},
       {},
       "",
       {"all_failed_502", "not a boolean", "true or false"}},
      {"bool wrong type",
       {},
       {},
       "all_failed_502 = \"true\"\n",
       {"all_failed_502", "wrong type (a string)", "true or false"}},
      {"array value", {}, {}, "upstreams = [\"direct\"]\n", {"upstreams", "wrong type (an array)"}},
      {"empty cache dir", {"--cache-dir="}, {}, "", {"cache_dir", "must not be empty"}},
      {"empty access log",
       {},
       {{"GOMODPROXY_ACCESS_LOG", ""}},
       "",
       {"access_log", "must not be empty", "stderr, off or a file path"}},
      {"missing ca file",
       {"--ca-file", "/nonexistent/ca.pem"},
       {},
       "",
       {"ca_file", "not a readable file"}},
      {"missing value", {"--listen"}, {}, "", {"listen", "needs a value", "--listen HOST:PORT"}},
      {"missing config value", {"--config"}, {}, "", {"config", "needs a value"}},
      {"missing config file",
       {"--config", "/nonexistent/x.toml"},
       {},
       "",
       {"config", "cannot read", "/nonexistent/x.toml"}},
      {"toml syntax", {}, {}, "listen = \n", {"config", "line 1", "TOML"}},
      // toml++ echoes the bytes it choked on; found by tests/fuzz/config_loader_fuzz.cpp.
      {"control bytes in a toml syntax error",
       {},
       {},
       std::string("all_failed_502 = tr\x01\x1b[2J\0\n", 26),
       {"config", "line 1", "tr\\x01"}},
      {"zero retry-after",
       {"--breaker-retry-after", "0"},
       {},
       "",
       {"breaker_retry_after", "must be greater than zero", "flag --breaker-retry-after"}},
      {"negative probe interval in file",
       {},
       {},
       "probe_interval = -1\n",
       {"probe_interval", "must be greater than zero"}},
      {"breaker failures out of range",
       {"--breaker-failures", "1001"},
       {},
       "",
       {"breaker_failures", "out of range", "from 0 to 1000"}},
      {"probe module not a path",
       {"--probe-modules", "golang.org/x/mod,-bad"},
       {},
       "",
       {"probe_modules", "\"-bad\" is not a module path", "golang.org/x/mod"}},
      {"private module in public probes",
       {"--private", "corp.example", "--probe-modules", "corp.example/x"},
       {},
       "",
       {"probe_modules", "\"corp.example/x\" is private", "private_probe_modules"}},
      {"public module in private probes",
       {},
       {{"GOMODPROXY_PRIVATE_PROBE_MODULES", "golang.org/x/mod"}},
       "",
       {"private_probe_modules", "does not match private"}},
      {"control characters quoted",
       {"--log-level", "in\nfo"},
       {},
       "",
       {"log_level", "\"in\\x0afo\""}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    temp_dir dir;
    auto args = c.args;
    if (!c.file.empty()) {
      args.insert(args.begin(), {"--config", dir.write("bad.toml", c.file)});
    }
    const std::string message = load_fail(args, c.env);
    EXPECT_EQ(message.rfind("gomodproxy: ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_TRUE(std::all_of(message.begin(), message.end(), [](char c) {
      return c >= 0x20 && c < 0x7f;
    })) << message;
    EXPECT_NE(message.find("expected"), std::string::npos) << message;
    for (const auto& part : c.want) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in " << message;
    }
  }
}

TEST(load_settings, unknown_names_are_rejected) {
  struct unknown_case {
    std::string name;
    std::vector<std::string> args;
    env_map env;
    std::string file;
    std::vector<std::string> want;
  };
  const std::vector<unknown_case> cases = {
      {"flag", {"--lisen", "x"}, {}, "", {"--lisen", "unknown flag", "--listen"}},
      {"flag with underscore",
       {"--list_ttl=5s"},
       {},
       "",
       {"--list_ttl", "unknown flag", "did you mean --list-ttl?"}},
      {"single dash", {"-listen", "x"}, {}, "", {"unexpected argument", "-listen"}},
      {"positional", {"serve"}, {}, "", {"unexpected argument", "\"serve\""}},
      {"double dash alone", {"--"}, {}, "", {"unexpected argument"}},
      {"help is main's", {"--help"}, {}, "", {"--help", "unknown flag"}},
      {"env",
       {},
       {{"GOMODPROXY_LISEN", "x"}},
       "",
       {"GOMODPROXY_LISEN", "unknown environment variable", "GOMODPROXY_LISTEN"}},
      {"env lower case",
       {},
       {{"GOMODPROXY_listen", "127.0.0.1:1"}},
       "",
       {"GOMODPROXY_listen", "unknown environment variable"}},
      {"env bare prefix", {}, {{"GOMODPROXY_", "x"}}, "", {"unknown environment variable"}},
      {"file key",
       {},
       {},
       "listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n",
       {"listen_addr", "unknown key in config file", "expected one of listen"}},
      {"file table", {}, {}, "[server]\nlisten = \"127.0.0.1:1\"\n", {"\"server\"", "unknown key"}},
      {"config in file", {}, {}, "config = \"/x\"\n", {"\"config\"", "unknown key"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    temp_dir dir;
    auto args = c.args;
    if (!c.file.empty()) args.insert(args.begin(), {"--config", dir.write("u.toml", c.file)});
    const std::string message = load_fail(args, c.env);
    EXPECT_EQ(message.rfind("gomodproxy: ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& part : c.want) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in " << message;
    }
  }
}

TEST(load_settings, upstream_lists_are_parsed) {
  const settings s = load_ok({"--upstreams", "https://a.example/base|http://b.example:8080,direct",
                              "--private=*.corp.example,github.com/org/,,", "--private-upstreams",
                              "https://athens.corp|off"},
                             {});
  EXPECT_EQ(s.upstreams_text, "https://a.example/base|http://b.example:8080,direct");
  ASSERT_EQ(s.upstreams.size(), 3u);
  EXPECT_EQ(s.upstreams[0].type, tier_spec::kind::url);
  EXPECT_EQ(s.upstreams[0].url, "https://a.example/base");
  EXPECT_TRUE(s.upstreams[0].fall_through_on_error);
  EXPECT_EQ(s.upstreams[1].url, "http://b.example:8080");
  EXPECT_EQ(s.upstreams[1].name, "b.example:8080");
  EXPECT_FALSE(s.upstreams[1].fall_through_on_error);
  EXPECT_EQ(s.upstreams[2].type, tier_spec::kind::direct);
  EXPECT_EQ(s.private_patterns, (std::vector<std::string>{"*.corp.example", "github.com/org"}));
  ASSERT_EQ(s.private_upstreams.size(), 2u);
  EXPECT_EQ(s.private_upstreams[0].url, "https://athens.corp");
  EXPECT_EQ(s.private_upstreams[1].type, tier_spec::kind::off);
}

TEST(load_settings, ca_file_of_pem_certificates_is_accepted) {
  temp_dir dir;
  const auto ca = dir.write("ca.pem", test::make_test_pki({"localhost"}, {}).ca_pem);
  EXPECT_EQ(load_ok({"--ca-file", ca}, {}).ca_file, ca);
}

// The upstream client loads the bundle only once the server is being wired up; a file it cannot
// use must stop start-up with the key named, not abort the process there.
TEST(load_settings, an_unreadable_config_file_fails_with_its_errno) {
  const auto loaded = load_settings({"--config", "/nonexistent/x.toml"}, {});
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code,
            boost::system::error_code(ENOENT, boost::system::generic_category()));
  EXPECT_EQ(
      loaded.error().detail,
      "gomodproxy: config: cannot read \"/nonexistent/x.toml\"; expected a readable TOML file "
      "(from --config or GOMODPROXY_CONFIG)");
}

TEST(load_settings, ca_file_without_certificates_is_refused) {
  temp_dir dir;
  const auto pki = test::make_test_pki({"localhost"}, {});
  for (const auto& [name, content] : std::vector<std::pair<std::string, std::string>>{
           {"header.pem", "-----BEGIN CERTIFICATE-----\n"},
           {"text.pem", "not a certificate\n"},
           {"empty.pem", ""},
           {"key.pem", pki.server_key_pem}}) {
    SCOPED_TRACE(name);
    const auto path = dir.write(name, content);
    const auto loaded = load_settings({"--ca-file", path}, {});
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().code, errc::invalid_request);
    const auto& message = loaded.error().detail;
    EXPECT_TRUE(message.starts_with("gomodproxy: ca_file: ")) << message;
    EXPECT_NE(message.find("is not a CA bundle"), std::string::npos) << message;
    EXPECT_NE(message.find("flag --ca-file"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

// Each key's check and applier, refused once, word for word: what an operator reads, and the
// code (invalid_request) that says it is a setting that cannot be used.
TEST(load_settings, each_refusal_reads_word_for_word) {
  temp_dir dir;
  const auto wrong_text = dir.write("text.toml", "listen = 1\n");
  const auto wrong_duration = dir.write("duration.toml", "list_ttl = true\n");
  const std::string size_form =
      "; expected a byte count like 50GiB, 512MiB or 1048576 (suffixes KiB, MiB, GiB, TiB; ";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--listen", "nohost"},
       "gomodproxy: listen: \"nohost\" is not HOST:PORT; expected HOST:PORT like 127.0.0.1:8081, "
       "0.0.0.0:8081 or [::1]:8081 (port 0..65535) (from flag --listen)"},
      {{"--cache-dir="},
       "gomodproxy: cache_dir: must not be empty; expected a directory path like ./var/cache "
       "(from flag --cache-dir)"},
      {{"--upstreams", "ftp://x"},
       "gomodproxy: upstreams: invalid proxy URL scheme (must be https or http): ftp://x; expected "
       "GOPROXY syntax like https://goproxy.cn|https://goproxy.io|direct (from flag --upstreams)"},
      {{"--sumdb", "a"},
       "gomodproxy: sumdb: \"a\" is not NAME=URLS; expected space-separated NAME=URLS entries like "
       "sum.golang.org=https://sum.golang.org, URLS in upstream list syntax (from flag --sumdb)"},
      {{"--sumdb", "a=https://x a=https://y"},
       "gomodproxy: sumdb: database \"a\" is listed twice (from flag --sumdb)"},
      {{"--sumdb", "a=ftp://x"},
       "gomodproxy: sumdb: a: invalid proxy URL scheme (must be https or http): ftp://x; expected "
       "space-separated NAME=URLS entries like sum.golang.org=https://sum.golang.org, URLS in "
       "upstream list syntax (from flag --sumdb)"},
      {{"--sumdb", "a=direct"},
       "gomodproxy: sumdb: a: direct cannot serve a checksum database; expected URLs only (from "
       "flag --sumdb)"},
      {{"--sumdb-key", "bad"},
       "gomodproxy: sumdb_key: \"bad\" is not a checksum database key; expected NAME+HASH+KEY "
       "like " +
           std::string(sum_golang_org_key()) + " (from flag --sumdb-key)"},
      {{"--verify=maybe"},
       "gomodproxy: verify: \"maybe\" is not a verification mode; expected sumdb or off (from flag "
       "--verify)"},
      {{"--hedge-after", "soon"},
       "gomodproxy: hedge_after: \"soon\" is not a hedge delay; expected auto or a duration like "
       "500ms (0s: off) (from flag --hedge-after)"},
      {{"--private", "a\nb"},
       "gomodproxy: private: \"a\\x0ab\" contains a line break; expected GOPRIVATE globs like "
       "*.corp.example.com,github.com/org (from flag --private)"},
      {{"--go-binary="},
       "gomodproxy: go_binary: \"\" is not a program; expected a path like "
       "/usr/lib/go-1.23/bin/go or a name on PATH like go (from flag --go-binary)"},
      {{"--log-level", "loud"},
       "gomodproxy: log_level: \"loud\" is not a log level; expected one of trace, debug, info, "
       "warn, error, off (from flag --log-level)"},
      {{"--access-log="},
       "gomodproxy: access_log: must not be empty; expected stderr, off or a file path (from flag "
       "--access-log)"},
      {{"--ca-file", "/nonexistent/ca.pem"},
       "gomodproxy: ca_file: \"/nonexistent/ca.pem\" is not a readable file; expected a PEM CA "
       "bundle path, or empty for none (from flag --ca-file)"},
      {{"--tls-cert", "/nonexistent/cert.pem"},
       "gomodproxy: tls_cert: \"/nonexistent/cert.pem\" is not a readable file; expected a PEM "
       "file path, or empty for none (from flag --tls-cert)"},
      {{"--probe-modules", "example.com/a,Bad..Path"},
       "gomodproxy: probe_modules: \"Bad..Path\" is not a module path (malformed module path "
       "\"Bad..Path\": invalid char 'B' in first path element); expected comma-separated module "
       "paths like golang.org/x/mod (from flag --probe-modules)"},
      {{"--auth-file", "a\nb"},
       "gomodproxy: auth_file: \"a\\x0ab\" contains a line break; expected a file path, or empty "
       "for none (from flag --auth-file)"},
      {{"--admin-token", "@"},
       "gomodproxy: admin_token: @ names no file; expected a token, @FILE, or empty for none "
       "(from flag --admin-token)"},
      {{"--list-ttl", "soon"},
       "gomodproxy: list_ttl: \"soon\" is not a duration; expected e.g. 60s, 5m, 1h or a number "
       "of seconds (from flag --list-ttl)"},
      {{"--config", wrong_duration},
       "gomodproxy: list_ttl: wrong type (a boolean); expected a string like \"60s\" or an "
       "integer number of seconds (from file key list_ttl in " +
           wrong_duration + ")"},
      {{"--fill-threads", "0"},
       "gomodproxy: fill_threads: \"0\" is out of range; expected an integer from 1 to 64 (from "
       "flag --fill-threads)"},
      {{"--offline=yes"},
       "gomodproxy: offline: \"yes\" is not a boolean; expected true or false (from flag "
       "--offline)"},
      {{"--cache-memory", "1KiB"},
       "gomodproxy: cache_memory: \"1KiB\" is too small" + size_form +
           "at least 1MiB) (from flag --cache-memory)"},
      {{"--config", wrong_text},
       "gomodproxy: listen: wrong type (an integer); expected a string (from file key listen in " +
           wrong_text + ")"},
  };
  for (const auto& [args, message] : cases) {
    SCOPED_TRACE(args.back());
    const auto loaded = load_settings(args, {});
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().code, errc::invalid_request);
    EXPECT_EQ(loaded.error().detail, message);
  }
  const auto from_env = load_settings({}, {{"GOMODPROXY_HEDGE_AFTER", "soon"}});
  ASSERT_FALSE(from_env);
  EXPECT_EQ(from_env.error().code, errc::invalid_request);
  EXPECT_EQ(from_env.error().detail,
            "gomodproxy: hedge_after: \"soon\" is not a hedge delay; expected auto or a duration "
            "like 500ms (0s: off) (from env GOMODPROXY_HEDGE_AFTER)");
}

TEST(loader, tls_cert_and_key_come_together_and_must_be_readable) {
  temp_dir dir;
  const auto cert = dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto key = dir.write("key.pem", "-----BEGIN PRIVATE KEY-----\n");
  const settings both = load_ok({"--tls-cert", cert, "--tls-key", key}, {});
  EXPECT_EQ(both.tls_cert, cert);
  EXPECT_EQ(both.tls_key, key);
  struct refusal {
    std::vector<std::string> args;
    std::string starts;
    std::string contains;
  };
  const std::vector<refusal> cases = {
      {{"--tls-cert", cert}, "gomodproxy: tls_key: ", "expected both tls_cert and tls_key"},
      {{"--tls-key", key}, "gomodproxy: tls_cert: ", "expected both tls_cert and tls_key"},
      {{"--tls-cert", cert, "--tls-key", cert + ".missing"},
       "gomodproxy: tls_key: ",
       "is not a readable file"},
      {{"--tls-cert", std::filesystem::path(cert).parent_path().string(), "--tls-key", key},
       "gomodproxy: tls_cert: ",
       "is not a readable file"},
  };
  for (const auto& c : cases) {
    const auto message = load_fail(c.args, {});
    EXPECT_TRUE(message.starts_with(c.starts)) << message;
    EXPECT_NE(message.find(c.contains), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(example_config, loads_and_equals_defaults) {
  ASSERT_TRUE(std::filesystem::exists(example_file())) << example_file();
  const settings s = load_ok({"--config", example_file().string()}, {});
  expect_same(s, settings{});
  EXPECT_EQ(describe(s.upstreams), describe(load_ok({}, {}).upstreams));
  EXPECT_EQ(describe(s.private_upstreams), "direct,");
}

TEST(example_config, lists_every_key) {
  std::ifstream in(example_file());
  std::vector<std::string> assigned;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    assigned.push_back(line.substr(0, line.find(" = ")));
  }
  EXPECT_EQ(assigned, all_keys);
}

TEST(all_keys, each_key_is_settable_by_flag_env_and_file) {
  // The same textual value works in all three places; an unknown name would be an error.
  for (const auto& key : all_keys) {
    SCOPED_TRACE(key);
    const settings defaults;
    std::string value;
    if (key == "all_failed_502" || key == "offline") {
      value = "true";
    } else if (key == "ca_file" || key == "tls_cert" || key == "tls_key") {
      value = "";
    } else if (key == "io_threads" || key == "fill_threads" || key == "check_threads" ||
               key == "read_threads" || key == "direct_concurrency") {
      value = "3";
    } else if (key == "max_header_bytes" || key == "max_connections") {
      value = "2048";
    } else if (key == "cache_max_bytes" || key == "cache_memory") {
      value = "3MiB";
    } else if (key == "breaker_failures") {
      value = "3";
    } else if (key == "private_probe_modules") {
      value = "";  // a module here must match `private`, which is empty by default
    } else if (key.find("ttl") != std::string::npos || key.find("timeout") != std::string::npos ||
               key == "probe_interval" || key == "breaker_retry_after" || key == "hedge_after" ||
               key == "drain_grace" || key.starts_with("stall_")) {
      value = "7s";
    } else if (key == "sumdb") {
      value = "sum.golang.org=https://a.example/sumdb/sum.golang.org|https://sum.golang.org";
    } else if (key == "sumdb_key") {
      value = defaults.sumdb_key_text;
    } else if (key == "verify") {
      value = "off";
    } else if (key == "no_sumdb") {
      value = "*.example.com";
    } else if (key == "log_level") {
      value = "warn";
    } else if (key == "listen") {
      value = "127.0.0.1:0";
    } else if (key.find("upstreams") != std::string::npos) {
      value = "off";
    } else {
      value = "x.example";
    }
    load_ok({flag_of(key), value}, {});
    load_ok({}, {{env_of(key), value}});
    temp_dir dir;
    const bool is_number = value == "3" || value == "2048";
    const std::string literal = value == "true" ? value : is_number ? value : "\"" + value + "\"";
    load_ok({"--config", dir.write("k.toml", key + " = " + literal + "\n")}, {});
  }
}

TEST(usage_text, names_every_flag_env_and_default) {
  const std::string text = usage_text();
  EXPECT_NE(text.find("--config FILE"), std::string::npos);
  EXPECT_NE(text.find("GOMODPROXY_CONFIG"), std::string::npos);
  for (const auto& key : all_keys) {
    EXPECT_NE(text.find("  " + flag_of(key) + " "), std::string::npos) << key;
    EXPECT_NE(text.find("env " + env_of(key) + ";"), std::string::npos) << key;
  }
  EXPECT_NE(text.find("default 127.0.0.1:8081"), std::string::npos);
  EXPECT_NE(text.find("default https://goproxy.cn|https://goproxy.io|direct"), std::string::npos);
  EXPECT_NE(text.find("default 60s)"), std::string::npos);
  EXPECT_NE(text.find("default 5m)"), std::string::npos);
  EXPECT_NE(text.find("default 16384)"), std::string::npos);
  EXPECT_NE(text.find("default false)"), std::string::npos);
}

TEST(current_environment, reflects_the_process_environment) {
  ASSERT_EQ(setenv("GMP_CONFIG_TEST_PROBE", "a=b", 1), 0);
  const auto env = current_environment();
  unsetenv("GMP_CONFIG_TEST_PROBE");
  const auto it = env.find("GMP_CONFIG_TEST_PROBE");
  ASSERT_NE(it, env.end());
  EXPECT_EQ(it->second, "a=b");
}

TEST(loader, checksum_databases_are_named_lists_with_keys) {
  const std::string test_key = "sum.test.example+12345678+AQ==";
  auto s =
      load_ok({"--sumdb", "sum.golang.org=https://a.example/sumdb/sum.golang.org|https://b.example",
               "--sumdb", "sum.test.example=http://127.0.0.1:9", "--sumdb-key",
               settings{}.sumdb_key_text, "--sumdb-key", test_key},
              {});
  ASSERT_EQ(s.sumdbs.size(), 2u);
  EXPECT_EQ(s.sumdbs[0].name, "sum.golang.org");
  ASSERT_EQ(s.sumdbs[0].tiers.size(), 2u);
  EXPECT_EQ(s.sumdbs[0].tiers[0].url, "https://a.example/sumdb/sum.golang.org");
  EXPECT_TRUE(s.sumdbs[0].tiers[0].fall_through_on_error);
  EXPECT_EQ(s.sumdbs[0].key, settings{}.sumdb_key_text);
  EXPECT_EQ(s.sumdbs[1].name, "sum.test.example");
  EXPECT_EQ(s.sumdbs[1].key, test_key);

  const auto defaults = load_ok({}, {});
  ASSERT_EQ(defaults.sumdbs.size(), 1u);
  ASSERT_EQ(defaults.sumdbs[0].tiers.size(), 3u);
  EXPECT_EQ(defaults.sumdbs[0].tiers[0].url, "https://goproxy.cn/sumdb/sum.golang.org");
  EXPECT_EQ(defaults.sumdbs[0].tiers[2].url, "https://sum.golang.org");
  EXPECT_TRUE(defaults.sumdbs[0].tiers[0].fall_through_on_error);

  EXPECT_TRUE(load_ok({"--sumdb", "", "--verify", "off"}, {}).sumdbs.empty());
}

TEST(loader, bad_checksum_database_settings_name_the_key) {
  const struct {
    std::vector<std::string> flags;
    std::string key, fragment;
  } cases[] = {
      {{"--sumdb", "sum.golang.org"}, "sumdb", "is not NAME=URLS"},
      {{"--sumdb", "=https://x.example"}, "sumdb", "is not NAME=URLS"},
      {{"--sumdb", "a.example=direct"}, "sumdb", "URLs only"},
      {{"--sumdb", "a.example=https://x.example a.example=https://y.example"}, "sumdb", "twice"},
      {{"--sumdb", "other.example=https://x.example"}, "sumdb_key", "no key for"},
      {{"--sumdb-key", "nonsense"}, "sumdb_key", "not a checksum database key"},
      {{"--verify", "yes"}, "verify", "expected sumdb or off"},
      {{"--sumdb", ""}, "verify", "needs a checksum database"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.flags[1]);
    auto loaded = load_settings(c.flags, {});
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().code, errc::invalid_request);
    const auto& message = loaded.error().detail;
    EXPECT_NE(message.find(c.key), std::string::npos) << message;
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
  }
}

TEST(loader, hedge_after_is_auto_a_duration_or_off) {
  EXPECT_EQ(load_ok({}, {}).hedge_after, std::nullopt);  // the default: auto
  EXPECT_EQ(load_ok({"--hedge-after", "auto"}, {}).hedge_after, std::nullopt);
  EXPECT_EQ(load_ok({"--hedge-after", "500ms"}, {}).hedge_after, 500ms);
  EXPECT_EQ(load_ok({}, {{"GOMODPROXY_HEDGE_AFTER", "0s"}}).hedge_after, 0ms);
  const auto bad = load_fail({"--hedge-after", "soon"}, {});
  EXPECT_NE(bad.find("hedge_after"), std::string::npos) << bad;
  EXPECT_NE(bad.find("expected auto or a duration"), std::string::npos) << bad;
}

TEST(loader, stall_bounds_default_to_one_and_eight_seconds_and_stay_ordered) {
  const settings s = load_ok({}, {});
  EXPECT_EQ(s.stall_min, 1s);
  EXPECT_EQ(s.stall_max, 8s);
  EXPECT_EQ(load_ok({"--stall-min", "2s", "--stall-max", "2s"}, {}).stall_min, 2s);
  const auto bad = load_fail({"--stall-min", "9s"}, {});
  EXPECT_NE(bad.find("stall_min"), std::string::npos) << bad;
  EXPECT_NE(bad.find("stall_max"), std::string::npos) << bad;
  EXPECT_NE(load_fail({"--stall-max", "0s"}, {}).find("stall_max"), std::string::npos);
}

}  // namespace
}  // namespace gomodproxy::config

namespace gomodproxy::config {
namespace {

TEST(loader, direct_settings_default_to_go_on_path_four_processes_and_no_allow_list) {
  const settings s = load_ok({}, {});
  EXPECT_EQ(s.go_binary, "go");
  EXPECT_EQ(s.direct_concurrency, 4);
  EXPECT_EQ(s.direct_allow_text, "");
  EXPECT_TRUE(s.direct_allow_patterns.empty());
}

TEST(loader, direct_settings_from_flags_env_and_file) {
  const settings flags = load_ok({"--go-binary", "/usr/lib/go-1.23/bin/go", "--direct-concurrency",
                                  "8", "--direct-allow", "gitlab.lan/*,git.internal.example"},
                                 {});
  EXPECT_EQ(flags.go_binary, "/usr/lib/go-1.23/bin/go");
  EXPECT_EQ(flags.direct_concurrency, 8);
  EXPECT_EQ(flags.direct_allow_patterns,
            (std::vector<std::string>{"gitlab.lan/*", "git.internal.example"}));
  const settings env = load_ok({}, {{"GOMODPROXY_GO_BINARY", "go1.19"},
                                    {"GOMODPROXY_DIRECT_CONCURRENCY", "1"},
                                    {"GOMODPROXY_DIRECT_ALLOW", "*.lan"}});
  EXPECT_EQ(env.go_binary, "go1.19");
  EXPECT_EQ(env.direct_concurrency, 1);
  EXPECT_EQ(env.direct_allow_patterns, std::vector<std::string>{"*.lan"});
  temp_dir dir;
  const settings file = load_ok(
      {"--config", dir.write("d.toml", "direct_concurrency = 64\ndirect_allow = \"a.lan\"\n")}, {});
  EXPECT_EQ(file.direct_concurrency, 64);
  EXPECT_EQ(file.direct_allow_patterns, std::vector<std::string>{"a.lan"});
}

TEST(loader, token_settings_default_to_none_and_never_echo_the_admin_token) {
  const settings defaults = load_ok({}, {});
  EXPECT_EQ(defaults.auth_file, "");
  EXPECT_EQ(defaults.admin_token, "");
  const settings set = load_ok({"--auth-file", "/etc/gomodproxy/tokens"},
                               {{"GOMODPROXY_ADMIN_TOKEN", "@/etc/gomodproxy/admin"}});
  EXPECT_EQ(set.auth_file, "/etc/gomodproxy/tokens");
  EXPECT_EQ(set.admin_token, "@/etc/gomodproxy/admin");

  const std::string secret = "s3cret-admin-0123456789";
  const std::string broken = load_fail({"--admin-token", secret + "\nmore"}, {});
  EXPECT_NE(broken.find("gomodproxy: admin_token: "), std::string::npos) << broken;
  EXPECT_NE(broken.find("line break"), std::string::npos) << broken;
  EXPECT_EQ(broken.find(secret), std::string::npos) << broken;
  EXPECT_NE(load_fail({"--admin-token=@"}, {}).find("names no file"), std::string::npos);
  EXPECT_NE(load_fail({}, {{"GOMODPROXY_AUTH_FILE", "a\nb"}}).find("auth_file"), std::string::npos);
}

TEST(loader, bad_direct_settings_name_the_key) {
  struct row {
    std::vector<std::string> args;
    env_map env;
    std::string want;
  };
  const row rows[] = {
      {{"--direct-concurrency", "0"}, {}, "gomodproxy: direct_concurrency: \"0\" is out of range"},
      {{"--direct-concurrency", "65"},
       {},
       "gomodproxy: direct_concurrency: \"65\" is out of range"},
      {{},
       {{"GOMODPROXY_DIRECT_CONCURRENCY", "many"}},
       "gomodproxy: direct_concurrency: \"many\" is not an integer"},
      {{"--go-binary", ""}, {}, "gomodproxy: go_binary: \"\" is not a program"},
      {{"--direct-allow", "a\nb"},
       {},
       "gomodproxy: direct_allow: \"a\\x0ab\" contains a line break"},
  };
  for (const auto& r : rows) {
    auto loaded = load_settings(r.args, r.env);
    ASSERT_FALSE(loaded) << r.want;
    EXPECT_EQ(loaded.error().code, errc::invalid_request);
    const auto& message = loaded.error().detail;
    EXPECT_TRUE(message.starts_with(r.want)) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace gomodproxy::config
