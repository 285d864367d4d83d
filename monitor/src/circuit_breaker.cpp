#include "monitor/circuit_breaker.hpp"

#include <utility>

namespace gomodproxy::monitor {

circuit_breaker::circuit_breaker(breaker_options options, steady_clock_fn now)
    : options_(options), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
}

bool circuit_breaker::allow() {
  auto now = now_();
  std::lock_guard lock(mutex_);
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now - opened_at_ < options_.open_retry_after) return false;
      state_ = breaker_state::half_open;
      trial_out_ = false;
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

void circuit_breaker::record_success() {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
  // A late success from a request sent before the breaker opened says little about now; only
  // half_open (a trial, or a request while probing said the tier is back) closes it.
  if (state_ == breaker_state::half_open) {
    state_ = breaker_state::closed;
    trial_out_ = false;
  }
}

void circuit_breaker::record_failure() {
  auto now = now_();
  std::lock_guard lock(mutex_);
  fail_locked(now);
}

void circuit_breaker::record_probe(bool success) {
  auto now = now_();
  std::lock_guard lock(mutex_);
  if (!success) {
    fail_locked(now);
    return;
  }
  consecutive_failures_ = 0;
  if (state_ == breaker_state::open) {
    state_ = breaker_state::half_open;
    trial_out_ = false;
  }
}

breaker_state circuit_breaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

bool circuit_breaker::up() const { return state() != breaker_state::open; }

void circuit_breaker::fail_locked(steady_time now) {
  switch (state_) {
    case breaker_state::closed:
      ++consecutive_failures_;
      if (options_.failures_to_open > 0 && consecutive_failures_ >= options_.failures_to_open) {
        open_locked(now);
      }
      return;
    case breaker_state::half_open:
      open_locked(now);
      return;
    case breaker_state::open:
      // Fresh evidence that the tier is down postpones the next trial request.
      opened_at_ = now;
      return;
  }
}

void circuit_breaker::open_locked(steady_time now) {
  state_ = breaker_state::open;
  opened_at_ = now;
  trial_out_ = false;
}

}  // namespace gomodproxy::monitor
