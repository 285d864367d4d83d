// The bookkeeping of one walk down a tier chain, hedging included, without any I/O: which tier
// to ask next, when a slow tier earns a hedge, and when the walk is won or lost. The resolver
// drives it from the attempts' events; tests drive it with a fake clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace gomodproxy::resolver {

/// How one tier attempt ended, as far as the walk cares.
enum class attempt_verdict {
  valid,      ///< a body that passed verification: the walk is won
  not_found,  ///< 404/410: always move on
  invalid,    ///< an answer that failed verification: always move on
  failed,     ///< transport error, timeout, bad status: move on only after '|'
};

class tier_walk final {
 public:
  using clock = std::chrono::steady_clock;

  enum class step {
    wait,        ///< other attempts are still running
    start_next,  ///< ask next_candidate()
    won,
    lost,  ///< nothing running and nothing left to ask
  };

  /// `hedge_after` zero: one tier at a time, as GOPROXY walks a list.
  tier_walk(std::size_t tiers, std::chrono::milliseconds hedge_after)
      : tier_walk(std::vector<std::chrono::milliseconds>(tiers, hedge_after)) {}

  /// Each tier's own hedge delay (its stall limit when hedging follows the tiers' observed
  /// times to first byte); zero: that tier is never hedged.
  explicit tier_walk(std::vector<std::chrono::milliseconds> hedge_after)
      : hedge_after_(std::move(hedge_after)),
        started_at_(hedge_after_.size()),
        answering_(hedge_after_.size(), false) {}

  /// The tier to ask next; nullopt when every tier was used or the walk was stopped.
  std::optional<std::size_t> next_candidate() const {
    if (stopped_ || next_ >= started_at_.size()) return std::nullopt;
    return next_;
  }

  /// next_candidate() cannot be asked (off, direct, circuit open); `stop` ends the walk there.
  void skip(bool stop) {
    ++next_;
    if (stop) stopped_ = true;
  }

  /// next_candidate() was asked at `now`.
  void started(clock::time_point now) {
    started_at_[next_] = now;
    running_.push_back(next_);
    ++next_;
  }

  /// `tier` has started answering (its first body bytes arrived): no hedge for it.
  void answering(std::size_t tier) { answering_[tier] = true; }

  step finished(std::size_t tier, attempt_verdict verdict, bool fall_through_on_error) {
    std::erase(running_, tier);
    answering_[tier] = true;
    if (verdict == attempt_verdict::valid) return step::won;
    if (verdict == attempt_verdict::failed && !fall_through_on_error) stopped_ = true;
    if (!running_.empty()) return step::wait;
    return next_candidate() ? step::start_next : step::lost;
  }

  /// When the next tier should be asked alongside the one running, if hedging applies: it is
  /// on, exactly one attempt is running, that one has not started answering, and a tier is left.
  std::optional<clock::time_point> hedge_due() const {
    if (running_.size() != 1 || !next_candidate()) return std::nullopt;
    const std::size_t lone = running_.front();
    if (answering_[lone] || hedge_after_[lone].count() <= 0) return std::nullopt;
    return started_at_[lone] + hedge_after_[lone];
  }

  bool hedge_now(clock::time_point now) const {
    auto due = hedge_due();
    return due && *due <= now;
  }

  std::size_t running() const { return running_.size(); }

 private:
  std::vector<std::chrono::milliseconds> hedge_after_;
  std::vector<clock::time_point> started_at_;
  std::vector<bool> answering_;
  std::vector<std::size_t> running_;
  std::size_t next_ = 0;
  bool stopped_ = false;
};

}  // namespace gomodproxy::resolver
