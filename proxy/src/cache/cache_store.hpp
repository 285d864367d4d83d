// Bytes at rest: the cache store seam. Entries are written in chunks through an entry_writer and
// become visible only at commit, atomically; readers see one consistent committed version.
#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::cache {

template <class T>
using result = boost::system::result<T>;

enum class entry_kind : std::uint8_t {
  immutable = 0,  ///< .info/.mod/.zip of a canonical version: kept forever
  expiring = 1,   ///< list, @latest, query .info: fresh for a TTL, then refreshed (stale-if-error)
  not_found = 2,  ///< negative entry; the body is the plain-text reason
};

struct entry_meta {
  entry_kind kind = entry_kind::immutable;
  std::uint64_t size = 0;         ///< body bytes
  std::int64_t stored_at_ms = 0;  ///< unix epoch milliseconds at commit
  std::string tier;               ///< name of the tier the bytes came from ("" if none)
};

/// A body the store keeps as a file of its own, for sending without copying it through the
/// process (sendfile). The descriptor belongs to the reader: valid, and the bytes unchanged,
/// while the reader lives, even if the entry is replaced, removed or evicted meanwhile.
struct body_file {
  int fd = -1;
  std::uint64_t offset = 0;  ///< where the body's first byte is in the file
};

/// Reads one committed entry. Sees the version that was committed when it was opened, even if
/// the entry is overwritten or removed meanwhile. Not thread-safe; use from one thread at a time.
class entry_reader {
 public:
  virtual ~entry_reader() = default;
  virtual const entry_meta& meta() const = 0;
  /// Up to `max_bytes` starting at `offset`; shorter only at the end of the body, empty at or
  /// past the end.
  [[nodiscard]] virtual result<std::string> read(std::uint64_t offset, std::size_t max_bytes) = 0;
  /// Like read() without the copy: the bytes stay where the store keeps them, valid until the
  /// next call on this reader or its destruction. May stop short at an internal boundary (a
  /// chunk); empty only at or past the end of the body.
  [[nodiscard]] virtual result<std::string_view> view(std::uint64_t offset,
                                                      std::size_t max_bytes) = 0;
  /// The body's file when the store keeps it as one (meta().size bytes from its offset);
  /// nullopt when the body is only reachable through read() and view().
  virtual std::optional<body_file> file() const { return std::nullopt; }
};

/// Builds one new version of an entry. Destroying it without commit() abandons the bytes written
/// so far; they stay invisible and are collected later. Not thread-safe.
class entry_writer {
 public:
  virtual ~entry_writer() = default;
  /// Appends body bytes. Memory held is bounded by the store's chunk size, not the body size.
  [[nodiscard]] virtual result<void> append(std::string_view bytes) = 0;
  /// Bytes appended so far.
  virtual std::uint64_t size() const = 0;
  /// Random access to bytes appended so far (for verifying a body before commit).
  [[nodiscard]] virtual result<std::string> read(std::uint64_t offset, std::size_t max_bytes) = 0;
  /// Makes the entry visible, replacing any previous version in one atomic step. `meta.size`
  /// is set from the bytes appended; `meta.stored_at_ms` is set to now when passed as 0. After
  /// commit the writer may not be used again (further calls fail with cache_io).
  [[nodiscard]] virtual result<void> commit(entry_meta meta) = 0;
};

struct store_stats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};

/// How the size cap stands (cache_store::usage()).
struct cap_usage {
  std::uint64_t max_bytes = 0;      ///< the cap on the directory's size on disk; 0: none
  std::uint64_t disk_bytes = 0;     ///< that size when last measured; 0 when nothing measures it
  std::uint64_t evictions = 0;      ///< entries the cap evicted, over the directory's life
  std::uint64_t evicted_bytes = 0;  ///< body bytes of those entries
};

/// What the store's own memory holds now (cache_store::memory()).
struct memory_usage {
  std::uint64_t limit_bytes = 0;         ///< what the blocks and write buffers may take together
  std::uint64_t block_bytes = 0;         ///< metadata blocks kept in the block cache
  std::uint64_t write_buffer_bytes = 0;  ///< writes not yet flushed to files (memtables)
  std::uint64_t table_reader_bytes = 0;  ///< indexes and filters of the open table files
};

