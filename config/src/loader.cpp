// The settings loader. Every key is described once in `keys` below; flags, environment, the config
// file, the help text and the validation all come from that one table so they cannot drift apart.
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/byte_size.hpp"
#include "config/duration.hpp"
#include "config/settings.hpp"
#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/path_glob.hpp"
#include "upstream/http_client.hpp"
#include "upstream/upstream_list.hpp"

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): POSIX declares it so.
extern char** environ;

namespace gomodproxy::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view env_prefix = "GOMODPROXY_";
constexpr std::string_view duration_form = "e.g. 60s, 5m, 1h or a number of seconds";
constexpr std::string_view upstream_form =
    "GOPROXY syntax like https://goproxy.cn|https://goproxy.io|direct";

/// A TOML value of a type no key accepts (float, array, table, date); only its name matters.
struct other_type {
  std::string_view name;
};

/// One value as it arrived: flags and environment always give text, the file gives typed values.
using raw_value = std::variant<std::string, std::int64_t, bool, other_type>;

/// Text from flags and environment is parsed per key; in the file a number or boolean must be
/// written as one, so `fill_threads = "2"` is a type error rather than a silent conversion.
enum class origin { text, typed };

struct text_key {
  std::string settings::*field;
  /// Nothing when the text is acceptable, else why not: "<problem>; expected <form>", the part of
  /// a message between the key and the source.
  outcome_of<void> (*check)(const std::string& text);
};
struct duration_key {
  std::variant<seconds settings::*, milliseconds settings::*> field;
  bool zero_allowed = false;  ///< zero switches the feature off
};
struct int_key {
  std::variant<int settings::*, std::uint32_t settings::*> field;
  std::int64_t min;
  std::int64_t max;
};
struct bool_key {
  bool settings::*field;
};
struct size_key {
  std::uint64_t settings::*field;
  std::uint64_t min = 0;
  std::string_view range = "0: no cap";  ///< what the refusal adds after the suffixes
};

struct key_spec {
  std::string_view name;         ///< file key; the flag and env names are derived from it
  std::string_view placeholder;  ///< value name in the help text
  std::string_view description;  ///< one line for the help text
  std::variant<text_key, duration_key, int_key, bool_key, size_key> kind;
  /// As a flag, may be given again: each value is added, space-separated, to earlier ones.
  bool repeatable = false;
};

// Messages are one ASCII line whatever the input held; a stray newline shows as \x0a.
std::string quote(std::string_view text) {
  return protocol::quote(text, {.quotes = true, .named_controls = false, .max_bytes = 200});
}

// Text from a parser (toml++, the upstream list) may echo input bytes: line breaks become spaces,
// other control and non-ASCII bytes \xNN, so the message stays one printable line.
std::string one_line(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return protocol::quote(text,
                         {.quotes = false, .named_controls = false, .max_bytes = text.size()});
}

outcome_of<void> check_listen(const std::string& text) {
  const std::string form =
      "; expected HOST:PORT like 127.0.0.1:8081, 0.0.0.0:8081 or [::1]:8081 (port 0..65535)";
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid_request(quote(text) + " is not HOST:PORT" + form);
    }
    host = std::string_view(text).substr(1, close - 1);
    port = std::string_view(text).substr(close + 2);
    const bool ipv6_shape =
        host.find(':') != std::string_view::npos &&
        std::all_of(host.begin(), host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%';
        });
    if (!ipv6_shape)
      return invalid_request(quote(text) + " has a bracketed host that is not an IPv6 address" +
                             form);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return invalid_request(quote(text) + " is not HOST:PORT" + form);
    host = std::string_view(text).substr(0, colon);
    port = std::string_view(text).substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return invalid_request(quote(text) + " has an IPv6 host without brackets" + form);
    }
    const bool name_shape = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (!name_shape) return invalid_request(quote(text) + " has an invalid host" + form);
  }
  if (host.empty()) return invalid_request(quote(text) + " has no host" + form);
  // The listener binds an address and resolves no names, so a name would only fail later.
  if (host != "localhost") {
    boost::system::error_code not_an_address;
    boost::asio::ip::make_address(std::string(host), not_an_address);
    if (not_an_address) {
      return invalid_request(quote(text) + " has a host that is not an IP address or localhost" +
                             form);
    }
  }
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(std::string(port)) > 65535) {
    return invalid_request(quote(text) + " has an invalid port" + form);
  }
  return {};
}

outcome_of<void> check_not_empty_dir(const std::string& text) {
  if (text.empty())
    return invalid_request("must not be empty; expected a directory path like ./var/cache");
  return {};
}

outcome_of<void> check_upstream_list(const std::string& text) {
  auto parsed = upstream::parse_upstream_list(text);
  if (!parsed) {
    return failure{parsed.error().code,
                   one_line(parsed.error().detail) + "; expected " + std::string(upstream_form)};
  }
  return {};
}

