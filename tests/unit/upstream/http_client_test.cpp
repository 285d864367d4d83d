#include "upstream/http_client.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cpp/gzip_compress.hpp"
#include "tests/support/cpp/loopback_connect_proxy.hpp"
#include "tests/support/cpp/loopback_http_server.hpp"
#include "tests/support/cpp/test_certificates.hpp"

namespace gomodproxy::upstream {
namespace {

namespace net = boost::asio;
using test::loopback_connect_proxy;
using test::loopback_http_server;
using test::scripted_request;
using test::scripted_response;
using behaviour = scripted_response::behaviour;
using namespace std::chrono_literals;

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 generator(seed);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(generator() & 0xFF);
  return out;
}

std::string gzip(const std::string& plain) { return test_support::gzip_compress(plain); }

client_options local_options() {
  client_options options;
  options.proxy_from_environment = false;
  return options;
}

deadlines short_limits() {
  deadlines limits;
  limits.connect = 2s;
  limits.first_byte = 2s;
  limits.total = 5s;
  return limits;
}

struct get_run {
  fetch_result result;
  std::string body;
  std::size_t largest_piece = 0;
  std::chrono::milliseconds elapsed{0};
};

/// One client on a single-threaded io_context driven by the test thread, so several gets can
/// share its connection pool.
class client_harness {
 public:
  explicit client_harness(client_options options = local_options())
      : client_(ioc_.get_executor(), std::move(options)) {}

  get_run get(std::string url, deadlines limits = short_limits(),
              std::function<bool(std::string_view)> refuse_when = {}) {
    get_run run;
    auto sink = [&run, refuse_when](std::string_view piece) {
      run.body.append(piece);
      run.largest_piece = std::max(run.largest_piece, piece.size());
      return !(refuse_when && refuse_when(run.body));
    };
    bool done = false;
    auto started = std::chrono::steady_clock::now();
    net::co_spawn(
        ioc_,
        [&]() -> net::awaitable<void> {
          run.result = co_await client_.get(url, sink, limits);
          done = true;
        },
        net::detached);
    ioc_.restart();
    ioc_.run_for(15s);
    run.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    EXPECT_TRUE(done) << "get did not finish: " << url;
    return run;
  }

 private:
  net::io_context ioc_;
  http_client client_;
};

get_run get_once(const std::string& url, client_options options = local_options(),
                 deadlines limits = short_limits()) {
  client_harness harness(std::move(options));
  return harness.get(url, limits);
}

scripted_response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8") {
  scripted_response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = {{"Content-Type", std::move(content_type)}};
  return r;
}

TEST(http_client, ok_with_content_length_streams_whole_body) {
  const auto body = random_bytes(3 * 1024 * 1024 + 17, 1);
  loopback_http_server server([&](const scripted_request&) {
    auto r = text(200, body, "application/zip");
    return r;
  });
  auto run = get_once(server.url("/example.com/m/@v/v1.0.0.zip"));
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_EQ(run.result.status, 200);
  EXPECT_EQ(run.result.content_type, "application/zip");
  EXPECT_EQ(run.result.body_bytes, body.size());
  EXPECT_EQ(run.body.size(), body.size());
  EXPECT_TRUE(run.body == body);
  EXPECT_LE(run.largest_piece, 64u * 1024);
  EXPECT_GT(run.result.ttfb.count(), 0);

  auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].method, "GET");
  EXPECT_EQ(received[0].target, "/example.com/m/@v/v1.0.0.zip");
  EXPECT_EQ(received[0].headers["accept-encoding"], "gzip");
  EXPECT_EQ(received[0].headers["user-agent"], "gomodproxy/0.1");
  EXPECT_EQ(received[0].headers["host"], "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(received[0].headers.count("authorization"), 0u);
}

TEST(http_client, ok_with_chunked_body) {
  const auto body = random_bytes(2 * 1024 * 1024 + 5, 2);
  loopback_http_server server([&](const scripted_request&) {
    auto r = text(200, body, "application/octet-stream");
    r.chunked = true;
    r.chunk_size = 10007;  // chunk boundaries never line up with the client's pieces
    return r;
  });
  auto run = get_once(server.url("/chunked"));
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_EQ(run.result.body_bytes, body.size());
  EXPECT_TRUE(run.body == body);
}

