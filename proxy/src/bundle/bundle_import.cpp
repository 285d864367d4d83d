#include "bundle/bundle_import.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <set>

#include "bundle/bundle_layout.hpp"
#include "bundle/tar_format.hpp"
#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/request.hpp"
#include "protocol/semver.hpp"
#include "resolver/verified_tree.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::bundle {
namespace {

using protocol::endpoint;

// Small members are read whole, each kind within a bound far above what a database or proxy
// serves, so a hostile bundle cannot make the check hold more than its tiles and records.
constexpr std::uint64_t max_text_member = 1 << 20;                         // .info, list
constexpr std::uint64_t max_note_member = 64 << 10;                        // latest, lookup
constexpr std::uint64_t max_tile_member = 32 << sumdb::sumdb_tile_height;  // 256 hashes

// A name not yet validated, as one printable line.
std::string shown(std::string_view name) {
  protocol::quote_options options;
  options.quotes = false;
  options.max_bytes = 256;
  return protocol::quote(name, options);
}

struct member_file {
  tar_member member;
  protocol::module_request request;
};

struct database_bundle {
  const resolver::sumdb_options* options = nullptr;
  std::optional<member_file> latest;
  std::string note;
  sumdb::tree_head head;
  std::map<std::string, std::string> tiles;  // tile path -> bytes
  std::map<std::pair<std::string, std::string>, std::pair<std::string, sumdb::lookup_record>>
      records;  // (module, version) -> member name, record
  std::vector<member_file> lookups;
  std::vector<member_file> tile_members;
};

sumdb::random_reader member_reader(tar_reader& tar, const tar_member& member) {
  return [&tar, member](std::uint64_t offset,
                        std::size_t length) -> boost::system::result<std::string> {
    if (offset >= member.size) return std::string();
    length = static_cast<std::size_t>(std::min<std::uint64_t>(length, member.size - offset));
    std::string bytes;
    if (!tar.read(member.offset + offset, length, bytes) || bytes.size() != length) {
      return boost::system::errc::make_error_code(boost::system::errc::io_error);
    }
    return bytes;
  };
}

// `failed` with "<member>: " in front of its detail.
failure about(const tar_member& member, failure failed) {
  failed.detail = member.name + ": " + failed.detail;
  return failed;
}

outcome_of<void> read_small(tar_reader& tar, const tar_member& member, std::string& out,
                            std::uint64_t limit = max_text_member) {
  if (member.size > limit) {
    return failure{errc::too_large, member.name + ": " + std::to_string(member.size) +
                                        " bytes is too large for this file"};
  }
  if (auto read = tar.read(member.offset, static_cast<std::size_t>(member.size), out); !read) {
    return about(member, read.error());
  }
  return {};
}

// Hashes of the tree of `size` records from the bundle's tiles and, failing those, the cache's
// tiles of the same place at least as wide. Errors when neither holds one.
sumdb::hash_reader tree_reader(cache::cache_store& store, const database_bundle& database,
                               std::int64_t size) {
  return [&store, &database, size](std::span<const std::int64_t> indexes)
             -> boost::system::result<std::vector<sumdb::tlog_hash>> {
    std::vector<sumdb::tlog_hash> hashes;
    for (const auto index : indexes) {
      auto tile = sumdb::tile_for_index(sumdb::sumdb_tile_height, index).tile;
      const std::int64_t full = std::int64_t{1} << tile.height;
      const std::int64_t at_level = size >> (tile.level * tile.height);
      tile.width =
          static_cast<int>(std::clamp<std::int64_t>(at_level - tile.index * full, 0, full));
      if (tile.width == 0) {
        return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      }
      std::optional<std::string> bytes;
      if (auto found = database.tiles.find(sumdb::tile_path(tile)); found != database.tiles.end()) {
        bytes = found->second;
      }
      for (int width = tile.width; !bytes && width <= full; ++width) {
        auto wider = tile;
        wider.width = width;
        auto reader =
            store.open("/sumdb/" + database.options->name + "/" + sumdb::tile_path(wider));
        if (!reader || !*reader) continue;
        auto body = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
        if (body) bytes = std::move(*body);
      }
      if (!bytes)
        return boost::system::errc::make_error_code(boost::system::errc::no_such_file_or_directory);
      auto hash = sumdb::hash_from_tile(tile, *bytes, index);
      if (!hash) return hash.error();
      hashes.push_back(*hash);
    }
    return hashes;
  };
}

// Whether the bundle's tree and the one the cache remembers are one history: succeeds when
// they are (`proven` true) or when it cannot be told from the tiles at hand (`proven` false);
// fails with errc::verification_failed and the reason to refuse when they fork.
[[nodiscard]] outcome_of<void> check_against_remembered(cache::cache_store& store,
                                                        const database_bundle& database,
                                                        const sumdb::tree_head& known,
                                                        bool& proven) {
  proven = false;
  const auto& head = database.head;
  if (known.size == head.size) {
    if (known.root != head.root) {
      return verification_failed("the cache remembers a different tree of size " +
                                 std::to_string(head.size) + " (the database forked)");
    }
    proven = true;
    return {};
  }
  const auto& older = known.size < head.size ? known : head;
  const auto& newer = known.size < head.size ? head : known;
  auto proof = sumdb::prove_tree(newer.size, older.size, tree_reader(store, database, newer.size));
  if (!proof) return {};
  if (!sumdb::check_tree(*proof, newer.size, newer.root, older.size, older.root)) {
    return verification_failed("the tree of size " + std::to_string(newer.size) +
                               " does not extend the tree of size " + std::to_string(older.size) +
                               " (the database forked)");
  }
  proven = true;
  return {};
}

// Succeeds when `file` is a tile a client of the tree of `tree_size` records would load; fails
// with errc::invalid_request and the reason otherwise: tiles past the tree or wider than the tree
// makes them are refused before they are read.
[[nodiscard]] outcome_of<void> check_tile_in_tree(const member_file& file, std::int64_t tree_size) {
  const auto tile = sumdb::parse_tile_path(file.request.upstream_path.substr(1));
  if (!tile) return invalid_request("not a tile name");
  if (tile->height != sumdb::sumdb_tile_height) {
    return invalid_request("a tile of height " + std::to_string(tile->height) +
                           ", the database's are of height " +
                           std::to_string(sumdb::sumdb_tile_height));
  }
  // A data tile holds the records a level-0 tile hashes, so it spans as that one does.
  const int level = std::max(tile->level, 0);
  const std::int64_t at_level = tree_size >> (level * tile->height);
  const std::int64_t first = tile->index << tile->height;
  if (first >= at_level || tile->width > at_level - first) {
    return invalid_request("not a tile of the signed tree of " + std::to_string(tree_size) +
                           " records (past its end or wider than its tile there)");
  }
  return {};
}

outcome_of<void> commit_member(cache::cache_store& store, tar_reader& tar, const tar_member& member,
                               const std::string& key, cache::entry_kind kind) {
  auto created = store.create(key);
  if (!created) return failure{created.error(), key + ": " + created.error().message()};
  auto& writer = **created;
  std::string piece;
  for (std::uint64_t offset = 0; offset < member.size;) {
    const auto length =
        static_cast<std::size_t>(std::min<std::uint64_t>(1 << 20, member.size - offset));
    if (auto read = tar.read(member.offset + offset, length, piece); !read) {
      return about(member, read.error());
    }
    if (piece.size() != length) {
      return invalid_request(member.name + ": short read");
    }
    if (auto appended = writer.append(piece); !appended) {
      return failure{appended.error(), key + ": " + appended.error().message()};
    }
    offset += length;
  }
  cache::entry_meta meta;
  meta.kind = kind;
  meta.tier = "bundle";
  if (auto committed = writer.commit(meta); !committed) {
    return failure{committed.error(), key + ": " + committed.error().message()};
  }
  return {};
}

outcome_of<void> commit_bytes(cache::cache_store& store, const std::string& key,
                              std::string_view bytes, cache::entry_kind kind) {
  auto created = store.create(key);
  cache::entry_meta meta;
  meta.kind = kind;
  meta.tier = "bundle";
  if (!created || !(*created)->append(bytes) || !(*created)->commit(meta)) {
    return failure{errc::cache_io, key + ": cannot write it to the cache"};
  }
  return {};
}

// The versions a bundle's list names, or invalid_request naming the first line that is no
// valid version of its module.
outcome_of<std::set<std::string>> list_versions(tar_reader& tar, const member_file& file) {
  std::string body;
  if (auto read = read_small(tar, file.member, body); !read) return read.error();
  std::set<std::string> versions;
  std::string_view rest = body;
  for (std::size_t line_number = 1; !rest.empty(); ++line_number) {
    const auto newline = rest.find('\n');
    const auto line = protocol::trim_space(rest.substr(0, newline));
    rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
    if (line.empty()) continue;
    if (protocol::canonical_version(line) != line ||
        !protocol::check_path_version(file.request.module_path, line)) {
      return invalid_request(file.member.name + ": line " + std::to_string(line_number) +
                             " is not a version of " + file.request.module_path);
    }
    versions.emplace(line);
  }
  return versions;
}

// The bundle's list merged with the cached one, so an import never hides versions the cache
// already listed; in semver order.
outcome_of<std::string> merged_list(cache::cache_store& store, tar_reader& tar,
                                    const member_file& file) {
  auto known = list_versions(tar, file);
  if (!known) return known.error();
  const auto& key = file.request.cache_key;
  if (auto reader = store.open(key);
      reader && *reader && (*reader)->meta().kind != cache::entry_kind::not_found) {
    auto cached = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
    std::string_view lines = cached ? std::string_view(*cached) : std::string_view{};
    while (!lines.empty()) {
      const auto newline = lines.find('\n');
      const auto line = protocol::trim_space(lines.substr(0, newline));
      lines = newline == std::string_view::npos ? std::string_view{} : lines.substr(newline + 1);
      if (!line.empty()) known->emplace(line);
    }
  }
  std::vector<std::string> sorted(known->begin(), known->end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return protocol::compare_versions(a, b) < 0; });
  std::string merged;
  for (const auto& version : sorted) merged += version + "\n";
  return merged;
}

