// `gomodproxy cache verify`: re-reads every cached entry and re-hashes every cached module zip
// and go.mod against the checksum database record cached next to it (with --online, asking the
// database for the files that have none); --repair deletes what is corrupt so the next request
// refetches it. Runs on a stopped proxy's cache directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_store.hpp"
#include "resolver/resolver.hpp"

namespace gomodproxy::cache_admin {

struct verify_options {
  std::vector<std::string> sumdb_names;  ///< databases whose cached lookups vouch for modules
  bool repair = false;                   ///< remove corrupt entries
  /// Asked about each module zip or go.mod that has no cached record: `go_mod` is false for a
  /// zip. Default: none (such files are only counted)
  std::function<resolver::resolver::database_answer(const std::string& module_path,
                                                    const std::string& version, bool go_mod)>
      ask_database;
};

struct verify_totals {
  std::uint64_t entries = 0;            ///< entries read back in full
  std::uint64_t hashed = 0;             ///< module zips and go.mod files matched against a record
  std::uint64_t unvouched = 0;          ///< module zips and go.mod files with no cached record
  std::uint64_t asked = 0;              ///< of those, how many the database was asked about
  std::uint64_t vouched_now = 0;        ///< and how many it vouched for (then counted in hashed)
  std::vector<std::string> unanswered;  ///< "<key>: <why>" for each the database did not vouch for
  std::uint64_t corrupt = 0;            ///< unreadable, damaged, or contradicting their record
  std::uint64_t repaired = 0;           ///< corrupt entries removed
  std::vector<std::string> problems;    ///< one line per corrupt entry: "<key>: <reason>"
};

/// Checks every entry of `store`; `progress` gets one line now and then (for stderr).
verify_totals verify_cache(cache::cache_store& store, const verify_options& options,
                           const std::function<void(const std::string&)>& progress);

/// The RocksDB cache at `cache_dir`, or null after one line on stderr saying why it cannot be
/// opened (for the commands that open it: serve, cache verify). `max_bytes`: the size cap
/// (rocksdb_options::max_bytes; 0: none); `memory_bytes`: rocksdb_options::memory_bytes.
std::unique_ptr<cache::cache_store> open_cache_or_report(const std::string& cache_dir,
                                                         std::uint64_t max_bytes,
                                                         std::uint64_t memory_bytes);

/// The `cache` subcommand: `cache verify [--repair] [--online] [serve flags for the cache dir,
/// upstreams and sumdb]`.
/// Exit status: 0 when nothing corrupt is left, 1 when some is (or the cache cannot be opened),
/// 2 for usage errors.
int run_cache_command(std::vector<std::string> args);

}  // namespace gomodproxy::cache_admin
