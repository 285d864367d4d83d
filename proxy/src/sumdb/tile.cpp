#include "sumdb/tile.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/errc.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::size_t hash_bytes = std::tuple_size_v<tlog_hash>;

bool is_hash_tile(const tile& t) {
  return t.height >= 1 && t.height <= 30 && t.level >= 0 && t.level < 64 && t.width >= 1 &&
         t.width <= (1 << t.height);
}

tlog_hash hash_at(std::string_view data, std::size_t offset) {
  tlog_hash hash{};
  std::memcpy(hash.data(), data.data() + offset, hash.size());
  return hash;
}

// Folds a run of 2^k adjacent bottom-row hashes, left to right in pairs, into their subtree's hash.
tlog_hash fold_run(std::string_view run) {
  std::vector<tlog_hash> level;
  for (std::size_t offset = 0; offset < run.size(); offset += hash_bytes) {
    level.push_back(hash_at(run, offset));
  }
  while (level.size() > 1) {
    std::vector<tlog_hash> parents;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) {
      parents.push_back(node_hash(level[i], level[i + 1]));
    }
    level = std::move(parents);
  }
  return level.front();
}

}  // namespace

tile_span tile_for_index(int height, std::int64_t stored_index) {
  const tree_coordinate node = split_stored_hash_index(stored_index);
  tile_span out;
  out.tile.height = height;
  out.tile.level = node.level / height;
  // The node sits `depth` levels above the tile's bottom row and covers 2^depth of its hashes.
  const int depth = node.level - out.tile.level * height;
  const std::int64_t first_bottom = node.n << depth;
  out.tile.index = first_bottom >> height;
  const std::int64_t offset_in_tile = first_bottom - (out.tile.index << height);
  const std::int64_t covered = std::int64_t{1} << depth;
  out.tile.width = static_cast<int>(offset_in_tile + covered);
  out.begin = static_cast<std::size_t>(offset_in_tile) * hash_bytes;
  out.end = static_cast<std::size_t>(offset_in_tile + covered) * hash_bytes;
  return out;
}

std::string tile_path(const tile& t) {
  auto group = [](std::int64_t value) {
    std::string digits = std::to_string(value % 1000);
    return std::string(3 - digits.size(), '0') + digits;
  };
  std::string index = group(t.index);
  for (std::int64_t rest = t.index / 1000; rest > 0; rest /= 1000) {
    index = "x" + group(rest) + "/" + index;
  }
  std::string path = "tile/" + std::to_string(t.height) + "/" +
                     (t.level < 0 ? std::string("data") : std::to_string(t.level)) + "/" + index;
  if (t.width != (1 << t.height)) path += ".p/" + std::to_string(t.width);
  return path;
}

boost::system::result<std::string> read_tile_data(const tile& t, const hash_reader& read) {
  if (!is_hash_tile(t)) return make_error_code(errc::invalid_request);
  const int tree_level = t.level * t.height;
  const std::int64_t first = t.index << t.height;
  std::vector<std::int64_t> indexes;
  indexes.reserve(static_cast<std::size_t>(std::max(t.width, 0)));
  for (int i = 0; i < t.width; ++i) indexes.push_back(stored_hash_index(tree_level, first + i));
  auto hashes = read(indexes);
  if (!hashes) return hashes.error();
  if (hashes->size() != indexes.size()) return make_error_code(errc::verification_failed);
  std::string data;
  data.reserve(hashes->size() * hash_bytes);
  for (const tlog_hash& hash : *hashes) {
    data.append(reinterpret_cast<const char*>(hash.data()), hash.size());
  }
  return data;
}

boost::system::result<tlog_hash> hash_from_tile(const tile& t, std::string_view data,
                                                std::int64_t stored_index) {
  const auto failed = make_error_code(errc::verification_failed);
  if (!is_hash_tile(t) || stored_index < 0) return failed;
  if (data.size() < static_cast<std::size_t>(t.width) * hash_bytes) return failed;
  const tile_span needed = tile_for_index(t.height, stored_index);
  if (needed.tile.level != t.level || needed.tile.index != t.index || needed.tile.width > t.width) {
    return failed;
  }
  return fold_run(data.substr(needed.begin, needed.end - needed.begin));
}

}  // namespace gomodproxy::sumdb