// The size of the tree the cached /latest answer signs, or nullopt when none is cached or it
// does not verify (then the bundle's, which does, replaces it).
std::optional<std::int64_t> cached_latest_size(cache::cache_store& store, const std::string& key,
                                               const resolver::sumdb_options& database) {
  auto reader = store.open(key);
  if (!reader || !*reader || (*reader)->meta().kind == cache::entry_kind::not_found) {
    return std::nullopt;
  }
  if ((*reader)->meta().size > max_note_member) return std::nullopt;
  auto note = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
  if (!note) return std::nullopt;
  auto text = sumdb::open_note(*note, database.key);
  if (!text) return std::nullopt;
  auto head = sumdb::parse_tree_head(*text);
  if (!head) return std::nullopt;
  return head->size;
}

bool present(cache::cache_store& store, const std::string& key) {
  auto meta = store.stat(key);
  return meta && *meta && (*meta)->kind != cache::entry_kind::not_found;
}

}  // namespace

outcome_of<import_summary> import_bundle(cache::cache_store& store, const std::string& tar_path,
                                         const import_options& options) {
  auto opened = tar_reader::open(tar_path);
  if (!opened) return opened.error();
  auto& tar = *opened;
  import_summary summary;

  // Pass 1: every member's name, type and uniqueness, sorted by what it is.
  std::set<std::string> names;
  std::map<std::string, database_bundle> databases;
  std::vector<member_file> module_files;  // .info, .mod, .zip
  std::vector<member_file> lists;
  for (;;) {
    auto next = tar->next();
    if (!next) return next.error();
    auto& member = *next;
    if (!member) break;
    // `tar -cf x.tar -C dir .` names every member "./...": the same tree.
    while (member->name.starts_with("./")) member->name.erase(0, 2);
    if (member->type == '5') {
      std::string name = member->name;
      while (name.ends_with('/')) name.pop_back();
      if (name.starts_with('/') || name == ".." || name.starts_with("../") ||
          name.find("/../") != std::string::npos || name.ends_with("/..")) {
        return invalid_request(shown(member->name) + ": directory outside the bundle");
      }
      continue;
    }
    if (member->type != '0') {
      return invalid_request(shown(member->name) + ": not a regular file (tar type " +
                             protocol::quote(std::string(1, member->type)) + ")");
    }
    auto request = parse_member_name(member->name);
    if (!request) {
      return failure{request.error().code, shown(member->name) + ": " + request.error().detail};
    }
    if (!names.insert(member->name).second) {
      return invalid_request(member->name + ": duplicate member");
    }
    member_file file{*member, std::move(*request)};
    if (!protocol::is_sumdb(file.request.kind)) {
      (file.request.kind == endpoint::list ? lists : module_files).push_back(std::move(file));
      continue;
    }
    auto& database = databases[file.request.sumdb];
    if (!database.options) {
      for (const auto& configured : options.sumdbs) {
        if (configured.name == file.request.sumdb) database.options = &configured;
      }
      if (!database.options) {
        return invalid_request(
            member->name + ": checksum database " + file.request.sumdb +
            " is not configured here, so its signatures cannot be checked (--sumdb)");
      }
    }
    switch (file.request.kind) {
      case endpoint::sumdb_supported:
        if (file.member.size != 0) {
          return invalid_request(member->name + ": must be empty");
        }
        break;
      case endpoint::sumdb_latest:
        database.latest = std::move(file);
        break;
      case endpoint::sumdb_lookup:
        database.lookups.push_back(std::move(file));
        break;
      default:
        database.tile_members.push_back(std::move(file));
        break;
    }
  }

  // Pass 2: each database's signed tree, tiles and records.
  std::uint64_t checksum_bytes = 0;
  const auto hold = [&checksum_bytes, &options](const tar_member& member) -> outcome_of<void> {
    checksum_bytes += member.size;
    if (checksum_bytes <= options.max_checksum_bytes) return {};
    return failure{errc::too_large, member.name +
                                        ": the bundle's tiles and checksum records exceed " +
                                        std::to_string(options.max_checksum_bytes) +
                                        " bytes, the most an import holds in memory to check them"};
  };
  for (auto& [name, database] : databases) {
    if (!database.latest) {
      return invalid_request("sumdb/" + name + "/latest: missing (the bundle's signed tree head)");
    }
    const auto& latest = database.latest->member;
    if (auto read = read_small(*tar, latest, database.note, max_note_member); !read) {
      return read.error();
    }
    auto text = sumdb::open_note(database.note, database.options->key);
    if (!text) {
      return verification_failed(latest.name +
                                 ": the signed tree does not verify with the configured key of " +
                                 name + ": " + text.error().message());
    }
    auto head = sumdb::parse_tree_head(*text);
    if (!head) {
      return verification_failed(latest.name + ": " + head.error().message());
    }
    database.head = *head;
    for (const auto& file : database.tile_members) {
      if (auto inside = check_tile_in_tree(file, database.head.size); !inside) {
        auto problem = inside.error();
        return failure{problem.code, file.member.name + ": " + problem.detail};
      }
      std::string bytes;
      if (auto read = read_small(*tar, file.member, bytes, max_tile_member); !read) {
        return read.error();
      }
      if (auto held = hold(file.member); !held) return held.error();
      database.tiles.emplace(file.request.upstream_path.substr(1), std::move(bytes));
    }
    std::vector<std::pair<std::int64_t, sumdb::tlog_hash>> record_hashes;
    for (const auto& file : database.lookups) {
      std::string body;
      if (auto read = read_small(*tar, file.member, body, max_note_member); !read) {
        return read.error();
      }
      if (auto held = hold(file.member); !held) return held.error();
      auto record = sumdb::parse_lookup_response(body);
      if (!record) {
        return verification_failed(file.member.name + ": " + record.error().message());
      }
      if (record->signed_tree != database.note) {
        return verification_failed(
            file.member.name + ": carries a signed tree other than the bundle's " + latest.name);
      }
      if (record->id >= database.head.size) {
        return verification_failed(file.member.name + ": record " + std::to_string(record->id) +
                                   " is beyond the signed tree of " +
                                   std::to_string(database.head.size) + " records");
      }
      record->signed_tree.clear();  // the bundle's note, kept once
      record_hashes.emplace_back(record->id, sumdb::record_hash(record->text));
      database.records[{file.request.module_path, file.request.version}] = {file.member.name,
                                                                            std::move(*record)};
    }
    if (auto fits = sumdb::check_records_in_tree(database.head.size, database.head.root,
                                                 database.tiles, record_hashes);
        !fits) {
      // Name the member: the tiles when they do not prove the root on their own, else the
      // first record that does not fit.
      if (auto tiles_alone = sumdb::check_records_in_tree(database.head.size, database.head.root,
                                                          database.tiles, {});
          !tiles_alone) {
        return verification_failed("sumdb/" + name + ": " + tiles_alone.error().detail);
      }
      for (const auto& [at, named] : database.records) {
        const std::pair<std::int64_t, sumdb::tlog_hash> one{named.second.id,
                                                            sumdb::record_hash(named.second.text)};
        if (auto alone = sumdb::check_records_in_tree(database.head.size, database.head.root,
                                                      database.tiles, {&one, 1});
            !alone) {
          return verification_failed(named.first + ": not in the bundle's signed tree (" +
                                     alone.error().detail + ")");
        }
      }
      return verification_failed("sumdb/" + name + ": " + fits.error().detail);
    }
  }

  // Pass 3: every module file against its record, and its own format.
  const database_bundle* primary = nullptr;
  if (!options.sumdbs.empty()) {
    if (auto found = databases.find(options.sumdbs.front().name); found != databases.end()) {
      primary = &found->second;
    }
  }
  std::set<std::pair<std::string, std::string>> versions;
  std::set<std::string> unverified;
  for (const auto& file : module_files) {
    const auto& request = file.request;
    const auto& member = file.member;
    const std::pair<std::string, std::string> at{request.module_path, request.version};
    versions.insert(at);
    auto read = member_reader(*tar, member);
    if (request.kind == endpoint::info) {
      std::string body;
      if (auto read = read_small(*tar, member, body); !read) return read.error();
      boost::system::error_code error;
      auto json = boost::json::parse(body, error);
      const auto* object = error ? nullptr : json.if_object();
      const auto* version = object ? object->if_contains("Version") : nullptr;
      if (!version || !version->is_string() || version->as_string() != request.version) {
        return verification_failed(member.name + ": not JSON whose Version is " + request.version);
      }
      continue;
    }
    const bool is_zip = request.kind == endpoint::zip;
    if (is_zip) {
      if (auto checked = sumdb::check_module_zip(request.module_path, request.version, member.size,
                                                 read, options.limits);
          !checked) {
        // A bundle's zip that does not check is the bundle's fault, whatever the check's code.
        return verification_failed(member.name + ": " + checked.error().detail);
      }
    } else if (member.size > options.limits.max_go_mod_bytes) {
      return failure{errc::too_large, member.name + ": larger than the go.mod limit"};
    }
    std::optional<std::string> exempt;
    if (options.exempt) exempt = options.exempt(request.module_path);
    if (exempt) {
      unverified.insert(request.module_path + "@" + request.version + " (" + *exempt + ")");
      continue;
    }
    const auto record = primary ? primary->records.find(at) : decltype(primary->records.end()){};
    if (!primary || record == primary->records.end()) {
      return verification_failed(member.name + ": no " + options.sumdbs.front().name +
                                 " record in the bundle vouches for it");
    }
    auto expected = sumdb::go_sum_hash(record->second.second.text, request.module_path,
                                       request.version, !is_zip);
    if (!expected) {
      return verification_failed(member.name + ": its record " + record->second.first +
                                 " has no hash for it");
    }
    auto actual = sumdb::module_file_h1_hash(is_zip, member.size, read);
    if (!actual) {
      return failure{actual.error(), member.name + ": cannot hash it: " + actual.error().message()};
    }
    if (*actual != *expected) {
      return verification_failed(member.name + ": h1 is " + *actual +
                                 ", the checksum record says " + *expected);
    }
  }
  for (const auto& file : lists) {
    if (auto listed = list_versions(*tar, file); !listed) return listed.error();
  }

  // The cache's remembered trees: a fork refuses the bundle; a proven newer tree replaces them.
  std::vector<std::pair<std::string, sumdb::tree_head>> remember;
  for (const auto& [name, database] : databases) {
    auto known = resolver::remembered_tree(store, name);
    const std::string size = std::to_string(database.head.size);
    if (!known) {
      remember.emplace_back(name, database.head);
      summary.notes.push_back(name + ": tree of " + size + " records, now remembered");
      continue;
    }
    bool proven = false;
    if (auto one_history = check_against_remembered(store, database, *known, proven);
        !one_history) {
      auto problem = one_history.error();
      return failure{problem.code, "sumdb/" + name + "/latest: " + problem.detail};
    }
    if (!proven) {
      summary.notes.push_back(name + ": tree of " + size + " records; the remembered tree of " +
                              std::to_string(known->size) +
                              " records stays (the tiles at hand cannot relate the two)");
    } else if (database.head.size > known->size) {
      remember.emplace_back(name, database.head);
      summary.notes.push_back(name + ": tree of " + size + " records, extends the remembered one");
    } else {
      summary.notes.push_back(name + ": tree of " + size +
                              " records, within the remembered tree of " +
                              std::to_string(known->size));
    }
  }

  // All verified: commit.
  summary.versions = versions.size();
  summary.unverified.assign(unverified.begin(), unverified.end());
  for (const auto& file : module_files) {
    if (present(store, file.request.cache_key)) {
      summary.files_present += 1;
      continue;
    }
    if (auto committed = commit_member(store, *tar, file.member, file.request.cache_key,
                                       cache::entry_kind::immutable);
        !committed) {
      return committed.error();
    }
    summary.files_added += 1;
  }
  for (const auto& file : lists) {
    auto merged = merged_list(store, *tar, file);
    if (!merged) return merged.error();
    if (auto committed =
            commit_bytes(store, file.request.cache_key, *merged, cache::entry_kind::expiring);
        !committed) {
      return committed.error();
    }
    summary.lists += 1;
  }
  for (const auto& [name, database] : databases) {
    for (const auto& file : database.lookups) {
      // Replaced even when cached: the bundle's tiles prove this answer's tree.
      if (auto committed = commit_member(store, *tar, file.member, file.request.cache_key,
                                         cache::entry_kind::immutable);
          !committed) {
        return committed.error();
      }
      summary.records += 1;
    }
    for (const auto& file : database.tile_members) {
      if (present(store, file.request.cache_key)) continue;
      if (auto committed = commit_member(store, *tar, file.member, file.request.cache_key,
                                         cache::entry_kind::immutable);
          !committed) {
        return committed.error();
      }
      summary.tiles_added += 1;
    }
    // A cached /latest answer of a tree at least as large stays: a fill may have cached one
    // newer than the tree the cache remembers.
    const std::string latest_key = "/sumdb/" + name + "/latest";
    const auto cached_size = cached_latest_size(store, latest_key, *database.options);
    if (!cached_size || *cached_size < database.head.size) {
      if (auto committed =
              commit_bytes(store, latest_key, database.note, cache::entry_kind::expiring);
          !committed) {
        return committed.error();
      }
    }
  }
  for (const auto& [name, head] : remember) {
    // A fill that remembered a larger tree meanwhile keeps it.
    if (!resolver::remember_tree(store, name, head, "bundle")) {
      return failure{errc::cache_io,
                     resolver::verified_tree_key(name) + ": cannot write it to the cache"};
    }
  }
  return summary;
}

std::function<std::optional<std::string>(const std::string&)> sumdb_exemption(
    const resolver::resolver_options& options) {
  return [&options](const std::string& module_path) -> std::optional<std::string> {
    if (auto why = resolver::sumdb_exemption(options, module_path)) return std::string(*why);
    return std::nullopt;
  };
}

std::string format_import_summary(const import_summary& summary) {
  std::string text = "imported " + std::to_string(summary.versions) +
                     " module versions: " + std::to_string(summary.files_added) + " files added, " +
                     std::to_string(summary.files_present) + " already cached, " +
                     std::to_string(summary.lists) + " version lists merged, " +
                     std::to_string(summary.records) + " checksum records, " +
                     std::to_string(summary.tiles_added) + " tiles added\n";
  for (const auto& note : summary.notes) text += "checksum database " + note + "\n";
  for (const auto& line : summary.unverified) {
    text += "not checked against a checksum database: " + line + "\n";
  }
  return text;
}

}  // namespace gomodproxy::bundle
