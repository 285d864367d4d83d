#include "direct/connect_guard.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "common/log_if_thrown.hpp"
#include "direct/address_policy.hpp"

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Long enough to hand a short error answer to a client that reads it, short enough that one
// that does not read cannot keep the connection.
constexpr std::chrono::seconds answer_timeout{5};
constexpr std::size_t relay_chunk = std::size_t{16} * 1024;
constexpr std::size_t max_reason = 300;

// What goes into logs and the status line: printable ASCII only, bounded.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, max_reason)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > max_reason) out += "...";
  return out;
}

// A request target as it may be logged: "http://user:secret@host/x" becomes "http://host/x".
std::string without_userinfo(std::string_view target) {
  std::string out(target);
  const auto scheme = out.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto end = out.find_first_of("/?#", start);
  const auto authority =
      std::string_view(out).substr(start, end == std::string::npos ? end : end - start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    out.erase(start, at + 1);
  }
  return printable(out);
}

bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

struct request_head {
  std::string method;
  std::string target;
};

// The request line and header lines of a head that ends in an empty line; headers are checked
// for shape only, none is used.
std::optional<request_head> parse_head(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const auto end = head.find("\r\n");
    lines.push_back(head.substr(0, end));
    head.remove_prefix(end + 2);
  }
  if (lines.size() < 2 || !lines.back().empty()) return std::nullopt;
  lines.pop_back();
  for (auto line : lines) {
    if (line.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
  }
  const auto line = lines.front();
  const auto first_space = line.find(' ');
  const auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) return std::nullopt;
  request_head parsed{std::string(line.substr(0, first_space)),
                      std::string(line.substr(first_space + 1, last_space - first_space - 1))};
  const auto version = line.substr(last_space + 1);
  if (!is_token(parsed.method) || parsed.target.empty() ||
      parsed.target.find(' ') != std::string::npos ||
      !(version == "HTTP/1.1" || version == "HTTP/1.0")) {
    return std::nullopt;
  }
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    if (colon == std::string_view::npos || !is_token(lines[i].substr(0, colon))) {
      return std::nullopt;
    }
  }
  return parsed;
}

struct authority {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  bool ip_literal = false;
};

// CONNECT's authority-form target: host:port or [IPv6]:port, nothing else.
std::optional<authority> parse_authority(std::string_view target) {
  const auto colon = target.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == target.size()) return std::nullopt;
  const auto port_text = target.substr(colon + 1);
  if (port_text.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  authority parsed;
  parsed.port = static_cast<std::uint16_t>(port);
  auto host = target.substr(0, colon);
  boost::system::error_code ec;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    (void)net::ip::make_address_v6(host, ec);
    if (ec) return std::nullopt;
    parsed.ip_literal = true;
  } else {
    if (!is_host_name(host)) return std::nullopt;
    (void)net::ip::make_address_v4(host, ec);
    parsed.ip_literal = !ec;
  }
  parsed.host = std::string(host);
  return parsed;
}

std::string status_text(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string seconds_text(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + "s";
  return std::to_string(duration.count()) + "ms";
}

}  // namespace

struct connect_guard::impl : std::enable_shared_from_this<impl> {
  // One client connection: its CONNECT, then its tunnel. Everything on it runs on its strand.
  // It owns its guard: its coroutines are members of the guard and use the address check, the
  // limits and the counters, so the guard's state stays until the last connection has ended,
  // even when the connect_guard object is destroyed from another thread meanwhile.
  struct connection {
    enum class stage { head, resolving, connecting, answering, splicing };

    connection(std::shared_ptr<impl> owner, std::uint64_t id, tcp::socket socket)
        : owner(std::move(owner)),
          id(id),
          client(std::move(socket)),
          origin(client.get_executor()),
          watchdog(client.get_executor()) {}

    ~connection() { owner->forget(id); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Moves the deadline; a sooner one wakes the watchdog so it waits for the new one.
    void set_deadline(steady::time_point at) {
      const bool sooner = at < deadline;
      deadline = at;
      if (sooner) watchdog.cancel();
    }

    void close() {
      closed = true;
      boost::system::error_code ignored;
      client.close(ignored);
      origin.close(ignored);
      watchdog.cancel();
    }

    std::shared_ptr<impl> owner;
    std::uint64_t id;
    tcp::socket client;
    tcp::socket origin;
    net::steady_timer watchdog;
    steady::time_point deadline = steady::time_point::max();
    stage current = stage::head;
    bool closed = false;
    bool connect_timed_out = false;
    int open_directions = 2;
    std::string target;        // host:port as logged: printable, no userinfo
    std::string request_line;  // method and target as logged
  };

