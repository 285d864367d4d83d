// The network part of `gomodproxy prefetch`: asks a running proxy, through the GOPROXY protocol,
// for every file of every pinned module version, N requests at a time, so that the proxy fills
// its cache. Asio and the HTTP client stay in the .cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "prefetch/pin_files.hpp"

namespace gomodproxy::prefetch {

struct run_options {
  /// Base URL of the proxy, http:// or https://, without a trailing slash; userinfo in it
  /// (https://NAME:TOKEN@host) is sent as Basic credentials. Default: http://127.0.0.1:8081
  std::string proxy_url = "http://127.0.0.1:8081";
  /// Checksum database whose records are asked through the proxy (/sumdb/NAME/lookup/M@V) when
  /// the proxy serves it; empty asks none. Default: sum.golang.org
  std::string sumdb_name = "sum.golang.org";
  std::size_t jobs = 8;  ///< requests in flight at once. Default: 8
  std::string ca_file;   ///< extra CA bundle for an https proxy; system CAs always load
  /// Per request. A proxy answers a miss only after fetching from its upstream, so the first
  /// byte of a large zip may take long. Default: 10 s connect, 5 min first byte, 30 min total.
  std::chrono::milliseconds connect{10000};
  std::chrono::milliseconds first_byte{300000};
  std::chrono::milliseconds total{1800000};
};

/// One file or lookup that did not come back whole.
struct fetch_failure {
  std::string what;    ///< "example.com/m@v1.0.0 .zip" or "example.com/m@v1.0.0 sumdb lookup"
  std::string reason;  ///< the proxy's answer ("404: not found: ...") or the transport failure
};

struct run_progress {
  std::size_t done = 0;   ///< requests finished, failed ones included
  std::size_t total = 0;  ///< requests planned
  std::size_t failed = 0;
  std::uint64_t bytes = 0;  ///< body bytes received so far, unfinished requests included
  std::chrono::steady_clock::duration elapsed{};
};

/// Called on the thread that runs run_prefetch(); `on_progress` after each finished request
/// (and may be called more often), `on_failure` once per failure before its on_progress.
struct run_events {
  std::function<void(const run_progress&)> on_progress;
  std::function<void(const fetch_failure&)> on_failure;
};

struct run_summary {
  run_progress final_progress;
  std::size_t file_requests = 0;    ///< .info, .mod and .zip requests
  std::size_t lookup_requests = 0;  ///< checksum database lookups
  /// Whether the proxy answered /sumdb/NAME/supported with 200; nullopt when no name was given.
  std::optional<bool> sumdb_served;
  std::vector<fetch_failure> failures;  ///< in the order they happened
  /// Set when the proxy could not be asked at all (nothing else was tried): why.
  std::optional<std::string> unreachable;
};

/// Asks the proxy for /sumdb/NAME/supported first: no answer, 401 or 403 ends the run there
/// (`unreachable`). Then fetches, on the calling thread, `.info`, `.mod` and `.zip` of each whole
/// pin and `.mod` of each go.mod-only one, plus a checksum database lookup per module version
/// when the proxy serves the database; bodies are counted and dropped. Throws only when the HTTP
/// client cannot be set up (an unreadable CA file).
run_summary run_prefetch(const std::vector<pin>& pins, const run_options& options,
                         const run_events& events);

}  // namespace gomodproxy::prefetch