constexpr std::string_view sumdb_form =
    "space-separated NAME=URLS entries like sum.golang.org=https://sum.golang.org, URLS in "
    "upstream list syntax";

// "a=x|y b=z" -> {{"a", "x|y"}, {"b", "z"}}, or invalid_request and why.
outcome_of<std::vector<std::pair<std::string, std::string>>> split_sumdb_list(
    const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream words(text);
  std::string word;
  while (words >> word) {
    const auto equals = word.find('=');
    if (equals == std::string::npos || equals == 0) {
      return invalid_request(quote(word) + " is not NAME=URLS; expected " +
                             std::string(sumdb_form));
    }
    auto name = word.substr(0, equals);
    for (const auto& [seen, urls] : out) {
      if (seen == name) return invalid_request("database " + quote(name) + " is listed twice");
    }
    out.emplace_back(std::move(name), word.substr(equals + 1));
  }
  return out;
}

outcome_of<void> check_sumdb_list(const std::string& text) {
  auto entries = split_sumdb_list(text);
  if (!entries) return entries.error();
  for (const auto& [name, urls] : *entries) {
    auto parsed = upstream::parse_upstream_list(urls);
    if (!parsed) {
      return failure{parsed.error().code, name + ": " + one_line(parsed.error().detail) +
                                              "; expected " + std::string(sumdb_form)};
    }
    for (const auto& tier : *parsed) {
      if (tier.type != upstream::tier_spec::kind::url) {
        return invalid_request(name + ": " + tier.name +
                               " cannot serve a checksum database; expected URLs only");
      }
    }
  }
  return {};
}

// A verifier key's shape, NAME+8 hex digits+base64; its signature math is checked at start-up.
outcome_of<void> check_sumdb_keys(const std::string& text) {
  std::istringstream words(text);
  std::string key;
  while (words >> key) {
    const auto first = key.find('+');
    const auto second = first == std::string::npos ? first : key.find('+', first + 1);
    if (first == 0 || second == std::string::npos || second - first != 9 ||
        key.find_first_not_of("0123456789abcdef", first + 1) != second ||
        second + 1 == key.size()) {
      return invalid_request(quote(key) +
                             " is not a checksum database key; expected NAME+HASH+KEY like " +
                             std::string(sum_golang_org_key()));
    }
  }
  return {};
}

outcome_of<void> check_verify_mode(const std::string& text) {
  if (text == "sumdb" || text == "off") return {};
  return invalid_request(quote(text) + " is not a verification mode; expected sumdb or off");
}

outcome_of<void> check_hedge_after(const std::string& text) {
  if (text == "auto" || parse_duration(text)) return {};
  return invalid_request(quote(text) +
                         " is not a hedge delay; expected auto or a duration like 500ms (0s: off)");
}

outcome_of<void> check_globs(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) {
    return invalid_request(quote(text) +
                           " contains a line break; expected GOPRIVATE globs like "
                           "*.corp.example.com,github.com/org");
  }
  return {};
}

outcome_of<void> check_go_binary(const std::string& text) {
  if (text.empty() || text.find_first_of("\r\n") != std::string::npos) {
    return invalid_request(quote(text) +
                           " is not a program; expected a path like /usr/lib/go-1.23/bin/go or a " +
                           "name on PATH like go");
  }
  return {};
}

outcome_of<void> check_log_level(const std::string& text) {
  constexpr std::array<std::string_view, 6> levels = {"trace", "debug", "info",
                                                      "warn",  "error", "off"};
  if (std::find(levels.begin(), levels.end(), text) != levels.end()) return {};
  return invalid_request(
      quote(text) + " is not a log level; expected one of trace, debug, info, warn, error, off");
}

outcome_of<void> check_access_log(const std::string& text) {
  if (text.empty())
    return invalid_request("must not be empty; expected stderr, off or a file path");
  return {};
}

outcome_of<void> check_ca_file(const std::string& text) {
  if (text.empty()) return {};
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(text, ec);
  if (!regular || !std::ifstream(text).good()) {
    return invalid_request(
        quote(text) + " is not a readable file; expected a PEM CA bundle path, or empty for none");
  }
  // invalid_request, not the TLS library's code: the operator named a file that is no CA bundle.
  if (auto bundle = upstream::check_ca_bundle(text); !bundle) {
    return invalid_request(quote(text) + " is not a CA bundle (" + bundle.error().detail +
                           "); expected a file of PEM certificates, or empty for none");
  }
  return {};
}

