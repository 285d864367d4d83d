// Summary statistics of probe timings: mean and nearest-rank percentiles, in milliseconds.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace gomodproxy::probe_report {

/// Mean, p50 and p95 of a set of durations; every figure is nullopt when there were no samples.
struct timing_summary {
  std::size_t samples = 0;
  std::optional<double> mean_ms;
  std::optional<double> p50_ms;
  std::optional<double> p95_ms;
};

/// Nearest-rank percentile of `sorted` (ascending): the smallest value such that at least
/// `percent`% of the samples are at or below it, i.e. element ceil(percent/100 * n) counting
/// from 1 (the first element for percent 0). nullopt when `sorted` is empty. `percent` must be
/// in [0, 100].
std::optional<std::chrono::microseconds> nearest_rank(
    const std::vector<std::chrono::microseconds>& sorted, double percent);

/// Mean, p50 and p95 of `durations`, in any order.
timing_summary summarize_timings(std::vector<std::chrono::microseconds> durations);

}  // namespace gomodproxy::probe_report
