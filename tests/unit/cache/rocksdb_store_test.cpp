// What only the RocksDB store promises: its open errors, the bytes it leaves on disk, and how it
// reports records damaged behind its back (edited here through a raw RocksDB handle while the
// store is closed).
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/rocksdb_layout.hpp"
#include "common/errc.hpp"

namespace gomodproxy::cache {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t chunk_bytes = 4096;
constexpr std::size_t inline_max_bytes = 512;

std::string pattern_bytes(std::size_t n, char salt) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(salt)) % 251);
  }
  return out;
}

// A closed store's directory opened directly, with both column families.
class raw_db {
 public:
  explicit raw_db(const fs::path& dir) {
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions{}},
        {std::string(layout::chunks_family), rocksdb::ColumnFamilyOptions{}},
    };
    rocksdb::DB* db = nullptr;
    const auto status =
        rocksdb::DB::Open(rocksdb::DBOptions{}, dir.string(), families, &handles_, &db);
    EXPECT_TRUE(status.ok()) << status.ToString();
    db_.reset(db);
  }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;
  ~raw_db() {
    if (db_ == nullptr) {
      return;
    }
    for (auto* handle : handles_) {
      EXPECT_TRUE(db_->DestroyColumnFamilyHandle(handle).ok());
    }
    EXPECT_TRUE(db_->Close().ok());
  }

  rocksdb::ColumnFamilyHandle* records() { return handles_.at(0); }
  // Memtables to tables, so later reads come from table blocks (a reopen replays the log into a
  // memtable instead).
  void flush() { EXPECT_TRUE(db_->Flush(rocksdb::FlushOptions{}, handles_).ok()); }
  rocksdb::ColumnFamilyHandle* chunks() { return handles_.at(1); }

  std::vector<std::string> keys(rocksdb::ColumnFamilyHandle* family) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions{}, family));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out.push_back(it->key().ToString());
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }

  std::size_t fill_records() {
    std::size_t n = 0;
    for (const auto& key : keys(records())) {
      n += layout::parse_fill_key(key).has_value() ? 1 : 0;
    }
    return n;
  }

  std::string get(rocksdb::ColumnFamilyHandle* family, const std::string& key) {
    std::string value;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions{}, family, key, &value).ok()) << "get " << key;
    return value;
  }
  void put(rocksdb::ColumnFamilyHandle* family, const std::string& key, const std::string& value) {
    EXPECT_TRUE(db_->Put(rocksdb::WriteOptions{}, family, key, value).ok());
  }
  void remove(rocksdb::ColumnFamilyHandle* family, const std::string& key) {
    EXPECT_TRUE(db_->Delete(rocksdb::WriteOptions{}, family, key).ok());
  }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

class rocksdb_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gmp-rocksdb-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Chunked storage: these tests look at chunks inside RocksDB, which caches written before body
  // files hold and keep serving (rocksdb_body_files_test.cpp covers body files).
  rocksdb_options options() const {
    rocksdb_options o;
    o.body_files = false;
    o.path = (dir_ / "db").string();
    o.chunk_bytes = chunk_bytes;
    o.inline_max_bytes = inline_max_bytes;
    o.memory_bytes = 1u << 20;
    return o;
  }

  std::unique_ptr<cache_store> open() {
    auto store = open_rocksdb_store(options());
    if (!store) {
      ADD_FAILURE() << store.error().detail;
      return nullptr;
    }
    return std::move(*store);
  }

  static void put(cache_store& store, std::string_view key, std::string_view body) {
    auto writer = store.create(key);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(body));
    entry_meta meta;
    meta.tier = "t";
    ASSERT_TRUE((*writer)->commit(meta));
  }

  fs::path db_path() const { return dir_ / "db"; }

  fs::path dir_;
};

TEST_F(rocksdb_store_test, a_locked_directory_is_refused_with_a_reason) {
  auto first = open();
  ASSERT_NE(first, nullptr);
  auto second = open_rocksdb_store(options());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::cache_io);
  const auto& why = second.error().detail;
  EXPECT_NE(why.find(options().path), std::string::npos) << why;
  EXPECT_NE(why.find("lock"), std::string::npos) << why;
  EXPECT_NE(why.find("(is another gomodproxy using this directory?)"), std::string::npos) << why;
  // Closing releases the lock.
  first.reset();
  EXPECT_NE(open(), nullptr);
}

