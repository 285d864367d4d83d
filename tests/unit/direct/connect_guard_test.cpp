// The CONNECT guard over real sockets on 127.0.0.1: refusals (403 for refused addresses, named or
// literal, 405 for other methods, 400 for malformed heads) are counted, logged without userinfo
// and open no connection; with an address check that allows loopback (the same seam production
// fills with check_address) a tunnel to an echo server carries bytes both ways, and the head,
// idle and connection limits, connect failures and stop() end connections.
#include "direct/connect_guard.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "direct/address_policy.hpp"
#include "tests/support/cpp/loopback_dns_server.hpp"

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// A file descriptor that closes itself.
class socket_fd {
 public:
  explicit socket_fd(int fd = -1) : fd_(fd) {}
  socket_fd(socket_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  socket_fd& operator=(socket_fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~socket_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

std::uint16_t port_of(const std::string& url) {
  return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// -1 when nothing listens there.
socket_fd connect_to(std::uint16_t port) {
  socket_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return socket_fd();
  }
  return fd;
}

void send_all(const socket_fd& fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << "send failed";
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

struct received {
  std::string bytes;
  bool closed = false;  // the peer ended the stream (or reset it)
};

// Reads until `enough` bytes arrived, the peer closed, or `limit` passed.
received receive(const socket_fd& fd, std::size_t enough, std::chrono::milliseconds limit = 5s) {
  received out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char chunk[16 * 1024];
  while (out.bytes.size() < enough) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    // Never past `enough`: what follows is the next read's.
    const auto n = ::recv(fd.get(), chunk, std::min(sizeof chunk, enough - out.bytes.size()), 0);
    if (n <= 0) {
      out.closed = true;
      break;
    }
    out.bytes.append(chunk, static_cast<std::size_t>(n));
  }
  return out;
}

// Everything up to the end of the stream (an error answer ends with the connection).
received receive_all(const socket_fd& fd, std::chrono::milliseconds limit = 5s) {
  return receive(fd, std::string::npos, limit);
}

// A TCP server on 127.0.0.1 that echoes every byte back and counts the connections it accepted;
// it closes its side once the client's stream ends.
class echo_server {
 public:
  echo_server() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    auto address = loopback(0);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      throw std::runtime_error("echo server: bind/listen");
    }
    socklen_t length = sizeof address;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~echo_server() {
    stopping_ = true;
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] int accepted() const { return accepted_.load(); }
  /// Connections whose client side ended (end of stream or error) and were closed here.
  [[nodiscard]] int finished() const { return finished_.load(); }

 private:
  void serve() {
    std::vector<socket_fd> open;
    char chunk[16 * 1024];
    while (!stopping_) {
      std::vector<pollfd> polled{{listener_.get(), POLLIN, 0}};
      for (const auto& fd : open) polled.push_back({fd.get(), POLLIN, 0});
      if (::poll(polled.data(), polled.size(), 20) <= 0) continue;
      if (polled[0].revents & POLLIN) {
        socket_fd accepted(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (accepted.get() >= 0) {
          ++accepted_;
          open.push_back(std::move(accepted));
        }
      }
      for (std::size_t i = 1; i < polled.size(); ++i) {
        if (!(polled[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto& fd = open[i - 1];
        const auto n = ::recv(fd.get(), chunk, sizeof chunk, 0);
        if (n <= 0) {
          ++finished_;  // before the close the client may be waiting for
          fd = socket_fd();
          continue;
        }
        for (std::size_t sent = 0; sent < static_cast<std::size_t>(n);) {
          const auto m =
              ::send(fd.get(), chunk + sent, static_cast<std::size_t>(n) - sent, MSG_NOSIGNAL);
          if (m <= 0) break;
          sent += static_cast<std::size_t>(m);
        }
      }
      std::erase_if(open, [](const socket_fd& fd) { return fd.get() < 0; });
    }
  }

  socket_fd listener_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> finished_{0};
  std::thread thread_;
};

// The io_context the guard runs on, with two threads as production has several.
class running_io {
 public:
  running_io() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~running_io() {
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }
  net::any_io_executor executor() { return io_.get_executor(); }

 private:
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_{io_.get_executor()};
  std::vector<std::thread> threads_;
};

// Log lines written while it lives.
class captured_log {
 public:
  captured_log() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~captured_log() { spdlog::set_default_logger(previous_); }
  [[nodiscard]] std::string text() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

connect_guard::address_check production_check() {
  return [own = local_addresses()](const net::ip::address& address) {
    return check_address(address, own);
  };
}

// Loopback IPv4 is what the test servers listen on; everything else as in production.
connect_guard::address_check loopback_allowed() {
  return [](const net::ip::address& address) -> outcome_of<void> {
    if (address == net::ip::make_address("127.0.0.1")) return {};
    return check_address(address, {});
  };
}

std::string connect_head(const std::string& target) {
  return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nUser-Agent: test\r\n\r\n";
}

// The answer to one request head sent on a fresh connection, read until the guard closes it.
std::string answer_to(std::uint16_t guard_port, std::string_view head) {
  auto client = connect_to(guard_port);
  EXPECT_GE(client.get(), 0);
  send_all(client, head);
  auto answer = receive_all(client);
  EXPECT_TRUE(answer.closed) << answer.bytes;
  return answer.bytes;
}

std::string status_line(const std::string& answer) { return answer.substr(0, answer.find("\r\n")); }

std::string body(const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); }

constexpr std::string_view established = "HTTP/1.1 200 Connection established\r\n\r\n";

TEST(connect_guard, refuses_loopback_addresses_with_403_and_opens_no_connection) {
  captured_log log;  // outlives the io threads that write to it
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, production_check());
  const auto port = port_of(guard.start());
  const auto p = std::to_string(target.port());

  struct row {
    std::string target;
    std::string reason;
  };
  for (const auto& [connect_target, reason] : std::vector<row>{
           {"127.0.0.1:" + p, "127.0.0.1 is loopback"},
           {"[::1]:" + p, "::1 is loopback"},
           {"[::ffff:127.0.0.1]:" + p, "::ffff:127.0.0.1 is loopback, IPv4-mapped"},
           {"localhost:" + p, "localhost resolves to 127.0.0.1 (loopback)"},
           {"target.localhost:" + p, "target.localhost resolves to 127.0.0.1 (loopback)"},
       }) {
    const auto answer = answer_to(port, connect_head(connect_target));
    EXPECT_EQ(status_line(answer), "HTTP/1.1 403 Forbidden: " + reason) << connect_target;
    EXPECT_EQ(body(answer), reason + "\n") << connect_target;
    EXPECT_NE(log.text().find("refused CONNECT " + connect_target + ": " + reason),
              std::string::npos)
        << log.text();
  }
  EXPECT_EQ(guard.refused(), 5u);
  EXPECT_EQ(guard.connected(), 0u);
  std::this_thread::sleep_for(100ms);  // an accept the echo server's poll has not seen yet
  EXPECT_EQ(target.accepted(), 0);
}

TEST(connect_guard, other_spellings_of_loopback_never_reach_it) {
  // The C library takes these for 127.0.0.1; whatever the lookup makes of them (a number, or a
  // name the name server does not know), the guard connects only to an address it checked.
  test::loopback_dns_server dns_server({}, {});
  upstream::dns_resolver dns({.cache = {}, .name_servers = dns_server.address()});
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, production_check());
  const auto port = port_of(guard.start());
  const auto p = std::to_string(target.port());
  for (const std::string host : {"127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "127.0.0.1.",
                                 "localhost.", "LOCALHOST"}) {
    const auto answer = answer_to(port, connect_head(host + ":" + p));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 403 ") || answer.starts_with("HTTP/1.1 502 "))
        << host << ": " << status_line(answer);
  }
  EXPECT_EQ(guard.connected(), 0u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(target.accepted(), 0);
}

TEST(connect_guard, the_same_name_is_tunnelled_when_the_check_allows_its_address) {
  // The control for the test above: the name does reach the echo server when nothing refuses it,
  // so the absent accept there is the guard's doing.
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  auto client = connect_to(port_of(guard.start()));
  // target.localhost resolves to 127.0.0.1 and ::1; the check refuses ::1, so nothing is opened.
  send_all(client, connect_head("target.localhost:" + std::to_string(target.port())));
  EXPECT_EQ(status_line(receive_all(client).bytes),
            "HTTP/1.1 403 Forbidden: target.localhost resolves to ::1 (loopback)");
  EXPECT_EQ(target.accepted(), 0);

  auto second = connect_to(port_of(guard.start()));
  send_all(second, connect_head("127.0.0.1:" + std::to_string(target.port())));
  EXPECT_EQ(receive(second, established.size()).bytes, established);
  send_all(second, "hello");
  EXPECT_EQ(receive(second, 5).bytes, "hello");
  EXPECT_EQ(target.accepted(), 1);
}

TEST(connect_guard, a_tunnel_carries_bytes_both_ways_and_is_counted) {
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  auto client = connect_to(port_of(guard.start()));
  // Bytes sent right behind the head (a client that does not wait for the 200) belong to the
  // tunnel too.
  send_all(client, connect_head("127.0.0.1:" + std::to_string(target.port())) + "early ");
  EXPECT_EQ(receive(client, established.size()).bytes, established);
  EXPECT_EQ(receive(client, 6).bytes, "early ");

  std::string large(1 << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7 % 251);
  std::thread sender([&] { send_all(client, large); });
  const auto echoed = receive(client, large.size(), 10s);
  sender.join();
  EXPECT_EQ(echoed.bytes.size(), large.size());
  EXPECT_TRUE(echoed.bytes == large);
  EXPECT_EQ(guard.connected(), 1u);
  EXPECT_EQ(guard.refused(), 0u);

  // The client's end of stream reaches the server, whose close comes back.
  ::shutdown(client.get(), SHUT_WR);
  EXPECT_TRUE(receive_all(client).closed);
  EXPECT_EQ(target.finished(), 1);
}

TEST(connect_guard, a_half_closed_tunnel_still_carries_the_answer_back) {
  // An origin that answers only once the client's stream has ended, as a server reading a whole
  // request body does: the client's end of stream must reach it as a half-close, not a close.
  socket_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = loopback(0);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  std::string heard;
  std::thread origin([&] {
    socket_fd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (peer.get() < 0) return;
    heard = receive_all(peer).bytes;
    send_all(peer, "heard " + std::to_string(heard.size()) + " bytes");
  });

  upstream::dns_resolver dns;
  running_io io;  // its threads end before the resolver goes
  connect_guard guard(io.executor(), dns, loopback_allowed());
  auto client = connect_to(port_of(guard.start()));
  send_all(client, connect_head("127.0.0.1:" + std::to_string(ntohs(address.sin_port))));
  ASSERT_EQ(receive(client, established.size()).bytes, established);
  send_all(client, "request");
  ::shutdown(client.get(), SHUT_WR);
  const auto answer = receive_all(client);
  origin.join();
  EXPECT_EQ(heard, "request");
  EXPECT_EQ(answer.bytes, "heard 7 bytes");
  EXPECT_TRUE(answer.closed);
}

TEST(connect_guard, other_methods_are_answered_405_and_logged_without_userinfo) {
  captured_log log;  // outlives the io threads that write to it
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  const auto port = port_of(guard.start());
  const auto answer =
      answer_to(port, "GET http://user:hunter2@127.0.0.1:" + std::to_string(target.port()) +
                          "/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(status_line(answer),
            "HTTP/1.1 405 Method Not Allowed: only CONNECT tunnels are served: public module "
            "paths are fetched over https");
  EXPECT_NE(answer.find("\r\nAllow: CONNECT\r\n"), std::string::npos);
  EXPECT_EQ(guard.refused(), 1u);
  EXPECT_EQ(target.accepted(), 0);
  EXPECT_NE(log.text().find("refused GET http://127.0.0.1:"), std::string::npos) << log.text();
  EXPECT_EQ(log.text().find("hunter2"), std::string::npos) << log.text();
}

TEST(connect_guard, malformed_heads_are_answered_400) {
  captured_log log;  // outlives the io threads that write to it
  upstream::dns_resolver dns;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  const auto port = port_of(guard.start());
  struct row {
    std::string head;
    std::string reason;
  };
  const std::vector<row> rows{
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
       "malformed request head"},
      {"CONNECT example.com:443\r\n\r\n", "malformed request head"},
      {"CONNECT example.com:443 HTTP/1.1\r\nno colon here\r\n\r\n", "malformed request head"},
      {"CONNECT  example.com:443 HTTP/1.1\r\n\r\n", "malformed request head"},
      {"CONNECT example.com:443 HTTP/2\r\n\r\n", "malformed request head"},
      {"CONNECT example.com HTTP/1.1\r\n\r\n", "CONNECT target is not host:port"},
      {"CONNECT example.com:0 HTTP/1.1\r\n\r\n", "CONNECT target is not host:port"},
      {"CONNECT example.com:65536 HTTP/1.1\r\n\r\n", "CONNECT target is not host:port"},
      {"CONNECT /path:443 HTTP/1.1\r\n\r\n", "CONNECT target is not host:port"},
      {"CONNECT [not-v6]:443 HTTP/1.1\r\n\r\n", "CONNECT target is not host:port"},
      {"CONNECT user:hunter2@example.com:443 HTTP/1.1\r\n\r\n", "CONNECT target carries userinfo"},
      {connect_head("example.com:443").insert(20, std::string(9000, 'x')),
       "request head larger than 8192 bytes"},
      {"CONNECT example.com:443 HTTP/1.1\r\nX-Filler: " + std::string(9000, 'x'),
       "request head larger than 8192 bytes"},
  };
  for (const auto& [head, reason] : rows) {
    const auto answer = answer_to(port, head);
    EXPECT_EQ(status_line(answer), "HTTP/1.1 400 Bad Request: " + reason) << head.substr(0, 60);
    EXPECT_EQ(body(answer), reason + "\n");
  }
  EXPECT_EQ(guard.refused(), rows.size());
  EXPECT_EQ(guard.connected(), 0u);
  EXPECT_EQ(log.text().find("hunter2"), std::string::npos) << log.text();
}

TEST(connect_guard, lookup_and_connect_failures_are_answered_502) {
  test::loopback_dns_server dns_server({}, {});
  upstream::dns_resolver dns({.cache = {}, .name_servers = dns_server.address()});
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  const auto port = port_of(guard.start());
  EXPECT_EQ(status_line(answer_to(port, connect_head("nowhere.example.test:443"))),
            "HTTP/1.1 502 Bad Gateway: nowhere.example.test: dns: host not found");

  std::uint16_t closed_port = 0;
  {
    echo_server gone;
    closed_port = gone.port();
  }
  const auto target = "127.0.0.1:" + std::to_string(closed_port);
  EXPECT_EQ(status_line(answer_to(port, connect_head(target))),
            "HTTP/1.1 502 Bad Gateway: " + target + ": connect: Connection refused");
  EXPECT_EQ(guard.refused(), 0u);
  EXPECT_EQ(guard.connected(), 0u);
}

TEST(connect_guard, a_connect_that_does_not_complete_is_answered_504_at_its_deadline) {
  // A listener whose accept queue is full: Linux drops further SYNs, so a connect to it hangs
  // as one to a black-holed address does.
  socket_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = loopback(0);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  const auto full_port = ntohs(address.sin_port);
  std::vector<socket_fd> queued;
  for (int i = 0; i < 4; ++i) {
    socket_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    auto target = loopback(full_port);
    (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&target), sizeof target);
    queued.push_back(std::move(fd));
  }
  std::this_thread::sleep_for(50ms);

  upstream::dns_resolver dns;
  running_io io;
  connect_guard guard(io.executor(), dns, loopback_allowed(), {.connect_timeout = 300ms});
  const auto started = std::chrono::steady_clock::now();
  const auto target = "127.0.0.1:" + std::to_string(full_port);
  EXPECT_EQ(status_line(answer_to(port_of(guard.start()), connect_head(target))),
            "HTTP/1.1 504 Gateway Timeout: " + target + ": connect: timed out after 300ms");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(guard.connected(), 0u);
}

TEST(connect_guard, a_client_that_never_finishes_its_head_is_disconnected) {
  upstream::dns_resolver dns;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed(), {.head_timeout = 200ms});
  auto client = connect_to(port_of(guard.start()));
  send_all(client, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n");
  const auto started = std::chrono::steady_clock::now();
  const auto answer = receive_all(client, 3s);
  EXPECT_TRUE(answer.closed);
  EXPECT_EQ(answer.bytes, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(connect_guard, an_idle_tunnel_is_closed_and_a_busy_one_is_not) {
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed(), {.idle_timeout = 300ms});
  auto client = connect_to(port_of(guard.start()));
  send_all(client, connect_head("127.0.0.1:" + std::to_string(target.port())));
  ASSERT_EQ(receive(client, established.size()).bytes, established);
  // Traffic every 100 ms for twice the idle limit keeps it open.
  for (int i = 0; i < 6; ++i) {
    send_all(client, "x");
    ASSERT_EQ(receive(client, 1).bytes, "x") << i;
    std::this_thread::sleep_for(100ms);
  }
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(receive_all(client, 3s).closed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(connect_guard, stop_closes_the_listener_and_every_tunnel) {
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed());
  const auto port = port_of(guard.start());
  auto tunnel = connect_to(port);
  send_all(tunnel, connect_head("127.0.0.1:" + std::to_string(target.port())));
  ASSERT_EQ(receive(tunnel, established.size()).bytes, established);
  auto waiting = connect_to(port);  // has not sent its head yet

  guard.stop();
  EXPECT_TRUE(receive_all(tunnel, 3s).closed);
  EXPECT_TRUE(receive_all(waiting, 3s).closed);
  for (int i = 0; i < 100 && connect_to(port).get() >= 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_LT(connect_to(port).get(), 0);
}

// Set by the address check of the test below; namespace-level so that reading them never goes
// through the check's own captures, whose lifetime is what the test is about.
std::atomic<bool> check_entered{false};
std::atomic<bool> check_released{false};
std::atomic<bool> check_running{false};
std::atomic<bool> check_destroyed_while_running{false};

// Copied into the address check; notes when the copy the guard holds is destroyed while the
// check is still running on an io thread.
struct check_lifetime {
  check_lifetime() = default;
  check_lifetime(const check_lifetime&) = default;
  check_lifetime& operator=(const check_lifetime&) = default;
  ~check_lifetime() {
    if (check_running.load()) check_destroyed_while_running = true;
  }
};

TEST(connect_guard, destroying_it_with_a_connection_in_progress_keeps_what_the_connection_uses) {
  // The guard is destroyed on this thread while a CONNECT is inside its address check on an io
  // thread; the other io thread ends the accept loop meanwhile. The connection must still own the
  // check (and the limits, the counters) until it has finished with them.
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;
  auto guard = std::make_unique<connect_guard>(
      io.executor(), dns,
      [lifetime = check_lifetime{}](const net::ip::address&) -> outcome_of<void> {
        check_running = true;
        check_entered = true;
        for (int i = 0; i < 500 && !check_released.load(); ++i) std::this_thread::sleep_for(10ms);
        check_running = false;
        return {};
      });
  auto client = connect_to(port_of(guard->start()));
  send_all(client, connect_head("127.0.0.1:" + std::to_string(target.port())));
  for (int i = 0; i < 500 && !check_entered.load(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(check_entered.load());

  guard.reset();
  std::this_thread::sleep_for(200ms);  // the accept loop ends on the other io thread
  check_released = true;
  EXPECT_TRUE(receive_all(client, 3s).closed);
  EXPECT_FALSE(check_destroyed_while_running.load());
}

TEST(connect_guard, connections_beyond_the_limit_are_closed_at_once) {
  upstream::dns_resolver dns;
  echo_server target;
  running_io io;  // its threads end before the resolver and the log go
  connect_guard guard(io.executor(), dns, loopback_allowed(), {.max_connections = 1});
  const auto port = port_of(guard.start());
  auto first = connect_to(port);
  send_all(first, connect_head("127.0.0.1:" + std::to_string(target.port())));
  ASSERT_EQ(receive(first, established.size()).bytes, established);
  auto second = connect_to(port);
  EXPECT_TRUE(receive_all(second, 3s).closed);
  // The first is still served.
  send_all(first, "still here");
  EXPECT_EQ(receive(first, 10).bytes, "still here");
  EXPECT_EQ(guard.connected(), 1u);
}

TEST(connect_guard, shipped_limits_are_the_documented_ones) {
  const connect_guard_limits limits;
  EXPECT_EQ(limits.max_head_bytes, 8192u);
  EXPECT_EQ(limits.head_timeout, 10s);
  EXPECT_EQ(limits.resolve_timeout, 10s);
  EXPECT_EQ(limits.connect_timeout, 10s);
  EXPECT_EQ(limits.idle_timeout, 5min);
  EXPECT_EQ(limits.max_connections, 512u);
}

}  // namespace
}  // namespace gomodproxy::direct
