#include "protocol/utf8.hpp"

namespace gomodproxy::protocol {

namespace {

constexpr char32_t rune_error = 0xfffd;

}  // namespace

decoded_rune decode_rune(std::string_view s) {
  constexpr decoded_rune invalid{rune_error, 1, false};
  if (s.empty()) return {rune_error, 0, false};
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return {b0, 1, true};
  std::size_t n = 0;
  char32_t min = 0;
  char32_t value = 0;
  if ((b0 & 0xe0) == 0xc0) {
    n = 2, min = 0x80, value = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3, min = 0x800, value = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, value = b0 & 0x07;
  } else {
    return invalid;
  }
  if (s.size() < n) return invalid;
  for (std::size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return invalid;
    value = (value << 6) | (byte(i) & 0x3f);
  }
  // Overlong forms would let one rune hide behind several spellings.
  if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return invalid;
  return {value, n, true};
}

}  // namespace gomodproxy::protocol