TEST(http_client, statuses_map_to_outcomes) {
  struct row {
    scripted_response response;
    outcome expected;
    std::string reason;
    std::string answer_text;  // a 404's text is kept here, not in the reason
  };
  const std::vector<row> rows = {
      {text(404, "not found: example.com/m@v1.0.0"), outcome::not_found, "404",
       "404: not found: example.com/m@v1.0.0"},
      {text(410, "gone"), outcome::not_found, "410", "410: gone"},
      {text(404, "<html>no</html>", "text/html"), outcome::not_found, "404", "404"},
      {text(500, "upstream exploded\nsecond line"), outcome::error, "500: upstream exploded",
       "500: upstream exploded"},
      {text(503, "<html>busy</html>", "text/html"), outcome::error, "503", "503"},
      {text(502, "bad\x01gateway"), outcome::error, "502: bad?gateway", "502: bad?gateway"},
      {text(500, std::string(300, 'x')), outcome::error, "500: " + std::string(115, 'x'),
       "500: " + std::string(115, 'x')},
      {text(204, ""), outcome::error, "204", "204"},
      {text(304, ""), outcome::error, "304", "304"},
      {text(302, "no location header"), outcome::error, "302: no location header",
       "302: no location header"},
  };
  for (const auto& r : rows) {
    loopback_http_server server([&](const scripted_request&) { return r.response; });
    auto run = get_once(server.url("/x"));
    EXPECT_EQ(run.result.result, r.expected) << r.response.status;
    EXPECT_EQ(run.result.status, r.response.status);
    EXPECT_EQ(run.result.reason, r.reason);
    EXPECT_EQ(run.result.answer_text, r.answer_text);
    EXPECT_TRUE(run.body.empty()) << "non-200 bodies never reach the sink";
  }
  loopback_http_server ok([](const scripted_request&) { return text(200, "body"); });
  EXPECT_EQ(get_once(ok.url("/x")).result.answer_text, "");
}

