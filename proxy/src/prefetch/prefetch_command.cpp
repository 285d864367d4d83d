#include "prefetch/prefetch_command.hpp"

#include <unistd.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "common/read_file.hpp"
#include "prefetch/netrc.hpp"
#include "prefetch/pin_sources.hpp"
#include "prefetch/prefetch_run.hpp"
#include "protocol/escape.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::prefetch {

namespace {

constexpr int exit_done = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr std::size_t max_jobs = 256;
// A token is a line; a larger file is the wrong file.
constexpr std::size_t max_token_file_bytes = 4096;

struct command_options {
  run_options run;
  std::vector<std::string> arguments;
  std::string token_file;
  bool help = false;
};

failure bad_value(std::string_view flag, std::string_view value, std::string_view expected) {
  return invalid_request("gomodproxy prefetch: " + std::string(flag) + ": bad value " +
                         protocol::quote(value) + "; expected " + std::string(expected));
}

[[nodiscard]] outcome_of<void> apply_flag(std::string_view flag, const std::string& value,
                                          command_options& options) {
  if (flag == "--proxy") {
    std::string url = value;
    while (url.ends_with("/")) url.pop_back();
    const bool http = url.starts_with("http://") && url.size() > 7;
    const bool https = url.starts_with("https://") && url.size() > 8;
    if (!http && !https) return bad_value(flag, value, "an http:// or https:// URL");
    options.run.proxy_url = url;
  } else if (flag == "--jobs") {
    std::size_t jobs = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), jobs);
    if (ec != std::errc{} || end != value.data() + value.size() || jobs < 1 || jobs > max_jobs) {
      return bad_value(flag, value, "a whole number from 1 to " + std::to_string(max_jobs));
    }
    options.run.jobs = jobs;
  } else if (flag == "--sumdb") {
    if (value.empty() || value.find('/') != std::string::npos) {
      return bad_value(flag, value, "a checksum database name like sum.golang.org, or off");
    }
    options.run.sumdb_name = value == "off" ? "" : value;
  } else if (flag == "--ca-file") {
    if (value.empty()) return bad_value(flag, value, "a file name");
    options.run.ca_file = value;
  } else if (flag == "--token-file") {
    if (value.empty()) return bad_value(flag, value, "a file name");
    options.token_file = value;
  } else {
    return invalid_request("gomodproxy prefetch: unknown flag " + protocol::quote(flag) +
                           "; flags are --proxy, --jobs, --sumdb, --ca-file, --token-file, --help");
  }
  return {};
}

[[nodiscard]] outcome_of<command_options> parse_flags(const std::vector<std::string>& args) {
  command_options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (arg == "--") {
      options.arguments.insert(options.arguments.end(),
                               args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (!arg.starts_with("-") || arg == "-") {
      options.arguments.push_back(arg);
      continue;
    }
    std::string_view flag = arg;
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      flag = std::string_view(arg).substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return invalid_request("gomodproxy prefetch: " + std::string(flag) + " needs a value");
    }
    if (auto applied = apply_flag(flag, value, options); !applied) return applied.error();
  }
  if (options.arguments.empty()) {
    return invalid_request(
        "gomodproxy prefetch: name at least one go.sum, go.mod or go.work file or "
        "directory (gomodproxy prefetch --help)");
  }
  return options;
}

// RFC 3986 userinfo: a token with reserved characters still arrives as written.
std::string percent_encoded(std::string_view text) {
  static constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return out;
}

// The token file's first line. A failure's detail never quotes the file's content.
outcome_of<std::string> read_token(const std::string& path) {
  const std::string named = "gomodproxy prefetch: --token-file: " + protocol::quote(path);
  auto text = read_file(path, max_token_file_bytes);
  if (!text) {
    if (text.error().code == errc::too_large) {
      return failure{text.error().code,
                     named + " is larger than " + std::to_string(max_token_file_bytes) + " bytes"};
    }
    return failure{text.error().code, "gomodproxy prefetch: --token-file: cannot read " +
                                          protocol::quote(path) + ": " + text.error().detail};
  }
  auto token =
      std::string(protocol::trim_space(std::string_view(*text).substr(0, text->find('\n'))));
  if (token.empty()) return invalid_request(named + " holds no token");
  return token;
}

// "scheme://" + "USER:PASSWORD@" + the rest: the HTTP client sends URL userinfo as Basic
// credentials, which the proxy's token check accepts (the user name is not matched), and only
// to the proxy's own host, never to a host it redirects to.
std::string with_credentials(const std::string& url, std::string_view user,
                             std::string_view password) {
  const auto start = url.find("://") + 3;
  return url.substr(0, start) + percent_encoded(user) + ":" + percent_encoded(password) + "@" +
         url.substr(start);
}

