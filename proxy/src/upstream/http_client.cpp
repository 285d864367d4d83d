#include "upstream/http_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "upstream/dns_resolver.hpp"
#include "upstream/gzip_decoder.hpp"
#include "upstream/proxy_env.hpp"

namespace gomodproxy::upstream {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t piece_size = std::size_t{64} * 1024;
constexpr std::size_t error_body_cap = std::size_t{64} * 1024;
constexpr std::size_t header_cap = std::size_t{64} * 1024;
constexpr std::size_t reason_cap = 120;

// Reasons end up in one-line error bodies shown by the go command, so they are kept printable.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), reason_cap));
  for (char c : text) {
    if (out.size() == reason_cap) break;
    auto u = static_cast<unsigned char>(c);
    if (u == '\r' || u == '\n' || u == '\t') {
      out.push_back(' ');
    } else {
      out.push_back(u >= 0x20 && u < 0x7F ? c : '?');
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// The deadline that bounds one phase: the phase's own, or the total when that comes first.
struct deadline {
  clock_type::time_point at;
  const char* phase;
  std::chrono::milliseconds span;
};

deadline earliest(clock_type::time_point phase_at, const char* phase,
                  std::chrono::milliseconds phase_span, const deadline& total) {
  if (total.at <= phase_at) return total;
  return {phase_at, phase, phase_span};
}

fetch_result failure(const std::string& reason) {
  fetch_result r;
  r.result = outcome::error;
  r.reason = one_line(reason);
  return r;
}

fetch_result timed_out(const deadline& d) {
  fetch_result r;
  r.result = outcome::timeout;
  r.reason = "timeout after " + format_duration(d.span) + " (" + d.phase + ")";
  return r;
}

std::string transport_reason(const error_code& ec) {
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == net::error::connection_reset || ec == net::error::broken_pipe ||
      ec == net::error::connection_aborted) {
    return "connection reset";
  }
  if (ec == net::error::host_not_found) return "dns: host not found";
  if (ec == net::error::host_not_found_try_again) return "dns: temporary failure";
  if (ec == net::error::no_data) return "dns: no address for host";
  if (ec == net::error::network_unreachable) return "network unreachable";
  if (ec == net::error::host_unreachable) return "host unreachable";
  if (ec == net::error::timed_out) return "connection timed out";
  if (ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::ssl::error::stream_truncated) {
    return "connection closed";
  }
  if (ec == http::error::partial_message) return "truncated response";
  if (ec.category() == net::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return std::string("tls: ") + (reason ? reason : "error");
  }
  if (ec.category() == make_error_code(http::error::bad_version).category()) {
    return "bad response: " + ec.message();
  }
  return ec.message();
}

struct url_parts {
  bool tls = false;
  std::string host;  // lower case, IPv6 without brackets
  std::uint16_t port = 0;
  std::string host_header;
  std::string target;  // origin-form: path and query
  std::optional<std::string> authorization;
  [[nodiscard]] std::string origin() const {
    return std::string(tls ? "https://" : "http://") + host_header;
  }
};

bool is_ip_literal(const std::string& host) {
  error_code ec;
  (void)net::ip::make_address(host, ec);
  return !ec;
}

[[nodiscard]] outcome_of<url_parts> parse_url(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return invalid_request("invalid URL");
  url_parts parts;
  auto scheme = lower(parsed->scheme());
  if (scheme == "https") {
    parts.tls = true;
  } else if (scheme != "http") {
    return invalid_request("unsupported URL scheme \"" + one_line(scheme) + "\"");
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) {
    return invalid_request("URL has no host");
  }
  parts.host = lower(parsed->host_address());
  parts.port = parts.tls ? 443 : 80;
  if (parsed->has_port() && !parsed->port().empty()) {
    auto n = parsed->port_number();
    if (n == 0) return invalid_request("invalid port in URL");
    parts.port = n;
  }
  parts.host_header = lower(parsed->encoded_host_and_port());
  parts.target = parsed->encoded_path();
  if (parts.target.empty()) parts.target = "/";
  if (parsed->has_query()) parts.target += "?" + std::string(parsed->encoded_query());
  if (parsed->has_userinfo()) {
    if (!parts.tls) return invalid_request("refusing to pass credentials to insecure URL");
    parts.authorization = basic_credentials(parsed->user(), parsed->password());
  }
  return parts;
}

/// One TCP (or TLS) connection to an origin, possibly through a proxy. All its operations run on
/// its strand, so Beast's timers and the coroutine using it never race.
struct connection {
  explicit connection(const net::any_io_executor& executor)
      : strand(net::make_strand(executor)), tcp(strand) {}

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : tcp; }

  net::strand<net::any_io_executor> strand;
  beast::tcp_stream tcp;  // moved into `tls` after the handshake is set up
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  clock_type::time_point idle_since;
};

/// One request to one URL: where to connect and what to send.
struct hop {
  url_parts target;
  std::optional<proxy_endpoint> proxy;
  std::string pool_key;
};

struct attempt_outcome {
  fetch_result result;
  bool stale = false;                    // a reused connection failed before any response byte
  std::optional<std::string> location;   // a redirect to follow
  std::unique_ptr<connection> reusable;  // goes back to the pool
};

/// Delivers decoded body bytes to the sink under the size limit.
class body_receiver {
 public:
  body_receiver(const body_sink& sink, std::uint64_t limit, bool gzip)
      : sink_(sink), limit_(limit) {
    if (gzip) gzip_ = std::make_unique<gzip_decoder>();
  }