TEST(http_client, connection_refused_is_error) {
  std::uint16_t port = 0;
  {
    net::io_context ioc;
    net::ip::tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  auto run = get_once("http://127.0.0.1:" + std::to_string(port) + "/x");
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_EQ(run.result.reason, "connection refused");
  EXPECT_EQ(run.result.status, 0);
}

TEST(http_client, silent_server_times_out_on_first_byte) {
  loopback_http_server server([](const scripted_request&) {
    scripted_response r;
    r.mode = behaviour::stall_before_headers;
    return r;
  });
  deadlines limits = short_limits();
  limits.first_byte = 300ms;
  auto run = get_once(server.url("/slow"), local_options(), limits);
  EXPECT_EQ(run.result.result, outcome::timeout);
  EXPECT_EQ(run.result.reason, "timeout after 300ms (first byte)");
  EXPECT_GE(run.elapsed, 250ms);
  EXPECT_LT(run.elapsed, 3s);
}

TEST(http_client, stall_after_headers_times_out_on_total) {
  loopback_http_server server([](const scripted_request&) {
    auto r = text(200, std::string(1000, 'a'));
    r.mode = behaviour::stall_after_headers;
    return r;
  });
  deadlines limits = short_limits();
  limits.total = 500ms;
  auto run = get_once(server.url("/stall"), local_options(), limits);
  EXPECT_EQ(run.result.result, outcome::timeout);
  EXPECT_EQ(run.result.reason, "timeout after 500ms (total)");
  EXPECT_EQ(run.result.status, 200);
  EXPECT_LT(run.elapsed, 3s);
}

TEST(http_client, truncated_body_is_error) {
  for (bool chunked : {false, true}) {
    loopback_http_server server([&](const scripted_request&) {
      auto r = text(200, random_bytes(200000, 3), "application/zip");
      r.chunked = chunked;
      r.mode = behaviour::truncate_body;
      r.truncate_at = 70000;
      return r;
    });
    auto run = get_once(server.url("/cut"));
    EXPECT_EQ(run.result.result, outcome::error) << "chunked=" << chunked;
    EXPECT_EQ(run.result.reason, "truncated body") << "chunked=" << chunked;
    EXPECT_LE(run.body.size(), 70000u);
  }
}

TEST(http_client, gzip_body_is_decoded) {
  std::string plain;
  for (int i = 0; plain.size() < 1024 * 1024; ++i) {
    plain += "example.com/module v1.0." + std::to_string(i) + " h1:abc=\n";
  }
  auto compressed = gzip(plain);
  ASSERT_LT(compressed.size(), plain.size() / 4);
  for (bool chunked : {false, true}) {
    loopback_http_server server([&](const scripted_request&) {
      auto r = text(200, compressed);
      r.headers.emplace_back("Content-Encoding", "gzip");
      r.chunked = chunked;
      return r;
    });
    auto run = get_once(server.url("/list"));
    EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
    EXPECT_EQ(run.result.body_bytes, plain.size());
    EXPECT_TRUE(run.body == plain);
    EXPECT_LE(run.largest_piece, 64u * 1024);
  }
}

TEST(http_client, bad_encodings_are_errors) {
  struct row {
    std::string encoding;
    std::string body;
    std::string reason;
  };
  const std::vector<row> rows = {
      {"br", "whatever", "unsupported content-encoding \"br\""},
      {"deflate", "whatever", "unsupported content-encoding \"deflate\""},
      {"gzip", "this is not gzip at all", "gzip: corrupt body"},
      {"gzip", gzip(std::string(100000, 'z')).substr(0, 40), "gzip: truncated body"},
  };
  for (const auto& r : rows) {
    loopback_http_server server([&](const scripted_request&) {
      auto response = text(200, r.body);
      response.headers.emplace_back("Content-Encoding", r.encoding);
      return response;
    });
    auto run = get_once(server.url("/enc"));
    EXPECT_EQ(run.result.result, outcome::error) << r.encoding;
    EXPECT_EQ(run.result.reason, r.reason);
  }
}

// Serves /hop/N as a redirect to hop N-1 (alternating relative and absolute Locations) and
// /hop/0 as the final answer.
scripted_response redirect_chain(const scripted_request& request,
                                 const std::string& absolute_base) {
  auto n = std::stoi(request.target.substr(request.target.rfind('/') + 1));
  if (n == 0) return text(200, "final");
  scripted_response r;
  r.status = n % 2 == 0 ? 302 : 301;
  auto next = std::to_string(n - 1);
  r.headers = {{"Location", n % 3 == 0 ? absolute_base + "/hop/" + next : next}};
  return r;
}

TEST(http_client, redirects_are_followed_up_to_ten) {
  std::string base;
  loopback_http_server server([&](const scripted_request& r) { return redirect_chain(r, base); });
  base = server.url("");

  auto ten = get_once(server.url("/hop/10"));
  EXPECT_EQ(ten.result.result, outcome::ok) << ten.result.reason;
  EXPECT_EQ(ten.body, "final");
  EXPECT_EQ(server.requests(), 11);

  auto eleven = get_once(server.url("/hop/11"));
  EXPECT_EQ(eleven.result.result, outcome::error);
  EXPECT_EQ(eleven.result.reason, "stopped after 10 redirects");
  EXPECT_EQ(eleven.result.status, 301);  // /hop/1, the eleventh redirect
  EXPECT_TRUE(eleven.body.empty());
}

TEST(http_client, redirect_statuses_and_relative_forms) {
  for (int status : {301, 302, 303, 307, 308}) {
    loopback_http_server server([&](const scripted_request& r) {
      if (r.target == "/a/b/start") {
        scripted_response response;
        response.status = status;
        response.headers = {{"Location", "../c/end?x=1"}};
        response.body = "moved";
        return response;
      }
      if (r.target == "/a/c/end?x=1") return text(200, "landed");
      return text(404, "unexpected " + r.target);
    });
    auto run = get_once(server.url("/a/b/start"));
    EXPECT_EQ(run.result.result, outcome::ok) << status << " " << run.result.reason;
    EXPECT_EQ(run.body, "landed");
    EXPECT_EQ(server.connections(), 1) << "the redirect reused the kept-alive connection";
  }
}

TEST(http_client, body_limit_is_enforced) {
  const auto body = random_bytes(300000, 4);
  struct row {
    bool chunked;
    bool gzipped;
  };
  for (auto r : {row{false, false}, row{true, false}, row{false, true}}) {
    loopback_http_server server([&](const scripted_request&) {
      auto response = text(200, r.gzipped ? gzip(body) : body, "application/zip");
      if (r.gzipped) response.headers.emplace_back("Content-Encoding", "gzip");
      response.chunked = r.chunked;
      return response;
    });
    auto options = local_options();
    options.max_body_bytes = 100000;
    auto run = get_once(server.url("/big"), options);
    EXPECT_EQ(run.result.result, outcome::error);
    EXPECT_EQ(run.result.reason, "body exceeds limit");
    EXPECT_LE(run.body.size(), 100000u);

    options.max_body_bytes = body.size();  // exactly at the limit is fine
    auto at_limit = get_once(server.url("/big"), options);
    EXPECT_EQ(at_limit.result.result, outcome::ok) << at_limit.result.reason;
    EXPECT_TRUE(at_limit.body == body);
  }
}

TEST(http_client, sink_refusal_aborts) {
  loopback_http_server server(
      [&](const scripted_request&) { return text(200, random_bytes(1 << 20, 5)); });
  client_harness harness;
  auto run = harness.get(server.url("/x"), short_limits(),
                         [](std::string_view so_far) { return so_far.size() >= 100000; });
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_EQ(run.result.reason, "aborted by receiver");
  EXPECT_LT(run.body.size(), std::size_t{1} << 20);

  // The aborted connection is not reused: the next get works on a fresh one.
  auto again = harness.get(server.url("/x"));
  EXPECT_EQ(again.result.result, outcome::ok) << again.result.reason;
  EXPECT_EQ(server.connections(), 2);
}

TEST(http_client, keep_alive_reuses_one_connection) {
  loopback_http_server server([&](const scripted_request& r) {
    return r.target == "/missing" ? text(404, "nope") : text(200, "payload " + r.target);
  });
  client_harness harness;
  for (int i = 0; i < 5; ++i) {
    auto path = i == 2 ? std::string("/missing") : "/v" + std::to_string(i);
    auto run = harness.get(server.url(path));
    EXPECT_EQ(run.result.result, i == 2 ? outcome::not_found : outcome::ok) << run.result.reason;
  }
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.connections(), 1);
}

