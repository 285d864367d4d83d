#include "cache/memory_store.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/errc.hpp"

namespace gomodproxy::cache {
namespace {

// Every chunk but the last holds exactly chunk_bytes, so an offset finds its chunk by division.
struct chunked_body {
  std::size_t chunk_bytes = 0;
  std::uint64_t size = 0;
  std::vector<std::string> chunks;

  void append(std::string_view bytes) {
    while (!bytes.empty()) {
      if (chunks.empty() || chunks.back().size() == chunk_bytes) {
        chunks.emplace_back();
        chunks.back().reserve(std::min(chunk_bytes, bytes.size()));
      }
      auto& last = chunks.back();
      const std::size_t n = std::min(chunk_bytes - last.size(), bytes.size());
      last.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      size += n;
    }
  }

  std::string_view view(std::uint64_t offset, std::size_t max_bytes) const {
    if (offset >= size || max_bytes == 0) return {};
    const std::string& chunk = chunks[offset / chunk_bytes];
    return std::string_view(chunk).substr(offset % chunk_bytes, max_bytes);
  }

  std::string read(std::uint64_t offset, std::size_t max_bytes) const {
    std::string out;
    if (offset >= size) return out;
    out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, size - offset)));
    while (out.size() < max_bytes) {
      const auto piece = view(offset + out.size(), max_bytes - out.size());
      if (piece.empty()) break;
      out.append(piece);
    }
    return out;
  }
};

// A committed version: immutable, shared by the map and every reader that opened it.
struct version {
  entry_meta meta;
  chunked_body body;
};

struct state {
  std::size_t chunk_bytes = 0;
  mutable std::mutex mutex;
  std::map<std::string, std::shared_ptr<const version>, std::less<>> entries;
  store_stats stats;
};

class memory_reader final : public entry_reader {
 public:
  explicit memory_reader(std::shared_ptr<const version> v) : version_(std::move(v)) {}
  const entry_meta& meta() const override { return version_->meta; }
  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    return version_->body.read(offset, max_bytes);
  }
  result<std::string_view> view(std::uint64_t offset, std::size_t max_bytes) override {
    return version_->body.view(offset, max_bytes);
  }

 private:
  std::shared_ptr<const version> version_;
};

class memory_writer final : public entry_writer {
 public:
  memory_writer(std::shared_ptr<state> s, std::string key)
      : state_(std::move(s)), key_(std::move(key)) {
    body_.chunk_bytes = state_->chunk_bytes;
  }
  result<void> append(std::string_view bytes) override {
    if (committed_) return errc::cache_io;
    body_.append(bytes);
    return {};
  }
  std::uint64_t size() const override { return body_.size; }
  result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (committed_) return errc::cache_io;
    return body_.read(offset, max_bytes);
  }
  result<void> commit(entry_meta meta) override {
    if (committed_) return errc::cache_io;
    committed_ = true;
    meta.size = body_.size;
    if (meta.stored_at_ms == 0) {
      meta.stored_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    }
    auto committed = std::make_shared<version>(version{std::move(meta), std::move(body_)});
    std::shared_ptr<const version> replaced;  // freed outside the lock
    {
      std::lock_guard lock(state_->mutex);
      auto [at, inserted] = state_->entries.try_emplace(key_);
      if (inserted) {
        ++state_->stats.entries;
      } else {
        state_->stats.bytes -= at->second->meta.size;
        replaced = std::move(at->second);
      }
      state_->stats.bytes += committed->meta.size;
      at->second = std::move(committed);
    }
    return {};
  }

 private:
  std::shared_ptr<state> state_;
  std::string key_;
  chunked_body body_;
  bool committed_ = false;
};

class memory_store final : public cache_store {
 public:
  explicit memory_store(std::size_t chunk_bytes) : state_(std::make_shared<state>()) {
    state_->chunk_bytes = chunk_bytes;
  }

  result<std::optional<entry_meta>> stat(std::string_view key) override {
    std::lock_guard lock(state_->mutex);
    const auto at = state_->entries.find(key);
    if (at == state_->entries.end()) return std::optional<entry_meta>();
    return std::optional<entry_meta>(at->second->meta);
  }

  result<std::unique_ptr<entry_reader>> open(std::string_view key) override {
    std::shared_ptr<const version> found;
    {
      std::lock_guard lock(state_->mutex);
      const auto at = state_->entries.find(key);
      if (at == state_->entries.end()) return std::unique_ptr<entry_reader>();
      found = at->second;
    }
    return std::unique_ptr<entry_reader>(std::make_unique<memory_reader>(std::move(found)));
  }

  result<std::unique_ptr<entry_writer>> create(std::string_view key) override {
    return std::unique_ptr<entry_writer>(std::make_unique<memory_writer>(state_, std::string(key)));
  }

  result<void> remove(std::string_view key) override {
    std::shared_ptr<const version> removed;  // freed outside the lock
    std::lock_guard lock(state_->mutex);
    const auto at = state_->entries.find(key);
    if (at == state_->entries.end()) return {};
    --state_->stats.entries;
    state_->stats.bytes -= at->second->meta.size;
    removed = std::move(at->second);
    state_->entries.erase(at);
    return {};
  }

  result<void> for_each_entry(
      const std::function<bool(std::string_view, const entry_meta&, bool)>& visit) override {
    // One entry per lock, so `visit` may call back into the store.
    std::optional<std::string> last;
    for (;;) {
      std::string key;
      entry_meta meta;
      {
        std::lock_guard lock(state_->mutex);
        const auto at = last ? state_->entries.upper_bound(*last) : state_->entries.begin();
        if (at == state_->entries.end()) return {};
        key = at->first;
        meta = at->second->meta;
      }
      if (!visit(key, meta, false)) return {};
      last = std::move(key);
    }
  }

  // Abandoned and replaced versions are freed by their last owner, never left behind.
  result<std::uint64_t> collect_garbage() override { return std::uint64_t{0}; }

  store_stats stats() const override {
    std::lock_guard lock(state_->mutex);
    return state_->stats;
  }

 private:
  std::shared_ptr<state> state_;
};

}  // namespace

result<std::unique_ptr<cache_store>> open_memory_store(const memory_options& options) {
  if (options.chunk_bytes == 0) return errc::cache_io;
  return std::unique_ptr<cache_store>(std::make_unique<memory_store>(options.chunk_bytes));
}

}  // namespace gomodproxy::cache
