#include "probe_report/probe_options.hpp"

#include <charconv>
#include <set>

#include "config/duration.hpp"
#include "config/settings.hpp"
#include "protocol/escape.hpp"

namespace gomodproxy::probe_report {

using protocol::trim_space;

namespace {

constexpr int max_rounds = 1000;
constexpr std::string_view flag_names =
    "--upstreams, --modules, --rounds, --format, --timeout, --zip-timeout, --ca-file, --help";

std::string shown(std::string_view s) { return protocol::quote(s); }

failure bad_value(std::string_view flag, std::string_view value, std::string_view expected) {
  return invalid_request("gomodproxy probe: " + std::string(flag) + ": bad value " + shown(value) +
                         "; expected " + std::string(expected));
}

[[nodiscard]] outcome_of<void> set_duration(std::string_view flag, std::string_view value,
                                            std::chrono::milliseconds& target) {
  auto parsed = config::parse_duration(value);
  if (!parsed || parsed->count() == 0) {
    return bad_value(flag, value, "a duration above zero like 10s, 250ms or 1m30s");
  }
  target = *parsed;
  return {};
}

[[nodiscard]] outcome_of<void> apply_flag(std::string_view flag, const std::string& value,
                                          probe_options& options) {
  if (flag == "--upstreams") {
    auto parsed = parse_probe_upstreams(value);
    if (!parsed) {
      auto problem = parsed.error();
      return failure{problem.code, "gomodproxy probe: --upstreams: " + problem.detail};
    }
    options.sweep.tiers = *std::move(parsed);
  } else if (flag == "--modules") {
    if (value.empty()) return bad_value(flag, value, "a file name");
    options.modules_file = value;
  } else if (flag == "--rounds") {
    int rounds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), rounds);
    if (ec != std::errc{} || end != value.data() + value.size() || rounds < 1 ||
        rounds > max_rounds) {
      return bad_value(flag, value, "a whole number from 1 to " + std::to_string(max_rounds));
    }
    options.sweep.rounds = rounds;
  } else if (flag == "--format") {
    if (value == "table") {
      options.format = output_format::table;
    } else if (value == "json") {
      options.format = output_format::json;
    } else if (value == "markdown") {
      options.format = output_format::markdown;
    } else {
      return bad_value(flag, value, "table, json or markdown");
    }
  } else if (flag == "--timeout") {
    return set_duration(flag, value, options.sweep.timeout);
  } else if (flag == "--zip-timeout") {
    return set_duration(flag, value, options.sweep.zip_timeout);
  } else if (flag == "--ca-file") {
    options.sweep.ca_file = value;
  }
  return {};
}

}  // namespace

outcome_of<std::vector<upstream::tier_spec>> parse_probe_upstreams(std::string_view list) {
  std::vector<upstream::tier_spec> tiers;
  std::set<std::string> seen;
  while (!list.empty()) {
    const auto separator = list.find_first_of(",|");
    const auto entry = trim_space(list.substr(0, separator));
    list = separator == std::string_view::npos ? std::string_view{} : list.substr(separator + 1);
    if (entry.empty()) continue;
    // One entry at a time through the serve parser: same validation, same names, but "direct"
    // does not hide the mirrors after it.
    auto parsed = upstream::parse_upstream_list(entry);
    if (!parsed) return parsed.error();
    for (auto& tier : *parsed) {
      const auto key = tier.type == upstream::tier_spec::kind::url ? tier.url : tier.name;
      if (seen.insert(key).second) tiers.push_back(std::move(tier));
    }
  }
  if (tiers.empty()) return invalid_request("the list names no upstream");
  return tiers;
}

outcome_of<probe_options> parse_probe_flags(const std::vector<std::string>& args) {
  static const std::set<std::string, std::less<>> valued = {
      "--upstreams", "--modules",     "--rounds", "--format",
      "--timeout",   "--zip-timeout", "--ca-file"};
  probe_options options;
  bool upstreams_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (!arg.starts_with("--")) {
      return invalid_request("gomodproxy probe: unexpected argument " + shown(arg) +
                             "; expected flags like --upstreams LIST or --rounds=3");
    }
    const auto eq = arg.find('=');
    const std::string flag = arg.substr(0, eq);
    if (!valued.contains(flag)) {
      return invalid_request("gomodproxy probe: unknown flag " + shown(flag) +
                             "; expected one of " + std::string(flag_names));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return invalid_request("gomodproxy probe: " + flag + " needs a value (" + flag +
                             " VALUE or " + flag + "=VALUE)");
    }
    if (auto applied = apply_flag(flag, value, options); !applied) return applied.error();
    if (flag == "--upstreams") upstreams_given = true;
  }
  if (!upstreams_given) {
    options.sweep.tiers = parse_probe_upstreams(config::settings{}.upstreams_text).value();
  }
  return options;
}

std::string probe_usage_text() {
  const config::settings defaults;
  std::string default_modules;
  for (const auto& target : default_module_targets()) {
    default_modules += (default_modules.empty() ? "" : ", ") + describe(target);
  }
  return "Usage: gomodproxy probe [--upstreams LIST] [--modules FILE] [--rounds N]\n"
         "                        [--format table|json|markdown] [--timeout DURATION]\n"
         "                        [--zip-timeout DURATION] [--ca-file FILE]\n"
         "\n"
         "Asks each upstream for every module's @v/list, then .info, .mod and .zip of the pinned\n"
         "or newest listed version, and reports per upstream: TTFB mean/p50/p95, success rate\n"
         "(200, 404 and 410 are answers; errors, timeouts and other statuses are failures), hit\n"
         "rate (modules found), zip bytes and time, and sync lag (versions the freshest upstream\n"
         "lists that this one does not). Progress goes to stderr, the report to stdout. Exit\n"
         "status: 0 when the probe ran, even if every upstream failed; 2 for bad flags or an\n"
         "unreadable modules file; 1 when something else stopped it.\n"
         "\n"
         "Flags (as --flag VALUE or --flag=VALUE):\n"
         "  --upstreams LIST  (default " +
         defaults.upstreams_text +
         ")\n"
         "      GOPROXY syntax; every entry is probed in turn, direct and off are listed as "
         "skipped\n"
         "  --modules FILE  (default: the built-in list below)\n"
         "      one module path per line, or path@version to pin the version; '#' starts a "
         "comment\n"
         "      without it: " +
         default_modules +
         "\n"
         "  --rounds N  (default 1)\n"
         "      repeat the whole sweep N times; statistics cover every request\n"
         "  --format table|json|markdown  (default table)\n"
         "  --timeout DURATION  (default 10s)\n"
         "      per request, from connecting to the last body byte (250ms, 10s, 1m30s)\n"
         "  --zip-timeout DURATION  (default 5m)\n"
         "      per .zip request instead, since a zip can be hundreds of MiB\n"
         "  --ca-file FILE  (default none)\n"
         "      extra CA bundle for a private mirror; the system CAs are always trusted\n"
         "  --help\n"
         "      print this text\n";
}

}  // namespace gomodproxy::probe_report