TEST(http_client, large_error_body_is_not_read_and_drops_the_connection) {
  for (bool chunked : {false, true}) {
    loopback_http_server server([&](const scripted_request& r) {
      if (r.target == "/ok") return text(200, "fine");
      auto response = text(500, "big\n" + std::string(200 * 1024, 'e'));
      response.chunked = chunked;
      return response;
    });
    client_harness harness;
    auto run = harness.get(server.url("/big-error"));
    EXPECT_EQ(run.result.result, outcome::error);
    EXPECT_EQ(run.result.reason, "500") << "a body over 64 KiB is not quoted";
    EXPECT_EQ(harness.get(server.url("/ok")).result.result, outcome::ok);
    EXPECT_EQ(server.connections(), 2) << "chunked=" << chunked;
  }
}

TEST(http_client, stale_pooled_connection_is_retried_on_a_fresh_one) {
  loopback_http_server server([&](const scripted_request&) {
    auto r = text(200, "once per connection");
    r.mode = behaviour::close_after_response;
    return r;
  });
  client_harness harness;
  for (int i = 0; i < 3; ++i) {
    auto run = harness.get(server.url("/x"));
    EXPECT_EQ(run.result.result, outcome::ok) << i << ": " << run.result.reason;
    EXPECT_EQ(run.body, "once per connection");
  }
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests(), 3);
}

