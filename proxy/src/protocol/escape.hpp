// Case-encoding of module paths and versions ("!" escaping), as the go command does it, and the
// quoting of untrusted text inside error reasons.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::protocol {

/// Every ASCII uppercase letter becomes '!' plus its lowercase form; nothing else changes.
std::string escape_case(std::string_view s);

/// Inverse of escape_case. nullopt when the input has a raw uppercase letter, a '!' not
/// followed by a-z, a trailing '!', or a byte >= 0x80.
std::optional<std::string> unescape_case(std::string_view s);

/// How quote() renders its input.
struct quote_options {
  /// Surround the text with '"' and backslash-escape '"' and '\\' inside it. Without quotes '"'
  /// stays as is and '\\' becomes \x5c, so every backslash in the output starts an escape.
  /// Default: true.
  bool quotes = true;
  /// Show newline, carriage return and tab as \n, \r and \t rather than \x0a, \x0d and \x09.
  /// Default: true.
  bool named_controls = true;
  /// Input beyond this many bytes is cut and "..." follows the (closing quote of the) shown part.
  /// Default: 128, so an 8 KiB request target cannot become an 8 KiB error body.
  std::size_t max_bytes = 128;
};

/// `s` as printable one-line ASCII for an error message: Go %q-like but ASCII-only. Bytes
/// outside printable ASCII become \xNN (or \n, \r, \t, see quote_options). The result is safe
/// inside a one-line text/plain error body or log line.
std::string quote(std::string_view s, const quote_options& options = {});

/// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view trim_space(std::string_view s);

}  // namespace gomodproxy::protocol
