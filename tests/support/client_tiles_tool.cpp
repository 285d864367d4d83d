// Runs sumdb::client_tiles and sumdb::check_records_in_tree for
// tests/integration/test_tile_plan.py, which compares them with the real go command and the real
// checksum database. A test tool, not part of the product.
//
//   client_tiles_tool plan TREE_SIZE OLDER_TREE_SIZE [RECORD_ID...]
//     prints the planned tile paths, one per line
//   client_tiles_tool check TREE_SIZE ROOT_HEX TILE_DIR [RECORD_ID=RECORD_HASH_HEX...]
//     checks the files under TILE_DIR (named by tile path) against the tree; prints "ok" or the
//     reason and exits 1
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"
#include "sumdb/tlog.hpp"

namespace {

namespace sumdb = gomodproxy::sumdb;

constexpr std::string_view usage =
    "usage: client_tiles_tool plan TREE_SIZE OLDER_TREE_SIZE [RECORD_ID...]\n"
    "       client_tiles_tool check TREE_SIZE ROOT_HEX TILE_DIR [RECORD_ID=RECORD_HASH_HEX...]\n";

std::optional<std::int64_t> parse_count(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<sumdb::tlog_hash> parse_hash_hex(std::string_view text) {
  sumdb::tlog_hash hash{};
  if (text.size() != hash.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < hash.size(); ++i) {
    const auto [end, error] =
        std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, hash[i], 16);
    if (error != std::errc{} || end != text.data() + 2 * i + 2) return std::nullopt;
  }
  return hash;
}

int fail(std::string_view message) {
  std::cerr << "client_tiles_tool: " << message << "\n";
  return 2;
}

int plan(std::span<char*> args) {
  std::vector<std::int64_t> numbers;
  for (char* arg : args) {
    const auto number = parse_count(arg);
    if (!number) return fail(std::string(arg) + " is not a number");
    numbers.push_back(*number);
  }
  if (numbers.size() < 2) return fail("plan needs TREE_SIZE and OLDER_TREE_SIZE");
  const std::vector<std::int64_t> record_ids(numbers.begin() + 2, numbers.end());
  const auto tiles = sumdb::client_tiles(numbers[0], record_ids, numbers[1]);
  if (!tiles) {
    return fail(
        "TREE_SIZE must be in [1, 2^62], OLDER_TREE_SIZE in [0, TREE_SIZE] and each RECORD_ID in "
        "[0, TREE_SIZE)");
  }
  for (const auto& t : *tiles) std::cout << sumdb::tile_path(t) << "\n";
  return 0;
}

int check(std::span<char*> args) {
  if (args.size() < 3) return fail("check needs TREE_SIZE, ROOT_HEX and TILE_DIR");
  const auto tree_size = parse_count(args[0]);
  if (!tree_size) return fail(std::string(args[0]) + " is not a number");
  const auto root = parse_hash_hex(args[1]);
  if (!root) return fail(std::string(args[1]) + " is not a 64-digit hex hash");
  const std::filesystem::path dir = args[2];
  std::map<std::string, std::string> tiles;
  std::error_code error;
  for (std::filesystem::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    tiles[it->path().lexically_relative(dir).generic_string()] =
        std::string(std::istreambuf_iterator<char>(in), {});
  }
  if (error) return fail("cannot read " + dir.string() + ": " + error.message());
  std::vector<std::pair<std::int64_t, sumdb::tlog_hash>> records;
  for (std::string_view arg : args.subspan(3)) {
    const auto equals = arg.find('=');
    const auto id = parse_count(arg.substr(0, equals));
    const auto hash =
        equals == std::string_view::npos ? std::nullopt : parse_hash_hex(arg.substr(equals + 1));
    if (!id || !hash) return fail(std::string(arg) + " is not RECORD_ID=RECORD_HASH_HEX");
    records.emplace_back(*id, *hash);
  }
  const auto fits = sumdb::check_records_in_tree(*tree_size, *root, tiles, records);
  std::cout << (fits ? std::string("ok") : fits.error().detail) << "\n";
  return fits ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::span<char*> args(argv, static_cast<std::size_t>(argc));
  if (args.size() >= 2 && std::string_view(args[1]) == "plan") return plan(args.subspan(2));
  if (args.size() >= 2 && std::string_view(args[1]) == "check") return check(args.subspan(2));
  std::cerr << usage;
  return 2;
}
