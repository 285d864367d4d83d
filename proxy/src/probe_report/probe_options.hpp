// The flags of `gomodproxy probe` and what they mean.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"
#include "probe_report/report_renderer.hpp"
#include "probe_report/sweep.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::probe_report {

struct probe_options {
  /// Tiers, rounds, timeouts and CA file; `sweep.modules` is left empty here (see modules_file).
  /// Default upstreams: serve's default list.
  sweep_options sweep;
  /// Default: none, which means default_module_targets().
  std::optional<std::string> modules_file;
  output_format format = output_format::table;  ///< Default: table
  bool help = false;                            ///< --help was given; nothing else is checked
};

/// Parses the arguments after "probe". Flags take a value as `--flag VALUE` or `--flag=VALUE`.
/// Fails with errc::invalid_request and a one-line detail (starting "gomodproxy probe: ") for an
/// unknown flag, a missing or bad value, or a positional argument.
[[nodiscard]] outcome_of<probe_options> parse_probe_flags(const std::vector<std::string>& args);

/// A GOPROXY-syntax list read for probing: every entry is kept, including those after "direct" or
/// "off" (which end a walk, not a comparison), each validated as parse_upstream_list does; a
/// repeated URL is kept once. Fails with errc::invalid_request and the one-line reason for a bad
/// entry or an empty list.
[[nodiscard]] outcome_of<std::vector<upstream::tier_spec>> parse_probe_upstreams(
    std::string_view list);

/// Text for `gomodproxy probe --help`.
std::string probe_usage_text();

}  // namespace gomodproxy::probe_report