TEST_F(rocksdb_store_test, invalid_options_are_refused_with_a_reason) {
  struct test_case {
    const char* name;
    std::function<void(rocksdb_options&)> change;
    const char* detail;
  };
  const std::vector<test_case> cases = {
      {"zero chunk size", [](rocksdb_options& o) { o.chunk_bytes = 0; },
       "cache chunk size must be between 1 byte and 64 MiB"},
      {"chunk over 64 MiB", [](rocksdb_options& o) { o.chunk_bytes = (64u << 20) + 1; },
       "cache chunk size must be between 1 byte and 64 MiB"},
      {"inline above chunk", [](rocksdb_options& o) { o.inline_max_bytes = o.chunk_bytes + 1; },
       "cache inline limit must not exceed the chunk size"},
      {"memory below 1 MiB", [](rocksdb_options& o) { o.memory_bytes = min_memory_bytes - 1; },
       "cache memory must be at least 1 MiB"},
  };
  for (const auto& c : cases) {
    auto o = options();
    c.change(o);
    auto store = open_rocksdb_store(o);
    ASSERT_FALSE(store) << c.name;
    EXPECT_EQ(store.error().code, errc::cache_io) << c.name;
    EXPECT_EQ(store.error().detail, c.detail) << c.name;
  }
  auto o = options();
  o.inline_max_bytes = o.chunk_bytes;
  EXPECT_TRUE(open_rocksdb_store(o)) << "inline limit equal to the chunk size is allowed";
}

// The default chunk size changed (1 MiB, then 128 KiB); entries keep the size they were written
// with, so a cache written with one size is read whole with another, and new entries take the
// new one.
TEST_F(rocksdb_store_test, entries_written_with_another_chunk_size_stay_readable) {
  const auto old_body = pattern_bytes(5 * chunk_bytes + 7, 4);
  {
    auto o = options();
    o.chunk_bytes = 4 * chunk_bytes;
    auto store = open_rocksdb_store(o);
    ASSERT_TRUE(store);
    put(**store, "old", old_body);
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  put(*store, "new", pattern_bytes(3 * chunk_bytes + 1, 5));
  for (const auto& [key, body] : {std::pair<std::string, std::string>{"old", old_body},
                                  {"new", pattern_bytes(3 * chunk_bytes + 1, 5)}}) {
    auto reader = store->open(key);
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    EXPECT_EQ((*reader)->read(0, body.size() + 1).value(), body) << key;
    // Views stop at the entry's own chunk boundaries.
    const auto first = (*reader)->view(0, body.size());
    ASSERT_TRUE(first);
    EXPECT_EQ(first->size(), key == "old" ? 4 * chunk_bytes : chunk_bytes) << key;
  }
}

// The memory budget covers the block cache and the write buffers; chunks pass through neither for
// long: a large entry read back leaves no chunk in the block cache, and its writes do not stay in
// the write buffers beyond the budget.
TEST_F(rocksdb_store_test, large_entries_stay_out_of_the_memory_budget) {
  auto o = options();
  o.chunk_bytes = 64u << 10;
  o.memory_bytes = 2u << 20;
  auto opened = open_rocksdb_store(o);
  ASSERT_TRUE(opened);
  auto& store = **opened;
  EXPECT_EQ(store.memory().limit_bytes, 2u << 20);
  const auto body = pattern_bytes(8u << 20, 7);
  put(store, "large", body);
  EXPECT_LE(store.memory().write_buffer_bytes, 2u << 20);
  for (int pass = 0; pass < 2; ++pass) {
    auto reader = store.open("large");
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    std::uint64_t offset = 0;
    while (offset < body.size()) {
      auto piece = (*reader)->view(offset, body.size());
      ASSERT_TRUE(piece);
      ASSERT_FALSE(piece->empty());
      ASSERT_EQ(*piece, std::string_view(body).substr(offset, piece->size()));
      offset += piece->size();
    }
  }
  EXPECT_LT(store.memory().block_bytes, 256u << 10);
}

// Reads of entries already in table files go through RocksDB's row cache (point lookups of hot
// .info and .mod files); a version replaced or removed after such a read must never be served
// again, neither before the new version reaches a table file nor after.
TEST_F(rocksdb_store_test,
       entries_read_from_table_files_are_served_fresh_after_replace_and_remove) {
  const auto read_whole = [](cache_store& store,
                             std::string_view key) -> std::optional<std::string> {
    auto reader = store.open(key);
    EXPECT_TRUE(reader);
    if (!reader || *reader == nullptr) return std::nullopt;
    std::string out;
    while (true) {
      auto piece = (*reader)->view(out.size(), chunk_bytes);
      EXPECT_TRUE(piece);
      if (!piece || piece->empty()) break;
      out.append(*piece);
    }
    return out;
  };
  const auto small_old = pattern_bytes(100, 1);
  const auto small_new = pattern_bytes(120, 2);
  const auto large_old = pattern_bytes(3 * chunk_bytes + 5, 3);
  const auto large_new = pattern_bytes(2 * chunk_bytes + 9, 4);
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    put(*store, "small", small_old);
    put(*store, "large", large_old);
    put(*store, "gone", small_old);
  }
  {
    // Reopening moves the recovered log into a table file, so these reads are table reads.
    auto store = open();
    ASSERT_NE(store, nullptr);
    for (int pass = 0; pass < 2; ++pass) {
      EXPECT_EQ(read_whole(*store, "small"), small_old);
      EXPECT_EQ(read_whole(*store, "large"), large_old);
      EXPECT_EQ(read_whole(*store, "gone"), small_old);
    }
    put(*store, "small", small_new);
    put(*store, "large", large_new);
    ASSERT_TRUE(store->remove("gone"));
    EXPECT_EQ(read_whole(*store, "small"), small_new);
    EXPECT_EQ(read_whole(*store, "large"), large_new);
    EXPECT_EQ(read_whole(*store, "gone"), std::nullopt);
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_EQ(read_whole(*store, "small"), small_new);
    EXPECT_EQ(read_whole(*store, "large"), large_new);
    EXPECT_EQ(read_whole(*store, "gone"), std::nullopt);
  }
}

