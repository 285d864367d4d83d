#include "resolver/verified_tree.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace gomodproxy::resolver {
namespace {
namespace fs = std::filesystem;

class verified_tree_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gmp-verified-tree-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp");
    directory_ = pattern;
    cache::rocksdb_options options;
    options.path = directory_ / "cache";
    auto opened = cache::open_rocksdb_store(options);
    ASSERT_TRUE(opened) << opened.error().detail;
    store_ = std::move(*opened);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  static sumdb::tree_head tree_of(std::int64_t size) {
    sumdb::tree_head head;
    head.size = size;
    head.root.fill(static_cast<unsigned char>(size));
    return head;
  }

  fs::path directory_;
  std::unique_ptr<cache::cache_store> store_;
};

TEST_F(verified_tree_test, keeps_the_larger_tree) {
  EXPECT_FALSE(remembered_tree(*store_, "sum.test"));
  ASSERT_TRUE(remember_tree(*store_, "sum.test", tree_of(20)));
  ASSERT_TRUE(remember_tree(*store_, "sum.test", tree_of(10)));
  auto known = remembered_tree(*store_, "sum.test");
  ASSERT_TRUE(known);
  EXPECT_EQ(*known, tree_of(20));
  ASSERT_TRUE(remember_tree(*store_, "sum.test", tree_of(30), "bundle"));
  EXPECT_EQ(remembered_tree(*store_, "sum.test")->size, 30);
  EXPECT_FALSE(remembered_tree(*store_, "other.test"));
}

// Two writers (a fill and a live import) each remember ever larger trees, interleaved; whatever
// the interleaving, the largest one is what stays. Without one lock around the compare and the
// write, a writer that read an older tree overwrites a newer one.
TEST_F(verified_tree_test, racing_writers_never_shrink_the_tree) {
  constexpr int rounds = 300;
  constexpr std::int64_t largest = 60;
  for (int round = 0; round < rounds; ++round) {
    const std::string name = "sum" + std::to_string(round) + ".test";
    auto writer = [&](std::int64_t first) {
      for (std::int64_t size = first; size <= largest; size += 2) {
        EXPECT_TRUE(remember_tree(*store_, name, tree_of(size)));
      }
    };
    std::thread odd(writer, 1);
    std::thread even(writer, 2);
    odd.join();
    even.join();
    auto known = remembered_tree(*store_, name);
    ASSERT_TRUE(known);
    ASSERT_EQ(known->size, largest) << "round " << round;
  }
}

}  // namespace
}  // namespace gomodproxy::resolver
