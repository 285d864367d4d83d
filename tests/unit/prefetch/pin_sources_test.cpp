#include "prefetch/pin_sources.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace gomodproxy::prefetch {

// Defined in pin_files_test.cpp.
void PrintTo(const pin& p, std::ostream* out);

namespace {

namespace fs = std::filesystem;

class pin_sources_test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("prefetch_sources_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path write(const std::string& relative, const std::string& text) {
    auto path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  fs::path root_;
};

TEST_F(pin_sources_test, a_directory_yields_each_version_once_and_skips_what_go_skips) {
  write("go.mod", "module example.com/top\nrequire example.com/a v1.0.0\n");
  write("go.sum",
        "example.com/a v1.0.0/go.mod h1:x=\n"
        "example.com/b v1.0.0/go.mod h1:x=\n");
  write("sub/go.sum", "example.com/b v1.0.0 h1:x=\nexample.com/b v1.0.0/go.mod h1:x=\n");
  for (const auto* skipped : {"vendor", "testdata", ".git", "_build", "sub/vendor"}) {
    write(std::string(skipped) + "/go.mod", "module x\nrequire example.com/skipped v1.0.0\n");
  }
  write("README.md", "require example.com/skipped v1.0.0\n");
  auto collected = collect_pins({root_.string()});
  ASSERT_TRUE(collected) << collected.error().detail;
  const auto* pins = &*collected;
  EXPECT_TRUE(pins->problems.empty()) << ::testing::PrintToString(pins->problems);
  EXPECT_EQ(pins->files.size(), 3u) << ::testing::PrintToString(pins->files);
  const std::vector<pin> want = {
      {"example.com/a", "v1.0.0", false},
      {"example.com/b", "v1.0.0", false},
  };
  EXPECT_EQ(pins->pins, want);
}

TEST_F(pin_sources_test, a_go_work_brings_in_its_modules_once) {
  write("ws/go.work", "go 1.22\nuse (\n\t./app\n\t../lib\n\t./missing\n)\n");
  write("ws/app/go.mod", "module example.com/app\nrequire example.com/a v1.0.0\n");
  write("ws/app/go.sum", "example.com/a v1.0.0 h1:x=\nexample.com/c v1.0.0/go.mod h1:x=\n");
  write("lib/go.mod", "module example.com/lib\nrequire example.com/d v1.2.0\n");
  auto collected =
      collect_pins({(root_ / "ws/go.work").string(), (root_ / "ws/app/go.mod").string()});
  ASSERT_TRUE(collected) << collected.error().detail;
  const auto* pins = &*collected;
  EXPECT_EQ(pins->files.size(), 4u) << ::testing::PrintToString(pins->files);
  ASSERT_EQ(pins->problems.size(), 1u);
  EXPECT_NE(pins->problems[0].find("use \"./missing\": no go.mod there"), std::string::npos)
      << pins->problems[0];
  const std::vector<pin> want = {
      {"example.com/a", "v1.0.0", false},
      {"example.com/c", "v1.0.0", true},
      {"example.com/d", "v1.2.0", false},
  };
  EXPECT_EQ(pins->pins, want);
}

TEST_F(pin_sources_test, problems_name_the_file_and_line) {
  auto sum = write("go.sum", "example.com/a v1.0.0 h1:x=\nbroken\n");
  auto collected = collect_pins({sum.string()});
  ASSERT_TRUE(collected) << collected.error().detail;
  const auto* pins = &*collected;
  ASSERT_EQ(pins->problems.size(), 1u);
  EXPECT_EQ(pins->problems[0], sum.string() + ": line 2: expected MODULE VERSION HASH");
}

TEST_F(pin_sources_test, a_directory_without_pin_files_is_a_problem) {
  write("vendor/go.mod", "module x\n");
  write("notes.txt", "x");
  auto collected = collect_pins({root_.string()});
  ASSERT_TRUE(collected) << collected.error().detail;
  const auto* pins = &*collected;
  EXPECT_TRUE(pins->pins.empty());
  EXPECT_EQ(pins->problems,
            std::vector<std::string>{root_.string() + ": no go.mod, go.sum or go.work under it"});
}

TEST_F(pin_sources_test, refuses_a_missing_path_or_another_kind_of_file) {
  auto other = write("notes.txt", "x");
  for (const auto& argument : {(root_ / "absent").string(), other.string()}) {
    auto collected = collect_pins({argument});
    ASSERT_FALSE(collected) << argument;
    EXPECT_EQ(collected.error().code, errc::invalid_request);
    const auto& problem = collected.error().detail;
    EXPECT_TRUE(problem.starts_with("gomodproxy prefetch: \"" + argument + "\": ")) << problem;
  }
}

}  // namespace
}  // namespace gomodproxy::prefetch
