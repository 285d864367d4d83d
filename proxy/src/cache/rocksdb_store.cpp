// The RocksDB cache store. Record layout: rocksdb_layout.hpp. Every rocksdb::Status is turned into
// an errc here; nothing RocksDB leaves this file.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/open_file_cache.hpp"
#include "cache/rocksdb_layout.hpp"
#include "cache/size_cap.hpp"
#include "common/errc.hpp"

namespace gomodproxy::cache {
namespace {

namespace rdb = ::rocksdb;

// Chunks are held whole in memory by writers and readers, and chunk_key stores the index in 32
// bits; 64 MiB keeps both sane.
constexpr std::size_t max_chunk_bytes = 64u << 20;
// Fill ids are reserved from the persistent counter in blocks so a create() rarely writes it.
constexpr std::uint64_t fill_id_block = 1u << 16;

boost::system::error_code to_error(const rdb::Status& status) {
  return status.IsCorruption() ? errc::cache_corrupt : errc::cache_io;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rdb::CompressionType small_record_compression() {
  const auto supported = rdb::GetSupportedCompressions();
  for (const auto wanted : {rdb::kLZ4Compression, rdb::kSnappyCompression}) {
    if (std::find(supported.begin(), supported.end(), wanted) != supported.end()) {
      return wanted;
    }
  }
  return rdb::kNoCompression;
}

// Hands the memory malloc keeps free back to the kernel, from a thread of its own: a trim locks
// and walks every malloc arena, which the I/O thread that happens to close the last large reader
// must not wait for. A request is served `delay` after it is made, by one trim for every request
// made meanwhile, so there is at most one trim per `delay` and the last request is never
// dropped. The delay also lets what the request announced finish being freed: RocksDB may report
// a completed flush before it has freed the flushed write buffer.
class memory_trimmer {
 public:
  explicit memory_trimmer(std::function<void()> trim)
      : trim_(trim ? std::move(trim) : [] { malloc_trim(0); }), thread_([this] { run(); }) {}
  memory_trimmer(const memory_trimmer&) = delete;
  memory_trimmer& operator=(const memory_trimmer&) = delete;
  ~memory_trimmer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  // Never blocks on a trim; a request already pending costs one atomic exchange.
  void request() {
    if (pending_.exchange(true, std::memory_order_acq_rel)) return;
    { std::lock_guard lock(mutex_); }
    wake_.notify_one();
  }

 private:
  static constexpr std::chrono::seconds delay{1};

  void run() {
#ifdef __linux__
    (void)pthread_setname_np(pthread_self(), "gmp-trim");
#endif
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || pending_.load(std::memory_order_acquire); });
      if (wake_.wait_for(lock, delay, [this] { return stopping_; })) return;
      pending_.store(false, std::memory_order_release);
      lock.unlock();
      trim_();
      lock.lock();
    }
  }

  const std::function<void()> trim_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> pending_{false};
  bool stopping_ = false;  // under mutex_
  std::thread thread_;     // last: started once everything it uses exists
};

