// What the resolver's fill tests share: a response writer that keeps what the resolver answers,
// the contexts a harness runs the resolver on, one GET through resolver::handle on the front
// context, an upstream list parsed the way the settings parse it, and the module files in
// testdata.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "resolver/resolver.hpp"
#include "server/http_server.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::resolver::fill_testing {

struct answer {
  int status = 0;
  std::string body;
  std::string cache_control;
  std::string content_type;
  std::string cache_result;  ///< what the resolver noted: "hit", "miss", ...
};

class capturing_writer final : public server::response_writer {
 public:
  boost::asio::awaitable<bool> send(const server::response_head& head,
                                    std::string_view body) override {
    got.status = head.status;
    got.cache_control = head.cache_control;
    got.content_type = head.content_type;
    got.body = body;
    co_return true;
  }
  boost::asio::awaitable<bool> send_head(const server::response_head& head,
                                         std::uint64_t) override {
    got.status = head.status;
    got.cache_control = head.cache_control;
    got.content_type = head.content_type;
    co_return true;
  }
  boost::asio::awaitable<bool> send_head_with(const server::response_head& head, std::uint64_t,
                                              std::string_view first_chunk) override {
    got.status = head.status;
    got.cache_control = head.cache_control;
    got.content_type = head.content_type;
    got.body = first_chunk;
    co_return true;
  }
  boost::asio::awaitable<bool> write_body(std::string_view chunk) override {
    got.body += chunk;
    co_return true;
  }
  bool head_only() const override { return false; }
  void note(std::string_view cache_result, std::string_view) override {
    got.cache_result = cache_result;
  }
  answer got;
};

// The contexts a fill harness runs on: `work` (two threads: the resolver's fills and the tiers'
// I/O) and `front` (one thread: where the HTTP server would run request handlers).
class fill_contexts {
 public:
  void start() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { work.run(); });
    threads_.emplace_back([this] { front.run(); });
  }
  // Stops both threads without dropping what is queued, until resume(). A fill's checksum
  // proof may still be at work after every waiter has its answer; a test that looks at the
  // store meanwhile races with it (and RocksDB's own ordering is invisible to TSan).
  void pause() {
    work.stop();
    front.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }
  void resume() {
    work.restart();
    front.restart();
    start();
  }
  // Stops both and joins their threads; what ran on them may be released afterwards.
  void stop() {
    work_guard_.reset();
    front_guard_.reset();
    work.stop();
    front.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

  boost::asio::io_context work{2};
  boost::asio::io_context front{1};

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_guard_{
      work.get_executor()};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> front_guard_{
      front.get_executor()};
  std::vector<std::thread> threads_;
};

// Starts one GET of `target` on `front` (the context the HTTP server would answer on); the
// future holds what the resolver answered, or what it threw.
inline std::future<answer> start_get(boost::asio::io_context& front, resolver& under_test,
                                     std::string target) {
  auto promise = std::make_shared<std::promise<answer>>();
  auto future = promise->get_future();
  boost::asio::co_spawn(
      front,
      [&under_test, target = std::move(target), promise]() -> boost::asio::awaitable<void> {
        capturing_writer writer;
        server::request_view view{"GET", target, false};
        co_await under_test.handle(view, writer);
        promise->set_value(writer.got);
      },
      [promise](std::exception_ptr thrown) {
        if (thrown) promise->set_exception(thrown);
      });
  return future;
}

inline std::vector<upstream::tier_spec> tiers(const std::string& list) {
  auto parsed = upstream::parse_upstream_list(list);
  if (!parsed) throw std::runtime_error(parsed.error().detail);
  return *std::move(parsed);
}

// A file of tests/unit/sumdb/testdata (the module example.com/hello v1.2.0's .mod and .zip among
// them); empty when it cannot be read.
inline std::string testdata(const std::string& name) {
  std::ifstream in(std::filesystem::path(GOMODPROXY_TESTDATA_DIR) / name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace gomodproxy::resolver::fill_testing