// Where the store gives freed memory back: it records the thread of every call, and lets a test
// wait for the next one.
class release_recorder {
 public:
  std::function<void()> hook() {
    return [this] {
      std::lock_guard lock(mutex_);
      callers_.push_back(std::this_thread::get_id());
      called_.notify_all();
    };
  }
  std::size_t calls() {
    std::lock_guard lock(mutex_);
    return callers_.size();
  }
  // True once more than `seen` calls were made. The bound only keeps a broken store from hanging
  // the suite; a working one answers within a second.
  bool wait_past(std::size_t seen) {
    std::unique_lock lock(mutex_);
    return called_.wait_for(lock, std::chrono::seconds(30), [&] { return callers_.size() > seen; });
  }
  bool called_on(std::thread::id thread) {
    std::lock_guard lock(mutex_);
    return std::find(callers_.begin(), callers_.end(), thread) != callers_.end();
  }

 private:
  std::mutex mutex_;
  std::condition_variable called_;
  std::vector<std::thread::id> callers_;
};

// Closing the last large reader gives its memory back, but not on the closing thread (an I/O
// thread when a download ends: a trim locks every malloc arena); and a close soon after the
// previous trim is served later rather than dropped, so an idle process keeps nothing of the
// last download.
TEST_F(rocksdb_store_test, the_last_large_reader_closing_gives_memory_back_from_the_stores_thread) {
  release_recorder recorder;
  auto o = options();
  o.release_free_memory = recorder.hook();
  auto opened = open_rocksdb_store(o);
  ASSERT_TRUE(opened);
  auto& store = **opened;
  const auto body = pattern_bytes(3 * chunk_bytes + 1, 6);
  put(store, "large", body);
  for (int close = 0; close < 2; ++close) {
    const auto seen = recorder.calls();
    {
      auto reader = store.open("large").value();
      ASSERT_NE(reader, nullptr);
      EXPECT_EQ(reader->read(0, body.size()).value(), body);
    }
    EXPECT_TRUE(recorder.wait_past(seen)) << "no release after close " << close;
  }
  EXPECT_FALSE(recorder.called_on(std::this_thread::get_id()));
}

TEST_F(rocksdb_store_test, a_file_in_place_of_the_directory_is_refused) {
  auto o = options();
  o.path = (dir_ / "file" / "db").string();
  { std::ofstream(dir_ / "file") << "not a directory"; }
  auto store = open_rocksdb_store(o);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errc::cache_io);
  EXPECT_NE(store.error().detail.find(o.path), std::string::npos) << store.error().detail;
}

