#include "cache_admin/admin_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <variant>

#include "server/setting_file.hpp"

namespace gomodproxy::cache_admin {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr std::chrono::seconds connect_limit{10};
constexpr std::chrono::seconds exchange_limit{5 * 60};
constexpr std::chrono::seconds upload_limit{30 * 60};

template <class Stream, class Request>
admin_reply exchange(Stream& stream, beast::tcp_stream& lowest, Request& request,
                     std::chrono::seconds limit = exchange_limit) {
  lowest.expires_after(limit);
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read(stream, buffer, parser);
  return {static_cast<int>(parser.get().result_int()), parser.get().body()};
}

template <class Body>
admin_reply send_request(const std::string& proxy_url, http::request<Body>& request,
                         const std::string& token, const std::string& ca_file,
                         std::chrono::seconds limit) {
  auto parsed = boost::urls::parse_absolute_uri(proxy_url);
  if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
      parsed->host().empty()) {
    return {0, "--proxy: expected an http:// or https:// URL, got " + proxy_url};
  }
  const bool tls = parsed->scheme() == "https";
  const std::string host = parsed->host();
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : (tls ? "443" : "80");
  std::string base = parsed->path();
  while (!base.empty() && base.back() == '/') base.pop_back();

  request.target(base + std::string(request.target()));
  request.set(http::field::host, parsed->has_port() ? host + ":" + port : host);
  request.set(http::field::user_agent, "gomodproxy-cache");
  request.set(http::field::authorization, "Bearer " + token);
  request.prepare_payload();

  try {
    net::io_context io;
    net::ip::tcp::resolver resolver(io);
    beast::tcp_stream tcp(io);
    tcp.expires_after(connect_limit);
    tcp.connect(resolver.resolve(host, port));
    if (!tls) return exchange(tcp, tcp, request, limit);

    net::ssl::context context(net::ssl::context::tls_client);
    context.set_default_verify_paths();
    if (!ca_file.empty()) context.load_verify_file(ca_file);
    context.set_verify_mode(net::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream&> stream(tcp, context);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
      return {0, "cannot set the TLS server name"};
    }
    stream.set_verify_callback(net::ssl::host_name_verification(host));
    stream.handshake(net::ssl::stream_base::client);
    return exchange(stream, tcp, request, limit);
  } catch (const boost::system::system_error& error) {
    // The code's message alone: what() carries Asio's source location too.
    return {0, "cannot reach " + proxy_url + ": " + error.code().message()};
  } catch (const std::exception& error) {
    // The messages of Asio, Beast and OpenSSL name the failure, never the request's headers.
    return {0, std::string("cannot reach ") + proxy_url + ": " + error.what()};
  }
}

}  // namespace

admin_reply admin_request(const std::string& proxy_url, const std::string& method,
                          const std::string& path_and_query, const std::string& token,
                          const std::string& ca_file) {
  http::request<http::empty_body> request{method == "POST" ? http::verb::post : http::verb::get,
                                          path_and_query, 11};
  return send_request(proxy_url, request, token, ca_file, exchange_limit);
}

admin_reply admin_upload(const std::string& proxy_url, const std::string& path_and_query,
                         const std::string& token, const std::string& ca_file,
                         const std::string& body_file) {
  http::request<http::file_body> request{http::verb::post, path_and_query, 11};
  beast::error_code error;
  request.body().open(body_file.c_str(), beast::file_mode::scan, error);
  if (error) return {0, "cannot read " + body_file + ": " + error.message()};
  request.set(http::field::content_type, "application/x-tar");
  return send_request(proxy_url, request, token, ca_file, upload_limit);
}

outcome_of<std::string> admin_token_from_setting(const std::string& setting) {
  if (!setting.starts_with('@')) return setting;
  auto content = server::read_setting_file(setting.substr(1));
  if (!content) {
    return failure{content.error().code,
                   "cannot read " + setting.substr(1) + ": " + content.error().detail};
  }
  const std::string& text = *content;
  return text.substr(0, text.find_first_of("\r\n"));
}

}  // namespace gomodproxy::cache_admin
