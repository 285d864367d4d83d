// `gomodproxy prefetch`: warms a running proxy's cache with every module version that go.sum,
// go.mod and go.work files pin.
#pragma once

#include <string>
#include <vector>

namespace gomodproxy::prefetch {

/// Runs `gomodproxy prefetch` with the arguments after "prefetch". Progress, failures and the
/// summary go to stderr: on a terminal one updating progress line, otherwise one line per
/// failure and a summary line. Returns 0 when every request succeeded, 1 when any failed (each
/// listed with the proxy's reason), when a file line pins nothing usable or the proxy cannot be
/// reached, and 2 for a usage error (bad flag or value, missing argument, unreadable CA or token
/// file) after one line on stderr.
int run_prefetch_command(const std::vector<std::string>& args);

/// The --help text.
std::string prefetch_usage_text();

}  // namespace gomodproxy::prefetch
