#include "monitor/circuit_breaker.hpp"

#include <utility>

namespace gomodproxy::monitor {

circuit_breaker::circuit_breaker(breaker_options options, steady_clock_fn now)
    : options_(options), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
}

bool circuit_breaker::allow(transition* moved) {
  auto now = now_();
  std::lock_guard lock(mutex_);
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now - opened_at_ < options_.open_retry_after) return false;
      if (auto changed = half_open_locked("retry-after passed: one trial request");
          changed && moved) {
        *moved = std::move(changed);
      }
      break;
    case breaker_state::half_open:
      break;
  }
  // A trial whose result never came back (its fill was abandoned) must not block the tier.
  if (trial_out_ && now - trial_started_ < options_.open_retry_after) return false;
  trial_out_ = true;
  trial_started_ = now;
  return true;
}

circuit_breaker::transition circuit_breaker::record_success(bool after_stall) {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
  last_request_failed_ = false;
  // A late success from a request sent before the breaker opened says little about now; only
  // half_open (a trial, or a request while probing said the tier is back) closes it. A stalled
  // request that answered in the end is the exception: its stall is what opened the breaker.
  if (state_ == breaker_state::open && after_stall) {
    return half_open_locked("a stalled request was answered in the end: the tier is slow");
  }
  if (state_ == breaker_state::half_open) {
    state_ = breaker_state::closed;
    trial_out_ = false;
    return breaker_transition{breaker_state::half_open, breaker_state::closed,
                              "a request was answered"};
  }
  return std::nullopt;
}

circuit_breaker::transition circuit_breaker::record_failure(std::string_view reason) {
  auto now = now_();
  std::lock_guard lock(mutex_);
  last_request_failed_ = true;
  return fail_locked(now, reason);
}

circuit_breaker::transition circuit_breaker::record_stall(std::string_view reason) {
  return record_failure(reason);
}

circuit_breaker::transition circuit_breaker::record_probe(bool success, std::string_view reason) {
  auto now = now_();
  std::lock_guard lock(mutex_);
  if (!success) {
    if (state_ == breaker_state::closed && last_request_failed_ && options_.failures_to_open > 0) {
      return open_locked(
          now, "a request failed or stalled and a probe failed too: " + std::string(reason));
    }
    return fail_locked(now, std::string("probe failed: ") + std::string(reason));
  }
  consecutive_failures_ = 0;
  if (state_ == breaker_state::open) return half_open_locked("a probe was answered");
  return std::nullopt;
}

breaker_state circuit_breaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

bool circuit_breaker::up() const { return state() != breaker_state::open; }

circuit_breaker::transition circuit_breaker::fail_locked(steady_time now, std::string_view reason) {
  switch (state_) {
    case breaker_state::closed:
      ++consecutive_failures_;
      if (options_.failures_to_open > 0 && consecutive_failures_ >= options_.failures_to_open) {
        return open_locked(now, std::to_string(consecutive_failures_) +
                                    " failures in a row, the last: " + std::string(reason));
      }
      return std::nullopt;
    case breaker_state::half_open:
      return open_locked(now, "trial failed: " + std::string(reason));
    case breaker_state::open:
      // Fresh evidence that the tier is down postpones the next trial request.
      opened_at_ = now;
      return std::nullopt;
  }
  return std::nullopt;
}

circuit_breaker::transition circuit_breaker::open_locked(steady_time now, std::string why) {
  const auto from = state_;
  state_ = breaker_state::open;
  opened_at_ = now;
  trial_out_ = false;
  return breaker_transition{from, breaker_state::open, std::move(why)};
}

circuit_breaker::transition circuit_breaker::half_open_locked(std::string why) {
  state_ = breaker_state::half_open;
  trial_out_ = false;
  return breaker_transition{breaker_state::open, breaker_state::half_open, std::move(why)};
}

}  // namespace gomodproxy::monitor
