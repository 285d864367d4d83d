// HTTP(S) client for upstream tiers: TLS with system CA verification and SNI, a keep-alive
// connection pool per origin, redirects, gzip decoding, CONNECT through HTTPS_PROXY/HTTP_PROXY
// (honouring NO_PROXY), a deadline per phase, and host names looked up by dns_resolver (each
// lookup bounded on its own, cached for its TTL). Beast stays inside the .cpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::upstream {

struct deadlines {
  std::chrono::milliseconds connect{5000};  ///< DNS + TCP + proxy CONNECT + TLS. Default: 5 s
  std::chrono::milliseconds first_byte{
      10000};                               ///< request sent until response headers. Default: 10 s
  std::chrono::milliseconds total{300000};  ///< whole exchange, body included. Default: 5 min
};

enum class outcome {
  ok,         ///< 200 and the whole body delivered
  not_found,  ///< 404 or 410
  error,      ///< any other status, transport or TLS failure, bad body, sink refusal
  timeout,    ///< a deadline passed
};

struct fetch_result {
  outcome result = outcome::error;
  int status = 0;  ///< final HTTP status, 0 when none was received
  std::string
      reason;  ///< short, one line: "404", "connection refused", "timeout after 10s (first byte)"
  /// A non-200 answer's status with the first line of its short text/plain body, as a proxy
  /// explains a refusal ("404: not found: ..."); only the status when the body says nothing
  /// readable; empty for a 200 or when no answer came.
  std::string answer_text;
  std::string content_type;           ///< of the final response
  std::uint64_t body_bytes = 0;       ///< decoded body bytes delivered to the sink
  std::chrono::microseconds ttfb{0};  ///< request start until final response headers
};

/// How the client words a deadline in `fetch_result::reason` ("800ms", "10s", "1.5s"), for
/// callers whose own timeouts should read the same.
std::string format_duration(std::chrono::milliseconds duration);

/// Receives decoded body chunks of a 200 response, in order. Return false to abort the fetch
/// (outcome::error, reason "aborted by receiver"). Called on the client's executor; it may block
/// briefly (for example, to append to the cache).
using body_sink = std::function<bool(std::string_view chunk)>;

struct client_options {
  std::size_t max_idle_per_origin = 8;  ///< Default: 8
  std::chrono::seconds idle_timeout{
      60};  ///< pooled connections older than this are dropped. Default: 60 s
  std::uint64_t max_body_bytes = 524288000 + 1;  ///< Default: 500 MiB + 1
  int max_redirects = 10;                        ///< Default: 10; https -> http is always refused
  /// Proxy settings; by default read from HTTPS_PROXY/https_proxy, HTTP_PROXY/http_proxy and
  /// NO_PROXY/no_proxy at construction.
  std::string https_proxy, http_proxy, no_proxy;
  bool proxy_from_environment = true;  ///< Default: true
  std::string ca_file;                 ///< extra CA bundle (tests); system store is always loaded
  std::string user_agent = "gomodproxy/0.1";
};

/// Success when the file at `path` loads as the client loads `client_options::ca_file` (PEM
/// certificates, at least one); otherwise OpenSSL's code for why not (Asio's ssl category, or the
/// errno in the system category for a file it could not open) with a one-line detail ("no
/// certificate or crl found ...").
[[nodiscard]] outcome_of<void> check_ca_bundle(const std::string& path);

/// Thread-safe; one instance per process is enough. Must outlive every get() in progress.
class http_client {
 public:
  http_client(boost::asio::any_io_executor executor, client_options options);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// GETs `url` (http:// or https://). A 200 body is streamed to `sink`; other bodies are read
  /// and discarded (at most 64 KiB) so the connection can be reused. Never throws for network
  /// problems; they come back in the result.
  boost::asio::awaitable<fetch_result> get(std::string url, body_sink sink, deadlines limits);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gomodproxy::upstream
