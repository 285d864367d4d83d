// Health state of one upstream tier: a circuit breaker fed by real requests and active probes,
// so a dead tier stops costing a timeout per request.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

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

/// A change of state, for the log: what it was, what it is, and why in a few words.
struct breaker_transition {
  breaker_state from;
  breaker_state to;
  std::string why;
};

/// Thread-safe (one small mutex, never held across a suspension point). Every record_ and
/// allow() call returns the transition it caused, if any, so each one is logged exactly once.
///
///   closed --failures_to_open consecutive failures--> open
///   closed --a request failed or stalled, then a probe failed--> open
///   open --probe success, open_retry_after passed at allow(), or a stalled request answered-->
///        half_open
///   half_open --success--> closed;  half_open --failure (request or probe)--> open
class circuit_breaker final {
 public:
  using transition = std::optional<breaker_transition>;

  explicit circuit_breaker(breaker_options options, steady_clock_fn now = {});

  /// Whether a request may use the tier now. In half_open this claims the single trial: the
  /// caller must report the attempt with record_success() or record_failure(). `moved` gets the
  /// open to half_open transition when the retry-after trial is what let the request through.
  [[nodiscard]] bool allow(transition* moved = nullptr);
  /// A request got an answer from the tier (ok or not found). `after_stall`: the same request
  /// was reported stalled first; its answer shows the tier is slow rather than down, so an open
  /// breaker goes to half_open as after a probe success.
  transition record_success(bool after_stall = false);
  /// A request to the tier failed (transport error, timeout, unusable status).
  transition record_failure(std::string_view reason = "request failed");
  /// A request has waited longer than the tier usually takes without an answer starting. Counts
  /// as one failure now (the request's own end later must not be reported again as a failure)
  /// and makes the next failed probe decisive.
  transition record_stall(std::string_view reason);
  /// An active probe's result. A success moves open to half_open and clears the failure count.
  /// A failure opens the breaker at once when the tier's last request failed or stalled (two
  /// witnesses agree); otherwise it counts like a request failure. Either way it keeps an open
  /// breaker from trial requests for another open_retry_after.
  transition record_probe(bool success, std::string_view reason = {});

  breaker_state state() const;
  /// False only while open: the value of gomodproxy_upstream_up.
  bool up() const;

 private:
  transition open_locked(steady_time now, std::string why);
  transition fail_locked(steady_time now, std::string_view reason);
  transition half_open_locked(std::string why);

  breaker_options options_;
  steady_clock_fn now_;
  mutable std::mutex mutex_;
  breaker_state state_ = breaker_state::closed;
  int consecutive_failures_ = 0;
  /// The last request (not probe) that reported failed or stalled; cleared by an answer.
  bool last_request_failed_ = false;
  steady_time opened_at_{};
  bool trial_out_ = false;
  steady_time trial_started_{};
};

}  // namespace gomodproxy::monitor
