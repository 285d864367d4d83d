// Case-encoding of module paths and versions ("!" escaping), as the go command does it, and the
// quoting of untrusted text inside error reasons.
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

/// `s` in double quotes, Go %q-like but ASCII-only: '"' and '\\' are backslash-escaped, other
/// bytes outside printable ASCII become \n, \t, \r or \xNN, and input beyond 128 bytes is cut
/// with "...". The result is safe inside a one-line text/plain error body.
std::string quote(std::string_view s);

}  // namespace gomodproxy::protocol
