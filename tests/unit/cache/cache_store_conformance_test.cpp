// Conformance suite for cache_store (after Athens' storage compliance tests): written against the
// interface only and instantiated per implementation at the bottom of this file. Each test gets a
// fresh directory; `reopen()` closes and reopens the store on it.
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/memory_store.hpp"
#include "common/errc.hpp"

extern char** environ;

namespace gomodproxy::cache {
namespace {

namespace fs = std::filesystem;

struct store_factory {
  std::string name;
  // Sizes the suite probes around; a store without these notions still passes with any values.
  std::size_t chunk_bytes = 0;
  std::size_t inline_max_bytes = 0;
  std::function<result<std::unique_ptr<cache_store>>(const fs::path&)> open;
  // Whether what the store holds outlives it on `dir` (reopen, a killed writer's leftovers on
  // disk). A store without it is not reopened by reopen(), and the tests of what a reopen finds
  // are skipped; every other check still applies to it.
  bool persistent = true;
};

// Test names already carry the factory name; this keeps failure lines readable.
void PrintTo(const store_factory& factory, std::ostream* out) { *out << factory.name; }

// Set in the environment of a child process that plays the crashing fill of the
// crash_leftovers test; names the directory the parent prepared.
constexpr const char* crash_child_env = "GMP_CACHE_CRASH_CHILD_DIR";

// Deterministic pseudo-random bytes (splitmix64), so large bodies can be regenerated piecewise
// instead of kept in memory.
class byte_stream {
 public:
  explicit byte_stream(std::uint64_t seed) : state_(seed) {}
  std::string next(std::size_t n) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
      const std::uint64_t word = step();
      std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, n - i));
    }
    return out;
  }

 private:
  std::uint64_t step() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

std::string random_bytes(std::size_t n, std::uint64_t seed) { return byte_stream(seed).next(n); }

// A 64-bit hash of a stream fed in pieces; independent of how the stream is cut, since bytes are
// mixed in 8-byte words and a partial word waits for the next piece.
class running_hash {
 public:
  void add(std::string_view bytes) {
    while (!bytes.empty() && pending_size_ > 0) {
      take_byte(bytes);
    }
    while (bytes.size() >= 8) {
      std::uint64_t word;
      std::memcpy(&word, bytes.data(), 8);
      mix(word);
      bytes.remove_prefix(8);
    }
    while (!bytes.empty()) {
      take_byte(bytes);
    }
  }
  std::uint64_t value() const {
    std::uint64_t tail = 0;
    std::memcpy(&tail, pending_, pending_size_);
    return (value_ ^ tail ^ (std::uint64_t{pending_size_} << 56)) * 0x100000001b3ull;
  }

 private:
  void take_byte(std::string_view& bytes) {
    pending_[pending_size_++ & 7] = bytes.front();  // the mask shows GCC the bound it cannot prove
    bytes.remove_prefix(1);
    if (pending_size_ == 8) {
      std::uint64_t word;
      std::memcpy(&word, pending_, 8);
      mix(word);
      pending_size_ = 0;
    }
  }
  void mix(std::uint64_t word) {
    value_ = (value_ ^ word) * 0x100000001b3ull;
    value_ ^= value_ >> 29;
  }
  std::uint64_t value_ = 0xcbf29ce484222325ull;
  char pending_[8] = {};
  std::size_t pending_size_ = 0;
};

std::string read_all(entry_reader& reader, std::size_t piece) {
  std::string out;
  const std::uint64_t max_reads = reader.meta().size / piece + 2;
  for (std::uint64_t i = 0; i < max_reads; ++i) {
    auto bytes = reader.read(out.size(), piece);
    if (!bytes) {
      ADD_FAILURE() << "read at " << out.size() << ": " << bytes.error().message();
      return out;
    }
    if (bytes->empty()) {
      return out;
    }
    out += *bytes;
  }
  ADD_FAILURE() << "reader did not reach the end after " << max_reads << " reads";
  return out;
}

entry_meta meta_of(entry_kind kind, std::string tier, std::int64_t stored_at_ms = 1) {
  entry_meta meta;
  meta.kind = kind;
  meta.tier = std::move(tier);
  meta.stored_at_ms = stored_at_ms;
  return meta;
}