// Everything readers and writers need; shared so they may outlive the store object.
struct db_state {
  db_state() = default;
  db_state(const db_state&) = delete;
  db_state& operator=(const db_state&) = delete;
  ~db_state() {
    if (db == nullptr) {
      return;
    }
    for (auto* handle : handles) {
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
  }

  // Declared before `db`, which uses them until it is closed.
  std::shared_ptr<memory_trimmer> trimmer;  // also held by the flush listener
  std::shared_ptr<rdb::Cache> block_cache;
  std::shared_ptr<rdb::WriteBufferManager> write_buffers;
  std::size_t memory_bytes = 0;
  // A committed entry at least this large has its chunks flushed from the write buffer at once
  // rather than kept there until more writes fill it.
  std::uint64_t flush_after_bytes = 0;
  std::unique_ptr<rdb::DB> db;
  std::vector<rdb::ColumnFamilyHandle*> handles;
  rdb::ColumnFamilyHandle* records = nullptr;
  rdb::ColumnFamilyHandle* chunks = nullptr;
  std::uint32_t chunk_bytes = 0;
  std::size_t inline_max_bytes = 0;
  bool body_files = true;
  std::string bodies_path;                      // `path`/bodies
  std::unique_ptr<open_file_cache> open_files;  // of bodies_path

  // sync=false: a write returns once it is in the WAL file in the OS page cache, so committed
  // entries survive the process being killed (kill -9, OOM); only a power loss or kernel crash
  // could lose the last few, which for a cache means a refetch.
  rdb::WriteOptions write_options;
  // For a large fill's chunks: not through the WAL, which would write and checksum every zip
  // byte once more (with Debian's portable CRC32C) only to delete it after the next flush. They
  // are durable once flushed, and a commit flushes them before the metadata that names them is
  // written, so a crash can lose only chunks no committed entry refers to.
  rdb::WriteOptions chunk_write_options = [] {
    rdb::WriteOptions options;
    options.disableWAL = true;
    return options;
  }();

  // Serialises commits, removes and garbage decisions: each reads the current metadata and
  // writes a batch based on it. Readers and chunk writes never take it.
  std::mutex mutex;
  std::unordered_set<std::uint64_t> live_fills;  // writers of this process not yet settled
  std::uint64_t next_fill_id = 0;
  std::uint64_t reserved_fill_end = 0;
  store_stats committed;  // mirrors the "s" record

  // Copies of `committed` for stats(), which must not wait behind a commit's disk write.
  std::atomic<std::uint64_t> entries{0};
  std::atomic<std::uint64_t> bytes{0};

  // The size cap (0: none). Everything below is used only with a cap.
  std::string path;
  std::uint64_t max_bytes = 0;
  std::int64_t fresh_entry_grace_ms = 0;
  size_cap::recency_table recency;
  layout::eviction_totals evictions;  // mirrors the "e" record; under `mutex`
  std::atomic<std::uint64_t> evicted_entries{0};
  std::atomic<std::uint64_t> evicted_bytes{0};
  std::atomic<std::uint64_t> disk_bytes{0};  // at the last measurement
  // Body bytes committed since that measurement: a commit wakes the eviction thread only when
  // they could have pushed the directory past the cap, so most commits cost one atomic add.
  std::atomic<std::uint64_t> added_since_measure{0};
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool wake_requested = false;  // under wake_mutex
  bool stopping = false;        // under wake_mutex

  void note_committed(std::uint64_t body_bytes) {
    if (max_bytes == 0) return;
    const auto added =
        added_since_measure.fetch_add(body_bytes, std::memory_order_relaxed) + body_bytes;
    if (disk_bytes.load(std::memory_order_relaxed) + added > max_bytes) {
      {
        std::lock_guard lock(wake_mutex);
        wake_requested = true;
      }
      wake.notify_one();
    }
  }

  // Chunk buffers are large and come from whichever thread's malloc arena served them; freed,
  // they stay in that arena, so an idle process would keep what its last fill or downloads
  // used. A trim gives back what lies free between the chunks still in use. Flushes (one per
  // write buffer of chunks) and the last large reader closing ask for one.
  std::atomic<std::uint32_t> open_chunked_readers{0};

  void note_reader_closed() {
    if (open_chunked_readers.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    trimmer->request();
  }

  void note_used(std::string_view key) {
    if (max_bytes != 0 && size_cap::evictable(key)) recency.touch(key, now_ms());
  }

  // Committed metadata records (inline bodies included) are kept in `block_cache` too, under
  // keys of their own, and a hit finds its record there: a RocksDB Get was a fifth of a warm
  // small request's instructions (docs/cache.md, "Hits"). Every write of a record
  // forgets it after the write; a miss remembers what it read only when no write came between
  // its read and its remembering, so the cache never holds a version older than the database's.
  static std::string record_cache_key(std::string_view stored_meta_key) {
    std::string key;
    key.reserve(record_cache_prefix.size() + stored_meta_key.size());
    key.append(record_cache_prefix).append(stored_meta_key);
    return key;
  }

  // The record of `stored_meta_key` as the last write left it, from the cache when it is there.
  [[nodiscard]] result<std::optional<rdb::PinnableSlice>> read_record(
      std::string_view stored_meta_key) {
    const auto cache_key = record_cache_key(stored_meta_key);
    if (auto* handle = block_cache->Lookup(cache_key)) {
      const auto* record = static_cast<const std::string*>(block_cache->Value(handle));
      rdb::PinnableSlice pinned;
      pinned.PinSlice(*record, &release_cached_record, block_cache.get(), handle);
      return std::optional<rdb::PinnableSlice>{std::move(pinned)};
    }
    std::uint64_t writes_before = 0;
    {
      std::lock_guard lock(record_cache_mutex);
      writes_before = record_writes;
    }
    auto stored = get_record_pinned(rdb::ReadOptions{}, stored_meta_key);
    if (stored && stored->has_value()) {
      // Copied before the lock, which other misses and every write wait for.
      auto copy = std::make_unique<std::string>((*stored)->ToStringView());
      const auto charge = copy->capacity() + cache_key.size() + sizeof(std::string);
      std::lock_guard lock(record_cache_mutex);
      if (record_writes == writes_before &&
          block_cache
              ->Insert(cache_key, copy.get(), charge, &delete_cached_record, nullptr,
                       rdb::Cache::Priority::HIGH)
              .ok()) {
        (void)copy.release();
      }
    }
    return stored;
  }

  // After any write that may have changed or removed `stored_meta_key`'s record.
  void forget_record(std::string_view stored_meta_key) {
    const auto cache_key = record_cache_key(stored_meta_key);
    std::lock_guard lock(record_cache_mutex);
    ++record_writes;
    block_cache->Erase(cache_key);
  }

  static void release_cached_record(void* cache, void* handle) {
    static_cast<rdb::Cache*>(cache)->Release(static_cast<rdb::Cache::Handle*>(handle));
  }
  static void delete_cached_record(const rdb::Slice& /*key*/, void* record) {
    delete static_cast<std::string*>(record);
  }
  // Block and row cache keys are binary and fixed-size or prefixed by a cache id; no module
  // path starts with a NUL byte.
  static constexpr std::string_view record_cache_prefix{"\0gmp-record:", 12};
  std::mutex record_cache_mutex;
  std::uint64_t record_writes = 0;  // under record_cache_mutex

  // `Value` is std::string, or rdb::PinnableSlice for a hit's record: left in the slice RocksDB's
  // read filled (or pinned), so an inline body is not copied once more before it is sent.
  template <class Value>
  [[nodiscard]] result<std::optional<Value>> get_record_as(const rdb::ReadOptions& options,
                                                           std::string_view stored_key) {
    Value value;
    const auto status = db->Get(options, records, stored_key, &value);
    if (status.IsNotFound()) {
      return std::optional<Value>{};
    }
    if (!status.ok()) {
      return to_error(status);
    }
    return std::optional<Value>{std::move(value)};
  }

  [[nodiscard]] result<std::optional<rdb::PinnableSlice>> get_record_pinned(
      const rdb::ReadOptions& options, std::string_view stored_key) {
    return get_record_as<rdb::PinnableSlice>(options, stored_key);
  }

  [[nodiscard]] result<std::optional<std::string>> get_record(const rdb::ReadOptions& options,
                                                              std::string_view stored_key) {
    return get_record_as<std::string>(options, stored_key);
  }

  std::string body_path(std::uint64_t fill_id) const {
    return bodies_path + "/" + layout::body_file_name(fill_id);
  }

  // Body files of versions whose retirement has been written. A reader that has one open keeps
  // reading it: the bytes go when its descriptor closes. Dropped from the open files after the
  // unlink, so an open racing it cannot put the descriptor back.
  void unlink_bodies(const std::vector<std::uint64_t>& fill_ids) {
    for (const auto fill_id : fill_ids) {
      (void)::unlink(body_path(fill_id).c_str());
      open_files->drop(fill_id);
    }
  }

  // Adds to `batch` the deletion of a committed version's chunks and its share of the stats; a
  // body file is added to `retired_files`, for unlink_bodies() once the batch is written.
  void retire(const layout::meta_record& old, rdb::WriteBatch& batch, store_stats& stats,
              std::vector<std::uint64_t>& retired_files) {
    if (old.where == layout::storage::chunked) {
      for (std::uint32_t i = 0; i < old.chunk_count; ++i) {
        // Deletes are invisible to older snapshots, so readers of this version keep reading it.
        batch.Delete(chunks, layout::chunk_key(old.fill_id, i)).PermitUncheckedError();
      }
    } else if (old.where == layout::storage::file) {
      retired_files.push_back(old.fill_id);
    }
    stats.entries -= std::min<std::uint64_t>(stats.entries, 1);
    stats.bytes -= std::min(stats.bytes, old.meta.size);
  }

  // Caller holds `mutex`. Retires whatever version of `key` is committed now; a record that no
  // longer decodes still counts as one entry, but its chunks (if any) are unknown and stay, and
  // its body file (if any) waits for collect_garbage().
  [[nodiscard]] result<void> retire_current(std::string_view stored_meta_key,
                                            rdb::WriteBatch& batch, store_stats& stats,
                                            bool& existed,
                                            std::vector<std::uint64_t>& retired_files) {
    auto old = get_record(rdb::ReadOptions{}, stored_meta_key);
    if (!old) {
      return old.error();
    }
    existed = old->has_value();
    if (!existed) {
      return {};
    }
    if (auto record = layout::decode_meta(**old)) {
      retire(*record, batch, stats, retired_files);
    } else {
      stats.entries -= std::min<std::uint64_t>(stats.entries, 1);
    }
    return {};
  }

  // Caller holds `mutex`.
  void publish(const store_stats& stats) {
    committed = stats;
    entries.store(stats.entries, std::memory_order_relaxed);
    bytes.store(stats.bytes, std::memory_order_relaxed);
  }

  // Makes `encoded` (the metadata record of a version of `key` with `body_bytes` of body, filled
  // as `fill_id`) the committed version: `batch` (whatever else the version needs written) with
  // the record, the retirement of the version it replaces and the stats, in one atomic write.
  [[nodiscard]] result<void> commit_version(std::string_view key, const std::string& encoded,
                                            rdb::WriteBatch& batch, std::uint64_t body_bytes,
                                            std::uint64_t fill_id) {
    const auto stored_meta_key = layout::meta_key(key);
    std::vector<std::uint64_t> retired_files;
    {
      std::lock_guard lock(mutex);
      store_stats stats = committed;
      bool existed = false;
      if (auto retired = retire_current(stored_meta_key, batch, stats, existed, retired_files);
          !retired) {
        return retired;
      }
      batch.Put(records, stored_meta_key, encoded).PermitUncheckedError();
      stats.entries += 1;
      stats.bytes += body_bytes;
      batch.Put(records, layout::stats_key, layout::encode_stats(stats)).PermitUncheckedError();
      const auto status = db->Write(write_options, &batch);
      forget_record(stored_meta_key);
      if (!status.ok()) {
        return to_error(status);
      }
      publish(stats);
      live_fills.erase(fill_id);
    }
    unlink_bodies(retired_files);
    note_committed(body_bytes);
    return {};
  }
};

// The one chunk a reader or writer last read, so sequential small reads cost one Get per chunk.
class chunk_cache {
 public:
  [[nodiscard]] result<std::string_view> get(db_state& state, const rdb::Snapshot* snapshot,
                                             std::uint64_t fill_id, std::uint32_t index,
                                             std::size_t body_bytes) {
    if (index_ == index) {
      return body_;
    }
    index_.reset();
    value_.Reset();
    rdb::ReadOptions options;
    options.snapshot = snapshot;
    // Every chunk carries its own CRC32C (SSE4.2), checked below on every read (no cache keeps
    // chunks, so each comes from disk or the memtable); RocksDB's second check runs Debian's
    // portable CRC and cost a quarter of the CPU of serving zips.
    options.verify_checksums = false;
    const auto status =
        state.db->Get(options, state.chunks, layout::chunk_key(fill_id, index), &value_);
    if (status.IsNotFound()) {
      // The metadata promised this chunk.
      return errc::cache_corrupt;
    }
    if (!status.ok()) {
      return to_error(status);
    }
    auto body = layout::open_chunk(value_.ToStringView(), body_bytes);
    if (!body) {
      value_.Reset();
      return body.error();
    }
    body_ = *body;
    index_ = index;
    return body_;
  }

  // Frees the chunk held, and the buffer it was read into.
  void release() {
    index_.reset();
    body_ = {};
    value_ = rdb::PinnableSlice();
  }

 private:
  std::optional<std::uint32_t> index_;
  rdb::PinnableSlice value_;
  std::string_view body_;
};

class inline_reader final : public entry_reader {
 public:
  // `body_offset` and `body_bytes` place the body inside `record`: a view taken before the
  // record was moved here could point into the moved-from slice's own buffer.
  inline_reader(std::shared_ptr<const db_state> state, entry_meta meta, rdb::PinnableSlice record,
                std::size_t body_offset, std::size_t body_bytes)
      : state_(std::move(state)),
        meta_(std::move(meta)),
        record_(std::move(record)),
        body_(record_.ToStringView().substr(body_offset, body_bytes)) {}

  const entry_meta& meta() const override { return meta_; }

  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= body_.size()) {
      return std::string{};
    }
    return std::string(body_.substr(static_cast<std::size_t>(offset), max_bytes));
  }

  result<std::string_view> view(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= body_.size()) {
      return std::string_view{};
    }
    return body_.substr(static_cast<std::size_t>(offset), max_bytes);
  }

 private:
  // Keeps the database and its caches until the record is released: a reader may outlive the
  // store, and a slice RocksDB pinned (rather than copied) points into its cache.
  std::shared_ptr<const db_state> state_;
  entry_meta meta_;
  rdb::PinnableSlice record_;  // owns or pins the bytes `body_` views
  std::string_view body_;
};

class chunked_reader final : public entry_reader {
 public:
  chunked_reader(std::shared_ptr<db_state> state, std::unique_ptr<rdb::ManagedSnapshot> snapshot,
                 const layout::meta_record& record)
      : state_(std::move(state)),
        snapshot_(std::move(snapshot)),
        meta_(record.meta),
        fill_id_(record.fill_id),
        chunk_bytes_(record.chunk_bytes),
        chunk_count_(record.chunk_count) {
    state_->open_chunked_readers.fetch_add(1, std::memory_order_relaxed);
  }
  chunked_reader(const chunked_reader&) = delete;
  chunked_reader& operator=(const chunked_reader&) = delete;

  ~chunked_reader() override {
    cache_.release();
    state_->note_reader_closed();
  }

  const entry_meta& meta() const override { return meta_; }

  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= meta_.size) {
      return std::string{};
    }
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, meta_.size - offset));
    std::string out;
    out.reserve(wanted);
    while (out.size() < wanted) {
      auto piece = view(offset + out.size(), wanted - out.size());
      if (!piece) {
        return piece.error();
      }
      out.append(*piece);
    }
    return out;
  }

  result<std::string_view> view(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= meta_.size) {
      return std::string_view{};
    }
    const auto index = static_cast<std::uint32_t>(offset / chunk_bytes_);
    const auto within = static_cast<std::size_t>(offset % chunk_bytes_);
    const std::size_t body_bytes =
        index + 1 < chunk_count_
            ? chunk_bytes_
            : static_cast<std::size_t>(meta_.size - std::uint64_t{index} * chunk_bytes_);
    auto body = cache_.get(*state_, snapshot_->snapshot(), fill_id_, index, body_bytes);
    if (!body) {
      return body.error();
    }
    return body->substr(within, max_bytes);
  }

 private:
  // Declared first so the snapshot and pinned chunk are released before the DB can close.
  std::shared_ptr<db_state> state_;
  std::unique_ptr<rdb::ManagedSnapshot> snapshot_;
  entry_meta meta_;
  std::uint64_t fill_id_;
  std::uint32_t chunk_bytes_;
  std::uint32_t chunk_count_;
  chunk_cache cache_;
};