  bool write(std::string_view raw) {
    raw_bytes_ += raw.size();
    if (!gzip_) return accept(raw);
    auto status = gzip_->write(raw, [this](std::string_view piece) { return accept(piece); });
    if (status == gzip_decoder::status::corrupt) error_ = "gzip: corrupt body";
    return status == gzip_decoder::status::ok;
  }

  bool finish() {
    // An empty gzip-encoded body reads as empty in Go; a cut-off one is an error.
    if (gzip_ && raw_bytes_ > 0 && !gzip_->complete()) {
      error_ = "gzip: truncated body";
      return false;
    }
    return true;
  }

  [[nodiscard]] std::uint64_t delivered() const { return delivered_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  bool accept(std::string_view piece) {
    if (piece.size() > limit_ - delivered_) {
      error_ = "body exceeds limit";
      return false;
    }
    delivered_ += piece.size();
    if (!sink_(piece)) {
      error_ = "aborted by receiver";
      return false;
    }
    return true;
  }

  const body_sink& sink_;
  std::uint64_t limit_;
  std::uint64_t delivered_ = 0;
  std::uint64_t raw_bytes_ = 0;
  std::unique_ptr<gzip_decoder> gzip_;
  std::string error_;
};

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Go shows an error body only when it is text/plain in UTF-8 or ASCII (spec 1.8).
bool is_plain_text(std::string_view content_type) {
  auto type = lower(content_type);
  auto semi = type.find(';');
  auto media = std::string_view(type).substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media != "text/plain") return false;
  if (semi == std::string::npos) return true;
  auto params = std::string_view(type).substr(semi + 1);
  auto charset = params.find("charset=");
  if (charset == std::string_view::npos) return true;
  auto value = params.substr(charset + 8);
  value = value.substr(0, value.find(';'));
  if (!value.empty() && value.front() == '"') value = value.substr(1, value.find('"', 1) - 1);
  return value == "utf-8" || value == "us-ascii";
}

std::string status_reason(int status, std::string_view content_type, std::string_view body) {
  auto reason = std::to_string(status);
  if (!is_plain_text(content_type)) return reason;
  auto first_line = body.substr(0, body.find('\n'));
  while (!first_line.empty() && std::isspace(static_cast<unsigned char>(first_line.back()))) {
    first_line.remove_suffix(1);
  }
  if (first_line.empty()) return reason;
  return one_line(reason + ": " + std::string(first_line));
}

}  // namespace