TEST_F(rocksdb_store_test, nested_directories_are_created) {
  auto o = options();
  o.path = (dir_ / "a" / "b" / "c").string();
  auto store = open_rocksdb_store(o);
  ASSERT_TRUE(store);
  EXPECT_TRUE(fs::is_directory(o.path));
}

TEST_F(rocksdb_store_test, replaced_and_removed_versions_free_their_chunks_at_once) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    put(*store, "a", pattern_bytes(4 * chunk_bytes, 1));      // 4 chunks
    put(*store, "a", pattern_bytes(2 * chunk_bytes - 1, 2));  // replaces them with 2
    put(*store, "b", pattern_bytes(3 * chunk_bytes, 3));      // 3 chunks
    ASSERT_TRUE(store->remove("b"));                          // gone again
    put(*store, "c", pattern_bytes(inline_max_bytes, 4));     // inline: no chunks
    auto collected = store->collect_garbage();
    ASSERT_TRUE(collected);
    EXPECT_EQ(*collected, 0u) << "nothing was left for the collector";
  }
  raw_db raw(db_path());
  EXPECT_EQ(raw.keys(raw.chunks()).size(), 2u);
  EXPECT_EQ(raw.fill_records(), 0u);
}

TEST_F(rocksdb_store_test, collect_garbage_counts_exactly_the_abandoned_chunks) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    {
      auto writer = store->create("abandoned");
      ASSERT_TRUE(writer);
      // Three full chunks are flushed; the fourth is still in memory when the writer dies.
      ASSERT_TRUE((*writer)->append(pattern_bytes(3 * chunk_bytes + 10, 5)));
    }
    put(*store, "kept", pattern_bytes(2 * chunk_bytes + 1, 6));
    auto collected = store->collect_garbage();
    ASSERT_TRUE(collected);
    EXPECT_EQ(*collected, 3u);
  }
  raw_db raw(db_path());
  EXPECT_EQ(raw.keys(raw.chunks()).size(), 3u) << "only the committed entry's chunks remain";
  EXPECT_EQ(raw.fill_records(), 0u);
}

// Damage done to a committed entry through the raw database, and where the store notices.
struct damage_case {
  const char* name;
  std::size_t body_bytes;
  std::function<void(raw_db&)> damage;
  // on_verify: served as stored (a hit does not hash an inline body again), reported damaged by
  // the walk `cache verify` makes.
  enum { on_stat, on_open, on_read, on_verify } noticed;
};

void PrintTo(const damage_case& c, std::ostream* out) { *out << c.name; }

class rocksdb_damage_test : public rocksdb_store_test,
                            public ::testing::WithParamInterface<damage_case> {};

// Reads a body of about `body_bytes` in 1000-byte pieces (by read() or view()); the error of
// the first piece that failed, or none.
boost::system::error_code first_read_failure(entry_reader& reader, std::size_t body_bytes,
                                             bool by_view) {
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < 2 * body_bytes / 1000 + 2; ++i) {
    std::size_t got = 0;
    if (by_view) {
      auto piece = reader.view(offset, 1000);
      if (!piece) return piece.error();
      got = piece->size();
    } else {
      auto piece = reader.read(offset, 1000);
      if (!piece) return piece.error();
      got = piece->size();
    }
    if (got == 0) break;
    offset += got;
  }
  return {};
}

TEST_P(rocksdb_damage_test, damaged_entries_are_reported_corrupt_and_can_be_replaced) {
  const auto& c = GetParam();
  const auto body = pattern_bytes(c.body_bytes, 9);
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    put(*store, "victim", body);
    put(*store, "bystander", pattern_bytes(2 * chunk_bytes, 8));
  }
  {
    raw_db raw(db_path());
    c.damage(raw);
  }
  auto store = open();
  ASSERT_NE(store, nullptr);

  auto meta = store->stat("victim");
  auto reader = store->open("victim");
  if (c.noticed == damage_case::on_verify) {
    ASSERT_TRUE(meta);
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    EXPECT_EQ((*reader)->read(0, c.body_bytes).value().size(), c.body_bytes);
    std::vector<std::string> damaged;
    ASSERT_TRUE(store->for_each_entry([&](std::string_view key, const entry_meta&, bool bad) {
      if (bad) damaged.emplace_back(key);
      return true;
    }));
    EXPECT_EQ(damaged, std::vector<std::string>{"victim"});
  } else if (c.noticed == damage_case::on_stat) {
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error(), errc::cache_corrupt);
    ASSERT_FALSE(reader);
    EXPECT_EQ(reader.error(), errc::cache_corrupt);
  } else {
    ASSERT_TRUE(meta);
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    // Read the whole body in pieces that cross every chunk boundary, copied and then viewed.
    EXPECT_EQ(first_read_failure(**reader, c.body_bytes, false), errc::cache_corrupt);
    // A fresh reader again: a damaged chunk is refused however often it is read.
    auto again = store->open("victim");
    ASSERT_TRUE(again);
    EXPECT_EQ(first_read_failure(**again, c.body_bytes, true), errc::cache_corrupt);
  }

  // The neighbour is untouched and the damaged entry heals by being written again.
  auto bystander = store->open("bystander");
  ASSERT_TRUE(bystander);
  ASSERT_NE(*bystander, nullptr);
  EXPECT_EQ((*bystander)->read(0, 3 * chunk_bytes).value(), pattern_bytes(2 * chunk_bytes, 8));
  put(*store, "victim", "fresh");
  auto healed = store->open("victim");
  ASSERT_TRUE(healed);
  ASSERT_NE(*healed, nullptr);
  EXPECT_EQ((*healed)->read(0, 100).value(), "fresh");
  EXPECT_EQ(store->stats().entries, 2u);
}

