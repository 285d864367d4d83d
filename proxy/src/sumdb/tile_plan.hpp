// Which hash tiles the go command's checksum-database client loads for a tree of a given size,
// how to cut them from wider cached tiles, and how to check a set of tiles against a signed root
// the way that client does (for bundles a go client verifies with no checksum database reachable).
// Pure functions of their arguments: safe to call from any thread, nothing kept after the call.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/failure.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"

namespace gomodproxy::sumdb {

/// Orders tiles by height, level, index, then width (the order client_tiles returns).
bool tile_less(const tile& a, const tile& b);

/// Every hash tile (height 8) the go command's checksum-database client (x/mod/sumdb/tlog's
/// TileHashReader) loads to prove that records `record_ids` are in the tree of `tree_size`
/// records and, when `older_tree_size` > 0, that this tree extends the tree of its first
/// `older_tree_size` records (what the client does when it remembers that older tree). Each tile
/// has the exact width the client asks for at `tree_size`; with `older_tree_size` > 0 the result
/// also holds the older tree's own tree-hash tiles at their widths in that tree, because the client
/// re-checks the tree head it remembers at start-up (the same tile may then appear at two widths,
/// the narrower a prefix of the wider). Sorted by tile_less, no duplicates.
/// Errors: errc::invalid_request when tree_size is outside [1, 2^62], a record id is outside
/// [0, tree_size), or older_tree_size is outside [0, tree_size].
[[nodiscard]] boost::system::result<std::vector<tile>> client_tiles(
    std::int64_t tree_size, std::span<const std::int64_t> record_ids,
    std::int64_t older_tree_size = 0);

/// Every tile the go command's checksum-database client loads before it trusts `tiles` in the tree
/// of `tree_size` records: the tiles holding the tree hash's subtrees, and for each of `tiles` the
/// chain of tiles above it up to one of those, each at its exact width at `tree_size`, `tiles`
/// themselves included at that width. With all of them, check_records_in_tree authenticates every
/// one from the signed root down. Sorted by tile_less, no duplicates.
/// Errors: errc::invalid_request when tree_size is outside [1, 2^62] or one of `tiles` is not a
/// height-8 hash tile of that tree no wider than its exact width there.
[[nodiscard]] boost::system::result<std::vector<tile>> authenticating_tiles(
    std::int64_t tree_size, std::span<const tile> tiles);

/// The bytes of `wanted` cut from `available_bytes`, the bytes of `available`: the same hash tile
/// (height, level, index) at least as wide (a full tile serves every partial one). nullopt when
/// the tiles differ, either is not a hash tile, `available` is narrower than `wanted`, or
/// `available_bytes` is not exactly available.width hashes long.
std::optional<std::string> cut_tile(const tile& wanted, const tile& available,
                                    std::string_view available_bytes);

/// The tile named by `path` as tile_path writes it ("tile/8/0/x001/234.p/5", "tile/8/data/000"),
/// or nullopt when `path` is not such a name.
std::optional<tile> parse_tile_path(std::string_view path);

/// Success when `tiles` (tile_path -> bytes) hold every tile client_tiles(tree_size, the record
/// ids) names, they recompute `root` as the tree hash of `tree_size` records and authenticate one
/// another from that root down (as TileHashReader does), and each record hash is the tree's hash
/// at its record id. Every other entry of `tiles` must also be a height-8 hash tile of this tree,
/// either at its exact width at `tree_size` (then authenticated through its parent tiles, which
/// must be present) or narrower (then a byte prefix of that exact-width tile, which must be
/// present). Otherwise a failure whose detail is one line naming the first tile or record that
/// does not fit: errc::invalid_request for a tree size outside [1, 2^62], a record id outside the
/// tree or an entry that is not a height-8 hash tile of it; errc::verification_failed for a tile
/// missing, of the wrong length, or whose hashes do not match the root, its parent, its
/// exact-width tile or a record hash.
[[nodiscard]] outcome_of<void> check_records_in_tree(
    std::int64_t tree_size, const tlog_hash& root, const std::map<std::string, std::string>& tiles,
    std::span<const std::pair<std::int64_t, tlog_hash>> record_hashes);

}  // namespace gomodproxy::sumdb
