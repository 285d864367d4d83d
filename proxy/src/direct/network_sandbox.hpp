// The network sandbox of the go command for public module paths: a network namespace of its own
// where only loopback exists and the one listener on it relays to the connect guard. Go's net/http
// never uses a proxy for `localhost` or loopback IP literals, so without it a redirect or a
// go-import `mod` URL naming https://127.0.0.1:PORT would reach the server's loopback unchecked.
#pragma once

#include <string>
#include <vector>

#include "common/failure.hpp"
#include "direct/go_process.hpp"

namespace gomodproxy::direct {

/// The hidden subcommand's name: `gomodproxy direct-sandbox --guard URL -- PROGRAM ARGS...`.
inline constexpr const char* sandbox_command = "direct-sandbox";

/// Runs the hidden subcommand (`args` after its name). Enters a new network namespace (a new user
/// namespace too unless it may do without), brings `lo` up, listens on 127.0.0.1:0 there, runs
/// PROGRAM in it with HTTPS_PROXY/https_proxy/HTTP_PROXY/http_proxy pointing at that listener, and
/// relays each connection to the guard at URL (http://127.0.0.1:PORT, in the namespace this
/// command started in) until PROGRAM exits. Returns PROGRAM's exit status (128 + the signal when a
/// signal ended it), 125 when the sandbox could not be made, 127 when PROGRAM could not start, 2
/// for bad arguments; says why on stderr.
int run_sandbox_command(const std::vector<std::string>& args);

/// Whether this process can sandbox: runs the subcommand once with a harmless program and waits
/// for it. Success when it works, else why not (one line): the errno of a pipe or spawn that
/// failed, not_supported (generic category) when the subcommand could not make the sandbox.
/// Blocks the calling thread: start-up only.
[[nodiscard]] outcome_of<void> check_sandbox();

/// `spec` changed to run its program inside the sandbox relaying to `guard_url`: the program is
/// this binary (/proc/self/exe) and its arguments the subcommand's. Unchanged when the program is
/// not found on the PATH of `spec.environment`, so run_process reports that as before.
process_spec sandboxed(process_spec spec, const std::string& guard_url);

}  // namespace gomodproxy::direct
