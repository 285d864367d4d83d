// In-process HTTP CONNECT proxy on 127.0.0.1 for client tests: opens a tunnel to whatever
// host:port is asked for and relays bytes both ways, counting tunnels and remembering the
// Proxy-Authorization it saw. Anything other than CONNECT gets a 405.
#pragma once

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace gomodproxy::test {

class loopback_connect_proxy {
 public:
  loopback_connect_proxy() : acceptor_(ioc_) {
    using boost::asio::ip::tcp;
    tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(ioc_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~loopback_connect_proxy() {
    ioc_.stop();
    thread_.join();
  }

  loopback_connect_proxy(const loopback_connect_proxy&) = delete;
  loopback_connect_proxy& operator=(const loopback_connect_proxy&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// Tunnels opened so far (successful CONNECTs).
  [[nodiscard]] int tunnels() const { return tunnels_.load(); }
  [[nodiscard]] std::string last_proxy_authorization() const {
    std::lock_guard lock(mutex_);
    return last_proxy_authorization_;
  }
  [[nodiscard]] std::string last_connect_target() const {
    std::lock_guard lock(mutex_);
    return last_connect_target_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  static constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      boost::asio::co_spawn(ioc_, tunnel(std::make_shared<tcp::socket>(std::move(socket))),
                            boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> tunnel(std::shared_ptr<tcp::socket> client) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    auto [read_ec, n] = co_await http::async_read_header(*client, buffer, parser, use_tuple);
    (void)n;
    if (read_ec) co_return;
    const auto& request = parser.get();
    std::string target(request.target());
    {
      std::lock_guard lock(mutex_);
      last_proxy_authorization_ = std::string(request[http::field::proxy_authorization]);
      last_connect_target_ = target;
    }
    if (request.method() != http::verb::connect) {
      co_await send(*client, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
      co_return;
    }
    auto colon = target.rfind(':');
    auto host = target.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto port = target.substr(colon + 1);
    tcp::resolver resolver(ioc_);
    auto [resolve_ec, endpoints] = co_await resolver.async_resolve(host, port, use_tuple);
    auto origin = std::make_shared<tcp::socket>(ioc_);
    if (!resolve_ec) {
      auto [connect_ec, endpoint] =
          co_await boost::asio::async_connect(*origin, endpoints, use_tuple);
      (void)endpoint;
      resolve_ec = connect_ec;
    }
    if (resolve_ec) {
      co_await send(*client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      co_return;
    }
    ++tunnels_;
    if (!co_await send(*client, "HTTP/1.1 200 Connection established\r\n\r\n")) co_return;
    if (buffer.size() > 0) {
      auto [ec, written] = co_await boost::asio::async_write(*origin, buffer.data(), use_tuple);
      (void)written;
      if (ec) co_return;
    }
    boost::asio::co_spawn(ioc_, relay(origin, client), boost::asio::detached);
    co_await relay(client, origin);
  }

  // Copies until either side closes, then closes both so the other direction ends too.
  boost::asio::awaitable<void> relay(std::shared_ptr<tcp::socket> from,
                                     std::shared_ptr<tcp::socket> to) {
    char bytes[16 * 1024];
    for (;;) {
      auto [read_ec, n] = co_await from->async_read_some(boost::asio::buffer(bytes), use_tuple);
      if (read_ec) break;
      auto [write_ec, written] =
          co_await boost::asio::async_write(*to, boost::asio::buffer(bytes, n), use_tuple);
      (void)written;
      if (write_ec) break;
    }
    boost::system::error_code ignored;
    from->close(ignored);
    to->close(ignored);
  }

  boost::asio::awaitable<bool> send(tcp::socket& socket, std::string bytes) {
    auto [ec, n] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), use_tuple);
    (void)n;
    co_return !ec;
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<int> tunnels_{0};
  mutable std::mutex mutex_;
  std::string last_proxy_authorization_;
  std::string last_connect_target_;
  std::thread thread_;
};

}  // namespace gomodproxy::test
