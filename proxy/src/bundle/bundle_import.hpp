// `cache import`: a bundle checked whole (names, signed tree, tiles, records, every file's h1)
// before any of it is committed under the keys the serving path reads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_store.hpp"
#include "common/failure.hpp"
#include "resolver/resolver.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::bundle {

/// The tiles and lookup records of all databases are held in memory until the whole bundle has
/// verified, and a bundle may be gigabytes of them. A site's bundle covers its own modules:
/// thousands to a few hundred thousand records (~200 bytes of lookup each, plus the tiles of
/// their paths), tens of MiB; 256 MiB leaves ample room for those and bounds what a hostile
/// bundle can make an import hold.
inline constexpr std::uint64_t max_import_checksum_bytes = std::uint64_t{256} << 20;

struct import_options {
  /// The importing proxy's checksum databases (their keys verify the bundle's trees); module
  /// files are checked against the first one's records, as fills are.
  std::vector<resolver::sumdb_options> sumdbs;
  /// Why a module is never looked up in a checksum database (private, no_sumdb), or nullopt;
  /// such modules need no record.
  std::function<std::optional<std::string>(const std::string& module_path)> exempt;
  sumdb::zip_limits limits;
  /// The bound on the tiles and lookup records held at once (their member sizes, summed).
  std::uint64_t max_checksum_bytes = max_import_checksum_bytes;
};

struct import_summary {
  std::uint64_t versions = 0;           ///< module versions in the bundle
  std::uint64_t files_added = 0;        ///< .info, .mod, .zip newly cached
  std::uint64_t files_present = 0;      ///< already cached, left as they were
  std::uint64_t lists = 0;              ///< version lists merged
  std::uint64_t records = 0;            ///< checksum records cached
  std::uint64_t tiles_added = 0;        ///< tiles newly cached
  std::vector<std::string> unverified;  ///< "module@version (why)": no record needed here
  std::vector<std::string> notes;       ///< per database: its tree, remembered or not and why
};

/// Checks the bundle at `tar_path` and, only when all of it verifies, commits it to `store` and
/// says what it did. A failure's detail is "<member>: <reason>" (or a reason about the whole
/// archive), and nothing was written when its code is invalid_request (a damaged archive, a
/// member a bundle may not hold, a missing or unconfigured part), too_large (over a bound an
/// import holds in memory) or verification_failed (a signature, tree, record or hash that does
/// not check); a commit failing midway is cache_io or the store's own code (each entry is
/// committed atomically, so what was committed is whole); the errno when the file cannot be read.
[[nodiscard]] outcome_of<import_summary> import_bundle(cache::cache_store& store,
                                                       const std::string& tar_path,
                                                       const import_options& options);

/// Why the settings never ask a checksum database about a module (no database, private,
/// no_sumdb), as the resolver decides; nullopt when they do. `options` must outlive the result.
std::function<std::optional<std::string>(const std::string&)> sumdb_exemption(
    const resolver::resolver_options& options);

/// The summary as the lines the command prints.
std::string format_import_summary(const import_summary& summary);

}  // namespace gomodproxy::bundle
