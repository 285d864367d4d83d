#include "direct/network_sandbox.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX kill(), not in <csignal>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): POSIX declares it so.
extern char** environ;

namespace gomodproxy::direct {
namespace {

constexpr int exit_bad_arguments = 2;
constexpr int exit_no_sandbox = 125;
constexpr int exit_cannot_run = 127;

// The go command opens a handful of connections at once (the go-get query, git's fetches); more
// than this wait in the listen backlog until one ends.
constexpr std::size_t max_relays = 64;
constexpr std::size_t relay_buffer_bytes = std::size_t{64} * 1024;

void complain(const std::string& what) {
  const std::string line = "gomodproxy direct-sandbox: " + what + "\n";
  [[maybe_unused]] auto written = ::write(2, line.data(), line.size());
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

// The failure of the system call `call` that has just set errno, worded as errno_text words it.
failure errno_failure(const char* call) {
  const int error = errno;
  return system_failure(error, std::string(call) + ": " + std::strerror(error));
}

// "http://127.0.0.1:PORT" (the guard's URL), the only form the guard hands out.
std::optional<sockaddr_in> parse_guard_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return std::nullopt;
  url.remove_prefix(scheme.size());
  if (url.ends_with('/')) url.remove_suffix(1);
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string host(url.substr(0, colon));
  const auto port_text = url.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) return std::nullopt;
  return address;
}

bool write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// A network namespace with only `lo`. Root (with CAP_SYS_ADMIN) needs no user namespace, and
// keeps its capabilities over the server's files that way; anyone else maps itself to itself.
[[nodiscard]] outcome_of<void> enter_network_namespace() {
  if (::geteuid() == 0 && ::unshare(CLONE_NEWNET) == 0) return {};
  const auto uid = ::getuid();
  const auto gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno_failure("unshare");
  if (!write_file("/proc/self/setgroups", "deny")) return errno_failure("/proc/self/setgroups");
  if (!write_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1")) {
    return errno_failure("/proc/self/uid_map");
  }
  if (!write_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1")) {
    return errno_failure("/proc/self/gid_map");
  }
  return {};
}

[[nodiscard]] outcome_of<void> bring_loopback_up() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_failure("socket");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  outcome_of<void> up;
  if (::ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
    up = errno_failure("SIOCGIFFLAGS lo");
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) up = errno_failure("SIOCSIFFLAGS lo");
  }
  ::close(fd);
  return up;
}

// One byte of data carrying one descriptor (SCM_RIGHTS), as both ends of the channel use it. It
// points into itself, so it is neither copied nor moved.
struct descriptor_message {
  descriptor_message() {
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
  }
  ~descriptor_message() = default;
  descriptor_message(const descriptor_message&) = delete;
  descriptor_message& operator=(const descriptor_message&) = delete;

  char byte = 0;
  iovec data{&byte, 1};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr message{};
};

bool send_descriptor(int channel, int fd) {
  descriptor_message envelope;
  auto& message = envelope.message;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  return ::sendmsg(channel, &message, MSG_NOSIGNAL) == 1;
}

int receive_descriptor(int channel) {
  descriptor_message envelope;
  auto& message = envelope.message;
  ssize_t n = 0;
  do {
    n = ::recvmsg(channel, &message, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return -1;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS) return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
  return fd;
}

// The child: enters the namespace, hands its listener to the parent (which stays outside and so
// can reach the guard) and becomes PROGRAM. Never returns. Every variable that named the guard
// (the proxy variables, and git's http.proxy and remote.origin.proxy given as GIT_CONFIG_VALUE_n)
// names the relay instead: the guard's own address does not exist inside the namespace.
[[noreturn]] void become_program(int channel, const std::vector<std::string>& command,
                                 std::string_view guard_url) {
  if (auto entered = enter_network_namespace(); !entered) {
    complain("no network namespace: " + entered.error().detail);
    ::_exit(exit_no_sandbox);
  }
  if (auto up = bring_loopback_up(); !up) {
    complain(up.error().detail);
    ::_exit(exit_no_sandbox);
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ||
      ::listen(listener, 128) ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length)) {
    complain(errno_text("listener"));
    ::_exit(exit_no_sandbox);
  }
  if (!send_descriptor(channel, listener)) {
    complain(errno_text("sendmsg"));
    ::_exit(exit_no_sandbox);
  }
  ::close(listener);
  ::close(channel);

  const std::string relay_url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const auto equals = text.find('=');
    const auto name = text.substr(0, equals);
    if (name == "HTTPS_PROXY" || name == "https_proxy" || name == "HTTP_PROXY" ||
        name == "http_proxy") {
      continue;
    }
    if (equals != std::string_view::npos && text.substr(equals + 1) == guard_url) {
      environment.push_back(std::string(name) + "=" + relay_url);
      continue;
    }
    environment.emplace_back(text);
  }
  for (const char* name : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}) {
    environment.push_back(std::string(name) + "=" + relay_url);
  }
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> arguments = command;
  std::vector<char*> argv;
  argv.reserve(arguments.size() + 1);
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  ::execve(argv[0], argv.data(), envp.data());
  complain(command[0] + ": " + std::strerror(errno));
  ::_exit(exit_cannot_run);
}

