// What a fallible function returns when a person reads why it failed: outcome_of<T>, a value
// or a `failure` (an error code for the decision, a detail for the text).
//
// The shape: `[[nodiscard]] outcome_of<T>` when the caller shows the reason to a person (a CLI
// verb, a log line, a plain-text 4xx/5xx body): the code (an errc from errc.hpp, an errno in the
// generic category, or another library's) says what kind of failure it is and so its status
// (to_http_status); the detail is the text, built once where the failure is known and printed as
// it is at the edge. Plain `boost::system::result<T>` where a code alone is the answer (the cache
// store's reads and writes). docs/code-health.md ("Errors") lists what is still on other shapes.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <utility>

#include "common/errc.hpp"

namespace gomodproxy {

/// A failure a person reads: `code` says what kind (and so the status), `detail` is the one line
/// shown as it is ("<what>: <reason>"), complete without the code's message.
struct failure {
  boost::system::error_code code;
  std::string detail;
};

/// A failure from a system call: `errno_value` in the generic category, so to_http_status is 500.
inline failure system_failure(int errno_value, std::string detail) {
  return {boost::system::error_code(errno_value, boost::system::generic_category()),
          std::move(detail)};
}

/// Input or a setting that cannot be what it claims (errc::invalid_request), and why.
inline failure invalid_request(std::string detail) {
  return {errc::invalid_request, std::move(detail)};
}

/// Bytes that do not prove what they must (errc::verification_failed): an upstream sent them.
inline failure verification_failed(std::string detail) {
  return {errc::verification_failed, std::move(detail)};
}

inline int to_http_status(const failure& error) noexcept { return to_http_status(error.code); }

/// What result<T, failure>::value() throws on a failure (found by argument-dependent lookup): a
/// boost::system::system_error of its code, whose what() carries the detail.
[[noreturn]] void throw_exception_from_error(const failure& error,
                                             const boost::source_location& location);

/// A value, or the failure a person is told about.
template <class T>
using outcome_of = boost::system::result<T, failure>;

}  // namespace gomodproxy
