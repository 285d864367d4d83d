#include "probe_report/module_list.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::probe_report {
namespace {

TEST(parse_module_list, reads_paths_pins_comments_and_blank_lines) {
  const std::string text =
      "# mirrors to compare\n"
      "\n"
      "golang.org/x/mod\n"
      "  example.com/Upper@v1.0.0-RC1   # pinned, with a comment\r\n"
      "example.com/hello/v2@v2.0.0\n"
      "example.com/incompat@v2.0.0+incompatible\n"
      "\t\n"
      "example.com/pseudo@v0.0.0-20240102030405-abcdef123456";
  auto parsed = parse_module_list(text);
  ASSERT_TRUE(parsed) << parsed.error().detail;
  const auto* targets = &*parsed;
  const std::vector<module_target> want = {
      {"golang.org/x/mod", std::nullopt},
      {"example.com/Upper", "v1.0.0-RC1"},
      {"example.com/hello/v2", "v2.0.0"},
      {"example.com/incompat", "v2.0.0+incompatible"},
      {"example.com/pseudo", "v0.0.0-20240102030405-abcdef123456"},
  };
  EXPECT_EQ(*targets, want);
  EXPECT_EQ(describe((*targets)[0]), "golang.org/x/mod");
  EXPECT_EQ(describe((*targets)[1]), "example.com/Upper@v1.0.0-RC1");
}

TEST(parse_module_list, rejects_a_bad_line_naming_it) {
  const struct {
    std::string text;
    std::string want_prefix;  // the message starts with this
    std::string want_part;    // and contains this
  } cases[] = {
      {"golang.org/x/mod\n\nnot a module\n", "line 3: ", "not a module"},
      {"-bad.example/x\n", "line 1: invalid module path", "-bad.example/x"},
      {"# c\nexample.com/x@\n", "line 2: missing version", "example.com/x@"},
      {"example.com/x@latest\n", "line 1: version \"latest\" is not canonical", "v1.2.3"},
      {"example.com/x@v1.2\n", "line 1: version \"v1.2\" is not canonical", ""},
      {"example.com/x@v1.2.3+meta\n", "line 1: version \"v1.2.3+meta\"", ""},
      {"example.com/x@v2.0.0\n", "line 1: version \"v2.0.0\" does not fit", "example.com/x"},
      {"example.com/x/v2@v1.0.0\n", "line 1: version \"v1.0.0\" does not fit", ""},
      {"example.com/a\nexample.com/b\nexample.com/a@v1.0.0\n",
       "line 3: \"example.com/a\" is already listed on line 1", ""},
      {"", "lists no modules", ""},
      {"# only comments\n\n", "lists no modules", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = parse_module_list(c.text);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, errc::invalid_request);
    const auto& problem = parsed.error().detail;
    EXPECT_TRUE(problem.starts_with(c.want_prefix)) << problem;
    EXPECT_NE(problem.find(c.want_part), std::string::npos) << problem;
    EXPECT_EQ(problem.find('\n'), std::string::npos) << problem;
  }
}

TEST(default_module_targets, are_valid_unpinned_module_paths) {
  auto targets = default_module_targets();
  ASSERT_FALSE(targets.empty());
  std::string file;
  for (const auto& target : targets) {
    EXPECT_FALSE(target.version.has_value()) << target.path;
    file += describe(target) + "\n";
  }
  auto reparsed = parse_module_list(file);
  ASSERT_TRUE(reparsed) << reparsed.error().detail;
  EXPECT_EQ(*reparsed, targets);
}

}  // namespace
}  // namespace gomodproxy::probe_report
