#include "direct/go_process.hpp"

#include <fcntl.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX kill(), not in <csignal>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <memory>

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using namespace net::experimental::awaitable_operators;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// After the process exits and its group is killed, pipes should close at once; a descendant
// that left the group (setsid) could hold them open forever, so reading stops after this.
constexpr std::chrono::seconds pipe_grace{2};

bool executable_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  // By mode bits, not access(): root passes access(X_OK) for files nobody may execute.
  return !ec && std::filesystem::is_regular_file(status) &&
         (status.permissions() &
          (std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec |
           std::filesystem::perms::others_exec)) != std::filesystem::perms::none;
}

struct file_actions {
  posix_spawn_file_actions_t actions{};
  file_actions() { posix_spawn_file_actions_init(&actions); }
  ~file_actions() { posix_spawn_file_actions_destroy(&actions); }
  file_actions(const file_actions&) = delete;
  file_actions& operator=(const file_actions&) = delete;
};

struct spawn_attributes {
  posix_spawnattr_t attributes{};
  spawn_attributes() { posix_spawnattr_init(&attributes); }
  ~spawn_attributes() { posix_spawnattr_destroy(&attributes); }
  spawn_attributes(const spawn_attributes&) = delete;
  spawn_attributes& operator=(const spawn_attributes&) = delete;
};

// Pipe ends, closed on scope exit unless released to a stream_descriptor.
struct owned_fd {
  int fd = -1;
  owned_fd() = default;
  explicit owned_fd(int descriptor) : fd(descriptor) {}
  ~owned_fd() {
    if (fd >= 0) ::close(fd);
  }
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  int release() { return std::exchange(fd, -1); }
  void reset() {
    if (fd >= 0) ::close(std::exchange(fd, -1));
  }
};

std::string environment_value(const std::vector<std::string>& environment, std::string_view name) {
  for (const auto& entry : environment) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return {};
}

// Reads `pipe` to its end (or until it is cancelled), keeping at most `limit` bytes.
net::awaitable<void> read_all(net::posix::stream_descriptor& pipe, std::string& kept,
                              std::size_t limit, bool& truncated) {
  std::array<char, 65536> buffer{};
  for (;;) {
    auto [ec, n] = co_await pipe.async_read_some(net::buffer(buffer), use_tuple);
    const std::size_t room = limit - std::min(limit, kept.size());
    kept.append(buffer.data(), std::min(n, room));
    if (n > room) truncated = true;
    if (ec) co_return;
  }
}

struct running_process {
  pid_t pid = 0;
  bool exited = false;
  bool killed_at_deadline = false;
  int wait_status = 0;
};