class rocksdb_writer final : public entry_writer {
 public:
  rocksdb_writer(std::shared_ptr<db_state> state, std::string key, std::uint64_t fill_id)
      : state_(std::move(state)), key_(std::move(key)), fill_id_(fill_id) {}

  rocksdb_writer(const rocksdb_writer&) = delete;
  rocksdb_writer& operator=(const rocksdb_writer&) = delete;

  ~rocksdb_writer() override {
    if (!committed_) {
      // Its chunks stay behind with their fill record until collect_garbage() takes them.
      std::lock_guard lock(state_->mutex);
      state_->live_fills.erase(fill_id_);
    }
    // A fill of chunks leaves its buffers (and, after the flush, a write buffer) free.
    if (flushed_ > 0) state_->trimmer->request();
  }

  result<void> append(std::string_view bytes) override {
    if (committed_ || failed_) {
      return errc::cache_io;
    }
    const std::size_t chunk_bytes = state_->chunk_bytes;
    while (!bytes.empty()) {
      // Flushing only when more bytes arrive keeps the last chunk in memory for commit's batch.
      if (buffer_.size() == chunk_bytes) {
        if (auto flushed = flush(); !flushed) {
          failed_ = true;
          return flushed;
        }
      }
      const std::size_t take = std::min(bytes.size(), chunk_bytes - buffer_.size());
      if (buffer_.size() + take > state_->inline_max_bytes &&
          buffer_.capacity() < chunk_bytes + layout::chunk_trailer_bytes) {
        // Grown by doubling, a buffer could reach twice the chunk size.
        buffer_.reserve(chunk_bytes + layout::chunk_trailer_bytes);
      }
      buffer_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      size_ += take;
    }
    return {};
  }

  std::uint64_t size() const override { return size_; }

  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (committed_) {
      return errc::cache_io;
    }
    if (offset >= size_) {
      return std::string{};
    }
    const std::uint32_t chunk_bytes = state_->chunk_bytes;
    const std::uint64_t flushed_bytes = std::uint64_t{flushed_} * chunk_bytes;
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, size_ - offset));
    std::string out;
    out.reserve(wanted);
    while (out.size() < wanted) {
      const std::uint64_t position = offset + out.size();
      if (position >= flushed_bytes) {
        out.append(std::string_view(buffer_).substr(
            static_cast<std::size_t>(position - flushed_bytes), wanted - out.size()));
        continue;
      }
      const auto index = static_cast<std::uint32_t>(position / chunk_bytes);
      auto body = cache_.get(*state_, nullptr, fill_id_, index, chunk_bytes);
      if (!body) {
        return body.error();
      }
      out.append(
          body->substr(static_cast<std::size_t>(position % chunk_bytes), wanted - out.size()));
    }
    return out;
  }

  result<void> commit(entry_meta meta) override {
    if (committed_ || failed_) {
      return errc::cache_io;
    }
    meta.size = size_;
    // Chunks that went around the WAL, the last one with them, are on disk before anything
    // names them. Such an entry is flushed at commit anyway (flush_after_bytes).
    const bool around_wal = wrote_around_wal_;
    if (around_wal) {
      if (auto flushed = flush(); !flushed) {
        failed_ = true;
        return flushed;
      }
      rdb::FlushOptions flush;
      flush.wait = true;
      flush.allow_write_stall = true;
      if (const auto status = state_->db->Flush(flush, state_->chunks); !status.ok()) {
        failed_ = true;
        return to_error(status);
      }
    }
    if (meta.stored_at_ms == 0) {
      meta.stored_at_ms = now_ms();
    }
    layout::meta_record record;
    record.meta = std::move(meta);
    rdb::WriteBatch batch;
    if (flushed_ == 0 && size_ <= state_->inline_max_bytes) {
      record.where = layout::storage::inline_body;
      record.body = buffer_;
    } else {
      record.where = layout::storage::chunked;
      record.fill_id = fill_id_;
      record.chunk_bytes = state_->chunk_bytes;
      record.chunk_count = around_wal ? flushed_ : flushed_ + 1;
      if (!around_wal) {
        layout::seal_chunk(buffer_);
        batch.Put(state_->chunks, layout::chunk_key(fill_id_, flushed_), buffer_)
            .PermitUncheckedError();
      }
      if (flushed_ > 0) {
        // Committed chunks are found through the metadata from now on.
        batch.Delete(state_->records, layout::fill_key(fill_id_)).PermitUncheckedError();
      }
    }
    auto encoded = layout::encode_meta(record);
    if (!encoded) {
      unseal(record.where, around_wal);
      return encoded.error();
    }
    if (auto done = state_->commit_version(key_, *encoded, batch, size_, fill_id_); !done) {
      unseal(record.where, around_wal);
      return done;
    }
    committed_ = true;
    std::string().swap(buffer_);
    cache_.release();
    if (record.where == layout::storage::chunked && size_ >= state_->flush_after_bytes &&
        !around_wal) {
      // The flush ends in a trim (flush_listener).
      rdb::FlushOptions flush;
      flush.wait = false;
      flush.allow_write_stall = true;
      state_->db->Flush(flush, state_->chunks).PermitUncheckedError();
    }
    return {};
  }

 private:
  // Writes the in-memory chunk. The fill record naming its key and how many chunks exist goes
  // first, through the WAL, so collect_garbage() knows everything a dead fill may have left
  // behind, even chunks a crash lost before their flush. An entry already large enough to be
  // flushed at its commit writes its chunks around the WAL (chunk_write_options).
  [[nodiscard]] result<void> flush() {
    const bool around_wal = size_ >= state_->flush_after_bytes;
    const std::size_t body_bytes = buffer_.size();
    rdb::WriteBatch batch;
    batch
        .Put(state_->records, layout::fill_key(fill_id_),
             layout::encode_fill({.chunks_written = flushed_ + 1, .key = key_}))
        .PermitUncheckedError();
    layout::seal_chunk(buffer_);
    if (!around_wal) {
      batch.Put(state_->chunks, layout::chunk_key(fill_id_, flushed_), buffer_)
          .PermitUncheckedError();
    }
    auto status = state_->db->Write(state_->write_options, &batch);
    if (status.ok() && around_wal) {
      rdb::WriteBatch chunk;
      chunk.Put(state_->chunks, layout::chunk_key(fill_id_, flushed_), buffer_)
          .PermitUncheckedError();
      status = state_->db->Write(state_->chunk_write_options, &chunk);
      wrote_around_wal_ = true;
    }
    buffer_.resize(body_bytes);
    if (!status.ok()) {
      return to_error(status);
    }
    buffer_.clear();
    ++flushed_;
    return {};
  }

  // Undoes seal_chunk after a failed commit so read() still sees only body bytes.
  void unseal(layout::storage where, bool around_wal) {
    if (where == layout::storage::chunked && !around_wal) {
      buffer_.resize(buffer_.size() - layout::chunk_trailer_bytes);
    }
  }

  std::shared_ptr<db_state> state_;
  std::string key_;
  std::uint64_t fill_id_;
  std::string buffer_;  // bytes after the flushed chunks; at most one chunk
  std::uint32_t flushed_ = 0;
  std::uint64_t size_ = 0;
  bool committed_ = false;
  bool failed_ = false;
  bool wrote_around_wal_ = false;
  chunk_cache cache_;
};

// Reads `count` bytes at `offset` of `fd` into `into`; cache_corrupt when the file ends first
// (it is shorter than the metadata that names it).
[[nodiscard]] result<void> pread_exactly(int fd, char* into, std::size_t count,
                                         std::uint64_t offset) {
  while (count > 0) {
    const auto got = ::pread(fd, into, count, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errc::cache_io;
    }
    if (got == 0) return errc::cache_corrupt;
    into += got;
    count -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return {};
}

[[nodiscard]] result<void> write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return errc::cache_io;
    }
    bytes.remove_prefix(static_cast<std::size_t>(wrote));
  }
  return {};
}

// A body kept as a file of its own. The descriptor the reader holds (shared with the store's open
// files) keeps this version's bytes whatever happens to the entry meanwhile (an unlinked file
// lives while it is open).
// Reads in order from the first byte check the body's CRC32C as they pass: the last piece of a
// body that does not match is refused, so whoever reads a body whole (a TLS answer, a bundle,
// cache verify) never takes a damaged one for good. Sending file() skips the check.
class file_reader final : public entry_reader {
 public:
  file_reader(entry_meta meta, std::shared_ptr<const open_file> file, std::uint32_t body_crc,
              std::size_t chunk_bytes)
      : meta_(std::move(meta)),
        file_(std::move(file)),
        body_crc_(body_crc),
        chunk_bytes_(chunk_bytes) {}
  ~file_reader() override = default;
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;

  const entry_meta& meta() const override { return meta_; }