// The first chunk key that belongs to the victim: the store writes "victim" first, so its fill id
// sorts first.
std::string victim_chunk(raw_db& raw, std::size_t index) {
  const auto keys = raw.keys(raw.chunks());
  EXPECT_GT(keys.size(), index);
  return keys.at(index);
}

const std::string victim_meta = layout::meta_key("victim");

INSTANTIATE_TEST_SUITE_P(
    cases, rocksdb_damage_test,
    ::testing::Values(
        damage_case{"middle_chunk_missing", 3 * chunk_bytes + 5,
                    [](raw_db& raw) { raw.remove(raw.chunks(), victim_chunk(raw, 1)); },
                    damage_case::on_read},
        damage_case{"last_chunk_missing", 3 * chunk_bytes + 5,
                    [](raw_db& raw) { raw.remove(raw.chunks(), victim_chunk(raw, 3)); },
                    damage_case::on_read},
        damage_case{"chunk_truncated", 2 * chunk_bytes,
                    [](raw_db& raw) {
                      const auto key = victim_chunk(raw, 0);
                      auto value = raw.get(raw.chunks(), key);
                      value.pop_back();
                      raw.put(raw.chunks(), key, value);
                    },
                    damage_case::on_read},
        damage_case{"chunk_byte_flipped", 2 * chunk_bytes,
                    [](raw_db& raw) {
                      const auto key = victim_chunk(raw, 1);
                      auto value = raw.get(raw.chunks(), key);
                      value[100] ^= 0x20;
                      raw.put(raw.chunks(), key, value);
                    },
                    damage_case::on_read},
        damage_case{"metadata_claims_an_extra_chunk", 2 * chunk_bytes,
                    [](raw_db& raw) {
                      auto record = raw.get(raw.records(), victim_meta);
                      auto decoded = layout::decode_meta(record).value();
                      decoded.meta.size += chunk_bytes;
                      decoded.chunk_count += 1;
                      raw.put(raw.records(), victim_meta, layout::encode_meta(decoded).value());
                    },
                    damage_case::on_read},
        damage_case{"metadata_version_unknown", 2 * chunk_bytes,
                    [](raw_db& raw) {
                      auto record = raw.get(raw.records(), victim_meta);
                      record[0] = 9;
                      raw.put(raw.records(), victim_meta, record);
                    },
                    damage_case::on_stat},
        damage_case{"metadata_truncated", 2 * chunk_bytes,
                    [](raw_db& raw) {
                      auto record = raw.get(raw.records(), victim_meta);
                      record.resize(record.size() / 2);
                      raw.put(raw.records(), victim_meta, record);
                    },
                    damage_case::on_stat},
        damage_case{"inline_body_byte_flipped", 100,
                    [](raw_db& raw) {
                      auto record = raw.get(raw.records(), victim_meta);
                      record.back() ^= 1;
                      raw.put(raw.records(), victim_meta, record);
                    },
                    damage_case::on_verify}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(rocksdb_store_test, an_unknown_layout_version_refuses_to_open) {
  { ASSERT_NE(open(), nullptr); }
  {
    raw_db raw(db_path());
    raw.put(raw.records(), std::string(layout::version_key), std::string(1, '\x7f'));
  }
  auto store = open_rocksdb_store(options());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errc::cache_corrupt);
  EXPECT_NE(store.error().detail.find("layout"), std::string::npos) << store.error().detail;
}

TEST_F(rocksdb_store_test, fill_ids_are_not_reused_after_reopen) {
  // An abandoned fill from a previous run must not be taken over by a new writer, or the new
  // entry would commit on top of stale chunks.
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    auto writer = store->create("old");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(pattern_bytes(2 * chunk_bytes + 1, 1)));
    // Leaves the store with the writer abandoned: its chunks and fill record stay.
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  const auto body = pattern_bytes(3 * chunk_bytes + 1, 2);
  put(*store, "new", body);
  auto reader = store->open("new");
  ASSERT_TRUE(reader);
  ASSERT_NE(*reader, nullptr);
  EXPECT_EQ((*reader)->read(0, body.size()).value(), body);
  auto collected = store->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 2u);
  EXPECT_EQ((*reader)->read(0, body.size()).value(), body);
}

