// HTTP/1.1 front: sockets, optional TLS, request parsing with header limits, keep-alive and
// bounded pipelining, per-phase deadlines, exact-path routing, access log, graceful drain. Knows
// nothing of Go modules; Beast and Asio's SSL stay inside http_server.cpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gomodproxy::server {

class tls_credentials;

struct server_options {
  std::string host = "127.0.0.1";                    ///< numeric address. Default: 127.0.0.1
  std::uint16_t port = 8081;                         ///< 0 picks a free port. Default: 8081
  std::chrono::milliseconds request_timeout{30000};  ///< first request's headers. Default: 30 s
  std::chrono::milliseconds idle_timeout{
      60000};  ///< keep-alive wait for the next request. Default: 60 s
  std::chrono::milliseconds write_timeout{60000};  ///< one write to the client. Default: 60 s
  std::uint32_t max_header_bytes = 16384;          ///< Default: 16 KiB
  std::uint32_t max_connections =
      10000;               ///< further connections are closed at once. Default: 10000
  bool access_log = true;  ///< one line per request via spdlog "access". Default: on
  /// Called after every response with its status and the body bytes written (for metrics);
  /// must be thread-safe and quick. Default: none
  std::function<void(int status, std::uint64_t body_bytes)> on_response;
  /// Decides, before routing, whether a request may be answered: called with the path (target
  /// without query) and the Authorization header's value (empty when absent). Returns the name
  /// the access log shows for the credential ("-" for none), or nullopt to answer 401 with
  /// `WWW-Authenticate: Basic realm="gomodproxy"`. Must be thread-safe and quick, and must
  /// neither keep nor log the header. Default: none (every request is answered).
  std::function<std::optional<std::string>(std::string_view path, std::string_view authorization)>
      authorize;
  /// Accepted connections are spread round-robin over these (typically one single-threaded
  /// io_context per core, so a connection never hands work to another thread). Default: empty,
  /// meaning a strand of the listening io_context per connection.
  std::vector<boost::asio::any_io_executor> connection_executors;
  /// When set, every connection speaks TLS with the credentials' context at the time it was
  /// accepted (the handshake must finish within request_timeout). Default: null, plain HTTP.
  std::shared_ptr<tls_credentials> tls;
};

/// The body of a request to a route added with add_body_route, read as the handler asks.
/// Used from the connection's strand only; valid during the handler's call.
class request_body {
 public:
  virtual ~request_body() = default;
  /// The Content-Length, or nullopt for a chunked body.
  virtual std::optional<std::uint64_t> declared_length() const = 0;
  /// Reads the next bytes into `buffer` (at least one unless the body is complete): their
  /// count, 0 at the end of the body, or the error that ended it (the connection is then
  /// closed after the response): a body past the route's limit, a malformed chunk, a client
  /// too slow for the request timeout, or one that went away.
  [[nodiscard]] virtual boost::asio::awaitable<boost::system::result<std::size_t>> read_some(
      char* buffer, std::size_t size) = 0;
};

struct request_view {
  std::string_view method;  ///< "GET" or "HEAD"; "POST" too for paths under /admin/
  std::string_view target;  ///< raw request target, percent-encoded, as received
  bool head = false;
  /// The request's body, for a route added with add_body_route when the request has one;
  /// null otherwise (requests with a body to any other route are answered 400 here).
  request_body* body = nullptr;
};

struct response_head {
  int status = 200;
  std::string content_type;
  std::string cache_control;
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

/// Bytes of an open file to send as (part of) a body. The descriptor stays the caller's: it must
/// stay open, and the bytes unchanged, until the call that takes it completes.
struct file_range {
  int fd = -1;
  std::uint64_t offset = 0;  ///< where the bytes start in the file
  std::uint64_t length = 0;
};

/// One response on one connection. A handler calls send(), or send_head() (or send_head_with())
/// then write_body() until content_length bytes are written. For HEAD requests the body is dropped
/// here, so handlers need not care. Every call returns false once the client is gone or too slow;
/// the handler should then stop. Used from the connection's strand only.
class response_writer {
 public:
  virtual ~response_writer() = default;
  [[nodiscard]] virtual boost::asio::awaitable<bool> send(const response_head& head,
                                                          std::string_view body) = 0;
  [[nodiscard]] virtual boost::asio::awaitable<bool> send_head(const response_head& head,
                                                               std::uint64_t content_length) = 0;
  [[nodiscard]] virtual boost::asio::awaitable<bool> write_body(std::string_view chunk) = 0;
  /// Like send_head() then write_body(first_chunk). The connection's writer sends both in one
  /// write on plain TCP: a head written alone costs a system call and a packet of its own.
  [[nodiscard]] virtual boost::asio::awaitable<bool> send_head_with(
      const response_head& head, std::uint64_t content_length, std::string_view first_chunk) = 0;
  /// Like send_head_with(), with the first body bytes read from a file. The connection's writer
  /// hands them to the kernel with sendfile(2) on plain TCP (no copy through the process; the
  /// head goes out in the same packet) and reads them into a buffer of at most 128 KiB under
  /// TLS. The file is read on the calling thread: its pages should be in the page cache
  /// already. Returns false, and the connection closes after the response, when the file ends
  /// before `first.length` bytes. This default reads the range into a buffer and calls
  /// send_head_with() and write_body(), for writers that are not a connection's.
  [[nodiscard]] virtual boost::asio::awaitable<bool> send_head_with_file(
      const response_head& head, std::uint64_t content_length, file_range first);
  /// Like write_body() with bytes read from a file, as send_head_with_file() sends them.
  [[nodiscard]] virtual boost::asio::awaitable<bool> write_file(file_range range);
  /// True for HEAD: no body bytes will be sent, so a handler may skip reading them.
  virtual bool head_only() const = 0;
  /// Adds the cache result ("hit", "miss", "stale", "shared", "-") and tier to the access log line.
  virtual void note(std::string_view cache_result, std::string_view tier) = 0;
};

class handler {
 public:
  virtual ~handler() = default;
  /// Answers one request. Runs on the connection's strand; must not block it.
  virtual boost::asio::awaitable<void> handle(const request_view& request,
                                              response_writer& writer) = 0;
};

/// Thread-safe: the io_context may be run by many threads.
class http_server final {
 public:
  /// `fallback` answers every path without an exact route; it and every routed handler must
  /// outlive the server.
  http_server(boost::asio::io_context& io, server_options options, handler& fallback);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Routes requests whose path (target without query) equals `path` to `route`.
  void add_route(std::string path, handler& route);

  /// Like add_route, for a POST route that takes a request body of at most `max_body_bytes`
  /// (more is a 413 before any of it is read, when declared; an error of read_some otherwise).
  /// What the handler leaves unread is discarded, up to 1 MiB, so a refusal still reaches a
  /// client that sends its whole body before reading the answer.
  void add_body_route(std::string path, handler& route, std::uint64_t max_body_bytes);

  /// Binds and listens; returns the bound port. Start-up error (address in use, bad host) as
  /// an error_code.
  [[nodiscard]] boost::system::result<std::uint16_t> listen();

  /// Starts accepting on the io_context.
  void start();

  /// Stops accepting, closes idle connections, lets in-flight responses finish, and completes
  /// when no connection is left or `timeout` has passed (remaining ones are then closed).
  boost::asio::awaitable<void> drain(std::chrono::milliseconds timeout);

  /// Open connections right now.
  std::size_t connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace gomodproxy::server
