// Case-encoding of module paths and versions ("!" escaping), as the go command does it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::protocol {

/// Every ASCII uppercase letter becomes '!' plus its lowercase form; nothing else changes.
std::string escape_case(std::string_view s);

/// Inverse of escape_case. nullopt when the input has a raw uppercase letter, a '!' not
/// followed by a-z, a trailing '!', or a byte >= 0x80.
std::optional<std::string> unescape_case(std::string_view s);

}  // namespace gomodproxy::protocol
