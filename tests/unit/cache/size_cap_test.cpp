// The size cap's parts that need no RocksDB: which keys may be evicted, least-recently-used
// selection, the in-memory recency table and the directory measurement.
#include "cache/size_cap.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::cache::size_cap {
namespace {

TEST(size_cap, proofs_are_never_evictable) {
  struct case_t {
    std::string key;
    bool evictable;
  };
  const std::vector<case_t> cases = {
      {"/golang.org/x/mod/@v/v0.1.0.zip", true},
      {"/golang.org/x/mod/@v/v0.1.0.info", true},
      {"/golang.org/x/mod/@v/list", true},
      {"/golang.org/x/mod/@latest", true},
      {"/golang.org/x/mod/@v/master.info", true},
      {"/example.com/sumdb/@v/v1.0.0.mod", true},
      {"/sumdb/sum.golang.org/tile/8/0/000", false},
      {"/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.1.0", false},
      {"/sumdb/sum.golang.org/latest", false},
      {"/gomodproxy/verified-tree/sum.golang.org", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(evictable(c.key), c.evictable) << c.key;
  }
}

TEST(lru_picker, keeps_the_least_recently_used_that_free_enough) {
  lru_picker picker(10);
  // Offered out of order: what is kept is the shortest run, oldest first, reaching 10 bytes.
  picker.offer({.key = "newest", .last_use_ms = 900, .bytes = 100});
  picker.offer({.key = "oldest", .last_use_ms = 100, .bytes = 4});
  picker.offer({.key = "middle", .last_use_ms = 500, .bytes = 4});
  picker.offer({.key = "second", .last_use_ms = 200, .bytes = 4});
  picker.offer({.key = "late", .last_use_ms = 800, .bytes = 1});
  const auto kept = picker.take();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].key, "oldest");
  EXPECT_EQ(kept[1].key, "second");
  EXPECT_EQ(kept[2].key, "middle");
}

TEST(lru_picker, keeps_everything_when_everything_is_not_enough) {
  lru_picker picker(1000);
  for (int i = 0; i < 5; ++i)
    picker.offer({.key = std::to_string(i), .last_use_ms = 5 - i, .bytes = 10});
  EXPECT_EQ(picker.kept_bytes(), 50u);
  const auto kept = picker.take();
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_EQ(kept.front().key, "4");
  EXPECT_EQ(kept.back().key, "0");
}

TEST(lru_picker, wanting_nothing_keeps_nothing) {
  lru_picker picker(0);
  picker.offer({.key = "a", .last_use_ms = 1, .bytes = 10});
  EXPECT_TRUE(picker.take().empty());
}

TEST(recency_table, keeps_the_latest_use_until_taken) {
  recency_table table;
  table.touch("/a", 100);
  table.touch("/a", 50);  // an older time arriving late does not move the entry back
  table.touch("/b", 70);
  EXPECT_EQ(table.find("/a"), 100);
  EXPECT_EQ(table.find("/c"), std::nullopt);
  table.forget("/b");
  EXPECT_EQ(table.find("/b"), std::nullopt);
  auto taken = table.take();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].first, "/a");
  EXPECT_EQ(taken[0].second, 100);
  EXPECT_EQ(table.size(), 0u);
}

TEST(recency_table, touches_from_many_threads_all_land) {
  recency_table table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&table, t] {
      for (int i = 0; i < 1000; ++i) table.touch("/k" + std::to_string(i), t * 1000 + i);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(table.size(), 1000u);
  EXPECT_EQ(table.find("/k7"), 3007);
}

TEST(disk_usage, counts_allocated_blocks_like_du) {
  test::temp_dir dir;
  const auto empty = disk_usage(dir.path().string());
  ASSERT_TRUE(empty);
  const std::string megabyte(1 << 20, 'x');
  dir.write("a", megabyte);
  const auto one = disk_usage(dir.path().string());
  ASSERT_TRUE(one);
  EXPECT_GE(*one - *empty, std::uint64_t{1} << 20);
  EXPECT_LT(*one - *empty, (std::uint64_t{1} << 20) + 65536);
  EXPECT_EQ(disk_usage((dir.path() / "missing").string()), std::nullopt);
}

}  // namespace
}  // namespace gomodproxy::cache::size_cap