class cache_store_conformance : public ::testing::TestWithParam<store_factory> {
 protected:
  void SetUp() override {
    if (const char* child_dir = std::getenv(crash_child_env)) {
      dir_ = child_dir;
      crash_child_ = true;
      return;
    }
    std::string pattern = (fs::temp_directory_path() / "gmp-cache-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store_ = open_store();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    if (!crash_child_) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
  }

  std::unique_ptr<cache_store> open_store() {
    auto store = GetParam().open(dir_);
    if (!store) {
      ADD_FAILURE() << "open store: " << store.error().message();
      return nullptr;
    }
    return std::move(*store);
  }

  void reopen() {
    if (!GetParam().persistent) {
      return;
    }
    store_.reset();
    store_ = open_store();
    ASSERT_NE(store_, nullptr);
  }

  std::size_t chunk() const { return GetParam().chunk_bytes; }
  std::size_t inline_max() const { return GetParam().inline_max_bytes; }

  // Writes in odd-sized appends so chunk boundaries never line up with append boundaries.
  void put(std::string_view key, std::string_view body,
           entry_meta meta = meta_of(entry_kind::immutable, "tier-a")) {
    auto writer = store_->create(key);
    ASSERT_TRUE(writer) << writer.error().message();
    for (std::size_t at = 0; at < body.size(); at += 7919) {
      ASSERT_TRUE((*writer)->append(body.substr(at, 7919)));
    }
    ASSERT_EQ((*writer)->size(), body.size());
    ASSERT_TRUE((*writer)->commit(std::move(meta)));
  }

  // The committed body of `key`, or nullopt when absent.
  std::optional<std::string> get(std::string_view key, std::size_t piece = 65536) {
    auto reader = store_->open(key);
    if (!reader) {
      ADD_FAILURE() << "open: " << reader.error().message();
      return std::nullopt;
    }
    if (*reader == nullptr) {
      return std::nullopt;
    }
    auto body = read_all(**reader, piece);
    EXPECT_EQ(body.size(), (*reader)->meta().size);
    return body;
  }

  void expect_stats(std::uint64_t entries, std::uint64_t bytes) {
    const auto stats = store_->stats();
    EXPECT_EQ(stats.entries, entries);
    EXPECT_EQ(stats.bytes, bytes);
  }

  fs::path dir_;
  bool crash_child_ = false;
  std::unique_ptr<cache_store> store_;
};

TEST_P(cache_store_conformance, absent_key) {
  auto meta = store_->stat("example.com/m/@v/list");
  ASSERT_TRUE(meta);
  EXPECT_FALSE(meta->has_value());
  auto reader = store_->open("example.com/m/@v/list");
  ASSERT_TRUE(reader);
  EXPECT_EQ(*reader, nullptr);
  EXPECT_TRUE(store_->remove("example.com/m/@v/list"));
  expect_stats(0, 0);
}

TEST_P(cache_store_conformance, small_value_round_trips_with_metadata) {
  const std::string body = R"({"Version":"v1.2.3","Time":"2023-01-02T03:04:05Z"})";
  put("example.com/m/@v/v1.2.3.info", body,
      meta_of(entry_kind::expiring, "goproxy.cn", 1700000000123));

  auto meta = store_->stat("example.com/m/@v/v1.2.3.info");
  ASSERT_TRUE(meta);
  ASSERT_TRUE(meta->has_value());
  EXPECT_EQ((*meta)->kind, entry_kind::expiring);
  EXPECT_EQ((*meta)->size, body.size());
  EXPECT_EQ((*meta)->stored_at_ms, 1700000000123);
  EXPECT_EQ((*meta)->tier, "goproxy.cn");

  auto reader = store_->open("example.com/m/@v/v1.2.3.info");
  ASSERT_TRUE(reader);
  ASSERT_NE(*reader, nullptr);
  EXPECT_EQ((*reader)->meta().kind, entry_kind::expiring);
  EXPECT_EQ((*reader)->meta().tier, "goproxy.cn");
  EXPECT_EQ((*reader)->meta().size, body.size());
  EXPECT_EQ((*reader)->read(0, 1 << 20).value(), body);
  EXPECT_EQ((*reader)->read(3, 7).value(), body.substr(3, 7));
  EXPECT_EQ((*reader)->read(body.size() - 2, 100).value(), body.substr(body.size() - 2));
  expect_stats(1, body.size());
}

TEST_P(cache_store_conformance, every_kind_and_empty_tier_round_trip) {
  const std::vector<entry_kind> kinds = {entry_kind::immutable, entry_kind::expiring,
                                         entry_kind::not_found};
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const std::string key = "k" + std::to_string(i);
    put(key, "body" + std::to_string(i), meta_of(kinds[i], "", 42));
    auto meta = store_->stat(key);
    ASSERT_TRUE(meta);
    ASSERT_TRUE(meta->has_value());
    EXPECT_EQ((*meta)->kind, kinds[i]);
    EXPECT_EQ((*meta)->tier, "");
    EXPECT_EQ((*meta)->stored_at_ms, 42);
  }
}

