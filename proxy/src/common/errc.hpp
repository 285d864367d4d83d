// The errors gomodproxy's own code produces, and the one place they become an HTTP status.
//
// Errors from elsewhere keep their own category (Asio's, RocksDB's through the cache, the
// checksum database's verify_errc); to_http_status answers for every error code, so the edge that
// turns a failure into a response never picks a status by hand.
// A fallible function that says why returns outcome_of<T>, a value or a code with its detail: see
// failure.hpp.
#pragma once

#include <boost/system/error_code.hpp>
#include <system_error>

namespace gomodproxy {

enum class errc {
  /// Input that cannot be what it claims: a malformed module path or version, a log index outside
  /// the tree, a tile that is not a hash tile; or a setting the operator gave that cannot be used
  /// (a config value, a token's shape, a TLS key that does not match its certificate). A request
  /// is never forwarded upstream. 404, not 400: the go command falls back to its next proxy only
  /// on 404 and 410, and a proxy that cannot parse a path has not got that module. A setting's
  /// failure stops start-up or a reload and is printed, never answered.
  invalid_request = 1,
  /// A value exceeded a limit of the format it is stored in (a tier name over 65,535 bytes in a
  /// cache record). 500: it is this process that cannot store it.
  too_large,
  /// Bytes that do not prove what they must: a zip whose structure or paths the go command would
  /// refuse, checksum-database hashes that do not match. 502: an upstream sent them.
  verification_failed,
  /// The cache store could not read or write (RocksDB failed, a body file could not be written).
  /// 500.
  cache_io,
  /// Stored bytes are not what was committed: a record that does not decode, a missing chunk or
  /// body file, a CRC mismatch. 500; the resolver fills such an entry again.
  cache_corrupt,
  /// No tier has the module, version or file: each one asked answered not found (or the cache
  /// remembers that they did), a checksum database has no record of it, or offline, the cache
  /// does not hold it. 404, not 410: the go command falls back to its next proxy on either, and
  /// 404 is what this proxy has always answered.
  not_found,
  /// No tier answered: each one asked failed, timed out or was passed over by its circuit
  /// breaker, or the fill's deadline passed. 404 too, so the go command tries the next entry of
  /// its GOPROXY whatever separates them (a 502 stops it at a `,`); the resolver answers 502
  /// instead when all_failed_502 is set.
  upstream_unavailable,
  /// A destination the direct fetcher's address policy (direct/address_policy.hpp) keeps it from:
  /// an IP literal as a module path's host, a name or address that is loopback, private, link-local
  /// or this server's own. 403, the connect guard's answer; the direct tier answers a public
  /// path's refusal as not found, so the go command tries its next proxy.
  refused,
};

const boost::system::error_category& gomodproxy_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gomodproxy_category()};
}

/// The status an answer made of `error` alone carries: the one given with each enumerator above
/// for gomodproxy's own codes, 500 for any other category (a failure of this process).
int to_http_status(const boost::system::error_code& error) noexcept;

}  // namespace gomodproxy

template <>
struct boost::system::is_error_code_enum<gomodproxy::errc> : std::true_type {};
