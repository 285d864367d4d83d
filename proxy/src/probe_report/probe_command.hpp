// `gomodproxy probe`: a one-shot comparison of mirrors without running the server.
#pragma once

#include <string>
#include <vector>

namespace gomodproxy::probe_report {

/// Runs `gomodproxy probe` with the arguments after "probe": the report goes to stdout, progress
/// and errors to stderr. Returns the exit status: 0 when the probe ran (whatever the upstreams
/// answered), 2 for a usage error (bad flag or value, unreadable or invalid modules file,
/// unreadable CA file) after one line on stderr, 1 for anything else that stopped it (such as a
/// CA file that holds no certificate).
int run_probe_command(const std::vector<std::string>& args);

}  // namespace gomodproxy::probe_report