TEST_P(cache_store_conformance, stored_at_defaults_to_commit_time) {
  const auto now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto before = now();
  put("k", "v", meta_of(entry_kind::immutable, "t", 0));
  const auto after = now();
  auto meta = store_->stat("k");
  ASSERT_TRUE(meta);
  ASSERT_TRUE(meta->has_value());
  EXPECT_GE((*meta)->stored_at_ms, before);
  EXPECT_LE((*meta)->stored_at_ms, after);
}

TEST_P(cache_store_conformance, empty_value) {
  put("empty", "");
  auto meta = store_->stat("empty");
  ASSERT_TRUE(meta);
  ASSERT_TRUE(meta->has_value());
  EXPECT_EQ((*meta)->size, 0u);
  auto body = get("empty");
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "");
  expect_stats(1, 0);
}

TEST_P(cache_store_conformance, sizes_around_inline_and_chunk_boundaries_round_trip) {
  const std::size_t sizes[] = {
      1,       inline_max() - 1, inline_max(), inline_max() + 1, chunk() - 1,
      chunk(), chunk() + 1,      2 * chunk(),  3 * chunk() + 17};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    SCOPED_TRACE("size " + std::to_string(sizes[i]));
    const std::string key = "size/" + std::to_string(i);
    const auto body = random_bytes(sizes[i], i);
    put(key, body);
    total += body.size();
    auto meta = store_->stat(key);
    ASSERT_TRUE(meta);
    ASSERT_TRUE(meta->has_value());
    EXPECT_EQ((*meta)->size, body.size());
    for (const std::size_t piece : {std::size_t{1000}, chunk(), std::size_t{1} << 22}) {
      auto read_back = get(key, piece);
      ASSERT_TRUE(read_back);
      EXPECT_TRUE(*read_back == body) << "piece " << piece;
    }
  }
  expect_stats(std::size(sizes), total);
}

TEST_P(cache_store_conformance, multi_chunk_value_supports_random_reads) {
  const auto body = random_bytes(5 * chunk() + chunk() / 3 + 11, 7);
  put("zip", body);
  auto reader = store_->open("zip");
  ASSERT_TRUE(reader);
  ASSERT_NE(*reader, nullptr);

  // Fixed probes across each chunk boundary, then random ones.
  std::vector<std::pair<std::uint64_t, std::size_t>> probes;
  for (std::size_t boundary = chunk(); boundary < body.size(); boundary += chunk()) {
    probes.emplace_back(boundary - 3, 10);
    probes.emplace_back(boundary, 1);
    probes.emplace_back(boundary - 1, chunk() + 2);
  }
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200; ++i) {
    probes.emplace_back(rng() % (body.size() + 10), rng() % (2 * chunk() + 5));
  }
  for (const auto& [offset, length] : probes) {
    auto bytes = (*reader)->read(offset, length);
    ASSERT_TRUE(bytes) << bytes.error().message();
    const std::string expected =
        offset >= body.size() ? std::string{} : body.substr(offset, length);
    ASSERT_TRUE(*bytes == expected) << "offset " << offset << " length " << length;
  }
}

TEST_P(cache_store_conformance, views_match_reads_and_never_cross_a_chunk) {
  for (std::size_t size : {std::size_t{1}, chunk() - 1, 5 * chunk() + chunk() / 3 + 11}) {
    const auto body = random_bytes(size, 11);
    put("zip", body);
    auto reader = store_->open("zip");
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 100; ++i) {
      const std::uint64_t offset = rng() % (body.size() + 10);
      const std::size_t length = 1 + rng() % (2 * chunk() + 5);
      auto bytes = (*reader)->view(offset, length);
      ASSERT_TRUE(bytes) << bytes.error().message();
      if (offset >= body.size()) {
        EXPECT_TRUE(bytes->empty()) << "offset " << offset;
        continue;
      }
      // Short only at the end of the body or of a chunk, never empty before the end.
      const std::size_t to_chunk_end = chunk() - offset % chunk();
      const std::size_t expected_size =
          std::min({length, static_cast<std::size_t>(body.size() - offset), to_chunk_end});
      ASSERT_GE(bytes->size(), std::size_t{1});
      ASSERT_LE(bytes->size(), expected_size);
      ASSERT_TRUE(*bytes == std::string_view(body).substr(offset, bytes->size()))
          << "offset " << offset << " length " << length;
    }
    // Streaming by views reassembles the body exactly.
    std::string whole;
    while (whole.size() < body.size()) {
      auto piece = (*reader)->view(whole.size(), 1 << 20);
      ASSERT_TRUE(piece);
      ASSERT_FALSE(piece->empty());
      whole.append(*piece);
    }
    EXPECT_TRUE(whole == body);
  }
}

