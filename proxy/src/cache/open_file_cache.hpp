// Private to the cache: body files kept open between readers (as nginx's open_file_cache), so a
// warm hit on a body file costs a table lookup rather than open, fstat and close.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cache/cache_store.hpp"

namespace gomodproxy::cache {

/// One open body file; the descriptor closes when the last holder (the cache, readers) lets go.
class open_file {
 public:
  explicit open_file(int fd) : fd_(fd) {}
  open_file(const open_file&) = delete;
  open_file& operator=(const open_file&) = delete;
  ~open_file();
  int fd() const { return fd_; }

 private:
  int fd_;
};

/// Descriptors of body files, keyed by fill id, at most `capacity` of them; the least recently
/// used goes first. A fill id's file never changes once committed, so a kept descriptor stays
/// right until drop(), which whoever unlinks the file calls afterwards: from then on the cache
/// holds nothing of it and its blocks are freed when the last reader closes. Thread-safe.
class open_file_cache {
 public:
  /// Files are `directory`/body_file_name(fill id). capacity 0 keeps nothing open.
  open_file_cache(std::string directory, std::size_t capacity);

  /// The file of `fill_id`, opened and checked to hold `size` bytes on a miss (a hit is not
  /// checked again); nullptr when the file does not exist; cache_corrupt when it holds
  /// another size; cache_io when it cannot be opened or examined.
  [[nodiscard]] result<std::shared_ptr<const open_file>> open(std::uint64_t fill_id,
                                                              std::uint64_t size);
  /// Forgets `fill_id`'s descriptor. Call after unlinking its file: an open that raced the
  /// unlink then keeps its descriptor for itself instead of adding it.
  void drop(std::uint64_t fill_id);
  /// Descriptors held now.
  [[nodiscard]] std::size_t size() const;

 private:
  struct slot {
    std::shared_ptr<const open_file> file;
    std::list<std::uint64_t>::iterator used;  // in used_, most recent first
  };

  std::string directory_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, slot> files_;
  std::list<std::uint64_t> used_;
  // Bumped by every drop(): an open that missed and saw another count when it is done may have
  // opened a file that was unlinked meanwhile, and must not keep it.
  std::uint64_t drops_ = 0;
};

}  // namespace gomodproxy::cache
