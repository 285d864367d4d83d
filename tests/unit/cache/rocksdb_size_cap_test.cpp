// The RocksDB store under a size cap, measured as du measures its directory: least recently
// used entries go first, down to 90 % of the cap; proofs stay; a reader keeps what it opened;
// last uses and eviction totals survive a restart.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/rocksdb_layout.hpp"
#include "cache/size_cap.hpp"
#include "tests/support/cpp/deleted_files.hpp"
#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::cache {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t mib = 1u << 20;
constexpr std::uint64_t cap = 32 * mib;

// Incompressible, different per key.
std::string random_body(std::size_t bytes, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::string out(bytes, '\0');
  for (auto& c : out) c = static_cast<char>(generator());
  return out;
}

std::string module_key(int i) { return "/example.com/m" + std::to_string(i) + "/@v/v1.0.0.zip"; }

class size_cap_test : public ::testing::Test {
 protected:
  rocksdb_options options(std::uint64_t max_bytes) const {
    rocksdb_options o;
    o.path = (dir_.path() / "db").string();
    o.chunk_bytes = 64u << 10;
    o.inline_max_bytes = 4096;
    o.memory_bytes = 1u << 20;
    o.max_bytes = max_bytes;
    o.fresh_entry_grace = grace_;
    return o;
  }

  std::unique_ptr<cache_store> open(std::uint64_t max_bytes = cap) {
    auto store = open_rocksdb_store(options(max_bytes));
    if (!store) {
      ADD_FAILURE() << store.error().detail;
      return nullptr;
    }
    return std::move(*store);
  }

  static void put(cache_store& store, const std::string& key, const std::string& body) {
    auto writer = store.create(key);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(body));
    ASSERT_TRUE((*writer)->commit({}));
  }

  static bool has(cache_store& store, const std::string& key) {
    auto meta = store.stat(key);
    EXPECT_TRUE(meta);
    return meta && meta->has_value();
  }

  static void use(cache_store& store, const std::string& key) {
    auto reader = store.open(key);
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr) << key;
  }

  // Entries i in [first, last), 1 MiB each; a pause first so they are newer than what came
  // before by more than the clock's resolution.
  static void fill(cache_store& store, int first, int last) {
    std::this_thread::sleep_for(5ms);
    for (int i = first; i < last; ++i) {
      put(store, module_key(i), random_body(mib, static_cast<std::uint32_t>(i)));
    }
  }

  std::uint64_t du() const { return size_cap::disk_usage(options(0).path).value_or(0); }

  // Polls (bounded) until the directory is under the cap and the store has evicted something.
  void wait_under_cap(cache_store& store) const {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto usage = store.usage();
      if (usage.evictions > 0 && usage.disk_bytes <= cap && du() <= cap) return;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "still " << du() << " bytes on disk, cap " << cap << ", evictions "
                  << store.usage().evictions;
  }

  test::temp_dir dir_;
  // Entries here are all written within a second; the grace has a test of its own.
  std::chrono::milliseconds grace_{0};
};

TEST_F(size_cap_test, a_cache_over_its_cap_at_start_is_brought_to_ninety_percent) {
  {
    auto store = open(0);
    ASSERT_NE(store, nullptr);
    fill(*store, 0, 40);
    EXPECT_EQ(store->usage().disk_bytes, 0u);  // no cap: nothing measures
  }
  ASSERT_GT(du(), cap);
  auto store = open();
  ASSERT_NE(store, nullptr);
  wait_under_cap(*store);
  // One round, sized on the directory as it settles: the bodies left fit in 90 % of the cap,
  // and not much less (what else the directory holds is a few MiB of logs and tables).
  const auto kept = store->stats().bytes;
  EXPECT_LE(kept, cap - cap / 10);
  EXPECT_GE(kept, cap - cap / 10 - 8 * mib);
  EXPECT_LE(du(), cap - cap / 10 + mib);
  EXPECT_FALSE(has(*store, module_key(0)));
  EXPECT_TRUE(has(*store, module_key(39)));
}

TEST_F(size_cap_test, evicts_the_oldest_while_entries_keep_coming) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  fill(*store, 0, 48);
  wait_under_cap(*store);
  // The survivors are the newest: once one entry is present, every later one is too.
  int first_kept = -1;
  for (int i = 0; i < 48; ++i) {
    if (has(*store, module_key(i))) {
      if (first_kept < 0) first_kept = i;
    } else {
      EXPECT_LT(first_kept, 0) << "entry " << i << " evicted after newer entry " << first_kept;
    }
  }
  EXPECT_GT(first_kept, 0);
  EXPECT_TRUE(has(*store, module_key(47)));
  EXPECT_LE(store->stats().bytes, cap);
  const auto usage = store->usage();
  EXPECT_EQ(usage.max_bytes, cap);
  EXPECT_LE(usage.disk_bytes, cap);
  EXPECT_EQ(usage.evictions, static_cast<std::uint64_t>(first_kept));
  EXPECT_EQ(usage.evicted_bytes, static_cast<std::uint64_t>(first_kept) * mib);
  EXPECT_EQ(store->stats().entries, static_cast<std::uint64_t>(48 - first_kept));
}

