#include "upstream/upstream_list.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::upstream {
namespace {

using kind = tier_spec::kind;

struct expected_tier {
  kind type;
  std::string url;
  std::string name;
  bool fall_through_on_error;
};

TEST(parse_upstream_list, parses_like_the_go_command) {
  const struct {
    std::string list;
    std::vector<expected_tier> want;
  } cases[] = {
      {"https://goproxy.cn|https://goproxy.io|direct",
       {{kind::url, "https://goproxy.cn", "goproxy.cn", true},
        {kind::url, "https://goproxy.io", "goproxy.io", true},
        {kind::direct, "", "direct", false}}},
      {"https://mirror.example.com,direct",
       {{kind::url, "https://mirror.example.com", "mirror.example.com", false},
        {kind::direct, "", "direct", false}}},
      {"https://a.example|https://b.example,https://c.example",
       {{kind::url, "https://a.example", "a.example", true},
        {kind::url, "https://b.example", "b.example", false},
        {kind::url, "https://c.example", "c.example", false}}},
      {"goproxy.cn", {{kind::url, "https://goproxy.cn", "goproxy.cn", false}}},
      {"127.0.0.1:1", {{kind::url, "https://127.0.0.1:1", "127.0.0.1:1", false}}},
      {"localhost:3000/mod",
       {{kind::url, "https://localhost:3000/mod", "localhost:3000/mod", false}}},
      {"http://localhost:3000/athens/",
       {{kind::url, "http://localhost:3000/athens", "localhost:3000/athens", false}}},
      {"https://goproxy.io//", {{kind::url, "https://goproxy.io", "goproxy.io", false}}},
      {"http://[::1]:8080", {{kind::url, "http://[::1]:8080", "[::1]:8080", false}}},
      {"https://user:pw@private.example.com/mod",
       {{kind::url, "https://user:pw@private.example.com/mod", "private.example.com/mod", false}}},
      {" https://a.example , ,| direct , ftp://ignored",
       {{kind::url, "https://a.example", "a.example", false}, {kind::direct, "", "direct", false}}},
      {"\thttps://a.example\n|\toff",
       {{kind::url, "https://a.example", "a.example", true}, {kind::off, "", "off", false}}},
      {"off", {{kind::off, "", "off", false}}},
      {"off,https://a.example", {{kind::off, "", "off", false}}},
      {"direct|https://a.example", {{kind::direct, "", "direct", false}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.list);
    const auto result = parse_upstream_list(c.list);
    ASSERT_TRUE(result) << result.error().detail;
    const auto* tiers = &*result;
    ASSERT_EQ(tiers->size(), c.want.size());
    for (std::size_t i = 0; i < c.want.size(); ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ((*tiers)[i].type, c.want[i].type);
      if (c.want[i].type == kind::url) {
        EXPECT_EQ((*tiers)[i].url, c.want[i].url);
      }
      EXPECT_EQ((*tiers)[i].name, c.want[i].name);
      EXPECT_EQ((*tiers)[i].fall_through_on_error, c.want[i].fall_through_on_error);
    }
  }
}

TEST(parse_upstream_list, refuses_unusable_lists) {
  const struct {
    std::string list;
    std::string reason;  // expected substring
  } cases[] = {
      {"", "empty"},
      {",", "GOPROXY list is not the empty string, but contains no entries"},
      {" | , ", "contains no entries"},
      {"foo", "invalid proxy URL missing scheme: foo"},
      {"/srv/goproxy", "missing scheme"},
      {"ftp://x.example", "invalid proxy URL scheme (must be https or http): ftp://x.example"},
      {"file:///tmp/proxy", "file:// proxies are not supported"},
      {"http://user:secret@host.example", "refusing to pass credentials to insecure URL"},
      {"https://", "missing host"},
      {"https://host.example/?q=1", "query or fragment"},
      {"https://host.example#top", "query or fragment"},
      {"https://host.example:port", "invalid proxy URL port"},
      {"https://host.example:", "invalid proxy URL port"},
      {"https://host.example:70000", "invalid proxy URL port"},
      {"https://host.example:0", "invalid proxy URL port"},
      {"https://host example", "invalid proxy URL"},
      {"https://good.example,ftp://bad.example", "ftp://bad.example"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.list);
    const auto result = parse_upstream_list(c.list);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, errc::invalid_request);
    const auto& detail = result.error().detail;
    EXPECT_NE(detail.find(c.reason), std::string::npos) << detail;
  }
}

TEST(parse_upstream_list, never_shows_passwords_or_control_bytes) {
  const std::string lists[] = {
      "http://user:secret@host.example/mod",   "ftp://user:secret@host.example",
      "https://user:secret@host.example:bad/", "https://user:secret@host.example/?q",
      "https://host\x01.example/\xff",
  };
  for (const auto& list : lists) {
    SCOPED_TRACE(list);
    const auto result = parse_upstream_list(list);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, errc::invalid_request);
    const auto& detail = result.error().detail;
    EXPECT_EQ(detail.find("secret"), std::string::npos) << detail;
    for (char c : detail) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << detail;
  }
}

}  // namespace
}  // namespace gomodproxy::upstream
