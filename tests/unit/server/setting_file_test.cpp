// Setting files: read whole within the limit, refused with the reason otherwise (a directory, a
// device that never ends, a file over the limit), and paths quoted into one printable line.
#include "server/setting_file.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::server {
namespace {

TEST(read_setting_file, content_or_the_reason) {
  test::temp_dir dir;
  const std::string at_limit(max_setting_file_bytes, 'x');
  const auto small = dir.write("small", "alice:0123456789abcdef\n");
  const auto exact = dir.write("exact", at_limit);
  const auto over = dir.write("over", at_limit + "x");
  const auto generic = [](int value) {
    return boost::system::error_code(value, boost::system::generic_category());
  };
  const boost::system::error_code too_large = errc::too_large;
  const struct {
    std::string path;
    std::string content;             // when read
    boost::system::error_code code;  // when refused
    std::string detail;
  } cases[] = {
      {small, "alice:0123456789abcdef\n", {}, ""},
      {dir.write("empty", ""), "", {}, ""},
      {exact, at_limit, {}, ""},
      {over, "", too_large, "it is larger than 4 MiB"},
      // A device has no size to look at first; it is read up to the limit and no further.
      {"/dev/zero", "", too_large, "it is larger than 4 MiB"},
      {std::filesystem::path(small).parent_path().string(), "", generic(EISDIR),
       "it is a directory"},
      {small + ".missing", "", generic(ENOENT), "No such file or directory"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto got = read_setting_file(c.path);
    if (!c.code) {
      ASSERT_TRUE(got) << got.error().detail;
      EXPECT_TRUE(*got == c.content) << "content differs";
    } else {
      ASSERT_FALSE(got);
      EXPECT_EQ(got.error().code, c.code);
      EXPECT_EQ(got.error().detail, c.detail);
    }
  }
}

TEST(quoted_path, one_printable_line) {
  EXPECT_EQ(quoted_path("/etc/gomodproxy/tokens"), "\"/etc/gomodproxy/tokens\"");
  EXPECT_EQ(quoted_path("a\nb\tc"), "\"a\\x0ab\\x09c\"");
  EXPECT_EQ(quoted_path("say \"hi\"\\"), "\"say \\x22hi\\x22\\x5c\"");
  EXPECT_EQ(quoted_path("caf\xc3\xa9"), "\"caf\\xc3\\xa9\"");
}

}  // namespace
}  // namespace gomodproxy::server
