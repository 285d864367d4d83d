// The settings schema with defaults, and the loader: built-in defaults < TOML file (--config) <
// GOMODPROXY_* environment < command-line flags. Bad input fails with a message naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/failure.hpp"
#include "config/known_sumdb_key.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::config {

struct settings {
  std::string listen = "127.0.0.1:8081";  ///< HOST:PORT; port 0 picks a free port. Key: listen
  std::string cache_dir = "./var/cache";  ///< Key: cache_dir
  /// Most bytes the cache directory may take on disk; past it the least recently used entries
  /// are evicted down to 90 %. 0: no cap. Key: cache_max_bytes
  std::uint64_t cache_max_bytes = 0;
  /// Most memory the cache's block cache and write buffers take together; large bodies never
  /// pass through it. At least 1 MiB. Key: cache_memory
  std::uint64_t cache_memory = 16u << 20;
  std::string upstreams_text = "https://goproxy.cn|https://goproxy.io|direct";  ///< Key: upstreams
  std::vector<upstream::tier_spec> upstreams;          ///< parsed from upstreams_text
  std::string private_text;                            ///< GOPRIVATE globs. Key: private
  std::vector<std::string> private_patterns;           ///< parsed from private_text
  std::string private_upstreams_text = "direct";       ///< Key: private_upstreams
  std::vector<upstream::tier_spec> private_upstreams;  ///< parsed
  /// Checksum databases passed through at /sumdb/NAME/: space-separated NAME=LIST entries, LIST
  /// in upstream syntax (URLs only). Key: sumdb
  /// Mirrors first, where sum.golang.org itself is often unreachable. A mirror can delay but not
  /// mislead: lookups and tree heads must verify with the key, and records are proven in the log
  /// (by go, and by the proxy's own verification).
  std::string sumdb_text =
      "sum.golang.org=https://goproxy.cn/sumdb/sum.golang.org|"
      "https://goproxy.io/sumdb/sum.golang.org|https://sum.golang.org";
  /// Verifier keys of those databases, space-separated; each names its database. Key: sumdb_key
  /// Default: the key of sum.golang.org the go command carries (config/sum.golang.org.key).
  std::string sumdb_key_text{sum_golang_org_key()};
  struct sumdb_entry {
    std::string name;
    std::vector<upstream::tier_spec> tiers;
    std::string key;  ///< the verifier key whose name is `name`
  };
  std::vector<sumdb_entry> sumdbs;  ///< parsed from sumdb_text and sumdb_key_text
  /// "sumdb": every public .mod and .zip is checked against the first checksum database before
  /// it is cached or served; "off": not. Key: verify
  std::string verify = "sumdb";
  std::string no_sumdb_text;  ///< GONOSUMDB globs: public but not in it. Key: no_sumdb
  std::vector<std::string> no_sumdb_patterns;  ///< parsed
  std::chrono::seconds list_ttl{60};           ///< Key: list_ttl ("60s", "2m", "1h", or seconds)
  std::chrono::seconds negative_ttl{30};       ///< Key: negative_ttl
  std::string log_level = "info";              ///< trace|debug|info|warn|error|off. Key: log_level
  std::string access_log = "stderr";           ///< "stderr", "off" or a file path. Key: access_log
  int io_threads = 0;                          ///< 0 = hardware concurrency. Key: io_threads
  /// Threads for upstream sockets, tier walks and the cache writes of fills. Key: fill_threads
  int fill_threads = 2;
  /// Threads for zip checks and h1 hashing, at a lower priority; 0 = hardware concurrency.
  /// Key: check_threads
  int check_threads = 0;
  /// Threads reading large cache entries for streaming; 0 = hardware concurrency, at least 2.
  /// Key: read_threads
  int read_threads = 0;
  std::chrono::milliseconds connect_timeout{5000};      ///< per tier. Key: connect_timeout
  std::chrono::milliseconds first_byte_timeout{10000};  ///< per tier. Key: first_byte_timeout
  std::chrono::milliseconds fill_timeout{300000};       ///< whole upstream fill. Key: fill_timeout
  std::chrono::milliseconds request_timeout{
      30000};  ///< client read of request headers. Key: request_timeout
  std::chrono::milliseconds idle_timeout{60000};  ///< keep-alive idle. Key: idle_timeout
  std::chrono::milliseconds write_timeout{
      60000};  ///< one write to a client that stopped reading. Key: write_timeout
  std::chrono::milliseconds drain_timeout{
      30000};  ///< graceful drain on SIGTERM. Key: drain_timeout
  std::chrono::milliseconds drain_grace{
      1000};  ///< /readyz fails this long before the listener closes. Key: drain_grace
  std::uint32_t max_header_bytes = 16384;  ///< Key: max_header_bytes
  std::uint32_t max_connections = 10000;   ///< Key: max_connections
  std::string tls_cert;  ///< PEM chain; with tls_key the listener speaks TLS. Key: tls_cert
  std::string tls_key;   ///< PEM private key of tls_cert. Key: tls_key
  bool all_failed_502 =
      false;             ///< answer 502 (not 404) when every tier failed. Key: all_failed_502
  bool offline = false;  ///< answer from the cache only, never ask a tier. Key: offline
  std::string ca_file;   ///< extra CA bundle for upstream TLS. Key: ca_file
  std::chrono::milliseconds probe_interval{
      30000};  ///< active probe period; 0 = off. Key: probe_interval
  std::string probe_modules_text = "golang.org/x/mod";  ///< comma-separated. Key: probe_modules
  std::vector<std::string> probe_modules;               ///< parsed: public tiers' probe modules
  std::string private_probe_modules_text;          ///< comma-separated. Key: private_probe_modules
  std::vector<std::string> private_probe_modules;  ///< parsed; empty = private tiers unprobed
  int breaker_failures =
      3;  ///< consecutive failures that open a tier's breaker; 0 = never. Key: breaker_failures
  std::chrono::milliseconds breaker_retry_after{
      30000};  ///< open tier's trial request after. Key: breaker_retry_after
  /// "auto": ask the next tier too once a tier has not started answering in its stall limit;
  /// a duration: after that long; "0s": never. Key: hedge_after
  std::string hedge_after_text = "auto";
  std::optional<std::chrono::milliseconds> hedge_after;  ///< parsed; nullopt = auto
  /// A tier's stall limit is twice its recent time to first byte, at least stall_min (also the
  /// limit of a tier not yet heard from) and at most stall_max. A request that waits that long
  /// for headers is stalled: hedged, counted against the tier, and the tier probed at once with
  /// that limit as the probe's deadline. Keys: stall_min, stall_max
  std::chrono::milliseconds stall_min{1000};
  std::chrono::milliseconds stall_max{8000};
  /// The go command `direct` runs: a path, or a name looked up on PATH when it runs (a missing
  /// go is not a start-up error: direct then answers "cannot run go"). Key: go_binary
  std::string go_binary = "go";
  int direct_concurrency = 4;  ///< go processes `direct` runs at once. Key: direct_concurrency
  /// Module-path globs (GOPRIVATE syntax) that `direct` may fetch from private and loopback
  /// addresses although they are public paths (not in `private`). Key: direct_allow
  std::string direct_allow_text;
  std::vector<std::string> direct_allow_patterns;  ///< parsed from direct_allow_text
  /// Client tokens, one per line (TOKEN or NAME:TOKEN); empty: client paths are open. Reread
  /// on SIGHUP. Key: auth_file
  std::string auth_file;
  /// Token for /metrics, /status and /status.json (and every other path), or @FILE to read it
  /// from FILE's first line; empty: those paths need a client token when auth_file is set, else
  /// none. Key: admin_token
  std::string admin_token;
};

/// Loads settings from `args` (the words after "serve", e.g. {"--listen", "127.0.0.1:0"} or
/// {"--listen=127.0.0.1:0"}), the GOMODPROXY_* variables in `environment`, and the TOML file
/// named by --config / GOMODPROXY_CONFIG. Unknown flags, env keys and file keys are errors. A
/// failure's detail is the one line printed as it is: "gomodproxy: <key>: <problem>; expected
/// <form>"; its code is the errno (generic category) when the config file cannot be read, else
/// errc::invalid_request.
[[nodiscard]] outcome_of<settings> load_settings(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& environment);

/// The process environment as a map (helper for main and tests).
std::map<std::string, std::string> current_environment();

/// Text for `gomodproxy serve --help`: every flag, its env name and default.
std::string usage_text();

}  // namespace gomodproxy::config
