// In-process HTTP/1.1 (optionally TLS) server on 127.0.0.1 for client tests: each request is
// answered from a script the test supplies, including misbehaviour (stalls, truncation, closing
// idle keep-alive connections), and connections and requests are counted. Header-only so a unit
// test binary needs nothing but its own component library.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gomodproxy::test {

/// What the server received.
struct scripted_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  ///< names in lower case
};

/// How the server answers one request.
struct scripted_response {
  enum class behaviour {
    respond,               ///< send the response, keep the connection
    stall_before_headers,  ///< read the request, never answer
    stall_after_headers,   ///< send the header block, then nothing
    truncate_body,         ///< send `truncate_at` body bytes, then close
    close_after_response,  ///< send the response (keep-alive in form), then close at once
  };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;  ///< Transfer-Encoding: chunked instead of Content-Length
  std::size_t chunk_size = 16 * 1024;
  behaviour mode = behaviour::respond;
  std::size_t truncate_at = 0;
};

class loopback_http_server {
 public:
  using route = std::function<scripted_response(const scripted_request&)>;

  /// Starts listening on 127.0.0.1 on a free port; `tls`, when given, must outlive the server.
  explicit loopback_http_server(route script, boost::asio::ssl::context* tls = nullptr)
      : script_(std::move(script)), tls_(tls), acceptor_(ioc_) {
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

  ~loopback_http_server() {
    ioc_.stop();
    thread_.join();
  }

  loopback_http_server(const loopback_http_server&) = delete;
  loopback_http_server& operator=(const loopback_http_server&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] int connections() const { return connections_.load(); }
  [[nodiscard]] int requests() const { return requests_.load(); }
  [[nodiscard]] std::vector<scripted_request> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  using tcp_socket = boost::asio::ip::tcp::socket;
  using tls_socket = boost::asio::ssl::stream<tcp_socket>;

  static constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++connections_;
      // The scripted head and body go out in separate writes; Nagle would delay the second.
      socket.set_option(boost::asio::ip::tcp::no_delay(true), ec);
      if (tls_) {
        boost::asio::co_spawn(ioc_, serve_tls(std::move(socket)), boost::asio::detached);
      } else {
        boost::asio::co_spawn(ioc_, serve(std::make_unique<tcp_socket>(std::move(socket))),
                              boost::asio::detached);
      }
    }
  }

  boost::asio::awaitable<void> serve_tls(tcp_socket socket) {
    auto stream = std::make_unique<tls_socket>(std::move(socket), *tls_);
    auto [ec] = co_await stream->async_handshake(boost::asio::ssl::stream_base::server, use_tuple);
    if (ec) co_return;
    co_await serve(std::move(stream));
  }

  template <class Stream>
  boost::asio::awaitable<void> serve(std::unique_ptr<Stream> stream) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::empty_body> parser;
      auto [ec, n] = co_await http::async_read(*stream, buffer, parser, use_tuple);
      (void)n;
      if (ec) co_return;
      scripted_request request;
      const auto& message = parser.get();
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      for (const auto& field : message) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[name] = std::string(field.value());
      }
      ++requests_;
      {
        std::lock_guard lock(mutex_);
        received_.push_back(request);
      }
      auto response = script_(request);
      using mode = scripted_response::behaviour;
      if (response.mode == mode::stall_before_headers) {
        co_await stall();
        co_return;
      }
      std::string head = "HTTP/1.1 " + std::to_string(response.status) + " Scripted\r\n";
      for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
      if (response.chunked) {
        head += "Transfer-Encoding: chunked\r\n";
      } else {
        head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
      }
      head += "\r\n";
      if (!co_await send(*stream, head)) co_return;
      if (response.mode == mode::stall_after_headers) {
        co_await stall();
        co_return;
      }
      auto limit = response.mode == mode::truncate_body
                       ? std::min(response.truncate_at, response.body.size())
                       : response.body.size();
      if (response.chunked) {
        for (std::size_t at = 0; at < limit; at += response.chunk_size) {
          auto size = std::min(response.chunk_size, limit - at);
          std::ostringstream hex;
          hex << std::hex << size;
          if (!co_await send(*stream,
                             hex.str() + "\r\n" + response.body.substr(at, size) + "\r\n")) {
            co_return;
          }
        }
        if (response.mode != mode::truncate_body && !co_await send(*stream, "0\r\n\r\n")) {
          co_return;
        }
      } else if (!co_await send(*stream, response.body.substr(0, limit))) {
        co_return;
      }
      if (response.mode == mode::truncate_body || response.mode == mode::close_after_response) {
        co_return;  // the stream (and socket) is destroyed: the peer sees the connection close
      }
    }
  }

  template <class Stream>
  boost::asio::awaitable<bool> send(Stream& stream, const std::string& bytes) {
    auto [ec, n] = co_await boost::asio::async_write(stream, boost::asio::buffer(bytes), use_tuple);
    (void)n;
    co_return !ec;
  }

  boost::asio::awaitable<void> stall() {
    // Ends only when the server is torn down (the io_context stops and drops this frame).
    boost::asio::steady_timer timer(ioc_, std::chrono::hours(1));
    (void)co_await timer.async_wait(use_tuple);
  }

  route script_;
  boost::asio::ssl::context* tls_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::vector<scripted_request> received_;
  std::thread thread_;
};

}  // namespace gomodproxy::test