net::awaitable<process_result> run_on_strand(process_spec spec) {
  auto executor = co_await net::this_coro::executor;
  process_result result;
  const auto started = std::chrono::steady_clock::now();

  auto program = find_program(spec.program, environment_value(spec.environment, "PATH"));
  if (!program) {
    result.spawn_error = spec.program + ": not found" +
                         (spec.program.find('/') == std::string::npos ? " on PATH" : "");
    co_return result;
  }

  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    co_return result;
  }
  owned_fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    co_return result;
  }
  owned_fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  file_actions actions;
  posix_spawn_file_actions_addopen(&actions.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions.actions, out_write.fd, 1);
  posix_spawn_file_actions_adddup2(&actions.actions, err_write.fd, 2);
  // Asio's sockets are not close-on-exec: without this the go command and every git it starts
  // would hold the server's listening socket and client connections.
  posix_spawn_file_actions_addclosefrom_np(&actions.actions, 3);
  if (!spec.working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions.actions, spec.working_directory.c_str());
  }
  spawn_attributes attributes;
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t all_signals;
  sigfillset(&all_signals);
  posix_spawnattr_setflags(&attributes.attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes.attributes, 0);
  posix_spawnattr_setsigmask(&attributes.attributes, &no_signals);
  posix_spawnattr_setsigdefault(&attributes.attributes, &all_signals);

  std::vector<char*> argv;
  argv.push_back(spec.program.data());
  for (auto& argument : spec.arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& entry : spec.environment) envp.push_back(entry.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, program->c_str(), &actions.actions,
                                    &attributes.attributes, argv.data(), envp.data());
  if (spawned != 0) {
    result.spawn_error = program->string() + ": " + std::strerror(spawned);
    co_return result;
  }
  // Only the child may hold the write ends, or the reads below would never see the end.
  out_write.reset();
  err_write.reset();

  auto process = std::make_shared<running_process>();
  process->pid = pid;
  // When the server stops, this frame is destroyed without running to its end: the group must
  // not outlive it, nor the leader stay a zombie.
  struct reap_on_unwind {
    std::shared_ptr<running_process> process;
    explicit reap_on_unwind(std::shared_ptr<running_process> p) : process(std::move(p)) {}
    reap_on_unwind(const reap_on_unwind&) = delete;
    reap_on_unwind& operator=(const reap_on_unwind&) = delete;
    ~reap_on_unwind() {
      if (process->exited) return;
      ::kill(-process->pid, SIGKILL);
      int ignored = 0;
      while (::waitpid(process->pid, &ignored, 0) < 0 && errno == EINTR) {
      }
    }
  } reaper{process};
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    // Without a pidfd the exit cannot be awaited without blocking a thread; the reaper kills it.
    result.spawn_error = std::string("pidfd_open: ") + std::strerror(errno);
    co_return result;
  }
  net::posix::stream_descriptor exit_watch(executor, pidfd);
  auto out = std::make_shared<net::posix::stream_descriptor>(executor, out_read.release());
  auto err = std::make_shared<net::posix::stream_descriptor>(executor, err_read.release());

  net::steady_timer deadline_timer(executor, spec.deadline);
  deadline_timer.async_wait([process](const boost::system::error_code& ec) {
    if (ec || process->exited) return;
    process->killed_at_deadline = true;
    ::kill(-process->pid, SIGKILL);
  });
  auto grace_timer = std::make_shared<net::steady_timer>(executor);

  auto wait_exit = [&]() -> net::awaitable<void> {
    co_await exit_watch.async_wait(net::posix::stream_descriptor::wait_read, use_tuple);
    // The leader is a zombie until reaped, so its group id cannot have been reused yet.
    ::kill(-process->pid, SIGKILL);
    int status = 0;
    while (::waitpid(process->pid, &status, 0) < 0 && errno == EINTR) {
    }
    process->exited = true;
    process->wait_status = status;
    deadline_timer.cancel();
    grace_timer->expires_after(pipe_grace);
    grace_timer->async_wait([out, err](const boost::system::error_code& ec) {
      if (ec) return;
      boost::system::error_code ignored;
      out->cancel(ignored);
      err->cancel(ignored);
    });
  };
  co_await (read_all(*out, result.out, spec.max_stdout, result.out_truncated) &&
            read_all(*err, result.err, spec.max_stderr, result.err_truncated) && wait_exit());
  grace_timer->cancel();

  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (process->killed_at_deadline) {
    result.how = process_result::ending::killed_at_deadline;
  } else {
    result.how = process_result::ending::exited;
  }
  if (WIFEXITED(process->wait_status)) {
    result.exit_status = WEXITSTATUS(process->wait_status);
  } else if (WIFSIGNALED(process->wait_status)) {
    result.signal = WTERMSIG(process->wait_status);
    result.exit_status = 128 + result.signal;
  }
  co_return result;
}

}  // namespace

std::optional<std::filesystem::path> find_program(const std::string& name,
                                                  const std::string& path_value) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (executable_file(name)) return std::filesystem::path(name);
    return std::nullopt;
  }
  std::string_view rest = path_value;
  while (true) {
    const auto colon = rest.find(':');
    std::string_view directory = rest.substr(0, colon);
    // An empty PATH entry means the working directory, which is never where go lives here.
    if (!directory.empty()) {
      auto candidate = std::filesystem::path(directory) / name;
      if (executable_file(candidate)) return candidate;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

net::awaitable<process_result> run_process(net::any_io_executor executor, process_spec spec) {
  co_return co_await net::co_spawn(net::make_strand(executor), run_on_strand(std::move(spec)),
                                   net::use_awaitable);
}

}  // namespace gomodproxy::direct