  std::optional<body_file> file() const override { return body_file{file_->fd(), 0}; }

  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= meta_.size) {
      return std::string{};
    }
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, meta_.size - offset));
    std::string out(wanted, '\0');
    if (auto fetched = fetch(offset, out.data(), wanted); !fetched) {
      return fetched.error();
    }
    return out;
  }

  result<std::string_view> view(std::uint64_t offset, std::size_t max_bytes) override {
    if (offset >= meta_.size) {
      return std::string_view{};
    }
    // Views stop at multiples of chunk_bytes, like a chunked body's: the buffer never holds
    // more than one chunk's worth, and sequential views read aligned pieces.
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(
        {max_bytes, chunk_bytes_ - offset % chunk_bytes_, meta_.size - offset}));
    // Allocated on first use: a reader whose body is sent from file() never needs it.
    if (!buffer_) {
      buffer_.reset(new char[std::min<std::uint64_t>(chunk_bytes_, meta_.size)]);
    }
    if (auto fetched = fetch(offset, buffer_.get(), wanted); !fetched) {
      return fetched.error();
    }
    return std::string_view(buffer_.get(), wanted);
  }

 private:
  [[nodiscard]] result<void> fetch(std::uint64_t offset, char* into, std::size_t count) {
    if (auto read = pread_exactly(file_->fd(), into, count, offset); !read) {
      return read;
    }
    const std::uint64_t end = offset + count;
    if (offset <= checked_up_to_ && end > checked_up_to_) {
      const auto skip = static_cast<std::size_t>(checked_up_to_ - offset);
      crc_ = layout::crc32c_extend(crc_, std::string_view(into + skip, count - skip));
      checked_up_to_ = end;
      if (checked_up_to_ == meta_.size && crc_ != body_crc_) {
        return errc::cache_corrupt;
      }
    }
    return {};
  }

  entry_meta meta_;
  std::shared_ptr<const open_file> file_;
  std::uint32_t body_crc_;
  std::uint64_t chunk_bytes_;
  // Left uninitialised, where a std::vector would zero up to a chunk on every reader's first read.
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
  std::unique_ptr<char[]> buffer_;
  std::uint64_t checked_up_to_ = 0;
  std::uint32_t crc_ = 0;
};

// Opens the body file a record names; nullptr when the file does not exist (the caller tells a
// version replaced meanwhile from a lost file).
[[nodiscard]] result<std::unique_ptr<entry_reader>> open_body_file(
    db_state& state, const layout::meta_record& record) {
  auto file = state.open_files->open(record.fill_id, record.meta.size);
  if (!file) return file.error();
  if (!*file) return std::unique_ptr<entry_reader>{};
  return std::unique_ptr<entry_reader>{std::make_unique<file_reader>(
      record.meta, std::move(*file), record.body_crc, state.chunk_bytes)};
}

// Writes a new version whose body, once larger than inline_max_bytes, goes to a file of its own
// named after the fill. Bytes are staged up to chunk_bytes and written with write(2). Commit
// makes the file durable (fdatasync) before the metadata that names it is written; an abandoned
// writer deletes its file, and collect_garbage() deletes what a crash left.
class file_writer final : public entry_writer {
 public:
  file_writer(std::shared_ptr<db_state> state, std::string key, std::uint64_t fill_id)
      : state_(std::move(state)), key_(std::move(key)), fill_id_(fill_id) {}
  file_writer(const file_writer&) = delete;
  file_writer& operator=(const file_writer&) = delete;

  ~file_writer() override {
    if (fd_ >= 0) ::close(fd_);
    if (committed_) return;
    if (created_) (void)::unlink(state_->body_path(fill_id_).c_str());
    std::lock_guard lock(state_->mutex);
    state_->live_fills.erase(fill_id_);
  }

  result<void> append(std::string_view bytes) override {
    if (committed_ || failed_) {
      return errc::cache_io;
    }
    if (fd_ < 0 && buffer_.size() + bytes.size() <= state_->inline_max_bytes) {
      buffer_.append(bytes);
      size_ += bytes.size();
      return {};
    }
    if (fd_ < 0) {
      if (auto created = create_file(); !created) {
        failed_ = true;
        return created;
      }
    }
    const std::size_t staging_bytes = state_->chunk_bytes;
    if (buffer_.size() + bytes.size() <= staging_bytes) {
      buffer_.append(bytes);
    } else {
      auto wrote = write_staged();
      if (wrote && bytes.size() >= staging_bytes) {
        wrote = write_all(fd_, bytes);
        if (wrote) written_ += bytes.size();
      } else if (wrote) {
        buffer_.append(bytes);
      }
      if (!wrote) {
        failed_ = true;
        return wrote;
      }
    }
    size_ += bytes.size();
    crc_ = layout::crc32c_extend(crc_, bytes);
    return {};
  }

  std::uint64_t size() const override { return size_; }

  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (committed_) {
      return errc::cache_io;
    }
    if (offset >= size_) {
      return std::string{};
    }
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, size_ - offset));
    std::string out(wanted, '\0');
    std::size_t from_file = 0;
    if (offset < written_) {
      from_file = static_cast<std::size_t>(std::min<std::uint64_t>(wanted, written_ - offset));
      if (auto fetched = pread_exactly(fd_, out.data(), from_file, offset); !fetched) {
        return fetched.error();
      }
    }
    if (from_file < wanted) {
      const auto staged_at = static_cast<std::size_t>(offset + from_file - written_);
      std::memcpy(out.data() + from_file, buffer_.data() + staged_at, wanted - from_file);
    }
    return out;
  }

  result<void> commit(entry_meta meta) override {
    if (committed_ || failed_) {
      return errc::cache_io;
    }
    meta.size = size_;
    if (meta.stored_at_ms == 0) {
      meta.stored_at_ms = now_ms();
    }
    layout::meta_record record;
    record.meta = std::move(meta);
    if (fd_ < 0) {
      record.where = layout::storage::inline_body;
      record.body = buffer_;
    } else {
      if (auto wrote = write_staged(); !wrote) {
        failed_ = true;
        return wrote;
      }
      // The record is written after the bytes are on disk, so no crash (of the process or the
      // machine) leaves a record naming a file that lacks them. The directory entry is not
      // synced: like the unsynced write-ahead log, a power loss may lose the newest entries,
      // and a record whose file is gone reads as corrupt and is filled again.
      if (::fdatasync(fd_) != 0) {
        failed_ = true;
        return errc::cache_io;
      }
      record.where = layout::storage::file;
      record.fill_id = fill_id_;
      record.body_crc = crc_;
    }
    auto encoded = layout::encode_meta(record);
    if (!encoded) {
      return encoded.error();
    }
    rdb::WriteBatch batch;
    if (auto done = state_->commit_version(key_, *encoded, batch, size_, fill_id_); !done) {
      return done;
    }
    committed_ = true;
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    std::string().swap(buffer_);
    return {};
  }

 private:
  [[nodiscard]] result<void> create_file() {
    fd_ = ::open(state_->body_path(fill_id_).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return errc::cache_io;
    }
    created_ = true;
    crc_ = layout::crc32c(buffer_);
    // Grown by doubling, the staging buffer could reach twice its limit.
    buffer_.reserve(state_->chunk_bytes);
    return {};
  }

  [[nodiscard]] result<void> write_staged() {
    if (auto wrote = write_all(fd_, buffer_); !wrote) {
      return wrote;
    }
    written_ += buffer_.size();
    buffer_.clear();
    return {};
  }

  std::shared_ptr<db_state> state_;
  std::string key_;
  std::uint64_t fill_id_;
  std::string buffer_;  // the whole body while it fits inline, then the bytes not yet written
  int fd_ = -1;
  bool created_ = false;
  std::uint64_t written_ = 0;  // bytes in the file
  std::uint64_t size_ = 0;
  std::uint32_t crc_ = 0;  // of every byte appended, once there is a file
  bool committed_ = false;
  bool failed_ = false;
};

// How often the eviction thread measures the directory without being woken (the write-ahead
// log, info log and readers letting go of evicted bytes change it without a commit), and how
// often last-use times go to disk.
constexpr auto cap_check_interval = std::chrono::seconds(2);
constexpr auto recency_write_interval = std::chrono::seconds(30);
// What an entry costs beyond its body: its metadata record and last-use record.
constexpr std::uint64_t entry_overhead_bytes = 64;
constexpr std::size_t max_orphans_per_round = 4096;
// Entries evicted in one write batch, under the store's mutex (commits wait for it meanwhile).
constexpr std::size_t evict_batch_entries = 256;
// Metadata records pick() scans between looks at the stop flag: a scan of millions of entries
// takes seconds, which shutdown need not wait for, and the flag's mutex is not worth taking for
// every record.
constexpr std::size_t scan_entries_between_stop_checks = 1024;

// Keeps the directory under the cap from a thread of its own: measures the directory, picks the
// least recently used entries from a scan of their metadata, evicts them and compacts their
// chunks away. Requests never wait for it: a commit only wakes it.
class cap_keeper {
 public:
  explicit cap_keeper(std::shared_ptr<db_state> state)
      : state_(std::move(state)), thread_([this] { run(); }) {}
  cap_keeper(const cap_keeper&) = delete;
  cap_keeper& operator=(const cap_keeper&) = delete;
  ~cap_keeper() {
    {
      std::lock_guard lock(state_->wake_mutex);
      state_->stopping = true;
    }
    state_->wake.notify_one();
    // A round's compaction over a large cache can take seconds; shutdown need not wait for it
    // (the deletes are written, only the space comes back later).
    state_->db->DisableManualCompaction();
    thread_.join();
    write_recency();
  }

 private:
  // Evicted fills whose chunks a reader's snapshot may still hold: compacted again once no
  // snapshot older than their deletion is left.
  struct held_eviction {
    rdb::SequenceNumber deleted_at = 0;
    std::uint64_t first_fill = 0;
    std::uint64_t last_fill = 0;
    std::uint64_t bytes = 0;
    bool any_chunked = false;
  };

  void run() {
    auto next_recency_write = std::chrono::steady_clock::now() + recency_write_interval;
    bool first_round = true;
    for (;;) {
      {
        std::unique_lock lock(state_->wake_mutex);
        if (!first_round) {
          state_->wake.wait_for(lock, cap_check_interval,
                                [this] { return state_->stopping || state_->wake_requested; });
        }
        first_round = false;
        if (state_->stopping) return;
        state_->wake_requested = false;
      }
      if (std::chrono::steady_clock::now() >= next_recency_write) {
        write_recency();
        next_recency_write = std::chrono::steady_clock::now() + recency_write_interval;
      }
      keep_under_cap();
    }
  }

