#include "upstream/dns_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::upstream {
namespace {

using namespace std::chrono_literals;
using address = boost::asio::ip::address;
using time_point = dns_cache::clock::time_point;

// A fixed starting point: the cache only compares the times it is given.
const time_point t0 = time_point{} + 1000h;

std::vector<address> addresses(std::initializer_list<const char*> texts) {
  std::vector<address> out;
  for (const char* text : texts) out.push_back(boost::asio::ip::make_address(text));
  return out;
}

TEST(dns_cache, answer_is_kept_until_its_ttl_runs_out) {
  dns_cache cache;
  cache.remember("good.test", addresses({"192.0.2.1", "2001:db8::1"}), 30s, t0);
  auto found = cache.find("good.test", t0 + 29s);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, addresses({"192.0.2.1", "2001:db8::1"}));
  EXPECT_FALSE(cache.find("good.test", t0 + 30s));
  EXPECT_EQ(cache.size(), 0u) << "an expired entry is dropped when found";
}

TEST(dns_cache, unknown_names_are_not_found) {
  dns_cache cache;
  cache.remember("good.test", addresses({"192.0.2.1"}), 30s, t0);
  EXPECT_FALSE(cache.find("other.test", t0));
}

TEST(dns_cache, ttl_is_capped) {
  dns_cache cache(dns_cache_options{.max_names = 8, .max_ttl = 60s});
  cache.remember("good.test", addresses({"192.0.2.1"}), 86400s, t0);
  EXPECT_TRUE(cache.find("good.test", t0 + 59s));
  EXPECT_FALSE(cache.find("good.test", t0 + 60s));
}

TEST(dns_cache, zero_ttl_and_empty_answers_are_not_kept_and_forget_the_old_answer) {
  struct row {
    const char* name;
    std::vector<address> answer;
    std::chrono::seconds ttl;
  };
  for (const auto& [what, answer, ttl] : std::vector<row>{
           {"zero ttl", addresses({"192.0.2.2"}), 0s},
           {"negative ttl", addresses({"192.0.2.2"}), -5s},
           {"no addresses", {}, 30s},
       }) {
    dns_cache cache;
    cache.remember("good.test", addresses({"192.0.2.1"}), 30s, t0);
    cache.remember("good.test", answer, ttl, t0 + 1s);
    EXPECT_FALSE(cache.find("good.test", t0 + 1s)) << what;
  }
}

TEST(dns_cache, a_new_answer_replaces_the_old_one_and_its_expiry) {
  dns_cache cache;
  cache.remember("good.test", addresses({"192.0.2.1"}), 10s, t0);
  cache.remember("good.test", addresses({"192.0.2.9"}), 100s, t0 + 5s);
  auto found = cache.find("good.test", t0 + 50s);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, addresses({"192.0.2.9"}));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(dns_cache, size_is_bounded_and_the_soonest_to_expire_goes_first) {
  dns_cache cache(dns_cache_options{.max_names = 3, .max_ttl = 300s});
  cache.remember("a.test", addresses({"192.0.2.1"}), 100s, t0);
  cache.remember("b.test", addresses({"192.0.2.2"}), 20s, t0);
  cache.remember("c.test", addresses({"192.0.2.3"}), 200s, t0);
  cache.remember("d.test", addresses({"192.0.2.4"}), 50s, t0);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.find("b.test", t0));
  EXPECT_TRUE(cache.find("a.test", t0));
  EXPECT_TRUE(cache.find("c.test", t0));
  EXPECT_TRUE(cache.find("d.test", t0));
}

TEST(dns_cache, expired_entries_make_room_before_live_ones) {
  dns_cache cache(dns_cache_options{.max_names = 3, .max_ttl = 300s});
  cache.remember("a.test", addresses({"192.0.2.1"}), 10s, t0);
  cache.remember("b.test", addresses({"192.0.2.2"}), 10s, t0);
  cache.remember("c.test", addresses({"192.0.2.3"}), 200s, t0);
  cache.remember("d.test", addresses({"192.0.2.4"}), 100s, t0 + 20s);
  cache.remember("e.test", addresses({"192.0.2.5"}), 100s, t0 + 20s);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.find("c.test", t0 + 20s));
  EXPECT_TRUE(cache.find("d.test", t0 + 20s));
  EXPECT_TRUE(cache.find("e.test", t0 + 20s));
}

TEST(dns_cache, refreshing_a_known_name_in_a_full_cache_evicts_nothing) {
  dns_cache cache(dns_cache_options{.max_names = 2, .max_ttl = 300s});
  cache.remember("a.test", addresses({"192.0.2.1"}), 100s, t0);
  cache.remember("b.test", addresses({"192.0.2.2"}), 10s, t0);
  cache.remember("a.test", addresses({"192.0.2.7"}), 100s, t0 + 1s);
  EXPECT_TRUE(cache.find("a.test", t0 + 1s));
  EXPECT_TRUE(cache.find("b.test", t0 + 1s));
}

TEST(dns_cache, a_zero_bound_keeps_nothing) {
  dns_cache cache(dns_cache_options{.max_names = 0, .max_ttl = 300s});
  cache.remember("a.test", addresses({"192.0.2.1"}), 100s, t0);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.find("a.test", t0));
}

}  // namespace
}  // namespace gomodproxy::upstream