TEST_P(cache_store_conformance, for_each_entry_visits_committed_entries_in_key_order) {
  put("b", random_bytes(3 * chunk() + 5, 1));  // chunked
  put("a", "small");
  put("c", "gone");
  ASSERT_TRUE(store_->remove("c"));
  {
    auto abandoned = store_->create("d");  // never committed: invisible
    ASSERT_TRUE(abandoned);
    ASSERT_TRUE((*abandoned)->append("x"));
  }
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  ASSERT_TRUE(
      store_->for_each_entry([&](std::string_view key, const entry_meta& meta, bool damaged) {
        EXPECT_FALSE(damaged);
        seen.emplace_back(std::string(key), meta.size);
        return true;
      }));
  const std::vector<std::pair<std::string, std::uint64_t>> want = {{"a", 5},
                                                                   {"b", 3 * chunk() + 5}};
  EXPECT_EQ(seen, want);
  // Stopping early is honoured.
  int visits = 0;
  ASSERT_TRUE(store_->for_each_entry([&](std::string_view, const entry_meta&, bool) {
    ++visits;
    return false;
  }));
  EXPECT_EQ(visits, 1);
}

TEST_P(cache_store_conformance, large_value_streams_in_bounded_pieces) {
  constexpr std::size_t total = 48u << 20;
  constexpr std::size_t append_piece = 1u << 20;
  constexpr std::size_t read_piece = 256u << 10;
  running_hash written;
  {
    auto writer = store_->create("example.com/big/@v/v1.0.0.zip");
    ASSERT_TRUE(writer);
    byte_stream stream(2024);
    for (std::size_t at = 0; at < total; at += append_piece) {
      const auto piece = stream.next(append_piece);
      written.add(piece);
      ASSERT_TRUE((*writer)->append(piece));
    }
    ASSERT_EQ((*writer)->size(), total);
    ASSERT_TRUE((*writer)->commit(meta_of(entry_kind::immutable, "direct")));
  }
  expect_stats(1, total);

  auto reader = store_->open("example.com/big/@v/v1.0.0.zip");
  ASSERT_TRUE(reader);
  ASSERT_NE(*reader, nullptr);
  ASSERT_EQ((*reader)->meta().size, total);
  running_hash read_back;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i <= total / read_piece; ++i) {
    auto piece = (*reader)->read(offset, read_piece);
    ASSERT_TRUE(piece) << piece.error().message();
    if (piece->empty()) {
      break;
    }
    ASSERT_LE(piece->size(), read_piece);
    read_back.add(*piece);
    offset += piece->size();
  }
  EXPECT_EQ(offset, total);
  EXPECT_EQ(read_back.value(), written.value());
}

TEST_P(cache_store_conformance, writer_reads_its_bytes_before_commit) {
  const auto body = random_bytes(3 * chunk() + chunk() / 2, 11);
  auto writer = store_->create("k");
  ASSERT_TRUE(writer);
  std::mt19937_64 rng(5);
  std::size_t appended = 0;
  while (appended < body.size()) {
    const std::size_t n = std::min<std::size_t>(body.size() - appended, 1 + rng() % chunk());
    ASSERT_TRUE((*writer)->append(std::string_view(body).substr(appended, n)));
    appended += n;
    ASSERT_EQ((*writer)->size(), appended);
    // Probe what is there so far, including the newest bytes.
    for (int i = 0; i < 10; ++i) {
      const std::uint64_t offset = rng() % (appended + 3);
      const std::size_t length = rng() % (chunk() + 7);
      auto bytes = (*writer)->read(offset, length);
      ASSERT_TRUE(bytes) << bytes.error().message();
      const std::string expected = offset >= appended
                                       ? std::string{}
                                       : body.substr(offset, std::min(length, appended - offset));
      ASSERT_TRUE(*bytes == expected) << "offset " << offset << " length " << length;
    }
  }
  for (std::size_t boundary = chunk(); boundary < body.size(); boundary += chunk()) {
    EXPECT_EQ((*writer)->read(boundary - 2, 4).value(), body.substr(boundary - 2, 4));
  }
  EXPECT_EQ((*writer)->read(0, body.size() + 100).value(), body);
  EXPECT_EQ((*writer)->read(body.size(), 10).value(), "");
  ASSERT_TRUE((*writer)->commit(meta_of(entry_kind::immutable, "t")));
  auto stored = get("k");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == body);
}

TEST_P(cache_store_conformance, nothing_is_visible_before_commit) {
  put("old", "previous version");
  for (const std::size_t size : {std::size_t{10}, 4 * chunk() + 1}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const auto body = random_bytes(size, size);
    for (const std::string key : {"new", "old"}) {
      auto writer = store_->create(key);
      ASSERT_TRUE(writer);
      ASSERT_TRUE((*writer)->append(body));
      auto meta = store_->stat(key);
      ASSERT_TRUE(meta);
      auto reader = store_->open(key);
      ASSERT_TRUE(reader);
      if (key == "new") {
        EXPECT_FALSE(meta->has_value());
        EXPECT_EQ(*reader, nullptr);
      } else {
        ASSERT_TRUE(meta->has_value());
        EXPECT_EQ((*meta)->size, std::string("previous version").size());
        ASSERT_NE(*reader, nullptr);
        EXPECT_EQ(read_all(**reader, 1000), "previous version");
      }
      expect_stats(1, std::string("previous version").size());
    }
  }
}

