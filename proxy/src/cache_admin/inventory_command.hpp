// `gomodproxy cache stats | ls [GLOB] | rm MODULE[@VERSION]` on a stopped proxy's cache directory,
// or with --proxy URL through a running proxy's /admin/cache/ endpoints (admin token required).
#pragma once

#include <string>
#include <vector>

namespace gomodproxy::cache_admin {

/// `verb` is stats, ls or rm; `args` follow it. Exit status: 0 done, 1 the cache cannot be
/// opened or read (or rm found nothing to remove), 2 usage errors.
int run_inventory_command(const std::string& verb, std::vector<std::string> args);

}  // namespace gomodproxy::cache_admin
