#include "monitor/tier_health.hpp"

#include <algorithm>

namespace gomodproxy::monitor {

tier_health::tier_health(std::vector<std::string> tiers, breaker_options options,
                         steady_clock_fn now)
    : tiers_(std::move(tiers)) {
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
  return tier >= breakers_.size() || breakers_[tier]->allow();
}

void tier_health::record_success(std::size_t tier) {
  if (tier < breakers_.size()) breakers_[tier]->record_success();
}

void tier_health::record_failure(std::size_t tier) {
  if (tier < breakers_.size()) breakers_[tier]->record_failure();
}

void tier_health::record_probe(std::size_t tier, bool success) {
  if (tier < breakers_.size()) breakers_[tier]->record_probe(success);
}

breaker_state tier_health::state(std::size_t tier) const {
  return tier < breakers_.size() ? breakers_[tier]->state() : breaker_state::closed;
}

bool tier_health::up(std::size_t tier) const {
  return tier >= breakers_.size() || breakers_[tier]->up();
}

}  // namespace gomodproxy::monitor
