#include "protocol/path_glob.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::protocol {
namespace {

TEST(path_match, follows_go_path_match) {
  const struct {
    std::string pattern;
    std::string name;
    bool want;
  } cases[] = {
      {"abc", "abc", true},
      {"abc", "abd", false},
      {"*", "abc", true},
      {"*", "", true},
      {"*", "a/b", false},
      {"*c", "abc", true},
      {"a*", "a", true},
      {"a*", "abc", true},
      {"a*", "ab/c", false},
      {"a*/b", "abc/b", true},
      {"a*/b", "a/c/b", false},
      {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
      {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
      {"a*b?c*x", "abxbbxdbxebxczzx", true},
      {"a*b?c*x", "abxbbxdbxebxczzy", false},
      {"ab[c]", "abc", true},
      {"ab[b-d]", "abc", true},
      {"ab[e-g]", "abc", false},
      {"ab[^c]", "abc", false},
      {"ab[^b-d]", "abc", false},
      {"ab[^e-g]", "abc", true},
      {"a\\*b", "a*b", true},
      {"a\\*b", "ab", false},
      {"a?b",
       "a\xe2\x98\xba"
       "b",
       true},  // '?' is one rune, not one byte
      {"a[^a]b",
       "a\xe2\x98\xba"
       "b",
       true},
      {"a???b",
       "a\xe2\x98\xba"
       "b",
       false},
      {"a[^a][^a][^a]b",
       "a\xe2\x98\xba"
       "b",
       false},
      {"[a-\xce\xb6]*", "\xce\xb1", true},  // [a-ζ]* matches α
      {"*[a-\xce\xb6]", "A", false},
      {"a?b", "a/b", false},
      {"a*b", "a/b", false},
      {"[\\]a]", "]", true},
      {"[\\-]", "-", true},
      {"[x\\-]", "x", true},
      {"[x\\-]", "-", true},
      {"[x\\-]", "z", false},
      {"[\\-x]", "x", true},
      {"[\\-x]", "-", true},
      {"[\\-x]", "a", false},
      {"*x", "xxx", true},
      {"*.corp.com", "git.corp.com", true},
      {"*.corp.com", "corp.com", false},
      // Malformed patterns never match.
      {"[]a]", "]", false},
      {"[-]", "-", false},
      {"[x-]", "x", false},
      {"[-x]", "x", false},
      {"\\", "\\", false},
      {"[a-b-c]", "a", false},
      {"[", "a", false},
      {"[^", "a", false},
      {"[^bc", "a", false},
      {"a[", "a", false},
      {"a[", "ab", false},
      {"a[", "x", false},
      {"a/b[", "x", false},
      {"*[", "a", false},
      {"a*[", "ab", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.pattern + " ~ " + c.name);
    EXPECT_EQ(path_match(c.pattern, c.name), c.want);
  }
}

TEST(parse_glob_list, splits_on_commas_and_drops_one_trailing_slash) {
  const struct {
    std::string list;
    std::vector<std::string> want;
  } cases[] = {
      {"", {}},
      {",,", {}},
      {"a,*.corp.com,b/c/", {"a", "*.corp.com", "b/c"}},
      {",a,,b,", {"a", "b"}},
      {"/", {}},
      {"a//", {"a/"}},
      {" a", {" a"}},  // GOPRIVATE is not whitespace-trimmed by go either
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.list);
    EXPECT_EQ(parse_glob_list(c.list), c.want);
  }
}

TEST(match_prefix_patterns, matches_path_prefixes_by_element_count) {
  const struct {
    std::string globs;
    std::string path;
    bool want;
  } cases[] = {
      {"*.corp.com", "x.corp.com/a/b", true},
      {"*.corp.com", "x.corp.com", true},
      {"*.corp.com", "corp.com/a", false},
      {"*.corp.com", "x.y.corp.com/a", true},
      {"github.com/myorg", "github.com/myorg/repo", true},
      {"github.com/myorg", "github.com/myorg", true},
      {"github.com/myorg", "github.com/myorgx/repo", false},
      {"github.com/myorg", "github.com", false},
      {"github.com/myorg/", "github.com/myorg/repo/v2", true},
      {"rsc.io/*", "rsc.io/quote/v3", true},
      {"rsc.io/*", "rsc.io", false},
      {"*/*/private", "example.com/team/private/x", true},
      {"*/*/private", "example.com/team/public/x", false},
      {"a.com,b.com", "b.com/x", true},
      {"a.com,,b.com/", "b.com", true},
      {"[bad,other.com", "other.com/x", true},
      {"[bad", "[bad/x", false},
      {"", "example.com/m", false},
      {"*", "example.com/m", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.globs + " ~ " + c.path);
    EXPECT_EQ(match_prefix_patterns(parse_glob_list(c.globs), c.path), c.want);
  }
}

}  // namespace
}  // namespace gomodproxy::protocol