// Only readability here: whether the files hold a certificate and its key is the server's check
// (server/tls_credentials), which a reload repeats.
outcome_of<void> check_tls_file(const std::string& text) {
  if (text.empty()) return {};
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(text, ec);
  if (!regular || !std::ifstream(text).good()) {
    return invalid_request(quote(text) +
                           " is not a readable file; expected a PEM file path, or empty for none");
  }
  return {};
}

// "a, b,,c" -> {a, b, c}: spaces around entries and empty entries are dropped.
std::vector<std::string> split_module_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const auto first = entry.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    out.emplace_back(entry.substr(first, entry.find_last_not_of(" \t") - first + 1));
  }
  return out;
}

outcome_of<void> check_module_list(const std::string& text) {
  for (const auto& module_path : split_module_list(text)) {
    if (auto checked = protocol::check_path(module_path); !checked) {
      return failure{checked.error().code,
                     quote(module_path) + " is not a module path (" + checked.error().detail +
                         "); expected comma-separated module paths like golang.org/x/mod"};
    }
  }
  return {};
}

outcome_of<void> check_auth_file(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) {
    return invalid_request(quote(text) +
                           " contains a line break; expected a file path, or empty for none");
  }
  return {};
}

// The value is a secret: a problem names what is wrong with it, never the value itself. Its
// length and characters are checked once the server reads it (server/access_control.cpp).
outcome_of<void> check_admin_token(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) {
    return invalid_request(
        "the value contains a line break; expected a token, @FILE, or empty for none");
  }
  if (text == "@")
    return invalid_request("@ names no file; expected a token, @FILE, or empty for none");
  return {};
}

