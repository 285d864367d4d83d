#include "bundle/import_endpoint.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <utility>

#include "server/text_handler.hpp"

namespace gomodproxy::bundle {
namespace {

namespace net = boost::asio;

using answer = server::text_answer;

net::awaitable<void> reply(server::response_writer& writer, int status, std::string body,
                           std::string allow = {}) {
  // Named, not a braced temporary in the co_await: GCC 12 destroys such a temporary argument
  // of a coroutine twice.
  answer plain{.status = status, .body = std::move(body)};
  co_await server::send_text_answer(writer, std::move(plain), std::move(allow));
}

// The spooled body, closed and removed by whichever coroutine lets go of it last: a refusal, a
// client that goes away, and a shutdown that destroys the handler's frame mid-body (its
// connection's context is torn down without resuming it) all leave no file behind.
struct spool_file {
  std::string path;
  std::FILE* file = nullptr;
  spool_file(std::string spool_path, std::FILE* opened)
      : path(std::move(spool_path)), file(opened) {}
  spool_file(const spool_file&) = delete;
  spool_file& operator=(const spool_file&) = delete;
  ~spool_file() {
    if (file) std::fclose(file);
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

// Coroutines of their own with arguments by value, so their frames own them on the other
// executor.
net::awaitable<std::string> write_piece(std::shared_ptr<spool_file> spool, std::string piece) {
  if (std::fwrite(piece.data(), 1, piece.size(), spool->file) == piece.size()) {
    co_return std::string();
  }
  co_return std::string(std::strerror(errno));
}

// The one import slot, free again when the last of its holders lets go: the handler, and the
// check and commit running on the work pool, which may outlive the handler's frame (a shutdown
// destroys it without resuming it) and must keep the slot until it is done.
struct import_slot {
  std::atomic<bool>& busy;
  explicit import_slot(std::atomic<bool>& flag) : busy(flag) {}
  import_slot(const import_slot&) = delete;
  import_slot& operator=(const import_slot&) = delete;
  ~import_slot() { busy.store(false); }
};

net::awaitable<answer> run_import(cache::cache_store* store, const import_options* options,
                                  std::shared_ptr<spool_file> spool,
                                  std::shared_ptr<import_slot> slot) {
  const bool flushed = std::fclose(std::exchange(spool->file, nullptr)) == 0;
  answer result;
  if (!flushed) {
    result = {.status = 500,
              .body = "cannot spool the bundle: " + std::string(std::strerror(errno)) + "\n"};
  } else {
    // 422 whatever the code, as the command-line import says "refused" for each: the bundle
    // was not (wholly) taken, and the detail says why.
    if (auto imported = import_bundle(*store, spool->path, *options)) {
      result = {.status = 200, .body = format_import_summary(*imported)};
    } else {
      result = {.status = 422, .body = "refused: " + imported.error().detail + "\n"};
    }
  }
  // Free before the answer is sent, so a client that sends the next bundle as soon as it has
  // the answer never finds the slot taken.
  spool.reset();
  slot.reset();
  co_return result;
}

}  // namespace

std::chrono::milliseconds import_upload_deadline(std::chrono::milliseconds request_timeout,
                                                 std::optional<std::uint64_t> declared) {
  const auto bytes = std::min(declared.value_or(max_import_body_bytes), max_import_body_bytes);
  return request_timeout +
         std::chrono::milliseconds(bytes * 1000 / min_import_upload_bytes_per_second);
}

void clear_import_spool(const std::string& spool_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(spool_dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.starts_with("import-") && name.ends_with(".tar")) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
}

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
  auto slot = std::make_shared<import_slot>(busy_);
  std::error_code made;
  std::filesystem::create_directories(spool_dir_, made);
  std::random_device random;
  const std::string path =
      (std::filesystem::path(spool_dir_) /
       ("import-" + std::to_string(::getpid()) + "-" + std::to_string(random()) + ".tar"))
          .string();
  std::FILE* file = made ? nullptr : std::fopen(path.c_str(), "wb");
  auto spool = file ? std::make_shared<spool_file>(path, file) : nullptr;
  if (!spool) {
    slot.reset();
    co_await reply(writer, 500, "cannot spool the bundle in " + spool_dir_ + "\n");
    co_return;
  }
  std::array<char, 1 << 16> buffer{};
  std::string failure;
  int failure_status = 400;
  const auto allowed = import_upload_deadline(request_timeout_, request.body->declared_length());
  const auto deadline = std::chrono::steady_clock::now() + allowed;
  for (;;) {
    // Checked as each piece arrives: a read is bounded by the request timeout, so a trickling
    // client lets go of the slot at most that long after its deadline.
    if (std::chrono::steady_clock::now() > deadline) {
      failure = "the upload took longer than " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(allowed).count()) +
                " s (the request timeout plus 1 s per 256 KiB)";
      failure_status = 408;
      break;
    }
    auto got = co_await request.body->read_some(buffer.data(), buffer.size());
    if (!got) {
      failure = "cannot read the request body: " + got.error().message();
      if (got.error() == boost::beast::http::error::body_limit) failure_status = 413;
      break;
    }
    if (*got == 0) break;
    const auto write_error = co_await net::co_spawn(
        blocking_, write_piece(spool, std::string(buffer.data(), *got)), net::use_awaitable);
    if (!write_error.empty()) {
      failure = "cannot spool the bundle: " + write_error;
      failure_status = 500;
      break;
    }
  }
  if (!failure.empty()) {
    spool.reset();
    slot.reset();
    co_await reply(writer, failure_status, failure + "\n");
    co_return;
  }
  auto result = co_await net::co_spawn(
      blocking_, run_import(&store_, &options_, std::move(spool), std::move(slot)),
      net::use_awaitable);
  co_await server::send_text_answer(writer, std::move(result));
}

}  // namespace gomodproxy::bundle