TEST_P(cache_store_conformance, abandoned_writer_leaves_nothing_and_is_collected) {
  {
    auto writer = store_->create("abandoned");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(random_bytes(3 * chunk() + 100, 1)));
  }
  {
    auto writer = store_->create("abandoned-small");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append("tiny"));
  }
  for (const char* key : {"abandoned", "abandoned-small"}) {
    auto meta = store_->stat(key);
    ASSERT_TRUE(meta);
    EXPECT_FALSE(meta->has_value());
    auto reader = store_->open(key);
    ASSERT_TRUE(reader);
    EXPECT_EQ(*reader, nullptr);
  }
  expect_stats(0, 0);
  // A store may delete what an abandoned writer wrote at once or leave it to this.
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  auto again = store_->collect_garbage();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  // The key is still usable afterwards.
  put("abandoned", "fresh");
  EXPECT_EQ(get("abandoned").value_or("<absent>"), "fresh");
}

TEST_P(cache_store_conformance, collect_garbage_spares_writers_in_progress) {
  const auto body = random_bytes(4 * chunk() + 5, 3);
  auto writer = store_->create("in-progress");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->append(std::string_view(body).substr(0, 3 * chunk())));
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 0u);
  EXPECT_EQ((*writer)->read(0, chunk()).value(), body.substr(0, chunk()));
  ASSERT_TRUE((*writer)->append(std::string_view(body).substr(3 * chunk())));
  ASSERT_TRUE((*writer)->commit(meta_of(entry_kind::immutable, "t")));
  writer->reset();
  collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 0u);
  auto stored = get("in-progress");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == body);
}

TEST_P(cache_store_conformance, overwrite_last_commit_wins) {
  const auto v1 = random_bytes(3 * chunk() + 1, 1);
  const std::string v2 = "small second version";
  const auto v3 = random_bytes(2 * chunk() + 9, 3);
  put("k", v1, meta_of(entry_kind::immutable, "one"));
  expect_stats(1, v1.size());
  put("k", v2, meta_of(entry_kind::expiring, "two"));
  expect_stats(1, v2.size());
  EXPECT_EQ(get("k").value_or(""), v2);
  EXPECT_EQ(store_->stat("k").value().value().tier, "two");
  put("k", v3, meta_of(entry_kind::not_found, "three"));
  expect_stats(1, v3.size());
  auto stored = get("k");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == v3);
  auto meta = store_->stat("k").value().value();
  EXPECT_EQ(meta.kind, entry_kind::not_found);
  EXPECT_EQ(meta.tier, "three");
  EXPECT_EQ(meta.size, v3.size());
  ASSERT_TRUE(store_->collect_garbage());
  stored = get("k");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == v3);
}

TEST_P(cache_store_conformance, reader_keeps_its_version_through_overwrite_and_remove) {
  const auto v1 = random_bytes(6 * chunk() + 123, 1);
  const auto v2 = random_bytes(2 * chunk() + 7, 2);
  put("k", v1);
  auto old_reader = store_->open("k");
  ASSERT_TRUE(old_reader);
  ASSERT_NE(*old_reader, nullptr);
  // Part of the old version is read before the overwrite, the rest after.
  std::string seen = (*old_reader)->read(0, chunk() + 10).value();

  put("k", v2);
  auto new_reader = store_->open("k");
  ASSERT_TRUE(new_reader);
  ASSERT_NE(*new_reader, nullptr);
  ASSERT_TRUE(store_->remove("k"));
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);

  EXPECT_EQ((*old_reader)->meta().size, v1.size());
  while (seen.size() < v1.size()) {
    auto piece = (*old_reader)->read(seen.size(), chunk() / 2 + 1);
    ASSERT_TRUE(piece) << piece.error().message();
    ASSERT_FALSE(piece->empty());
    seen += *piece;
  }
  EXPECT_TRUE(seen == v1);
  // Random access into the old version still works, including its first chunk again.
  EXPECT_EQ((*old_reader)->read(5, 20).value(), v1.substr(5, 20));

  EXPECT_TRUE(read_all(**new_reader, 4096) == v2);
  auto gone = store_->open("k");
  ASSERT_TRUE(gone);
  EXPECT_EQ(*gone, nullptr);
  expect_stats(0, 0);
}

