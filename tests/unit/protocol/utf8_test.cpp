#include "protocol/utf8.hpp"

#include <gtest/gtest.h>

namespace gomodproxy::protocol {
namespace {

struct rune_case {
  std::string_view input;
  char32_t value;
  std::size_t size;
  bool valid;
};

TEST(decode_rune, follows_go_utf8_rules) {
  const rune_case cases[] = {
      {"a", U'a', 1, true},
      {"\xc3\xa9x", U'\u00e9', 2, true},             // é, then more input
      {"\xe2\x82\xac", U'\u20ac', 3, true},          // €
      {"\xf0\x9f\x98\x80", U'\U0001F600', 4, true},  // emoji
      {"\xef\xbf\xbd", 0xfffd, 3, true},             // an encoded U+FFFD is valid
      {"", 0xfffd, 0, false},
      {"\x80", 0xfffd, 1, false},              // lone continuation byte
      {"\xc3", 0xfffd, 1, false},              // truncated
      {"\xc0\xaf", 0xfffd, 1, false},          // overlong '/'
      {"\xe0\x80\xaf", 0xfffd, 1, false},      // overlong, 3 bytes
      {"\xed\xa0\x80", 0xfffd, 1, false},      // surrogate U+D800
      {"\xf4\x90\x80\x80", 0xfffd, 1, false},  // above U+10FFFF
      {"\xff", 0xfffd, 1, false},
  };
  for (const auto& c : cases) {
    auto rune = decode_rune(c.input);
    EXPECT_EQ(rune.value, c.value) << testing::PrintToString(std::string(c.input));
    EXPECT_EQ(rune.size, c.size) << testing::PrintToString(std::string(c.input));
    EXPECT_EQ(rune.valid, c.valid) << testing::PrintToString(std::string(c.input));
  }
}

}  // namespace
}  // namespace gomodproxy::protocol