struct http_client::impl {
  impl(net::any_io_executor executor, client_options options)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        ssl_ctx_(net::ssl::context::tls_client) {
    if (options_.proxy_from_environment) {
      auto from_env = [](std::string& field, const char* upper, const char* lower_name) {
        if (!field.empty()) return;
        for (const char* name : {upper, lower_name}) {
          const char* value = std::getenv(name);
          if (value && *value) {
            field = value;
            return;
          }
        }
      };
      from_env(options_.https_proxy, "HTTPS_PROXY", "https_proxy");
      from_env(options_.http_proxy, "HTTP_PROXY", "http_proxy");
      from_env(options_.no_proxy, "NO_PROXY", "no_proxy");
    }
    if (!options_.https_proxy.empty()) https_proxy_ = parse_proxy_url(options_.https_proxy);
    if (!options_.http_proxy.empty()) http_proxy_ = parse_proxy_url(options_.http_proxy);
    no_proxy_ = no_proxy_list(options_.no_proxy);

    // Start-up configuration: a bad ca_file throws here, which is where it should be noticed.
    ssl_ctx_.set_default_verify_paths();
    if (!options_.ca_file.empty()) ssl_ctx_.load_verify_file(options_.ca_file);
    ssl_ctx_.set_verify_mode(net::ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ssl_ctx_.native_handle(), TLS1_2_VERSION);
    static constexpr std::array<unsigned char, 9> alpn = {8,   'h', 't', 't', 'p',
                                                          '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ssl_ctx_.native_handle(), alpn.data(),
                            static_cast<unsigned>(alpn.size()));
  }

