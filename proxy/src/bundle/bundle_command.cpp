#include "bundle/bundle_command.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include "bundle/bundle_export.hpp"
#include "bundle/bundle_import.hpp"
#include "bundle/import_endpoint.hpp"
#include "cache_admin/admin_client.hpp"
#include "cache_admin/inventory_command.hpp"
#include "cache_admin/standalone_resolver.hpp"
#include "common/read_file.hpp"
#include "config/settings.hpp"
#include "prefetch/pin_files.hpp"
#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"
#include "resolver/from_settings.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::bundle {
namespace {

int usage_error(const std::string& message) {
  std::fprintf(stderr, "gomodproxy: %s\n", message.c_str());
  std::fprintf(stderr,
               "usage: gomodproxy cache export --out FILE.tar (--go-sum FILE... | --modules FILE "
               "| --all) [--cache-dir DIR] [--config FILE] [--sumdb ...]\n"
               "       gomodproxy cache import FILE.tar [--cache-dir DIR] [--config FILE] "
               "[--sumdb ...]\n"
               "       (a running proxy: cache import --proxy URL --admin-token TOKEN|@FILE "
               "FILE.tar)\n");
  return 2;
}

// "module@version" lines; '#' and '//' start comments, blank lines are skipped.
bool parse_modules_file(const std::string& text, std::vector<wanted_version>& wanted,
                        std::vector<std::string>& problems) {
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    for (const char* comment : {"#", "//"}) {
      if (auto at = line.find(comment); at != std::string::npos) line.erase(at);
    }
    auto trimmed = std::string(protocol::trim_space(line));
    if (trimmed.empty()) continue;
    const auto at = trimmed.rfind('@');
    std::string module_path = at == std::string::npos ? "" : trimmed.substr(0, at);
    std::string version = at == std::string::npos ? "" : trimmed.substr(at + 1);
    if (module_path.empty() || !protocol::check_path(module_path) ||
        protocol::canonical_version(version) != version ||
        !protocol::check_path_version(module_path, version)) {
      problems.push_back("line " + std::to_string(number) + ": not module@version: " + trimmed);
      continue;
    }
    wanted.push_back({std::move(module_path), std::move(version), false});
  }
  return problems.empty();
}

struct parsed_args {
  std::vector<std::string> operands;
  std::vector<std::string> settings_args;
  std::vector<std::string> go_sums;
  std::string modules_file;
  std::string out;
  std::string proxy_url;
  bool all = false;
};

// Fails with errc::invalid_request and the reason when a flag that takes a value has none.
[[nodiscard]] outcome_of<void> split_args(std::vector<std::string>& args, parsed_args& parsed) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      if (arg.starts_with(std::string(flag) + "=")) return arg.substr(flag.size() + 1);
      if (arg == flag && i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    auto takes = [&](std::string_view flag) {
      return arg == flag || arg.starts_with(std::string(flag) + "=");
    };
    if (takes("--out") || takes("--go-sum") || takes("--modules") || takes("--proxy")) {
      const std::string flag = arg.substr(0, arg.find('='));
      auto given = value(flag);
      if (!given || given->empty()) return invalid_request(flag + " needs a value");
      if (flag == "--out") parsed.out = *given;
      if (flag == "--go-sum") parsed.go_sums.push_back(*given);
      if (flag == "--modules") parsed.modules_file = *given;
      if (flag == "--proxy") parsed.proxy_url = *given;
    } else if (arg == "--all") {
      parsed.all = true;
    } else if (arg.starts_with("-")) {
      parsed.settings_args.push_back(arg);
      if (arg.find('=') == std::string::npos && i + 1 < args.size()) {
        parsed.settings_args.push_back(args[++i]);
      }
    } else {
      parsed.operands.push_back(arg);
    }
  }
  return {};
}

int run_export(parsed_args& parsed, const config::settings& settings,
               const resolver::resolver_options& resolver_options) {
  const int selections = (parsed.go_sums.empty() ? 0 : 1) + (parsed.modules_file.empty() ? 0 : 1) +
                         (parsed.all ? 1 : 0);
  if (parsed.out.empty()) return usage_error("cache export needs --out FILE.tar");
  if (selections != 1) return usage_error("cache export needs one of --go-sum, --modules, --all");
  if (!parsed.operands.empty()) return usage_error("cache export takes no operand");
  export_request request;
  request.all = parsed.all;
  std::vector<std::string> problems;
  for (const auto& path : parsed.go_sums) {
    auto text = read_file(path, std::numeric_limits<std::size_t>::max());
    if (!text) return usage_error("cannot read " + path);
    auto pins = prefetch::parse_go_sum(*text);
    for (const auto& problem : pins.problems) problems.push_back(path + ": " + problem);
    for (auto& pin : pins.pins) {
      request.wanted.push_back({pin.module_path, pin.version, pin.go_mod_only});
    }
  }
  if (!parsed.modules_file.empty()) {
    auto text = read_file(parsed.modules_file, std::numeric_limits<std::size_t>::max());
    if (!text) return usage_error("cannot read " + parsed.modules_file);
    std::vector<std::string> bad;
    if (!parse_modules_file(*text, request.wanted, bad)) {
      for (const auto& line : bad) problems.push_back(parsed.modules_file + ": " + line);
    }
  }
  if (!problems.empty()) {
    for (const auto& problem : problems) std::fprintf(stderr, "gomodproxy: %s\n", problem.c_str());
    return 2;
  }
  request.sumdbs = resolver_options.sumdbs;
  request.exempt = sumdb_exemption(resolver_options);

  auto store = cache_admin::open_stopped_cache(settings.cache_dir);
  if (!store) return 1;
  std::optional<cache_admin::standalone_resolver> fetcher;
  if (!settings.offline && !resolver_options.sumdbs.empty()) {
    upstream::client_options client_options;
    client_options.ca_file = settings.ca_file;
    fetcher.emplace(resolver_options, client_options, *store);
    request.fetch = [&fetcher](const std::string& key) { return fetcher->get(key); };
  }
  export_summary summary;
  const bool done = export_bundle(*store, request, parsed.out, summary, problems);
  fetcher.reset();
  if (!done) {
    for (const auto& problem : problems) std::fprintf(stderr, "gomodproxy: %s\n", problem.c_str());
    std::fprintf(stderr, "gomodproxy: cache export: nothing written to %s\n", parsed.out.c_str());
    return 1;
  }
  std::printf("exported %llu module versions (%llu files) to %s, %llu bytes\n",
              static_cast<unsigned long long>(summary.versions),
              static_cast<unsigned long long>(summary.files), parsed.out.c_str(),
              static_cast<unsigned long long>(summary.bytes));
  for (const auto& database : summary.databases) {
    std::printf(
        "checksum database %s: tree of %lld records, %llu records, %llu tiles (%llu "
        "fetched from the database), consistency with %llu older trees\n",
        database.name.c_str(), static_cast<long long>(database.tree_size),
        static_cast<unsigned long long>(database.records),
        static_cast<unsigned long long>(database.tiles),
        static_cast<unsigned long long>(database.tiles_fetched),
        static_cast<unsigned long long>(database.older_trees));
  }
  for (const auto& line : summary.exempt) {
    std::printf("without checksum records: %s\n", line.c_str());
  }
  return 0;
}

