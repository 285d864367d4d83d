#include "common/errc.hpp"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <string>

#include "common/failure.hpp"

namespace gomodproxy {
namespace {

// Final, and its one instance is a function-local static, never deleted through error_category
// (whose destructor is protected).
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor)
class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "gomodproxy"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_request:
        return "invalid request";
      case errc::too_large:
        return "too large";
      case errc::verification_failed:
        return "verification failed";
      case errc::cache_io:
        return "cache I/O error";
      case errc::cache_corrupt:
        return "cache entry corrupt";
      case errc::not_found:
        return "not found";
      case errc::upstream_unavailable:
        return "no upstream answered";
      case errc::refused:
        return "refused by the address policy";
    }
    return "unknown gomodproxy error";
  }
};

}  // namespace

const boost::system::error_category& gomodproxy_category() noexcept {
  static const category instance;
  return instance;
}

int to_http_status(const boost::system::error_code& error) noexcept {
  if (error.category() != gomodproxy_category()) return 500;
  switch (static_cast<errc>(error.value())) {
    case errc::invalid_request:
    case errc::not_found:
    case errc::upstream_unavailable:
      return 404;
    case errc::verification_failed:
      return 502;
    case errc::refused:
      return 403;
    case errc::too_large:
    case errc::cache_io:
    case errc::cache_corrupt:
      return 500;
  }
  return 500;
}

void throw_exception_from_error(const failure& error, const boost::source_location& location) {
  boost::throw_exception(boost::system::system_error(error.code, error.detail), location);
}

}  // namespace gomodproxy
