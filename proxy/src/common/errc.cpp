#include "common/errc.hpp"

#include <string>

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
      case errc::not_found:
        return "not found";
      case errc::invalid_request:
        return "invalid request";
      case errc::upstream_failed:
        return "upstream failed";
      case errc::timeout:
        return "timeout";
      case errc::too_large:
        return "too large";
      case errc::verification_failed:
        return "verification failed";
      case errc::cache_io:
        return "cache I/O error";
      case errc::cache_corrupt:
        return "cache entry corrupt";
      case errc::tls_failed:
        return "TLS failure";
    }
    return "unknown gomodproxy error";
  }
};

}  // namespace

const boost::system::error_category& gomodproxy_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace gomodproxy