  bool stopping() {
    std::lock_guard lock(state_->wake_mutex);
    return state_->stopping;
  }

  std::optional<std::uint64_t> measure() {
    state_->added_since_measure.store(0, std::memory_order_relaxed);
    auto disk = size_cap::disk_usage(state_->path);
    if (disk) state_->disk_bytes.store(*disk, std::memory_order_relaxed);
    return disk;
  }

  // The oldest snapshot's sequence number, or nullopt when no reader holds one.
  std::optional<rdb::SequenceNumber> oldest_snapshot() {
    std::uint64_t count = 0;
    if (!state_->db->GetIntProperty(rdb::DB::Properties::kNumSnapshots, &count) || count == 0) {
      return std::nullopt;
    }
    std::uint64_t oldest = 0;
    if (!state_->db->GetIntProperty(rdb::DB::Properties::kOldestSnapshotSequence, &oldest)) {
      return rdb::SequenceNumber{0};
    }
    return oldest;
  }

  // The directory as it will be once RocksDB has deleted what it no longer uses: table and blob
  // files of no current version (deleted in the background just after a compaction) are left
  // out, and so is the garbage inside live blob files that no compaction has rewritten yet.
  // Sizing an eviction on this rather than on du keeps one eviction from being repeated while
  // its space is still on its way back.
  std::optional<std::uint64_t> settled_usage() {
    std::unordered_set<std::uint64_t> live;
    std::uint64_t newest = 0;
    std::uint64_t garbage = 0;
    for (auto* family : {state_->records, state_->chunks}) {
      rdb::ColumnFamilyMetaData meta;
      state_->db->GetColumnFamilyMetaData(family, &meta);
      for (const auto& level : meta.levels) {
        for (const auto& file : level.files) {
          live.insert(file.file_number);
          newest = std::max(newest, file.file_number);
        }
      }
      for (const auto& blob : meta.blob_files) {
        live.insert(blob.blob_file_number);
        newest = std::max(newest, blob.blob_file_number);
        garbage += blob.garbage_blob_bytes;
      }
    }
    // A file newer than every one listed was written since (numbers only grow): it counts.
    auto usage = size_cap::disk_usage(state_->path, [&](std::uint64_t number) {
      return number > newest || live.contains(number);
    });
    if (!usage) return usage;
    return *usage - std::min(*usage, garbage);
  }

  // Compacts again what readers held and no longer do; returns the bytes still held.
  std::uint64_t release_held() {
    const auto oldest = oldest_snapshot();
    std::uint64_t still_held = 0;
    std::erase_if(held_, [&](const held_eviction& held) {
      if (oldest && *oldest < held.deleted_at) {
        still_held += held.bytes;
        return false;
      }
      reclaim(held);
      return true;
    });
    return still_held;
  }

  void keep_under_cap() {
    const std::uint64_t cap = state_->max_bytes;
    const std::uint64_t target = cap - cap / 10;
    const std::uint64_t still_held = release_held();
    auto disk = measure();
    if (!disk || *disk <= cap) return;
    // Bytes a reader still holds go once it is done; evicting more for them would empty the
    // cache under one slow download.
    const auto settled = settled_usage();
    if (!settled) return;
    if (*settled <= target + still_held) {
      if (*settled < *disk) delete_obsolete_files();
      return;
    }
    const std::uint64_t wanted = *settled - target - still_held;
    auto picked = pick(wanted);
    drop_orphans();
    if (!picked) {
      return;
    }
    evicted_batch evicted;
    const std::span<const size_cap::candidate> all(*picked);
    for (std::size_t at = 0; at < all.size() && !stopping(); at += evict_batch_entries) {
      evict(all.subspan(at, std::min(evict_batch_entries, all.size() - at)), evicted);
    }
    if (evicted.bytes == 0 && !evicted.any_chunked) return;
    held_eviction round;
    round.bytes = evicted.bytes - evicted.file_bytes;
    round.first_fill = evicted.first_fill;
    round.last_fill = evicted.last_fill;
    round.any_chunked = evicted.any_chunked;
    round.deleted_at = state_->db->GetLatestSequenceNumber();
    reclaim(round);
    if (const auto oldest = oldest_snapshot(); oldest && *oldest < round.deleted_at) {
      held_.push_back(round);
    }
    measure();
  }

  // The least recently used evictable entries whose bytes add up to `wanted`, from one pass
  // over the metadata and last-use records side by side (both are in key order).
  std::optional<std::vector<size_cap::candidate>> pick(std::uint64_t wanted) {
    size_cap::lru_picker picker(wanted);
    rdb::ReadOptions options;
    options.fill_cache = false;
    options.total_order_seek = true;
    options.readahead_size = 2u << 20;
    std::unique_ptr<rdb::Iterator> metas(state_->db->NewIterator(options, state_->records));
    std::unique_ptr<rdb::Iterator> uses(state_->db->NewIterator(options, state_->records));
    const std::string meta_prefix(1, layout::meta_prefix);
    const std::string access_prefix(1, layout::access_prefix);
    uses->Seek(access_prefix);
    const std::int64_t fresh_since = now_ms() - state_->fresh_entry_grace_ms;
    std::size_t scanned = 0;
    for (metas->Seek(meta_prefix); metas->Valid() && metas->key().starts_with(meta_prefix);
         metas->Next()) {
      if (++scanned % scan_entries_between_stop_checks == 0 && stopping()) return std::nullopt;
      const auto key = metas->key().ToStringView().substr(1);
      if (!size_cap::evictable(key)) continue;
      auto record = layout::decode_meta_summary(metas->value().ToStringView());
      if (!record) continue;
      std::int64_t last_use = record->meta.stored_at_ms;
      while (uses->Valid() && uses->key().starts_with(access_prefix) &&
             uses->key().ToStringView().substr(1) < key) {
        note_orphan(uses->key().ToStringView().substr(1));
        uses->Next();
      }
      if (uses->Valid() && uses->key().starts_with(access_prefix) &&
          uses->key().ToStringView().substr(1) == key) {
        if (auto used = layout::decode_u64(uses->value().ToStringView())) {
          last_use = std::max(last_use, static_cast<std::int64_t>(*used));
        }
      }
      if (auto used = state_->recency.find(key)) last_use = std::max(last_use, *used);
      picker.offer({.key = std::string(key),
                    .last_use_ms = last_use,
                    .bytes = record->meta.size + key.size() + entry_overhead_bytes,
                    .stored_at_ms = record->meta.stored_at_ms});
    }
    for (; uses->Valid() && uses->key().starts_with(access_prefix); uses->Next()) {
      note_orphan(uses->key().ToStringView().substr(1));
    }
    if (!metas->status().ok() || !uses->status().ok()) return std::nullopt;
    // A fresh entry is skipped, and so is everything used after it: taking a more recently
    // used entry in its place would undo the order. The rest goes once the grace is over.
    auto picked = picker.take();
    const auto first_fresh = std::find_if(picked.begin(), picked.end(), [&](const auto& chosen) {
      return chosen.stored_at_ms > fresh_since;
    });
    picked.erase(first_fresh, picked.end());
    return picked;
  }

  // A last-use record seen without a metadata record before it: its entry was removed while a
  // hit on it was being recorded. Kept (a bounded number per round) for drop_orphans().
  void note_orphan(std::string_view key) {
    if (orphans_.size() < max_orphans_per_round) orphans_.emplace_back(key);
  }

  // Deletes the last-use records noted by pick() whose entry is still absent.
  void drop_orphans() {
    if (orphans_.empty()) return;
    std::lock_guard lock(state_->mutex);
    rdb::WriteBatch batch;
    for (const auto& key : orphans_) {
      auto stored = state_->get_record(rdb::ReadOptions{}, layout::meta_key(key));
      if (stored && !stored->has_value()) {
        batch.Delete(state_->records, layout::access_key(key)).PermitUncheckedError();
      }
    }
    orphans_.clear();
    if (batch.Count() > 0) {
      state_->db->Write(state_->write_options, &batch).PermitUncheckedError();
    }
  }

  struct evicted_batch {
    std::uint64_t bytes = 0;
    // Of `bytes`, those in body files: unlinked at once, so no snapshot holds them on disk.
    std::uint64_t file_bytes = 0;
    std::uint64_t first_fill = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t last_fill = 0;
    bool any_chunked = false;
  };

