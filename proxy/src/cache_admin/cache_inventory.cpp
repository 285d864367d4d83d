#include "cache_admin/cache_inventory.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <variant>

#include "protocol/module_path.hpp"
#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"

namespace gomodproxy::cache_admin {
namespace {

constexpr std::array<std::string_view, inventory_kind_count> kind_names = {
    "list",         "latest",     "query",       "info",     "mod",   "zip",
    "sumdb-record", "sumdb-tile", "sumdb-other", "negative", "other",
};

void add(kind_totals& totals, const cache::entry_meta& meta) {
  totals.entries += 1;
  totals.bytes += meta.size;
  if (totals.entries == 1 || meta.stored_at_ms < totals.oldest_ms) {
    totals.oldest_ms = meta.stored_at_ms;
  }
  totals.newest_ms = std::max(totals.newest_ms, meta.stored_at_ms);
}

std::string utc_time(std::int64_t ms) {
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text.data();
}

// The module request a key answers, or nullopt for checksum database keys and foreign keys.
std::optional<protocol::module_request> module_request_of(std::string_view key) {
  auto parsed = protocol::parse_module_request(key);
  if (!parsed || !parsed->sumdb.empty()) return std::nullopt;
  return std::move(*parsed);
}

}  // namespace

std::string_view inventory_kind_name(inventory_kind kind) {
  return kind_names[static_cast<std::size_t>(kind)];
}

inventory_kind classify_entry(std::string_view key, const cache::entry_meta& meta) {
  if (meta.kind == cache::entry_kind::not_found) return inventory_kind::negative;
  auto parsed = protocol::parse_module_request(key);
  if (!parsed) return inventory_kind::other;
  switch (parsed->kind) {
    case protocol::endpoint::list:
      return inventory_kind::list;
    case protocol::endpoint::latest:
      return inventory_kind::latest;
    case protocol::endpoint::info:
      return inventory_kind::info;
    case protocol::endpoint::query:
      return inventory_kind::query;
    case protocol::endpoint::mod:
      return inventory_kind::mod;
    case protocol::endpoint::zip:
      return inventory_kind::zip;
    case protocol::endpoint::sumdb_lookup:
      return inventory_kind::sumdb_record;
    case protocol::endpoint::sumdb_tile:
      return inventory_kind::sumdb_tile;
    case protocol::endpoint::sumdb_supported:
    case protocol::endpoint::sumdb_latest:
      return inventory_kind::sumdb_other;
  }
  return inventory_kind::other;
}

cache::result<cache_summary> summarize_cache(cache::cache_store& store) {
  cache_summary summary;
  auto walked =
      store.for_each_entry([&](std::string_view key, const cache::entry_meta& meta, bool damaged) {
        if (damaged) {
          summary.damaged += 1;
          return true;
        }
        add(summary.by_kind[static_cast<std::size_t>(classify_entry(key, meta))], meta);
        add(summary.total, meta);
        return true;
      });
  if (!walked) return walked.error();
  const auto usage = store.usage();
  summary.evictions = usage.evictions;
  summary.evicted_bytes = usage.evicted_bytes;
  return summary;
}

cache::result<std::vector<module_entry>> list_modules(cache::cache_store& store,
                                                      std::string_view glob) {
  const std::vector<std::string> patterns{std::string(glob)};
  std::vector<module_entry> entries;
  auto walked =
      store.for_each_entry([&](std::string_view key, const cache::entry_meta& meta, bool damaged) {
        if (damaged) return true;
        auto request = module_request_of(key);
        if (!request) return true;
        if (!glob.empty() && !protocol::match_prefix_patterns(patterns, request->module_path)) {
          return true;
        }
        entries.push_back({request->module_path, request->version, classify_entry(key, meta),
                           meta.size, std::string(key)});
        return true;
      });
  if (!walked) return walked.error();
  return entries;
}

cache::result<std::vector<std::string>> remove_module(cache::cache_store& store,
                                                      std::string_view module_path,
                                                      std::optional<std::string_view> version) {
  // Collected first: removing while the iteration runs could make it skip or repeat keys.
  std::vector<std::string> doomed;
  auto walked = store.for_each_entry([&](std::string_view key, const cache::entry_meta&, bool) {
    auto request = module_request_of(key);
    if (!request || request->module_path != module_path) return true;
    if (version && request->version != *version) return true;
    doomed.emplace_back(key);
    return true;
  });
  if (!walked) return walked.error();
  std::vector<std::string> removed;
  for (auto& key : doomed) {
    auto gone = store.remove(key);
    if (!gone) return gone.error();
    removed.push_back(std::move(key));
  }
  return removed;
}

std::optional<module_selector> parse_module_selector(std::string_view text) {
  module_selector selector;
  const auto at = text.find('@');
  selector.module_path = std::string(text.substr(0, at));
  if (!protocol::check_path(selector.module_path)) return std::nullopt;
  if (at != std::string_view::npos) {
    auto version = text.substr(at + 1);
    if (version.empty()) return std::nullopt;
    selector.version = std::string(version);
  }
  return selector;
}

std::string format_summary(const cache_summary& summary) {
  std::string text;
  auto line = [&text](std::string_view name, const kind_totals& totals) {
    text += std::string(name) + ": " + std::to_string(totals.entries) + " entries, " +
            std::to_string(totals.bytes) + " bytes";
    if (totals.entries > 0) {
      text += ", oldest " + utc_time(totals.oldest_ms) + ", newest " + utc_time(totals.newest_ms);
    }
    text += "\n";
  };
  for (std::size_t i = 0; i < inventory_kind_count; ++i) {
    if (summary.by_kind[i].entries > 0) {
      line(inventory_kind_name(static_cast<inventory_kind>(i)), summary.by_kind[i]);
    }
  }
  line("total", summary.total);
  if (summary.damaged > 0) {
    text += "damaged: " + std::to_string(summary.damaged) +
            " entries whose metadata cannot be decoded (gomodproxy cache verify --repair)\n";
  }
  // Kept by the store across restarts, so a stopped cache tells what its last run evicted.
  text += "evictions: " + std::to_string(summary.evictions) + " entries, " +
          std::to_string(summary.evicted_bytes) + " bytes (by the size cap, --cache-max-bytes)\n";
  return text;
}

std::string summary_json(const cache_summary& summary) {
  auto object = [](const kind_totals& totals) {
    return "{\"entries\":" + std::to_string(totals.entries) +
           ",\"bytes\":" + std::to_string(totals.bytes) +
           ",\"oldest_ms\":" + std::to_string(totals.oldest_ms) +
           ",\"newest_ms\":" + std::to_string(totals.newest_ms) + "}";
  };
  std::string json = "{\"kinds\":{";
  for (std::size_t i = 0; i < inventory_kind_count; ++i) {
    if (i > 0) json += ",";
    json += "\"" + std::string(inventory_kind_name(static_cast<inventory_kind>(i))) +
            "\":" + object(summary.by_kind[i]);
  }
  json += "},\"total\":" + object(summary.total) +
          ",\"damaged\":" + std::to_string(summary.damaged) +
          ",\"evictions\":" + std::to_string(summary.evictions) +
          ",\"evicted_bytes\":" + std::to_string(summary.evicted_bytes) + "}\n";
  return json;
}

std::string format_module_entries(const std::vector<module_entry>& entries) {
  std::string text;
  for (const auto& entry : entries) {
    text += entry.module_path + " " + (entry.version.empty() ? "-" : entry.version) + " " +
            std::string(inventory_kind_name(entry.kind)) + " " + std::to_string(entry.size) + "\n";
  }
  return text;
}

}  // namespace gomodproxy::cache_admin