  impl(net::any_io_executor executor, upstream::dns_resolver& dns, address_check check_address,
       connect_guard_limits limits)
      : executor(std::move(executor)),
        dns(dns),
        check_address(std::move(check_address)),
        limits(limits),
        accept_strand(net::make_strand(this->executor)),
        acceptor(accept_strand) {}

  void forget(std::uint64_t id) {
    std::lock_guard lock(mutex);
    connections.erase(id);
  }

  // Registers a just-accepted socket; nullptr when stopped or when too many are open.
  std::shared_ptr<connection> admit(tcp::socket socket) {
    std::lock_guard lock(mutex);
    if (stopped) return nullptr;
    if (connections.size() >= limits.max_connections) {
      spdlog::warn("connect guard: {} connections open, closing a new one", limits.max_connections);
      return nullptr;
    }
    auto admitted = std::make_shared<connection>(shared_from_this(), next_id++, std::move(socket));
    admitted->deadline = steady::now() + limits.head_timeout;
    connections.emplace(admitted->id, admitted);
    return admitted;
  }

  net::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(
          net::any_io_executor(net::make_strand(executor)), use_tuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        // Out of descriptors and similar: back off briefly instead of spinning.
        spdlog::warn("connect guard: accept failed: {}", ec.message());
        net::steady_timer pause(accept_strand, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      auto admitted = admit(std::move(socket));
      if (!admitted) continue;  // its socket closes with it
      auto strand = admitted->client.get_executor();
      net::co_spawn(strand, watch(admitted), log_if_thrown("connect guard watchdog"));
      net::co_spawn(strand, serve(admitted), log_if_thrown("connect guard connection"));
    }
  }

  // Enforces each stage's deadline: a connect attempt that runs out is cancelled (the client is
  // then told), anything else that runs out ends the connection.
  net::awaitable<void> watch(std::shared_ptr<connection> c) {
    while (!c->closed) {
      c->watchdog.expires_at(c->deadline);
      co_await c->watchdog.async_wait(use_tuple);
      if (c->closed) co_return;
      if (steady::now() < c->deadline) continue;
      if (c->current == connection::stage::connecting) {
        c->connect_timed_out = true;
        boost::system::error_code ignored;
        c->origin.close(ignored);
        c->deadline = steady::now() + answer_timeout;
        continue;
      }
      if (c->current == connection::stage::splicing) {
        spdlog::debug("connect guard: tunnel to {} idle for {}, closed", c->target,
                      seconds_text(limits.idle_timeout));
      }
      c->close();
    }
  }

  // How a CONNECT ended before its tunnel: silently (the client left or stalled), or with an
  // error answer, which is a refusal when the request itself is refused. Returned rather than
  // passed on as a braced temporary: GCC 12 destroys a braced aggregate argument of a co_awaited
  // coroutine twice (a double free).
  struct outcome {
    enum class kind { tunnel, silent, refusal, failure } how = kind::tunnel;
    int status = 0;
    std::string reason;
  };

  static outcome silent() { return {outcome::kind::silent, 0, {}}; }
  static outcome refusal(int status, std::string reason) {
    return {outcome::kind::refusal, status, std::move(reason)};
  }
  static outcome failure(int status, std::string reason) {
    return {outcome::kind::failure, status, std::move(reason)};
  }

  net::awaitable<void> serve(std::shared_ptr<connection> c) {
    std::string early;
    auto result = co_await establish(c, early);
    if (result.how == outcome::kind::silent || c->closed) {
      c->close();
      co_return;
    }
    if (result.how != outcome::kind::tunnel) {
      const auto reason = printable(result.reason);
      if (result.how == outcome::kind::refusal) {
        refused_count.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("connect guard: refused {}: {}",
                     c->request_line.empty() ? std::string("a request") : c->request_line, reason);
      } else {
        spdlog::debug("connect guard: {}: {}", c->request_line, reason);
      }
      co_await answer_error(c, result.status, reason);
      co_return;
    }

    c->current = connection::stage::answering;
    c->set_deadline(steady::now() + answer_timeout);
    static constexpr std::string_view established = "HTTP/1.1 200 Connection established\r\n\r\n";
    auto [answer_ec, answered] =
        co_await net::async_write(c->client, net::buffer(established), use_tuple);
    (void)answered;
    if (answer_ec) {
      c->close();
      co_return;
    }
    connected_count.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("connect guard: tunnel to {}", c->target);
    if (!early.empty()) {
      auto [early_ec, written] =
          co_await net::async_write(c->origin, net::buffer(early), use_tuple);
      (void)written;
      if (early_ec) {
        c->close();
        co_return;
      }
    }

    c->current = connection::stage::splicing;
    c->set_deadline(steady::now() + limits.idle_timeout);
    net::co_spawn(c->client.get_executor(), relay(c, c->origin, c->client),
                  log_if_thrown("connect guard tunnel"));
    co_await relay(c, c->client, c->origin);
  }

