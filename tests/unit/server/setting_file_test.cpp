// Setting files: read whole within the limit, refused with the reason otherwise (a directory, a
// device that never ends, a file over the limit), and paths quoted into one printable line.
#include "server/setting_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::server {
namespace {

TEST(read_setting_file, content_or_the_reason) {
  test::temp_dir dir;
  const std::string at_limit(max_setting_file_bytes, 'x');
  const auto small = dir.write("small", "alice:0123456789abcdef\n");
  const auto exact = dir.write("exact", at_limit);
  const auto over = dir.write("over", at_limit + "x");
  struct expectation {
    std::string path;
    std::variant<std::string, std::string> outcome;
  };
  using outcome = std::variant<std::string, std::string>;
  const std::vector<expectation> cases = {
      {small, outcome(std::in_place_index<0>, "alice:0123456789abcdef\n")},
      {dir.write("empty", ""), outcome(std::in_place_index<0>, "")},
      {exact, outcome(std::in_place_index<0>, at_limit)},
      {over, outcome(std::in_place_index<1>, "it is larger than 4 MiB")},
      // A device has no size to look at first; it is read up to the limit and no further.
      {"/dev/zero", outcome(std::in_place_index<1>, "it is larger than 4 MiB")},
      {std::filesystem::path(small).parent_path().string(),
       outcome(std::in_place_index<1>, "it is a directory")},
      {small + ".missing", outcome(std::in_place_index<1>, "No such file or directory")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto got = read_setting_file(c.path);
    EXPECT_EQ(got.index(), c.outcome.index());
    if (got.index() == c.outcome.index()) {
      EXPECT_TRUE(got == c.outcome) << (got.index() == 1 ? std::get<1>(got) : "content differs");
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