struct url_authority {
  std::string host;
  std::string port;  ///< empty when the URL names none
  bool has_userinfo = false;
};

url_authority authority_of(const std::string& url) {
  const auto start = url.find("://") + 3;
  auto authority = url.substr(start, url.find('/', start) - start);
  url_authority out;
  if (auto at = authority.rfind('@'); at != std::string::npos) {
    out.has_userinfo = true;
    authority = authority.substr(at + 1);
  }
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    out.port = authority.substr(colon + 1);
    authority.resize(colon);
  }
  out.host = authority;
  return out;
}

// The go command sends .netrc credentials over https only; so does prefetch, for the same proxy.
std::string with_netrc_credentials(const std::string& url) {
  const auto authority = authority_of(url);
  if (!url.starts_with("https://") || authority.has_userinfo) return url;
  std::ifstream in(netrc_path(), std::ios::binary);
  if (!in) return url;
  std::ostringstream text;
  text << in.rdbuf();
  auto entry = find_netrc_entry(text.str(), authority.host, authority.port);
  return entry ? with_credentials(url, entry->login, entry->password) : url;
}

std::string format_bytes(std::uint64_t bytes) {
  constexpr std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < units.size()) {
    value /= 1024;
    ++unit;
  }
  std::array<char, 32> buffer{};
  if (unit == 0) {
    std::snprintf(buffer.data(), buffer.size(), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buffer.data(), buffer.size(), "%.1f %s", value, units[unit]);
  }
  return buffer.data();
}

double seconds_of(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string format_seconds(double seconds) {
  std::array<char, 32> buffer{};
  if (seconds < 60) {
    std::snprintf(buffer.data(), buffer.size(), "%.1fs", seconds);
  } else {
    const auto whole = static_cast<long long>(seconds);
    std::snprintf(buffer.data(), buffer.size(), "%lldm%02llds", whole / 60, whole % 60);
  }
  return buffer.data();
}

// "37/120 requests, 12.3 MiB, 4.1 MiB/s, ETA 20.3s, 1 failed"
std::string progress_line(const run_progress& p) {
  const auto seconds = seconds_of(p.elapsed);
  std::string line = "prefetch: " + std::to_string(p.done) + "/" + std::to_string(p.total) +
                     " requests, " + format_bytes(p.bytes);
  if (seconds > 0) {
    line += ", " +
            format_bytes(static_cast<std::uint64_t>(static_cast<double>(p.bytes) / seconds)) + "/s";
  }
  if (p.done > 0 && p.done < p.total) {
    const auto remaining =
        seconds / static_cast<double>(p.done) * static_cast<double>(p.total - p.done);
    line += ", ETA " + format_seconds(remaining);
  }
  if (p.failed > 0) line += ", " + std::to_string(p.failed) + " failed";
  return line;
}

std::string failure_line(const fetch_failure& failure) {
  return "prefetch: failed: " + failure.what + ": " + failure.reason;
}

}  // namespace

std::string prefetch_usage_text() {
  return "usage: gomodproxy prefetch [flags] FILE|DIR...\n"
         "\n"
         "Warms a running gomodproxy with every module version that go.sum, go.mod and go.work\n"
         "files pin: a go.sum line asks for the module's .info, .mod and .zip (a \"/go.mod\" line\n"
         "for its .mod only), a go.mod require (or replace by another module version) for all\n"
         "three, a go.work for the go.mod and go.sum of each `use` directory. A DIR is searched\n"
         "for all of them, skipping vendor/, testdata/ and directories starting with . or _.\n"
         "Replacements by a local directory are skipped. When the proxy serves the checksum\n"
         "database, each module version's record is looked up through it too.\n"
         "\n"
         "flags:\n"
         "  --proxy URL        the proxy to warm (default http://127.0.0.1:8081, the address\n"
         "                     of `make run`; the GOPROXY environment variable is not read)\n"
         "  --jobs N           requests in flight at once, 1 to 256 (default 8)\n"
         "  --sumdb NAME       checksum database to look records up in through the proxy\n"
         "                     (default sum.golang.org; off for none)\n"
         "  --ca-file FILE     extra CA bundle for an https:// proxy (system CAs always load)\n"
         "  --token-file FILE  a client token (its first line) for a proxy that requires one,\n"
         "                     sent as Basic credentials; without it an https:// proxy gets\n"
         "                     the .netrc entry the go command would send ($NETRC or\n"
         "                     ~/.netrc, `machine HOST:PORT` first, then `machine HOST`)\n"
         "  --help             this text\n"
         "\n"
         "On a terminal one progress line is updated (requests done/total, bytes, rate, ETA);\n"
         "otherwise each failure is one line and a summary line ends the output. All of it goes\n"
         "to stderr. Exit status: 0 all fetched; 1 something failed (each failure is listed with\n"
         "the proxy's reason), a file line could not be used (listed as skipped, the rest is\n"
         "still fetched) or the proxy could not be used at all; 2 usage error.\n";
}

