// Private to the RocksDB cache store: the record keys and the versioned binary formats of their
// values. Kept apart from the store so tests can build, inspect and break records byte by byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_store.hpp"

namespace gomodproxy::cache::layout {

// Two column families. The default one holds small records; `chunks_family` holds body chunks,
// tuned for large incompressible values.
//
// default family:
//   "v"                    layout version (one byte, `format_version`)
//   "s"                    store_stats of committed entries (stats_record)
//   "n"                    end of the fill ids reserved so far (big-endian u64)
//   "m" + key              entry metadata, the commit marker (meta_record)
//   "f" + be64(fill_id)    an uncommitted fill that has written chunks (fill_record)
//   "a" + key              last use of an entry under a size cap (be64 unix ms), written in
//                          batches; absent: the entry's stored_at counts as its last use
//   "e"                    evictions by the size cap over the directory's life (eviction_totals)
// chunks family:
//   be64(fill_id) + be32(index)   chunk body + be32 CRC32C of the body
//
// bodies/ (a directory beside RocksDB's files):
//   hex16(fill_id)         the body of a fill larger than inline_max_bytes (storage::file)
//
// Chunk keys and body file names name a fill, never an entry key, so no entry key bytes (NUL,
// '/', ...) can make two entries' bodies collide or reach a file name; fill ids are unique for
// the life of the directory.

inline constexpr std::string_view chunks_family = "chunks";
inline constexpr std::uint8_t format_version = 1;

inline constexpr std::string_view version_key = "v";
inline constexpr std::string_view stats_key = "s";
inline constexpr std::string_view fill_counter_key = "n";
inline constexpr char meta_prefix = 'm';
inline constexpr char fill_prefix = 'f';
inline constexpr char access_prefix = 'a';
inline constexpr std::string_view evictions_key = "e";
inline constexpr std::string_view bodies_directory = "bodies";

/// Bytes of the CRC32C trailer of every stored chunk.
inline constexpr std::size_t chunk_trailer_bytes = 4;

[[nodiscard]] std::string meta_key(std::string_view key);
[[nodiscard]] std::string fill_key(std::uint64_t fill_id);
[[nodiscard]] std::string access_key(std::string_view key);
/// The fill id of a fill_key, or nullopt when `stored_key` is not one.
[[nodiscard]] std::optional<std::uint64_t> parse_fill_key(std::string_view stored_key);
[[nodiscard]] std::string chunk_key(std::uint64_t fill_id, std::uint32_t index);
/// The first key past every chunk of `fill_id` (an iteration bound).
[[nodiscard]] std::string chunk_key_end(std::uint64_t fill_id);
/// The name of `fill_id`'s body file inside bodies_directory: 16 lower-case hex digits.
[[nodiscard]] std::string body_file_name(std::uint64_t fill_id);
/// The fill id a body file is named after, or nullopt when `name` is not such a name.
[[nodiscard]] std::optional<std::uint64_t> parse_body_file_name(std::string_view name);

/// Chunks needed for `size` bytes; 0 for an empty body.
[[nodiscard]] std::uint64_t chunk_count_for(std::uint64_t size, std::uint32_t chunk_bytes);

/// CRC32C (Castagnoli) of `bytes`.
[[nodiscard]] std::uint32_t crc32c(std::string_view bytes);
/// The CRC32C of A followed by `bytes`, given `crc` = crc32c(A); crc32c_extend(0, B) is
/// crc32c(B). For bodies checked as they stream past.
[[nodiscard]] std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes);

enum class storage : std::uint8_t {
  inline_body = 0,  ///< the body follows the metadata in the same record
  chunked = 1,      ///< the body is in `chunk_count` chunks of the fill `fill_id`
  file = 2,         ///< the body is the file body_file_name(fill_id), `body_crc` its CRC32C
};

/// Decoded "m" record. `body` views the bytes it was decoded from (inline storage only).
struct meta_record {
  entry_meta meta;
  storage where = storage::inline_body;
  std::string_view body;
  std::uint64_t fill_id = 0;
  std::uint32_t chunk_bytes = 0;
  std::uint32_t chunk_count = 0;
  std::uint32_t body_crc = 0;
};

/// Version 1: u8 version, u8 kind, u8 storage, be64 size, be64 stored_at_ms, be16 tier length,
/// tier; then inline: be32 CRC32C(body), body (exactly `size` bytes); or chunked: be64 fill_id,
/// be32 chunk_bytes, be32 chunk_count, and nothing after; or file: be64 fill_id, be32
/// CRC32C(body), and nothing after. too_large when the tier name exceeds 65535 bytes. Binaries
/// from before storage::file refuse its records as corrupt (a newer cache cannot be read by
/// them).
[[nodiscard]] result<std::string> encode_meta(const meta_record& record);
/// cache_corrupt for any record encode_meta could not have produced (unknown version or kind,
/// truncation, trailing bytes, size or chunk count inconsistent, inline CRC mismatch).
[[nodiscard]] result<meta_record> decode_meta(std::string_view stored);

/// decode_meta without the inline body's CRC check, for scans that need only the metadata and
/// where the chunks are: the same errors otherwise. `body` is left empty.
[[nodiscard]] result<meta_record> decode_meta_summary(std::string_view stored);

/// decode_meta without the inline body's CRC check, `body` kept: for serving a hit. The
/// record's bytes were checked by RocksDB's block checksum when their block came from disk, and
/// `cache verify` checks the CRC; hashing up to 64 KiB again on every hit cost more than the
/// lookup (docs/cache.md, "Hits").
[[nodiscard]] result<meta_record> decode_meta_for_serving(std::string_view stored);

/// Appends the CRC32C trailer to a chunk body in place, ready to store.
void seal_chunk(std::string& body);
/// The body of a stored chunk; cache_corrupt unless it is exactly `expected_body_bytes` long
/// and its trailer matches.
[[nodiscard]] result<std::string_view> open_chunk(std::string_view stored,
                                                  std::size_t expected_body_bytes);

/// "f" record: be32 chunks written so far, then the entry key.
struct fill_record {
  std::uint32_t chunks_written = 0;
  std::string_view key;
};
[[nodiscard]] std::string encode_fill(const fill_record& record);
[[nodiscard]] result<fill_record> decode_fill(std::string_view stored);

[[nodiscard]] std::string encode_stats(const store_stats& stats);
[[nodiscard]] result<store_stats> decode_stats(std::string_view stored);

/// "e" record: be64 entries evicted, be64 body bytes they held.
struct eviction_totals {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};
[[nodiscard]] std::string encode_evictions(const eviction_totals& totals);
[[nodiscard]] result<eviction_totals> decode_evictions(std::string_view stored);

[[nodiscard]] std::string encode_u64(std::uint64_t value);
[[nodiscard]] result<std::uint64_t> decode_u64(std::string_view stored);

}  // namespace gomodproxy::cache::layout
