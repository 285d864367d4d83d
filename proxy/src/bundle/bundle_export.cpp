#include "bundle/bundle_export.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <variant>

#include "bundle/bundle_layout.hpp"
#include "bundle/tar_format.hpp"
#include "protocol/request.hpp"
#include "protocol/semver.hpp"
#include "resolver/verified_tree.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::bundle {
namespace {

using version_key = std::pair<std::string, std::string>;  // module path, version

struct version_files {
  bool info = false;
  bool mod = false;
  bool zip = false;
};

// The whole body of a small committed entry (lookups, tiles, notes), or nullopt.
std::optional<std::string> small_body(cache::cache_store& store, const std::string& key) {
  auto reader = store.open(key);
  if (!reader || !*reader || (*reader)->meta().kind == cache::entry_kind::not_found) {
    return std::nullopt;
  }
  auto body = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
  if (!body) return std::nullopt;
  return std::move(*body);
}

bool cached(cache::cache_store& store, const std::string& key) {
  auto meta = store.stat(key);
  return meta && *meta && (*meta)->kind != cache::entry_kind::not_found;
}

// The signed tree note of the newest tree `database` has signed, among its cached lookup
// answers and /latest answer.
struct chosen_tree {
  std::string note;
  sumdb::tree_head head;
  std::set<std::int64_t> older_sizes;  ///< of the other trees the cache has seen
};

std::optional<chosen_tree> newest_tree(cache::cache_store& store,
                                       const resolver::sumdb_options& database,
                                       std::vector<std::string>& problems) {
  const std::string prefix = "/sumdb/" + database.name + "/";
  std::vector<std::string> keys;
  auto listed =
      store.for_each_entry([&](std::string_view key, const cache::entry_meta& meta, bool damaged) {
        if (!damaged && meta.kind != cache::entry_kind::not_found && key.starts_with(prefix) &&
            (key.substr(prefix.size()).starts_with("lookup/") ||
             key.substr(prefix.size()) == "latest")) {
          keys.emplace_back(key);
        }
        return true;
      });
  if (!listed) {
    problems.push_back("cannot read the cache: " + listed.error().message());
    return std::nullopt;
  }
  std::optional<chosen_tree> best;
  std::map<std::int64_t, sumdb::tlog_hash> roots;
  for (const auto& key : keys) {
    auto body = small_body(store, key);
    if (!body) continue;
    std::string note = *body;
    if (!key.ends_with("/latest")) {
      auto record = sumdb::parse_lookup_response(*body);
      if (!record) continue;
      note = record->signed_tree;
    }
    auto text = sumdb::open_note(note, database.key);
    if (!text) continue;
    auto head = sumdb::parse_tree_head(*text);
    if (!head) continue;
    auto [known, added] = roots.emplace(head->size, head->root);
    if (!added && known->second != head->root) {
      problems.push_back(database.name + ": the cache holds two different signed trees of size " +
                         std::to_string(head->size) + " (the database forked)");
      return std::nullopt;
    }
    if (!best || head->size > best->head.size) best = chosen_tree{note, *head, {}};
  }
  if (!best) {
    problems.push_back(database.name + ": no signed tree head is cached");
    return best;
  }
  if (auto remembered = resolver::remembered_tree(store, database.name)) {
    roots.emplace(remembered->size, remembered->root);
  }
  for (const auto& [size, root] : roots) {
    if (size > 0 && size < best->head.size) best->older_sizes.insert(size);
  }
  return best;
}

// The bytes of `wanted`, from the cache (that tile, or a wider one at the same place), else
// through `fetch`; nullopt when neither has it.
std::optional<std::string> tile_bytes(cache::cache_store& store, const std::string& database,
                                      const sumdb::tile& wanted, const export_request& request,
                                      bool& fetched) {
  const std::string prefix = "/sumdb/" + database + "/";
  const int full = 1 << wanted.height;
  std::vector<int> widths{wanted.width};
  if (wanted.level >= 0) {
    widths.push_back(full);
    for (int width = wanted.width + 1; width < full; ++width) widths.push_back(width);
  }
  for (const int width : widths) {
    auto available = wanted;
    available.width = width;
    auto bytes = small_body(store, prefix + sumdb::tile_path(available));
    if (!bytes) continue;
    if (auto cut = sumdb::cut_tile(wanted, available, *bytes)) return cut;
  }
  if (!request.fetch) return std::nullopt;
  for (const int width : {wanted.width, full}) {
    auto available = wanted;
    available.width = width;
    auto bytes = request.fetch(prefix + sumdb::tile_path(available));
    if (!bytes) continue;
    if (auto cut = sumdb::cut_tile(wanted, available, *bytes)) {
      fetched = true;
      return cut;
    }
    if (wanted.level < 0) break;
  }
  return std::nullopt;
}

// A member copied from the cache entry `key` in bounded pieces.
outcome_of<void> copy_entry(cache::cache_store& store, const std::string& key, tar_writer& tar,
                            std::int64_t mtime) {
  auto reader = store.open(key);
  if (!reader) return failure{reader.error(), key + ": " + reader.error().message()};
  if (!*reader) return failure{errc::cache_corrupt, key + ": vanished from the cache"};
  auto& entry = **reader;
  const auto size = entry.meta().size;
  if (auto begun = tar.begin_file(member_for_key(key), size, mtime); !begun) return begun;
  for (std::uint64_t offset = 0; offset < size;) {
    auto piece = entry.view(offset, 1 << 20);
    if (!piece) return failure{piece.error(), key + ": " + piece.error().message()};
    if (piece->empty()) {
      return failure{errc::cache_corrupt, key + ": shorter than its metadata says"};
    }
    if (auto written = tar.write(*piece); !written) return written;
    offset += piece->size();
  }
  return tar.end_file();
}

struct database_part {
  const resolver::sumdb_options* database = nullptr;
  chosen_tree tree;
  std::map<std::string, std::string> lookups;  // member name -> rewritten answer
  std::map<std::string, std::string> tiles;    // tile path -> bytes
  std::uint64_t fetched = 0;
  std::uint64_t older_trees = 0;  // older trees whose consistency tiles are in
};

// A go client that remembers an older tree of the database proves the bundle's tree extends it
// and loads more tiles for that: those of every older tree this cache has seen (clients that
// used this proxy remember one of them) go in too, when all of a tree's can be had.
void add_consistency_tiles(cache::cache_store& store, const export_request& request,
                           std::span<const std::int64_t> ids, database_part& part) {
  const auto& name = part.database->name;
  for (const auto older : part.tree.older_sizes) {
    auto planned = sumdb::client_tiles(part.tree.head.size, ids, older);
    if (!planned) continue;
    std::map<std::string, std::string> extra;
    std::uint64_t fetched_here = 0;
    bool complete = true;
    for (const auto& tile : *planned) {
      const auto path = sumdb::tile_path(tile);
      if (part.tiles.contains(path) || extra.contains(path)) continue;
      bool fetched = false;
      auto bytes = tile_bytes(store, name, tile, request, fetched);
      if (!bytes) {
        complete = false;
        break;
      }
      fetched_here += fetched ? 1 : 0;
      extra.emplace(path, std::move(*bytes));
    }
    if (!complete) continue;
    auto with_extra = part.tiles;
    with_extra.insert(extra.begin(), extra.end());
    // Only tiles that the importer's check accepts: each must fit the bundle's tree.
    if (!sumdb::check_records_in_tree(part.tree.head.size, part.tree.head.root, with_extra, {})) {
      continue;
    }
    part.tiles = std::move(with_extra);
    part.fetched += fetched_here;
    part.older_trees += 1;
  }
}

}  // namespace

