// Files a setting names (the TLS certificate and key, the token lists): read whole within a size
// limit, and named in one-line start-up and reload messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::server {

/// Largest setting file read. These hold a few kilobytes; the limit keeps a wrong path (a log, a
/// device) from filling memory at start-up or, worse, in a running server on SIGHUP.
inline constexpr std::size_t max_setting_file_bytes = std::size_t{4} * 1024 * 1024;

/// The file's bytes, or why they could not be read as the detail: the system's reason ("No such
/// file or directory", its errno in the generic category), "it is a directory" (EISDIR), "it
/// changed while it was read" (EAGAIN) or "it is larger than 4 MiB" (errc::too_large). A regular
/// file is read into one allocation, so a secret in it leaves no stray copies on the heap.
[[nodiscard]] outcome_of<std::string> read_setting_file(const std::string& path);

/// `path` in double quotes, with control bytes, bytes above 0x7e, `"` and `\` written as \xNN,
/// so that a message naming it stays one printable line.
std::string quoted_path(std::string_view path);

}  // namespace gomodproxy::server