TEST(http_client, pool_limits_are_honoured) {
  loopback_http_server server([&](const scripted_request&) { return text(200, "x"); });
  auto no_idle = local_options();
  no_idle.max_idle_per_origin = 0;
  client_harness without_pool(no_idle);
  EXPECT_EQ(without_pool.get(server.url("/1")).result.result, outcome::ok);
  EXPECT_EQ(without_pool.get(server.url("/2")).result.result, outcome::ok);
  EXPECT_EQ(server.connections(), 2);

  auto instant_expiry = local_options();
  instant_expiry.idle_timeout = 0s;
  client_harness expiring(instant_expiry);
  EXPECT_EQ(expiring.get(server.url("/3")).result.result, outcome::ok);
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(expiring.get(server.url("/4")).result.result, outcome::ok);
  EXPECT_EQ(server.connections(), 4);
}

TEST(http_client, bad_urls_are_refused_without_a_request) {
  loopback_http_server server([&](const scripted_request&) { return text(200, "x"); });
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"http://user:secret@127.0.0.1:" + std::to_string(server.port()) + "/x",
       "refusing to pass credentials to insecure URL"},
      {"ftp://127.0.0.1/x", "unsupported URL scheme \"ftp\""},
      {"not a url", "invalid URL"},
  };
  for (const auto& [url, reason] : rows) {
    auto run = get_once(url);
    EXPECT_EQ(run.result.result, outcome::error) << url;
    EXPECT_EQ(run.result.reason, reason);
  }
  EXPECT_EQ(server.requests(), 0);
}

TEST(http_client, plain_http_proxy_gets_absolute_form) {
  loopback_http_server proxy([&](const scripted_request& r) { return text(200, r.target); });
  auto options = local_options();
  options.http_proxy = "user:pw@127.0.0.1:" + std::to_string(proxy.port());
  auto run = get_once("http://module.example:8080/m/@v/list", options);
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_EQ(run.body, "http://module.example:8080/m/@v/list");
  auto received = proxy.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].headers["host"], "module.example:8080");
  EXPECT_EQ(received[0].headers["proxy-authorization"], "Basic dXNlcjpwdw==");
}

/// A TLS server for 127.0.0.1 and localhost signed by a CA written to a temporary file.
class tls_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = test::make_test_pki({"localhost"}, {"127.0.0.1"});
    server_ctx_ = make_server_context(pki_);
    char path[] = "/tmp/gmp_upstream_ca_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    ca_file_ = path;
    std::ofstream(ca_file_) << pki_.ca_pem;
  }
  void TearDown() override { std::filesystem::remove(ca_file_); }

  static std::unique_ptr<net::ssl::context> make_server_context(const test::test_pki& pki) {
    auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    ctx->use_certificate_chain(net::buffer(pki.server_cert_pem));
    ctx->use_private_key(net::buffer(pki.server_key_pem), net::ssl::context::pem);
    return ctx;
  }

  client_options trusting_options() const {
    auto options = local_options();
    options.ca_file = ca_file_;
    return options;
  }

  test::test_pki pki_;
  std::unique_ptr<net::ssl::context> server_ctx_;
  std::string ca_file_;
};

TEST_F(tls_fixture, https_with_trusted_ca_works_and_sends_credentials) {
  const auto body = random_bytes(1024 * 1024, 6);
  loopback_http_server server([&](const scripted_request&) { return text(200, body); },
                              server_ctx_.get());
  client_harness harness(trusting_options());
  auto run = harness.get("https://alice:s3cret@127.0.0.1:" + std::to_string(server.port()) + "/x");
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_TRUE(run.body == body);
  auto by_name = harness.get("https://localhost:" + std::to_string(server.port()) + "/y");
  EXPECT_EQ(by_name.result.result, outcome::ok) << by_name.result.reason;

  auto received = server.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].headers["authorization"], "Basic YWxpY2U6czNjcmV0");
  EXPECT_EQ(received[1].headers.count("authorization"), 0u);
}

