// The completion for coroutines nobody awaits (co_spawn'd fills, attempts, connections): an
// exception that escapes one is logged with what it was doing instead of vanishing, as
// boost::asio::detached would let it.
#pragma once

#include <spdlog/spdlog.h>

#include <exception>

namespace gomodproxy {

/// A co_spawn completion handler for an awaitable<void>; `what` (a string literal) names the
/// work in the log line.
inline auto log_if_thrown(const char* what) {
  return [what](const std::exception_ptr& thrown) {
    if (!thrown) return;
    try {
      std::rethrow_exception(thrown);
    } catch (const std::exception& error) {
      spdlog::error("{} failed: {}", what, error.what());
    } catch (...) {
      spdlog::error("{} failed: unknown exception", what);
    }
  };
}

}  // namespace gomodproxy
