#include "monitor/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "monitor/tier_health.hpp"

namespace gomodproxy::monitor {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand.
struct fake_clock {
  steady_time now{std::chrono::hours(1)};
  steady_clock_fn fn() {
    return [this] { return now; };
  }
};

// One step of a scenario: an event, then the state and allow() answer expected after it.
enum class event {
  success,        // a request got an answer
  failure,        // a request failed
  probe_ok,       // a probe got an answer
  probe_failed,   // a probe failed
  stall,          // a request has waited past its tier's stall limit
  late_answer,    // a request reported stalled was answered in the end
  advance_10s,    // time passes
  allow_granted,  // allow() must return true
  allow_denied,   // allow() must return false
};

struct step {
  event what;
  breaker_state expect;
};

struct scenario {
  std::string name;
  std::vector<step> steps;
};

constexpr auto closed = breaker_state::closed;
constexpr auto open = breaker_state::open;
constexpr auto half_open = breaker_state::half_open;

std::vector<scenario> scenarios() {
  using enum event;
  return {
      {"three failures open",
       {{failure, closed}, {failure, closed}, {failure, open}, {allow_denied, open}}},
      {"a success resets the count",
       {{failure, closed},
        {failure, closed},
        {success, closed},
        {failure, closed},
        {failure, closed},
        {allow_granted, closed},
        {failure, open}}},
      {"probe failures count like request failures",
       {{probe_failed, closed}, {failure, closed}, {probe_failed, open}, {allow_denied, open}}},
      {"probe success half-opens; trial success closes",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {allow_denied, open},
        {probe_ok, half_open},
        {allow_granted, half_open},
        {allow_denied, half_open},  // one trial at a time
        {success, closed},
        {allow_granted, closed},
        {allow_granted, closed}}},
      {"trial failure re-opens",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {probe_ok, half_open},
        {allow_granted, half_open},
        {failure, open},
        {allow_denied, open}}},
      {"probe failure re-opens a half-open breaker",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {probe_ok, half_open},
        {probe_failed, open},
        {allow_denied, open}}},
      {"retry-after lets one trial through without probes",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {advance_10s, open},
        {advance_10s, open},
        {allow_denied, open},
        {advance_10s, open},
        {allow_granted, half_open},
        {allow_denied, half_open},
        {failure, open},
        {allow_denied, open},
        {advance_10s, open},
        {advance_10s, open},
        {advance_10s, open},
        {allow_granted, half_open},
        {success, closed}}},
      {"failed probes postpone the retry-after trial",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {advance_10s, open},
        {advance_10s, open},
        {probe_failed, open},
        {advance_10s, open},
        {allow_denied, open},
        {advance_10s, open},
        {advance_10s, open},
        {allow_granted, half_open}}},
      {"an unreported trial stops blocking after retry-after",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {probe_ok, half_open},
        {allow_granted, half_open},
        {advance_10s, half_open},
        {allow_denied, half_open},
        {advance_10s, half_open},
        {advance_10s, half_open},
        {allow_granted, half_open}}},
      {"a late success does not close an open breaker",
       {{failure, closed},
        {failure, closed},
        {failure, open},
        {success, open},
        {allow_denied, open}}},
      {"a stall confirmed by a failed probe opens at once",
       {{stall, closed}, {probe_failed, open}, {allow_denied, open}}},
      {"a failed request confirmed by a failed probe opens at once",
       {{failure, closed}, {probe_failed, open}}},
      {"a failed probe alone counts once",
       {{probe_failed, closed}, {probe_failed, closed}, {probe_failed, open}}},
      {"an answer between the stall and the probe withdraws the suspicion",
       {{stall, closed}, {success, closed}, {probe_failed, closed}, {allow_granted, closed}}},
      {"stalls count as failures",
       {{stall, closed}, {stall, closed}, {stall, open}, {allow_denied, open}}},
      {"a stalled request answered in the end half-opens: the tier is slow, not down",
       {{stall, closed},
        {probe_failed, open},
        {late_answer, half_open},
        {allow_granted, half_open},
        {success, closed}}},
      {"a stall during the trial re-opens",
       {{stall, closed},
        {probe_failed, open},
        {probe_ok, half_open},
        {allow_granted, half_open},
        {stall, open}}},
      {"probe success in closed clears failures",
       {{failure, closed},
        {failure, closed},
        {probe_ok, closed},
        {failure, closed},
        {failure, closed},
        {failure, open}}},
  };
}

