#include "common/read_file.hpp"

#include <gtest/gtest.h>

#include <boost/system/errc.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy {
namespace {

constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();

TEST(read_file, gives_the_bytes_of_a_file_within_the_limit) {
  test::temp_dir dir;
  const std::string content("line one\n\0binary\r\n", 19);
  const auto path = dir.write("modules.txt", content);
  const auto read = read_file(path, content.size());
  ASSERT_TRUE(read) << read.error().detail;
  EXPECT_EQ(*read, content);
  const auto empty = read_file(dir.write("empty.txt", ""), 0);
  ASSERT_TRUE(empty) << empty.error().detail;
  EXPECT_EQ(*empty, "");
}

TEST(read_file, reads_past_its_buffer) {
  test::temp_dir dir;
  const std::string content(200000, 'x');
  const auto read = read_file(dir.write("big.txt", content), no_limit);
  ASSERT_TRUE(read) << read.error().detail;
  EXPECT_EQ(*read, content);
}

TEST(read_file, refuses_a_file_over_the_limit_as_too_large) {
  test::temp_dir dir;
  const auto path = dir.write("modules.txt", std::string(101, 'x'));
  const auto read = read_file(path, 100);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, errc::too_large);
  EXPECT_EQ(read.error().detail, "larger than 100 bytes");
}

TEST(read_file, a_file_that_cannot_be_read_gives_its_errno_and_the_systems_reason) {
  test::temp_dir dir;
  const struct {
    std::string path;
    int error;
  } cases[] = {
      {(dir.path() / "missing.txt").string(), ENOENT},
      {dir.path().string(), EISDIR},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto read = read_file(c.path, no_limit);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code,
              boost::system::error_code(c.error, boost::system::generic_category()));
    EXPECT_EQ(read.error().detail, std::strerror(c.error));
    EXPECT_EQ(to_http_status(read.error()), 500);
  }
}

}  // namespace
}  // namespace gomodproxy