TEST_F(size_cap_test, an_entry_used_recently_survives_older_unused_ones) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  fill(*store, 0, 16);
  std::this_thread::sleep_for(5ms);
  for (int i = 0; i < 4; ++i) use(*store, module_key(i));
  // 34 MiB in all: evicting the twelve unused older ones is enough, and they go first.
  fill(*store, 16, 34);
  wait_under_cap(*store);
  for (int i = 0; i < 30; ++i)
    std::fprintf(stderr, "%d:%d ", i, has(*store, module_key(i)) ? 1 : 0);
  std::fprintf(stderr, "\nevictions %lu disk %lu\n", (unsigned long)store->usage().evictions,
               (unsigned long)store->usage().disk_bytes);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(has(*store, module_key(i))) << i;
  EXPECT_FALSE(has(*store, module_key(4)));
  EXPECT_TRUE(has(*store, module_key(33)));
}

TEST_F(size_cap_test, last_uses_and_eviction_totals_survive_a_restart) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    fill(*store, 0, 16);
    std::this_thread::sleep_for(5ms);
    for (int i = 0; i < 4; ++i) use(*store, module_key(i));
  }  // closing writes the last uses held in memory
  std::uint64_t evictions = 0;
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    fill(*store, 16, 34);
    wait_under_cap(*store);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(has(*store, module_key(i))) << i;
    EXPECT_FALSE(has(*store, module_key(4)));
    evictions = store->usage().evictions;
    EXPECT_GT(evictions, 0u);
  }
  // Without a cap nothing is measured or evicted, but the totals are still told.
  auto store = open(0);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->usage().max_bytes, 0u);
  EXPECT_EQ(store->usage().disk_bytes, 0u);
  EXPECT_EQ(store->usage().evictions, evictions);
  EXPECT_EQ(store->usage().evicted_bytes, evictions * mib);
}

TEST_F(size_cap_test, an_entry_just_committed_is_not_evicted_during_its_grace) {
  grace_ = 60s;
  auto store = open();
  ASSERT_NE(store, nullptr);
  fill(*store, 0, 48);
  // Everything is fresh: the directory stays over the cap and nothing is evicted.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(store->usage().evictions, 0u);
  EXPECT_GT(store->usage().disk_bytes, cap);
  EXPECT_TRUE(has(*store, module_key(0)));
}

// A closed store's records family, opened directly: `edit` runs on it.
void edit_records(const std::string& path,
                  const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& edit) {
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions{}},
      {std::string(layout::chunks_family), rocksdb::ColumnFamilyOptions{}},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions{}, path, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  edit(*db, handles[0]);
  for (auto* handle : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  EXPECT_TRUE(db->Close().ok());
}

TEST_F(size_cap_test, a_last_use_left_without_its_entry_is_dropped_by_the_next_round) {
  // What a hit recorded while its entry was being removed leaves behind.
  { ASSERT_NE(open(0), nullptr); }
  const std::string orphan = layout::access_key("/example.com/gone/@v/v1.0.0.zip");
  edit_records(options(0).path, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* records) {
    EXPECT_TRUE(db.Put(rocksdb::WriteOptions{}, records, orphan, layout::encode_u64(1)).ok());
  });
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    fill(*store, 0, 48);
    wait_under_cap(*store);
  }
  edit_records(options(0).path, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* records) {
    std::string value;
    EXPECT_TRUE(db.Get(rocksdb::ReadOptions{}, records, orphan, &value).IsNotFound());
  });
}

TEST_F(size_cap_test, proofs_are_never_evicted) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> proofs = {"/sumdb/sum.golang.org/tile/8/0/000",
                                           "/sumdb/sum.golang.org/tile/8/1/000",
                                           "/sumdb/sum.golang.org/lookup/example.com/m0@v1.0.0",
                                           "/gomodproxy/verified-tree/sum.golang.org"};
  for (std::size_t i = 0; i < proofs.size(); ++i) {
    // The oldest entries, and big: the first the cap would take if it could.
    put(*store, proofs[i], random_body(mib, 1000 + static_cast<std::uint32_t>(i)));
  }
  fill(*store, 0, 48);
  wait_under_cap(*store);
  for (const auto& key : proofs) EXPECT_TRUE(has(*store, key)) << key;
  EXPECT_FALSE(has(*store, module_key(0)));
}

TEST_F(size_cap_test, an_open_reader_reads_an_evicted_entry_to_the_end) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::string big = random_body(6 * mib, 77);
  put(*store, "/example.com/big/@v/v1.0.0.zip", big);
  auto opened = store->open("/example.com/big/@v/v1.0.0.zip");
  ASSERT_TRUE(opened);
  auto reader = std::move(*opened);
  ASSERT_NE(reader, nullptr);
  auto head = reader->read(0, 100000);
  ASSERT_TRUE(head);
  std::string got = *head;
  // The reader's open counted as a use, so the flood must be big enough to take it anyway.
  fill(*store, 0, 60);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (has(*store, "/example.com/big/@v/v1.0.0.zip") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(has(*store, "/example.com/big/@v/v1.0.0.zip"));
  while (got.size() < big.size()) {
    auto piece = reader->read(got.size(), 256u << 10);
    ASSERT_TRUE(piece) << piece.error().message() << " at " << got.size();
    ASSERT_FALSE(piece->empty());
    got += *piece;
  }
  EXPECT_TRUE(got == big);
  // Once the reader is done its bytes are reclaimed (the store kept no descriptor of the evicted
  // file) and the directory goes under the cap.
  reader.reset();
  EXPECT_EQ(test::open_deleted_files_in(dir_.path() / "db" / "bodies"), 0);
  wait_under_cap(*store);
}

}  // namespace
}  // namespace gomodproxy::cache