TEST_P(cache_store_conformance, remove_deletes_only_that_entry) {
  const auto big = random_bytes(2 * chunk() + 3, 4);
  put("a", big);
  put("b", "bee");
  ASSERT_TRUE(store_->remove("a"));
  auto meta = store_->stat("a");
  ASSERT_TRUE(meta);
  EXPECT_FALSE(meta->has_value());
  EXPECT_FALSE(get("a").has_value());
  EXPECT_EQ(get("b").value_or(""), "bee");
  expect_stats(1, 3);
  ASSERT_TRUE(store_->remove("a"));
  expect_stats(1, 3);
  put("a", "again");
  EXPECT_EQ(get("a").value_or(""), "again");
  expect_stats(2, 8);
}

TEST_P(cache_store_conformance, stats_follow_commits_overwrites_removes_and_reopen) {
  struct step {
    enum { put, remove, reopen } op;
    std::string key;
    std::size_t size;
  };
  const std::vector<step> steps = {
      {step::put, "a", 10},
      {step::put, "b", 3 * chunk() + 1},
      {step::put, "a", 0},
      {step::reopen, "", 0},
      {step::put, "c", inline_max() + 1},
      {step::remove, "b", 0},
      {step::remove, "missing", 0},
      {step::put, "a", chunk()},
      {step::reopen, "", 0},
      {step::remove, "a", 0},
      {step::put, "d", 1},
      {step::reopen, "", 0},
  };
  std::map<std::string, std::size_t> model;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const auto& s = steps[i];
    switch (s.op) {
      case step::put:
        put(s.key, random_bytes(s.size, i));
        model[s.key] = s.size;
        break;
      case step::remove:
        ASSERT_TRUE(store_->remove(s.key));
        model.erase(s.key);
        break;
      case step::reopen:
        reopen();
        break;
    }
    std::uint64_t bytes = 0;
    for (const auto& [key, size] : model) {
      bytes += size;
    }
    expect_stats(model.size(), bytes);
  }
}

// The child half of crash_leftovers: commits one entry, leaves fills in progress, and is killed.
[[noreturn]] void run_crashing_fill(const store_factory& factory, const fs::path& dir) {
  auto store = factory.open(dir);
  if (!store) {
    _exit(2);
  }
  const auto kept = random_bytes(2 * factory.chunk_bytes + 77, 1);
  auto writer = (*store)->create("kept");
  if (!writer || !(*writer)->append(kept) ||
      !(*writer)->commit(meta_of(entry_kind::immutable, "t"))) {
    _exit(3);
  }
  auto abandoned = (*store)->create("abandoned");
  auto small = (*store)->create("abandoned-small");
  if (!abandoned || !small || !(*small)->append("x")) {
    _exit(4);
  }
  byte_stream stream(5);
  for (int i = 0; i < 6; ++i) {
    if (!(*abandoned)->append(stream.next(1u << 20))) {
      _exit(5);
    }
  }
  // As kill -9 would: no destructors, no flush, no unlock.
  std::raise(SIGKILL);
  _exit(6);
}

TEST_P(cache_store_conformance, crash_leftovers_are_invisible_and_collected) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << "nothing of a killed process's store outlives it";
  }
  if (crash_child_) {
    run_crashing_fill(GetParam(), dir_);
  }
  store_.reset();  // the child needs the directory unlocked

  // Re-run this very test in a fresh process (fork alone would copy a process that has run
  // other stores' threads); the environment variable switches it to the child role.
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string filter =
      std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  std::string self = "/proc/self/exe";
  std::string child_env = std::string(crash_child_env) + "=" + dir_.string();
  std::vector<char*> argv = {self.data(), filter.data(), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  envp.push_back(child_env.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execve(self.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit status " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  const auto kept = random_bytes(2 * chunk() + 77, 1);
  auto stored = get("kept");
  ASSERT_TRUE(stored) << "a committed entry must survive the kill";
  EXPECT_TRUE(*stored == kept);
  EXPECT_FALSE(get("abandoned").has_value());
  EXPECT_FALSE(get("abandoned-small").has_value());
  expect_stats(1, kept.size());

  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_GT(*collected, 0u);
  auto again = store_->collect_garbage();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  stored = get("kept");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == kept);

  // New fills after the crash must not collide with the dead process's leftovers.
  put("after", random_bytes(3 * chunk(), 8));
  stored = get("after");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == random_bytes(3 * chunk(), 8));
  stored = get("kept");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored == kept);
}

