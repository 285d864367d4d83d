// run_process with real /bin/sh processes: output, exit codes, the deadline killing a whole
// process group (a background child included), spawn failures and an exact environment.
#include "direct/go_process.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

process_result run(process_spec spec, int threads = 2) {
  net::io_context io;
  auto future = net::co_spawn(io, run_process(io.get_executor(), std::move(spec)), net::use_future);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  for (auto& thread : pool) thread.join();
  return future.get();
}

process_spec shell(std::string script, std::chrono::milliseconds patience = 10s) {
  process_spec spec;
  spec.program = "/bin/sh";
  spec.arguments = {"-c", std::move(script)};
  spec.environment = {"PATH=/usr/bin:/bin"};
  spec.working_directory = std::filesystem::temp_directory_path();
  spec.deadline = std::chrono::steady_clock::now() + patience;
  return spec;
}

// A killed child reparented to init stays a zombie until init reaps it, which in a container
// may take a while; a zombie runs nothing, so it counts as gone.
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

TEST(GoProcess, CapturesStdoutStderrAndTheExitCode) {
  auto result = run(shell("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.exit_status, 3);
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_FALSE(result.out_truncated);
}

TEST(GoProcess, ExitZero) {
  auto result = run(shell("true"));
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(result.out, "");
}

TEST(GoProcess, ASignalEndingTheProcessShowsAs128PlusIt) {
  auto result = run(shell("kill -TERM $$"));
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.exit_status, 128 + SIGTERM);
}

TEST(GoProcess, OutputBeyondTheLimitIsDroppedButTheProcessRunsToItsEnd) {
  auto spec = shell("head -c 300000 /dev/zero; head -c 5000 /dev/zero >&2; exit 0");
  spec.max_stdout = 100000;
  spec.max_stderr = 1000;
  auto result = run(std::move(spec));
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(result.out.size(), 100000u);
  EXPECT_TRUE(result.out_truncated);
  EXPECT_EQ(result.err.size(), 1000u);
  EXPECT_TRUE(result.err_truncated);
}

TEST(GoProcess, StdinIsEmptyAndTheWorkingDirectoryIsTheOneGiven) {
  auto directory =
      std::filesystem::temp_directory_path() / ("go_process_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  auto spec = shell("cat; pwd");
  spec.working_directory = directory;
  auto result = run(std::move(spec));
  EXPECT_EQ(result.out, directory.string() + "\n");
  std::filesystem::remove_all(directory);
}

TEST(GoProcess, AHangingScriptIsKilledAtTheDeadlineWithItsBackgroundChild) {
  // The child's pid is printed before the script hangs; it must be gone once run() returns.
  const auto started = std::chrono::steady_clock::now();
  auto result = run(shell("sleep 300 & echo $!; sleep 300", 500ms));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.how, process_result::ending::killed_at_deadline);
  EXPECT_EQ(result.exit_status, 128 + SIGKILL);
  EXPECT_LT(took, 5s);
  ASSERT_FALSE(result.out.empty());
  const pid_t child = std::stoi(result.out);
  // The background sleep was reparented to init (or a subreaper), which reaps it; give it time.
  for (int i = 0; i < 100 && alive(child); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(alive(child)) << "background child " << child << " survived";
}

TEST(GoProcess, ABackgroundChildLeftBehindAfterAnExitIsKilledToo) {
  // The main process exits at once; its child holds stdout open and would keep it for 300 s.
  const auto started = std::chrono::steady_clock::now();
  auto result = run(shell("sleep 300 & echo $!; exit 0", 20s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.exit_status, 0);
  const pid_t child = std::stoi(result.out);
  for (int i = 0; i < 100 && alive(child); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(alive(child));
}

TEST(GoProcess, AServerThatStopsTakesItsProcessesWithIt) {
  // The io_context is destroyed while the process runs, as at shutdown: nothing may be left.
  auto pid_file = std::filesystem::temp_directory_path() /
                  ("go_process_test_pids_" + std::to_string(::getpid()));
  {
    net::io_context io;
    net::co_spawn(
        io,
        run_process(io.get_executor(),
                    shell("sleep 300 & echo $$ $! > " + pid_file.string() + "; sleep 300", 60s)),
        [](std::exception_ptr, process_result) {});
    auto written = [&pid_file] {
      std::error_code ec;
      return std::filesystem::exists(pid_file, ec) && std::filesystem::file_size(pid_file, ec) > 0;
    };
    for (int i = 0; i < 200 && !written(); ++i) io.run_for(20ms);
  }
  std::ifstream pids(pid_file);
  pid_t shell_pid = 0, child = 0;
  pids >> shell_pid >> child;
  std::filesystem::remove(pid_file);
  ASSERT_GT(shell_pid, 0);
  for (int i = 0; i < 100 && (alive(shell_pid) || alive(child)); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(alive(shell_pid));
  EXPECT_FALSE(alive(child));
}

TEST(GoProcess, AMissingBinaryIsASpawnFailure) {
  process_spec spec;
  spec.program = "/nonexistent/go";
  spec.environment = {"PATH=/usr/bin:/bin"};
  spec.deadline = std::chrono::steady_clock::now() + 5s;
  auto result = run(spec);
  EXPECT_EQ(result.how, process_result::ending::spawn_failed);
  EXPECT_NE(result.spawn_error.find("/nonexistent/go"), std::string::npos);

  spec.program = "no-such-go-binary";
  result = run(spec);
  EXPECT_EQ(result.how, process_result::ending::spawn_failed);
  EXPECT_EQ(result.spawn_error, "no-such-go-binary: not found on PATH");
}

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(
      std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{}));
}

// Pipes and the pidfd are closed however a run ends: an exit, a kill at the deadline, a spawn
// that fails (a missing binary, one the kernel cannot execute) and a server that stops.
TEST(GoProcess, NoDescriptorIsLeftOpenOnAnyPath) {
  const auto not_executable = std::filesystem::temp_directory_path() /
                              ("go_process_test_noexec_" + std::to_string(::getpid()));
  {
    std::ofstream(not_executable) << "\x7f"
                                  << "ELF but not really\n";
  }
  std::filesystem::permissions(not_executable, std::filesystem::perms::owner_all);
  auto missing = shell("");
  missing.program = "/nonexistent/go";
  auto unrunnable = shell("");
  unrunnable.program = not_executable.string();
  const auto before = open_descriptors();
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(run(shell("echo out; echo err >&2")).how, process_result::ending::exited);
    EXPECT_EQ(run(shell("sleep 300", 200ms)).how, process_result::ending::killed_at_deadline);
    EXPECT_EQ(run(missing).how, process_result::ending::spawn_failed);
    EXPECT_EQ(run(unrunnable).how, process_result::ending::spawn_failed);
    {
      net::io_context io;
      net::co_spawn(io, run_process(io.get_executor(), shell("sleep 300", 60s)),
                    [](std::exception_ptr, process_result) {});
      io.run_for(100ms);
    }
  }
  std::filesystem::remove(not_executable);
  EXPECT_EQ(open_descriptors(), before);
}

TEST(GoProcess, ANameIsLookedUpOnTheChildsPathNotOnOurs) {
  process_spec spec;
  spec.program = "sh";
  spec.arguments = {"-c", "echo found"};
  spec.environment = {"PATH=/nonexistent"};
  spec.deadline = std::chrono::steady_clock::now() + 5s;
  EXPECT_EQ(run(spec).how, process_result::ending::spawn_failed);
  spec.environment = {"PATH=/nonexistent:/bin"};
  auto result = run(spec);
  EXPECT_EQ(result.how, process_result::ending::exited);
  EXPECT_EQ(result.out, "found\n");
}

TEST(GoProcess, TheEnvironmentIsExactlyTheOneGiven) {
  ::setenv("GO_PROCESS_TEST_LEAK", "inherited", 1);
  process_spec spec;
  spec.program = "/usr/bin/env";
  spec.environment = {"A=1", "GOPROXY=direct", "EMPTY="};
  spec.deadline = std::chrono::steady_clock::now() + 5s;
  auto result = run(spec);
  ::unsetenv("GO_PROCESS_TEST_LEAK");
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(result.out, "A=1\nGOPROXY=direct\nEMPTY=\n");
}

TEST(GoProcess, ManyAtOnceOnFewThreads) {
  net::io_context io;
  std::vector<std::future<process_result>> results;
  for (int i = 0; i < 16; ++i) {
    results.push_back(net::co_spawn(
        io, run_process(io.get_executor(), shell("echo " + std::to_string(i) + "; sleep 0.1")),
        net::use_future));
  }
  std::thread second([&io] { io.run(); });
  io.run();
  second.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(results[i].get().out, std::to_string(i) + "\n");
}

TEST(GoProcess, FindProgram) {
  EXPECT_EQ(find_program("sh", "/nonexistent::/bin"), std::filesystem::path("/bin/sh"));
  EXPECT_EQ(find_program("sh", ""), std::nullopt);
  EXPECT_EQ(find_program("/bin/sh", ""), std::filesystem::path("/bin/sh"));
  auto plain = std::filesystem::temp_directory_path() /
               ("go_process_test_plain_" + std::to_string(::getpid()));
  { std::ofstream(plain) << "not a program\n"; }
  std::filesystem::permissions(plain, std::filesystem::perms::owner_read);
  EXPECT_EQ(find_program(plain.string(), "/bin"), std::nullopt);
  std::filesystem::remove(plain);
  EXPECT_EQ(find_program("", "/bin"), std::nullopt);
}

}  // namespace
}  // namespace gomodproxy::direct
