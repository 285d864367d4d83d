#include "sumdb/tile_plan.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <tuple>

#include "common/errc.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::size_t hash_bytes = std::tuple_size_v<tlog_hash>;
constexpr int full_width = 1 << sumdb_tile_height;
// Tile levels above 7 would cover more than 2^64 records; a walk that climbs past them is a bug.
constexpr int max_tile_level = 64 / sumdb_tile_height;
// Stored hash indexes of larger trees overflow int64; a signed tree note may still claim one.
constexpr std::int64_t max_tree_size = std::int64_t{1} << 62;

bool is_plan_tile(const tile& t) {
  return t.height == sumdb_tile_height && t.level >= 0 && t.level < max_tile_level &&
         t.index >= 0 && t.width >= 1 && t.width <= full_width;
}

// The stored hash indexes of the complete subtrees that make up [0, size), largest first: the
// hashes the client folds into the tree hash.
std::vector<std::int64_t> tree_hash_indexes(std::int64_t size) {
  std::vector<std::int64_t> indexes;
  for (std::int64_t lo = 0; lo < size;) {
    const auto width =
        static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(size - lo)));
    const int level = std::countr_zero(static_cast<std::uint64_t>(width));
    indexes.push_back(stored_hash_index(level, lo >> level));
    lo += width;
  }
  return indexes;
}

// The tile `levels_up` tile levels above `t`, as wide as the tree of `tree_size` records makes it
// (only the tree's last tile at each level is partial); nullopt when the tree has no such tile.
std::optional<tile> tile_above(tile t, int levels_up, std::int64_t tree_size) {
  t.level += levels_up;
  if (t.level >= max_tile_level) return std::nullopt;
  t.index >>= levels_up * t.height;
  t.width = full_width;
  const std::int64_t hashes_at_level = tree_size >> (t.level * t.height);
  // Compared before shifting: a parsed tile name may carry an index whose first hash overflows.
  if (t.index >= (hashes_at_level + full_width - 1) >> t.height) return std::nullopt;
  const std::int64_t first = t.index << t.height;
  if (first + t.width > hashes_at_level) t.width = static_cast<int>(hashes_at_level - first);
  return t;
}

struct tile_key_less {
  bool operator()(const tile& a, const tile& b) const { return tile_less(a, b); }
};

// The tiles the client loads for one read of `indexes` in the tree of `tree_size` records, parents
// before children as the client authenticates them: first the tiles holding the tree hash's
// subtrees (`tree_hash_tile_count` of them), then for each index the chain of full tiles below
// the first tile already planned.
struct tile_plan {
  std::vector<tile> tiles;
  std::map<tile, std::size_t, tile_key_less> positions;  // where each tile is in `tiles`
  std::size_t tree_hash_tile_count = 0;

  void add(const tile& t) {
    if (positions.emplace(t, tiles.size()).second) tiles.push_back(t);
  }
  bool contains(const tile& t) const { return positions.contains(t); }
  std::size_t position_of(const tile& t) const { return positions.at(t); }
};

tile tile_holding(std::int64_t stored_index, std::int64_t tree_size) {
  // tile_above with 0 levels only widens the tile to its width at tree_size; it exists because
  // the index is inside the tree.
  return *tile_above(tile_for_index(sumdb_tile_height, stored_index).tile, 0, tree_size);
}

boost::system::result<void> plan_index(tile_plan& plan, std::int64_t stored_index,
                                       std::int64_t tree_size) {
  const tile bottom = tile_for_index(sumdb_tile_height, stored_index).tile;
  int levels_up = 0;
  for (;; ++levels_up) {
    const auto above = tile_above(bottom, levels_up, tree_size);
    if (!above) return make_error_code(errc::invalid_request);
    if (plan.contains(*above)) break;
  }
  for (int k = levels_up - 1; k >= 0; --k) plan.add(*tile_above(bottom, k, tree_size));
  return {};
}

