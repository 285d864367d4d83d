// The HTTP front as a client meets it: each input is the whole byte stream of one connection
// (pipelined requests included) sent to the real http_server on 127.0.0.1, which then sees the
// end of the stream. Its Beast parser is configured as production configures it (server_options
// defaults: 16 KiB header limit, its buffer bound), and the handler answers through the real
// response_writer, with the access log formatting every request (into a null sink).
// Invariants: the server closes the connection (a hang is a libFuzzer timeout), every response
// is a well-formed HTTP/1.1 message with an exact Content-Length, statuses are only those the
// server or this handler give, an error answer is the last one on the connection, and the handler
// sees only GET and HEAD with a target that starts with '/' or is absolute (it is the fallback:
// the server answers a POST to an /admin/ path no route has 404 itself).
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/http_server.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using gomodproxy::server::handler;
using gomodproxy::server::http_server;
using gomodproxy::server::request_view;
using gomodproxy::server::response_head;
using gomodproxy::server::response_writer;
using gomodproxy::server::server_options;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

void require(bool holds) {
  if (!holds) std::abort();
}

// Answers with the target as the body, in one piece or streamed, so both writer paths and the
// keep-alive bookkeeping after each are exercised.
class echo_handler final : public handler {
 public:
  net::awaitable<void> handle(const request_view& request, response_writer& writer) override {
    require(request.method == "GET" || request.method == "HEAD");
    require(request.head == (request.method == "HEAD"));
    require(request.head == writer.head_only());
    require(!request.target.empty());
    response_head head;
    head.content_type = "text/plain; charset=utf-8";
    head.extra_headers.emplace_back("Fuzz-Method", request.head ? "HEAD" : "GET");
    writer.note("miss", "fuzz");
    if (request.target.size() % 2 == 0) {
      (void)co_await writer.send(head, request.target);
    } else if (co_await writer.send_head(head, request.target.size())) {
      const auto half = request.target.size() / 2;
      if (co_await writer.write_body(request.target.substr(0, half))) {
        (void)co_await writer.write_body(request.target.substr(half));
      }
    }
  }
};

// Every response in `stream`; aborts on anything that is not a well-formed sequence of them. When
// the server reset the connection (it closes with unread pipelined input), the last response may
// have been cut short by the reset.
void check_responses(std::string_view stream, bool reset) {
  bool error_sent = false;
  while (!stream.empty()) {
    require(!error_sent);  // nothing may follow a 400 or 431 on its connection
    const auto end_of_head = stream.find("\r\n\r\n");
    if (end_of_head == std::string_view::npos && reset) return;
    require(end_of_head != std::string_view::npos);
    const std::string_view head = stream.substr(0, end_of_head + 2);
    require(head.starts_with("HTTP/1.1 "));
    require(head.size() > 12);
    const int status = std::atoi(std::string(head.substr(9, 3)).c_str());
    require(status == 200 || status == 400 || status == 404 || status == 405 || status == 431);
    error_sent = status == 400 || status == 431;
    const auto length_at = head.find("\r\nContent-Length: ");
    require(length_at != std::string_view::npos);
    const auto value_at = length_at + 18;
    const auto length_text = head.substr(value_at, head.find("\r\n", value_at) - value_at);
    const std::uint64_t length = std::strtoull(std::string(length_text).c_str(), nullptr, 10);
    stream.remove_prefix(end_of_head + 4);
    // A HEAD answer declares the length of the body it does not send.
    if (head.find("\r\nFuzz-Method: HEAD\r\n") != std::string_view::npos) continue;
    if (stream.size() < length && reset) return;
    require(stream.size() >= length);
    stream.remove_prefix(length);
  }
}

struct fixture {
  net::io_context io;
  echo_handler echo;
  std::unique_ptr<http_server> server;
  std::uint16_t port = 0;

  fixture() {
    spdlog::register_logger(std::make_shared<spdlog::logger>(
        "access", std::make_shared<spdlog::sinks::null_sink_mt>()));
    server_options options;
    options.port = 0;
    // Production's header limit and access log; shorter deadlines only so that a connection the
    // server failed to close is reported as a hang within libFuzzer's timeout.
    options.request_timeout = std::chrono::seconds(5);
    options.idle_timeout = std::chrono::seconds(5);
    options.write_timeout = std::chrono::seconds(5);
    server = std::make_unique<http_server>(io, options, echo);
    auto bound = server->listen();
    require(bound.has_value());
    port = *bound;
    server->start();
  }
};

struct client {
  explicit client(net::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string received;
  bool reset = false;
  bool sent = false;
  bool done = false;
};

net::awaitable<void> send_all(client& c, std::string_view bytes) {
  (void)co_await net::async_write(c.socket, net::buffer(bytes.data(), bytes.size()), use_tuple);
  boost::system::error_code ignored;
  c.socket.shutdown(tcp::socket::shutdown_send, ignored);
  c.sent = true;
}

net::awaitable<void> exchange(client& c, std::uint16_t port, std::string_view bytes) {
  auto [ec] =
      co_await c.socket.async_connect({net::ip::make_address("127.0.0.1"), port}, use_tuple);
  require(!ec);
  net::co_spawn(c.socket.get_executor(), send_all(c, bytes), net::detached);
  char chunk[16384];
  for (;;) {
    auto [read_ec, n] = co_await c.socket.async_read_some(net::buffer(chunk), use_tuple);
    c.received.append(chunk, n);
    if (read_ec) {
      c.reset = read_ec != net::error::eof;
      break;
    }
  }
  c.done = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fixture f;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  client c(f.io);
  net::co_spawn(f.io, exchange(c, f.port, bytes), net::detached);
  // Until the server has closed this connection and forgotten it: the next input starts clean.
  while (!c.done || !c.sent || f.server->connections() > 0) f.io.run_one();
  check_responses(c.received, c.reset);
  return 0;
}
