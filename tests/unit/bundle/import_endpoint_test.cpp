// The import endpoint's answer to a body that ends in an error, read through the request_body
// seam the HTTP server implements: only the body limit is a 413.
#include "bundle/import_endpoint.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::bundle {
namespace {

namespace net = boost::asio;

// A body that fails with `error` on its first read.
class failing_body final : public server::request_body {
 public:
  explicit failing_body(boost::system::error_code error) : error_(error) {}
  std::optional<std::uint64_t> declared_length() const override { return std::nullopt; }
  net::awaitable<boost::system::result<std::size_t>> read_some(char*, std::size_t) override {
    co_return error_;
  }

 private:
  boost::system::error_code error_;
};

class keeping_writer final : public server::response_writer {
 public:
  net::awaitable<bool> send(const server::response_head& head, std::string_view body) override {
    status = head.status;
    text = body;
    co_return true;
  }
  net::awaitable<bool> send_head(const server::response_head& head, std::uint64_t) override {
    status = head.status;
    co_return true;
  }
  net::awaitable<bool> send_head_with(const server::response_head& head, std::uint64_t,
                                      std::string_view first_chunk) override {
    status = head.status;
    text.append(first_chunk);
    co_return true;
  }
  net::awaitable<bool> write_body(std::string_view chunk) override {
    text += chunk;
    co_return true;
  }
  bool head_only() const override { return false; }
  void note(std::string_view, std::string_view) override {}
  int status = 0;
  std::string text;
};

std::pair<int, std::string> post(boost::system::error_code error) {
  test::temp_dir scratch;
  const auto& dir = scratch.path();
  cache::rocksdb_options options;
  options.path = (dir / "db").string();
  options.memory_bytes = 1 << 20;
  auto store = cache::open_rocksdb_store(options);
  EXPECT_TRUE(store);
  net::io_context io;
  import_endpoint endpoint(**store, {}, (dir / "spool").string(), io.get_executor(),
                           std::chrono::seconds(30));
  failing_body body(error);
  server::request_view request{.method = "POST", .target = "/admin/cache/import", .body = &body};
  keeping_writer writer;
  net::co_spawn(io, endpoint.handle(request, writer), net::detached);
  io.run();
  return {writer.status, writer.text};
}

TEST(import_endpoint, a_body_past_the_limit_is_413_and_other_read_errors_are_400) {
  const auto over = post(boost::beast::http::error::body_limit);
  EXPECT_EQ(over.first, 413) << over.second;
  // Its message names a limit too, but it is no body too large.
  const auto other = post(boost::beast::http::error::header_limit);
  EXPECT_EQ(other.first, 400) << other.second;
  EXPECT_EQ(other.second, "cannot read the request body: header limit exceeded\n");
}

}  // namespace
}  // namespace gomodproxy::bundle