boost::system::result<tile_plan> plan_tiles(std::int64_t tree_size,
                                            std::span<const std::int64_t> stored_indexes) {
  tile_plan plan;
  for (std::int64_t index : tree_hash_indexes(tree_size)) plan.add(tile_holding(index, tree_size));
  plan.tree_hash_tile_count = plan.tiles.size();
  for (std::int64_t index : stored_indexes) {
    if (auto planned = plan_index(plan, index, tree_size); !planned) return planned.error();
  }
  return plan;
}

std::vector<std::int64_t> record_indexes(std::span<const std::int64_t> record_ids) {
  std::vector<std::int64_t> indexes;
  for (std::int64_t id : record_ids) indexes.push_back(stored_hash_index(0, id));
  return indexes;
}

// The hash of the subtree a full tile's bottom row spans: its row folded pairwise to one hash.
tlog_hash full_tile_hash(std::string_view bytes) {
  std::vector<tlog_hash> row(bytes.size() / hash_bytes);
  for (std::size_t i = 0; i < row.size(); ++i) {
    std::memcpy(row[i].data(), bytes.data() + i * hash_bytes, hash_bytes);
  }
  while (row.size() > 1) {
    std::vector<tlog_hash> parents;
    for (std::size_t i = 0; i + 1 < row.size(); i += 2) {
      parents.push_back(node_hash(row[i], row[i + 1]));
    }
    row = std::move(parents);
  }
  return row.front();
}

