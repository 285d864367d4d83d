#include "resolver/latest_from_list.hpp"

#include <gtest/gtest.h>

namespace gomodproxy::resolver {
namespace {

TEST(TaggedVersions, KeepsCanonicalTagsInSemverOrder) {
  const std::string list =
      "v1.10.0\nv1.2.0 2024-01-01T00:00:00Z\nv1.9.0-rc.1\n\nv0.0.0-20240102030405-abcdef123456\n"
      "master\nv1.2\nv2.0.0+incompatible\nv1.2.0\r\n";
  EXPECT_EQ(tagged_versions(list),
            (std::vector<std::string>{"v1.2.0", "v1.9.0-rc.1", "v1.10.0", "v2.0.0+incompatible"}));
  EXPECT_TRUE(tagged_versions("").empty());
}

TEST(ParseRetractions, ReadsEveryForm) {
  const std::string go_mod =
      "module example.com/m\n\ngo 1.19\n\n"
      "retract v1.1.0 // wrong greeting\n"
      "retract [v1.3.0, v1.4.0]\n"
      "retract (\n"
      "\tv1.5.0 // a comment\n"
      "\t[ v1.6.0 , v1.6.5 ]\n"
      "\t\"v1.7.0\"\n"
      "\tnot-a-version\n"
      ")\n"
      "retracted v9.0.0\n"
      "// retract v1.8.0\n"
      "require example.com/other v1.0.0\n";
  const auto got = parse_retractions(go_mod);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].low, "v1.1.0");
  EXPECT_EQ(got[0].high, "v1.1.0");
  EXPECT_EQ(got[1].low, "v1.3.0");
  EXPECT_EQ(got[1].high, "v1.4.0");
  EXPECT_EQ(got[2].low, "v1.5.0");
  EXPECT_EQ(got[3].low, "v1.6.0");
  EXPECT_EQ(got[3].high, "v1.6.5");
  EXPECT_EQ(got[4].low, "v1.7.0");
}

TEST(ParseRetractions, RefusesBackwardsIntervals) {
  EXPECT_TRUE(parse_retractions("retract [v1.4.0, v1.3.0]\n").empty());
}

struct latest_case {
  const char* name;
  std::vector<std::string> versions;
  std::vector<retraction> retracted;
  bool drop_incompatible;
  std::optional<std::string> want;
};

TEST(LatestVersion, FollowsTheGoCommand) {
  const std::vector<latest_case> cases = {
      {"highest release", {"v1.0.0", "v1.2.0", "v1.3.0-rc.1"}, {}, false, "v1.2.0"},
      {"pre-release only when no release",
       {"v0.1.0-alpha", "v0.2.0-beta"},
       {},
       false,
       "v0.2.0-beta"},
      {"retracted release skipped", {"v1.0.0", "v1.1.0"}, {{"v1.1.0", "v1.1.0"}}, false, "v1.0.0"},
      {"retracted interval",
       {"v1.0.0", "v1.1.0", "v1.2.0"},
       {{"v1.1.0", "v1.2.0"}},
       false,
       "v1.0.0"},
      {"every release retracted: a pre-release",
       {"v1.0.0", "v1.1.0-rc.1"},
       {{"v1.0.0", "v1.0.0"}},
       false,
       "v1.1.0-rc.1"},
      {"everything retracted", {"v1.0.0"}, {{"v0.0.0", "v9.0.0"}}, false, std::nullopt},
      {"incompatible counts", {"v1.0.0", "v2.0.0+incompatible"}, {}, false, "v2.0.0+incompatible"},
      {"incompatible dropped", {"v1.0.0", "v2.0.0+incompatible"}, {}, true, "v1.0.0"},
      {"nothing listed", {}, {}, false, std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(latest_version(c.versions, c.retracted, c.drop_incompatible), c.want) << c.name;
  }
}

TEST(CompatibleVersionToCheck, OnlyWhenIncompatibleVersionsAreListed) {
  EXPECT_EQ(compatible_version_to_check({"v1.0.0", "v1.1.0"}, {}), std::nullopt);
  EXPECT_EQ(compatible_version_to_check({"v1.0.0", "v1.1.0", "v2.0.0+incompatible"}, {}), "v1.1.0");
  EXPECT_EQ(compatible_version_to_check({"v1.0.0", "v1.1.0", "v2.0.0+incompatible"},
                                        {{"v1.1.0", "v1.1.0"}}),
            "v1.0.0");
  EXPECT_EQ(compatible_version_to_check({"v2.0.0+incompatible"}, {}), std::nullopt);
}

TEST(SynthesisedGoMod, IsTheLegacyOneLiner) {
  EXPECT_TRUE(is_synthesised_go_mod("module example.com/m\n", "example.com/m"));
  EXPECT_FALSE(is_synthesised_go_mod("module example.com/m\n\ngo 1.19\n", "example.com/m"));
  EXPECT_FALSE(is_synthesised_go_mod("module example.com/n\n", "example.com/m"));
  EXPECT_FALSE(is_synthesised_go_mod("module example.com/m", "example.com/m"));
}

}  // namespace
}  // namespace gomodproxy::resolver
