#include "monitor/health_prober.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/cpp/metrics_text.hpp"

namespace gomodproxy::monitor {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// A fake fetch: answers per URL from a script and counts the calls.
struct scripted_fetch {
  std::mutex mutex;
  std::map<std::string, probe_answer> answers;
  std::map<std::string, int> calls;

  // A member coroutine, not a coroutine lambda: GCC 12 mishandles by-value parameters of
  // coroutine lambdas.
  net::awaitable<probe_answer> answer(std::string url) {
    std::lock_guard lock(mutex);
    ++calls[url];
    co_return answers[url];
  }
  probe_fetch fn() {
    return [this](std::string url, std::chrono::milliseconds) { return answer(std::move(url)); };
  }
  int count(const std::string& url) {
    std::lock_guard lock(mutex);
    return calls[url];
  }
};

using test::value_of;

metrics_layout layout() {
  metrics_layout l;
  l.tiers = {"good", "bad", "idle"};
  l.chains = {{0, 1, 2}};
  return l;
}

TEST(health_prober, probes_every_target_each_interval_and_feeds_health_and_metrics) {
  net::io_context io;
  metrics m(layout());
  tier_health health({"good", "bad", "idle"}, {3, 30s});
  scripted_fetch fetch;
  fetch.answers["http://good/a/@v/list"] = {true, 200, 1500us, "200"};
  fetch.answers["http://good/b/@v/list"] = {true, 404, 2500us, "404"};
  fetch.answers["http://bad/a/@v/list"] = {false, 0, std::nullopt, "connection refused"};
  health_prober p(io.get_executor(), 5ms,
                  {{0, "http://good/a/@v/list", "good/a/@v/list"},
                   {0, "http://good/b/@v/list", "good/b/@v/list"},
                   {1, "http://bad/a/@v/list", "bad/a/@v/list"}},
                  fetch.fn(), health, m);
  p.start();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fetch.count("http://bad/a/@v/list") < 4 && std::chrono::steady_clock::now() < deadline) {
    io.run_for(5ms);
  }
  p.stop();
  io.run_for(1s);  // the loops end once stopped, so this returns early
  EXPECT_TRUE(io.stopped());

  EXPECT_GE(fetch.count("http://bad/a/@v/list"), 4);
  EXPECT_GE(fetch.count("http://good/a/@v/list"), 3);
  EXPECT_GE(fetch.count("http://good/b/@v/list"), 3);
  EXPECT_EQ(health.state(0), breaker_state::closed);
  EXPECT_EQ(health.state(1), breaker_state::open);
  EXPECT_EQ(health.state(2), breaker_state::closed);

  std::string text = m.serialize();
  int bad_calls = fetch.count("http://bad/a/@v/list");
  int good_calls = fetch.count("http://good/a/@v/list") + fetch.count("http://good/b/@v/list");
  EXPECT_EQ(value_of(text, "gomodproxy_probe_failure_total{upstream=\"bad\"}"), bad_calls);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_success_total{upstream=\"good\"}"), good_calls);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_success_total{upstream=\"bad\"}"), 0);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_success_total{upstream=\"idle\"}"), 0);
  // The last probe of "good" is b: 404 still means the tier answered.
  EXPECT_NEAR(value_of(text, "gomodproxy_probe_ttfb_seconds{upstream=\"good\"}"), 0.0025, 1e-9);
  EXPECT_EQ(value_of(text, "gomodproxy_probe_ttfb_seconds{upstream=\"bad\"}"), 0);
}

TEST(health_prober, a_recovering_tier_half_opens) {
  net::io_context io;
  metrics m(layout());
  tier_health health({"good", "bad", "idle"}, {1, 30s});
  health.record_failure(1);
  ASSERT_EQ(health.state(1), breaker_state::open);
  scripted_fetch fetch;
  fetch.answers["http://bad/x/@v/list"] = {true, 200, 1ms, "200"};
  health_prober p(io.get_executor(), 300ms, {{1, "http://bad/x/@v/list", "bad/x/@v/list"}},
                  fetch.fn(), health, m);
  auto started = std::chrono::steady_clock::now();
  p.start();
  auto deadline = started + 10s;
  while (fetch.count("http://bad/x/@v/list") < 1 && std::chrono::steady_clock::now() < deadline) {
    io.run_for(5ms);
  }
  // The first round waits one interval, so a fresh server asks nothing at once.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
  EXPECT_EQ(fetch.count("http://bad/x/@v/list"), 1);
  EXPECT_EQ(health.state(1), breaker_state::half_open);
  p.stop();
  io.run_for(1s);
  EXPECT_TRUE(io.stopped());
}

// A fetch that records the patience each probe was given.
struct patience_fetch {
  std::mutex mutex;
  std::vector<std::chrono::milliseconds> patience;
  net::awaitable<probe_answer> answer(std::chrono::milliseconds given) {
    std::lock_guard lock(mutex);
    patience.push_back(given);
    co_return probe_answer{false, 0, std::nullopt, "timeout after 1s (first byte)"};
  }
  probe_fetch fn() {
    return [this](std::string, std::chrono::milliseconds given) { return answer(given); };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return patience.size();
  }
};

TEST(health_prober, a_stall_is_probed_at_once_with_the_stall_limit_and_a_failure_opens) {
  net::io_context io;
  metrics m(layout());
  tier_health health({"good", "bad", "idle"}, {3, 30s}, {}, {1500ms, 8000ms});
  patience_fetch fetch;
  // An hour between rounds: only the stall can explain a probe within the test.
  health_prober p(io.get_executor(), 1h, {{1, "http://bad/x/@v/list", "bad/x/@v/list"}}, fetch.fn(),
                  health, m);
  p.start();
  io.run_for(50ms);
  EXPECT_EQ(fetch.count(), 0u);
  health.record_stall(1);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fetch.count() < 1 && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
  ASSERT_EQ(fetch.count(), 1u);
  EXPECT_EQ(fetch.patience.front(), 1500ms);
  EXPECT_EQ(health.state(1), breaker_state::open);  // the stall and the probe agree
  p.stop();
  io.run_for(1s);
  EXPECT_TRUE(io.stopped());
}

TEST(health_prober, a_tier_that_is_down_is_probed_again_soon) {
  net::io_context io;
  metrics m(layout());
  tier_health health({"good", "bad", "idle"}, {1, 30s});
  health.record_failure(1);
  ASSERT_FALSE(health.up(1));
  patience_fetch fetch;
  health_prober p(io.get_executor(), 1h, {{1, "http://bad/x/@v/list", "bad/x/@v/list"}}, fetch.fn(),
                  health, m);
  auto started = std::chrono::steady_clock::now();
  p.start();
  auto deadline = started + 10s;
  while (fetch.count() < 2 && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
  // 2 s, then 4 s: far sooner than the hour between rounds of a tier that is up.
  EXPECT_EQ(fetch.count(), 2u);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 6s);
  EXPECT_LT(took, 8s);
  p.stop();
  io.run_for(1s);
  EXPECT_TRUE(io.stopped());
}

TEST(health_prober, zero_interval_disables_probing) {
  net::io_context io;
  metrics m(layout());
  tier_health health({"good", "bad", "idle"}, {3, 30s});
  scripted_fetch fetch;
  health_prober p(io.get_executor(), 0ms, {{0, "http://good/a/@v/list", "good/a/@v/list"}},
                  fetch.fn(), health, m);
  p.start();
  io.run_for(50ms);
  EXPECT_EQ(fetch.count("http://good/a/@v/list"), 0);
}

}  // namespace
}  // namespace gomodproxy::monitor