  ~impl() {
    // No get() is in progress (documented precondition), so nothing else touches these.
    idle_.clear();
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  net::awaitable<fetch_result> fetch(std::string url, body_sink sink, deadlines limits);

 private:
  using proxy_choice = std::optional<outcome_of<proxy_endpoint>>;

  [[nodiscard]] outcome_of<hop> plan(url_parts target) const;
  net::awaitable<attempt_outcome> attempt(std::unique_ptr<connection> conn, bool reused,
                                          const hop& h, const body_sink& sink, deadlines limits,
                                          clock_type::time_point started, deadline total);
  net::awaitable<std::optional<fetch_result>> establish(connection& conn, const hop& h,
                                                        deadlines limits, deadline total);
  template <class Stream>
  net::awaitable<void> exchange(Stream& stream, beast::tcp_stream& lowest, bool reused,
                                const hop& h, const body_sink& sink, deadlines limits,
                                clock_type::time_point started, deadline total,
                                attempt_outcome& out, bool& keep);

  std::unique_ptr<connection> take_idle(const std::string& key);
  void put_idle(const std::string& key, std::unique_ptr<connection> conn);
  void discard(std::unique_ptr<connection> conn);

  net::any_io_executor executor_;
  client_options options_;
  net::ssl::context ssl_ctx_;
  proxy_choice https_proxy_, http_proxy_;
  no_proxy_list no_proxy_;
  dns_resolver dns_;

  std::mutex idle_mutex_;  // guards idle_; held only to move pointers in and out
  std::unordered_map<std::string, std::vector<std::unique_ptr<connection>>> idle_;
};

void http_client::impl::discard(std::unique_ptr<connection> conn) {
  if (!conn) return;
  // Closing on the connection's own strand keeps it serialised with any timer handler of Beast's
  // that may still be queued there.
  auto strand = conn->strand;
  net::post(strand, [doomed = std::move(conn)]() mutable { doomed.reset(); });
}

std::unique_ptr<connection> http_client::impl::take_idle(const std::string& key) {
  std::vector<std::unique_ptr<connection>> expired;
  std::unique_ptr<connection> found;
  auto oldest_allowed = clock_type::now() - options_.idle_timeout;
  {
    std::lock_guard lock(idle_mutex_);
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    // Oldest first: expired ones are at the front, the most recently used (least likely to have
    // been closed by the server) at the back.
    auto& list = it->second;
    auto fresh = std::find_if(list.begin(), list.end(),
                              [&](const auto& c) { return c->idle_since >= oldest_allowed; });
    std::move(list.begin(), fresh, std::back_inserter(expired));
    list.erase(list.begin(), fresh);
    if (!list.empty()) {
      found = std::move(list.back());
      list.pop_back();
    }
    if (list.empty()) idle_.erase(it);
  }
  for (auto& c : expired) discard(std::move(c));
  return found;
}

void http_client::impl::put_idle(const std::string& key, std::unique_ptr<connection> conn) {
  std::unique_ptr<connection> evicted;
  conn->idle_since = clock_type::now();
  {
    std::lock_guard lock(idle_mutex_);
    auto& list = idle_[key];
    list.push_back(std::move(conn));
    if (list.size() > options_.max_idle_per_origin) {
      evicted = std::move(list.front());
      list.erase(list.begin());
    }
  }
  discard(std::move(evicted));
}

outcome_of<hop> http_client::impl::plan(url_parts target) const {
  hop h;
  const auto& choice = target.tls ? https_proxy_ : http_proxy_;
  if (choice && !no_proxy_.bypass(target.host, target.port)) {
    if (!*choice) {
      auto problem = choice->error();
      return gomodproxy::failure{problem.code, "proxy: " + problem.detail};
    }
    h.proxy = **choice;
  }
  h.pool_key = std::string(target.tls ? "https://" : "http://") + target.host + ":" +
               std::to_string(target.port);
  if (h.proxy) {
    h.pool_key += " via " + h.proxy->host + ":" + std::to_string(h.proxy->port) + " " +
                  h.proxy->authorization.value_or("");
  }
  h.target = std::move(target);
  return h;
}

net::awaitable<std::optional<fetch_result>> http_client::impl::establish(connection& conn,
                                                                         const hop& h,
                                                                         deadlines limits,
                                                                         deadline total) {
  auto limit = earliest(clock_type::now() + limits.connect, "connect", limits.connect, total);
  const std::string& dial_host = h.proxy ? h.proxy->host : h.target.host;
  auto dial_port = h.proxy ? h.proxy->port : h.target.port;

  auto endpoints = co_await dns_.resolve(dial_host, dial_port, limit.at);
  if (!endpoints) {
    if (endpoints.error() == net::error::timed_out) {
      // Said apart from a TCP or TLS stall: a silent name server calls for another remedy.
      co_return timed_out(earliest(limit.at, "connect: dns lookup", limits.connect, total));
    }
    co_return failure(transport_reason(endpoints.error()));
  }

  conn.tcp.expires_at(limit.at);
  auto [connect_ec, endpoint] = co_await conn.tcp.async_connect(*endpoints, use_tuple);
  (void)endpoint;
  if (connect_ec) {
    if (connect_ec == beast::error::timeout || clock_type::now() >= limit.at) {
      co_return timed_out(limit);
    }
    co_return failure(transport_reason(connect_ec));
  }
  error_code ignored;
  conn.tcp.socket().set_option(tcp::no_delay(true), ignored);

  if (h.proxy && h.target.tls) {
    auto authority =
        (h.target.host.find(':') != std::string::npos ? "[" + h.target.host + "]" : h.target.host) +
        ":" + std::to_string(h.target.port);
    http::request<http::empty_body> req{http::verb::connect, authority, 11};
    req.set(http::field::host, authority);
    req.set(http::field::user_agent, options_.user_agent);
    if (h.proxy->authorization) req.set(http::field::proxy_authorization, *h.proxy->authorization);
    auto [write_ec, written] = co_await http::async_write(conn.tcp, req, use_tuple);
    (void)written;
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    // A 200 to CONNECT has no body whatever its headers say; the tunnel starts right after.
    parser.skip(true);
    error_code read_ec = write_ec;
    if (!write_ec) {
      auto [ec, n] = co_await http::async_read(conn.tcp, buffer, parser, use_tuple);
      (void)n;
      read_ec = ec;
    }
    if (read_ec) {
      if (read_ec == beast::error::timeout || clock_type::now() >= limit.at) {
        co_return timed_out(limit);
      }
      co_return failure("proxy: " + transport_reason(read_ec));
    }
    if (parser.get().result_int() != 200) {
      co_return failure("proxy: CONNECT answered " + std::to_string(parser.get().result_int()));
    }
    if (buffer.size() != 0) co_return failure("proxy: unexpected bytes after CONNECT answer");
  }

  if (h.target.tls) {
    conn.tls.emplace(std::move(conn.tcp), ssl_ctx_);
    SSL* ssl = conn.tls->native_handle();
    bool ip = is_ip_literal(h.target.host);
    // SNI must not carry an IP address (RFC 6066); the certificate is checked against the
    // address instead.
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.target.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, h.target.host.c_str());
      SSL_set1_host(ssl, h.target.host.c_str());
    }
    conn.lowest().expires_at(limit.at);
    auto [handshake_ec] =
        co_await conn.tls->async_handshake(net::ssl::stream_base::client, use_tuple);
    if (handshake_ec) {
      if (handshake_ec == beast::error::timeout || clock_type::now() >= limit.at) {
        co_return timed_out(limit);
      }
      auto verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        co_return failure(std::string("tls: certificate verify failed: ") +
                          X509_verify_cert_error_string(verify));
      }
      auto reason = transport_reason(handshake_ec);
      if (!reason.starts_with("tls: ")) reason = "tls: handshake failed: " + reason;
      co_return failure(reason);
    }
  }
  co_return std::nullopt;
}