  // Reads and checks the CONNECT, resolves its host, checks every address and connects `origin`.
  // Bytes the client sent after its head are left in `early`: they belong to the tunnel.
  net::awaitable<outcome> establish(std::shared_ptr<connection> c, std::string& early) {
    c->set_deadline(steady::now() + limits.head_timeout);
    std::string head;
    std::array<char, 4096> chunk{};
    std::size_t head_end = std::string::npos;
    while (head_end == std::string::npos) {
      auto [ec, n] = co_await c->client.async_read_some(net::buffer(chunk), use_tuple);
      // A client that closes or stalls before its head is complete is not answered.
      if (ec) co_return silent();
      head.append(chunk.data(), n);
      head_end = head.find("\r\n\r\n");
      if (head_end == std::string::npos ? head.size() > limits.max_head_bytes
                                        : head_end + 4 > limits.max_head_bytes) {
        co_return refusal(
            400, "request head larger than " + std::to_string(limits.max_head_bytes) + " bytes");
      }
    }
    early = head.substr(head_end + 4);
    head.resize(head_end + 4);

    auto request = parse_head(head);
    if (!request) co_return refusal(400, "malformed request head");
    if (request->method != "CONNECT") {
      c->request_line = request->method + " " + without_userinfo(request->target);
      co_return refusal(
          405, "only CONNECT tunnels are served: public module paths are fetched over https");
    }
    c->target = without_userinfo(request->target);
    c->request_line = "CONNECT " + c->target;
    if (request->target.find('@') != std::string::npos) {
      co_return refusal(400, "CONNECT target carries userinfo");
    }
    auto target = parse_authority(request->target);
    if (!target) co_return refusal(400, "CONNECT target is not host:port");

    c->current = connection::stage::resolving;
    const auto resolve_deadline = steady::now() + limits.resolve_timeout;
    // The lookup ends at its own deadline; the watchdog's second is only a backstop.
    c->set_deadline(resolve_deadline + std::chrono::seconds(1));
    auto endpoints = co_await dns.resolve(target->host, target->port, resolve_deadline);
    if (c->closed) co_return silent();
    if (!endpoints) {
      const int status = endpoints.error() == net::error::timed_out ? 504 : 502;
      co_return failure(status, target->host + ": dns: " + dns_failure_reason(endpoints.error()));
    }
    if (endpoints->empty()) co_return failure(502, target->host + ": dns: no address");
    for (const auto& endpoint : *endpoints) {
      if (auto allowed = check_address(endpoint.address()); !allowed) {
        const auto address = endpoint.address().to_string();
        const std::string& why = allowed.error().detail;
        co_return refusal(to_http_status(errc::refused),
                          target->ip_literal
                              ? address + " is " + why
                              : target->host + " resolves to " + address + " (" + why + ")");
      }
    }

    c->current = connection::stage::connecting;
    c->set_deadline(steady::now() + limits.connect_timeout);
    boost::system::error_code connect_ec = net::error::host_not_found;
    for (const auto& endpoint : *endpoints) {
      boost::system::error_code ignored;
      c->origin.close(ignored);
      auto [ec] = co_await c->origin.async_connect(endpoint, use_tuple);
      connect_ec = ec;
      if (!ec || c->closed || c->connect_timed_out) break;
    }
    if (c->closed) co_return silent();
    if (c->connect_timed_out) {
      co_return failure(
          504, c->target + ": connect: timed out after " + seconds_text(limits.connect_timeout));
    }
    if (connect_ec) co_return failure(502, c->target + ": connect: " + connect_ec.message());
    co_return outcome{};
  }

