// The HTTP front with TLS on, driven by a blocking OpenSSL client on loopback: the handshake,
// protocol versions, a plain-HTTP client, the handshake deadline, drain, and a certificate reload
// while connections are open. Two server threads, so the suite also means something under TSan.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.hpp"
#include "server/tls_credentials.hpp"
#include "tests/support/cpp/temp_dir.hpp"
#include "tests/support/cpp/test_certificates.hpp"

namespace gomodproxy::server {
namespace {
namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// /big sends 8 MiB in 64 KiB chunks, /file?PATH the file at PATH in 1 MiB ranges; anything else
// is echoed back ("GET /x\n").
class echo_handler final : public handler {
 public:
  net::awaitable<void> handle(const request_view& request, response_writer& writer) override {
    response_head head;
    head.content_type = "text/plain; charset=utf-8";
    if (request.target.starts_with("/file?")) {
      const std::string path(request.target.substr(6));
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw std::runtime_error("cannot open " + path);
      struct stat status {};
      ::fstat(fd, &status);
      const auto size = static_cast<std::uint64_t>(status.st_size);
      bool sent = true;
      for (std::uint64_t offset = 0; sent && offset < size;) {
        const file_range range{fd, offset, std::min<std::uint64_t>(1 << 20, size - offset)};
        sent = offset == 0 ? co_await writer.send_head_with_file(head, size, range)
                           : co_await writer.write_file(range);
        offset += range.length;
      }
      ::close(fd);
      co_return;
    }
    if (request.target == "/big") {
      const std::string chunk(64 << 10, 'x');
      if (!co_await writer.send_head(head, big_chunks * chunk.size())) co_return;
      for (int i = 0; i < big_chunks; ++i) {
        if (!co_await writer.write_body(chunk)) co_return;
      }
      co_return;
    }
    (void)co_await writer.send(
        head, std::string(request.method) + " " + std::string(request.target) + "\n");
  }
  static constexpr int big_chunks = 128;
};

using test::temp_dir;

// A server with TLS credentials from files this harness writes, so a test can replace them and
// reload as SIGHUP would.
class tls_harness {
 public:
  explicit tls_harness(std::chrono::milliseconds request_timeout = 10s)
      : pki_(test::make_test_pki({"localhost"}, {"127.0.0.1"})),
        cert_file_(dir_.write("cert.pem", pki_.server_cert_pem)),
        key_file_(dir_.write("key.pem", pki_.server_key_pem)),
        credentials_(load(cert_file_, key_file_)),
        server_(io_, options(credentials_, request_timeout), handler_) {
    auto bound = server_.listen();
    if (!bound) throw std::runtime_error("listen: " + bound.error().message());
    port_ = *bound;
    server_.start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~tls_harness() {
    guard_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  std::uint16_t port() const { return port_; }
  const test::test_pki& pki() const { return pki_; }
  http_server& server() { return server_; }

  // Writes a new certificate and key over the old files and reloads them.
  std::optional<std::string> replace_certificate(const test::test_pki& next) {
    dir_.write("cert.pem", next.server_cert_pem);
    dir_.write("key.pem", next.server_key_pem);
    auto reloaded = credentials_->reload();
    if (reloaded) return std::nullopt;
    return std::move(reloaded.error().detail);
  }

  std::future<void> drain(std::chrono::milliseconds timeout) {
    auto done = std::make_shared<std::promise<void>>();
    auto ready = done->get_future();
    net::co_spawn(
        io_, [this, timeout]() -> net::awaitable<void> { co_await server_.drain(timeout); },
        [done](std::exception_ptr) { done->set_value(); });
    return ready;
  }

 private:
  static std::shared_ptr<tls_credentials> load(const std::string& cert, const std::string& key) {
    auto loaded = tls_credentials::load(cert, key);
    if (!loaded) throw std::runtime_error(loaded.error().detail);
    return std::move(*loaded);
  }
  static server_options options(std::shared_ptr<tls_credentials> tls,
                                std::chrono::milliseconds request_timeout) {
    server_options options;
    options.port = 0;
    options.access_log = false;
    options.request_timeout = request_timeout;
    options.idle_timeout = 10s;
    options.write_timeout = 10s;
    options.tls = std::move(tls);
    return options;
  }

  temp_dir dir_;
  test::test_pki pki_;
  std::string cert_file_;
  std::string key_file_;
  std::shared_ptr<tls_credentials> credentials_;
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_{io_.get_executor()};
  echo_handler handler_;
  http_server server_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    throw std::runtime_error("connect");
  }
  return fd;
}

// True when the peer closed `fd` (EOF or reset) within `limit`; bytes read meanwhile go to `seen`.
bool closed_by_peer(int fd, std::chrono::milliseconds limit, std::string* seen = nullptr) {
  const auto until = clock_type::now() + limit;
  while (clock_type::now() < until) {
    pollfd readable{fd, POLLIN, 0};
    if (::poll(&readable, 1, 20) == 0) continue;
    char chunk[4096];
    const auto got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got == 0) return true;
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
    if (got > 0 && seen != nullptr) seen->append(chunk, static_cast<std::size_t>(got));
  }
  return false;
}

struct response {
  int status = 0;
  std::string body;
};

// A blocking TLS client that trusts `ca_pem` and checks the name 127.0.0.1; `max_version`
// caps the protocol it offers (0: OpenSSL's highest) and `tls12_ciphers` the TLS 1.2 suites.
// Security level 0, so that an old version or suite it offers is refused by the server, not by
// the client's own policy.
class tls_client {
 public:
  tls_client(std::uint16_t port, const std::string& ca_pem, int max_version = 0,
             const char* tls12_ciphers = "ALL:@SECLEVEL=0")
      : fd_(connect_loopback(port)), context_(SSL_CTX_new(TLS_client_method()), SSL_CTX_free) {
    SSL_CTX_set_security_level(context_.get(), 0);
    SSL_CTX_set_cipher_list(context_.get(), tls12_ciphers);
    SSL_CTX_set_min_proto_version(context_.get(), TLS1_VERSION);
    if (max_version != 0) SSL_CTX_set_max_proto_version(context_.get(), max_version);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())), BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> ca(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(context_.get()), ca.get());
    SSL_CTX_set_verify(context_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(SSL_new(context_.get()));
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
    SSL_set_fd(ssl_.get(), fd_);
  }
  ~tls_client() {
    ssl_.reset();
    ::close(fd_);
  }
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  // Empty on success, else OpenSSL's reason.
  std::string handshake() {
    ERR_clear_error();
    if (SSL_connect(ssl_.get()) == 1) return {};
    const unsigned long code = ERR_peek_error();
    const char* reason = ERR_reason_error_string(code);
    return reason != nullptr ? reason : "handshake failed";
  }