/// Thread-safe: any number of readers, writers and calls may run concurrently. Calls block on
/// disk I/O; keep them off the network I/O threads for large bodies. Readers and writers may
/// outlive the store object; the underlying storage closes when the last of them is gone.
class cache_store {
 public:
  virtual ~cache_store() = default;
  /// Committed metadata for `key`, or nullopt when absent.
  [[nodiscard]] virtual result<std::optional<entry_meta>> stat(std::string_view key) = 0;
  /// A reader for the committed entry, or nullptr when absent.
  [[nodiscard]] virtual result<std::unique_ptr<entry_reader>> open(std::string_view key) = 0;
  /// A writer for a new version of `key`. Concurrent writers of one key are allowed; the last
  /// commit wins.
  [[nodiscard]] virtual result<std::unique_ptr<entry_writer>> create(std::string_view key) = 0;
  /// Removes the committed entry (no-op when absent).
  [[nodiscard]] virtual result<void> remove(std::string_view key) = 0;
  /// Calls `visit` with the key and metadata of every committed entry, in key order, until it
  /// returns false. Entries committed or removed meanwhile may or may not be seen. An entry
  /// whose metadata cannot be decoded is visited with `damaged` set (and default metadata).
  [[nodiscard]] virtual result<void> for_each_entry(
      const std::function<bool(std::string_view key, const entry_meta& meta, bool damaged)>&
          visit) = 0;
  /// Deletes bytes of abandoned or replaced versions that no reader can reach any more.
  /// Returns how many pieces (chunks, body files) were deleted.
  [[nodiscard]] virtual result<std::uint64_t> collect_garbage() = 0;
  /// Committed entries and their body bytes (maintained incrementally, no scan).
  virtual store_stats stats() const = 0;
  /// The size cap and what it has done (no scan). Stores without a cap report zeros.
  virtual cap_usage usage() const { return {}; }
  /// The store's memory (no scan). Stores that keep nothing in memory report zeros.
  virtual memory_usage memory() const { return {}; }
};

struct rocksdb_options {
  std::string path;  ///< directory; created if missing
  /// Size of the chunks new entries are written in; a reader holds one whole chunk, so this is
  /// the store's memory per open large entry. Entries keep the chunk size they were written
  /// with. Default: 128 KiB
  std::size_t chunk_bytes = 128 << 10;
  /// Bodies up to this size are stored inside the metadata record (one Get per hit); at most
  /// chunk_bytes. Default: 64 KiB
  std::size_t inline_max_bytes = 64 << 10;
  /// New fills larger than inline_max_bytes keep their body as a file of its own under
  /// `path`/bodies (readers offer it through entry_reader::file()); false stores them in
  /// chunks of chunk_bytes inside RocksDB, as caches written before body files hold them.
  /// Both kinds are read whatever this says. Default: true
  bool body_files = true;
  /// Body files kept open after their readers close, least recently used closing first, so a
  /// hit on a body file needs no open, fstat and close (the file's size is checked when it is
  /// opened). Files of removed, replaced and evicted versions are closed as they are unlinked.
  /// At most an eighth of the process's descriptor limit; 0 keeps none. Default: 1024
  std::size_t open_body_files = 1024;
  /// Most memory RocksDB's block cache (metadata blocks only: chunks pass through no cache)
  /// and its write buffers take together; a flush starts when the write buffers would take
  /// more than half of it. At least min_memory_bytes. Default: 16 MiB
  std::size_t memory_bytes = 16 << 20;
  /// Most bytes the directory may take on disk. Past it a background thread of the store
  /// evicts the least recently used entries (size_cap::evictable ones) until the directory is
  /// at 90 % of it; opening an entry counts as a use. Default: 0 (no cap, no thread)
  std::uint64_t max_bytes = 0;
  /// Under a cap, an entry committed this recently is not evicted: the request that filled it
  /// opens it only after the commit (an open reader keeps what it reads), so evicting it sooner
  /// would answer that request "vanished". Default: 10 s
  std::chrono::milliseconds fresh_entry_grace{10000};
  /// Gives the memory malloc holds free back to the kernel; the store calls it from a thread of
  /// its own a second after a flush of chunks or the last open large entry closing, at most
  /// once a second. Tests replace it to see where and when it runs. Default: empty
  /// (malloc_trim(0))
  std::function<void()> release_free_memory;
};

/// The least rocksdb_options::memory_bytes may be: room for the write buffers of both column
/// families and a few blocks.
inline constexpr std::size_t min_memory_bytes = 1 << 20;

/// Opens (creating if needed) a RocksDB-backed store. cache_io when the directory cannot be
/// opened (for example, another process holds its lock) or the options are invalid
/// (chunk_bytes 0 or above 64 MiB, inline_max_bytes above chunk_bytes, memory_bytes below
/// min_memory_bytes); cache_corrupt when the
/// directory holds records of another layout. With a cap, the eviction thread starts at once and
/// first checks the directory (a directory walk, not a scan of the entries). A failure's detail
/// is a reason naming the path.
[[nodiscard]] outcome_of<std::unique_ptr<cache_store>> open_rocksdb_store(
    const rocksdb_options& options);

}  // namespace gomodproxy::cache
