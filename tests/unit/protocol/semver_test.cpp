#include "protocol/semver.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::protocol {
namespace {

TEST(is_valid_semver, accepts_semver_and_shorthands) {
  const std::string good[] = {
      "v0.0.0",
      "v1",
      "v1.2",
      "v1.2.3",
      "v10.20.30",
      "v1.2.3-pre",
      "v1.2.3-pre.1",
      "v1.2.3-0",
      "v1.2.3-alpha-1",
      "v1.2.3-x.7.z.92",
      "v1.2.3+build",
      "v1.2.3-pre+build.1",
      "v1.2.3+0001",
      "v2.0.0+incompatible",
      "v1.0.0-RC1",
      "v0.0.1-go1.21.0.linux-amd64",
      "v0.0.0-20191109021931-daa7c04131f5",
  };
  for (const auto& v : good) {
    SCOPED_TRACE(v);
    EXPECT_TRUE(is_valid_semver(v));
  }
}

TEST(is_valid_semver, rejects_malformed_versions) {
  const std::string bad[] = {
      "",
      "v",
      "1.2.3",
      "V1.2.3",
      "v01",
      "v1.02",
      "v1.2.03",
      "v1.2.3.4",
      "v1.2-pre",
      "v1+build",
      "v1.2+build",
      "v1.2.3-",
      "v1.2.3-01",
      "v1.2.3-a..b",
      "v1.2.3-a.",
      "v1.2.3+",
      "v1.2.3+a..b",
      "v1.2.3+a+b",
      "v1.2.3-pre_x",
      "v1.2.3 ",
      "v1.2.3-\xc3\xa9",
      "v1.",
      "v1.2.",
      "v-1.2.3",
      "vx.y.z",
  };
  for (const auto& v : bad) {
    SCOPED_TRACE(v);
    EXPECT_FALSE(is_valid_semver(v));
  }
}

TEST(canonical_version, completes_shorthands_and_drops_build_except_incompatible) {
  const struct {
    std::string in;
    std::string out;
  } cases[] = {
      {"v1", "v1.0.0"},
      {"v1.2", "v1.2.0"},
      {"v1.2.3", "v1.2.3"},
      {"v1.2.3-pre", "v1.2.3-pre"},
      {"v1.2.3-pre+build", "v1.2.3-pre"},
      {"v1.2.3+meta", "v1.2.3"},
      {"v2.0.0+incompatible", "v2.0.0+incompatible"},
      {"v2.0.0-20200722182040-012345abcdef+incompatible",
       "v2.0.0-20200722182040-012345abcdef+incompatible"},
      {"v2.0.0+incompatible.1", "v2.0.0"},
      {"master", ""},
      {"v1.2-pre", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(canonical_version(c.in), c.out);
  }
}

TEST(compare_versions, follows_semver_precedence) {
  // Strictly increasing; the semver.org §11 chain plus numeric-width and shorthand cases.
  const std::vector<std::string> ordered = {
      "v0.0.0-20191109021931-daa7c04131f5",
      "v0.0.0",
      "v0.1.0",
      "v1.0.0-alpha",
      "v1.0.0-alpha.1",
      "v1.0.0-alpha.beta",
      "v1.0.0-beta",
      "v1.0.0-beta.2",
      "v1.0.0-beta.11",
      "v1.0.0-rc.1",
      "v1.0.0",
      "v1.0.1",
      "v1.2",
      "v1.9.0",
      "v1.10.0",
      "v2.0.0+incompatible",
      "v9",
      "v10.0.0",
  };
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    for (std::size_t j = 0; j < ordered.size(); ++j) {
      SCOPED_TRACE(ordered[i] + " vs " + ordered[j]);
      const int want = i < j ? -1 : (i > j ? 1 : 0);
      EXPECT_EQ(compare_versions(ordered[i], ordered[j]), want);
    }
  }
}

TEST(compare_versions, treats_equivalent_forms_and_invalid_versions) {
  const struct {
    std::string a;
    std::string b;
    int want;
  } cases[] = {
      {"v1.2", "v1.2.0", 0},       {"v1", "v1.0.0", 0},
      {"v1.2.3+a", "v1.2.3+b", 0}, {"v1.2.3-pre+a", "v1.2.3-pre", 0},
      {"bad", "v0.0.0", -1},       {"v0.0.0", "bad", 1},
      {"bad", "worse", 0},         {"", "v1", -1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.a + " vs " + c.b);
    EXPECT_EQ(compare_versions(c.a, c.b), c.want);
  }
}

TEST(is_pseudo_version, recognises_the_three_forms) {
  const struct {
    std::string v;
    bool want;
  } cases[] = {
      {"v0.0.0-20191109021931-daa7c04131f5", true},
      {"v1.0.0-20191109021931-daa7c04131f5", true},
      {"v1.2.4-0.20191109021931-daa7c04131f5", true},
      {"v1.2.3-pre.0.20191109021931-daa7c04131f5", true},
      {"v1.2.3-rc.1.0.20191109021931-daa7c04131f5", true},
      {"v2.0.0-20200722182040-012345abcdef+incompatible", true},
      {"v0.0.0-20191109021931-000000000123", true},
      {"v1.2.3", false},
      {"master", false},
      {"v0.0.0-2019110902193-daa7c04131f5", false},    // 13-digit timestamp
      {"v0.0.0-201911090219310-daa7c04131f5", false},  // 15-digit timestamp
      {"v0.0.0-20191109021931", false},                // no revision
      {"v1.2.3-20191109021931-daa7c04131f5", false},   // release base without "0."
      {"v1.2.3-pre.20191109021931-daa7c04131f5", false},
      {"v1.2.3-x0.20191109021931-daa7c04131f5", false},
      {"v1.2.4-0.2019110902193x-daa7c04131f5", false},
      {"v0.0.0-20191109021931-daa7c04131f5+a..b", false},  // invalid semver
      {"v0.0-20191109021931-daa7c04131f5", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.v);
    EXPECT_EQ(is_pseudo_version(c.v), c.want);
  }
}

TEST(major_of, returns_major_or_empty) {
  const struct {
    std::string v;
    std::string want;
  } cases[] = {
      {"v2.3.4-pre", "v2"}, {"v1", "v1"}, {"v0.1", "v0"}, {"v10.0.0+incompatible", "v10"},
      {"2.3.4", ""},        {"v01", ""},  {"", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.v);
    EXPECT_EQ(major_of(c.v), c.want);
  }
}

}  // namespace
}  // namespace gomodproxy::protocol
