// Hash tiles of the checksum database's log: which tile holds a stored hash, the tile's URL path,
// a tile's bytes from stored hashes, and a stored hash from a tile's bytes.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "sumdb/tlog.hpp"

namespace gomodproxy::sumdb {

/// The go command always fetches tiles of height 8 (256 hashes wide when full).
inline constexpr int sumdb_tile_height = 8;

/// Tile `index` at tile level `level` (covering tree levels [level * height, (level + 1) *
/// height)), holding `width` hashes of its bottom row; width < 2^height is a partial tile.
/// Level -1 names a data tile (record texts), which has no hashes.
struct tile {
  int height = sumdb_tile_height;
  int level = 0;
  std::int64_t index = 0;
  int width = 0;
  friend bool operator==(const tile&, const tile&) = default;
};

/// The smallest tile that determines the hash at `stored_index`, and where in that tile's bytes
/// the hashes it is computed from lie ([begin, end) in bytes). Requires 1 <= height <= 30.
struct tile_span {
  sumdb::tile tile;
  std::size_t begin = 0;
  std::size_t end = 0;
};
tile_span tile_for_index(int height, std::int64_t stored_index);

/// "tile/<H>/<L>/<NNN>[.p/<W>]" relative to a sumdb base URL; <L> is "data" for level -1 and
/// <NNN> is the index in 3-digit groups, all but the last prefixed with "x" (x001/x234/067).
std::string tile_path(const tile& t);

/// The bytes of `t`: its bottom row, width × 32 raw hashes read through `read`. Errors as for
/// stored_hashes; errc::invalid_request for a tile with no hashes (level < 0, width < 1 or more
/// than 2^height).
[[nodiscard]] boost::system::result<std::string> read_tile_data(const tile& t,
                                                                const hash_reader& read);

/// The stored hash at `stored_index` computed from the bytes of tile `t`, which may be longer
/// than t.width hashes (a full tile used for a partial one). errc::verification_failed when `t`
/// is not a valid hash tile, `data` is shorter than t.width hashes, or `t` does not contain that
/// hash (another tile, or too narrow).
[[nodiscard]] boost::system::result<tlog_hash> hash_from_tile(const tile& t, std::string_view data,
                                                              std::int64_t stored_index);

}  // namespace gomodproxy::sumdb