// Order here is the order of the help text and of the example config file.
const std::array<key_spec, 47> keys = {{
    {"listen", "HOST:PORT",
     "address to listen on: an IP address or localhost; port 0 picks a free port",
     text_key{&settings::listen, check_listen}},
    {"cache_dir", "DIR", "directory of the RocksDB cache",
     text_key{&settings::cache_dir, check_not_empty_dir}},
    {"cache_max_bytes", "SIZE",
     "most bytes the cache directory may take on disk, like 50GiB; past it the least recently "
     "used entries are evicted to 90 % (0: no cap)",
     size_key{&settings::cache_max_bytes}},
    {"cache_memory", "SIZE",
     "most memory the cache's block cache and write buffers take together, like 64MiB (at "
     "least 1MiB); module zips never pass through it",
     size_key{&settings::cache_memory, 1u << 20, "at least 1MiB"}},
    {"upstreams", "LIST",
     "upstream tiers in GOPROXY syntax (',' falls through on 404/410, '|' on any failure)",
     text_key{&settings::upstreams_text, check_upstream_list}},
    {"private", "GLOBS", "GOPRIVATE globs of modules sent only to the private upstreams",
     text_key{&settings::private_text, check_globs}},
    {"private_upstreams", "LIST", "upstream tiers for private modules, GOPROXY syntax",
     text_key{&settings::private_upstreams_text, check_upstream_list}},
    {"list_ttl", "DURATION", "how long @v/list, @latest and query answers stay fresh",
     duration_key{&settings::list_ttl}},
    {"negative_ttl", "DURATION", "how long a not-found answer is remembered",
     duration_key{&settings::negative_ttl}},
    {"log_level", "LEVEL", "trace, debug, info, warn, error or off",
     text_key{&settings::log_level, check_log_level}},
    {"access_log", "DEST", "access log: stderr, off or a file path",
     text_key{&settings::access_log, check_access_log}},
    {"io_threads", "N", "threads serving connections; 0 means one per core",
     int_key{&settings::io_threads, 0, 256}},
    {"fill_threads", "N", "threads for upstream sockets, tier walks and fills' cache writes",
     int_key{&settings::fill_threads, 1, 64}},
    {"check_threads", "N", "threads for zip checks and h1 hashing; 0 means one per core",
     int_key{&settings::check_threads, 0, 256}},
    {"read_threads", "N", "threads reading large cache entries; 0 means one per core, at least 2",
     int_key{&settings::read_threads, 0, 256}},
    {"connect_timeout", "DURATION", "per-tier connect deadline",
     duration_key{&settings::connect_timeout}},
    {"first_byte_timeout", "DURATION", "per-tier deadline for the response headers",
     duration_key{&settings::first_byte_timeout}},
    {"fill_timeout", "DURATION", "deadline for a whole upstream fill, every tier and verification",
     duration_key{&settings::fill_timeout}},
    {"request_timeout", "DURATION", "deadline for a client to send its request headers",
     duration_key{&settings::request_timeout}},
    {"idle_timeout", "DURATION", "how long an idle keep-alive connection is kept",
     duration_key{&settings::idle_timeout}},
    {"write_timeout", "DURATION", "deadline for one write to a client that stopped reading",
     duration_key{&settings::write_timeout}},
    {"drain_timeout", "DURATION", "how long SIGTERM waits for requests in flight",
     duration_key{&settings::drain_timeout}},
    {"drain_grace", "DURATION",
     "how long SIGTERM answers /readyz 503 before the listener closes, once /readyz was asked",
     duration_key{&settings::drain_grace, true}},
    {"max_header_bytes", "BYTES", "largest accepted request header block",
     int_key{&settings::max_header_bytes, 1024, 1048576}},
    {"max_connections", "N", "most client connections open at once",
     int_key{&settings::max_connections, 1, 1000000}},
    {"tls_cert", "FILE",
     "PEM certificate chain: with tls_key, the listener speaks TLS only (empty: plain HTTP)",
     text_key{&settings::tls_cert, check_tls_file}},
    {"tls_key", "FILE", "PEM private key of tls_cert; SIGHUP reloads both files",
     text_key{&settings::tls_key, check_tls_file}},
    {"all_failed_502", "BOOL", "answer 502 instead of 404 when every tier failed",
     bool_key{&settings::all_failed_502}},
    {"offline", "BOOL",
     "answer from the cache only, whatever an entry's age; ask no tier, checksum database or "
     "probe; a miss is 404 \"offline: not cached\"",
     bool_key{&settings::offline}},
    {"ca_file", "FILE", "extra PEM CA bundle for upstream TLS (empty: system CAs only)",
     text_key{&settings::ca_file, check_ca_file}},
    {"probe_interval", "DURATION", "how often each upstream tier is probed; 0 turns probing off",
     duration_key{&settings::probe_interval, true}},
    {"probe_modules", "MODULES", "modules whose @v/list probes the public tiers, comma-separated",
     text_key{&settings::probe_modules_text, check_module_list}},
    {"private_probe_modules", "MODULES",
     "private modules whose @v/list probes the private tiers (empty: they are not probed)",
     text_key{&settings::private_probe_modules_text, check_module_list}},
    {"sumdb", "LIST",
     "checksum databases passed through at /sumdb/NAME/, space-separated NAME=URLS entries",
     text_key{&settings::sumdb_text, check_sumdb_list}, /*repeatable=*/true},
    {"sumdb_key", "KEYS",
     "verifier keys of those databases, space-separated (each key starts with its name)",
     text_key{&settings::sumdb_key_text, check_sumdb_keys}, /*repeatable=*/true},
    {"verify", "MODE",
     "sumdb: check every public go.mod and zip against the first checksum database before "
     "caching it; off: do not",
     text_key{&settings::verify, check_verify_mode}},
    {"no_sumdb", "GLOBS",
     "GONOSUMDB-style globs of public modules that are not in the checksum database",
     text_key{&settings::no_sumdb_text, check_globs}},
    {"breaker_failures", "N",
     "consecutive failures after which a tier is skipped until it recovers; 0 never skips",
     int_key{&settings::breaker_failures, 0, 1000}},
    {"breaker_retry_after", "DURATION",
     "how long a skipped tier waits for a trial request when no probe has revived it",
     duration_key{&settings::breaker_retry_after}},
    {"hedge_after", "auto|DURATION",
     "ask the next tier too when a tier has not started answering after this; auto: after "
     "the tier's stall limit; 0s is off",
     text_key{&settings::hedge_after_text, check_hedge_after}},
    {"stall_min", "DURATION",
     "least stall limit (twice a tier's recent time to first byte); also a new tier's limit",
     duration_key{&settings::stall_min}},
    {"stall_max", "DURATION",
     "most stall limit; a request without headers after its tier's limit is hedged and "
     "counted against the tier, which is probed at once",
     duration_key{&settings::stall_max}},
    {"go_binary", "PATH",
     "the go command (>= 1.19) the direct tier runs: a path, or a name looked up on PATH",
     text_key{&settings::go_binary, check_go_binary}},
    {"direct_concurrency", "N", "go processes the direct tier runs at once; the rest wait",
     int_key{&settings::direct_concurrency, 1, 64}},
    {"direct_allow", "GLOBS",
     "module-path globs direct may fetch from private and loopback addresses (like private)",
     text_key{&settings::direct_allow_text, check_globs}},
    {"auth_file", "FILE",
     "client tokens, one TOKEN or NAME:TOKEN per line; requests without one get 401 (reread on "
     "SIGHUP)",
     text_key{&settings::auth_file, check_auth_file}},
    {"admin_token", "TOKEN|@FILE",
     "token for /metrics and /status (@FILE reads it from FILE); without it they take a client "
     "token",
     text_key{&settings::admin_token, check_admin_token}},
}};

