// The one error enum of gomodproxy, and its mapping to HTTP status.
#pragma once

#include <boost/system/error_code.hpp>
#include <system_error>

namespace gomodproxy {

enum class errc {
  /// Something asked for does not exist (module, version, cache entry).
  not_found = 1,
  /// The request is malformed; never forwarded upstream.
  invalid_request,
  /// An upstream answered with an error status or broke the connection.
  upstream_failed,
  /// A deadline passed (connect, first byte, total).
  timeout,
  /// A body or header exceeded its configured limit.
  too_large,
  /// Bytes from an upstream failed verification (zip structure, prefix, hash).
  verification_failed,
  /// The cache store failed to read or write.
  cache_io,
  /// Stored bytes are not what was committed (truncated chunk, bad metadata).
  cache_corrupt,
  /// A TLS or certificate problem with an upstream.
  tls_failed,
};

const boost::system::error_category& gomodproxy_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gomodproxy_category()};
}

}  // namespace gomodproxy

template <>
struct boost::system::is_error_code_enum<gomodproxy::errc> : std::true_type {};
