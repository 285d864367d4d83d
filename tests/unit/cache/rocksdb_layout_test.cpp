// Record formats of the RocksDB store: round trips, and every malformed record refused.
#include "cache/rocksdb_layout.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/errc.hpp"

namespace gomodproxy::cache::layout {
namespace {

meta_record inline_record(std::string_view body) {
  meta_record record;
  record.meta.kind = entry_kind::expiring;
  record.meta.size = body.size();
  record.meta.stored_at_ms = -5;  // before the epoch still round-trips
  record.meta.tier = "goproxy.cn";
  record.where = storage::inline_body;
  record.body = body;
  return record;
}

meta_record chunked_record() {
  meta_record record;
  record.meta.kind = entry_kind::immutable;
  record.meta.size = 3 * 4096 + 1;
  record.meta.stored_at_ms = 1700000000000;
  record.meta.tier = "";
  record.where = storage::chunked;
  record.fill_id = 0x0102030405060708ull;
  record.chunk_bytes = 4096;
  record.chunk_count = 4;
  return record;
}

meta_record file_record() {
  meta_record record;
  record.meta.kind = entry_kind::immutable;
  record.meta.size = 100000;
  record.meta.stored_at_ms = 1700000000000;
  record.meta.tier = "proxy.golang.org";
  record.where = storage::file;
  record.fill_id = 0x0102030405060708ull;
  record.body_crc = 0xdeadbeef;
  return record;
}

// Bit by bit, straight from the definition: the reference for the striped fast path.
std::uint32_t crc32c_by_bits(std::string_view bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xffffffffu;
}

TEST(rocksdb_layout, crc32c_of_long_inputs_matches_the_definition) {
  std::mt19937_64 rng(3);
  std::string bytes(200000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  // Around the three-stripe blocks (3 x 256 B and 3 x 8 KiB) and their multiples, a long block
  // followed by short ones, plus odd tails.
  for (std::size_t size :
       {std::size_t{767}, std::size_t{768}, std::size_t{769}, std::size_t{1536}, std::size_t{4096},
        std::size_t{4403}, std::size_t{24575}, std::size_t{24576}, std::size_t{24577},
        std::size_t{25344}, std::size_t{26121}, std::size_t{49152}, std::size_t{49159},
        std::size_t{73727}, std::size_t{131072}, std::size_t{200000}}) {
    auto input = std::string_view(bytes).substr(0, size);
    EXPECT_EQ(crc32c(input), crc32c_by_bits(input)) << size << " bytes";
  }
  // Misaligned start.
  EXPECT_EQ(crc32c(std::string_view(bytes).substr(3, 100000)),
            crc32c_by_bits(std::string_view(bytes).substr(3, 100000)));
}

TEST(rocksdb_layout, crc32c_matches_known_values) {
  // Check values of the Castagnoli CRC (RFC 3720 appendix B.4 and the usual "123456789").
  struct test_case {
    std::string input;
    std::uint32_t crc;
  };
  const std::vector<test_case> cases = {
      {"", 0x00000000u},
      {"123456789", 0xE3069283u},
      {std::string(32, '\0'), 0x8A9136AAu},
      {std::string(32, '\xff'), 0x62A8AB43u},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(crc32c(c.input), c.crc) << "input of " << c.input.size() << " bytes";
  }
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[static_cast<std::size_t>(i)] = static_cast<char>(i);
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  // Lengths that are not a multiple of the 8-byte fast path.
  EXPECT_EQ(crc32c(std::string_view(ascending).substr(0, 13)),
            crc32c(std::string(ascending.substr(0, 13))));
  EXPECT_NE(crc32c(ascending.substr(0, 13)), crc32c(ascending.substr(0, 14)));
}

TEST(rocksdb_layout, meta_records_round_trip) {
  const std::string body = "module example.com/m\n";
  const std::vector<meta_record> cases = {inline_record(body), inline_record(""), chunked_record(),
                                          file_record()};
  for (const auto& original : cases) {
    auto encoded = encode_meta(original);
    ASSERT_TRUE(encoded);
    auto decoded = decode_meta(*encoded);
    ASSERT_TRUE(decoded) << decoded.error().message();
    EXPECT_EQ(decoded->meta.kind, original.meta.kind);
    EXPECT_EQ(decoded->meta.size, original.meta.size);
    EXPECT_EQ(decoded->meta.stored_at_ms, original.meta.stored_at_ms);
    EXPECT_EQ(decoded->meta.tier, original.meta.tier);
    EXPECT_EQ(decoded->where, original.where);
    EXPECT_EQ(decoded->body, original.body);
    EXPECT_EQ(decoded->fill_id, original.fill_id);
    EXPECT_EQ(decoded->chunk_bytes, original.chunk_bytes);
    EXPECT_EQ(decoded->chunk_count, original.chunk_count);
    EXPECT_EQ(decoded->body_crc, original.body_crc);
  }
}

TEST(rocksdb_layout, every_truncation_of_a_meta_record_is_corrupt) {
  const std::string body = "{\"Version\":\"v1.0.0\"}";
  for (const auto& record : {inline_record(body), chunked_record(), file_record()}) {
    const auto encoded = encode_meta(record).value();
    for (std::size_t n = 0; n < encoded.size(); ++n) {
      auto decoded = decode_meta(std::string_view(encoded).substr(0, n));
      ASSERT_FALSE(decoded) << "prefix of " << n << " bytes decoded";
      EXPECT_EQ(decoded.error(), errc::cache_corrupt);
    }
  }
}

TEST(rocksdb_layout, malformed_meta_records_are_corrupt) {
  const std::string body = "hello";
  const auto good_inline = encode_meta(inline_record(body)).value();
  const auto good_chunked = encode_meta(chunked_record()).value();
  const auto good_file = encode_meta(file_record()).value();
  const auto with = [](std::string s, std::size_t at, char c) {
    s[at] = c;
    return s;
  };
  // Byte offsets: 0 version, 1 kind, 2 storage, 3..10 size, 11..18 stored_at, 19..20 tier length.
  struct test_case {
    const char* name;
    std::string stored;
  };
  const std::vector<test_case> cases = {
      {"unknown version", with(good_inline, 0, 2)},
      {"version zero", with(good_inline, 0, 0)},
      {"unknown kind", with(good_inline, 1, 3)},
      {"unknown storage", with(good_inline, 2, 3)},
      {"file trailing byte", good_file + "!"},
      {"file empty body",
       [&] {
         auto record = file_record();
         record.meta.size = 0;
         return encode_meta(record).value();
       }()},
      {"inline size larger than body", with(good_inline, 10, 6)},
      {"inline body byte flipped", with(good_inline, good_inline.size() - 1, 'X')},
      {"inline trailing byte", good_inline + "!"},
      {"chunked trailing byte", good_chunked + "!"},
      {"chunk count one too many", with(good_chunked, good_chunked.size() - 1, 5)},
      {"chunk count one too few", with(good_chunked, good_chunked.size() - 1, 3)},
      {"chunk bytes zero", good_chunked.substr(0, good_chunked.size() - 8) + std::string(4, '\0') +
                               good_chunked.substr(good_chunked.size() - 4)},
      {"chunked empty body",
       [&] {
         auto record = chunked_record();
         record.meta.size = 0;
         record.chunk_count = 0;
         return encode_meta(record).value();
       }()},
      {"tier length past the end", with(good_inline, 19, '\x7f')},
  };
  for (const auto& c : cases) {
    auto decoded = decode_meta(c.stored);
    ASSERT_FALSE(decoded) << c.name;
    EXPECT_EQ(decoded.error(), errc::cache_corrupt) << c.name;
  }
}

TEST(rocksdb_layout, body_file_names_are_sixteen_hex_digits_of_the_fill) {
  EXPECT_EQ(body_file_name(0), "0000000000000000");
  EXPECT_EQ(body_file_name(0x1234abcdULL), "000000001234abcd");
  EXPECT_EQ(body_file_name(~std::uint64_t{0}), "ffffffffffffffff");
  for (const std::uint64_t id : {std::uint64_t{0}, std::uint64_t{77}, ~std::uint64_t{0}}) {
    EXPECT_EQ(parse_body_file_name(body_file_name(id)), id);
  }
  for (const char* name : {"", "123", "000000001234ABCD", "000000001234abcg",
                           "0000000000000000.tmp", "LOCK", "bodies"}) {
    EXPECT_FALSE(parse_body_file_name(name).has_value()) << name;
  }
}

TEST(rocksdb_layout, crc32c_extends_piece_by_piece) {
  const std::string bytes = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    const auto front = crc32c(std::string_view(bytes).substr(0, cut));
    EXPECT_EQ(crc32c_extend(front, std::string_view(bytes).substr(cut)), crc32c(bytes)) << cut;
  }
  EXPECT_EQ(crc32c_extend(0, bytes), crc32c(bytes));
}

TEST(rocksdb_layout, oversized_tier_is_refused) {
  auto record = inline_record("x");
  record.meta.tier = std::string(65536, 't');
  auto encoded = encode_meta(record);
  ASSERT_FALSE(encoded);
  EXPECT_EQ(encoded.error(), errc::too_large);
  record.meta.tier.pop_back();
  EXPECT_TRUE(encode_meta(record));
}

TEST(rocksdb_layout, chunks_verify_length_and_checksum) {
  std::string stored = "chunk body";
  seal_chunk(stored);
  EXPECT_EQ(stored.size(), 10 + chunk_trailer_bytes);
  EXPECT_EQ(open_chunk(stored, 10).value(), "chunk body");

  struct test_case {
    const char* name;
    std::string stored;
    std::size_t expected;
  };
  std::string flipped = stored;
  flipped[3] ^= 1;
  std::string bad_trailer = stored;
  bad_trailer.back() ^= 1;
  const std::vector<test_case> cases = {
      {"shorter than expected", stored, 11},
      {"longer than expected", stored, 9},
      {"truncated", stored.substr(0, stored.size() - 1), 10},
      {"body byte flipped", flipped, 10},
      {"trailer byte flipped", bad_trailer, 10},
      {"empty", "", 0},
  };
  for (const auto& c : cases) {
    auto body = open_chunk(c.stored, c.expected);
    ASSERT_FALSE(body) << c.name;
    EXPECT_EQ(body.error(), errc::cache_corrupt) << c.name;
  }
}

TEST(rocksdb_layout, keys_keep_families_and_fills_apart) {
  EXPECT_EQ(meta_key(std::string("a\0b", 3)), std::string("ma\0b", 4));
  EXPECT_EQ(meta_key(""), "m");
  EXPECT_EQ(parse_fill_key(fill_key(0x1122334455667788ull)), 0x1122334455667788ull);
  EXPECT_FALSE(parse_fill_key("m12345678"));
  EXPECT_FALSE(parse_fill_key(fill_key(1).substr(0, 8)));
  // Chunk keys sort by fill, then index, and the end bound is above every index of the fill
  // and below the next fill.
  EXPECT_LT(chunk_key(1, 0xffffffffu), chunk_key(2, 0));
  EXPECT_LT(chunk_key(1, 1), chunk_key(1, 256));
  EXPECT_LT(chunk_key(1, 0xffffffffu), chunk_key_end(1));
  EXPECT_LT(chunk_key_end(1), chunk_key(2, 0));
  EXPECT_LT(chunk_key(UINT64_MAX, 0xffffffffu), chunk_key_end(UINT64_MAX));
}

TEST(rocksdb_layout, chunk_counts) {
  struct test_case {
    std::uint64_t size;
    std::uint32_t chunk_bytes;
    std::uint64_t count;
  };
  const std::vector<test_case> cases = {
      {0, 4096, 0},
      {1, 4096, 1},
      {4095, 4096, 1},
      {4096, 4096, 1},
      {4097, 4096, 2},
      {500ull << 20, 1u << 20, 500},
      {(500ull << 20) + 1, 1u << 20, 501},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(chunk_count_for(c.size, c.chunk_bytes), c.count) << c.size << "/" << c.chunk_bytes;
  }
}

TEST(rocksdb_layout, small_records_round_trip_and_refuse_bad_lengths) {
  EXPECT_EQ(decode_u64(encode_u64(0xdeadbeefcafef00dull)).value(), 0xdeadbeefcafef00dull);
  EXPECT_FALSE(decode_u64("1234567"));
  const auto stats = decode_stats(encode_stats({7, 1ull << 40})).value();
  EXPECT_EQ(stats.entries, 7u);
  EXPECT_EQ(stats.bytes, 1ull << 40);
  EXPECT_FALSE(decode_stats(encode_stats({1, 2}) + "x"));
  const std::string key("k\0/!", 4);
  const auto stored = encode_fill({.chunks_written = 9, .key = key});
  const auto fill = decode_fill(stored).value();
  EXPECT_EQ(fill.chunks_written, 9u);
  EXPECT_EQ(fill.key, key);
  EXPECT_FALSE(decode_fill("abc"));
}

}  // namespace
}  // namespace gomodproxy::cache::layout
