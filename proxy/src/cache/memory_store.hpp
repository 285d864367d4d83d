// A cache store that keeps every entry in process memory, in chunks: for tests, and for code that
// wants the store's contract without a directory. Nothing outlives the store's last handle.
#pragma once

#include <cstddef>
#include <memory>

#include "cache/cache_store.hpp"

namespace gomodproxy::cache {

struct memory_options {
  /// Size of the pieces a body is kept in, so a large body is never one allocation that has to
  /// be copied as it grows; entry_reader::view() stops at their boundaries. Default: 128 KiB
  std::size_t chunk_bytes = 128 << 10;
};

/// A new, empty in-memory store. Thread-safe like every cache_store; a reader keeps the version
/// it opened alive, and a writer's bytes are freed when it is destroyed uncommitted, so
/// collect_garbage() always finds nothing to delete. Readers and writers may outlive the store.
/// cache_io when chunk_bytes is 0.
[[nodiscard]] result<std::unique_ptr<cache_store>> open_memory_store(
    const memory_options& options = {});

}  // namespace gomodproxy::cache