template <class Stream>
net::awaitable<void> http_client::impl::exchange(Stream& stream, beast::tcp_stream& lowest,
                                                 bool reused, const hop& h, const body_sink& sink,
                                                 deadlines limits, clock_type::time_point started,
                                                 deadline total, attempt_outcome& out, bool& keep) {
  keep = false;
  // Through a plain-HTTP proxy the request line carries the absolute URL.
  auto target = (h.proxy && !h.target.tls) ? h.target.origin() + h.target.target : h.target.target;
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, h.target.host_header);
  req.set(http::field::user_agent, options_.user_agent);
  req.set(http::field::accept_encoding, "gzip");
  if (h.target.authorization) req.set(http::field::authorization, *h.target.authorization);
  if (h.proxy && !h.target.tls && h.proxy->authorization) {
    req.set(http::field::proxy_authorization, *h.proxy->authorization);
  }

  auto first_byte =
      earliest(clock_type::now() + limits.first_byte, "first byte", limits.first_byte, total);
  auto timed_out_at = [](const error_code& ec, const deadline& d) {
    return ec == beast::error::timeout || clock_type::now() >= d.at;
  };

  lowest.expires_at(first_byte.at);
  auto [write_ec, written] = co_await http::async_write(stream, req, use_tuple);
  (void)written;
  if (write_ec) {
    if (timed_out_at(write_ec, first_byte)) {
      out.result = timed_out(first_byte);
      co_return;
    }
    out.stale = reused;
    out.result = failure(transport_reason(write_ec));
    co_return;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(header_cap);
  parser.body_limit(boost::none);
  lowest.expires_at(first_byte.at);
  auto [header_ec, header_bytes] =
      co_await http::async_read_header(stream, buffer, parser, use_tuple);
  (void)header_bytes;
  if (header_ec) {
    if (timed_out_at(header_ec, first_byte)) {
      out.result = timed_out(first_byte);
      co_return;
    }
    out.stale = reused && !parser.got_some();
    out.result = failure(transport_reason(header_ec));
    co_return;
  }

  const auto& response = parser.get();
  const auto status = static_cast<int>(response.result_int());
  out.result.status = status;
  out.result.content_type = one_line(response[http::field::content_type]);
  out.result.ttfb =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started);

  std::vector<char> piece(piece_size);
  // Beast reads as much as the buffer has room for (at least 512 bytes, at most 64 KiB), and the
  // parser moves every byte on into `piece`, so a buffer left at the header's size would take the
  // body 512 bytes per system call.
  buffer.reserve(piece_size);
  // Reads the next piece of raw body into `piece` before `limit`; returns its size, or sets `out`
  // on failure.
  auto read_piece = [&](const deadline& limit) -> net::awaitable<std::optional<std::size_t>> {
    lowest.expires_at(limit.at);
    parser.get().body().data = piece.data();
    parser.get().body().size = piece_size;
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    (void)n;
    if (ec == http::error::need_buffer) ec = {};
    auto got = piece_size - parser.get().body().size;
    if (ec) {
      if (timed_out_at(ec, limit)) {
        out.result.result = outcome::timeout;
        out.result.reason = timed_out(limit).reason;
      } else {
        out.result.result = outcome::error;
        out.result.reason = (ec == http::error::partial_message || ec == net::error::eof ||
                             ec == net::ssl::error::stream_truncated)
                                ? "truncated body"
                                : one_line(transport_reason(ec));
      }
      co_return std::nullopt;
    }
    co_return got;
  };

  if (status != 200) {
    // Read a small body to keep the connection and to quote a text/plain reason; a large or slow
    // one is not worth the wait, so the connection is dropped instead.
    auto discard_limit =
        earliest(clock_type::now() + limits.first_byte, "first byte", limits.first_byte, total);
    std::string body;
    auto declared = parser.content_length();
    bool small = !declared || *declared <= error_body_cap;
    while (small && !parser.is_done() && body.size() <= error_body_cap) {
      auto got = co_await read_piece(discard_limit);
      if (!got) break;
      body.append(piece.data(), std::min(*got, error_body_cap + 1 - body.size()));
    }
    bool drained = parser.is_done() && body.size() <= error_body_cap;
    keep = drained && parser.keep_alive() && buffer.size() == 0;
    bool identity = response[http::field::content_encoding].empty();
    auto location = response[http::field::location];
    if (is_redirect(status) && !location.empty()) {
      out.location = std::string(location);
      out.result.result = outcome::error;
      out.result.reason = std::to_string(status);
      co_return;
    }
    out.result.answer_text = (drained && identity)
                                 ? status_reason(status, response[http::field::content_type], body)
                                 : std::to_string(status);
    out.result.result = (status == 404 || status == 410) ? outcome::not_found : outcome::error;
    out.result.reason = (out.result.result == outcome::error && drained && identity)
                            ? status_reason(status, response[http::field::content_type], body)
                            : std::to_string(status);
    co_return;
  }

  auto encoding = lower(response[http::field::content_encoding]);
  bool gzip = encoding == "gzip" || encoding == "x-gzip";
  if (!gzip && !encoding.empty() && encoding != "identity") {
    out.result.result = outcome::error;
    out.result.reason = one_line("unsupported content-encoding \"" + encoding + "\"");
    co_return;
  }
  if (!gzip && parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
    out.result.result = outcome::error;
    out.result.reason = "body exceeds limit";
    co_return;
  }

  body_receiver receiver(sink, options_.max_body_bytes, gzip);
  while (!parser.is_done()) {
    auto got = co_await read_piece(total);
    if (got && *got > 0 && !receiver.write(std::string_view(piece.data(), *got))) {
      out.result.result = outcome::error;
      out.result.reason = receiver.error();
      out.result.body_bytes = receiver.delivered();
      co_return;
    }
    if (!got) {
      out.result.body_bytes = receiver.delivered();
      co_return;
    }
  }
  out.result.body_bytes = receiver.delivered();
  if (!receiver.finish()) {
    out.result.result = outcome::error;
    out.result.reason = receiver.error();
    co_return;
  }
  out.result.result = outcome::ok;
  out.result.reason.clear();
  keep = parser.keep_alive() && buffer.size() == 0;
}