const key_spec* find_key(std::string_view name) {
  for (const auto& key : keys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::string flag_name(std::string_view key) {
  std::string out = "--";
  for (char c : key) out += c == '_' ? '-' : c;
  return out;
}

std::string env_name(std::string_view key) {
  std::string out(env_prefix);
  for (char c : key) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Minutes only from 5m up, so a 60-second default reads as "60s" as the docs say it.
std::string format_duration(milliseconds value) {
  const auto ms = value.count();
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms >= 300000 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string show_value(const key_spec& key, const settings& s) {
  return std::visit(
      [&](const auto& kind) -> std::string {
        using kind_t = std::decay_t<decltype(kind)>;
        if constexpr (std::is_same_v<kind_t, text_key>) {
          return s.*kind.field;
        } else if constexpr (std::is_same_v<kind_t, duration_key>) {
          return std::visit(
              [&](auto field) {
                return format_duration(std::chrono::duration_cast<milliseconds>(s.*field));
              },
              kind.field);
        } else if constexpr (std::is_same_v<kind_t, int_key>) {
          return std::visit([&](auto field) { return std::to_string(s.*field); }, kind.field);
        } else if constexpr (std::is_same_v<kind_t, size_key>) {
          return format_byte_size(s.*kind.field);
        } else {
          return s.*kind.field ? "true" : "false";
        }
      },
      key.kind);
}

std::string_view type_name(const raw_value& value) {
  struct visitor {
    std::string_view operator()(const std::string&) const { return "a string"; }
    std::string_view operator()(std::int64_t) const { return "an integer"; }
    std::string_view operator()(bool) const { return "a boolean"; }
    std::string_view operator()(const other_type& other) const { return other.name; }
  };
  return std::visit(visitor{}, value);
}

outcome_of<void> apply_text(const text_key& kind, settings& s, const raw_value& value) {
  const auto* text = std::get_if<std::string>(&value);
  if (text == nullptr) {
    return invalid_request("wrong type (" + std::string(type_name(value)) + "); expected a string");
  }
  if (auto checked = kind.check(*text); !checked) return checked;
  s.*kind.field = *text;
  return {};
}

outcome_of<void> apply_duration(const duration_key& kind, settings& s, const raw_value& value) {
  const std::string form = "; expected " + std::string(duration_form);
  milliseconds parsed{};
  std::string shown;
  if (const auto* text = std::get_if<std::string>(&value)) {
    shown = quote(*text);
    const auto result = parse_duration(*text);
    if (!result) return invalid_request(shown + " is not a duration" + form);
    parsed = *result;
  } else if (const auto* number = std::get_if<std::int64_t>(&value)) {
    shown = std::to_string(*number);
    const auto result = parse_duration(shown);
    if (*number < 0 || (*number == 0 && !kind.zero_allowed)) {
      return invalid_request(shown + " must be greater than zero" + form);
    }
    if (!result) return invalid_request(shown + " is too large" + form);
    parsed = *result;
  } else {
    return invalid_request("wrong type (" + std::string(type_name(value)) +
                           "); expected a string like \"60s\" or " +
                           "an integer number of seconds");
  }
  if (parsed.count() < 0 || (parsed.count() == 0 && !kind.zero_allowed)) {
    return invalid_request(shown + " must be greater than zero" + form);
  }
  if (auto* field = std::get_if<seconds settings::*>(&kind.field)) {
    if (parsed.count() % 1000 != 0) {
      return invalid_request(shown + " is not a whole number of seconds" + form);
    }
    s.** field = std::chrono::duration_cast<seconds>(parsed);
  } else {
    s.*std::get<milliseconds settings::*>(kind.field) = parsed;
  }
  return {};
}

outcome_of<void> apply_int(const int_key& kind, settings& s, const raw_value& value, origin from) {
  const std::string form =
      "; expected an integer from " + std::to_string(kind.min) + " to " + std::to_string(kind.max);
  std::int64_t number = 0;
  std::string shown;
  const auto* text = from == origin::text ? std::get_if<std::string>(&value) : nullptr;
  if (text != nullptr) {
    shown = quote(*text);
    const bool digits =
        !text->empty() && text->size() <= 12 &&
        std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return invalid_request(shown + " is not an integer" + form);
    number = std::stoll(*text);
  } else if (const auto* typed = std::get_if<std::int64_t>(&value)) {
    number = *typed;
    shown = std::to_string(number);
  } else {
    return invalid_request("wrong type (" + std::string(type_name(value)) + ")" + form);
  }
  if (number < kind.min || number > kind.max)
    return invalid_request(shown + " is out of range" + form);
  std::visit([&](auto field) { s.*field = static_cast<std::decay_t<decltype(s.*field)>>(number); },
             kind.field);
  return {};
}

outcome_of<void> apply_bool(const bool_key& kind, settings& s, const raw_value& value,
                            origin from) {
  constexpr std::string_view form = "; expected true or false";
  const auto* text = from == origin::text ? std::get_if<std::string>(&value) : nullptr;
  if (text != nullptr) {
    if (*text == "true" || *text == "1") {
      s.*kind.field = true;
    } else if (*text == "false" || *text == "0") {
      s.*kind.field = false;
    } else {
      return invalid_request(quote(*text) + " is not a boolean" + std::string(form));
    }
  } else if (const auto* typed = std::get_if<bool>(&value)) {
    s.*kind.field = *typed;
  } else {
    return invalid_request("wrong type (" + std::string(type_name(value)) + ")" +
                           std::string(form));
  }
  return {};
}

outcome_of<void> apply_size(const size_key& kind, settings& s, const raw_value& value) {
  const std::string form =
      "; expected a byte count like 50GiB, 512MiB or 1048576 (suffixes KiB, MiB, GiB, TiB; " +
      std::string(kind.range) + ")";
  if (const auto* number = std::get_if<std::int64_t>(&value)) {
    if (*number < 0) return invalid_request(std::to_string(*number) + " is negative" + form);
    if (static_cast<std::uint64_t>(*number) < kind.min) {
      return invalid_request(std::to_string(*number) + " is too small" + form);
    }
    s.*kind.field = static_cast<std::uint64_t>(*number);
    return {};
  }
  const auto* text = std::get_if<std::string>(&value);
  if (text == nullptr) {
    return invalid_request("wrong type (" + std::string(type_name(value)) + ")" + form);
  }
  const auto parsed = parse_byte_size(*text);
  if (!parsed) return invalid_request(quote(*text) + " is not a byte count" + form);
  if (*parsed < kind.min) return invalid_request(quote(*text) + " is too small" + form);
  s.*kind.field = *parsed;
  return {};
}

outcome_of<void> apply(const key_spec& key, settings& s, const raw_value& value, origin from) {
  return std::visit(
      [&](const auto& kind) -> outcome_of<void> {
        using kind_t = std::decay_t<decltype(kind)>;
        if constexpr (std::is_same_v<kind_t, text_key>) {
          return apply_text(kind, s, value);
        } else if constexpr (std::is_same_v<kind_t, duration_key>) {
          return apply_duration(kind, s, value);
        } else if constexpr (std::is_same_v<kind_t, int_key>) {
          return apply_int(kind, s, value, from);
        } else if constexpr (std::is_same_v<kind_t, size_key>) {
          return apply_size(kind, s, value);
        } else {
          return apply_bool(kind, s, value, from);
        }
      },
      key.kind);
}

// The key's failure as load_settings returns it: its code, the key in front and the source after.
failure fail(std::string_view subject, const failure& what, std::string_view source) {
  return failure{what.code, "gomodproxy: " + std::string(subject) + ": " + what.detail + " (from " +
                                std::string(source) + ")"};
}

std::string all_flags() {
  std::string out = "--config";
  for (const auto& key : keys) out += ", " + flag_name(key.name);
  return out;
}

std::string all_env_names() {
  std::string out = std::string(env_prefix) + "CONFIG";
  for (const auto& key : keys) out += ", " + env_name(key.name);
  return out;
}

std::string all_file_keys() {
  std::string out;
  for (const auto& key : keys) {
    if (!out.empty()) out += ", ";
    out += key.name;
  }
  return out;
}

struct flag_value {
  const key_spec* key;
  std::string spelling;  ///< as typed, for messages
  std::string value;
};

struct parsed_flags {
  std::optional<std::string> config_path;
  std::vector<flag_value> values;
};

outcome_of<parsed_flags> parse_flags(const std::vector<std::string>& args) {
  parsed_flags out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      return invalid_request("gomodproxy: unexpected argument " + quote(arg) +
                             "; expected flags like --listen 127.0.0.1:8081 or --list-ttl=90s");
    }
    const auto eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::optional<std::string> inline_value;
    if (eq != std::string::npos) inline_value = arg.substr(eq + 1);

    const std::string flag = "--" + name;
    std::string key_name = name;
    std::replace(key_name.begin(), key_name.end(), '-', '_');
    const key_spec* key = name.find('_') == std::string::npos ? find_key(key_name) : nullptr;
    const bool is_config = name == "config";
    if (key == nullptr && !is_config) {
      std::string hint;
      if (name.find('_') != std::string::npos) {
        std::string dashed = name;
        std::replace(dashed.begin(), dashed.end(), '_', '-');
        if (find_key(key_name) != nullptr) hint = " (did you mean --" + dashed + "?)";
      }
      return invalid_request("gomodproxy: " + quote(flag) + ": unknown flag" + hint +
                             "; expected one of " + all_flags());
    }

    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (key != nullptr && std::holds_alternative<bool_key>(key->kind)) {
      // A bare boolean flag means true; an explicit following true/false is taken as its value.
      value = "true";
      if (i + 1 < args.size() && (args[i + 1] == "true" || args[i + 1] == "false")) {
        value = args[++i];
      }
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      const std::string subject = is_config ? "config" : std::string(key->name);
      const std::string placeholder = is_config ? "FILE" : std::string(key->placeholder);
      return invalid_request("gomodproxy: " + subject + ": flag " + flag +
                             " needs a value; expected " + flag + " " + placeholder + " or " +
                             flag + "=" + placeholder);
    }
    if (is_config) {
      out.config_path = value;
    } else if (key->repeatable) {
      auto earlier = std::find_if(out.values.begin(), out.values.end(),
                                  [key](const flag_value& seen) { return seen.key == key; });
      if (earlier == out.values.end()) {
        out.values.push_back({key, flag, std::move(value)});
      } else {
        earlier->value += " " + value;
      }
    } else {
      out.values.push_back({key, flag, std::move(value)});
    }
  }
  return out;
}

outcome_of<void> apply_file(const std::string& path, settings& s) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return system_failure(
        errno != 0 ? errno : EIO,
        "gomodproxy: config: cannot read " + quote(path) +
            "; expected a readable TOML file (from --config or GOMODPROXY_CONFIG)");
  }
  std::ostringstream content;
  content << in.rdbuf();
  toml::table table;
  try {
    table = toml::parse(content.str(), path);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return invalid_request("gomodproxy: config: " + quote(path) + " line " +
                           std::to_string(where.line) + " column " + std::to_string(where.column) +
                           ": " + one_line(std::string(error.description())) +
                           "; expected TOML like " + "list_ttl = \"60s\"");
  }
  for (const auto& [name, node] : table) {
    const std::string key_name(name.str());
    const key_spec* key = find_key(key_name);
    if (key == nullptr) {
      return invalid_request("gomodproxy: " + quote(key_name) + ": unknown key in config file " +
                             quote(path) + "; expected one of " + all_file_keys());
    }
    raw_value value;
    if (const auto* text = node.as_string()) {
      value = text->get();
    } else if (const auto* number = node.as_integer()) {
      value = number->get();
    } else if (const auto* flag = node.as_boolean()) {
      value = flag->get();
    } else if (node.is_floating_point()) {
      value = other_type{"a float"};
    } else if (node.is_array()) {
      value = other_type{"an array"};
    } else if (node.is_table()) {
      value = other_type{"a table"};
    } else {
      value = other_type{"a date or time"};
    }
    if (auto applied = apply(*key, s, value, origin::typed); !applied) {
      return fail(key->name, applied.error(), "file key " + key_name + " in " + path);
    }
  }
  return {};
}

}  // namespace