TEST_F(rocksdb_store_test, readers_and_writers_may_outlive_the_store) {
  const auto body = pattern_bytes(3 * chunk_bytes + 3, 3);
  auto store = open();
  ASSERT_NE(store, nullptr);
  put(*store, "k", body);
  auto reader = store->open("k").value();
  auto writer = store->create("w").value();
  store.reset();
  EXPECT_EQ(reader->read(0, body.size()).value(), body);
  ASSERT_TRUE(writer->append(body));
  ASSERT_TRUE(writer->commit(entry_meta{}));
  reader.reset();
  writer.reset();
  // With the last user gone the directory is free again and holds both entries.
  store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->stats().entries, 2u);
  EXPECT_EQ(store->open("w").value()->read(0, body.size()).value(), body);
}

TEST_F(rocksdb_store_test, an_inline_reader_may_outlive_the_store) {
  // The reader holds the record as RocksDB's read left it (a pinned slice) and reads it after
  // the store, and a replacement, are gone. The record is read from a table and then from the
  // row cache, as warm hits are.
  const auto body = pattern_bytes(1000, 4);
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    put(*store, "small", body);
  }
  raw_db(db_path()).flush();
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_NE(store->open("small").value(), nullptr);
  auto reader = store->open("small").value();
  ASSERT_NE(reader, nullptr);
  put(*store, "small", "replaced");
  store.reset();
  EXPECT_EQ(reader->view(0, body.size()).value(), body);
  EXPECT_EQ(reader->read(10, 20).value(), body.substr(10, 20));
}

// Hits are answered from records kept in the block cache; every write must be seen by the next
// hit, whatever the hits before it left there.
TEST_F(rocksdb_store_test, a_hit_never_answers_with_a_version_a_write_replaced_or_removed) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const auto large = pattern_bytes(3 * chunk_bytes, 5);  // not inline
  const std::vector<std::string> versions = {"one", large, "three", pattern_bytes(100, 6)};
  for (const auto& body : versions) {
    put(*store, "k", body);
    for (int hit = 0; hit < 2; ++hit) {
      auto reader = store->open("k").value();
      ASSERT_NE(reader, nullptr);
      EXPECT_EQ(reader->read(0, body.size() + 1).value(), body);
      EXPECT_EQ(store->stat("k").value()->size, body.size());
    }
  }
  ASSERT_TRUE(store->remove("k"));
  EXPECT_EQ(store->open("k").value(), nullptr);
  EXPECT_FALSE(store->stat("k").value().has_value());
  put(*store, "k", "back");
  EXPECT_EQ(store->open("k").value()->read(0, 10).value(), "back");
}

TEST_F(rocksdb_store_test, hits_racing_writes_never_leave_an_older_version_behind) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  constexpr int writes = 300;
  put(*store, "k", "v0");
  std::atomic<bool> done{false};
  std::atomic<int> failed_reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      // Bounded: the writer ends after `writes` commits, and so do the readers.
      for (int i = 0; i < 1'000'000 && !done.load(); ++i) {
        auto reader = store->open("k");
        if (!reader || *reader == nullptr) failed_reads.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= writes; ++i) put(*store, "k", "v" + std::to_string(i));
  done = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(failed_reads.load(), 0);
  EXPECT_EQ(store->open("k").value()->read(0, 10).value(), "v" + std::to_string(writes));
}

}  // namespace
}  // namespace gomodproxy::cache
