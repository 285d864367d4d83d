// UTF-8 decoding with Go's unicode/utf8 rules, shared by module path checks and path globbing.
#pragma once

#include <cstddef>
#include <string_view>

namespace gomodproxy::protocol {

struct decoded_rune {
  char32_t value = 0;
  std::size_t size = 0;
  bool valid = false;
};

/// One UTF-8 sequence from the front of `s`, valid as Go's utf8 package defines it (shortest
/// form, no surrogates, at most U+10FFFF). Like Go's utf8.DecodeRuneInString, invalid or
/// truncated input gives {U+FFFD, 1, false} and empty input {U+FFFD, 0, false}; a valid
/// sequence, including an encoded U+FFFD, gives its value, its length in bytes and true.
[[nodiscard]] decoded_rune decode_rune(std::string_view s);

}  // namespace gomodproxy::protocol
