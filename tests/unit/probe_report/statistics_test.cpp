#include "probe_report/statistics.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace gomodproxy::probe_report {
namespace {

using std::chrono::microseconds;

std::vector<microseconds> us(std::initializer_list<long> values) {
  std::vector<microseconds> out;
  for (long v : values) out.emplace_back(v);
  return out;
}

TEST(nearest_rank, picks_the_ceil_rank_counting_from_one) {
  const auto one_to_twenty =
      us({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
  const struct {
    std::vector<microseconds> sorted;
    double percent;
    long want;
  } cases[] = {
      {us({7}), 50, 7},
      {us({7}), 95, 7},
      {us({1, 2}), 50, 1},        // ceil(0.5 * 2) = 1
      {us({1, 2, 3}), 50, 2},     // ceil(1.5) = 2
      {us({1, 2, 3, 4}), 50, 2},  // ceil(2) = 2, no interpolation
      {us({1, 2, 3, 4}), 95, 4},  // ceil(3.8) = 4
      {one_to_twenty, 95, 19},    // exactly 19: floating point must not round it to 20
      {one_to_twenty, 50, 10},
      {one_to_twenty, 100, 20},
      {one_to_twenty, 0, 1},
      {us({15, 20, 35, 40, 50}), 30, 20},  // the textbook nearest-rank example
      {us({15, 20, 35, 40, 50}), 40, 20},
      {us({15, 20, 35, 40, 50}), 50, 35},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "n=" << c.sorted.size() << " p=" << c.percent);
    auto got = nearest_rank(c.sorted, c.percent);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->count(), c.want);
  }
}

TEST(nearest_rank, is_empty_without_samples) { EXPECT_FALSE(nearest_rank({}, 50).has_value()); }

TEST(summarize_timings, reports_mean_and_percentiles_in_milliseconds) {
  // Unsorted on purpose; mean = 5500 us.
  auto summary =
      summarize_timings(us({10000, 1000, 9000, 2000, 8000, 3000, 7000, 4000, 6000, 5000}));
  EXPECT_EQ(summary.samples, 10u);
  ASSERT_TRUE(summary.mean_ms && summary.p50_ms && summary.p95_ms);
  EXPECT_DOUBLE_EQ(*summary.mean_ms, 5.5);
  EXPECT_DOUBLE_EQ(*summary.p50_ms, 5.0);
  EXPECT_DOUBLE_EQ(*summary.p95_ms, 10.0);
}

TEST(summarize_timings, keeps_sub_millisecond_precision) {
  auto summary = summarize_timings(us({250, 750}));
  ASSERT_TRUE(summary.mean_ms);
  EXPECT_DOUBLE_EQ(*summary.mean_ms, 0.5);
  EXPECT_DOUBLE_EQ(*summary.p50_ms, 0.25);
  EXPECT_DOUBLE_EQ(*summary.p95_ms, 0.75);
}

TEST(summarize_timings, has_no_figures_without_samples) {
  auto summary = summarize_timings({});
  EXPECT_EQ(summary.samples, 0u);
  EXPECT_FALSE(summary.mean_ms);
  EXPECT_FALSE(summary.p50_ms);
  EXPECT_FALSE(summary.p95_ms);
}

}  // namespace
}  // namespace gomodproxy::probe_report
