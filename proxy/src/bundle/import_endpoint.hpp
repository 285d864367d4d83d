// POST /admin/cache/import: a bundle sent as the request body, spooled to a file inside the
// cache directory, then checked and committed like `cache import` on a stopped cache. main.cpp
// routes it only when an admin token is set; access_control makes /admin/ an admin path.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bundle/bundle_import.hpp"
#include "cache/cache_store.hpp"
#include "server/http_server.hpp"

namespace gomodproxy::bundle {

inline constexpr std::string_view admin_import_path = "/admin/cache/import";

/// The largest bundle the endpoint takes: 8 GiB. A bigger one is imported into a stopped
/// cache with `cache import FILE.tar`.
inline constexpr std::uint64_t max_import_body_bytes = std::uint64_t{8} << 30;

/// The slowest upload the endpoint waits for, on top of the request timeout: a bundle of N
/// bytes must arrive within request_timeout + N / 256 KiB per second (an 8 GiB bundle: 9 h, a
/// 100 MiB one: under 7 min). Each read is also bounded by request_timeout, but a client that
/// sends a byte now and then would otherwise hold the one import slot for good.
inline constexpr std::uint64_t min_import_upload_bytes_per_second = 256 << 10;

/// The deadline for a whole upload of `declared` bytes (the largest body taken when the length
/// is not declared).
std::chrono::milliseconds import_upload_deadline(std::chrono::milliseconds request_timeout,
                                                 std::optional<std::uint64_t> declared);

/// Removes the bodies an import spooled in `spool_dir` before this process started (it was
/// killed mid-import): the cache directory is one process's, so none is in use, and each would
/// otherwise count against the size cap for good.
void clear_import_spool(const std::string& spool_dir);

/// One import at a time (another is answered 409). The spooling file writes and the whole
/// check and commit run on `blocking` (the checks pool), never on the connection's thread.
/// `store` must outlive it; `options` is copied. `request_timeout` is the server's, the floor of
/// import_upload_deadline.
class import_endpoint final : public server::handler {
 public:
  import_endpoint(cache::cache_store& store, import_options options, std::string spool_dir,
                  boost::asio::any_io_executor blocking, std::chrono::milliseconds request_timeout)
      : store_(store),
        options_(std::move(options)),
        spool_dir_(std::move(spool_dir)),
        blocking_(std::move(blocking)),
        request_timeout_(request_timeout) {}

  boost::asio::awaitable<void> handle(const server::request_view& request,
                                      server::response_writer& writer) override;

 private:
  cache::cache_store& store_;
  import_options options_;
  std::string spool_dir_;
  boost::asio::any_io_executor blocking_;
  std::chrono::milliseconds request_timeout_;
  std::atomic<bool> busy_{false};
};

}  // namespace gomodproxy::bundle
