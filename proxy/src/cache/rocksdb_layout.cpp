#include "cache/rocksdb_layout.hpp"

#include <array>
#include <cstring>
#include <string_view>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "common/errc.hpp"

namespace gomodproxy::cache::layout {
namespace {

constexpr std::size_t meta_header_bytes = 1 + 1 + 1 + 8 + 8 + 2;

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::uint64_t get_be(std::string_view in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
  }
  return value;
}

// Reads fixed-width fields front to back; any read past the end marks the whole decode failed,
// so callers check once at the end instead of after every field.
class field_reader {
 public:
  explicit field_reader(std::string_view in) : in_(in) {}
  std::uint64_t be(int bytes) {
    if (in_.size() < static_cast<std::size_t>(bytes)) {
      ok_ = false;
      in_ = {};
      return 0;
    }
    const auto value = get_be(in_, bytes);
    in_.remove_prefix(static_cast<std::size_t>(bytes));
    return value;
  }
  std::string_view bytes(std::size_t count) {
    if (in_.size() < count) {
      ok_ = false;
      in_ = {};
      return {};
    }
    const auto out = in_.substr(0, count);
    in_.remove_prefix(count);
    return out;
  }
  std::string_view rest() const { return in_; }
  bool ok() const { return ok_; }

 private:
  std::string_view in_;
  bool ok_ = true;
};

// Reflected Castagnoli polynomial; the table serves machines without SSE4.2.
constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}();

std::uint32_t crc32c_portable(std::uint32_t crc, std::string_view bytes) {
  for (const char c : bytes) {
    crc = crc32c_table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  }
  return crc;
}

#if defined(__x86_64__)
// Chunks are up to megabytes and checked on every read, inline bodies (zips up to 64 KiB) on
// every hit. The CRC instruction has a latency of three cycles but issues every cycle, so three
// independent streams over adjacent stripes run about three times as fast as one; their
// registers are then merged by linearity:
// crc(A then B) = advance(crc(A), |B| zero bytes) ^ crc-from-zero(B).
// Long stripes make the merge rare; short ones let a body of a few KiB use three streams too.
constexpr std::size_t long_stripe_bytes = 8192;
constexpr std::size_t short_stripe_bytes = 256;

// advance(v) for a fixed stripe length, as four byte-indexed tables (the map is linear).
struct crc_advance_tables {
  std::array<std::array<std::uint32_t, 256>, 4> by_byte{};

  explicit crc_advance_tables(std::size_t stripe_bytes) {
    std::array<std::uint32_t, 32> basis{};
    for (int bit = 0; bit < 32; ++bit) {
      std::uint32_t crc = std::uint32_t{1} << bit;
      for (std::size_t i = 0; i < stripe_bytes; ++i) {
        crc = crc32c_table[crc & 0xff] ^ (crc >> 8);
      }
      basis[bit] = crc;
    }
    for (int k = 0; k < 4; ++k) {
      for (int value = 0; value < 256; ++value) {
        std::uint32_t out = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if (value & (1 << bit)) out ^= basis[8 * k + bit];
        }
        by_byte[k][value] = out;
      }
    }
  }

  std::uint32_t advance(std::uint32_t crc) const {
    return by_byte[0][crc & 0xff] ^ by_byte[1][(crc >> 8) & 0xff] ^ by_byte[2][(crc >> 16) & 0xff] ^
           by_byte[3][crc >> 24];
  }
};

inline std::uint64_t load_word(const char* at) {
  std::uint64_t word = 0;
  std::memcpy(&word, at, 8);
  return word;
}