TEST_P(cache_store_conformance, interleaved_writers_of_one_key_last_commit_wins) {
  const auto first = random_bytes(3 * chunk() + 5, 1);
  const auto second = random_bytes(2 * chunk() + 9, 2);
  auto a = store_->create("k");
  auto b = store_->create("k");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  for (std::size_t at = 0; at < std::max(first.size(), second.size()); at += 1000) {
    if (at < first.size()) {
      ASSERT_TRUE((*a)->append(std::string_view(first).substr(at, 1000)));
    }
    if (at < second.size()) {
      ASSERT_TRUE((*b)->append(std::string_view(second).substr(at, 1000)));
    }
  }
  ASSERT_TRUE((*b)->commit(meta_of(entry_kind::immutable, "b")));
  EXPECT_TRUE(get("k").value_or("") == second);
  ASSERT_TRUE((*a)->commit(meta_of(entry_kind::immutable, "a")));
  EXPECT_TRUE(get("k").value_or("") == first);
  EXPECT_EQ(store_->stat("k").value().value().tier, "a");
  expect_stats(1, first.size());
}

TEST_P(cache_store_conformance, concurrent_writers_of_one_key_never_mix_versions) {
  constexpr int writers = 2;
  constexpr int rounds = 4;
  // Version (w, r) is random bytes of a size that differs per version, seeded by both.
  const auto version_size = [this](int w, int r) {
    return 2 * chunk() + static_cast<std::size_t>(w * 1000 + r * 97);
  };
  const auto version_seed = [](int w, int r) { return 1000u + static_cast<unsigned>(w * 10 + r); };
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int r = 0; r < rounds; ++r) {
        const auto body = random_bytes(version_size(w, r), version_seed(w, r));
        auto writer = store_->create("shared");
        if (!writer) {
          ADD_FAILURE() << "create";
          break;
        }
        for (std::size_t at = 0; at < body.size(); at += 3001) {
          if (!(*writer)->append(std::string_view(body).substr(at, 3001))) {
            ADD_FAILURE() << "append";
          }
        }
        if (!(*writer)->commit(meta_of(entry_kind::immutable, std::to_string(w * 10 + r)))) {
          ADD_FAILURE() << "commit";
        }
      }
      ++done;
    });
  }
  // Every observed entry must be exactly the version its tier names.
  // Failures here must not skip the joins below, hence EXPECT and break rather than ASSERT.
  int observed = 0;
  for (int i = 0; i < 200 && done.load() < writers; ++i) {
    auto reader = store_->open("shared");
    if (!reader) {
      ADD_FAILURE() << "open: " << reader.error().message();
      break;
    }
    if (*reader == nullptr) {
      std::this_thread::yield();
      continue;
    }
    const int id = std::stoi((*reader)->meta().tier);
    const auto body = read_all(**reader, 5000);
    const bool whole_version =
        body == random_bytes(version_size(id / 10, id % 10), version_seed(id / 10, id % 10));
    EXPECT_TRUE(whole_version) << "version " << id;
    if (!whole_version) {
      break;
    }
    ++observed;
  }
  for (auto& t : threads) {
    t.join();
  }
  auto meta = store_->stat("shared");
  ASSERT_TRUE(meta);
  ASSERT_TRUE(meta->has_value());
  const int id = std::stoi((*meta)->tier);
  EXPECT_EQ(id % 10, rounds - 1) << "the last commit is some writer's last round";
  auto stored = get("shared");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(*stored ==
              random_bytes(version_size(id / 10, id % 10), version_seed(id / 10, id % 10)));
  expect_stats(1, stored->size());
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 0u) << "every writer committed; nothing was abandoned";
  RecordProperty("observed_versions", observed);
}

TEST_P(cache_store_conformance, awkward_keys_stay_distinct) {
  const std::vector<std::string> keys = {
      "",
      std::string("a"),
      std::string("a\0", 2),
      std::string("a\0b", 3),
      std::string("\0", 1),
      std::string("\0\0\xff", 3),
      "a/b",
      "a/",
      "/",
      "!",
      "github.com/!azure/azure-sdk-for-go/@v/list",
      "github.com/!azure/azure-sdk-for-go/@v/v1.0.0.zip",
      "m",
      "f",
      "s",
      "n",
      "v",
      std::string(5000, 'k') + "/@v/list",
      std::string(70000, '\xff'),
  };
  const auto body_of = [this](std::size_t i) {
    // Alternate inline and chunked bodies so both kinds of storage meet every key shape.
    return random_bytes(i % 2 == 0 ? 10 + i : chunk() + i, i);
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    put(keys[i], body_of(i));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE("key " + std::to_string(i));
    auto stored = get(keys[i]);
    ASSERT_TRUE(stored);
    EXPECT_TRUE(*stored == body_of(i));
  }
  ASSERT_TRUE(store_->remove(std::string("a\0", 2)));
  ASSERT_TRUE(store_->remove(""));
  reopen();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE("key " + std::to_string(i) + " after reopen");
    auto stored = get(keys[i]);
    if (i == 0 || i == 2) {
      EXPECT_FALSE(stored.has_value());
    } else {
      ASSERT_TRUE(stored);
      EXPECT_TRUE(*stored == body_of(i));
    }
  }
}

