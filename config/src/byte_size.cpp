#include "config/byte_size.hpp"

#include <array>
#include <limits>
#include <string>
#include <utility>

namespace gomodproxy::config {
namespace {

// Largest first, so format_byte_size picks the biggest unit that divides exactly.
constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units = {{
    {"TiB", std::uint64_t{1} << 40},
    {"GiB", std::uint64_t{1} << 30},
    {"MiB", std::uint64_t{1} << 20},
    {"KiB", std::uint64_t{1} << 10},
    {"B", 1},
}};

// Beyond this a byte count is a typo, and signed 64-bit arithmetic elsewhere stays safe.
constexpr std::uint64_t largest = std::numeric_limits<std::int64_t>::max();

}  // namespace

std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return std::nullopt;
  const auto suffix = text.substr(digits);
  std::uint64_t multiplier = 0;
  if (suffix.empty()) {
    multiplier = 1;
  } else {
    for (const auto& [name, size] : units) {
      if (suffix == name) multiplier = size;
    }
  }
  if (multiplier == 0) return std::nullopt;
  std::uint64_t number = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    number = number * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (number > largest) return std::nullopt;
  }
  if (number != 0 && number > largest / multiplier) return std::nullopt;
  return number * multiplier;
}

std::string format_byte_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  for (const auto& [name, size] : units) {
    if (bytes % size == 0) return std::to_string(bytes / size) + std::string(name);
  }
  return std::to_string(bytes);
}

}  // namespace gomodproxy::config