std::optional<std::int64_t> parse_number(std::string_view digits) {
  if (digits.empty() || digits.size() > 12 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

}  // namespace

bool tile_less(const tile& a, const tile& b) {
  return std::tie(a.height, a.level, a.index, a.width) <
         std::tie(b.height, b.level, b.index, b.width);
}

boost::system::result<std::vector<tile>> client_tiles(std::int64_t tree_size,
                                                      std::span<const std::int64_t> record_ids,
                                                      std::int64_t older_tree_size) {
  const auto invalid = make_error_code(errc::invalid_request);
  if (tree_size < 1 || tree_size > max_tree_size || older_tree_size < 0 ||
      older_tree_size > tree_size) {
    return invalid;
  }
  for (std::int64_t id : record_ids) {
    if (id < 0 || id >= tree_size) return invalid;
  }
  // The client proves the older tree by recomputing its hash from the newer tree's tiles, and
  // each record in a separate read; the tiles of separate reads are the union of one read of all.
  std::vector<std::int64_t> indexes = tree_hash_indexes(older_tree_size);
  const std::vector<std::int64_t> records = record_indexes(record_ids);
  indexes.insert(indexes.end(), records.begin(), records.end());
  auto plan = plan_tiles(tree_size, indexes);
  if (!plan) return plan.error();
  std::vector<tile> tiles = std::move(plan->tiles);
  if (older_tree_size > 0) {
    // At start-up the client checks the tree head it remembers against itself, which loads that
    // tree's own tree-hash tiles at their widths in the older tree (unless its tile cache has
    // them).
    auto older = plan_tiles(older_tree_size, {});
    if (!older) return older.error();
    tiles.insert(tiles.end(), older->tiles.begin(), older->tiles.end());
  }
  std::sort(tiles.begin(), tiles.end(), tile_less);
  tiles.erase(std::unique(tiles.begin(), tiles.end()), tiles.end());
  return tiles;
}

boost::system::result<std::vector<tile>> authenticating_tiles(std::int64_t tree_size,
                                                              std::span<const tile> tiles) {
  const auto invalid = make_error_code(errc::invalid_request);
  if (tree_size < 1 || tree_size > max_tree_size) return invalid;
  auto plan = plan_tiles(tree_size, {});
  if (!plan) return plan.error();
  for (const tile& t : tiles) {
    if (!is_plan_tile(t)) return invalid;
    const auto exact = tile_above(t, 0, tree_size);
    if (!exact || t.width > exact->width) return invalid;
    const std::int64_t first_hash =
        stored_hash_index(exact->level * exact->height, exact->index << exact->height);
    if (auto planned = plan_index(*plan, first_hash, tree_size); !planned) return invalid;
  }
  std::vector<tile> out = std::move(plan->tiles);
  std::sort(out.begin(), out.end(), tile_less);
  return out;
}

std::optional<std::string> cut_tile(const tile& wanted, const tile& available,
                                    std::string_view available_bytes) {
  if (!is_plan_tile(wanted) || !is_plan_tile(available)) return std::nullopt;
  if (wanted.level != available.level || wanted.index != available.index) return std::nullopt;
  if (available.width < wanted.width) return std::nullopt;
  if (available_bytes.size() != static_cast<std::size_t>(available.width) * hash_bytes) {
    return std::nullopt;
  }
  return std::string(
      available_bytes.substr(0, static_cast<std::size_t>(wanted.width) * hash_bytes));
}

std::optional<tile> parse_tile_path(std::string_view path) {
  const std::string_view name = path;
  if (!path.starts_with("tile/")) return std::nullopt;
  path.remove_prefix(5);
  std::vector<std::string_view> parts;
  for (std::size_t slash = 0; (slash = path.find('/')) != std::string_view::npos;) {
    parts.push_back(path.substr(0, slash));
    path.remove_prefix(slash + 1);
  }
  parts.push_back(path);
  if (parts.size() < 3) return std::nullopt;
  tile t;
  const auto height = parse_number(parts[0]);
  if (!height || *height < 1 || *height > 30 || std::to_string(*height) != parts[0]) {
    return std::nullopt;
  }
  t.height = static_cast<int>(*height);
  if (parts[1] == "data") {
    t.level = -1;
  } else {
    const auto level = parse_number(parts[1]);
    if (!level || *level >= max_tile_level || std::to_string(*level) != parts[1]) {
      return std::nullopt;
    }
    t.level = static_cast<int>(*level);
  }
  t.width = 1 << t.height;
  std::size_t last = parts.size() - 1;
  if (parts.size() >= 4 && parts[last - 1].ends_with(".p")) {
    const auto width = parse_number(parts[last]);
    if (!width || *width < 1 || *width >= t.width || std::to_string(*width) != parts[last]) {
      return std::nullopt;
    }
    t.width = static_cast<int>(*width);
    parts[last - 1].remove_suffix(2);
    --last;
  }
  std::int64_t index = 0;
  for (std::size_t i = 2; i <= last; ++i) {
    std::string_view group = parts[i];
    if (i < last) {
      if (!group.starts_with('x')) return std::nullopt;
      group.remove_prefix(1);
    }
    const auto value = parse_number(group);
    if (!value || group.size() != 3 || index > (std::int64_t{1} << 50)) return std::nullopt;
    index = index * 1000 + *value;
  }
  t.index = index;
  // Only the one spelling tile_path writes names a tile, so a map keyed by path has no aliases.
  if (tile_path(t) != name) return std::nullopt;
  return t;
}

outcome_of<void> check_records_in_tree(
    std::int64_t tree_size, const tlog_hash& root, const std::map<std::string, std::string>& tiles,
    std::span<const std::pair<std::int64_t, tlog_hash>> record_hashes) {
  const std::string tree_name = "the tree of " + std::to_string(tree_size) + " records";
  if (tree_size < 1)
    return invalid_request("a tree of " + std::to_string(tree_size) + " records has no tiles");
  if (tree_size > max_tree_size) return invalid_request(tree_name + " is larger than 2^62 records");
  std::vector<std::int64_t> ids;
  for (const auto& [id, hash] : record_hashes) {
    if (id < 0 || id >= tree_size) {
      return invalid_request("record " + std::to_string(id) + " is not in " + tree_name);
    }
    ids.push_back(id);
  }
  auto plan = plan_tiles(tree_size, record_indexes(ids));
  if (!plan) return invalid_request("cannot plan the tiles of " + tree_name);

  // Entries beyond the plan are checked too, so a bundle never serves a tile nothing verified.
  std::vector<std::pair<tile, const std::string*>> narrower_entries;
  for (const auto& [path, bytes] : tiles) {
    const auto entry = parse_tile_path(path);
    if (!entry || entry->level < 0 || entry->height != sumdb_tile_height) {
      return invalid_request("entry " + path + " is not a hash tile of height 8");
    }
    const auto exact = tile_above(*entry, 0, tree_size);
    if (!exact || entry->width > exact->width)
      return invalid_request("tile " + path + " is not in " + tree_name);
    if (entry->width < exact->width) narrower_entries.emplace_back(*entry, &bytes);
    if (!plan->contains(*exact)) {
      const std::int64_t first_hash =
          stored_hash_index(exact->level * exact->height, exact->index << exact->height);
      if (auto planned = plan_index(*plan, first_hash, tree_size); !planned) {
        return invalid_request("cannot plan the tiles of " + tree_name);
      }
    }
  }

  std::vector<std::string_view> tile_bytes;
  for (const tile& t : plan->tiles) {
    const std::string path = tile_path(t);
    const auto found = tiles.find(path);
    if (found == tiles.end()) return verification_failed("tile " + path + " is missing");
    if (found->second.size() != static_cast<std::size_t>(t.width) * hash_bytes) {
      return verification_failed("tile " + path + " has " + std::to_string(found->second.size()) +
                                 " bytes, not " +
                                 std::to_string(static_cast<std::size_t>(t.width) * hash_bytes));
    }
    tile_bytes.push_back(found->second);
  }

  const std::vector<std::int64_t> subtrees = tree_hash_indexes(tree_size);
  std::optional<tlog_hash> tree;
  for (std::size_t i = subtrees.size(); i-- > 0;) {
    const tile holder = tile_holding(subtrees[i], tree_size);
    const auto hash = hash_from_tile(holder, tile_bytes[plan->position_of(holder)], subtrees[i]);
    if (!hash)
      return verification_failed("tile " + tile_path(holder) + " does not hold the hashes of " +
                                 tree_name);
    tree = tree ? node_hash(*hash, *tree) : *hash;
  }
  if (*tree != root) {
    std::string names;
    for (std::size_t i = 0; i < plan->tree_hash_tile_count; ++i) {
      names += (i ? ", " : "") + tile_path(plan->tiles[i]);
    }
    return verification_failed("tiles " + names + " do not hash to the root of " + tree_name);
  }

  for (std::size_t i = plan->tree_hash_tile_count; i < plan->tiles.size(); ++i) {
    const tile& child = plan->tiles[i];
    const auto parent = tile_above(child, 1, tree_size);
    // Planning put every tile below the tree-hash tiles after its parent.
    if (!parent || !plan->contains(*parent)) {
      return verification_failed("tile " + tile_path(child) + " has no parent tile");
    }
    const auto expected =
        hash_from_tile(*parent, tile_bytes[plan->position_of(*parent)],
                       stored_hash_index(parent->level * parent->height, child.index));
    if (!expected || *expected != full_tile_hash(tile_bytes[i])) {
      return verification_failed("tile " + tile_path(child) + " does not match its parent tile " +
                                 tile_path(*parent));
    }
  }

  for (const auto& [narrow, bytes] : narrower_entries) {
    const tile exact = *tile_above(narrow, 0, tree_size);
    const auto cut = cut_tile(narrow, exact, tile_bytes[plan->position_of(exact)]);
    if (!cut || *cut != *bytes) {
      return verification_failed("tile " + tile_path(narrow) + " is not a prefix of tile " +
                                 tile_path(exact));
    }
  }

  for (const auto& [id, hash] : record_hashes) {
    const std::int64_t index = stored_hash_index(0, id);
    const tile holder = tile_holding(index, tree_size);
    const auto stored = hash_from_tile(holder, tile_bytes[plan->position_of(holder)], index);
    if (!stored || *stored != hash) {
      return verification_failed("record " + std::to_string(id) + " is not in " + tree_name +
                                 " at that id");
    }
  }
  return {};
}

}  // namespace gomodproxy::sumdb
