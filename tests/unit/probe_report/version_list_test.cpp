#include "probe_report/version_list.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::probe_report {
namespace {

using versions = std::vector<std::string>;

TEST(parse_version_list, keeps_canonical_release_and_prerelease_versions_in_semver_order) {
  const struct {
    std::string body;
    versions want;
  } cases[] = {
      {"", {}},
      {"\n\n", {}},
      {"v1.0.0\nv1.2.0\nv1.1.0\n", {"v1.0.0", "v1.1.0", "v1.2.0"}},
      // Numeric, not text, order; pre-releases sort before their release.
      {"v1.10.0\nv1.9.0\nv1.10.0-rc.2\nv1.10.0-rc.10\n",
       {"v1.9.0", "v1.10.0-rc.2", "v1.10.0-rc.10", "v1.10.0"}},
      // CRLF, surrounding blanks and a timestamp field, as the go command tolerates.
      {"  v1.0.0 2024-01-01T00:00:00Z\r\nv1.0.1\t\r\n", {"v1.0.0", "v1.0.1"}},
      {"v1.0.0\nv1.0.0\n", {"v1.0.0"}},
      {"v2.0.0+incompatible\nv1.0.0\n", {"v1.0.0", "v2.0.0+incompatible"}},
      // Not versions a client could fetch: dropped.
      {"v1.2\nv1.2.3+meta\nlatest\n1.0.0\nv01.0.0\nv1.0.0", {"v1.0.0"}},
      {"v0.0.0-20240102030405-abcdef123456\nv1.0.0\n", {"v1.0.0"}},
      {"v1.0.0-RC1\nv1.0.0\n", {"v1.0.0-RC1", "v1.0.0"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    EXPECT_EQ(parse_version_list(c.body), c.want);
  }
}

TEST(newest_version, is_the_highest_by_semver_precedence) {
  EXPECT_EQ(newest_version({"v1.9.0", "v1.10.0", "v1.2.0"}), "v1.10.0");
  EXPECT_EQ(newest_version({"v1.0.0-rc.1", "v0.9.0"}), "v1.0.0-rc.1");
  EXPECT_EQ(newest_version({"v1.0.0", "v1.0.0-rc.1"}), "v1.0.0");
  EXPECT_EQ(newest_version({"v1.5.0", "v2.0.0+incompatible"}), "v2.0.0+incompatible");
  EXPECT_EQ(newest_version({}), std::nullopt);
}

}  // namespace
}  // namespace gomodproxy::probe_report
