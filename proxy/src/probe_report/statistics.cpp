#include "probe_report/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace gomodproxy::probe_report {

namespace {

double to_ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }

}  // namespace

std::optional<std::chrono::microseconds> nearest_rank(
    const std::vector<std::chrono::microseconds>& sorted, double percent) {
  if (sorted.empty()) return std::nullopt;
  // Integer arithmetic on hundredths of a percent keeps ceil() exact: 95% of 20 is rank 19, not
  // the 20 that 0.95 * 20 in floating point could round up to.
  const auto hundredths = static_cast<std::size_t>(std::llround(percent * 100.0));
  const std::size_t n = sorted.size();
  std::size_t rank = (hundredths * n + 9999) / 10000;
  rank = std::clamp<std::size_t>(rank, 1, n);
  return sorted[rank - 1];
}

timing_summary summarize_timings(std::vector<std::chrono::microseconds> durations) {
  timing_summary summary;
  summary.samples = durations.size();
  if (durations.empty()) return summary;
  std::sort(durations.begin(), durations.end());
  const auto total =
      std::accumulate(durations.begin(), durations.end(), std::chrono::microseconds{0});
  summary.mean_ms = to_ms(total) / static_cast<double>(durations.size());
  summary.p50_ms = to_ms(*nearest_rank(durations, 50));
  summary.p95_ms = to_ms(*nearest_rank(durations, 95));
  return summary;
}

}  // namespace gomodproxy::probe_report
