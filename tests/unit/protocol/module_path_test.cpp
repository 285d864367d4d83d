#include "protocol/module_path.hpp"

#include <gtest/gtest.h>

#include <string>

namespace gomodproxy::protocol {
namespace {

struct rejection {
  std::string input;
  std::string reason;  // expected substring of the reason
};

TEST(check_path, accepts_valid_module_paths) {
  const std::string good[] = {
      "example.com",
      "example.com/m",
      "example.com/Upper",
      "github.com/Azure/azure-sdk-for-go",
      "golang.org/x/mod",
      "golang.org/toolchain",
      "example.com/a_b~c-d.e",
      "example.com/m~x",
      "example.com/console",
      "example.com/com10",
      "example.com/v2",
      "example.com/m/v2",
      "example.com/m/v10",
      "example.com/m/v2/sub",
      "example.com/m/v2x",
      "example.com/1.2",
      "gopkg.in/yaml.v2",
      "gopkg.in/check.v1",
      "gopkg.in/yaml.v0",
      "gopkg.in/yaml.v3-unstable",
      "gopkg.in/src-d/go-git.v4",
      "a-b.c-d/x",
  };
  for (const auto& path : good) {
    SCOPED_TRACE(path);
    const auto got = check_path(path);
    EXPECT_TRUE(got) << got.error().detail;
  }
}

TEST(check_path, rejects_invalid_module_paths) {
  const rejection bad[] = {
      {"", "empty string"},
      {"-example.com/m", "leading dash"},
      {"example.com//m", "double slash"},
      {"example.com/m/", "trailing slash"},
      {"/example.com/m", "empty path element"},
      {"example.com/.m", "leading dot in path element"},
      {"example.com/m.", "trailing dot in path element"},
      {"example.com/..", "invalid path element \"..\""},
      {"../etc/passwd", "invalid path element \"..\""},
      {"example.com/a+b", "invalid char '+'"},
      {"example.com/a b", "invalid char ' '"},
      {"example.com/a@b", "invalid char '@'"},
      {"example.com/caf\xc3\xa9", "invalid char '\\xc3\\xa9'"},
      {"example.com/\xff", "invalid UTF-8"},
      {"example", "missing dot in first path element"},
      {"example/m.go", "missing dot in first path element"},
      {"Example.com/m", "invalid char 'E' in first path element"},
      {"exa_mple.com/m", "invalid char '_' in first path element"},
      {"example.com/con", "\"con\" disallowed as path element component on Windows"},
      {"example.com/CON.txt", "\"CON\" disallowed"},
      {"example.com/Lpt9", "\"Lpt9\" disallowed"},
      {"example.com/aux.go", "\"aux\" disallowed"},
      {"example.com/PROGRA~1", "trailing tilde and digits"},
      {"example.com/a~12.b", "trailing tilde and digits"},
      {"example.com/m/v1", "invalid version"},
      {"example.com/m/v0", "invalid version"},
      {"example.com/m/v02", "invalid version"},
      {"example.com/m/v2.0", "invalid version"},
      {"gopkg.in/yaml", "invalid version"},
      {"gopkg.in/yaml.v02", "invalid version"},
      {"gopkg.in/v2", "invalid version"},
      {"gopkg.in/yaml/v2", "invalid version"},
  };
  for (const auto& [path, reason] : bad) {
    SCOPED_TRACE(path);
    const auto got = check_path(path);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code, errc::invalid_request);
    const auto& detail = got.error().detail;
    EXPECT_NE(detail.find(reason), std::string::npos) << detail;
    EXPECT_EQ(detail.rfind("malformed module path ", 0), 0u) << detail;
  }
}

TEST(check_path_version, applies_major_version_rules) {
  const struct {
    std::string path;
    std::string version;
    std::string reason;  // empty when valid
  } cases[] = {
      {"example.com/m", "v1.2.3", ""},
      {"example.com/m", "v0.0.0-20191109021931-daa7c04131f5", ""},
      {"example.com/m", "v2.0.0+incompatible", ""},
      {"example.com/m", "v2.0.0-20200722182040-012345abcdef+incompatible", ""},
      {"example.com/m", "v2.0.0",
       "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2"},
      {"example.com/m/v2", "v2.1.0", ""},
      {"example.com/m/v2", "v1.0.0", "should be v2, not v1"},
      {"example.com/m/v2", "v3.0.0+incompatible", "should be v2, not v3"},
      {"example.com/m/v3", "v3.0.0-20191109021931-daa7c04131f5", ""},
      {"gopkg.in/yaml.v2", "v2.4.0", ""},
      {"gopkg.in/yaml.v2", "v3.0.0", "should be v2, not v3"},
      {"gopkg.in/yaml.v2", "v2.0.0+incompatible", ""},
      {"gopkg.in/yaml.v3-unstable", "v3.0.0-pre", ""},
      {"gopkg.in/yaml.v0", "v0.1.0", ""},
      {"gopkg.in/check.v1", "v1.0.0", ""},
      {"gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405", ""},
      {"gopkg.in/check.v2", "v0.0.0-20161208181325-20d25e280405", "should be v2, not v0"},
      {"example.com/m", "1.2.3", "invalid version \"1.2.3\": not a semantic version"},
      {"example.com/m", "master", "not a semantic version"},
      {"Example.com/m", "v1.0.0", "malformed module path"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path + "@" + c.version);
    const auto got = check_path_version(c.path, c.version);
    // The request parser's shortcut, for a path already checked, answers the same.
    if (check_path(c.path)) {
      const auto shortcut = check_version_of_checked_path(c.path, c.version);
      ASSERT_EQ(shortcut.has_value(), got.has_value());
      if (!got) {
        EXPECT_EQ(shortcut.error().code, got.error().code);
        EXPECT_EQ(shortcut.error().detail, got.error().detail);
      }
    }
    if (c.reason.empty()) {
      EXPECT_TRUE(got) << got.error().detail;
    } else {
      ASSERT_FALSE(got);
      EXPECT_EQ(got.error().code, errc::invalid_request);
      EXPECT_NE(got.error().detail.find(c.reason), std::string::npos) << got.error().detail;
    }
  }
}

TEST(check_file_path, accepts_zip_file_names) {
  const std::string good[] = {
      "go.mod",
      "a/b/c.go",
      ".gitignore",
      "-flag.txt",
      "dir/.hidden/x",
      "PROGRA~1/x.go",
      "a b.txt",
      "x!#$%&()+,-.=@[]^_{}~.go",
      "h\xc3\xa9llo.go",               // é
      "\xe6\x97\xa5\xe6\x9c\xac.txt",  // 日本
      "\xc7\x85.go",                   // titlecase letter U+01C5
      "vendor/modules.txt",
      "console.go",
  };
  for (const auto& name : good) {
    SCOPED_TRACE(name);
    const auto got = check_file_path(name);
    EXPECT_TRUE(got) << got.error().detail;
  }
}

TEST(check_file_path, rejects_unsafe_names) {
  const rejection bad[] = {
      {"", "empty string"},
      {"a//b", "double slash"},
      {"a/", "trailing slash"},
      {"/abs", "empty path element"},
      {"a/../b", "invalid path element"},
      {"a/./b", "invalid path element"},
      {"file.", "trailing dot"},
      {"con.txt", "\"con\" disallowed"},
      {"dir/AUX.go", "\"AUX\" disallowed"},
      {"nul", "\"nul\" disallowed"},
      {"a:b", "invalid char ':'"},
      {"a\\b", "invalid char '\\\\'"},
      {"a*b", "invalid char '*'"},
      {"a?b", "invalid char '?'"},
      {"a\"b", "invalid char"},
      {"a'b", "invalid char"},
      {"a<b", "invalid char"},
      {"a|b", "invalid char"},
      {"a`b", "invalid char"},
      {"a\tb", "invalid char '\\t'"},
      {"\xf0\x9f\x98\x80.txt", "invalid char"},  // emoji: not a letter
      {"\xe2\x82\xac.txt", "invalid char"},      // euro sign
      {"\xff.go", "invalid UTF-8"},
      {"\xc0\xaf.go", "invalid UTF-8"},      // overlong '/'
      {"\xed\xa0\x80.go", "invalid UTF-8"},  // surrogate
  };
  for (const auto& [name, reason] : bad) {
    SCOPED_TRACE(name);
    const auto got = check_file_path(name);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code, errc::invalid_request);
    const auto& detail = got.error().detail;
    EXPECT_NE(detail.find(reason), std::string::npos) << detail;
    EXPECT_EQ(detail.rfind("malformed file path ", 0), 0u) << detail;
  }
}

