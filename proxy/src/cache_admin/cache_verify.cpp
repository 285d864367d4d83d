#include "cache_admin/cache_verify.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>

#include "protocol/escape.hpp"
#include "protocol/request.hpp"
#include "settings.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::cache_admin {
namespace {

// The hash the cached record of `database` gives for the request's zip or go.mod, or nullopt
// when no record is cached or it has no such line.
std::optional<std::string> recorded_hash(cache::cache_store& store, const std::string& database,
                                         const protocol::module_request& request) {
  const std::string key = "/sumdb/" + database + "/lookup/" +
                          protocol::escape_case(request.module_path) + "@" +
                          protocol::escape_case(request.version);
  auto reader = store.open(key);
  if (!reader || !*reader || (*reader)->meta().kind == cache::entry_kind::not_found) {
    return std::nullopt;
  }
  auto body = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
  if (!body) return std::nullopt;
  auto record = sumdb::parse_lookup_response(*body);
  if (!record) return std::nullopt;
  return sumdb::go_sum_hash(record->text, request.module_path, request.version,
                            request.kind == protocol::endpoint::mod);
}

}  // namespace

verify_totals verify_cache(cache::cache_store& store, const verify_options& options,
                           const std::function<void(const std::string&)>& progress) {
  verify_totals totals;
  std::vector<std::pair<std::string, bool>> keys;  // key, metadata damaged
  auto listed =
      store.for_each_entry([&](std::string_view key, const cache::entry_meta&, bool damaged) {
        keys.emplace_back(std::string(key), damaged);
        return true;
      });
  if (!listed) {
    totals.corrupt += 1;
    totals.problems.push_back("(cache index): " + listed.error().message());
    return totals;
  }
  auto corrupt = [&](const std::string& key, const std::string& reason) {
    totals.corrupt += 1;
    totals.problems.push_back(key + ": " + reason);
    if (options.repair && store.remove(key)) totals.repaired += 1;
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& [key, damaged] = keys[i];
    if ((i + 1) % 1000 == 0 || i + 1 == keys.size()) {
      progress("checked " + std::to_string(i + 1) + " of " + std::to_string(keys.size()) +
               " entries");
    }
    if (damaged) {
      corrupt(key, "metadata cannot be decoded");
      continue;
    }
    auto reader = store.open(key);
    if (!reader || !*reader) {
      corrupt(key, reader ? "vanished while checking" : reader.error().message());
      continue;
    }
    auto& entry = **reader;
    const auto size = entry.meta().size;
    auto parsed = protocol::parse_module_request(key);
    auto* request = std::get_if<protocol::module_request>(&parsed);
    // Only a go.mod is hashed from memory (zips are hashed through the reader), so only it is
    // kept while reading; reading every byte runs each chunk's CRC check.
    const bool keep_body = request && request->kind == protocol::endpoint::mod;
    std::string body;
    bool readable = true;
    for (std::uint64_t offset = 0; offset < size;) {
      auto piece = entry.view(offset, 1 << 20);
      if (!piece || piece->empty()) {
        corrupt(key, piece ? "shorter than its metadata says" : piece.error().message());
        readable = false;
        break;
      }
      if (keep_body) body.append(*piece);
      offset += piece->size();
    }
    if (!readable) continue;
    totals.entries += 1;

    if (!request || entry.meta().kind == cache::entry_kind::not_found ||
        (request->kind != protocol::endpoint::zip && request->kind != protocol::endpoint::mod)) {
      continue;
    }
    const bool is_zip = request->kind == protocol::endpoint::zip;
    std::string actual;
    if (is_zip) {
      auto hash = sumdb::zip_h1_hash(size, [&entry](std::uint64_t offset, std::size_t length) {
        return entry.read(offset, length);
      });
      if (!hash) {
        corrupt(key, "cannot hash the zip: " + hash.error().message());
        continue;
      }
      actual = *hash;
    } else {
      actual = sumdb::go_mod_h1_hash(body);
    }
    std::optional<std::string> expected;
    for (const auto& database : options.sumdb_names) {
      expected = recorded_hash(store, database, *request);
      if (expected) break;
    }
    if (!expected) {
      totals.unvouched += 1;
      continue;
    }
    totals.hashed += 1;
    if (*expected != actual)
      corrupt(key, "h1 is " + actual + ", the checksum record says " + *expected);
  }
  return totals;
}

std::unique_ptr<cache::cache_store> open_cache_or_report(const std::string& cache_dir) {
  cache::rocksdb_options store_options;
  store_options.path = cache_dir;
  std::string why;
  auto opened = cache::open_rocksdb_store(store_options, &why);
  if (!opened) {
    std::fprintf(stderr, "gomodproxy: cache_dir: cannot open cache at %s: %s\n", cache_dir.c_str(),
                 why.empty() ? opened.error().message().c_str() : why.c_str());
    return nullptr;
  }
  return std::move(*opened);
}

int run_cache_command(std::vector<std::string> args) {
  if (args.empty() || args.front() != "verify") {
    std::fprintf(stderr,
                 "usage: gomodproxy cache verify [--repair] [--cache-dir DIR] [--config FILE] "
                 "[--sumdb ...]\n");
    return 2;
  }
  args.erase(args.begin());
  verify_options options;
  std::vector<std::string> settings_args;
  for (auto& arg : args) {
    if (arg == "--repair") {
      options.repair = true;
    } else {
      settings_args.push_back(std::move(arg));
    }
  }
  auto loaded = config::load_settings(settings_args, config::current_environment());
  if (auto* error = std::get_if<config::load_error>(&loaded)) {
    std::fprintf(stderr, "%s\n", error->message.c_str());
    return 2;
  }
  const auto& settings = std::get<config::settings>(loaded);
  for (const auto& database : settings.sumdbs) options.sumdb_names.push_back(database.name);

  auto store = open_cache_or_report(settings.cache_dir);
  if (!store) return 1;
  auto totals = verify_cache(
      *store, options, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  for (const auto& problem : totals.problems) std::printf("corrupt: %s\n", problem.c_str());
  std::printf(
      "%llu entries read back, %llu module files matched their checksum record, %llu had no "
      "record cached, %llu corrupt, %llu removed\n",
      static_cast<unsigned long long>(totals.entries),
      static_cast<unsigned long long>(totals.hashed),
      static_cast<unsigned long long>(totals.unvouched),
      static_cast<unsigned long long>(totals.corrupt),
      static_cast<unsigned long long>(totals.repaired));
  return totals.corrupt > totals.repaired ? 1 : 0;
}

}  // namespace gomodproxy::cache_admin
