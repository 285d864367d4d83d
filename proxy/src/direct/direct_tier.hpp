// The `direct` tier: answers module requests by running the go command the server has
// (`go list -m`, `go mod download`) against version control, in a module cache of its own,
// with the number of processes bounded and requests for one repository taken one at a time.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/failure.hpp"
#include "upstream/tier.hpp"

namespace gomodproxy::direct {

struct direct_options {
  /// A path, or a name looked up on the server's PATH at each use. Default: "go"
  std::string go_binary = "go";
  /// Holds mod/ (GOMODCACHE: downloads and version-control clones, kept), gopath/, gocache/
  /// and scratch/ (the empty working directory). Default: none; main uses <cache_dir>/direct.
  std::filesystem::path root;
  std::size_t concurrency = 4;                 ///< go processes at once. Default: 4
  std::vector<std::string> private_patterns;   ///< --private (GOPRIVATE). Default: none
  std::vector<std::string> allow_patterns;     ///< --direct-allow module-path globs. Default: none
  std::vector<std::string> no_sumdb_patterns;  ///< --no-sumdb. Default: none
  /// The connect guard's URL; public module paths are refused while it is empty. Default: empty
  std::string guard_url;
  /// Success when the host of a public module path may be fetched, else why not (as
  /// check_host() in address_policy.hpp: its code decides not found, timeout or error).
  /// Default: none, which refuses every public path.
  std::function<boost::asio::awaitable<outcome_of<void>>(
      std::string host, std::chrono::steady_clock::time_point deadline)>
      check_host;
  /// Run the go command of public paths in the network sandbox (network_sandbox.hpp), so that
  /// even its own connections to loopback go through the guard. Default: false
  bool network_sandbox = false;
  /// The environment credentials and proxies are taken from. Default: this process's.
  std::optional<std::map<std::string, std::string>> server_environment;
};

class direct_tier final : public upstream::tier {
 public:
  /// Creates the directories under `options.root` and reads the .netrc the go command will use
  /// (its passwords are scrubbed from every reason). Throws std::runtime_error when a
  /// directory cannot be created or `options.root` is inside a Go module (a go.mod above it):
  /// start-up failures. `executor` runs the processes' I/O.
  direct_tier(boost::asio::any_io_executor executor, direct_options options);
  ~direct_tier() override;
  direct_tier(const direct_tier&) = delete;
  direct_tier& operator=(const direct_tier&) = delete;

  /// list, latest, query, info, mod and zip requests; checksum-database requests are errors.
  /// A public path whose host is refused, and a go command that reports the module or version
  /// missing, give outcome::not_found; a go command that could not start, or that failed on the
  /// network, outcome::error; limits.total passing (waiting for a process slot included),
  /// outcome::timeout. The reason is one line without credentials. Thread-safe.
  boost::asio::awaitable<upstream::fetch_result> fetch(const protocol::module_request& request,
                                                       upstream::body_sink sink,
                                                       upstream::deadlines limits) override;

  /// go processes started so far.
  [[nodiscard]] std::uint64_t processes_started() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// The repository a module path lives in, as far as the path tells: the path without a
/// trailing major-version element ("/v2"), so all majors of one repository share a key.
std::string repository_key(const std::string& module_path);

}  // namespace gomodproxy::direct
