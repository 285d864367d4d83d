#include "cache_admin/inventory_command.hpp"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <variant>

#include "cache_admin/admin_client.hpp"
#include "cache_admin/cache_inventory.hpp"
#include "config/settings.hpp"
#include "protocol/request.hpp"

namespace gomodproxy::cache_admin {
namespace {

int usage_error(const std::string& message) {
  std::fprintf(stderr, "gomodproxy: %s\n", message.c_str());
  std::fprintf(
      stderr,
      "usage: gomodproxy cache stats | ls [GLOB] | rm MODULE[@VERSION]  "
      "[--cache-dir DIR] [--config FILE]\n"
      "       (a running proxy: --proxy URL --admin-token TOKEN|@FILE [--ca-file FILE])\n");
  return 2;
}

}  // namespace

// RocksDB names its LOCK file when another process holds the directory; the admin verbs say
// what to do about it instead.
std::unique_ptr<cache::cache_store> open_stopped_cache(const std::string& cache_dir) {
  // Opening creates a missing directory, which for a mistyped --cache-dir would report an
  // empty cache instead of the mistake.
  std::error_code missing;
  if (!std::filesystem::is_directory(cache_dir, missing)) {
    std::fprintf(stderr, "gomodproxy: cache_dir: %s is not a cache directory (it does not exist)\n",
                 cache_dir.c_str());
    return nullptr;
  }
  cache::rocksdb_options options;
  options.path = cache_dir;
  auto opened = cache::open_rocksdb_store(options);
  if (opened) return std::move(*opened);
  const std::string& why = opened.error().detail;
  if (why.find("lock") != std::string::npos || why.find("LOCK") != std::string::npos) {
    std::fprintf(stderr,
                 "gomodproxy: cache_dir: %s is in use by a running gomodproxy; stop it, or ask "
                 "it with --proxy URL --admin-token TOKEN\n",
                 cache_dir.c_str());
  } else {
    std::fprintf(stderr, "gomodproxy: cache_dir: %s\n", why.c_str());
  }
  return nullptr;
}

namespace {

// The verb through a running proxy's admin endpoint; prints what `cache VERB` prints locally.
int ask_running_proxy(const std::string& verb, const std::vector<std::string>& operands,
                      const std::string& proxy_url, const config::settings& settings) {
  if (settings.admin_token.empty()) {
    return usage_error("--proxy needs the admin token (--admin-token TOKEN or @FILE)");
  }
  const auto token = admin_token_from_setting(settings.admin_token);
  if (!token) {
    std::fprintf(stderr, "gomodproxy: admin_token: %s\n", token.error().detail.c_str());
    return 2;
  }
  std::string method = "GET";
  std::string path = "/admin/cache/stats";
  if (verb == "ls") {
    path = "/admin/cache/ls";
    if (!operands.empty()) path += "?glob=" + protocol::percent_encode(operands.front(), "/@*");
  } else if (verb == "rm") {
    method = "POST";
    path = "/admin/cache/rm?module=" + protocol::percent_encode(operands.front(), "/@*");
  }
  auto reply = admin_request(proxy_url, method, path, *token, settings.ca_file);
  if (reply.status == 200 || (verb == "rm" && reply.status == 404)) {
    std::printf("%s", reply.body.c_str());
    return reply.status == 200 ? 0 : 1;
  }
  const std::string first_line = reply.body.substr(0, reply.body.find('\n'));
  if (reply.status == 0) {
    std::fprintf(stderr, "gomodproxy: %s\n", first_line.c_str());
  } else {
    std::fprintf(stderr, "gomodproxy: %s%s: %d: %s\n", proxy_url.c_str(), path.c_str(),
                 reply.status, first_line.c_str());
  }
  return 1;
}

}  // namespace

int run_inventory_command(const std::string& verb, std::vector<std::string> args) {
  std::vector<std::string> operands;
  std::vector<std::string> settings_args;
  std::string proxy_url;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--proxy" || args[i].starts_with("--proxy=")) {
      if (args[i] == "--proxy" && i + 1 == args.size()) return usage_error("--proxy needs a URL");
      proxy_url = args[i] == "--proxy" ? args[++i] : args[i].substr(8);
    } else if (args[i].starts_with("-")) {
      settings_args.push_back(args[i]);
      // Settings flags take their value as the next argument unless written --flag=value.
      if (args[i].find('=') == std::string::npos && i + 1 < args.size()) {
        settings_args.push_back(args[++i]);
      }
    } else {
      operands.push_back(args[i]);
    }
  }
  if (verb == "stats" && !operands.empty()) return usage_error("cache stats takes no operand");
  if (verb == "ls" && operands.size() > 1) return usage_error("cache ls takes at most one GLOB");
  if (verb == "rm" && operands.size() != 1)
    return usage_error("cache rm takes one MODULE[@VERSION]");
  std::optional<module_selector> selector;
  if (verb == "rm") {
    selector = parse_module_selector(operands.front());
    if (!selector) return usage_error("not a module path or module@version: " + operands.front());
  }

  auto loaded = config::load_settings(settings_args, config::current_environment());
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().detail.c_str());
    return 2;
  }
  const auto& settings = *loaded;
  if (!proxy_url.empty()) return ask_running_proxy(verb, operands, proxy_url, settings);
  auto store = open_stopped_cache(settings.cache_dir);
  if (!store) return 1;

  if (verb == "stats") {
    auto summary = summarize_cache(*store);
    if (!summary) {
      std::fprintf(stderr, "gomodproxy: cannot read the cache: %s\n",
                   summary.error().message().c_str());
      return 1;
    }
    std::printf("%s", format_summary(*summary).c_str());
    return 0;
  }
  if (verb == "ls") {
    auto entries = list_modules(*store, operands.empty() ? "" : operands.front());
    if (!entries) {
      std::fprintf(stderr, "gomodproxy: cannot read the cache: %s\n",
                   entries.error().message().c_str());
      return 1;
    }
    std::printf("%s", format_module_entries(*entries).c_str());
    return 0;
  }
  auto removed = remove_module(
      *store, selector->module_path,
      selector->version ? std::optional<std::string_view>(*selector->version) : std::nullopt);
  if (!removed) {
    std::fprintf(stderr, "gomodproxy: cannot remove from the cache: %s\n",
                 removed.error().message().c_str());
    return 1;
  }
  for (const auto& key : *removed) std::printf("removed %s\n", key.c_str());
  std::printf("%zu entries removed\n", removed->size());
  // Nothing cached for it is not an error for a cleanup, but a typo should be visible.
  return removed->empty() ? 1 : 0;
}

}  // namespace gomodproxy::cache_admin