// Consumes whole blocks of three stripes of `stripe_bytes` from the front of p/n.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_three_streams(
    std::uint32_t crc, const char*& p, std::size_t& n, std::size_t stripe_bytes,
    const crc_advance_tables& tables) {
  while (n >= 3 * stripe_bytes) {
    std::uint64_t first = crc;
    std::uint64_t second = 0;
    std::uint64_t third = 0;
    for (std::size_t i = 0; i < stripe_bytes; i += 8) {
      first = _mm_crc32_u64(first, load_word(p + i));
      second = _mm_crc32_u64(second, load_word(p + stripe_bytes + i));
      third = _mm_crc32_u64(third, load_word(p + 2 * stripe_bytes + i));
    }
    crc = tables.advance(static_cast<std::uint32_t>(first)) ^ static_cast<std::uint32_t>(second);
    crc = tables.advance(crc) ^ static_cast<std::uint32_t>(third);
    p += 3 * stripe_bytes;
    n -= 3 * stripe_bytes;
  }
  return crc;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t crc,
                                                             std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  if (n >= 3 * long_stripe_bytes) {
    static const crc_advance_tables long_tables(long_stripe_bytes);
    crc = crc32c_three_streams(crc, p, n, long_stripe_bytes, long_tables);
  }
  if (n >= 3 * short_stripe_bytes) {
    static const crc_advance_tables short_tables(short_stripe_bytes);
    crc = crc32c_three_streams(crc, p, n, short_stripe_bytes, short_tables);
  }
  std::uint64_t wide = crc;
  while (n >= 8) {
    wide = _mm_crc32_u64(wide, load_word(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<std::uint32_t>(wide);
  while (n > 0) {
    crc = _mm_crc32_u8(crc, static_cast<unsigned char>(*p));
    ++p;
    --n;
  }
  return crc;
}
#endif

}  // namespace

// The one decoder behind decode_meta, decode_meta_summary and decode_meta_for_serving.
result<meta_record> decode_meta(std::string_view stored, bool check_body);

std::string meta_key(std::string_view key) {
  std::string out;
  out.reserve(1 + key.size());
  out.push_back(meta_prefix);
  out.append(key);
  return out;
}

std::string fill_key(std::uint64_t fill_id) {
  std::string out(1, fill_prefix);
  put_be(out, fill_id, 8);
  return out;
}

std::string access_key(std::string_view key) {
  std::string out;
  out.reserve(1 + key.size());
  out.push_back(access_prefix);
  out.append(key);
  return out;
}

std::optional<std::uint64_t> parse_fill_key(std::string_view stored_key) {
  if (stored_key.size() != 9 || stored_key[0] != fill_prefix) {
    return std::nullopt;
  }
  return get_be(stored_key.substr(1), 8);
}

std::string chunk_key(std::uint64_t fill_id, std::uint32_t index) {
  std::string out;
  out.reserve(12);
  put_be(out, fill_id, 8);
  put_be(out, index, 4);
  return out;
}

std::string chunk_key_end(std::uint64_t fill_id) {
  // One past the largest index keeps the bound valid even for the last possible fill id.
  std::string out = chunk_key(fill_id, 0xffffffffu);
  out.push_back('\0');
  return out;
}

std::string body_file_name(std::uint64_t fill_id) {
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = digits[fill_id & 0xf];
    fill_id >>= 4;
  }
  return out;
}

std::optional<std::uint64_t> parse_body_file_name(std::string_view name) {
  if (name.size() != 16) return std::nullopt;
  std::uint64_t fill_id = 0;
  for (const char c : name) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    fill_id = (fill_id << 4) | static_cast<std::uint64_t>(digit);
  }
  return fill_id;
}

std::uint64_t chunk_count_for(std::uint64_t size, std::uint32_t chunk_bytes) {
  return size / chunk_bytes + (size % chunk_bytes != 0 ? 1 : 0);
}

std::uint32_t crc32c(std::string_view bytes) { return crc32c_extend(0, bytes); }

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes) {
  crc ^= 0xffffffffu;
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  crc = has_sse42 ? crc32c_sse42(crc, bytes) : crc32c_portable(crc, bytes);
#else
  crc = crc32c_portable(crc, bytes);
#endif
  return crc ^ 0xffffffffu;
}

result<std::string> encode_meta(const meta_record& record) {
  if (record.meta.tier.size() > 0xffff) {
    return errc::too_large;
  }
  std::string out;
  out.reserve(meta_header_bytes + record.meta.tier.size() + 4 + record.body.size());
  out.push_back(static_cast<char>(format_version));
  out.push_back(static_cast<char>(record.meta.kind));
  out.push_back(static_cast<char>(record.where));
  put_be(out, record.meta.size, 8);
  put_be(out, static_cast<std::uint64_t>(record.meta.stored_at_ms), 8);
  put_be(out, record.meta.tier.size(), 2);
  out.append(record.meta.tier);
  if (record.where == storage::inline_body) {
    put_be(out, crc32c(record.body), 4);
    out.append(record.body);
  } else if (record.where == storage::file) {
    put_be(out, record.fill_id, 8);
    put_be(out, record.body_crc, 4);
  } else {
    put_be(out, record.fill_id, 8);
    put_be(out, record.chunk_bytes, 4);
    put_be(out, record.chunk_count, 4);
  }
  return out;
}

