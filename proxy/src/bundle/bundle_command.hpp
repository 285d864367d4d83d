// `gomodproxy cache export` and `gomodproxy cache import`: bundles for air-gapped sites, on a
// stopped proxy's cache directory (import also through a running proxy's admin endpoint).
#pragma once

#include <string>
#include <vector>

namespace gomodproxy::bundle {

/// `verb` is export or import; `args` follow it. Exit status: 0 done, 1 the bundle was not
/// written or was refused (with the reasons on stderr), 2 usage errors.
int run_bundle_command(const std::string& verb, std::vector<std::string> args);

}  // namespace gomodproxy::bundle
