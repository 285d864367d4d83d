// Hash tiles of the checksum database's log as the proxy reads them: a tile fetched from a mirror
// (untrusted bytes) is asked for a stored hash. Each input is a 20-byte header (tile height,
// level, width, index, stored index; little-endian) followed by the tile's bytes. Invariants: the
// hash a tile gives equals the one the smallest tile holding it gives from the same bytes; the
// tile's URL path is accepted by the request parser as a tile request; tile_for_index names a
// span inside its tile of a power-of-two number of hashes; stored hash indexes and tree
// coordinates convert both ways.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/request.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"

namespace {

using namespace gomodproxy::sumdb;

void require(bool holds) {
  if (!holds) std::abort();
}

template <class T>
T take(std::string_view& input) {
  T value{};
  const std::size_t n = std::min(sizeof(T), input.size());
  std::memcpy(&value, input.data(), n);
  input.remove_prefix(n);
  return value;
}

void check_index_conversions(std::int64_t stored_index) {
  const tree_coordinate node = split_stored_hash_index(stored_index);
  require(node.level >= 0 && node.n >= 0);
  require(stored_hash_index(node.level, node.n) == stored_index);
}

void check_span(int height, std::int64_t stored_index) {
  const tile_span span = tile_for_index(height, stored_index);
  require(span.tile.height == height && span.tile.level >= 0 && span.tile.index >= 0);
  require(span.begin < span.end && span.end <= std::size_t{32} << height);
  require(span.end == static_cast<std::size_t>(span.tile.width) * 32);
  const std::size_t hashes = (span.end - span.begin) / 32;
  require((span.end - span.begin) % 32 == 0 && (hashes & (hashes - 1)) == 0);
}

void check_path(const tile& t) {
  if (t.height < 1 || t.height > 30 || t.level < -1 || t.level > 63 || t.index < 0 || t.width < 1 ||
      t.width > (1 << t.height)) {
    return;
  }
  const std::string path = tile_path(t);
  const auto parsed = gomodproxy::protocol::parse_module_request("/sumdb/sum.golang.org/" + path);
  const auto* request = parsed ? &*parsed : nullptr;
  require(request != nullptr && request->kind == gomodproxy::protocol::endpoint::sumdb_tile);
  require(request->upstream_path == "/" + path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  tile t;
  t.height = take<std::uint8_t>(input) % 32;
  t.level = take<std::int8_t>(input) % 70;
  t.width = take<std::uint16_t>(input);
  t.index = take<std::int64_t>(input);
  const auto stored_index = take<std::int64_t>(input);
  const std::string_view tile_bytes = input;

  check_path(t);
  if (stored_index < 0) return 0;
  // Indexes of logs far beyond any real one overflow the tree arithmetic by its own contract.
  const std::int64_t bounded_index = stored_index & ((std::int64_t{1} << 50) - 1);
  check_index_conversions(bounded_index);
  if (t.height >= 1 && t.height <= 30) check_span(t.height, bounded_index);

  const auto hash = hash_from_tile(t, tile_bytes, bounded_index);
  if (!hash) return 0;
  const tile_span smallest = tile_for_index(t.height, bounded_index);
  require(smallest.tile.level == t.level && smallest.tile.index == t.index);
  const auto again = hash_from_tile(smallest.tile, tile_bytes, bounded_index);
  require(again.has_value() && *again == *hash);
  return 0;
}