TEST(circuit_breaker, scenarios) {
  for (const auto& sc : scenarios()) {
    SCOPED_TRACE(sc.name);
    fake_clock clock;
    circuit_breaker breaker({3, 30s}, clock.fn());
    int index = 0;
    for (const auto& s : sc.steps) {
      SCOPED_TRACE("step " + std::to_string(index++));
      switch (s.what) {
        case event::success:
          breaker.record_success();
          break;
        case event::failure:
          breaker.record_failure();
          break;
        case event::probe_ok:
          breaker.record_probe(true);
          break;
        case event::probe_failed:
          breaker.record_probe(false);
          break;
        case event::stall:
          breaker.record_stall("stalled");
          break;
        case event::late_answer:
          breaker.record_success(/*after_stall=*/true);
          break;
        case event::advance_10s:
          clock.now += 10s;
          break;
        case event::allow_granted:
          EXPECT_TRUE(breaker.allow());
          break;
        case event::allow_denied:
          EXPECT_FALSE(breaker.allow());
          break;
      }
      EXPECT_EQ(breaker.state(), s.expect);
      EXPECT_EQ(breaker.up(), s.expect != breaker_state::open);
    }
  }
}

TEST(circuit_breaker, each_transition_is_reported_once_with_its_reason) {
  fake_clock clock;
  circuit_breaker breaker({3, 30s}, clock.fn());
  EXPECT_FALSE(breaker.record_stall("no headers after 1000ms"));
  auto opened = breaker.record_probe(false, "timeout after 1s (first byte)");
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->from, breaker_state::closed);
  EXPECT_EQ(opened->to, breaker_state::open);
  EXPECT_NE(opened->why.find("timeout after 1s"), std::string::npos) << opened->why;
  EXPECT_FALSE(breaker.record_probe(false, "timeout"));  // still open: nothing new to say
  EXPECT_FALSE(breaker.record_failure("refused"));
  auto trial = breaker.record_probe(true);
  ASSERT_TRUE(trial);
  EXPECT_EQ(trial->to, breaker_state::half_open);
  EXPECT_FALSE(breaker.record_probe(true));
  EXPECT_TRUE(breaker.allow());
  auto closed_again = breaker.record_success();
  ASSERT_TRUE(closed_again);
  EXPECT_EQ(closed_again->from, breaker_state::half_open);
  EXPECT_EQ(closed_again->to, breaker_state::closed);
  EXPECT_FALSE(breaker.record_success());

  // The retry-after trial is a transition too, reported by the allow() that made it.
  for (int i = 0; i < 3; ++i) (void)breaker.record_failure("refused");
  clock.now += 31s;
  circuit_breaker::transition moved;
  EXPECT_TRUE(breaker.allow(&moved));
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->to, breaker_state::half_open);
}

TEST(circuit_breaker, failures_to_open_is_configurable) {
  for (int n : {1, 2, 5}) {
    SCOPED_TRACE(n);
    fake_clock clock;
    circuit_breaker breaker({n, 30s}, clock.fn());
    for (int i = 1; i < n; ++i) breaker.record_failure();
    EXPECT_EQ(breaker.state(), breaker_state::closed);
    breaker.record_failure();
    EXPECT_EQ(breaker.state(), breaker_state::open);
  }
}

TEST(circuit_breaker, zero_failures_to_open_never_opens) {
  fake_clock clock;
  circuit_breaker breaker({0, 30s}, clock.fn());
  for (int i = 0; i < 100; ++i) breaker.record_failure();
  EXPECT_EQ(breaker.state(), breaker_state::closed);
  EXPECT_TRUE(breaker.allow());
}

TEST(circuit_breaker, default_clock_is_steady_clock) {
  circuit_breaker breaker({1, 0ms});
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), breaker_state::open);
  // A zero retry-after lets the trial through at once.
  EXPECT_TRUE(breaker.allow());
  EXPECT_EQ(breaker.state(), breaker_state::half_open);
}