  // Removes `chosen` (up to evict_batch_entries of them), except those replaced or used since
  // the scan, in one atomic batch: each one's metadata, last-use record and chunks (one range:
  // a fill's chunk keys are contiguous), with the stats and the eviction totals.
  void evict(std::span<const size_cap::candidate> chosen, evicted_batch& out) {
    std::lock_guard lock(state_->mutex);
    rdb::WriteBatch batch;
    store_stats stats = state_->committed;
    layout::eviction_totals totals = state_->evictions;
    std::vector<const size_cap::candidate*> evicted;
    std::vector<std::uint64_t> evicted_files;
    evicted_batch added;
    for (const auto& candidate : chosen) {
      if (auto used = state_->recency.find(candidate.key); used && *used > candidate.last_use_ms) {
        continue;
      }
      const auto stored_meta_key = layout::meta_key(candidate.key);
      auto stored = state_->get_record(rdb::ReadOptions{}, stored_meta_key);
      if (!stored || !stored->has_value()) continue;
      auto record = layout::decode_meta_summary(**stored);
      if (!record || record->meta.stored_at_ms != candidate.stored_at_ms) continue;
      if (record->where == layout::storage::chunked) {
        // Deletes are invisible to older snapshots, so a reader streaming this entry keeps it.
        batch
            .DeleteRange(state_->chunks, layout::chunk_key(record->fill_id, 0),
                         layout::chunk_key_end(record->fill_id))
            .PermitUncheckedError();
        added.any_chunked = true;
        added.first_fill = std::min(added.first_fill, record->fill_id);
        added.last_fill = std::max(added.last_fill, record->fill_id);
      } else if (record->where == layout::storage::file) {
        evicted_files.push_back(record->fill_id);
        added.file_bytes += record->meta.size;
      }
      batch.Delete(state_->records, stored_meta_key).PermitUncheckedError();
      batch.Delete(state_->records, layout::access_key(candidate.key)).PermitUncheckedError();
      stats.entries -= std::min<std::uint64_t>(stats.entries, 1);
      stats.bytes -= std::min(stats.bytes, record->meta.size);
      totals.entries += 1;
      totals.bytes += record->meta.size;
      added.bytes += record->meta.size;
      evicted.push_back(&candidate);
    }
    if (evicted.empty()) return;
    batch.Put(state_->records, layout::stats_key, layout::encode_stats(stats))
        .PermitUncheckedError();
    batch.Put(state_->records, layout::evictions_key, layout::encode_evictions(totals))
        .PermitUncheckedError();
    const bool written = state_->db->Write(state_->write_options, &batch).ok();
    for (const auto* candidate : evicted) {
      state_->forget_record(layout::meta_key(candidate->key));
    }
    if (!written) return;
    state_->unlink_bodies(evicted_files);
    state_->publish(stats);
    state_->evictions = totals;
    state_->evicted_entries.store(totals.entries, std::memory_order_relaxed);
    state_->evicted_bytes.store(totals.bytes, std::memory_order_relaxed);
    for (const auto* candidate : evicted) state_->recency.forget(candidate->key);
    out.bytes += added.bytes;
    out.file_bytes += added.file_bytes;
    if (added.any_chunked) {
      out.any_chunked = true;
      out.first_fill = std::min(out.first_fill, added.first_fill);
      out.last_fill = std::max(out.last_fill, added.last_fill);
    }
  }

  // A version that a Get still used when a compaction replaced it is released by that Get,
  // which only queues its files for deletion: RocksDB deletes them at its next flush or
  // compaction, and an idle cache has none. Re-enabling deletions scans the directory and deletes
  // every file no live version (a reader's included) refers to.
  void delete_obsolete_files() {
    if (!state_->db->DisableFileDeletions().ok()) return;
    state_->db->EnableFileDeletions(/*force=*/false).PermitUncheckedError();
    measure();
  }

  // Memtables to files, so the write-ahead log holding evicted chunks can be deleted.
  void flush() {
    rdb::FlushOptions options;
    options.wait = true;
    state_->db->Flush(options, {state_->records, state_->chunks}).PermitUncheckedError();
  }

  // Frees the disk space of an eviction round: its deletions are flushed, the records family
  // and the chunk tables over the round's fills compacted so the deleted keys are dropped, and
  // the live chunks in that range moved out of the blob files they shared with evicted ones, which
  // are then deleted once nothing refers to them. Fill ids grow with time and least recently used
  // entries are mostly old, so the range is mostly the old end of the cache.
  void reclaim(const held_eviction& round) {
    flush();
    // Metadata records with inline bodies (up to 64 KiB each) are deleted in the records family:
    // compacting it drops them. It holds no chunks, so this is a small rewrite.
    rdb::CompactRangeOptions records_options;
    records_options.bottommost_level_compaction = rdb::BottommostLevelCompaction::kForceOptimized;
    state_->db->CompactRange(records_options, state_->records, nullptr, nullptr)
        .PermitUncheckedError();
    if (!round.any_chunked) return;
    rdb::CompactRangeOptions options;
    options.bottommost_level_compaction = rdb::BottommostLevelCompaction::kForceOptimized;
    options.blob_garbage_collection_policy = rdb::BlobGarbageCollectionPolicy::kForce;
    options.blob_garbage_collection_age_cutoff = 1.0;
    const std::string begin = layout::chunk_key(round.first_fill, 0);
    const std::string end = layout::chunk_key_end(round.last_fill);
    const rdb::Slice begin_slice(begin);
    const rdb::Slice end_slice(end);
    state_->db->CompactRange(options, state_->chunks, &begin_slice, &end_slice)
        .PermitUncheckedError();
  }

  // Last-use times seen since the last write, in one batch. Under the store's mutex so an
  // eviction or removal cannot slip between taking a time and writing it.
  void write_recency() {
    std::lock_guard lock(state_->mutex);
    auto taken = state_->recency.take();
    if (taken.empty()) return;
    rdb::WriteBatch batch;
    for (const auto& [key, used_at] : taken) {
      batch
          .Put(state_->records, layout::access_key(key),
               layout::encode_u64(static_cast<std::uint64_t>(used_at)))
          .PermitUncheckedError();
    }
    state_->db->Write(state_->write_options, &batch).PermitUncheckedError();
  }

  std::shared_ptr<db_state> state_;
  std::vector<held_eviction> held_;
  std::vector<std::string> orphans_;
  std::thread thread_;  // last: started once everything it uses exists
};

class rocksdb_store final : public cache_store {
 public:
  explicit rocksdb_store(std::shared_ptr<db_state> state) : state_(std::move(state)) {
    if (state_->max_bytes != 0) keeper_ = std::make_unique<cap_keeper>(state_);
  }

  result<std::optional<entry_meta>> stat(std::string_view key) override {
    auto stored = state_->read_record(layout::meta_key(key));
    if (!stored) {
      return stored.error();
    }
    if (!stored->has_value()) {
      return std::optional<entry_meta>{};
    }
    auto record = layout::decode_meta_summary((*stored)->ToStringView());
    if (!record) {
      return record.error();
    }
    return std::optional<entry_meta>{std::move(record->meta)};
  }

  result<void> for_each_entry(const std::function<bool(std::string_view key, const entry_meta& meta,
                                                       bool damaged)>& visit) override {
    rdb::ReadOptions options;
    options.total_order_seek = true;
    std::unique_ptr<rdb::Iterator> it(state_->db->NewIterator(options, state_->records));
    const std::string prefix(1, layout::meta_prefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const auto key = it->key().ToStringView().substr(prefix.size());
      auto record = layout::decode_meta(it->value().ToStringView());
      const bool keep_going = record ? visit(key, record->meta, false) : visit(key, {}, true);
      if (!keep_going) break;
    }
    if (!it->status().ok()) {
      return to_error(it->status());
    }
    return {};
  }

  result<std::unique_ptr<entry_reader>> open(std::string_view key) override {
    const auto stored_meta_key = layout::meta_key(key);
    // A version replaced or removed between reading its record and opening its body file has
    // lost the file; the version that replaced it is read again, a few times at most.
    constexpr int attempts = 3;
    for (int attempt = 1;; ++attempt) {
      // A retry reads the database itself: the cached record is the one that failed.
      auto stored = attempt == 1 ? state_->read_record(stored_meta_key)
                                 : state_->get_record_pinned(rdb::ReadOptions{}, stored_meta_key);
      if (!stored) {
        return stored.error();
      }
      if (!stored->has_value()) {
        return std::unique_ptr<entry_reader>{};
      }
      auto record = layout::decode_meta_for_serving((*stored)->ToStringView());
      if (!record) {
        return record.error();
      }
      if (attempt == 1) state_->note_used(key);
      if (record->where != layout::storage::file) {
        return open_in_rocksdb(stored_meta_key, **stored, *record);
      }
      auto reader = open_body_file(*state_, *record);
      if (!reader || *reader) {
        return reader;
      }
      auto again = state_->get_record_pinned(rdb::ReadOptions{}, stored_meta_key);
      if (!again) {
        return again.error();
      }
      // Still the version whose file is missing: the file was lost.
      if ((again->has_value() && **again == **stored) || attempt == attempts) {
        return errc::cache_corrupt;
      }
    }
  }

 private:
  // Opens an inline or chunked version (`stored`, decoded as `record`, whose body views it; an
  // inline body's reader takes `stored` over). A file version found at the snapshot is opened
  // from its file.
  result<std::unique_ptr<entry_reader>> open_in_rocksdb(const std::string& stored_meta_key,
                                                        rdb::PinnableSlice& stored,
                                                        layout::meta_record record) {
    if (record.where == layout::storage::inline_body) {
      return inline_entry(stored, record);
    }
    // The metadata must be re-read at the snapshot: the version read above may already have
    // been replaced and its chunks deleted. Almost always it is the same record, and what was
    // decoded from it stands.
    auto snapshot = std::make_unique<rdb::ManagedSnapshot>(state_->db.get());
    rdb::ReadOptions at_snapshot;
    at_snapshot.snapshot = snapshot->snapshot();
    auto at_open = state_->get_record_pinned(at_snapshot, stored_meta_key);
    if (!at_open) {
      return at_open.error();
    }
    if (!at_open->has_value()) {
      return std::unique_ptr<entry_reader>{};
    }
    if (**at_open != stored) {
      auto replaced = layout::decode_meta_for_serving((*at_open)->ToStringView());
      if (!replaced) {
        return replaced.error();
      }
      record = *replaced;
      if (record.where == layout::storage::inline_body) {
        return inline_entry(**at_open, record);
      }
      if (record.where == layout::storage::file) {
        auto reader = open_body_file(*state_, record);
        if (reader && !*reader) return errc::cache_corrupt;
        return reader;
      }
    }
    return std::unique_ptr<entry_reader>{
        std::make_unique<chunked_reader>(state_, std::move(snapshot), record)};
  }

