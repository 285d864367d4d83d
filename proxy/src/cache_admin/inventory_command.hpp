// `gomodproxy cache stats | ls [GLOB] | rm MODULE[@VERSION]` on a stopped proxy's cache directory,
// or with --proxy URL through a running proxy's /admin/cache/ endpoints (admin token required).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cache/cache_store.hpp"

namespace gomodproxy::cache_admin {

/// `verb` is stats, ls or rm; `args` follow it. Exit status: 0 done, 1 the cache cannot be
/// opened or read (or rm found nothing to remove), 2 usage errors.
/// The cache of a stopped proxy at `cache_dir`, or null after one line on stderr saying why
/// not (missing directory, held by a running proxy: then naming --proxy, unreadable).
std::unique_ptr<cache::cache_store> open_stopped_cache(const std::string& cache_dir);

int run_inventory_command(const std::string& verb, std::vector<std::string> args);

}  // namespace gomodproxy::cache_admin