// Many threads hammer one breaker: the invariants hold (exactly one trial per half-open
// period) and the sanitizer builds see no race.
TEST(circuit_breaker, concurrent_use_grants_one_trial) {
  fake_clock clock;
  circuit_breaker breaker({3, 30s}, clock.fn());
  for (int i = 0; i < 3; ++i) breaker.record_failure();
  breaker.record_probe(true);
  ASSERT_EQ(breaker.state(), breaker_state::half_open);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (breaker.allow()) granted.fetch_add(1);
        (void)breaker.state();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(granted.load(), 1);

  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (t % 2 == 0) {
          breaker.record_failure();
        } else {
          breaker.record_probe(true);
        }
        (void)breaker.allow();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // Whatever the interleaving, the last events leave a valid state that answers consistently.
  auto state = breaker.state();
  EXPECT_EQ(breaker.up(), state != breaker_state::open);
}

TEST(tier_health, breakers_are_per_tier_and_unknown_tiers_pass) {
  fake_clock clock;
  tier_health health({"a.example", "b.example"}, {2, 30s}, clock.fn());
  EXPECT_EQ(health.tier_index("b.example"), 1u);
  EXPECT_FALSE(health.tier_index("c.example").has_value());
  health.record_failure(0);
  health.record_failure(0);
  EXPECT_FALSE(health.up(0));
  EXPECT_FALSE(health.allow(0));
  EXPECT_TRUE(health.up(1));
  EXPECT_TRUE(health.allow(1));
  EXPECT_TRUE(health.allow(7));
  EXPECT_TRUE(health.up(7));
  health.record_probe(0, true);
  EXPECT_EQ(health.state(0), breaker_state::half_open);
  EXPECT_TRUE(health.allow(0));
  health.record_success(0);
  EXPECT_EQ(health.state(0), breaker_state::closed);
}

TEST(stall_limit_for, twice_the_80th_percentile_within_bounds) {
  using us = std::chrono::microseconds;
  const stall_options bounds{1000ms, 8000ms};
  struct row {
    std::string name;
    std::vector<us> ttfbs;
    std::chrono::milliseconds want;
  };
  const std::vector<row> rows = {
      {"nothing heard yet: the least limit", {}, 1000ms},
      {"a fast tier gets the least limit", {us(20'000), us(30'000)}, 1000ms},
      {"a tier answering in 3 s gets 6 s", {us(3'000'000), us(3'000'000)}, 6000ms},
      {"never more than the most", {us(6'000'000)}, 8000ms},
      {"a tier that took minutes still gets the most", {us(600'000'500)}, 8000ms},
      {"one odd slow answer in sixteen does not count",
       {us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000),
        us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000),
        us(100'000), us(5'000'000)},
       1000ms},
      {"four slow answers in sixteen do",
       {us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(100'000),
        us(100'000), us(100'000), us(100'000), us(100'000), us(100'000), us(2'000'000),
        us(2'000'000), us(2'000'000), us(2'000'000)},
       4000ms},
      {"fractions of a millisecond round up", {us(700'001)}, 1401ms},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(stall_limit_for(r.ttfbs, bounds), r.want);
  }
  EXPECT_EQ(stall_limit_for({}, {2000ms, 1000ms}), 2000ms);  // a max below the min is the min
}

TEST(tier_health, stall_limits_follow_each_tiers_recent_ttfbs_and_stalls_are_announced) {
  fake_clock clock;
  tier_health health({"a.example", "b.example"}, {3, 30s}, clock.fn(), {1000ms, 8000ms});
  std::vector<std::size_t> announced;
  health.set_stall_listener([&](std::size_t tier) { announced.push_back(tier); });
  EXPECT_EQ(health.stall_limit(0), 1000ms);
  health.record_ttfb(0, 3s);
  EXPECT_EQ(health.stall_limit(0), 6000ms);
  EXPECT_EQ(health.stall_limit(1), 1000ms);
  // The window keeps the last sixteen: fast answers push the slow one out.
  for (std::size_t i = 0; i < tier_health::ttfb_window; ++i) health.record_ttfb(0, 50ms);
  EXPECT_EQ(health.stall_limit(0), 1000ms);
  health.record_stall(1);
  EXPECT_EQ(announced, std::vector<std::size_t>{1});
  health.record_probe(1, false, "timeout");
  EXPECT_EQ(health.state(1), breaker_state::open);
  health.record_stall(9);  // unknown tier: ignored, not announced
  EXPECT_EQ(announced.size(), 1u);
}

}  // namespace
}  // namespace gomodproxy::monitor
