// How many files under a directory this process still holds open after they were unlinked:
// their blocks stay allocated until the last descriptor closes.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

namespace gomodproxy::test {

/// Descriptors of this process (/proc/self/fd) on files unlinked from directly under `dir`.
inline int open_deleted_files_in(const std::filesystem::path& dir) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const auto target = std::filesystem::read_symlink(entry.path(), error).string();
    if (!error && target.starts_with(dir.string() + "/") && target.ends_with(" (deleted)")) {
      ++count;
    }
  }
  return count;
}

}  // namespace gomodproxy::test
