// Private to the cache: the pieces of the size cap that need no RocksDB (which keys may go,
// recency kept in memory between batched writes, least-recently-used selection, the
// directory's size on disk), kept apart from the store so tests can drive them directly.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gomodproxy::cache::size_cap {

/// Whether the cap may evict `key`. Checksum-database answers (`/sumdb/...`: tiles, lookups,
/// latest) and the remembered verified tree heads (`/gomodproxy/...`) are proofs that cannot
/// always be fetched again as they were, so they stay; everything else can be refetched.
[[nodiscard]] bool evictable(std::string_view key);

/// Bytes the files under `dir` take on disk (allocated blocks, as du counts them, so a
/// preallocated log counts in full). Files that vanish during the walk are skipped; nullopt
/// when `dir` cannot be read.
[[nodiscard]] std::optional<std::uint64_t> disk_usage(const std::string& dir);

/// disk_usage, leaving out table (.sst) and blob (.blob) files whose number `live` rejects:
/// files the database no longer uses and deletes in the background.
[[nodiscard]] std::optional<std::uint64_t> disk_usage(
    const std::string& dir, const std::function<bool(std::uint64_t file_number)>& live);

/// Last-use times of entries since they were last taken for writing. Thread-safe; touch() is
/// a hashed shard's mutex and one map assignment, cheap enough for every cache hit.
class recency_table {
 public:
  void touch(std::string_view key, std::int64_t used_at_ms);
  /// The time recorded for `key` since the last take(), or nullopt.
  [[nodiscard]] std::optional<std::int64_t> find(std::string_view key) const;
  void forget(std::string_view key);
  /// Everything recorded so far, removed from the table.
  [[nodiscard]] std::vector<std::pair<std::string, std::int64_t>> take();
  [[nodiscard]] std::size_t size() const;

 private:
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::int64_t> used_at;
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_for(std::string_view key);
  const shard& shard_for(std::string_view key) const;
  std::array<shard, shard_count> shards_;
};

struct candidate {
  std::string key;
  std::int64_t last_use_ms = 0;
  std::uint64_t bytes = 0;        ///< what evicting it frees, as counted toward the cap
  std::int64_t stored_at_ms = 0;  ///< of the version seen, so a newer one is left alone
};

/// Keeps, of every candidate offered, the least recently used ones whose bytes add up to at
/// least `wanted` (all of them when the offers add up to less). Memory grows with what is kept,
/// not with what is offered.
class lru_picker {
 public:
  explicit lru_picker(std::uint64_t wanted) : wanted_(wanted) {}
  void offer(candidate offered);
  /// The kept candidates, least recently used first.
  [[nodiscard]] std::vector<candidate> take();
  [[nodiscard]] std::uint64_t kept_bytes() const { return kept_bytes_; }

 private:
  struct newer_first {
    bool operator()(const candidate& a, const candidate& b) const {
      return a.last_use_ms < b.last_use_ms;
    }
  };
  std::uint64_t wanted_;
  std::uint64_t kept_bytes_ = 0;
  std::priority_queue<candidate, std::vector<candidate>, newer_first> kept_;
};

}  // namespace gomodproxy::cache::size_cap
