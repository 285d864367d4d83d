#include <gtest/gtest.h>

#include "resolver/resolver.hpp"

namespace gomodproxy::resolver {
namespace {

TEST(sumdb_exemption, says_why_a_module_is_never_looked_up) {
  resolver_options options;
  EXPECT_EQ(sumdb_exemption(options, "example.com/a"), "no checksum database");
  sumdb_options database;
  database.name = "sum.test";
  options.sumdbs.push_back(database);
  EXPECT_EQ(sumdb_exemption(options, "example.com/a"), std::nullopt);
  options.private_patterns = {"corp.example/*"};
  options.no_sumdb_patterns = {"corp.example", "mirror.example"};
  EXPECT_EQ(sumdb_exemption(options, "corp.example/a/b"), "private module");
  EXPECT_EQ(sumdb_exemption(options, "mirror.example/c"), "matches no_sumdb");
  EXPECT_EQ(sumdb_exemption(options, "example.com/a"), std::nullopt);
}

}  // namespace
}  // namespace gomodproxy::resolver
