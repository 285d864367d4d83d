// `cache export`: the module versions a selection names, copied from a cache into a bundle with
// the checksum database records, tiles and the one signed tree head that prove them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_store.hpp"
#include "resolver/resolver.hpp"

namespace gomodproxy::bundle {

/// One module version to export; `go_mod_only` needs only its .mod (its .info goes in when
/// cached), otherwise its .info, .mod and .zip are needed.
struct wanted_version {
  std::string module_path;
  std::string version;
  bool go_mod_only = false;
};

struct export_request {
  /// What to export; ignored with `all`.
  std::vector<wanted_version> wanted;
  /// Every module version with a cached .mod or .zip, with whatever of its files is cached.
  bool all = false;
  /// Databases whose records, tiles and tree go in; every one must hold a record for every
  /// module version that is not exempt.
  std::vector<resolver::sumdb_options> sumdbs;
  /// Why a module is never looked up in a checksum database (private, no_sumdb), or nullopt.
  std::function<std::optional<std::string>(const std::string& module_path)> exempt;
  /// Asked for a tile the cache lacks, by its cache key ("/sumdb/<name>/tile/..."): its bytes, or
  /// nullopt. Default: none (a missing tile fails the export).
  std::function<std::optional<std::string>(const std::string& key)> fetch;
};

struct export_summary {
  std::uint64_t versions = 0;       ///< module versions
  std::uint64_t files = 0;          ///< .info, .mod and .zip members
  std::uint64_t bytes = 0;          ///< the archive's size
  std::vector<std::string> exempt;  ///< "module@version (why)" exported without records
  struct database {
    std::string name;
    std::int64_t tree_size = 0;
    std::uint64_t records = 0;
    std::uint64_t tiles = 0;
    std::uint64_t tiles_fetched = 0;
    /// Older trees seen by this cache whose consistency tiles are in, for clients that
    /// remember one of them.
    std::uint64_t older_trees = 0;
  };
  std::vector<database> databases;
};

/// Writes the bundle to `out_path` through a temporary file beside it, renamed into place only
/// when complete. Returns false with one line per problem in `problems` (each selected file
/// not cached, each record missing, each tile neither cached nor fetched, a tree that does not
/// verify) and nothing at `out_path`.
[[nodiscard]] bool export_bundle(cache::cache_store& store, const export_request& request,
                                 const std::string& out_path, export_summary& summary,
                                 std::vector<std::string>& problems);

}  // namespace gomodproxy::bundle