 public:
  result<std::unique_ptr<entry_writer>> create(std::string_view key) override {
    std::lock_guard lock(state_->mutex);
    if (state_->next_fill_id == state_->reserved_fill_end) {
      // Persisted before use: after a crash, ids handed out by the dead process stay unused.
      const std::uint64_t end = state_->reserved_fill_end + fill_id_block;
      const auto status = state_->db->Put(state_->write_options, state_->records,
                                          layout::fill_counter_key, layout::encode_u64(end));
      if (!status.ok()) {
        return to_error(status);
      }
      state_->reserved_fill_end = end;
    }
    const std::uint64_t fill_id = state_->next_fill_id++;
    state_->live_fills.insert(fill_id);
    if (state_->body_files) {
      return std::unique_ptr<entry_writer>{
          std::make_unique<file_writer>(state_, std::string(key), fill_id)};
    }
    return std::unique_ptr<entry_writer>{
        std::make_unique<rocksdb_writer>(state_, std::string(key), fill_id)};
  }

  result<void> remove(std::string_view key) override {
    const auto stored_meta_key = layout::meta_key(key);
    std::lock_guard lock(state_->mutex);
    rdb::WriteBatch batch;
    store_stats stats = state_->committed;
    bool existed = false;
    std::vector<std::uint64_t> retired_files;
    if (auto retired =
            state_->retire_current(stored_meta_key, batch, stats, existed, retired_files);
        !retired) {
      return retired;
    }
    if (!existed) {
      return {};
    }
    batch.Delete(state_->records, stored_meta_key).PermitUncheckedError();
    batch.Delete(state_->records, layout::access_key(key)).PermitUncheckedError();
    batch.Put(state_->records, layout::stats_key, layout::encode_stats(stats))
        .PermitUncheckedError();
    const auto status = state_->db->Write(state_->write_options, &batch);
    state_->forget_record(stored_meta_key);
    if (!status.ok()) {
      return to_error(status);
    }
    state_->publish(stats);
    state_->recency.forget(key);
    state_->unlink_bodies(retired_files);
    return {};
  }

  result<std::uint64_t> collect_garbage() override {
    // Replaced and removed versions lose their chunks in the batch that retires them; what is
    // left is fills that never committed, each announced by a fill record.
    std::vector<std::uint64_t> fills;
    {
      const std::string lower(1, layout::fill_prefix);
      const std::string upper(1, static_cast<char>(layout::fill_prefix + 1));
      const rdb::Slice upper_slice(upper);
      rdb::ReadOptions options;
      options.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rdb::Iterator> it(state_->db->NewIterator(options, state_->records));
      for (it->Seek(lower); it->Valid(); it->Next()) {
        if (const auto id = layout::parse_fill_key(it->key().ToStringView())) {
          fills.push_back(*id);
        }
      }
      if (!it->status().ok()) {
        return to_error(it->status());
      }
    }
    std::uint64_t deleted = 0;
    for (const auto fill_id : fills) {
      std::lock_guard lock(state_->mutex);
      if (state_->live_fills.contains(fill_id)) {
        continue;
      }
      // Re-read under the lock: the fill may have committed since the scan.
      const auto stored_fill_key = layout::fill_key(fill_id);
      auto stored = state_->get_record(rdb::ReadOptions{}, stored_fill_key);
      if (!stored) {
        return stored.error();
      }
      if (!stored->has_value()) {
        continue;
      }
      rdb::WriteBatch batch;
      std::uint64_t chunks = 0;
      if (auto fill = layout::decode_fill(**stored)) {
        chunks = fill->chunks_written;
        for (std::uint32_t i = 0; i < fill->chunks_written; ++i) {
          batch.Delete(state_->chunks, layout::chunk_key(fill_id, i)).PermitUncheckedError();
        }
      } else {
        // Without a count, drop the whole id range; the number deleted is unknown.
        batch
            .DeleteRange(state_->chunks, layout::chunk_key(fill_id, 0),
                         layout::chunk_key_end(fill_id))
            .PermitUncheckedError();
      }
      batch.Delete(state_->records, stored_fill_key).PermitUncheckedError();
      if (const auto status = state_->db->Write(state_->write_options, &batch); !status.ok()) {
        return to_error(status);
      }
      deleted += chunks;
    }
    auto files = collect_body_files();
    if (!files) {
      return files.error();
    }
    return deleted + *files;
  }

 private:
  // Deletes the body files that no committed record names and no writer of this process is
  // writing: a crash mid-fill, or between a file's fdatasync and its record, or between a
  // version's retirement and its unlink. Returns how many were deleted.
  result<std::uint64_t> collect_body_files() {
    // Fills from `first_unborn` on started after this point and are left alone; of the older
    // ones only those writing now can still commit, so a file of any other that no record
    // names below is garbage.
    std::uint64_t first_unborn = 0;
    std::unordered_set<std::uint64_t> writing;
    {
      std::lock_guard lock(state_->mutex);
      first_unborn = state_->next_fill_id;
      writing = state_->live_fills;
    }
    std::unordered_set<std::uint64_t> named;
    {
      rdb::ReadOptions options;
      options.total_order_seek = true;
      options.fill_cache = false;
      std::unique_ptr<rdb::Iterator> it(state_->db->NewIterator(options, state_->records));
      const std::string prefix(1, layout::meta_prefix);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        auto record = layout::decode_meta_summary(it->value().ToStringView());
        if (record && record->where == layout::storage::file) named.insert(record->fill_id);
      }
      if (!it->status().ok()) {
        return to_error(it->status());
      }
    }
    std::error_code listing_error;
    std::filesystem::directory_iterator listing(state_->bodies_path, listing_error);
    if (listing_error) {
      return errc::cache_io;
    }
    std::uint64_t deleted = 0;
    for (; listing != std::filesystem::directory_iterator(); listing.increment(listing_error)) {
      if (listing_error) {
        return errc::cache_io;
      }
      const auto fill_id = layout::parse_body_file_name(listing->path().filename().string());
      if (!fill_id || *fill_id >= first_unborn || writing.contains(*fill_id) ||
          named.contains(*fill_id)) {
        continue;
      }
      if (::unlink(listing->path().c_str()) == 0) deleted += 1;
      state_->open_files->drop(*fill_id);
    }
    return deleted;
  }

 public:
  store_stats stats() const override {
    return {state_->entries.load(std::memory_order_relaxed),
            state_->bytes.load(std::memory_order_relaxed)};
  }

  memory_usage memory() const override {
    memory_usage out;
    out.limit_bytes = state_->memory_bytes;
    // The write buffers are charged to the block cache (as placeholder entries), so what the
    // cache holds beyond that charge is blocks.
    const std::uint64_t cached = state_->block_cache->GetUsage();
    const std::uint64_t charged = state_->write_buffers->dummy_entries_in_cache_usage();
    out.block_bytes = cached - std::min(cached, charged);
    // Counted by the memtables themselves, not by the manager's account of them, so the report
    // stays true whatever charges them.
    std::uint64_t value = 0;
    if (state_->db->GetAggregatedIntProperty(rdb::DB::Properties::kSizeAllMemTables, &value)) {
      out.write_buffer_bytes = value;
    }
    if (state_->db->GetAggregatedIntProperty(rdb::DB::Properties::kEstimateTableReadersMem,
                                             &value)) {
      out.table_reader_bytes = value;
    }
    return out;
  }

  cap_usage usage() const override {
    return {state_->max_bytes, state_->disk_bytes.load(std::memory_order_relaxed),
            state_->evicted_entries.load(std::memory_order_relaxed),
            state_->evicted_bytes.load(std::memory_order_relaxed)};
  }

 private:
  // `record` was decoded from `stored`, in place; its body view is turned into a place in the
  // slice before the reader takes the slice over (a move may relocate a slice's own buffer).
  std::unique_ptr<entry_reader> inline_entry(rdb::PinnableSlice& stored,
                                             const layout::meta_record& record) const {
    const auto body_offset = static_cast<std::size_t>(record.body.data() - stored.data());
    const auto body_bytes = record.body.size();
    return std::make_unique<inline_reader>(state_, record.meta, std::move(stored), body_offset,
                                           body_bytes);
  }

  std::shared_ptr<db_state> state_;
  std::unique_ptr<cap_keeper> keeper_;  // last: stopped before anything else goes
};

// A flush frees a write buffer (memtable) full of chunks.
class flush_listener final : public rdb::EventListener {
 public:
  explicit flush_listener(std::shared_ptr<memory_trimmer> trimmer) : trimmer_(std::move(trimmer)) {}
  void OnFlushCompleted(rdb::DB* /*db*/, const rdb::FlushJobInfo& /*info*/) override {
    trimmer_->request();
  }

 private:
  std::shared_ptr<memory_trimmer> trimmer_;
};

rdb::BlockBasedTableOptions table_options(const std::shared_ptr<rdb::Cache>& cache) {
  rdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  return table;
}

// RocksDB keeps every table and blob file it has read open unless told otherwise, and a cache
// of many large zips has a blob file per fill: past the process's descriptor limit fills fail and
// connections cannot be accepted. A quarter of the limit leaves the rest to connections, upstream
// sockets and the go command; RocksDB closes the least recently used files beyond it.
int open_files_budget() {
  constexpr rlim_t fewest = 32;
  constexpr rlim_t most = 16384;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return static_cast<int>(most);
  }
  return static_cast<int>(std::clamp(limit.rlim_cur / 4, fewest, most));
}

// Body files kept open: what the options ask for, but at most an eighth of the descriptor limit
// (RocksDB's tables take a quarter; connections need the most).
std::size_t open_body_files_budget(const rocksdb_options& options) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return options.open_body_files;
  }
  return std::min<std::size_t>(options.open_body_files, limit.rlim_cur / 8);
}