  // Copies one direction. An end of stream is passed on as one (a half-close), so a peer that
  // finishes sending still gets the other side's answer; an error closes both directions.
  net::awaitable<void> relay(std::shared_ptr<connection> c, tcp::socket& from, tcp::socket& to) {
    std::vector<char> bytes(relay_chunk);
    for (;;) {
      auto [read_ec, n] = co_await from.async_read_some(net::buffer(bytes), use_tuple);
      if (read_ec) {
        boost::system::error_code ignored;
        if (read_ec == net::error::eof && !c->closed) {
          to.shutdown(tcp::socket::shutdown_send, ignored);
        } else {
          c->close();
        }
        break;
      }
      c->deadline = steady::now() + limits.idle_timeout;
      auto [write_ec, written] =
          co_await net::async_write(to, net::buffer(bytes.data(), n), use_tuple);
      (void)written;
      if (write_ec) {
        c->close();
        break;
      }
      c->deadline = steady::now() + limits.idle_timeout;
    }
    if (--c->open_directions == 0) c->close();
  }

  // Answers and ends the connection. The reason is in the status line as well as the body: the
  // go command's error quotes a failed CONNECT's status text and ignores its body.
  net::awaitable<void> answer_error(std::shared_ptr<connection> c, int status, std::string reason) {
    c->current = connection::stage::answering;
    c->set_deadline(steady::now() + answer_timeout);
    const auto body = reason + "\n";
    std::string response =
        "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + ": " + reason + "\r\n";
    if (status == 405) response += "Allow: CONNECT\r\n";
    response += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    auto [ec, n] = co_await net::async_write(c->client, net::buffer(response), use_tuple);
    (void)n;
    if (!ec) {
      // Half-close and drain what the client still sends, so closing with unread bytes does not
      // reset the connection before the client has read the answer.
      boost::system::error_code ignored;
      c->client.shutdown(tcp::socket::shutdown_send, ignored);
      std::array<char, 4096> sink{};
      for (std::size_t drained = 0; drained < std::size_t{64} * 1024;) {
        auto [read_ec, read] = co_await c->client.async_read_some(net::buffer(sink), use_tuple);
        if (read_ec) break;
        drained += read;
      }
    }
    c->close();
  }

  void stop() {
    std::vector<std::shared_ptr<connection>> open;
    {
      std::lock_guard lock(mutex);
      stopped = true;
      for (auto& [id, weak] : connections) {
        if (auto c = weak.lock()) open.push_back(std::move(c));
      }
    }
    net::post(accept_strand, [self = shared_from_this()] {
      boost::system::error_code ignored;
      self->acceptor.close(ignored);
    });
    for (auto& c : open) {
      auto strand = c->client.get_executor();
      net::post(strand, [c = std::move(c)] { c->close(); });
    }
  }

  net::any_io_executor executor;
  upstream::dns_resolver& dns;
  address_check check_address;
  connect_guard_limits limits;
  net::strand<net::any_io_executor> accept_strand;
  tcp::acceptor acceptor;
  std::atomic<std::uint64_t> refused_count{0};
  std::atomic<std::uint64_t> connected_count{0};

  std::mutex mutex;  // guards what follows
  bool stopped = false;
  std::string url;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, std::weak_ptr<connection>> connections;
};

connect_guard::connect_guard(net::any_io_executor executor, upstream::dns_resolver& dns,
                             address_check check_address, connect_guard_limits limits)
    : impl_(std::make_shared<impl>(std::move(executor), dns, std::move(check_address), limits)) {}

// stop() can only throw std::bad_alloc, from posting; the destructor is noexcept, so running out of
// memory there ends the process, which is fine.
// NOLINTNEXTLINE(bugprone-exception-escape)
connect_guard::~connect_guard() { stop(); }

std::string connect_guard::start() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->url.empty()) return impl_->url;
  if (impl_->stopped) throw std::logic_error("connect guard: start() after stop()");
  const tcp::endpoint loopback(net::ip::make_address_v4("127.0.0.1"), 0);
  auto& acceptor = impl_->acceptor;
  try {
    acceptor.open(loopback.protocol());
    acceptor.bind(loopback);
    acceptor.listen();
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error(std::string("connect guard: cannot listen on 127.0.0.1: ") +
                             error.code().message());
  }
  impl_->url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  net::co_spawn(impl_->accept_strand, impl_->accept_loop(), log_if_thrown("connect guard accept"));
  return impl_->url;
}

void connect_guard::stop() { impl_->stop(); }

std::uint64_t connect_guard::refused() const {
  return impl_->refused_count.load(std::memory_order_relaxed);
}

std::uint64_t connect_guard::connected() const {
  return impl_->connected_count.load(std::memory_order_relaxed);
}

}  // namespace gomodproxy::direct
