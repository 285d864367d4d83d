// Health of every monitored upstream tier: one circuit breaker per tier name, indexed like the
// metrics' tiers, read by the resolver before each attempt and fed by attempts and probes.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/circuit_breaker.hpp"

namespace gomodproxy::monitor {

/// Thread-safe. Tier indexes are positions in the `tiers` given to the constructor; an index
/// out of range is always allowed and otherwise ignored.
class tier_health final {
 public:
  tier_health(std::vector<std::string> tiers, breaker_options options, steady_clock_fn now = {});

  const std::vector<std::string>& tiers() const { return tiers_; }
  std::optional<std::size_t> tier_index(std::string_view name) const;

  /// See circuit_breaker::allow(): true claims a trial in half_open, so report the attempt.
  [[nodiscard]] bool allow(std::size_t tier);
  void record_success(std::size_t tier);
  void record_failure(std::size_t tier);
  void record_probe(std::size_t tier, bool success);
  breaker_state state(std::size_t tier) const;
  bool up(std::size_t tier) const;

 private:
  std::vector<std::string> tiers_;
  std::vector<std::unique_ptr<circuit_breaker>> breakers_;
};

}  // namespace gomodproxy::monitor
