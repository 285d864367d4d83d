// The status board behind /status and /status.json: a bounded, in-memory account of the last
// hour per upstream tier (probe time to first byte, probe and real-traffic outcomes), the cache
// hit rate and the recent upstream problems. It never holds a module path.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/metrics.hpp"

namespace gomodproxy::monitor {

using wall_time = std::chrono::system_clock::time_point;
/// Returns the current wall-clock time; tests pass a fake clock.
using wall_clock_fn = std::function<wall_time()>;

/// One active probe of a tier.
struct probe_sample {
  wall_time at;
  std::optional<std::chrono::microseconds> ttfb;  ///< nullopt: the probe got no usable answer
};

struct tier_status {
  std::string name;
  bool up = true;        ///< false while the tier's circuit breaker skips it
  bool slowest = false;  ///< the up tier answering slowest right now (see status_board::report)
  /// What "slowest" compares: the median of the last five probe answers, or without any the
  /// last real-traffic time to first byte.
  std::optional<std::chrono::microseconds> recent_ttfb;
  std::vector<probe_sample> probes;  ///< the last hour's probes, oldest first
  std::uint64_t probe_successes = 0;
  std::uint64_t probe_failures = 0;
  /// probe_successes / all probes of the hour; nullopt without probes.
  std::optional<double> probe_success_rate;
  /// The last probe's time to first byte; nullopt when it failed or there was none.
  std::optional<std::chrono::microseconds> probe_ttfb_now;
  std::optional<std::chrono::microseconds> probe_ttfb_median;  ///< over the last hour's answers
  std::optional<std::chrono::microseconds> probe_ttfb_max;
  /// Real-traffic attempts of the traffic window by outcome (index: upstream_outcome).
  std::array<std::uint64_t, upstream_outcome_count> attempts{};
  std::uint64_t tried = 0;  ///< attempts that were not skipped
  /// (ok + not_found) / attempts that were not skipped; nullopt without such attempts.
  std::optional<double> success_rate;
  /// ok / (ok + not_found): how often the tier had what it was asked for.
  std::optional<double> hit_rate;
  /// Time to first byte of the last real-traffic attempt that got response headers.
  std::optional<std::chrono::microseconds> last_traffic_ttfb;
};

struct cache_status {
  cache_figures figures;
  /// Lookups of the traffic window by result (index: cache_result).
  std::array<std::uint64_t, cache_result_count> lookups{};
  /// hits / (hits + misses + stale); nullopt without lookups.
  std::optional<double> hit_rate;
};

/// A problem seen with a tier; repeats of the same tier, kind and reason are folded into one.
struct recent_problem {
  wall_time first_at;
  wall_time last_at;
  std::uint64_t count = 1;
  std::string tier;
  std::string kind;    ///< a request kind label ("mod", "zip", ...) or "probe"
  std::string reason;  ///< one line, at most status_board::max_reason_bytes
};

struct status_report {
  wall_time generated_at;
  /// What the traffic figures (attempts, cache lookups) cover: about an hour once the server
  /// has run that long, less before; longer only when nothing looked for a long time.
  std::chrono::seconds traffic_window{0};
  std::vector<tier_status> tiers;
  cache_status cache;
  std::vector<recent_problem> problems;  ///< newest first
  /// The server answers from its cache only and asks no tier (set by its owner, not the board).
  bool offline = false;
};

/// Thread-safe. Recording traffic (attempts, cache lookups) only bumps atomic counters; probes,
/// problems and report() take one mutex. Memory is bounded: per tier at most max_probe_samples
/// samples, at most max_problems problems, and one counter checkpoint per minute of the window.
/// Tier indexes are positions in the `tiers` given to the constructor; others are ignored.
class status_board final {
 public:
  static constexpr std::chrono::seconds window{3600};
  static constexpr std::size_t max_probe_samples = 3600;
  static constexpr std::size_t max_problems = 50;
  static constexpr std::size_t max_reason_bytes = 200;

  explicit status_board(std::vector<std::string> tiers, wall_clock_fn now = {});
  ~status_board() = default;
  status_board(const status_board&) = delete;
  status_board& operator=(const status_board&) = delete;

  void record_cache_lookup(cache_result result);
  void record_attempt(std::size_t tier, upstream_outcome outcome,
                      std::optional<std::chrono::microseconds> ttfb);
  void record_probe(std::size_t tier, bool success, std::optional<std::chrono::microseconds> ttfb);
  /// `reason` is cut to one line of at most max_reason_bytes; it must not name a module.
  /// A reason that starts with the HTTP `status` it came with ("500: <the upstream's first
  /// body line>", as the upstream client words it) is shown as "status 500" only: an
  /// upstream's own words may quote the module asked for, and /status is public.
  void record_problem(std::size_t tier, std::string_view kind, std::string_view reason,
                      int status = 0);

  /// Everything the page shows as of now. `up` says whether a tier is up (empty: all are).
  /// The slowest tier is the up one with the longest recent_ttfb, when at least two up tiers
  /// have one and a single tier has the longest.
  status_report report(cache_figures cache, const std::function<bool(std::size_t)>& up);

 private:
  using attempt_counts = std::array<std::uint64_t, upstream_outcome_count>;
  using lookup_counts = std::array<std::uint64_t, cache_result_count>;

  struct tier_counters {
    std::array<std::atomic<std::uint64_t>, upstream_outcome_count> attempts{};
    std::atomic<std::int64_t> last_ttfb_us{-1};
  };
  // Cumulative counters at one moment; the traffic window is "now minus a checkpoint".
  struct checkpoint {
    wall_time at;
    std::vector<attempt_counts> attempts;
    lookup_counts lookups{};
  };
  struct problem_entry {
    wall_time first_at;
    wall_time last_at;
    std::uint64_t count = 1;
    std::size_t tier = 0;
    std::string kind;
    std::string reason;
  };

  checkpoint read_counters(wall_time at) const;
  // Returns the checkpoint the window starts from; drops older ones and adds one for `now`
  // when the last is a minute old. Needs mutex_.
  checkpoint checkpoint_locked(wall_time now);
  void trim_probes_locked(std::size_t tier, wall_time now);

  std::vector<std::string> tiers_;
  wall_clock_fn now_;
  std::vector<tier_counters> counters_;
  std::array<std::atomic<std::uint64_t>, cache_result_count> lookups_{};

  std::mutex mutex_;
  std::deque<checkpoint> checkpoints_;
  std::vector<std::deque<probe_sample>> probes_;
  std::deque<problem_entry> problems_;  // newest first
};

}  // namespace gomodproxy::monitor
