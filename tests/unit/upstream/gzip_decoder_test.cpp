#include "upstream/gzip_decoder.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "tests/support/cpp/gzip_compress.hpp"

namespace gomodproxy::upstream {
namespace {

std::string gzip(const std::string& plain) {
  return test_support::gzip_compress(plain, Z_BEST_SPEED);
}

std::string sample(std::size_t size) {
  std::mt19937 generator(7);
  std::string out;
  while (out.size() < size) out += "line " + std::to_string(generator() % 1000) + "\n";
  out.resize(size);
  return out;
}

struct decoded {
  gzip_decoder::status status = gzip_decoder::status::ok;
  std::string text;
  std::size_t largest_piece = 0;
  bool complete = false;
};

// Feeds `compressed` in pieces of `step` bytes.
decoded decode(const std::string& compressed, std::size_t step) {
  gzip_decoder decoder;
  decoded out;
  auto sink = [&](std::string_view piece) {
    EXPECT_FALSE(piece.empty());
    out.largest_piece = std::max(out.largest_piece, piece.size());
    out.text.append(piece);
    return true;
  };
  for (std::size_t at = 0; at < compressed.size() && out.status == gzip_decoder::status::ok;
       at += step) {
    out.status = decoder.write(std::string_view(compressed).substr(at, step), sink);
  }
  out.complete = decoder.complete();
  return out;
}

TEST(gzip_decoder, round_trips_in_any_piece_size) {
  const auto plain = sample(3 * 1024 * 1024 + 3);
  const auto compressed = gzip(plain);
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, compressed.size()}) {
    if (step == 1) {
      // Byte-at-a-time over the whole stream is slow; a shorter stream proves the same thing.
      auto small = sample(100000);
      auto out = decode(gzip(small), 1);
      EXPECT_EQ(out.status, gzip_decoder::status::ok);
      EXPECT_TRUE(out.complete);
      EXPECT_TRUE(out.text == small);
      continue;
    }
    auto out = decode(compressed, step);
    EXPECT_EQ(out.status, gzip_decoder::status::ok) << step;
    EXPECT_TRUE(out.complete) << step;
    EXPECT_TRUE(out.text == plain) << step;
    EXPECT_LE(out.largest_piece, gzip_decoder::max_piece);
  }
}

TEST(gzip_decoder, concatenated_members_decode_in_order) {
  auto out = decode(gzip("first,") + gzip("second"), 5);
  EXPECT_EQ(out.status, gzip_decoder::status::ok);
  EXPECT_TRUE(out.complete);
  EXPECT_EQ(out.text, "first,second");
}

TEST(gzip_decoder, bad_and_cut_input) {
  const auto compressed = gzip(sample(50000));
  struct row {
    std::string name;
    std::string input;
    gzip_decoder::status status;
    bool complete;
  };
  auto flipped = compressed;
  flipped[compressed.size() / 2] ^= 0x55;
  auto bad_crc = compressed;
  bad_crc[compressed.size() - 6] ^= 0x01;
  const std::vector<row> rows = {
      {"not gzip", "plain text, not gzip", gzip_decoder::status::corrupt, false},
      {"cut", compressed.substr(0, compressed.size() / 2), gzip_decoder::status::ok, false},
      {"cut trailer", compressed.substr(0, compressed.size() - 3), gzip_decoder::status::ok, false},
      {"flipped byte", flipped, gzip_decoder::status::corrupt, false},
      {"bad crc", bad_crc, gzip_decoder::status::corrupt, false},
      {"trailing garbage", compressed + "garbage!", gzip_decoder::status::corrupt, false},
      {"empty", "", gzip_decoder::status::ok, false},
  };
  for (const auto& r : rows) {
    auto out = decode(r.input, 1000);
    EXPECT_EQ(out.status, r.status) << r.name;
    EXPECT_EQ(out.complete, r.complete) << r.name;
  }
}

TEST(gzip_decoder, refusal_stops_decoding) {
  gzip_decoder decoder;
  int calls = 0;
  auto status = decoder.write(gzip(sample(1024 * 1024)), [&](std::string_view) {
    ++calls;
    return false;
  });
  EXPECT_EQ(status, gzip_decoder::status::refused);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(decoder.complete());
}

}  // namespace
}  // namespace gomodproxy::upstream