// One direction of a relayed connection: bytes read from `from` wait in `buffer` until `to`
// takes them; the end of `from` becomes a half-close of `to` once the buffer is drained.
struct direction {
  int from = -1;
  int to = -1;
  std::vector<char> buffer = std::vector<char>(relay_buffer_bytes);
  std::size_t begin = 0;
  std::size_t end = 0;
  bool ended = false;  ///< `from` reached its end
  bool shut = false;   ///< `to` was half-closed

  [[nodiscard]] bool wants_read() const { return !ended && begin == end; }
  [[nodiscard]] bool wants_write() const { return begin < end; }
  [[nodiscard]] bool finished() const { return shut; }

  // False when the connection failed and the relay must close.
  bool read() {
    const ssize_t n = ::recv(from, buffer.data(), relay_buffer_bytes, MSG_DONTWAIT);
    if (n > 0) {
      begin = 0;
      end = static_cast<std::size_t>(n);
    } else if (n == 0) {
      ended = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return false;
    }
    return true;
  }
  bool write() {
    const ssize_t n = ::send(to, buffer.data() + begin, end - begin, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      begin += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return false;
    }
    return true;
  }
  void shut_when_drained() {
    if (ended && begin == end && !shut) {
      ::shutdown(to, SHUT_WR);
      shut = true;
    }
  }
};

struct relay {
  int inner;  ///< accepted from the program, inside the namespace
  int outer;  ///< to the guard, outside
  direction up;
  direction down;
  bool failed = false;

  relay(int inner_fd, int outer_fd) : inner(inner_fd), outer(outer_fd) {
    up.from = down.to = inner;
    up.to = down.from = outer;
  }
  ~relay() {
    ::close(inner);
    ::close(outer);
  }
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  [[nodiscard]] bool done() const { return failed || (up.finished() && down.finished()); }
  [[nodiscard]] short events_for(int fd) const {
    short events = 0;
    if (fd == inner) {
      if (up.wants_read()) events |= POLLIN;
      if (down.wants_write()) events |= POLLOUT;
    } else {
      if (down.wants_read()) events |= POLLIN;
      if (up.wants_write()) events |= POLLOUT;
    }
    return events;
  }
  void serve(short inner_events, short outer_events) {
    auto step = [this](direction& d, short from_events, short to_events) {
      if (failed) return;
      if (d.wants_read() && (from_events & (POLLIN | POLLHUP | POLLERR)) && !d.read()) {
        failed = true;
        return;
      }
      if (d.wants_write() && (to_events & (POLLOUT | POLLHUP | POLLERR)) && !d.write()) {
        failed = true;
        return;
      }
      d.shut_when_drained();
    };
    step(up, inner_events, outer_events);
    step(down, outer_events, inner_events);
  }
};

int connect_guard_socket(const sockaddr_in& guard) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  // Not waited for: while it is under way the relay's reads and writes on it would block, so
  // poll holds them until it is done, and a failed connect fails the first of them.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&guard), sizeof(guard)) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return exit_cannot_run;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return exit_cannot_run;
  }
  return exit_code(status);
}

