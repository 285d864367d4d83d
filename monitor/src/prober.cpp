#include "monitor/prober.hpp"

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

struct prober::state : std::enable_shared_from_this<state> {
  state(net::any_io_executor executor, std::chrono::milliseconds interval,
        std::vector<probe_target> targets, probe_fetch fetch, tier_health& health, metrics& metrics)
      : strand(net::make_strand(std::move(executor))),
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
  std::vector<std::unique_ptr<net::steady_timer>> timers;

  // One loop per tier, so a tier that hangs until its deadline delays nobody else's probes.
  net::awaitable<void> run_tier(std::vector<const probe_target*> tier_targets,
                                net::steady_timer& timer) {
    auto self = shared_from_this();
    // The first round waits one interval too: a breaker starts closed, so there is nothing to
    // learn at start-up that the first real requests would not tell, and a freshly started
    // server asks its upstreams nothing it was not asked.
    for (;;) {
      timer.expires_after(interval);
      (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      if (stopping) co_return;
      for (const auto* target : tier_targets) {
        if (stopping) co_return;
        auto started_at = std::chrono::steady_clock::now();
        probe_answer answer = co_await fetch(target->url);
        auto total = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started_at);
        if (stopping) co_return;
        health.record_probe(target->tier, answer.answered);
        metrics.count_probe(target->tier, answer.answered,
                            answer.answered ? answer.ttfb : std::nullopt, total);
        if (!answer.answered)
          metrics.note_probe_problem(target->tier, answer.reason, answer.status);
        spdlog::debug("probe {}: {} (ttfb {} us, total {} us)", target->url, answer.reason,
                      answer.ttfb ? answer.ttfb->count() : -1, total.count());
      }
    }
  }
};

prober::prober(net::any_io_executor executor, std::chrono::milliseconds interval,
               std::vector<probe_target> targets, probe_fetch fetch, tier_health& health,
               metrics& metrics)
    : state_(std::make_shared<state>(std::move(executor), interval, std::move(targets),
                                     std::move(fetch), health, metrics)) {}

prober::~prober() { stop(); }

void prober::start() {
  if (state_->interval.count() <= 0 || state_->targets.empty()) return;
  net::post(state_->strand, [self = state_] {
    if (self->started || self->stopping) return;
    self->started = true;
    std::map<std::size_t, std::vector<const probe_target*>> by_tier;
    for (const auto& target : self->targets) by_tier[target.tier].push_back(&target);
    for (auto& [tier, tier_targets] : by_tier) {
      self->timers.push_back(std::make_unique<net::steady_timer>(self->strand));
      net::co_spawn(self->strand, self->run_tier(std::move(tier_targets), *self->timers.back()),
                    [tier = tier](std::exception_ptr thrown) {
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

void prober::stop() {
  net::post(state_->strand, [self = state_] {
    self->stopping = true;
    for (auto& timer : self->timers) timer->cancel();
  });
}

}  // namespace gomodproxy::monitor