TEST_F(tls_fixture, https_keep_alive_and_stale_retry) {
  std::atomic<int> served{0};
  loopback_http_server server(
      [&](const scripted_request&) {
        auto r = text(200, "tls");
        if (++served == 3) r.mode = behaviour::close_after_response;
        return r;
      },
      server_ctx_.get());
  client_harness harness(trusting_options());
  for (int i = 0; i < 5; ++i) {
    auto run = harness.get(server.url("/k"));
    EXPECT_EQ(run.result.result, outcome::ok) << i << ": " << run.result.reason;
  }
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(tls_fixture, untrusted_certificate_is_error) {
  loopback_http_server server([&](const scripted_request&) { return text(200, "x"); },
                              server_ctx_.get());
  auto run = get_once(server.url("/x"));  // system store only: the test CA is unknown
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_NE(run.result.reason.find("certificate"), std::string::npos) << run.result.reason;
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(tls_fixture, ca_bundle_problem_takes_a_pem_bundle_and_says_why_not_of_anything_else) {
  EXPECT_TRUE(check_ca_bundle(ca_file_));
  const std::string text_file = ca_file_ + ".text";
  std::ofstream(text_file) << "not a certificate\n";
  // OpenSSL's own code: the caller prints the detail, and has nothing else to decide.
  const auto text = check_ca_bundle(text_file);
  std::filesystem::remove(text_file);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code.category(), net::error::get_ssl_category())
      << text.error().code.message();
  EXPECT_EQ(text.error().detail, "no certificate or crl found (x509 certificate routines)");
  const auto missing = check_ca_bundle(ca_file_ + ".missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, boost::system::errc::no_such_file_or_directory)
      << missing.error().code.message();
  EXPECT_EQ(missing.error().detail, "No such file or directory");
}

TEST_F(tls_fixture, hostname_mismatch_is_error) {
  auto other = test::make_test_pki({"other.example"}, {});
  auto ctx = make_server_context(other);
  std::string other_ca = ca_file_ + ".other";
  std::ofstream(other_ca) << other.ca_pem;
  loopback_http_server server([&](const scripted_request&) { return text(200, "x"); }, ctx.get());
  auto options = local_options();
  options.ca_file = other_ca;
  auto run = get_once(server.url("/x"), options);
  std::filesystem::remove(other_ca);
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_NE(run.result.reason.find("certificate verify failed"), std::string::npos)
      << run.result.reason;
  EXPECT_NE(run.result.reason.find("mismatch"), std::string::npos) << run.result.reason;
}

TEST_F(tls_fixture, https_to_http_redirect_is_refused) {
  loopback_http_server plain([&](const scripted_request&) { return text(200, "insecure"); });
  loopback_http_server server(
      [&](const scripted_request&) {
        scripted_response r;
        r.status = 302;
        r.headers = {{"Location", plain.url("/x")}};
        return r;
      },
      server_ctx_.get());
  auto run = get_once(server.url("/x"), trusting_options());
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_EQ(run.result.reason, "redirected from secure URL to insecure URL");
  EXPECT_EQ(plain.requests(), 0);
}

TEST_F(tls_fixture, https_goes_through_connect_proxy) {
  loopback_http_server server([&](const scripted_request& r) { return text(200, r.target); },
                              server_ctx_.get());
  loopback_connect_proxy proxy;
  auto options = trusting_options();
  options.https_proxy = "http://bob:pw@127.0.0.1:" + std::to_string(proxy.port());
  client_harness harness(options);
  for (int i = 0; i < 3; ++i) {
    auto run = harness.get(server.url("/via/" + std::to_string(i)));
    EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
    EXPECT_EQ(run.body, "/via/" + std::to_string(i));
  }
  EXPECT_EQ(proxy.tunnels(), 1) << "the tunnelled connection is pooled and reused";
  EXPECT_EQ(proxy.last_connect_target(), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(proxy.last_proxy_authorization(), "Basic Ym9iOnB3");
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(tls_fixture, no_proxy_bypasses_the_proxy) {
  loopback_http_server server([&](const scripted_request&) { return text(200, "direct"); },
                              server_ctx_.get());
  loopback_connect_proxy proxy;
  for (const auto& no_proxy : std::vector<std::string>{
           "127.0.0.1", "example.com, 127.0.0.1:" + std::to_string(server.port()), "*"}) {
    auto options = trusting_options();
    options.https_proxy = "127.0.0.1:" + std::to_string(proxy.port());
    options.no_proxy = no_proxy;
    auto run = get_once(server.url("/x"), options);
    EXPECT_EQ(run.result.result, outcome::ok) << no_proxy << ": " << run.result.reason;
  }
  EXPECT_EQ(proxy.tunnels(), 0);

  // A NO_PROXY entry for another port does not match.
  auto options = trusting_options();
  options.https_proxy = "127.0.0.1:" + std::to_string(proxy.port());
  options.no_proxy = "127.0.0.1:1";
  auto run = get_once(server.url("/x"), options);
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_EQ(proxy.tunnels(), 1);
}

TEST_F(tls_fixture, proxy_settings_come_from_the_environment) {
  loopback_http_server server([&](const scripted_request&) { return text(200, "env"); },
                              server_ctx_.get());
  loopback_connect_proxy proxy;
  ::setenv("HTTPS_PROXY", ("127.0.0.1:" + std::to_string(proxy.port())).c_str(), 1);
  ::unsetenv("NO_PROXY");
  ::unsetenv("no_proxy");
  auto options = trusting_options();
  options.proxy_from_environment = true;
  auto run = get_once(server.url("/x"), options);
  ::unsetenv("HTTPS_PROXY");
  EXPECT_EQ(run.result.result, outcome::ok) << run.result.reason;
  EXPECT_EQ(proxy.tunnels(), 1);

  options.proxy_from_environment = false;
  EXPECT_EQ(get_once(server.url("/x"), options).result.result, outcome::ok);
  EXPECT_EQ(proxy.tunnels(), 1);
}

TEST(http_client, proxy_refusing_connect_is_error) {
  loopback_http_server not_a_proxy([&](const scripted_request&) { return text(407, "auth"); });
  auto options = local_options();
  options.https_proxy = not_a_proxy.url("");
  auto run = get_once("https://127.0.0.1:1/x", options);
  EXPECT_EQ(run.result.result, outcome::error);
  EXPECT_EQ(run.result.reason, "proxy: CONNECT answered 407");
}

TEST(http_client, concurrent_gets_on_two_threads) {
  constexpr int count = 20;
  std::vector<std::string> bodies;
  for (int i = 0; i < count; ++i) bodies.push_back(random_bytes(200000 + i * 1000, 100 + i));
  loopback_http_server server([&](const scripted_request& r) {
    auto i = std::stoi(r.target.substr(1));
    auto response = text(200, bodies.at(i), "application/zip");
    response.chunked = i % 2 == 1;
    return response;
  });
  net::io_context ioc;
  http_client client(ioc.get_executor(), local_options());
  std::vector<get_run> runs(count);
  std::atomic<int> finished{0};
  for (int i = 0; i < count; ++i) {
    net::co_spawn(
        ioc,
        [&, i]() -> net::awaitable<void> {
          auto& run = runs[i];
          // Each get is fully sequential, so its sink never runs concurrently with itself.
          auto sink = [&run](std::string_view piece) {
            run.body.append(piece);
            return true;
          };
          // Generous deadlines: this test is about sharing the pool across threads, and under
          // sanitizers on a loaded 2-core machine 20 transfers can take seconds.
          deadlines generous;
          generous.first_byte = 30s;
          generous.total = 45s;
          run.result = co_await client.get(server.url("/" + std::to_string(i)), sink, generous);
          ++finished;
        },
        net::detached);
  }
  std::thread second([&] { ioc.run_for(60s); });
  ioc.run_for(60s);
  second.join();
  EXPECT_EQ(finished.load(), count);
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(runs[i].result.result, outcome::ok) << i << ": " << runs[i].result.reason;
    EXPECT_TRUE(runs[i].body == bodies[i]) << i;
  }
  EXPECT_EQ(server.requests(), count);
  EXPECT_LE(server.connections(), count);
}

}  // namespace
}  // namespace gomodproxy::upstream
