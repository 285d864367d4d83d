// The body files the RocksDB store keeps open between readers: hits share one descriptor, the
// count stays bounded, a dropped file keeps no descriptor once its readers are gone, and the
// size is checked when a file is opened.
#include "cache/open_file_cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cache/rocksdb_layout.hpp"
#include "common/errc.hpp"
#include "tests/support/cpp/deleted_files.hpp"
#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::cache {
namespace {

namespace fs = std::filesystem;

using test::open_deleted_files_in;

class open_file_cache_test : public ::testing::Test {
 protected:
  // Writes the body file of `fill_id` with `size` bytes; returns its path.
  fs::path write(std::uint64_t fill_id, std::size_t size) const {
    return dir_.write(layout::body_file_name(fill_id), std::string(size, 'b'));
  }

  test::temp_dir dir_;
};

TEST_F(open_file_cache_test, a_hit_shares_the_descriptor_without_opening_the_file_again) {
  open_file_cache files(dir_.path().string(), 4);
  const auto path = write(1, 100);
  auto first = files.open(1, 100);
  ASSERT_TRUE(first);
  ASSERT_NE(*first, nullptr);
  const int fd = (*first)->fd();
  first->reset();
  EXPECT_EQ(files.size(), 1u);
  // Gone from the directory behind the cache's back: a hit does not look.
  fs::remove(path);
  auto second = files.open(1, 100);
  ASSERT_TRUE(second);
  ASSERT_NE(*second, nullptr);
  EXPECT_EQ((*second)->fd(), fd);
}

TEST_F(open_file_cache_test, holds_at_most_its_capacity_and_closes_the_least_recently_used) {
  open_file_cache files(dir_.path().string(), 3);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    write(id, 10 + id);
    ASSERT_TRUE(files.open(id, 10 + id));
  }
  ASSERT_TRUE(files.open(1, 11));  // 2 is now the least recently used
  write(4, 14);
  ASSERT_TRUE(files.open(4, 14));
  EXPECT_EQ(files.size(), 3u);
  for (std::uint64_t id = 1; id <= 4; ++id) fs::remove(dir_.path() / layout::body_file_name(id));
  EXPECT_EQ(open_deleted_files_in(dir_.path()), 3);
  for (const std::uint64_t kept : {1u, 3u, 4u}) {
    auto hit = files.open(kept, 10 + kept);
    ASSERT_TRUE(hit);
    EXPECT_NE(*hit, nullptr) << kept;
  }
  // Closed when it was pushed out, so its file is looked for again, and is gone.
  auto missed = files.open(2, 12);
  ASSERT_TRUE(missed);
  EXPECT_EQ(*missed, nullptr);
}

TEST_F(open_file_cache_test, a_dropped_file_is_closed_when_its_last_reader_lets_go) {
  open_file_cache files(dir_.path().string(), 4);
  const auto path = write(7, 50);
  auto reader = files.open(7, 50);
  ASSERT_TRUE(reader);
  ASSERT_NE(*reader, nullptr);
  fs::remove(path);
  files.drop(7);
  EXPECT_EQ(files.size(), 0u);
  // The reader still reads the unlinked file...
  char byte = 0;
  EXPECT_EQ(::pread((*reader)->fd(), &byte, 1, 49), 1);
  EXPECT_EQ(open_deleted_files_in(dir_.path()), 1);
  // ...and its blocks go with it.
  reader->reset();
  EXPECT_EQ(open_deleted_files_in(dir_.path()), 0);
  auto again = files.open(7, 50);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, nullptr);
}

TEST_F(open_file_cache_test, a_file_of_another_size_is_corrupt_and_not_kept) {
  open_file_cache files(dir_.path().string(), 4);
  write(3, 99);
  for (const std::uint64_t expected : {98u, 100u}) {
    auto opened = files.open(3, expected);
    ASSERT_FALSE(opened) << expected;
    EXPECT_EQ(opened.error(), errc::cache_corrupt);
  }
  EXPECT_EQ(files.size(), 0u);
  auto right = files.open(3, 99);
  ASSERT_TRUE(right);
  EXPECT_NE(*right, nullptr);
}

TEST_F(open_file_cache_test, a_missing_file_is_null_and_capacity_zero_keeps_nothing) {
  open_file_cache none(dir_.path().string(), 0);
  auto missing = none.open(5, 1);
  ASSERT_TRUE(missing);
  EXPECT_EQ(*missing, nullptr);
  const auto path = write(5, 1);
  auto opened = none.open(5, 1);
  ASSERT_TRUE(opened);
  ASSERT_NE(*opened, nullptr);
  opened->reset();
  EXPECT_EQ(none.size(), 0u);
  fs::remove(path);
  EXPECT_EQ(open_deleted_files_in(dir_.path()), 0);
}

// Readers on several threads hit, miss and race drops of the files they open (run under TSan
// by `make tsan`); when all is done and every file dropped, nothing deleted stays open.
TEST_F(open_file_cache_test, concurrent_opens_and_drops_leave_no_deleted_file_open) {
  constexpr std::uint64_t ids = 16;
  open_file_cache files(dir_.path().string(), 8);
  for (std::uint64_t id = 0; id < ids; ++id) write(id, 64);
  std::atomic<bool> failed{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto id = static_cast<std::uint64_t>(i * 7 + t) % ids;
        auto opened = files.open(id, 64);
        if (!opened) failed = true;
      }
    });
  }
  std::thread dropper([&] {
    for (int round = 0; round < 50; ++round) {
      const auto id = static_cast<std::uint64_t>(round) % ids;
      fs::remove(dir_.path() / layout::body_file_name(id));
      files.drop(id);
      // Put back whole (renamed into place), as a reader may open it at any moment.
      fs::rename(dir_.write("next", std::string(64, 'n')),
                 dir_.path() / layout::body_file_name(id));
    }
  });
  for (auto& reader : readers) reader.join();
  dropper.join();
  EXPECT_FALSE(failed);
  for (std::uint64_t id = 0; id < ids; ++id) {
    fs::remove(dir_.path() / layout::body_file_name(id));
    files.drop(id);
  }
  EXPECT_EQ(files.size(), 0u);
  EXPECT_EQ(open_deleted_files_in(dir_.path()), 0);
}

}  // namespace
}  // namespace gomodproxy::cache