int run_import(parsed_args& parsed, const config::settings& settings,
               const resolver::resolver_options& resolver_options);

}  // namespace

int run_bundle_command(const std::string& verb, std::vector<std::string> args) {
  parsed_args parsed;
  if (auto split = split_args(args, parsed); !split) return usage_error(split.error().detail);
  auto loaded = config::load_settings(parsed.settings_args, config::current_environment());
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().detail.c_str());
    return 2;
  }
  const auto& settings = *loaded;
  auto resolver_options = resolver::options_from_settings(settings);
  if (!resolver_options) {
    std::fprintf(stderr, "gomodproxy: %s\n", resolver_options.error().detail.c_str());
    return 2;
  }
  // What the resolver logs while fetching a tile goes with the other lines on stderr.
  auto logger = spdlog::stderr_logger_mt("gomodproxy-bundle");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  if (verb == "export") return run_export(parsed, settings, *resolver_options);
  return run_import(parsed, settings, *resolver_options);
}

namespace {

int run_import(parsed_args& parsed, const config::settings& settings,
               const resolver::resolver_options& resolver_options) {
  if (!parsed.out.empty() || !parsed.go_sums.empty() || !parsed.modules_file.empty() ||
      parsed.all) {
    return usage_error("cache import takes none of --out, --go-sum, --modules, --all");
  }
  if (parsed.operands.size() != 1) return usage_error("cache import takes one FILE.tar");
  const std::string& tar_path = parsed.operands.front();
  if (!parsed.proxy_url.empty()) {
    if (settings.admin_token.empty()) {
      return usage_error("--proxy needs the admin token (--admin-token TOKEN or @FILE)");
    }
    const auto token = cache_admin::admin_token_from_setting(settings.admin_token);
    if (!token) {
      std::fprintf(stderr, "gomodproxy: admin_token: %s\n", token.error().detail.c_str());
      return 2;
    }
    std::error_code sized;
    const auto size = std::filesystem::file_size(tar_path, sized);
    if (sized) return usage_error("cannot read " + tar_path + ": " + sized.message());
    if (size > max_import_body_bytes) {
      std::fprintf(stderr,
                   "gomodproxy: %s is larger than a running proxy takes (%llu bytes); import it "
                   "into the stopped proxy's cache directory instead\n",
                   tar_path.c_str(), static_cast<unsigned long long>(max_import_body_bytes));
      return 1;
    }
    auto reply = cache_admin::admin_upload(parsed.proxy_url, "/admin/cache/import", *token,
                                           settings.ca_file, tar_path);
    if (reply.status == 200) {
      std::printf("%s", reply.body.c_str());
      return 0;
    }
    const std::string first_line = reply.body.substr(0, reply.body.find('\n'));
    if (reply.status == 0) {
      std::fprintf(stderr, "gomodproxy: %s\n", first_line.c_str());
    } else {
      // Without an admin token the proxy has no such endpoint, and the body meets a 400 or 404.
      const bool missing = reply.status == 400 || reply.status == 404;
      std::fprintf(stderr, "gomodproxy: %s/admin/cache/import: %d: %s%s\n",
                   parsed.proxy_url.c_str(), reply.status, first_line.c_str(),
                   missing ? " (the proxy serves /admin/cache/import only when started with "
                             "--admin-token)"
                           : "");
    }
    return 1;
  }
  // A site's proxy may never have run: its cache starts with the import.
  std::error_code made;
  std::filesystem::create_directories(settings.cache_dir, made);
  auto store = cache_admin::open_stopped_cache(settings.cache_dir);
  if (!store) return 1;
  import_options options;
  options.sumdbs = resolver_options.sumdbs;
  options.exempt = sumdb_exemption(resolver_options);
  auto imported = import_bundle(*store, tar_path, options);
  if (!imported) {
    std::fprintf(stderr, "gomodproxy: cache import: refused %s: %s\n", tar_path.c_str(),
                 imported.error().detail.c_str());
    return 1;
  }
  std::printf("%s", format_import_summary(*imported).c_str());
  return 0;
}

}  // namespace

}  // namespace gomodproxy::bundle
