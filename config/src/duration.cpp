#include "config/duration.hpp"

#include <cstdint>

namespace gomodproxy::config {
namespace {

// Large enough for any timeout or TTL anyone means, small enough that adding it to a
// steady_clock time point cannot overflow.
constexpr std::int64_t max_duration_ms = std::int64_t{10} * 366 * 24 * 3600 * 1000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a run of digits, saturating above max_duration_ms so overflow is impossible.
std::optional<std::int64_t> read_number(std::string_view text, std::size_t& pos) {
  const std::size_t start = pos;
  std::int64_t value = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    value = value * 10 + (text[pos] - '0');
    if (value > max_duration_ms) return std::nullopt;
    ++pos;
  }
  if (pos == start) return std::nullopt;
  return value;
}

std::optional<std::int64_t> unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 3600 * 1000;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  std::int64_t total = 0;
  bool first = true;
  while (pos < text.size()) {
    const auto number = read_number(text, pos);
    if (!number) return std::nullopt;
    std::size_t unit_end = pos;
    while (unit_end < text.size() && !is_digit(text[unit_end])) ++unit_end;
    const std::string_view unit = text.substr(pos, unit_end - pos);
    pos = unit_end;
    std::int64_t scale = 0;
    if (unit.empty()) {
      // A bare number means seconds, but only on its own: "1m30" is a typo, not 1m30s.
      if (!first) return std::nullopt;
      scale = 1000;
    } else if (const auto ms = unit_ms(unit)) {
      scale = *ms;
    } else {
      return std::nullopt;
    }
    if (*number > (max_duration_ms - total) / scale) return std::nullopt;
    total += *number * scale;
    first = false;
  }
  return std::chrono::milliseconds{total};
}

}  // namespace gomodproxy::config
