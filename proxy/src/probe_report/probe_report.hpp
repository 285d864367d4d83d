// The figures a probe reports per upstream, computed from what it observed: success and hit
// rates, TTFB statistics, zip transfer figures and sync lag against the freshest upstream.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe_report/probe_run.hpp"
#include "probe_report/statistics.hpp"

namespace gomodproxy::probe_report {

struct kind_summary {
  std::size_t requests = 0;
  std::size_t answered = 0;
  timing_summary ttfb;
};

struct failure_count {
  std::string reason;
  std::size_t count = 0;
};

/// Versions that the freshest upstream lists for a module but this one does not. Per module the
/// freshest upstream is the one whose lists (over all rounds) named the most versions, the
/// earliest in --upstreams on a tie. Only modules whose list this upstream answered (200 or
/// 404/410) in some round are compared; a module it does not have lags by every version the
/// freshest one lists.
struct sync_lag {
  std::size_t compared_modules = 0;
  std::vector<std::string> missing;  ///< "module@version", in module-file then semver order
};

struct upstream_summary {
  std::string name;
  std::string url;
  std::optional<std::string> skipped;  ///< set for direct/off: every figure below is empty

  std::size_t requests = 0;
  std::size_t answered = 0;            ///< 200, 404 or 410
  std::optional<double> success_rate;  ///< answered / requests; nullopt with no requests

  std::size_t lookups = 0;  ///< modules x rounds
  std::size_t hits = 0;     ///< lookups where the list had a version, or a pinned .info was 200
  std::optional<double> hit_rate;  ///< hits / lookups; nullopt with no lookups

  timing_summary ttfb;                  ///< over every request that received response headers
  std::array<kind_summary, 4> by_kind;  ///< indexed by request_kind

  std::size_t zips = 0;  ///< zip requests answered 200 with the whole body read
  std::uint64_t zip_bytes = 0;
  timing_summary zip_time;  ///< request start until the last body byte, of those zips
  std::optional<double> zip_bytes_per_second;  ///< zip_bytes over the summed zip_time

  sync_lag lag;
  std::vector<failure_count> failures;  ///< most frequent first, at most three reasons
};

struct probe_report {
  std::size_t modules = 0;
  int rounds = 1;
  std::chrono::milliseconds timeout{0};
  std::vector<upstream_summary> upstreams;  ///< in --upstreams order, skipped entries included
};

/// Computes every figure from `run`.
probe_report summarize(const probe_run& run);

}  // namespace gomodproxy::probe_report
