#include "prefetch/pin_files.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::prefetch {

// Found by gtest through argument-dependent lookup, so failures print pins readably.
void PrintTo(const pin& p, std::ostream* out) {
  *out << p.module_path << "@" << p.version << (p.go_mod_only ? "/go.mod" : "");
}

namespace {

// A problem is checked by its start ("line N: ") and a part of its reason.
struct expected_problem {
  std::string prefix;
  std::string part;
};

void expect_problems(const std::vector<std::string>& got, const std::vector<expected_problem>& want,
                     const std::string& context) {
  ASSERT_EQ(got.size(), want.size()) << context << ": " << ::testing::PrintToString(got);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(got[i].starts_with(want[i].prefix)) << context << ": " << got[i];
    EXPECT_NE(got[i].find(want[i].part), std::string::npos) << context << ": " << got[i];
  }
}

TEST(parse_go_sum, pins_whole_modules_and_go_mod_only_lines) {
  const std::string text =
      "example.com/Upper v1.0.0-RC1 h1:abc=\n"
      "example.com/Upper v1.0.0-RC1/go.mod h1:def=\n"
      "\n"
      "example.com/modonly v1.0.0/go.mod h1:ghi=\r\n"
      "example.com/incompat v2.0.0+incompatible h1:jkl=\n"
      "  example.com/pseudo v0.0.0-20240102030405-abcdef123456\th1:mno=  ";
  auto parsed = parse_go_sum(text);
  EXPECT_TRUE(parsed.problems.empty()) << ::testing::PrintToString(parsed.problems);
  const std::vector<pin> want = {
      {"example.com/Upper", "v1.0.0-RC1", false},
      {"example.com/Upper", "v1.0.0-RC1", true},
      {"example.com/modonly", "v1.0.0", true},
      {"example.com/incompat", "v2.0.0+incompatible", false},
      {"example.com/pseudo", "v0.0.0-20240102030405-abcdef123456", false},
  };
  EXPECT_EQ(parsed.pins, want);
}

TEST(parse_go_sum, names_each_malformed_line_and_keeps_the_others) {
  const struct {
    std::string line;
    expected_problem problem;
  } cases[] = {
      {"example.com/a v1.0.0", {"line 1: ", "expected MODULE VERSION HASH"}},
      {"example.com/a v1.0.0 h1:x= extra", {"line 1: ", "expected MODULE VERSION HASH"}},
      {"example.com/a v1.0.0 nohash", {"line 1: ", "h1:"}},
      {"example.com/a v1.0 h1:x=", {"line 1: ", "not a canonical semantic version"}},
      {"example.com/a master h1:x=", {"line 1: ", "\"master\""}},
      {"example.com/a/v2 v1.0.0 h1:x=", {"line 1: ", "example.com/a/v2@v1.0.0"}},
      {"-bad.example/a v1.0.0 h1:x=", {"line 1: ", "module path"}},
      {"example.com/a v1.0.0/go.mod/go.mod h1:x=", {"line 1: ", "version"}},
  };
  for (const auto& c : cases) {
    auto parsed = parse_go_sum(c.line + "\nexample.com/ok v1.0.0 h1:y=\n");
    expect_problems(parsed.problems, {c.problem}, c.line);
    EXPECT_EQ(parsed.pins, (std::vector<pin>{{"example.com/ok", "v1.0.0", false}})) << c.line;
  }
}

TEST(parse_go_mod, reads_requires_in_lines_and_blocks_with_comments) {
  const std::string text =
      "// a comment\n"
      "module example.com/prog\n"
      "\n"
      "go 1.21\n"
      "toolchain go1.21.0\n"
      "require example.com/one v1.0.0\n"
      "require (\n"
      "\texample.com/Upper v1.0.0-RC1\n"
      "\texample.com/indirect v0.3.0 // indirect\n"
      "\t\"example.com/quoted\" v1.1.0\n"
      "\n"
      ")\n"
      "require(\n"
      "\texample.com/tight v0.1.0\n"
      ")\n"
      "exclude example.com/one v0.9.0\n"
      "retract (\n"
      "\tv0.1.0 // broken\n"
      ")\n";
  auto parsed = parse_go_mod(text);
  EXPECT_TRUE(parsed.problems.empty()) << ::testing::PrintToString(parsed.problems);
  const std::vector<pin> want = {
      {"example.com/one", "v1.0.0", false},      {"example.com/Upper", "v1.0.0-RC1", false},
      {"example.com/indirect", "v0.3.0", false}, {"example.com/quoted", "v1.1.0", false},
      {"example.com/tight", "v0.1.0", false},
  };
  EXPECT_EQ(parsed.pins, want);
}