  int version() const { return SSL_version(ssl_.get()); }
  int fd() const { return fd_; }

  // The leaf certificate the server presented, PEM.
  std::string peer_certificate() const {
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl_.get()),
                                                     X509_free);
    if (!cert) return {};
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(out.get(), cert.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  }

  bool send(std::string_view bytes) {
    return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }

  // The head of the next response, with at most `body_limit` body bytes read.
  std::optional<response> read_response(std::size_t body_limit = SIZE_MAX) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    response got;
    const std::string head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    got.status = std::stoi(head.substr(9, 3));
    pending_body_ = 0;
    if (auto at = head.find("Content-Length: "); at != std::string::npos) {
      pending_body_ = std::stoul(head.substr(at + 16));
    }
    if (!read_body(got.body, std::min(body_limit, pending_body_))) return std::nullopt;
    return got;
  }

  // Reads `bytes` more of the current body into `body`.
  bool read_body(std::string& body, std::size_t bytes) {
    while (buffer_.size() < bytes) {
      if (!fill()) return false;
    }
    body.append(buffer_, 0, bytes);
    buffer_.erase(0, bytes);
    pending_body_ -= bytes;
    return true;
  }
  std::size_t pending_body() const { return pending_body_; }

  // True when the server ended the TLS session with close_notify.
  bool closed_with_notify() {
    char byte;
    const int got = SSL_read(ssl_.get(), &byte, 1);
    return got <= 0 && SSL_get_error(ssl_.get(), got) == SSL_ERROR_ZERO_RETURN;
  }

 private:
  bool fill() {
    char chunk[65536];
    const int got = SSL_read(ssl_.get(), chunk, sizeof chunk);
    if (got <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  int fd_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, SSL_free};
  std::string buffer_;
  std::size_t pending_body_ = 0;
};

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