TEST(check_file_name_lengths, refuses_an_element_longer_than_a_file_name) {
  const std::string longest(max_file_name_bytes, 'a');
  const std::string over(max_file_name_bytes + 1, 'a');
  const struct {
    std::string path;
    std::string version;
    std::string detail;  // empty when it fits
  } cases[] = {
      {"example.com/" + longest, longest, ""},
      {"example.com/m", "", ""},
      {"example.com/" + over + "/m", "v1.0.0",
       "module path element of 256 bytes (escaped) is longer than a file name can be (255 "
       "bytes): no module cache can hold it"},
      {"example.com/m", over,
       "version of 256 bytes (escaped) is longer than a file name can be (255 bytes): no module "
       "cache can hold it"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.detail);
    const auto got = check_file_name_lengths(c.path, c.version);
    if (c.detail.empty()) {
      EXPECT_TRUE(got) << got.error().detail;
    } else {
      ASSERT_FALSE(got);
      EXPECT_EQ(got.error().code, errc::invalid_request);
      EXPECT_EQ(got.error().detail, c.detail);
    }
  }
}

TEST(is_valid_file_element, follows_version_in_url_rule) {
  const struct {
    std::string element;
    bool want;
  } cases[] = {
      {"v1.0.0", true},
      {"master", true},
      {"daa7c041", true},
      {"v1.2.3+meta", true},
      {"v1.0.0-RC1", true},
      {".hidden", true},
      {"a b", true},
      {"", false},
      {".", false},
      {"..", false},
      {"...", false},
      {"a/b", false},
      {"v1.", false},
      {"con", false},
      {"Con.info", false},
      {"a\\b", false},
      {std::string("a\0b", 3), false},
      {"\xff", false},
      {"a\nb", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.element);
    EXPECT_EQ(is_valid_file_element(c.element), c.want);
  }
}

}  // namespace
}  // namespace gomodproxy::protocol