// The parent: relays every connection the program opens to the guard until the program exits.
int relay_until_exit(pid_t child, int listener, const sockaddr_in& guard) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  if (pidfd < 0) {
    complain(errno_text("pidfd_open"));
    ::kill(child, SIGKILL);
    wait_for(child);
    return exit_no_sandbox;
  }
  std::vector<std::unique_ptr<relay>> relays;
  std::vector<pollfd> watched;
  for (;;) {
    watched.clear();
    watched.push_back({pidfd, POLLIN, 0});
    watched.push_back({relays.size() < max_relays ? listener : -1, POLLIN, 0});
    for (const auto& r : relays) {
      // A descriptor with nothing to wait for is left out (fd -1), or its hang-up would wake
      // poll at once, over and over.
      const short inner_events = r->events_for(r->inner);
      const short outer_events = r->events_for(r->outer);
      watched.push_back({inner_events ? r->inner : -1, inner_events, 0});
      watched.push_back({outer_events ? r->outer : -1, outer_events, 0});
    }
    if (::poll(watched.data(), watched.size(), -1) < 0) {
      if (errno == EINTR) continue;
      complain(errno_text("poll"));
      break;
    }
    if (watched[0].revents != 0) break;
    for (std::size_t i = 0; i < relays.size(); ++i) {
      relays[i]->serve(watched[2 + 2 * i].revents, watched[3 + 2 * i].revents);
    }
    std::erase_if(relays, [](const auto& r) { return r->done(); });
    if (watched[1].revents & POLLIN) {
      const int inner = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (inner >= 0) {
        const int outer = connect_guard_socket(guard);
        if (outer < 0) {
          // Without the guard there is no way out; the program sees its connection closed.
          ::close(inner);
        } else {
          relays.push_back(std::make_unique<relay>(inner, outer));
        }
      }
    }
  }
  // The program has exited (or poll failed): the connections it left are of no further use.
  relays.clear();
  ::close(pidfd);
  return wait_for(child);
}

}  // namespace

int run_sandbox_command(const std::vector<std::string>& args) {
  std::string guard_url;
  std::vector<std::string> command;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--guard" && i + 1 < args.size()) {
      guard_url = args[++i];
    } else if (args[i] == "--") {
      command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    } else {
      complain("unexpected argument \"" + args[i] + "\"");
      return exit_bad_arguments;
    }
  }
  const auto guard = parse_guard_url(guard_url);
  if (!guard || command.empty()) {
    complain("usage: direct-sandbox --guard http://127.0.0.1:PORT -- PROGRAM [ARGS...]");
    return exit_bad_arguments;
  }
  std::array<int, 2> channel{};
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel.data()) != 0) {
    complain(errno_text("socketpair"));
    return exit_no_sandbox;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    complain(errno_text("fork"));
    return exit_no_sandbox;
  }
  if (child == 0) {
    ::close(channel[0]);
    become_program(channel[1], command, guard_url);
  }
  ::close(channel[1]);
  const int listener = receive_descriptor(channel[0]);
  ::close(channel[0]);
  // The relay must never die of a write to a connection the program closed.
  ::signal(SIGPIPE, SIG_IGN);
  if (listener < 0) return wait_for(child);  // the child said why on stderr
  const int status = relay_until_exit(child, listener, *guard);
  ::close(listener);
  return status;
}

outcome_of<void> check_sandbox() {
  std::array<int, 2> err_pipe{};
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    const int error = errno;
    return system_failure(error, errno_text("pipe"));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  // The guard's listening socket is open by now and not close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The program it runs is this binary's `version`: present wherever the server is.
  std::vector<std::string> arguments = {
      "gomodproxy", sandbox_command,  "--guard", "http://127.0.0.1:9",
      "--",         "/proc/self/exe", "version"};
  std::vector<char*> argv;
  argv.reserve(arguments.size() + 1);
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned =
      ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    ::close(err_pipe[0]);
    return system_failure(spawned, std::string("/proc/self/exe: ") + std::strerror(spawned));
  }
  std::string said;
  std::array<char, 1024> buffer{};
  for (;;) {
    const ssize_t n = ::read(err_pipe[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (said.size() < 4096) said.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(err_pipe[0]);
  const int status = wait_for(pid);
  if (status == 0) return {};
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  // Its lines name the subcommand, which the caller's message already does.
  if (constexpr std::string_view prefix = "gomodproxy direct-sandbox: "; said.starts_with(prefix)) {
    said.erase(0, prefix.size());
  }
  if (said.empty()) said = "exit status " + std::to_string(status);
  // The subcommand says why in words only (unshare refused, no user namespaces ...).
  return failure{boost::system::errc::make_error_code(boost::system::errc::not_supported),
                 std::move(said)};
}

process_spec sandboxed(process_spec spec, const std::string& guard_url) {
  std::string path_value;
  for (const auto& entry : spec.environment) {
    if (entry.starts_with("PATH=")) path_value = entry.substr(5);
  }
  auto program = find_program(spec.program, path_value);
  if (!program) return spec;
  std::vector<std::string> arguments = {sandbox_command, "--guard", guard_url, "--",
                                        program->string()};
  arguments.insert(arguments.end(), spec.arguments.begin(), spec.arguments.end());
  spec.program = "/proc/self/exe";
  spec.arguments = std::move(arguments);
  return spec;
}

}  // namespace gomodproxy::direct
