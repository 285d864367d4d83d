// The network part of a probe: asks every upstream for each module's list, .info, .mod and .zip,
// round after round, and records what happened. Asio and the HTTP client stay in the .cpp.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "probe_report/module_list.hpp"
#include "probe_report/probe_run.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::probe_report {

struct sweep_options {
  std::vector<upstream::tier_spec> tiers;  ///< probed in this order; direct/off are skipped
  std::vector<module_target> modules;
  int rounds = 1;                                 ///< Default: 1
  std::chrono::milliseconds timeout{10000};       ///< per request, whole exchange. Default: 10 s
  std::chrono::milliseconds zip_timeout{300000};  ///< per .zip, body included. Default: 5 min
  std::string ca_file;                            ///< extra CA bundle; system CAs always load
};

/// Receives one line (without newline) per upstream and module step.
using progress_sink = std::function<void(std::string_view line)>;

/// Runs the sweep on the calling thread and returns what it observed. The order is round, then
/// module, then upstream, so every upstream is asked about a module at nearly the same moment.
/// Requests go one at a time; a zip body is counted and discarded as it streams. Network
/// failures are observations, not errors; throws only when the client cannot be set up (for
/// example, an unreadable CA file).
probe_run run_sweep(const sweep_options& options, const progress_sink& progress);

}  // namespace gomodproxy::probe_report
