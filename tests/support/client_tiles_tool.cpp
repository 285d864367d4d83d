// Prints sumdb::client_tiles' plan, one tile path per line, so tests/integration/test_tile_plan.py
// can compare it with the tiles the real go command fetches. A test tool, not part of the product.
//
//   client_tiles_tool TREE_SIZE OLDER_TREE_SIZE [RECORD_ID...]
#include <charconv>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"

namespace {

std::optional<std::int64_t> parse_count(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: client_tiles_tool TREE_SIZE OLDER_TREE_SIZE [RECORD_ID...]\n";
    return 2;
  }
  std::vector<std::int64_t> numbers;
  for (int i = 1; i < argc; ++i) {
    const auto number = parse_count(argv[i]);
    if (!number) {
      std::cerr << "client_tiles_tool: " << argv[i] << " is not a number\n";
      return 2;
    }
    numbers.push_back(*number);
  }
  const std::vector<std::int64_t> record_ids(numbers.begin() + 2, numbers.end());
  const auto tiles = gomodproxy::sumdb::client_tiles(numbers[0], record_ids, numbers[1]);
  if (!tiles) {
    std::cerr
        << "client_tiles_tool: TREE_SIZE must be at least 1, OLDER_TREE_SIZE in [0, TREE_SIZE] "
           "and each RECORD_ID in [0, TREE_SIZE)\n";
    return 2;
  }
  for (const auto& t : *tiles) std::cout << gomodproxy::sumdb::tile_path(t) << "\n";
  return 0;
}
