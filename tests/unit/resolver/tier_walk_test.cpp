#include "resolver/tier_walk.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace gomodproxy::resolver {
namespace {

using namespace std::chrono_literals;
using step = tier_walk::step;

// A fake clock: tests move `now` by hand.
const tier_walk::clock::time_point t0{std::chrono::seconds(1000)};

TEST(tier_walk, without_hedging_tiers_are_asked_one_at_a_time) {
  tier_walk walk(3, 0ms);
  ASSERT_EQ(walk.next_candidate(), 0u);
  walk.started(t0);
  EXPECT_FALSE(walk.hedge_due());
  EXPECT_FALSE(walk.hedge_now(t0 + 1h));
  EXPECT_EQ(walk.finished(0, attempt_verdict::not_found, false), step::start_next);
  ASSERT_EQ(walk.next_candidate(), 1u);
  walk.started(t0 + 1s);
  EXPECT_EQ(walk.finished(1, attempt_verdict::valid, false), step::won);
}

TEST(tier_walk, fall_through_follows_the_separator_and_the_verdict) {
  {
    tier_walk walk(2, 0ms);  // "A,B": an error ends the walk
    walk.started(t0);
    EXPECT_EQ(walk.finished(0, attempt_verdict::failed, false), step::lost);
    EXPECT_FALSE(walk.next_candidate());
  }
  {
    tier_walk walk(2, 0ms);  // "A|B": an error moves on
    walk.started(t0);
    EXPECT_EQ(walk.finished(0, attempt_verdict::failed, true), step::start_next);
  }
  {
    tier_walk walk(2, 0ms);  // an invalid answer moves on whatever the separator
    walk.started(t0);
    EXPECT_EQ(walk.finished(0, attempt_verdict::invalid, false), step::start_next);
  }
  {
    tier_walk walk(1, 0ms);  // the last tier's not-found loses the walk
    walk.started(t0);
    EXPECT_EQ(walk.finished(0, attempt_verdict::not_found, true), step::lost);
  }
}

TEST(tier_walk, a_slow_tier_earns_a_hedge_exactly_at_hedge_after) {
  tier_walk walk(3, 200ms);
  walk.started(t0);
  ASSERT_EQ(walk.hedge_due(), t0 + 200ms);
  EXPECT_FALSE(walk.hedge_now(t0 + 199ms));
  EXPECT_TRUE(walk.hedge_now(t0 + 200ms));
  // Hedged: two attempts run, and no further hedge is planned while both do.
  ASSERT_EQ(walk.next_candidate(), 1u);
  walk.started(t0 + 200ms);
  EXPECT_EQ(walk.running(), 2u);
  EXPECT_FALSE(walk.hedge_due());
}

TEST(tier_walk, a_tier_that_started_answering_is_not_hedged) {
  tier_walk walk(2, 200ms);
  walk.started(t0);
  walk.answering(0);  // first bytes at t0 + 50 ms, say
  EXPECT_FALSE(walk.hedge_due());
  EXPECT_FALSE(walk.hedge_now(t0 + 10s));
}

TEST(tier_walk, each_tier_is_hedged_after_its_own_delay) {
  // Stall limits per tier: A has shown itself slow (6 s), B is unknown (1 s), C is the last.
  tier_walk walk({6000ms, 1000ms, 1000ms});
  walk.started(t0);
  ASSERT_EQ(walk.hedge_due(), t0 + 6000ms);
  EXPECT_FALSE(walk.hedge_now(t0 + 3s));  // a 3 s answer from A is not doubled
  EXPECT_EQ(walk.finished(0, attempt_verdict::failed, true), step::start_next);
  walk.started(t0 + 7s);
  EXPECT_EQ(walk.hedge_due(), t0 + 8s);
}

TEST(tier_walk, a_zero_delay_tier_is_never_hedged) {
  tier_walk walk({0ms, 1000ms});
  walk.started(t0);
  EXPECT_FALSE(walk.hedge_due());
  EXPECT_FALSE(walk.hedge_now(t0 + 1h));
}

TEST(tier_walk, no_hedge_without_a_tier_left) {
  tier_walk walk(1, 200ms);
  walk.started(t0);
  EXPECT_FALSE(walk.hedge_due());
  tier_walk stopped(3, 200ms);
  stopped.skip(true);  // "off" first: the walk is over before anything ran
  EXPECT_FALSE(stopped.next_candidate());
}

TEST(tier_walk, the_first_valid_answer_wins_whichever_tier_gives_it) {
  // The hedge answers first.
  tier_walk walk(2, 200ms);
  walk.started(t0);
  walk.started(t0 + 200ms);
  EXPECT_EQ(walk.finished(1, attempt_verdict::valid, false), step::won);

  // The slow tier fails after the hedge started, even with ',' (no fall-through on errors):
  // the hedge is already asked, so the walk waits for it rather than giving up.
  tier_walk comma(3, 200ms);
  comma.started(t0);
  comma.started(t0 + 200ms);
  EXPECT_EQ(comma.finished(0, attempt_verdict::failed, false), step::wait);
  EXPECT_EQ(comma.finished(1, attempt_verdict::valid, false), step::won);
}

TEST(tier_walk, when_the_hedge_fails_the_slow_tier_is_still_awaited_and_can_be_hedged_again) {
  tier_walk walk(3, 200ms);
  walk.started(t0);
  walk.started(t0 + 200ms);  // tier 1 hedges tier 0
  EXPECT_EQ(walk.finished(1, attempt_verdict::not_found, true), step::wait);
  // Tier 0 is alone again and still silent: tier 2 is due at once (its clock started at t0).
  ASSERT_EQ(walk.hedge_due(), t0 + 200ms);
  EXPECT_TRUE(walk.hedge_now(t0 + 300ms));
  ASSERT_EQ(walk.next_candidate(), 2u);
  walk.started(t0 + 300ms);
  EXPECT_EQ(walk.finished(0, attempt_verdict::not_found, true), step::wait);
  EXPECT_EQ(walk.finished(2, attempt_verdict::not_found, true), step::lost);
}

TEST(tier_walk, skipped_tiers_are_consumed_and_can_stop_the_walk) {
  tier_walk walk(3, 0ms);
  walk.skip(false);  // circuit open, '|': move on
  ASSERT_EQ(walk.next_candidate(), 1u);
  walk.skip(true);  // circuit open, ',': stop
  EXPECT_FALSE(walk.next_candidate());
  EXPECT_EQ(walk.running(), 0u);
}

}  // namespace
}  // namespace gomodproxy::resolver
