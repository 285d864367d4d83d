// Linked into every unit test binary.
//
// spdlog keeps its registry in a function-local static that the first log call creates. Debian's
// libspdlog is not built with ThreadSanitizer, so when two test threads race to that first call,
// TSan cannot see the guard that orders them and reports the loser's read of the logger as a race
// (CI saw it in connect_guard's tests). Production configures logging before any thread starts;
// this does the same for the tests, before main().
#include <spdlog/spdlog.h>

namespace {
[[maybe_unused]] const bool log_registry_created = [] {
  spdlog::default_logger_raw();
  return true;
}();
}  // namespace