TEST(http_server_tls, a_verified_handshake_then_keep_alive_requests) {
  tls_harness harness;
  tls_client client(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(client.handshake(), "");
  EXPECT_GE(client.version(), TLS1_2_VERSION);
  for (const std::string target : {"/a", "/b"}) {
    ASSERT_TRUE(client.send(get(target)));
    auto got = client.read_response();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->body, "GET " + target + "\n");
  }
}

TEST(http_server_tls, versions_below_1_2_are_refused_by_the_server) {
  tls_harness harness;
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    SCOPED_TRACE(version);
    tls_client old(harness.port(), harness.pki().ca_pem, version);
    // The server's alert, not the client's own policy, ends the handshake.
    EXPECT_EQ(old.handshake(), "tlsv1 alert protocol version");
  }
  tls_client tls12(harness.port(), harness.pki().ca_pem, TLS1_2_VERSION);
  ASSERT_EQ(tls12.handshake(), "");
  EXPECT_EQ(tls12.version(), TLS1_2_VERSION);
}

TEST(http_server_tls, tls_1_2_suites_without_forward_secrecy_or_aead_are_refused) {
  tls_harness harness;
  for (const char* suites : {"AES128-SHA:AES256-SHA:AES128-GCM-SHA256:@SECLEVEL=0",
                             "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0"}) {
    SCOPED_TRACE(suites);
    tls_client weak(harness.port(), harness.pki().ca_pem, TLS1_2_VERSION, suites);
    EXPECT_EQ(weak.handshake(), "sslv3 alert handshake failure");
  }
  tls_client aead(harness.port(), harness.pki().ca_pem, TLS1_2_VERSION,
                  "ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_EQ(aead.handshake(), "");
}

TEST(http_server_tls, a_plain_http_request_is_told_to_use_https) {
  tls_harness harness;
  const int fd = connect_loopback(harness.port());
  const std::string request = get("/a");
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string answer;
  EXPECT_TRUE(closed_by_peer(fd, 5s, &answer));
  ::close(fd);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 Bad Request\r\n")) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\nthis server speaks HTTPS only: use an https:// URL\n"))
      << answer;
}

TEST(http_server_tls, a_client_that_never_finishes_its_handshake_is_closed_at_the_deadline) {
  tls_harness harness(300ms);
  const int fd = connect_loopback(harness.port());
  const auto started = clock_type::now();
  EXPECT_TRUE(closed_by_peer(fd, 5s));
  ::close(fd);
  EXPECT_LT(clock_type::now() - started, 2s);
}

TEST(http_server_tls, drain_closes_idle_tls_connections_with_close_notify) {
  tls_harness harness;
  tls_client idle(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(idle.handshake(), "");
  ASSERT_TRUE(idle.send(get("/a")));
  ASSERT_TRUE(idle.read_response());
  const auto started = clock_type::now();
  auto drained = harness.drain(5s);
  EXPECT_TRUE(idle.closed_with_notify());
  ASSERT_EQ(drained.wait_for(3s), std::future_status::ready);
  EXPECT_LT(clock_type::now() - started, 2s);
  EXPECT_EQ(harness.server().connections(), 0u);
}

// A renewed certificate reaches new connections at once, while a connection accepted before the
// reload finishes its download and goes on with the certificate it was given.
TEST(http_server_tls, a_reload_reaches_new_connections_and_spares_open_ones) {
  tls_harness harness;
  const auto renewed = test::make_test_pki({"localhost"}, {"127.0.0.1"});

  tls_client before(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(before.handshake(), "");
  ASSERT_TRUE(before.send(get("/big")));
  auto started = before.read_response(64 << 10);
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 200);
  ASSERT_GT(before.pending_body(), 0u);

  ASSERT_EQ(harness.replace_certificate(renewed), std::nullopt);

  tls_client after(harness.port(), renewed.ca_pem);
  ASSERT_EQ(after.handshake(), "");
  EXPECT_EQ(after.peer_certificate(), renewed.server_cert_pem);
  ASSERT_TRUE(after.send(get("/new")));
  auto fresh = after.read_response();
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->body, "GET /new\n");

  std::string rest;
  ASSERT_TRUE(before.read_body(rest, before.pending_body()));
  EXPECT_EQ(started->body.size() + rest.size(),
            static_cast<std::size_t>(echo_handler::big_chunks) * (64 << 10));
  EXPECT_EQ(before.peer_certificate(), harness.pki().server_cert_pem);
  ASSERT_TRUE(before.send(get("/again")));
  auto again = before.read_response();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "GET /again\n");

  // A client that trusts only the old CA no longer gets in.
  tls_client stale(harness.port(), harness.pki().ca_pem);
  EXPECT_NE(stale.handshake(), "");
}

