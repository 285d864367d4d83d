#include "monitor/tier_health.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace gomodproxy::monitor {
namespace {

std::string_view state_name(breaker_state state) {
  switch (state) {
    case breaker_state::closed:
      return "up";
    case breaker_state::open:
      return "down";
    case breaker_state::half_open:
      return "on trial";
  }
  return "?";
}

}  // namespace

std::chrono::milliseconds stall_limit_for(std::span<const std::chrono::microseconds> recent_ttfbs,
                                          const stall_options& options) {
  if (recent_ttfbs.empty()) return options.min;
  std::vector<std::chrono::microseconds> sorted(recent_ttfbs.begin(), recent_ttfbs.end());
  std::sort(sorted.begin(), sorted.end());
  // The 80th percentile, not the maximum: one odd slow answer should not blunt the limit for
  // the next sixteen requests.
  const auto p80 = sorted[(sorted.size() - 1) * 4 / 5];
  const auto twice = std::chrono::ceil<std::chrono::milliseconds>(2 * p80);
  return std::clamp(twice, options.min, std::max(options.min, options.max));
}

tier_health::tier_health(std::vector<std::string> tiers, breaker_options options,
                         const steady_clock_fn& now, stall_options stalls)
    : tiers_(std::move(tiers)), stalls_(stalls), ttfbs_(tiers_.size()) {
  breakers_.reserve(tiers_.size());
  for (std::size_t i = 0; i < tiers_.size(); ++i) {
    breakers_.push_back(std::make_unique<circuit_breaker>(options, now));
  }
}

std::optional<std::size_t> tier_health::tier_index(std::string_view name) const {
  auto it = std::find(tiers_.begin(), tiers_.end(), name);
  if (it == tiers_.end()) return std::nullopt;
  return static_cast<std::size_t>(it - tiers_.begin());
}

bool tier_health::allow(std::size_t tier) {
  if (tier >= breakers_.size()) return true;
  circuit_breaker::transition moved;
  const bool allowed = breakers_[tier]->allow(&moved);
  log(tier, moved);
  return allowed;
}

void tier_health::record_success(std::size_t tier, bool after_stall) {
  if (tier < breakers_.size()) log(tier, breakers_[tier]->record_success(after_stall));
}

void tier_health::record_failure(std::size_t tier, std::string_view reason) {
  if (tier < breakers_.size()) log(tier, breakers_[tier]->record_failure(reason));
}

void tier_health::record_stall(std::size_t tier) {
  if (tier >= breakers_.size()) return;
  const auto limit = stall_limit(tier);
  log(tier, breakers_[tier]->record_stall("no answer after " + std::to_string(limit.count()) +
                                          "ms (stalled)"));
  stall_listener listener;
  {
    std::lock_guard lock(listener_mutex_);
    listener = stall_listener_;
  }
  if (listener) listener(tier);
}

void tier_health::set_stall_listener(stall_listener listener) {
  std::lock_guard lock(listener_mutex_);
  stall_listener_ = std::move(listener);
}

void tier_health::record_probe(std::size_t tier, bool success, std::string_view reason) {
  if (tier < breakers_.size()) log(tier, breakers_[tier]->record_probe(success, reason));
}

void tier_health::record_ttfb(std::size_t tier, std::chrono::microseconds ttfb) {
  if (tier >= ttfbs_.size()) return;
  std::lock_guard lock(ttfb_mutex_);
  auto& ring = ttfbs_[tier];
  if (ring.samples.size() < ttfb_window) {
    ring.samples.push_back(ttfb);
  } else {
    ring.samples[ring.next] = ttfb;
  }
  ring.next = (ring.next + 1) % ttfb_window;
}

std::chrono::milliseconds tier_health::stall_limit(std::size_t tier) const {
  if (tier >= ttfbs_.size()) return stall_limit_for({}, stalls_);
  std::lock_guard lock(ttfb_mutex_);
  return stall_limit_for(ttfbs_[tier].samples, stalls_);
}

breaker_state tier_health::state(std::size_t tier) const {
  return tier < breakers_.size() ? breakers_[tier]->state() : breaker_state::closed;
}

bool tier_health::up(std::size_t tier) const {
  return tier >= breakers_.size() || breakers_[tier]->up();
}

void tier_health::log(std::size_t tier, const circuit_breaker::transition& moved) const {
  if (!moved) return;
  // One line per transition; the reasons are the upstream client's own short words or a
  // status number, never an upstream's body or a module path.
  if (moved->to == breaker_state::open) {
    spdlog::warn("upstream {} is {} (breaker open, was {}): {}", tiers_[tier],
                 state_name(moved->to), state_name(moved->from), moved->why);
  } else {
    spdlog::info("upstream {} is {} (breaker {}, was {}): {}", tiers_[tier], state_name(moved->to),
                 moved->to == breaker_state::closed ? "closed" : "half-open",
                 state_name(moved->from), moved->why);
  }
}

}  // namespace gomodproxy::monitor