net::awaitable<attempt_outcome> http_client::impl::attempt(std::unique_ptr<connection> conn,
                                                           bool reused, const hop& h,
                                                           const body_sink& sink, deadlines limits,
                                                           clock_type::time_point started,
                                                           deadline total) {
  attempt_outcome out;
  bool keep = false;
  try {
    if (!reused) {
      if (auto problem = co_await establish(*conn, h, limits, total)) {
        out.result = std::move(*problem);
        co_return out;
      }
    }
    if (conn->tls) {
      co_await exchange(*conn->tls, conn->lowest(), reused, h, sink, limits, started, total, out,
                        keep);
    } else {
      co_await exchange(conn->tcp, conn->tcp, reused, h, sink, limits, started, total, out, keep);
    }
  } catch (const std::exception& e) {
    out.result = failure(e.what());
    keep = false;
  }
  if (keep) {
    conn->lowest().expires_never();
    out.reusable = std::move(conn);
  }
  co_return out;
}

net::awaitable<fetch_result> http_client::impl::fetch(std::string url, body_sink sink,
                                                      deadlines limits) {
  auto started = clock_type::now();
  deadline total{started + limits.total, "total", limits.total};
  std::string current = std::move(url);
  std::optional<std::string> carried_authorization;  // from the original URL, same host only
  std::string authorization_host;

  for (int redirects = 0;; ++redirects) {
    auto parsed = parse_url(current);
    if (!parsed) co_return failure(parsed.error().detail);
    auto target = *std::move(parsed);
    if (redirects == 0) {
      carried_authorization = target.authorization;
      authorization_host = target.host;
    } else if (!target.authorization && target.tls && target.host == authorization_host) {
      target.authorization = carried_authorization;
    }
    auto planned = plan(std::move(target));
    if (!planned) co_return failure(planned.error().detail);
    const auto& h = *planned;

    attempt_outcome result;
    // A pooled connection the server has closed fails before any response byte; GET is
    // idempotent, so that one case is retried once on a fresh connection.
    for (int round = 0; round < 2; ++round) {
      auto conn = round == 0 ? take_idle(h.pool_key) : nullptr;
      bool reused = conn != nullptr;
      if (!conn) conn = std::make_unique<connection>(executor_);
      auto strand = conn->strand;
      result = co_await net::co_spawn(
          strand, attempt(std::move(conn), reused, h, sink, limits, started, total),
          net::use_awaitable);
      if (!(result.stale && reused)) break;
    }
    if (result.reusable) put_idle(h.pool_key, std::move(result.reusable));

    if (!result.location) co_return std::move(result.result);
    // A redirect that is not followed fails with the redirect's own status.
    auto refuse = [&](const std::string& reason) {
      auto r = failure(reason);
      r.status = result.result.status;
      r.content_type = std::move(result.result.content_type);
      r.ttfb = result.result.ttfb;
      return r;
    };
    if (redirects >= options_.max_redirects) {
      co_return refuse("stopped after " + std::to_string(options_.max_redirects) + " redirects");
    }
    auto base = boost::urls::parse_uri(current);
    auto reference = boost::urls::parse_uri_reference(*result.location);
    boost::urls::url next;
    bool resolved = base && reference;
    if (resolved) {
      next = *base;
      resolved = next.resolve(*reference).has_value();
    }
    if (!resolved) co_return refuse("invalid redirect location");
    next.remove_fragment();
    if (h.target.tls && lower(next.scheme()) == "http") {
      co_return refuse("redirected from secure URL to insecure URL");
    }
    current = std::string(next.buffer());
  }
}

outcome_of<void> check_ca_bundle(const std::string& path) {
  net::ssl::context context(net::ssl::context::tls_client);
  boost::system::error_code ec;
  context.load_verify_file(path, ec);
  if (!ec) return {};
  return gomodproxy::failure{ec, one_line(ec.message())};
}

http_client::http_client(boost::asio::any_io_executor executor, client_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(options))) {}

http_client::~http_client() = default;

boost::asio::awaitable<fetch_result> http_client::get(std::string url, body_sink sink,
                                                      deadlines limits) {
  try {
    co_return co_await impl_->fetch(std::move(url), std::move(sink), limits);
  } catch (const std::exception& e) {
    co_return failure(e.what());
  }
}

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  auto text = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
  while (text.back() == '0') text.pop_back();
  return text + "s";
}

}  // namespace gomodproxy::upstream
