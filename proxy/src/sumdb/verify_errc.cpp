#include "sumdb/verify_errc.hpp"

#include <string>

namespace gomodproxy::sumdb {
namespace {

// Final, and its one instance is a function-local static, never deleted through error_category
// (whose destructor is protected).
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor)
class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "gomodproxy.sumdb"; }
  std::string message(int value) const override {
    switch (static_cast<verify_errc>(value)) {
      case verify_errc::malformed_note:
        return "malformed signed note";
      case verify_errc::malformed_key:
        return "malformed verifier key";
      case verify_errc::unknown_key:
        return "note not signed by the expected key";
      case verify_errc::bad_signature:
        return "invalid note signature";
      case verify_errc::malformed_tree:
        return "malformed tree head";
      case verify_errc::malformed_record:
        return "malformed lookup record";
    }
    return "unknown checksum database error";
  }
};

}  // namespace

const boost::system::error_category& verify_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace gomodproxy::sumdb
