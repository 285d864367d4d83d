#include "cache/open_file_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "cache/rocksdb_layout.hpp"
#include "common/errc.hpp"

namespace gomodproxy::cache {

open_file::~open_file() { ::close(fd_); }

open_file_cache::open_file_cache(std::string directory, std::size_t capacity)
    : directory_(std::move(directory)), capacity_(capacity) {}

result<std::shared_ptr<const open_file>> open_file_cache::open(std::uint64_t fill_id,
                                                               std::uint64_t size) {
  std::uint64_t drops_seen = 0;
  {
    std::lock_guard lock(mutex_);
    if (const auto found = files_.find(fill_id); found != files_.end()) {
      used_.splice(used_.begin(), used_, found->second.used);
      return found->second.file;
    }
    drops_seen = drops_;
  }
  // Opened outside the lock: a miss waits on the disk, hits on other threads should not.
  const auto path = directory_ + "/" + layout::body_file_name(fill_id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::shared_ptr<const open_file>{};
    return errc::cache_io;
  }
  auto file = std::make_shared<const open_file>(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) return errc::cache_io;
  if (static_cast<std::uint64_t>(info.st_size) != size) return errc::cache_corrupt;
  if (capacity_ == 0) return file;
  std::lock_guard lock(mutex_);
  if (drops_ != drops_seen) return file;
  if (const auto found = files_.find(fill_id); found != files_.end()) {
    // Another reader opened it meanwhile: share theirs, ours closes.
    used_.splice(used_.begin(), used_, found->second.used);
    return found->second.file;
  }
  if (files_.size() >= capacity_) {
    files_.erase(used_.back());
    used_.pop_back();
  }
  used_.push_front(fill_id);
  files_.emplace(fill_id, slot{file, used_.begin()});
  return file;
}

void open_file_cache::drop(std::uint64_t fill_id) {
  std::lock_guard lock(mutex_);
  ++drops_;
  if (const auto found = files_.find(fill_id); found != files_.end()) {
    used_.erase(found->second.used);
    files_.erase(found);
  }
}

std::size_t open_file_cache::size() const {
  std::lock_guard lock(mutex_);
  return files_.size();
}

}  // namespace gomodproxy::cache
