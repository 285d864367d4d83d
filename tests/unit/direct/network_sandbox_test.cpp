// sandboxed(): how a process_spec is rewritten to run its program through the hidden
// `direct-sandbox` subcommand of this binary, and when it is left alone.
#include "direct/network_sandbox.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::direct {
namespace {

process_spec spec_for(std::string program, std::string path) {
  process_spec spec;
  spec.program = std::move(program);
  spec.arguments = {"list", "-m", "-json", "example.com/m@latest"};
  spec.environment = {"HOME=/nonexistent", "HTTPS_PROXY=http://127.0.0.1:4000",
                      "PATH=" + std::move(path)};
  spec.working_directory = "/tmp";
  return spec;
}

TEST(NetworkSandbox, RunsTheProgramFoundOnTheChildsPathThroughThisBinary) {
  auto wrapped = sandboxed(spec_for("sh", "/nonexistent:/bin"), "http://127.0.0.1:4000");
  EXPECT_EQ(wrapped.program, "/proc/self/exe");
  const std::vector<std::string> expected = {"direct-sandbox",
                                             "--guard",
                                             "http://127.0.0.1:4000",
                                             "--",
                                             "/bin/sh",
                                             "list",
                                             "-m",
                                             "-json",
                                             "example.com/m@latest"};
  EXPECT_EQ(wrapped.arguments, expected);
  // What the child runs with is unchanged: the sandbox rewrites only the proxy variables.
  EXPECT_EQ(wrapped.environment, spec_for("sh", "/nonexistent:/bin").environment);
  EXPECT_EQ(wrapped.working_directory, "/tmp");
}

TEST(NetworkSandbox, AnAbsoluteProgramIsKeptAsItIs) {
  auto wrapped = sandboxed(spec_for("/bin/sh", ""), "http://127.0.0.1:4000");
  ASSERT_EQ(wrapped.arguments.size(), 9u);
  EXPECT_EQ(wrapped.arguments[4], "/bin/sh");
}

TEST(NetworkSandbox, AProgramThatIsNotFoundIsLeftForRunProcessToReport) {
  auto spec = spec_for("no-such-go-binary", "/nonexistent:/bin");
  auto wrapped = sandboxed(spec, "http://127.0.0.1:4000");
  EXPECT_EQ(wrapped.program, "no-such-go-binary");
  EXPECT_EQ(wrapped.arguments, spec.arguments);
}

}  // namespace
}  // namespace gomodproxy::direct
