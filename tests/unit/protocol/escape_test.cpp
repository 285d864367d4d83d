#include "protocol/escape.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace gomodproxy::protocol {
namespace {

struct case_pair {
  std::string plain;
  std::string escaped;
};

const case_pair pairs[] = {
    {"", ""},
    {"example.com/m", "example.com/m"},
    {"github.com/Azure/azure-sdk-for-go", "github.com/!azure/azure-sdk-for-go"},
    {"github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"},
    {"example.com/Upper", "example.com/!upper"},
    {"v1.0.0-RC1", "v1.0.0-!r!c1"},
    {"ABCXYZ", "!a!b!c!x!y!z"},
    {"v2.0.0+incompatible", "v2.0.0+incompatible"},
    {"a~b_c.d-e@f", "a~b_c.d-e@f"},
};

TEST(escape_case, uppercase_becomes_bang_lowercase) {
  for (const auto& [plain, escaped] : pairs) {
    SCOPED_TRACE(plain);
    EXPECT_EQ(escape_case(plain), escaped);
  }
}

TEST(unescape_case, inverts_escape_case) {
  for (const auto& [plain, escaped] : pairs) {
    SCOPED_TRACE(escaped);
    EXPECT_EQ(unescape_case(escaped), std::optional<std::string>(plain));
  }
}

TEST(unescape_case, rejects_malformed_escapes) {
  const std::string bad[] = {
      "example.com/Upper",  // raw uppercase
      "Z",
      "!",            // trailing bang
      "abc!",         // trailing bang
      "!A",           // bang before uppercase
      "!1",           // bang before digit
      "!!a",          // bang before bang
      "a!-b",         // bang before punctuation
      "caf\xc3\xa9",  // non-ASCII
      "\x80",
  };
  for (const auto& s : bad) {
    SCOPED_TRACE(s);
    EXPECT_EQ(unescape_case(s), std::nullopt);
  }
}

TEST(quote, escapes_to_printable_ascii) {
  const struct {
    std::string in;
    std::string out;
  } cases[] = {
      {"", R"("")"},
      {"example.com/m", R"("example.com/m")"},
      {"a\"b\\c", R"("a\"b\\c")"},
      {"line\nbreak\r\ttab", R"("line\nbreak\r\ttab")"},
      {std::string("nul\0del\x7f", 8), R"("nul\x00del\x7f")"},
      {"caf\xc3\xa9", R"("caf\xc3\xa9")"},
      {std::string(200, 'a'), "\"" + std::string(128, 'a') + "\"..."},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.out);
    EXPECT_EQ(quote(c.in), c.out);
  }
}

TEST(trim_space, strips_ascii_whitespace_at_both_ends_only) {
  EXPECT_EQ(trim_space(" \t\n\v\f\r a b \r\n"), "a b");
  EXPECT_EQ(trim_space("a"), "a");
  EXPECT_EQ(trim_space(" \t "), "");
  EXPECT_EQ(trim_space(""), "");
  EXPECT_EQ(trim_space("\xc2\xa0x"), "\xc2\xa0x");  // no-break space is not ASCII whitespace
}

}  // namespace
}  // namespace gomodproxy::protocol
