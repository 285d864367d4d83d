// Runs one subprocess for the direct fetcher (the go command and the git it starts): its own
// process group, an environment built by the caller, output captured within limits, the exit
// waited for asynchronously, and the whole group killed at the deadline and after the exit.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace gomodproxy::direct {

struct process_spec {
  /// A path, or a name looked up on the PATH of `environment` (not of this process).
  std::string program;
  std::vector<std::string> arguments;    ///< argv[1..]
  std::vector<std::string> environment;  ///< "NAME=value" entries: the child's whole environment
  std::filesystem::path working_directory;
  /// The process group is killed (SIGKILL) when this passes.
  std::chrono::steady_clock::time_point deadline;
  std::size_t max_stdout = 4 << 20;   ///< bytes kept; the rest is read and dropped. Default: 4 MiB
  std::size_t max_stderr = 64 << 10;  ///< Default: 64 KiB
};

struct process_result {
  enum class ending {
    exited,              ///< ran to its end; exit_status says how
    killed_at_deadline,  ///< the deadline passed and the group was killed
    spawn_failed,        ///< never started; spawn_error says why
  };
  ending how = ending::spawn_failed;
  /// The exit code, or 128 + the signal number when a signal ended it.
  int exit_status = -1;
  /// The signal that ended it (SIGKILL at the deadline, or one from elsewhere), else 0.
  int signal = 0;
  std::string spawn_error;  ///< "go: not found on PATH", "/x/go: No such file or directory"
  std::string out;          ///< stdout, at most max_stdout bytes
  std::string err;          ///< stderr, at most max_stderr bytes
  bool out_truncated = false;
  bool err_truncated = false;
  std::chrono::milliseconds duration{0};
};

/// Runs `spec` to its end: stdin is /dev/null, every other descriptor of this process is
/// closed in the child, and its signal dispositions and mask are the defaults. No thread is
/// blocked while it runs (the exit is watched through a pidfd). After the process exits its
/// group is killed too, so git processes it left behind do not outlive it. Never throws for a
/// failure of the process; the result says what happened. Thread-safe: each call has its own
/// strand on `executor`.
boost::asio::awaitable<process_result> run_process(boost::asio::any_io_executor executor,
                                                   process_spec spec);

/// `name` found on `path_value` (a PATH value) as an executable file, or `name` itself when it
/// holds a '/' and is executable; nullopt when neither.
std::optional<std::filesystem::path> find_program(const std::string& name,
                                                  const std::string& path_value);

}  // namespace gomodproxy::direct