// Sent raw on a fresh connection, then how long the server took to hang up.
std::chrono::milliseconds hang_up_after(std::uint16_t port, std::string_view bytes) {
  const int fd = connect_loopback(port);
  const auto started = clock_type::now();
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const bool closed = closed_by_peer(fd, 5s);
  ::close(fd);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
  return closed ? took : std::chrono::milliseconds::max();
}

bool no_connections_within(http_server& server, std::chrono::milliseconds limit) {
  const auto until = clock_type::now() + limit;
  while (server.connections() != 0 && clock_type::now() < until) std::this_thread::sleep_for(10ms);
  return server.connections() == 0;
}

// Bytes that are no TLS record, and a ClientHello that claims 16 MiB, end the connection at
// once instead of holding it until the handshake deadline; the server goes on serving.
TEST(http_server_tls, garbage_or_an_oversized_client_hello_is_dropped_at_once) {
  tls_harness harness;
  EXPECT_LT(hang_up_after(harness.port(), std::string(512, '\x42')), 1s);
  std::string huge_hello = {'\x16', '\x03', '\x01', '\x40', '\x00',  // a 16 KiB record
                            '\x01', '\xff', '\xff', '\xff'};         // ClientHello, 16 MiB
  huge_hello.resize(5 + 0x4000, '\0');
  EXPECT_LT(hang_up_after(harness.port(), huge_hello), 1s);
  EXPECT_TRUE(no_connections_within(harness.server(), 1s));
  tls_client client(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(client.handshake(), "");
}

// Two requests in one TLS record are answered in order, as on a plain connection.
TEST(http_server_tls, pipelined_requests_are_answered_in_order) {
  tls_harness harness;
  tls_client client(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(client.handshake(), "");
  ASSERT_TRUE(client.send(get("/first") + get("/second")));
  for (const std::string target : {"/first", "/second"}) {
    auto got = client.read_response();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body, "GET " + target + "\n");
  }
}

// A client that never answers the server's close_notify (nor closes) holds the connection for
// the short goodbye wait only, not a whole timeout.
TEST(http_server_tls, a_client_that_stalls_the_tls_shutdown_is_cut_off) {
  tls_harness harness;
  tls_client client(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(client.handshake(), "");
  ASSERT_TRUE(client.send("GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(client.read_response());
  const auto started = clock_type::now();
  // Raw reads: the server's close_notify arrives, and no answer to it ever goes back.
  EXPECT_TRUE(closed_by_peer(client.fd(), 5s));
  EXPECT_LT(clock_type::now() - started, 3s);
  EXPECT_TRUE(no_connections_within(harness.server(), 1s));
}

// Under TLS a file body cannot go by sendfile: it is read into a bounded buffer and encrypted,
// and arrives whole, HEAD gets the head alone, and the connection carries on.
TEST(http_server_tls, a_file_body_is_read_through_a_buffer_and_arrives_whole) {
  temp_dir dir;
  std::string content((3 << 20) + 77, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) {
    content[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  const std::string path = dir.write("body", content);
  tls_harness harness;
  tls_client client(harness.port(), harness.pki().ca_pem);
  ASSERT_EQ(client.handshake(), "");
  ASSERT_TRUE(client.send(get("/file?" + path)));
  auto got = client.read_response();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_TRUE(got->body == content);
  ASSERT_TRUE(client.send("HEAD /file?" + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto head = client.read_response(0);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(client.pending_body(), content.size());
  ASSERT_TRUE(client.send(get("/a")));
  auto echoed = client.read_response();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->body, "GET /a\n");
}

}  // namespace
}  // namespace gomodproxy::server