int run_prefetch_command(const std::vector<std::string>& args) {
  auto parsed = parse_flags(args);
  if (!parsed) {
    std::fprintf(stderr, "%s\n", parsed.error().detail.c_str());
    return exit_usage;
  }
  auto& options = *parsed;
  if (options.help) {
    std::fputs(prefetch_usage_text().c_str(), stdout);
    return exit_done;
  }
  if (!options.run.ca_file.empty()) {
    if (auto bundle = upstream::check_ca_bundle(options.run.ca_file); !bundle) {
      std::fprintf(stderr, "gomodproxy prefetch: --ca-file: %s is not a CA bundle (%s)\n",
                   protocol::quote(options.run.ca_file).c_str(), bundle.error().detail.c_str());
      return exit_usage;
    }
  }
  // Before a token is put into the URL: what the output may show.
  const auto shown_proxy = options.run.proxy_url;
  if (!options.token_file.empty() && !options.run.proxy_url.starts_with("https://")) {
    // The HTTP client, like the go command, sends credentials over https only.
    std::fprintf(stderr,
                 "gomodproxy prefetch: --token-file needs an https:// --proxy; a token sent over "
                 "plain HTTP can be read on the way\n");
    return exit_usage;
  }
  if (!options.token_file.empty()) {
    auto token = read_token(options.token_file);
    if (!token) {
      std::fprintf(stderr, "%s\n", token.error().detail.c_str());
      return exit_usage;
    }
    options.run.proxy_url = with_credentials(options.run.proxy_url, "prefetch", *token);
  } else {
    options.run.proxy_url = with_netrc_credentials(options.run.proxy_url);
  }

  auto collected = collect_pins(options.arguments);
  if (!collected) {
    std::fprintf(stderr, "%s\n", collected.error().detail.c_str());
    return exit_usage;
  }
  auto& pins = *collected;
  for (const auto& problem : pins.problems) {
    std::fprintf(stderr, "prefetch: skipped: %s\n", problem.c_str());
  }

  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  bool line_shown = false;
  auto clear_line = [&] {
    if (line_shown) std::fputs("\r\033[K", stderr);
    line_shown = false;
  };
  run_events events;
  if (terminal) {
    events.on_progress = [&](const run_progress& progress) {
      std::fprintf(stderr, "\r\033[K%s", progress_line(progress).c_str());
      std::fflush(stderr);
      line_shown = true;
    };
  }
  events.on_failure = [&](const fetch_failure& failure) {
    clear_line();
    std::fprintf(stderr, "%s\n", failure_line(failure).c_str());
  };

  run_summary summary;
  try {
    summary = run_prefetch(pins.pins, options.run, events);
  } catch (const std::exception& e) {
    clear_line();
    std::fprintf(stderr, "gomodproxy prefetch: %s\n", e.what());
    return exit_failed;
  }
  clear_line();
  if (summary.unreachable) {
    std::fprintf(stderr, "gomodproxy prefetch: cannot use the proxy at %s: %s\n",
                 shown_proxy.c_str(), summary.unreachable->c_str());
    return exit_failed;
  }

  const auto& p = summary.final_progress;
  std::string line = "prefetch: " + std::to_string(pins.pins.size()) + " module versions from " +
                     std::to_string(pins.files.size()) +
                     " files: " + std::to_string(summary.file_requests) + " files";
  if (summary.sumdb_served.value_or(false)) {
    line += " and " + std::to_string(summary.lookup_requests) + " checksum lookups";
  } else if (summary.sumdb_served) {
    line += " (the proxy does not serve " + options.run.sumdb_name + ")";
  }
  line += ", " + std::to_string(p.done - p.failed) + " fetched, " + std::to_string(p.failed) +
          " failed, " + format_bytes(p.bytes) + " in " + format_seconds(seconds_of(p.elapsed));
  if (!pins.problems.empty()) {
    line += ", " + std::to_string(pins.problems.size()) + " unusable lines";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  if (terminal && !summary.failures.empty()) {
    // The failures scrolled by above the progress line; the list at the end is what is left on
    // screen.
    for (const auto& failure : summary.failures) {
      std::fprintf(stderr, "%s\n", failure_line(failure).c_str());
    }
  }
  return (summary.failures.empty() && pins.problems.empty()) ? exit_done : exit_failed;
}

}  // namespace gomodproxy::prefetch