bool export_bundle(cache::cache_store& store, const export_request& request,
                   const std::string& out_path, export_summary& summary,
                   std::vector<std::string>& problems) {
  std::map<version_key, version_files> selected;
  if (request.all) {
    auto listed = store.for_each_entry(
        [&](std::string_view key, const cache::entry_meta& meta, bool damaged) {
          if (damaged || meta.kind == cache::entry_kind::not_found) return true;
          auto parsed = protocol::parse_module_request(key);
          if (!parsed || parsed->cache_key != key) return true;
          const auto* module = &*parsed;
          auto& files = selected[{module->module_path, module->version}];
          files.info |= module->kind == protocol::endpoint::info;
          files.mod |= module->kind == protocol::endpoint::mod;
          files.zip |= module->kind == protocol::endpoint::zip;
          return true;
        });
    if (!listed) {
      problems.push_back("cannot read the cache: " + listed.error().message());
      return false;
    }
    std::erase_if(selected, [](const auto& item) { return !item.second.mod && !item.second.zip; });
  } else {
    for (const auto& wanted : request.wanted) {
      auto& files = selected[{wanted.module_path, wanted.version}];
      const std::string at = wanted.module_path + "@" + wanted.version;
      const bool needs_zip = !wanted.go_mod_only || files.zip;
      files.mod = true;
      files.zip = needs_zip;
      files.info =
          needs_zip || cached(store, module_file_key(wanted.module_path, wanted.version, ".info"));
    }
    for (const auto& [at, files] : selected) {
      for (const auto& [suffix, needed] : {std::pair<std::string, bool>{".info", files.info},
                                           {".mod", files.mod},
                                           {".zip", files.zip}}) {
        if (needed && !cached(store, module_file_key(at.first, at.second, suffix))) {
          problems.push_back("not cached: " + at.first + "@" + at.second + " " + suffix);
        }
      }
    }
  }

  // Records: every database, every module version the settings do not exempt.
  std::vector<database_part> parts;
  for (const auto& database : request.sumdbs) {
    database_part part;
    part.database = &database;
    std::vector<std::pair<std::int64_t, sumdb::tlog_hash>> record_hashes;
    std::vector<std::pair<std::string, sumdb::lookup_record>> records;
    for (const auto& [at, files] : selected) {
      if (request.exempt && request.exempt(at.first)) continue;
      const auto key = "/sumdb/" + database.name + protocol::sumdb_lookup_path(at.first, at.second);
      auto body = small_body(store, key);
      auto record =
          body ? sumdb::parse_lookup_response(*body)
               : boost::system::result<sumdb::lookup_record>(boost::system::errc::make_error_code(
                     boost::system::errc::no_such_file_or_directory));
      if (!record) {
        problems.push_back("not cached: " + database.name + " record for " + at.first + "@" +
                           at.second);
        continue;
      }
      records.emplace_back(member_for_key(key), std::move(*record));
    }
    // A bundle of exempt modules only needs nothing of this database.
    if (records.empty()) continue;
    auto tree = newest_tree(store, database, problems);
    if (!tree) continue;
    part.tree = std::move(*tree);
    std::vector<std::int64_t> ids;
    for (auto& [member, record] : records) {
      if (record.id >= part.tree.head.size) {
        problems.push_back(database.name + ": record " + member + " is not in the newest tree");
        continue;
      }
      ids.push_back(record.id);
      record_hashes.emplace_back(record.id, sumdb::record_hash(record.text));
      part.lookups[member] = std::to_string(record.id) + "\n" + record.text + "\n" + part.tree.note;
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (!ids.empty()) {
      auto planned = sumdb::client_tiles(part.tree.head.size, ids);
      if (!planned) {
        problems.push_back(database.name + ": cannot plan the tiles: " + planned.error().message());
        continue;
      }
      for (const auto& tile : *planned) {
        bool fetched = false;
        auto bytes = tile_bytes(store, database.name, tile, request, fetched);
        if (!bytes) {
          problems.push_back("tile not cached and not fetched: sumdb/" + database.name + "/" +
                             sumdb::tile_path(tile));
          continue;
        }
        part.fetched += fetched ? 1 : 0;
        part.tiles.emplace(sumdb::tile_path(tile), std::move(*bytes));
      }
      if (problems.empty()) {
        // What the importer will check, checked here first: a damaged cache stops the export
        // instead of producing a bundle every importer refuses.
        auto proven = sumdb::check_records_in_tree(part.tree.head.size, part.tree.head.root,
                                                   part.tiles, record_hashes);
        if (!proven) {
          problems.push_back(
              database.name +
              ": the cached records and tiles do not prove the tree: " + proven.error().detail);
        }
      }
    }
    if (problems.empty() && !ids.empty()) add_consistency_tiles(store, request, ids, part);
    parts.push_back(std::move(part));
  }
  if (!problems.empty()) return false;

  const std::filesystem::path target(out_path);
  const std::string temporary = (target.parent_path() / ("." + target.filename().string() +
                                                         ".part-" + std::to_string(::getpid())))
                                    .string();
  std::FILE* out = std::fopen(temporary.c_str(), "wb");
  if (!out) {
    problems.push_back("cannot create " + temporary + ": " + std::strerror(errno));
    return false;
  }
  const std::int64_t mtime = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  tar_writer tar(out);
  outcome_of<void> written;
  std::map<std::string, std::vector<std::string>> lists;
  for (const auto& [at, files] : selected) {
    summary.versions += 1;
    // The go command ignores pseudo-versions in a list (as proxy.golang.org leaves them out),
    // so a module with only those gets an empty one.
    auto& listed = lists[at.first];
    if (!protocol::is_pseudo_version(at.second)) listed.push_back(at.second);
    if (request.exempt) {
      if (auto reason = request.exempt(at.first)) {
        summary.exempt.push_back(at.first + "@" + at.second + " (" + *reason + ")");
      }
    }
    for (const auto& [suffix, present] : {std::pair<const char*, bool>{".info", files.info},
                                          {".mod", files.mod},
                                          {".zip", files.zip}}) {
      if (!present || !written) continue;
      written = copy_entry(store, module_file_key(at.first, at.second, suffix), tar, mtime);
      summary.files += 1;
    }
  }
  for (auto& [module_path, versions] : lists) {
    if (!written) break;
    std::sort(versions.begin(), versions.end(),
              [](const auto& a, const auto& b) { return protocol::compare_versions(a, b) < 0; });
    std::string body;
    for (const auto& version : versions) body += version + "\n";
    written = tar.add_file(member_for_key(list_key(module_path)), body, mtime);
  }
  // Each write only while all before it succeeded, so `written` keeps the first failure.
  const auto add = [&](std::string_view member, std::string_view content) {
    if (written) written = tar.add_file(member, content, mtime);
  };
  for (const auto& part : parts) {
    const std::string base = "sumdb/" + part.database->name + "/";
    add(base + "supported", "");
    add(base + "latest", part.tree.note);
    for (const auto& [member, body] : part.lookups) add(member, body);
    for (const auto& [path, bytes] : part.tiles) add(base + path, bytes);
    summary.databases.push_back({part.database->name, part.tree.head.size, part.lookups.size(),
                                 part.tiles.size(), part.fetched, part.older_trees});
  }
  if (written) written = tar.finish();
  if (std::fclose(out) != 0 && written) {
    const int error = errno;
    written = system_failure(
        error, std::string("cannot write ") + temporary + ": " + std::strerror(error));
  }
  std::error_code renamed;
  if (written) std::filesystem::rename(temporary, target, renamed);
  if (!written || renamed) {
    problems.push_back(written ? "cannot rename into " + out_path + ": " + renamed.message()
                               : written.error().detail);
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    return false;
  }
  std::error_code ignored;
  summary.bytes = std::filesystem::file_size(target, ignored);
  return true;
}

}  // namespace gomodproxy::bundle
