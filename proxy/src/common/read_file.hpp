// Reading a small file a command names (a modules list, a go.sum) whole, within a size limit.
#pragma once

#include <cstddef>
#include <string>

#include "common/failure.hpp"

namespace gomodproxy {

/// The bytes of the file at `path`. Fails with the errno (generic category) and its text
/// ("No such file or directory", "Is a directory") as the detail when the file cannot be opened
/// or read, or with errc::too_large and "larger than <max_bytes> bytes" once more than
/// `max_bytes` have been read (which keeps a wrong path, a disk image or a device, from filling
/// memory). The detail is the reason alone: the caller names the file as its message needs.
[[nodiscard]] outcome_of<std::string> read_file(const std::string& path, std::size_t max_bytes);

}  // namespace gomodproxy
