// Health state of one upstream tier: a circuit breaker fed by real requests and active probes,
// so a dead tier stops costing a timeout per request.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>

namespace gomodproxy::monitor {

using steady_time = std::chrono::steady_clock::time_point;
/// Returns the current steady time; tests pass a fake clock.
using steady_clock_fn = std::function<steady_time()>;

struct breaker_options {
  /// Consecutive failures (errors and timeouts; a not-found answer is a success: the tier
  /// answered) that open the breaker. 0 never opens it. Default: 3
  int failures_to_open = 3;
  /// An open breaker lets one trial request through when it has been open this long without
  /// a failed probe, so a tier is never skipped forever when probing is off. Also the time after
  /// which an unreported trial no longer blocks the next one. Default: 30 s
  std::chrono::milliseconds open_retry_after{30000};
};

enum class breaker_state {
  closed,     ///< requests go through
  open,       ///< requests skip the tier
  half_open,  ///< one trial request at a time goes through; its result closes or re-opens
};

/// Thread-safe (one small mutex, never held across a suspension point).
///
///   closed --failures_to_open consecutive failures--> open
///   open --probe success, or open_retry_after passed at allow()--> half_open
///   half_open --success--> closed;  half_open --failure (request or probe)--> open
class circuit_breaker final {
 public:
  explicit circuit_breaker(breaker_options options, steady_clock_fn now = {});

  /// Whether a request may use the tier now. In half_open this claims the single trial: the
  /// caller must report the attempt with record_success() or record_failure().
  [[nodiscard]] bool allow();
  /// A request got an answer from the tier (ok or not found).
  void record_success();
  /// A request to the tier failed (transport error, timeout, unusable status).
  void record_failure();
  /// An active probe's result. A success moves open to half_open and clears the failure count;
  /// a failure counts like a request failure and keeps an open breaker from trial requests
  /// for another open_retry_after.
  void record_probe(bool success);

  breaker_state state() const;
  /// False only while open: the value of gomodproxy_upstream_up.
  bool up() const;

 private:
  void open_locked(steady_time now);
  void fail_locked(steady_time now);

  breaker_options options_;
  steady_clock_fn now_;
  mutable std::mutex mutex_;
  breaker_state state_ = breaker_state::closed;
  int consecutive_failures_ = 0;
  steady_time opened_at_{};
  bool trial_out_ = false;
  steady_time trial_started_{};
};

}  // namespace gomodproxy::monitor
