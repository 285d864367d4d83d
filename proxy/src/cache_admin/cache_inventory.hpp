// What a cache holds, for the `cache stats`, `cache ls` and `cache rm` verbs and their admin
// endpoints: entries classified by the GOPROXY request their key answers, counted, listed by
// module, and removed by module or version. Works on any cache_store, stopped or serving.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_store.hpp"

namespace gomodproxy::cache_admin {

enum class inventory_kind : std::uint8_t {
  list,
  latest,
  query,
  info,
  mod,
  zip,
  sumdb_record,  ///< a checksum database lookup answer
  sumdb_tile,
  sumdb_other,  ///< a database's /supported or /latest answer
  negative,     ///< a remembered "not found", whatever was asked
  other,        ///< a key no GOPROXY request gives (written by an older build)
};
inline constexpr std::size_t inventory_kind_count = 11;

/// Closed-set name of a kind, as printed and used in the JSON ("zip", "sumdb-record", ...).
std::string_view inventory_kind_name(inventory_kind kind);

/// The kind of the entry stored under `key` with `meta`.
inventory_kind classify_entry(std::string_view key, const cache::entry_meta& meta);

struct kind_totals {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::int64_t oldest_ms = 0;  ///< stored_at of the oldest entry; 0 when there are none
  std::int64_t newest_ms = 0;
};

struct cache_summary {
  std::array<kind_totals, inventory_kind_count> by_kind{};
  kind_totals total;
  std::uint64_t damaged = 0;    ///< entries whose metadata cannot be decoded (not in the totals)
  std::uint64_t evictions = 0;  ///< entries the size cap evicted, over the cache's life
  std::uint64_t evicted_bytes = 0;  ///< their body bytes
};

/// One pass over every entry of `store`.
cache::result<cache_summary> summarize_cache(cache::cache_store& store);

struct module_entry {
  std::string module_path;  ///< unescaped
  std::string version;      ///< version or query; empty for list and @latest
  inventory_kind kind = inventory_kind::other;
  std::uint64_t size = 0;
  std::string key;
};

/// Module entries (never checksum database ones) whose module path matches `glob`, in key
/// order. `glob` is a GOPRIVATE-style pattern (path.Match against the path or a prefix of it
/// with as many elements: "example.com" matches every module under example.com); empty matches
/// all. Negative entries are listed with kind negative.
cache::result<std::vector<module_entry>> list_modules(cache::cache_store& store,
                                                      std::string_view glob);

/// Removes every entry of `module_path` (list, @latest, queries, every version's files and
/// negative entries) or, with `version`, that version's .info, .mod, .zip and negative entries
/// (the list and @latest stay: they refresh on their own). Each entry is removed atomically on
/// its own; checksum database records and tiles are never removed: they are proofs, not copies.
/// Returns the keys removed.
cache::result<std::vector<std::string>> remove_module(cache::cache_store& store,
                                                      std::string_view module_path,
                                                      std::optional<std::string_view> version);

/// "example.com/m@v1.0.0" -> {"example.com/m", "v1.0.0"}; no '@' -> no version. nullopt when
/// the module path is not one the go command accepts or the version is empty.
struct module_selector {
  std::string module_path;
  std::optional<std::string> version;
};
std::optional<module_selector> parse_module_selector(std::string_view text);

/// The summary as the plain text `cache stats` prints (one line per kind that has entries).
std::string format_summary(const cache_summary& summary);
/// The summary as JSON, for GET /admin/cache/stats.
std::string summary_json(const cache_summary& summary);
/// One line per entry: "<module> <version or -> <kind> <size>".
std::string format_module_entries(const std::vector<module_entry>& entries);

}  // namespace gomodproxy::cache_admin