TEST_P(cache_store_conformance, committed_entries_persist_across_reopen) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << "the store keeps nothing across a reopen";
  }
  const auto big = random_bytes(4 * chunk() + 321, 6);
  put("inline", "small", meta_of(entry_kind::expiring, "tier-x", 77));
  put("chunked", big, meta_of(entry_kind::immutable, "tier-y", 88));
  put("gone", "bye");
  ASSERT_TRUE(store_->remove("gone"));
  reopen();
  auto meta = store_->stat("inline").value();
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->kind, entry_kind::expiring);
  EXPECT_EQ(meta->tier, "tier-x");
  EXPECT_EQ(meta->stored_at_ms, 77);
  EXPECT_EQ(get("inline").value_or(""), "small");
  meta = store_->stat("chunked").value();
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->tier, "tier-y");
  EXPECT_EQ(meta->size, big.size());
  EXPECT_TRUE(get("chunked").value_or("") == big);
  EXPECT_FALSE(get("gone").has_value());
  expect_stats(2, 5 + big.size());
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 0u);
}

TEST_P(cache_store_conformance, reads_at_or_past_the_end_are_empty) {
  const auto big = random_bytes(2 * chunk() + 1, 9);
  put("small", "abc");
  put("big", big);
  put("empty", "");
  const std::vector<std::pair<std::string, std::uint64_t>> cases = {
      {"small", 3},
      {"small", 4},
      {"small", UINT64_MAX},
      {"big", big.size()},
      {"big", big.size() + 1},
      {"big", UINT64_MAX},
      {"empty", 0},
      {"empty", 1},
  };
  for (const auto& [key, offset] : cases) {
    auto reader = store_->open(key);
    ASSERT_TRUE(reader);
    ASSERT_NE(*reader, nullptr);
    auto bytes = (*reader)->read(offset, 100);
    ASSERT_TRUE(bytes) << key << " at " << offset;
    EXPECT_EQ(*bytes, "") << key << " at " << offset;
  }
  auto reader = store_->open("big").value();
  EXPECT_EQ(reader->read(0, 0).value(), "");
  EXPECT_EQ(reader->read(big.size() - 1, 100).value(), big.substr(big.size() - 1));
}

TEST_P(cache_store_conformance, writer_is_spent_after_commit) {
  auto writer = store_->create("k");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->append("abc"));
  ASSERT_TRUE((*writer)->commit(meta_of(entry_kind::immutable, "t")));
  EXPECT_FALSE((*writer)->append("more"));
  EXPECT_FALSE((*writer)->commit(meta_of(entry_kind::immutable, "t")));
  EXPECT_EQ(get("k").value_or(""), "abc");
  expect_stats(1, 3);
}

// ---- Implementations -------------------------------------------------------------------------

store_factory rocksdb_factory(std::string name, std::size_t chunk_bytes,
                              std::size_t inline_max_bytes, bool body_files) {
  return {name, chunk_bytes, inline_max_bytes,
          [chunk_bytes, inline_max_bytes,
           body_files](const fs::path& dir) -> result<std::unique_ptr<cache_store>> {
            rocksdb_options options;
            options.body_files = body_files;
            options.path = dir.string();
            options.chunk_bytes = chunk_bytes;
            options.inline_max_bytes = inline_max_bytes;
            options.memory_bytes = 8u << 20;
            auto opened = open_rocksdb_store(options);
            if (!opened) return opened.error().code;
            return std::move(*opened);
          }};
}

INSTANTIATE_TEST_SUITE_P(
    rocksdb, cache_store_conformance,
    ::testing::Values(rocksdb_factory("small_files", 4096, 1000, true),
                      rocksdb_factory("default_files", 128u << 10, 64u << 10, true),
                      rocksdb_factory("small_chunks", 4096, 1000, false),
                      rocksdb_factory("default_chunks", 1u << 20, 64u << 10, false)),
    [](const auto& info) { return info.param.name; });

store_factory memory_factory(std::string name, std::size_t chunk_bytes) {
  store_factory factory;
  factory.name = std::move(name);
  factory.chunk_bytes = chunk_bytes;
  // No inline bodies; any size the boundary probes use will do.
  factory.inline_max_bytes = 1000;
  factory.persistent = false;
  factory.open = [chunk_bytes](const fs::path&) {
    memory_options options;
    options.chunk_bytes = chunk_bytes;
    return open_memory_store(options);
  };
  return factory;
}

INSTANTIATE_TEST_SUITE_P(memory, cache_store_conformance,
                         ::testing::Values(memory_factory("small_chunks", 4096),
                                           memory_factory("default_chunks", 128u << 10)),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace gomodproxy::cache
