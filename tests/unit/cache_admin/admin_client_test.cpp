// The admin token an admin verb sends: the setting itself or the first line of @FILE.
#include "cache_admin/admin_client.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::cache_admin {
namespace {

TEST(admin_token_from_setting, a_literal_is_the_token) {
  const auto token = admin_token_from_setting("s3cret-token-of-some-length");
  ASSERT_TRUE(token) << token.error().detail;
  EXPECT_EQ(*token, "s3cret-token-of-some-length");
}

TEST(admin_token_from_setting, at_file_is_the_files_first_line) {
  test::temp_dir dir;
  const auto path = dir.write("token", "from-the-file\r\nsecond line\n");
  const auto token = admin_token_from_setting("@" + path);
  ASSERT_TRUE(token) << token.error().detail;
  EXPECT_EQ(*token, "from-the-file");
}

TEST(admin_token_from_setting, an_unreadable_file_is_its_errno_naming_it) {
  test::temp_dir dir;
  const auto path = (dir.path() / "missing").string();
  const auto token = admin_token_from_setting("@" + path);
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, boost::system::errc::no_such_file_or_directory);
  EXPECT_EQ(token.error().detail.rfind("cannot read " + path + ": ", 0), 0u)
      << token.error().detail;
}

}  // namespace
}  // namespace gomodproxy::cache_admin
