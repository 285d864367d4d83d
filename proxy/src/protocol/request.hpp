// The GOPROXY URL grammar: turns a request target into a typed, validated module request.
// Pure functions; no I/O.
#pragma once

#include <string>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::protocol {

enum class endpoint {
  list,    ///< $module/@v/list
  latest,  ///< $module/@latest
  info,    ///< $module/@v/$version.info with a canonical version valid for the path
  query,   ///< $module/@v/$query.info with a non-canonical version (branch, hash, v1.2, +meta)
  mod,     ///< $module/@v/$version.mod (canonical versions only)
  zip,     ///< $module/@v/$version.zip (canonical versions only)
  // The checksum database, passed through at /sumdb/$name/...:
  sumdb_supported,  ///< /sumdb/$name/supported
  sumdb_lookup,     ///< /sumdb/$name/lookup/$module@$version (canonical version)
  sumdb_tile,       ///< /sumdb/$name/tile/$H/$L/$NNN[.p/$W], $L may be "data"
  sumdb_latest,     ///< /sumdb/$name/latest
};

/// Closed-set name of an endpoint kind, for logs and metric labels ("list", "zip", ...).
std::string_view endpoint_name(endpoint kind);

struct module_request {
  endpoint kind = endpoint::list;
  std::string module_path;  ///< unescaped, passes check_path
  std::string version;      ///< unescaped; empty for list and latest
  /// The upstream path below a proxy base, canonically escaped, e.g.
  /// "/example.com/!upper/@v/v1.0.0.zip"; characters a URL path may not hold raw (in revision
  /// queries: ' ', '#', '%', '[', ']', '^', '{', '}') percent-encoded, so it is a valid request
  /// target that parses back to this request.
  std::string upstream_path;
  /// Key that identifies this answer in the cache; equal requests give equal keys.
  std::string cache_key;
  /// The checksum database's name for sumdb_* kinds (then upstream_path is below the database's
  /// base URL, e.g. "/lookup/example.com/!upper@v1.0.0"); empty otherwise.
  std::string sumdb;
};

/// True for the sumdb_* endpoint kinds.
bool is_sumdb(endpoint kind);

/// A checksum database's lookup endpoint for a module version, below the database's base:
/// "/lookup/<escaped path>@<escaped version>". Below "/sumdb/<name>" it is also the cache key.
std::string sumdb_lookup_path(std::string_view module_path, std::string_view version);

/// Parses a request target such as "/example.com/%21upper/@v/v1.0.0.zip". The target is
/// percent-decoded first (never turning '+' into a space), then !-unescaped and validated.
/// Fails with errc::invalid_request for anything the go command would never send for a real
/// module; the detail is one line of printable ASCII, suitable after "not found: ".
[[nodiscard]] outcome_of<module_request> parse_module_request(std::string_view target);

/// Percent-decodes a URL path. Returns false (and leaves out unspecified) on a bad escape or a
/// decoded NUL byte.
bool percent_decode(std::string_view in, std::string& out);

/// Percent-encodes every byte but the unreserved ones of RFC 3986 (letters, digits, `-._~`) and
/// those in `also_kept` (e.g. "/@*" for a glob in a query), with upper-case hex digits.
std::string percent_encode(std::string_view in, std::string_view also_kept = {});

}  // namespace gomodproxy::protocol