[[nodiscard]] outcome_of<void> open_db(const rocksdb_options& options, db_state& state) {
  std::error_code fs_error;
  std::filesystem::create_directories(options.path, fs_error);
  if (fs_error) {
    return failure{errc::cache_io,
                   "cannot create cache directory " + options.path + ": " + fs_error.message()};
  }

  rdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Bounds WAL replay after a crash; the records family flushes rarely on its own.
  db_options.max_total_wal_size = 256u << 20;
  db_options.keep_log_file_num = 5;
  db_options.max_open_files = open_files_budget();

  // One budget for everything RocksDB keeps in memory: the write buffers are charged to the
  // block cache, so together they stay near memory_bytes, and a flush starts when the buffers
  // would take more than half of it. Chunks never enter it (no blob cache; the chunks family's
  // blocks hold only the small references to blob files): a served zip would stay resident.
  state.memory_bytes = options.memory_bytes;
  state.block_cache = rdb::NewLRUCache(options.memory_bytes);
  state.write_buffers =
      std::make_shared<rdb::WriteBufferManager>(options.memory_bytes / 2, state.block_cache);
  db_options.write_buffer_manager = state.write_buffers;
  state.trimmer = std::make_shared<memory_trimmer>(options.release_free_memory);
  db_options.listeners.push_back(std::make_shared<flush_listener>(state.trimmer));
  // A warm .info or .mod request is one point lookup; found in the row cache it skips the
  // index and data block searches (36.5k -> 29.7k instructions per warm request, callgrind).
  // Rows hold record values (inline bodies are at most inline_max_bytes) and the chunks family's
  // blob references, never a chunk of a large zip, and are charged to the same budget.
  db_options.row_cache = state.block_cache;
  const auto& cache = state.block_cache;
  // Chunks reach blob files only when their memtable is flushed, so a buffer holds up to its
  // size of zip bytes after a fill; a small one lets them go soon. Two such buffers (one
  // being flushed) per family fit in the half of memory_bytes the buffers are allowed.
  const std::size_t buffer_bytes = std::max<std::size_t>(options.memory_bytes / 8, 128u << 10);

  // Metadata with inline .info/.mod/list bodies: small, compressible, often looked up for keys
  // that are absent, hence bloom filters.
  rdb::ColumnFamilyOptions records_options;
  auto records_table = table_options(cache);
  records_table.filter_policy.reset(rdb::NewBloomFilterPolicy(10));
  records_options.table_factory.reset(rdb::NewBlockBasedTableFactory(records_table));
  records_options.compression = small_record_compression();
  records_options.write_buffer_size = buffer_bytes;

  // Chunks of zips: already compressed, large, written once and deleted whole. Blob files keep
  // them out of compaction's rewrites; they are always present when asked for, so no filter.
  rdb::ColumnFamilyOptions chunks_options;
  chunks_options.table_factory.reset(rdb::NewBlockBasedTableFactory(table_options(cache)));
  chunks_options.compression = rdb::kNoCompression;
  chunks_options.enable_blob_files = true;
  chunks_options.min_blob_size = 0;
  chunks_options.blob_compression_type = rdb::kNoCompression;
  // Not in every compaction: with one small blob file per flush, the automatic kind rewrote (and
  // checksummed twice, with Debian's portable CRC32C) the live chunks of the oldest quarter of
  // them each time a few tables were compacted: a quarter of a CPU second per 100 MiB zip filled
  // (docs/benchmarks.md). A blob file all of whose chunks are deleted goes without it, and the
  // cap's eviction forces it over the range it evicted (cap_keeper::reclaim).
  chunks_options.enable_blob_garbage_collection = false;
  chunks_options.write_buffer_size = buffer_bytes;

  if (options.max_bytes != 0) {
    // Under a cap every file counts as du counts it, so none may grow past a small share of it:
    // the write-ahead log (which holds chunks until a flush; RocksDB preallocates it at 1.1 x
    // the largest write buffer), a blob file, the info log and the manifest (preallocated 4 MiB
    // by default).
    const auto share = [&](std::uint64_t divisor, std::uint64_t least, std::uint64_t most) {
      return std::clamp<std::uint64_t>(options.max_bytes / divisor, least, most);
    };
    const auto buffer =
        std::min(buffer_bytes, static_cast<std::size_t>(share(16, 1u << 20, 64u << 20)));
    records_options.write_buffer_size = buffer;
    chunks_options.write_buffer_size = buffer;
    chunks_options.blob_file_size = buffer;
    db_options.max_total_wal_size = share(16, 2u << 20, 256u << 20);
    db_options.max_log_file_size = static_cast<std::size_t>(share(64, 256u << 10, 16u << 20));
    db_options.keep_log_file_num = 2;
    db_options.max_manifest_file_size = share(32, 1u << 20, 64u << 20);
    db_options.manifest_preallocation_size =
        static_cast<std::size_t>(share(64, 64u << 10, 4u << 20));
  }

  // A large entry's last chunks are flushed with it: a blob file per such entry is cheap, its
  // bytes left in memory are not. Smaller ones share buffers (and blob files).
  state.flush_after_bytes = chunks_options.write_buffer_size / 2;

  const std::vector<rdb::ColumnFamilyDescriptor> families = {
      {rdb::kDefaultColumnFamilyName, records_options},
      {std::string(layout::chunks_family), chunks_options},
  };
  // Flushes and compactions move and checksum every zip byte a fill writes, a second time and
  // more, with Debian's portable CRC32C. Like the checks pool they wait for serving on a busy
  // machine (nice 19, applied by each thread before its next job): a slower flush slows the
  // fills writing behind it, never a warm request.
  for (const auto pool : {rdb::Env::Priority::HIGH, rdb::Env::Priority::LOW}) {
    rdb::Env::Default()
        ->LowerThreadPoolCPUPriority(pool, rdb::CpuPriority::kLow)
        .PermitUncheckedError();
  }
  rdb::DB* db = nullptr;
  const auto status = rdb::DB::Open(db_options, options.path, families, &state.handles, &db);
  if (!status.ok()) {
    std::string message = "cannot open cache at " + options.path + ": " + status.ToString();
    if (status.ToString().find("lock") != std::string::npos) {
      message += " (is another gomodproxy using this directory?)";
    }
    return failure{to_error(status), std::move(message)};
  }
  state.db.reset(db);
  state.records = state.handles[0];
  state.chunks = state.handles[1];
  return {};
}

[[nodiscard]] outcome_of<void> load_records(const rocksdb_options& options, db_state& state) {
  auto version = state.get_record(rdb::ReadOptions{}, layout::version_key);
  if (!version) {
    return failure{version.error(), "cannot read cache at " + options.path};
  }
  if (!version->has_value()) {
    const auto status = state.db->Put(state.write_options, state.records, layout::version_key,
                                      std::string(1, static_cast<char>(layout::format_version)));
    if (!status.ok()) {
      return failure{to_error(status),
                     "cannot write cache at " + options.path + ": " + status.ToString()};
    }
  } else if (**version != std::string(1, static_cast<char>(layout::format_version))) {
    return failure{errc::cache_corrupt,
                   "cache at " + options.path + " has an unknown layout version"};
  }

  auto stats = state.get_record(rdb::ReadOptions{}, layout::stats_key);
  if (!stats) {
    return failure{stats.error(), "cannot read cache statistics at " + options.path};
  }
  if (stats->has_value()) {
    auto decoded = layout::decode_stats(**stats);
    if (!decoded) {
      return failure{decoded.error(), "corrupt cache statistics at " + options.path};
    }
    state.publish(*decoded);
  }

  auto evictions = state.get_record(rdb::ReadOptions{}, layout::evictions_key);
  if (!evictions) {
    return failure{evictions.error(), "cannot read cache eviction totals at " + options.path};
  }
  if (evictions->has_value()) {
    auto decoded = layout::decode_evictions(**evictions);
    if (!decoded) {
      return failure{decoded.error(), "corrupt cache eviction totals at " + options.path};
    }
    state.evictions = *decoded;
    state.evicted_entries.store(decoded->entries, std::memory_order_relaxed);
    state.evicted_bytes.store(decoded->bytes, std::memory_order_relaxed);
  }

  auto counter = state.get_record(rdb::ReadOptions{}, layout::fill_counter_key);
  if (!counter) {
    return failure{counter.error(), "cannot read cache fill counter at " + options.path};
  }
  if (counter->has_value()) {
    auto decoded = layout::decode_u64(**counter);
    if (!decoded) {
      return failure{decoded.error(), "corrupt cache fill counter at " + options.path};
    }
    state.next_fill_id = state.reserved_fill_end = *decoded;
  }
  return {};
}

}  // namespace

outcome_of<std::unique_ptr<cache_store>> open_rocksdb_store(const rocksdb_options& options) {
  if (options.chunk_bytes == 0 || options.chunk_bytes > max_chunk_bytes) {
    return failure{errc::cache_io, "cache chunk size must be between 1 byte and 64 MiB"};
  }
  if (options.inline_max_bytes > options.chunk_bytes) {
    return failure{errc::cache_io, "cache inline limit must not exceed the chunk size"};
  }
  if (options.memory_bytes < min_memory_bytes) {
    return failure{errc::cache_io, "cache memory must be at least 1 MiB"};
  }
  auto state = std::make_shared<db_state>();
  state->chunk_bytes = static_cast<std::uint32_t>(options.chunk_bytes);
  state->inline_max_bytes = options.inline_max_bytes;
  state->body_files = options.body_files;
  state->path = options.path;
  state->bodies_path = options.path + "/" + std::string(layout::bodies_directory);
  state->open_files =
      std::make_unique<open_file_cache>(state->bodies_path, open_body_files_budget(options));
  state->max_bytes = options.max_bytes;
  state->fresh_entry_grace_ms = options.fresh_entry_grace.count();
  if (auto opened = open_db(options, *state); !opened) {
    return opened.error();
  }
  if (auto loaded = load_records(options, *state); !loaded) {
    return loaded.error();
  }
  std::error_code fs_error;
  std::filesystem::create_directories(state->bodies_path, fs_error);
  if (fs_error) {
    return failure{errc::cache_io, "cannot create body directory " + state->bodies_path + ": " +
                                       fs_error.message()};
  }
  return std::unique_ptr<cache_store>{std::make_unique<rocksdb_store>(std::move(state))};
}

}  // namespace gomodproxy::cache