result<meta_record> decode_meta(std::string_view stored) { return decode_meta(stored, true); }

result<meta_record> decode_meta_summary(std::string_view stored) {
  auto record = decode_meta(stored, false);
  if (record) record->body = {};
  return record;
}

result<meta_record> decode_meta_for_serving(std::string_view stored) {
  return decode_meta(stored, false);
}

result<meta_record> decode_meta(std::string_view stored, bool check_body) {
  field_reader in(stored);
  meta_record record;
  const auto version = in.be(1);
  const auto kind = in.be(1);
  const auto where = in.be(1);
  record.meta.size = in.be(8);
  record.meta.stored_at_ms = static_cast<std::int64_t>(in.be(8));
  const auto tier_bytes = in.be(2);
  record.meta.tier = std::string(in.bytes(static_cast<std::size_t>(tier_bytes)));
  if (!in.ok() || version != format_version || kind > 2 || where > 2) {
    return errc::cache_corrupt;
  }
  record.meta.kind = static_cast<entry_kind>(kind);
  record.where = static_cast<storage>(where);
  if (record.where == storage::inline_body) {
    const auto crc = static_cast<std::uint32_t>(in.be(4));
    record.body = in.rest();
    if (!in.ok() || record.body.size() != record.meta.size ||
        (check_body && crc32c(record.body) != crc)) {
      return errc::cache_corrupt;
    }
    return record;
  }
  record.fill_id = in.be(8);
  if (record.where == storage::file) {
    record.body_crc = static_cast<std::uint32_t>(in.be(4));
    // An empty body is always stored inline.
    if (!in.ok() || !in.rest().empty() || record.meta.size == 0) {
      return errc::cache_corrupt;
    }
    return record;
  }
  record.chunk_bytes = static_cast<std::uint32_t>(in.be(4));
  record.chunk_count = static_cast<std::uint32_t>(in.be(4));
  if (!in.ok() || !in.rest().empty() || record.chunk_bytes == 0 || record.meta.size == 0 ||
      chunk_count_for(record.meta.size, record.chunk_bytes) != record.chunk_count) {
    return errc::cache_corrupt;
  }
  return record;
}

void seal_chunk(std::string& body) { put_be(body, crc32c(body), 4); }

result<std::string_view> open_chunk(std::string_view stored, std::size_t expected_body_bytes) {
  if (stored.size() != expected_body_bytes + chunk_trailer_bytes) {
    return errc::cache_corrupt;
  }
  const auto body = stored.substr(0, expected_body_bytes);
  if (crc32c(body) != get_be(stored.substr(expected_body_bytes), 4)) {
    return errc::cache_corrupt;
  }
  return body;
}

std::string encode_fill(const fill_record& record) {
  std::string out;
  out.reserve(4 + record.key.size());
  put_be(out, record.chunks_written, 4);
  out.append(record.key);
  return out;
}

result<fill_record> decode_fill(std::string_view stored) {
  field_reader in(stored);
  fill_record record;
  record.chunks_written = static_cast<std::uint32_t>(in.be(4));
  if (!in.ok()) {
    return errc::cache_corrupt;
  }
  record.key = in.rest();
  return record;
}

std::string encode_stats(const store_stats& stats) {
  std::string out;
  put_be(out, stats.entries, 8);
  put_be(out, stats.bytes, 8);
  return out;
}

result<store_stats> decode_stats(std::string_view stored) {
  if (stored.size() != 16) {
    return errc::cache_corrupt;
  }
  return store_stats{get_be(stored, 8), get_be(stored.substr(8), 8)};
}

std::string encode_evictions(const eviction_totals& totals) {
  std::string out;
  put_be(out, totals.entries, 8);
  put_be(out, totals.bytes, 8);
  return out;
}

result<eviction_totals> decode_evictions(std::string_view stored) {
  if (stored.size() != 16) {
    return errc::cache_corrupt;
  }
  return eviction_totals{get_be(stored, 8), get_be(stored.substr(8), 8)};
}

std::string encode_u64(std::uint64_t value) {
  std::string out;
  put_be(out, value, 8);
  return out;
}

result<std::uint64_t> decode_u64(std::string_view stored) {
  if (stored.size() != 8) {
    return errc::cache_corrupt;
  }
  return get_be(stored, 8);
}

}  // namespace gomodproxy::cache::layout
