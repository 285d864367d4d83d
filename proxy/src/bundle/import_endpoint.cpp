#include "bundle/import_endpoint.hpp"

#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

namespace gomodproxy::bundle {
namespace {

namespace net = boost::asio;

struct answer {
  int status = 200;
  std::string body;
};

net::awaitable<void> reply(server::response_writer& writer, int status, std::string body,
                           std::string allow = {}) {
  server::response_head head;
  head.status = status;
  head.content_type = "text/plain; charset=utf-8";
  head.cache_control = "no-store";
  if (!allow.empty()) head.extra_headers.emplace_back("Allow", std::move(allow));
  (void)co_await writer.send(head, body);
}

// Coroutines of their own with arguments by value, so their frames own them on the other
// executor.
net::awaitable<std::string> write_piece(std::FILE* file, std::string piece) {
  if (std::fwrite(piece.data(), 1, piece.size(), file) == piece.size()) co_return std::string();
  co_return std::string(std::strerror(errno));
}

net::awaitable<answer> run_import(cache::cache_store* store, const import_options* options,
                                  std::string path, std::FILE* file) {
  const bool flushed = std::fclose(file) == 0;
  answer result;
  if (!flushed) {
    result = {500, "cannot spool the bundle: " + std::string(std::strerror(errno)) + "\n"};
  } else {
    import_summary summary;
    std::string why;
    if (import_bundle(*store, path, *options, summary, why)) {
      result = {200, format_import_summary(summary)};
    } else {
      result = {422, "refused: " + why + "\n"};
    }
  }
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  co_return result;
}

// Clears the busy flag however the handler ends; released before the answer is sent, so a
// client that sends the next bundle as soon as it has the answer never finds it set.
struct busy_guard {
  std::atomic<bool>& busy;
  void release() { busy.store(false); }
  ~busy_guard() { release(); }
};

}  // namespace

net::awaitable<void> import_endpoint::handle(const server::request_view& request,
                                             server::response_writer& writer) {
  if (request.method != "POST") {
    co_await reply(writer, 405, "method not allowed\n", "POST");
    co_return;
  }
  if (!request.body) {
    co_await reply(writer, 400, "bad request: send the bundle (a tar file) as the body\n");
    co_return;
  }
  if (busy_.exchange(true)) {
    co_await reply(writer, 409, "another import is running; try again when it is done\n");
    co_return;
  }
  busy_guard guard{busy_};
  std::error_code made;
  std::filesystem::create_directories(spool_dir_, made);
  std::random_device random;
  const std::string path =
      (std::filesystem::path(spool_dir_) /
       ("import-" + std::to_string(::getpid()) + "-" + std::to_string(random()) + ".tar"))
          .string();
  std::FILE* file = made ? nullptr : std::fopen(path.c_str(), "wb");
  if (!file) {
    guard.release();
    co_await reply(writer, 500, "cannot spool the bundle in " + spool_dir_ + "\n");
    co_return;
  }
  std::array<char, 1 << 16> buffer{};
  std::string failure;
  int failure_status = 400;
  for (;;) {
    auto got = co_await request.body->read_some(buffer.data(), buffer.size());
    if (!got) {
      failure = "cannot read the request body: " + got.error().message();
      if (got.error().message().find("limit") != std::string::npos) failure_status = 413;
      break;
    }
    if (*got == 0) break;
    const auto write_error = co_await net::co_spawn(
        blocking_, write_piece(file, std::string(buffer.data(), *got)), net::use_awaitable);
    if (!write_error.empty()) {
      failure = "cannot spool the bundle: " + write_error;
      failure_status = 500;
      break;
    }
  }
  if (!failure.empty()) {
    std::fclose(file);
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    guard.release();
    co_await reply(writer, failure_status, failure + "\n");
    co_return;
  }
  auto result = co_await net::co_spawn(blocking_, run_import(&store_, &options_, path, file),
                                       net::use_awaitable);
  guard.release();
  co_await reply(writer, result.status, std::move(result.body));
}

}  // namespace gomodproxy::bundle
