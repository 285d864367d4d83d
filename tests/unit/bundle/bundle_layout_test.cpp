// Bundle member names: which the import takes, and the reason it gives for each it refuses.
#include "bundle/bundle_layout.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::bundle {
namespace {

TEST(parse_member_name, a_canonical_name_is_the_request_of_its_cache_key) {
  for (const std::string name :
       {"example.com/!m/@v/list", "example.com/!m/@v/v1.0.0.zip", "sumdb/sum.golang.org/latest"}) {
    const auto request = parse_member_name(name);
    ASSERT_TRUE(request) << name << ": " << request.error().detail;
    EXPECT_EQ(request->cache_key, "/" + name);
  }
}

struct refusal {
  std::string name;
  std::string detail;  ///< exact, or "" when only the code is pinned (the parser's own words)
};

TEST(parse_member_name, each_refusal_is_an_invalid_request_with_its_reason) {
  const std::vector<refusal> cases = {
      {"", "empty name"},
      {"/example.com/m/@v/list", "absolute path"},
      {"example.com/m%2f/@v/list", "a name with '%' or '\\' is no GOPROXY path"},
      {"example.com//m/@v/list", "empty path element"},
      {"example.com/m/@v/list/", "empty path element"},
      {"example.com/./m/@v/list", "'.' path element"},
      {"../example.com/m/@v/list", "'..' path element"},
      {"example.com/m/@latest",
       "not a file a bundle carries (only list and canonical versions' .info, .mod, .zip)"},
      {"README", ""},
  };
  for (const auto& c : cases) {
    const auto request = parse_member_name(c.name);
    ASSERT_FALSE(request) << c.name;
    EXPECT_EQ(request.error().code, errc::invalid_request) << c.name;
    if (!c.detail.empty()) {
      EXPECT_EQ(request.error().detail, c.detail) << c.name;
    }
    EXPECT_FALSE(request.error().detail.empty()) << c.name;
  }
}

}  // namespace
}  // namespace gomodproxy::bundle
