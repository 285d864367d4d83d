#include "cache_admin/cache_verify.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include "cache_admin/inventory_command.hpp"
#include "cache_admin/standalone_resolver.hpp"
#include "config/settings.hpp"
#include "protocol/request.hpp"
#include "resolver/from_settings.hpp"
#include "resolver/resolver.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::cache_admin {
namespace {

// The hash the cached record of `database` gives for the request's zip or go.mod, or nullopt
// when no record is cached or it has no such line.
std::optional<std::string> recorded_hash(cache::cache_store& store, const std::string& database,
                                         const protocol::module_request& request) {
  const std::string key =
      "/sumdb/" + database + protocol::sumdb_lookup_path(request.module_path, request.version);
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
    const protocol::module_request* request = parsed ? &*parsed : nullptr;
    // Reading every byte runs each chunk's CRC check.
    bool readable = true;
    for (std::uint64_t offset = 0; offset < size;) {
      auto piece = entry.view(offset, 1 << 20);
      if (!piece || piece->empty()) {
        corrupt(key, piece ? "shorter than its metadata says" : piece.error().message());
        readable = false;
        break;
      }
      offset += piece->size();
    }
    if (!readable) continue;
    totals.entries += 1;

    if (!request || entry.meta().kind == cache::entry_kind::not_found ||
        (request->kind != protocol::endpoint::zip && request->kind != protocol::endpoint::mod)) {
      continue;
    }
    const bool is_zip = request->kind == protocol::endpoint::zip;
    auto hash = sumdb::module_file_h1_hash(
        is_zip, size,
        [&entry](std::uint64_t offset, std::size_t length) { return entry.read(offset, length); });
    if (!hash) {
      corrupt(key, "cannot hash it: " + hash.error().message());
      continue;
    }
    const std::string& actual = *hash;
    std::optional<std::string> expected;
    for (const auto& database : options.sumdb_names) {
      expected = recorded_hash(store, database, *request);
      if (expected) break;
    }
    if (!expected && options.ask_database) {
      totals.asked += 1;
      auto verdict = options.ask_database(request->module_path, request->version, !is_zip);
      if (verdict.hash) {
        totals.vouched_now += 1;
        expected = std::move(verdict.hash);
      } else {
        totals.unanswered.push_back(key + ": " + verdict.why);
      }
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

std::unique_ptr<cache::cache_store> open_cache_or_report(const std::string& cache_dir,
                                                         std::uint64_t max_bytes,
                                                         std::uint64_t memory_bytes) {
  cache::rocksdb_options store_options;
  store_options.path = cache_dir;
  store_options.max_bytes = max_bytes;
  store_options.memory_bytes = static_cast<std::size_t>(memory_bytes);
  auto opened = cache::open_rocksdb_store(store_options);
  if (!opened) {
    // The store's own reason names the directory already.
    std::fprintf(stderr, "gomodproxy: cache_dir: %s\n", opened.error().detail.c_str());
    return nullptr;
  }
  return std::move(*opened);
}

int run_cache_command(std::vector<std::string> args) {
  if (!args.empty() && (args.front() == "stats" || args.front() == "ls" || args.front() == "rm")) {
    const std::string verb = args.front();
    args.erase(args.begin());
    return run_inventory_command(verb, std::move(args));
  }
  if (args.empty() || args.front() != "verify") {
    std::fprintf(stderr,
                 "usage: gomodproxy cache verify [--repair] [--online] [--cache-dir DIR] "
                 "[--config FILE] [--sumdb ...]\n"
                 "       gomodproxy cache stats | ls [GLOB] | rm MODULE[@VERSION] "
                 "[--cache-dir DIR] [--config FILE]\n"
                 "       gomodproxy cache export --out FILE.tar (--go-sum FILE... | --modules "
                 "FILE | --all) | import FILE.tar [--cache-dir DIR] [--config FILE]\n");
    return 2;
  }
  args.erase(args.begin());
  verify_options options;
  bool online = false;
  std::vector<std::string> settings_args;
  for (auto& arg : args) {
    if (arg == "--repair") {
      options.repair = true;
    } else if (arg == "--online") {
      online = true;
    } else {
      settings_args.push_back(std::move(arg));
    }
  }
  auto loaded = config::load_settings(settings_args, config::current_environment());
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().detail.c_str());
    return 2;
  }
  const auto& settings = *loaded;
  for (const auto& database : settings.sumdbs) options.sumdb_names.push_back(database.name);
  std::optional<resolver::resolver_options> resolver_options;
  if (online) {
    auto loaded = resolver::options_from_settings(settings);
    if (!loaded) {
      std::fprintf(stderr, "gomodproxy: %s\n", loaded.error().detail.c_str());
      return 2;
    }
    resolver_options = std::move(*loaded);
    if (resolver_options->sumdbs.empty()) {
      std::fprintf(stderr, "gomodproxy: --online needs a checksum database (sumdb)\n");
      return 2;
    }
    // The report is on stdout; what the resolver logs (a misbehaving database) goes with the
    // progress lines.
    auto logger = spdlog::stderr_logger_mt("gomodproxy-cache");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
  }

  auto store = open_cache_or_report(settings.cache_dir, 0, settings.cache_memory);
  if (!store) return 1;
  std::optional<standalone_resolver> checker;
  if (resolver_options) {
    upstream::client_options client_options;
    client_options.ca_file = settings.ca_file;
    checker.emplace(*resolver_options, client_options, *store);
    options.ask_database = [&checker](const std::string& module_path, const std::string& version,
                                      bool go_mod) {
      return checker->database_hash(module_path, version, go_mod);
    };
  }
  auto totals = verify_cache(
      *store, options, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  checker.reset();
  for (const auto& problem : totals.problems) std::printf("corrupt: %s\n", problem.c_str());
  for (const auto& line : totals.unanswered) std::printf("not vouched for: %s\n", line.c_str());
  std::printf(
      "%llu entries read back, %llu module files matched their checksum record, %llu had no "
      "record cached, %llu corrupt, %llu removed\n",
      static_cast<unsigned long long>(totals.entries),
      static_cast<unsigned long long>(totals.hashed),
      static_cast<unsigned long long>(totals.unvouched) + totals.vouched_now,
      static_cast<unsigned long long>(totals.corrupt),
      static_cast<unsigned long long>(totals.repaired));
  if (online) {
    std::printf("asked the checksum database about %llu module files: %llu vouched for, %llu not\n",
                static_cast<unsigned long long>(totals.asked),
                static_cast<unsigned long long>(totals.vouched_now),
                static_cast<unsigned long long>(totals.asked - totals.vouched_now));
  }
  return totals.corrupt > totals.repaired ? 1 : 0;
}

}  // namespace gomodproxy::cache_admin
