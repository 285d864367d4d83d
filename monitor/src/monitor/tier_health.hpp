// Health of every monitored upstream tier: one circuit breaker per tier name, indexed like the
// metrics' tiers, read by the resolver before each attempt and fed by attempts and probes; and
// each tier's stall limit, learnt from its recent times to first byte.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/circuit_breaker.hpp"

namespace gomodproxy::monitor {

struct stall_options {
  /// The stall limit of a tier that has not answered yet, and the least any tier gets.
  /// Default: 1 s
  std::chrono::milliseconds min{1000};
  /// The most any tier gets, so a tier that was slow and then hangs is still found. Default: 8 s
  std::chrono::milliseconds max{8000};
};

/// How long a request to a tier may wait for its answer to start before it counts as stalled:
/// twice the 80th percentile of `recent_ttfbs` (the tier's last times to first byte), within
/// [options.min, options.max]; options.min when there is none. Pure, for tests.
std::chrono::milliseconds stall_limit_for(std::span<const std::chrono::microseconds> recent_ttfbs,
                                          const stall_options& options);

/// Thread-safe. Tier indexes are positions in the `tiers` given to the constructor; an index
/// out of range is always allowed and otherwise ignored. Breaker transitions are logged here,
/// once each, naming the tier and the reason (which must name no module).
class tier_health final {
 public:
  /// Called with a tier's index when a request to it stalled: the prober probes it at once.
  using stall_listener = std::function<void(std::size_t tier)>;
  /// How many recent times to first byte each tier keeps.
  static constexpr std::size_t ttfb_window = 16;

  tier_health(std::vector<std::string> tiers, breaker_options options,
              const steady_clock_fn& now = {}, stall_options stalls = {});

  const std::vector<std::string>& tiers() const { return tiers_; }
  std::optional<std::size_t> tier_index(std::string_view name) const;

  /// See circuit_breaker::allow(): true claims a trial in half_open, so report the attempt.
  [[nodiscard]] bool allow(std::size_t tier);
  void record_success(std::size_t tier, bool after_stall = false);
  void record_failure(std::size_t tier, std::string_view reason = "request failed");
  /// A request to `tier` has not started answering in stall_limit(tier) (no body bytes, nor a
  /// whole not-found or error answer): one failure for the breaker, and the stall listener is
  /// told.
  void record_stall(std::size_t tier);
  void record_probe(std::size_t tier, bool success, std::string_view reason = {});
  /// A response's headers arrived after `ttfb` (requests and probes alike).
  void record_ttfb(std::size_t tier, std::chrono::microseconds ttfb);
  /// The tier's current stall limit (stall_limit_for its recent times to first byte).
  std::chrono::milliseconds stall_limit(std::size_t tier) const;
  const stall_options& stalls() const { return stalls_; }
  void set_stall_listener(stall_listener listener);
  breaker_state state(std::size_t tier) const;
  bool up(std::size_t tier) const;

 private:
  void log(std::size_t tier, const circuit_breaker::transition& moved) const;

  struct ttfb_ring {
    std::vector<std::chrono::microseconds> samples;  ///< at most ttfb_window
    std::size_t next = 0;
  };

  std::vector<std::string> tiers_;
  std::vector<std::unique_ptr<circuit_breaker>> breakers_;
  stall_options stalls_;
  mutable std::mutex listener_mutex_;
  stall_listener stall_listener_;  ///< guarded by listener_mutex_
  mutable std::mutex ttfb_mutex_;
  std::vector<ttfb_ring> ttfbs_;  ///< guarded by ttfb_mutex_
};

}  // namespace gomodproxy::monitor