TEST(parse_go_mod, replacements_redirect_requires) {
  const std::string text =
      "module example.com/prog\n"
      "require (\n"
      "\texample.com/a v1.0.0\n"
      "\texample.com/b v1.0.0\n"
      "\texample.com/c v1.0.0\n"
      "\texample.com/d v1.0.0\n"
      ")\n"
      "replace example.com/a => example.com/fork v1.5.0\n"
      "replace (\n"
      "\texample.com/b v1.0.0 => ../b\n"
      "\texample.com/c v0.9.0 => ./c // another version than the required one\n"
      "\texample.com/d => /abs/d\n"
      ")\n";
  auto parsed = parse_go_mod(text);
  EXPECT_TRUE(parsed.problems.empty()) << ::testing::PrintToString(parsed.problems);
  const std::vector<pin> want = {
      {"example.com/c", "v1.0.0", false},
      {"example.com/fork", "v1.5.0", false},
  };
  EXPECT_EQ(parsed.pins, want);
}

TEST(parse_go_mod, names_each_malformed_line) {
  const struct {
    std::string text;
    std::vector<expected_problem> problems;
  } cases[] = {
      {"require example.com/a\n", {{"line 1: ", "require: expected MODULE VERSION"}}},
      {"require example.com/a v1 x\n", {{"line 1: ", "require: expected MODULE VERSION"}}},
      {"require example.com/a latest\n", {{"line 1: ", "not a canonical semantic version"}}},
      {"module m\nrequire \"example.com/a v1.0.0\n", {{"line 2: ", "unterminated quoted string"}}},
      {"require (\nexample.com/a v1.0.0\n", {{"a \"require (\" block", "not closed"}}},
      {"replace example.com/a v1.0.0\n", {{"line 1: ", "replace: expected"}}},
      {"replace example.com/a => example.com/b\n", {{"line 1: ", "neither MODULE VERSION nor"}}},
      {"replace example.com/a => example.com/b v1\n", {{"line 1: ", "replace: version"}}},
      {"replace => ./x\n", {{"line 1: ", "replace: expected"}}},
  };
  for (const auto& c : cases) {
    auto parsed = parse_go_mod(c.text);
    expect_problems(parsed.problems, c.problems, c.text);
  }
}

TEST(parse_go_work, reads_use_directories_and_replacements) {
  const std::string text =
      "go 1.22\n"
      "\n"
      "use ./app\n"
      "use (\n"
      "\t../lib // a sibling\n"
      "\t\"/abs/with space\"\n"
      ")\n"
      "replace example.com/a v1.0.0 => example.com/a v1.0.1\n"
      "replace example.com/b => ./b\n";
  auto work = parse_go_work(text);
  EXPECT_TRUE(work.replaced.problems.empty()) << ::testing::PrintToString(work.replaced.problems);
  EXPECT_EQ(work.use_dirs, (std::vector<std::string>{"./app", "../lib", "/abs/with space"}));
  EXPECT_EQ(work.replaced.pins, (std::vector<pin>{{"example.com/a", "v1.0.1", false}}));
}

TEST(parse_go_work, names_malformed_lines) {
  auto work = parse_go_work("use\nuse ./a ./b\nuse (\n");
  expect_problems(work.replaced.problems,
                  {{"a \"use (\" block", "not closed"},
                   {"line 1: ", "use: expected DIRECTORY"},
                   {"line 2: ", "use: expected DIRECTORY"}},
                  "go.work");
  EXPECT_TRUE(work.use_dirs.empty());
}

}  // namespace
}  // namespace gomodproxy::prefetch
