#include "monitor/health_prober.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

namespace gomodproxy::monitor {
namespace net = boost::asio;

struct health_prober::state : std::enable_shared_from_this<state> {
  state(const net::any_io_executor& executor, std::chrono::milliseconds interval,
        std::vector<probe_target> targets, probe_fetch fetch, tier_health& health, metrics& metrics)
      : strand(net::make_strand(executor)),
        interval(interval),
        targets(std::move(targets)),
        fetch(std::move(fetch)),
        health(health),
        metrics(metrics) {}

  net::strand<net::any_io_executor> strand;
  std::chrono::milliseconds interval;
  std::vector<probe_target> targets;
  probe_fetch fetch;
  tier_health& health;
  monitor::metrics& metrics;
  // Touched on the strand only.
  bool started = false;
  bool stopping = false;
  std::map<std::size_t, std::unique_ptr<net::steady_timer>> timers;  ///< by tier
  std::map<std::size_t, bool> stall_reported;                        ///< by tier
  std::map<std::size_t, bool> last_round_failed;                     ///< by tier

  // The first re-probe of a tier found down waits a little longer than a stall limit's least
  // value, so a slow tier's late answer can teach its pace before it is probed again.
  static constexpr std::chrono::milliseconds first_down_wait{2000};

  // One loop per tier, so a tier that hangs until its deadline delays nobody else's probes.
  net::awaitable<void> run_tier(std::size_t tier, std::vector<const probe_target*> tier_targets,
                                net::steady_timer& timer) {
    auto self = shared_from_this();
    // The first round waits one interval too: a breaker starts closed, so there is nothing to
    // learn at start-up that the first real requests would not tell, and a freshly started
    // server asks its upstreams nothing it was not asked.
    auto down_wait = first_down_wait;
    for (;;) {
      std::chrono::milliseconds wait = interval;
      if (!health.up(tier)) {
        wait = std::min(down_wait, interval);
        down_wait = std::min(down_wait * 2, interval);
      } else {
        down_wait = first_down_wait;
      }
      if (!stall_reported[tier]) {
        timer.expires_after(wait);
        (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      }
      stall_reported[tier] = false;
      if (stopping) co_return;
      bool round_failed = false;
      std::string failure_reason;
      for (const auto* target : tier_targets) {
        if (stopping) co_return;
        auto started_at = std::chrono::steady_clock::now();
        probe_answer answer = co_await fetch(target->url, health.stall_limit(tier));
        auto total = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started_at);
        if (stopping) co_return;
        if (answer.ttfb) health.record_ttfb(tier, *answer.ttfb);
        // The log and the breaker get a status number, not the upstream's words.
        std::string reason =
            answer.status != 0 ? "status " + std::to_string(answer.status) : answer.reason;
        health.record_probe(target->tier, answer.answered, reason);
        metrics.count_probe(target->tier, answer.answered,
                            answer.answered ? answer.ttfb : std::nullopt, total);
        if (!answer.answered) {
          metrics.note_probe_problem(target->tier, answer.reason, answer.status);
          if (!round_failed) failure_reason = reason;
          round_failed = true;
        }
        spdlog::debug("probe {}: {} (ttfb {} us, total {} us)", target->shown, answer.reason,
                      answer.ttfb ? answer.ttfb->count() : -1, total.count());
      }
      auto& failed_before = last_round_failed[tier];
      if (round_failed && !failed_before) {
        spdlog::warn("probe of upstream {} failed: {}", health.tiers()[tier], failure_reason);
      } else if (!round_failed && failed_before) {
        spdlog::info("probe of upstream {} answered again", health.tiers()[tier]);
      }
      failed_before = round_failed;
    }
  }

  void stalled(std::size_t tier) {
    net::post(strand, [self = shared_from_this(), tier] {
      if (self->stopping) return;
      auto timer = self->timers.find(tier);
      if (timer == self->timers.end()) return;  // the tier is not probed
      self->stall_reported[tier] = true;
      timer->second->cancel();
    });
  }
};

health_prober::health_prober(const net::any_io_executor& executor,
                             std::chrono::milliseconds interval, std::vector<probe_target> targets,
                             probe_fetch fetch, tier_health& health, metrics& metrics)
    : state_(std::make_shared<state>(executor, interval, std::move(targets), std::move(fetch),
                                     health, metrics)) {}

// stop() can only throw std::bad_alloc, from posting; the destructor is noexcept, so running out of
// memory there ends the process, which is fine.
// NOLINTNEXTLINE(bugprone-exception-escape)
health_prober::~health_prober() { stop(); }

void health_prober::start() {
  if (state_->interval.count() <= 0 || state_->targets.empty()) return;
  state_->health.set_stall_listener([weak = std::weak_ptr<state>(state_)](std::size_t tier) {
    if (auto self = weak.lock()) self->stalled(tier);
  });
  net::post(state_->strand, [self = state_] {
    if (self->started || self->stopping) return;
    self->started = true;
    std::map<std::size_t, std::vector<const probe_target*>> by_tier;
    for (const auto& target : self->targets) by_tier[target.tier].push_back(&target);
    for (auto& [tier, tier_targets] : by_tier) {
      auto& timer = self->timers[tier];
      timer = std::make_unique<net::steady_timer>(self->strand);
      net::co_spawn(self->strand, self->run_tier(tier, std::move(tier_targets), *timer),
                    [tier = tier](const std::exception_ptr& thrown) {
                      // A probe loop that ends by an exception leaves its tier unprobed: say so.
                      if (!thrown) return;
                      try {
                        std::rethrow_exception(thrown);
                      } catch (const std::exception& error) {
                        spdlog::error("probe loop of tier {} failed: {}", tier, error.what());
                      } catch (...) {
                        spdlog::error("probe loop of tier {} failed", tier);
                      }
                    });
    }
  });
}

void health_prober::stop() {
  net::post(state_->strand, [self = state_] {
    self->stopping = true;
    for (auto& [tier, timer] : self->timers) timer->cancel();
  });
}

}  // namespace gomodproxy::monitor