outcome_of<settings> load_settings(const std::vector<std::string>& args,
                                   const std::map<std::string, std::string>& environment) {
  auto flags_or_error = parse_flags(args);
  if (!flags_or_error) return flags_or_error.error();
  const auto& flags = *flags_or_error;

  // Environment names are checked before anything is read, so a typo fails even when a file or
  // flag would have set the same key.
  std::vector<std::pair<const key_spec*, const std::pair<const std::string, std::string>*>> env;
  for (const auto& entry : environment) {
    const std::string& name = entry.first;
    if (name.compare(0, env_prefix.size(), env_prefix) != 0) continue;
    const std::string rest = name.substr(env_prefix.size());
    // GOMODPROXY_BIN names the binary for the test harness; it configures nothing here.
    if (rest == "CONFIG" || rest == "BIN") continue;
    std::string key_name = rest;
    std::transform(key_name.begin(), key_name.end(), key_name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const key_spec* key = find_key(key_name);
    if (key == nullptr || env_name(key->name) != name) {
      return invalid_request("gomodproxy: " + quote(name) +
                             ": unknown environment variable; expected one of " + all_env_names());
    }
    env.emplace_back(key, &entry);
  }

  settings s;
  std::optional<std::string> config_path = flags.config_path;
  if (!config_path) {
    if (const auto it = environment.find(std::string(env_prefix) + "CONFIG");
        it != environment.end()) {
      config_path = it->second;
    }
  }
  if (config_path && !config_path->empty()) {
    if (auto applied = apply_file(*config_path, s); !applied) return applied.error();
  }
  for (const auto& [key, entry] : env) {
    if (auto applied = apply(*key, s, raw_value{entry->second}, origin::text); !applied) {
      return fail(key->name, applied.error(), "env " + entry->first);
    }
  }
  for (const auto& flag : flags.values) {
    if (auto applied = apply(*flag.key, s, raw_value{flag.value}, origin::text); !applied) {
      return fail(flag.key->name, applied.error(), "flag " + flag.spelling);
    }
  }

  // Each text was validated when it was set (or is a default), so these parses succeed; a failure
  // here would mean a bad built-in default.
  auto upstreams = upstream::parse_upstream_list(s.upstreams_text);
  auto private_upstreams = upstream::parse_upstream_list(s.private_upstreams_text);
  if (!upstreams) {
    return failure{upstreams.error().code,
                   "gomodproxy: upstreams: " + one_line(upstreams.error().detail) + "; expected " +
                       std::string(upstream_form) + " (from the built-in default)"};
  }
  if (!private_upstreams) {
    return failure{private_upstreams.error().code,
                   "gomodproxy: private_upstreams: " + one_line(private_upstreams.error().detail) +
                       "; expected " + std::string(upstream_form) + " (from the built-in default)"};
  }
  s.upstreams = *std::move(upstreams);
  s.private_upstreams = *std::move(private_upstreams);
  s.private_patterns = protocol::parse_glob_list(s.private_text);
  auto sumdb_entries = split_sumdb_list(s.sumdb_text);
  if (!sumdb_entries) return fail("sumdb", sumdb_entries.error(), "the built-in default");
  for (auto& [name, urls] : *sumdb_entries) {
    settings::sumdb_entry entry;
    entry.name = name;
    entry.tiers = upstream::parse_upstream_list(urls).value();
    std::istringstream keys(s.sumdb_key_text);
    std::string key;
    while (keys >> key) {
      if (key.starts_with(name + "+")) entry.key = key;
    }
    if (entry.key.empty()) {
      return invalid_request("gomodproxy: sumdb_key: no key for checksum database " + quote(name) +
                             "; expected a key starting with " + name + "+ in sumdb_key");
    }
    s.sumdbs.push_back(std::move(entry));
  }
  s.no_sumdb_patterns = protocol::parse_glob_list(s.no_sumdb_text);
  s.direct_allow_patterns = protocol::parse_glob_list(s.direct_allow_text);
  if (s.verify == "sumdb" && s.sumdbs.empty()) {
    return invalid_request(
        "gomodproxy: verify: sumdb needs a checksum database; expected verify = off "
        "or at least one sumdb entry");
  }
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    const std::string given = s.tls_cert.empty() ? "tls_key" : "tls_cert";
    const std::string missing = s.tls_cert.empty() ? "tls_cert" : "tls_key";
    return invalid_request("gomodproxy: " + missing + ": empty while " + given +
                           " is set; expected both tls_cert and tls_key, or neither");
  }
  if (s.hedge_after_text != "auto") s.hedge_after = parse_duration(s.hedge_after_text);
  if (s.stall_min > s.stall_max) {
    return invalid_request("gomodproxy: stall_min: " + std::to_string(s.stall_min.count()) +
                           "ms is more than stall_max (" + std::to_string(s.stall_max.count()) +
                           "ms); expected stall_min <= stall_max");
  }
  // Probes obey the private-module rule too: a private module name never reaches a public tier,
  // and private tiers are asked only about private modules.
  s.probe_modules = split_module_list(s.probe_modules_text);
  s.private_probe_modules = split_module_list(s.private_probe_modules_text);
  for (const auto& module_path : s.probe_modules) {
    if (protocol::match_prefix_patterns(s.private_patterns, module_path)) {
      return invalid_request("gomodproxy: probe_modules: " + quote(module_path) +
                             " is private (matches private); expected public modules only, private "
                             "ones belong in private_probe_modules");
    }
  }
  for (const auto& module_path : s.private_probe_modules) {
    if (!protocol::match_prefix_patterns(s.private_patterns, module_path)) {
      return invalid_request(
          "gomodproxy: private_probe_modules: " + quote(module_path) +
          " does not match private; expected modules matching the private globs");
    }
  }
  return s;
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

std::string usage_text() {
  const settings defaults;
  std::string out =
      "Usage: gomodproxy serve [flags]\n"
      "\n"
      "Settings come from built-in defaults, then the TOML file named by --config (or\n"
      "GOMODPROXY_CONFIG), then GOMODPROXY_<KEY> environment variables, then flags; later wins.\n"
      "Flags take a value as --flag VALUE or --flag=VALUE. Durations: 250ms, 60s, 5m, 1h or a\n"
      "number of seconds.\n"
      "\n"
      "Flags:\n"
      "  --config FILE  (env GOMODPROXY_CONFIG; default none)\n"
      "      TOML config file with the keys below\n";
  for (const auto& key : keys) {
    std::string shown = show_value(key, defaults);
    if (shown.empty()) shown = "empty";
    out += "  " + flag_name(key.name) + " " + std::string(key.placeholder) + "  (env " +
           env_name(key.name) + "; default " + shown + ")\n      " + std::string(key.description) +
           "\n";
  }
  out += "  --help\n      print this text\n";
  return out;
}

}  // namespace gomodproxy::config
