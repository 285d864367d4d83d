// The policy between the HTTP front and the upstreams: cache first, TTLs, stale-if-error,
// negative cache, private-module routing, singleflight, the tier walk and its fallthrough rules,
// verification before commit, and the error bodies.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_store.hpp"
#include "monitor/metrics.hpp"
#include "monitor/tier_health.hpp"
#include "server/http_server.hpp"
#include "sumdb/signed_note.hpp"
#include "upstream/http_client.hpp"
#include "upstream/tier.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::resolver {

/// A checksum database passed through at /sumdb/<name>/...
struct sumdb_options {
  std::string name;                        ///< e.g. "sum.golang.org"
  std::vector<upstream::tier_spec> tiers;  ///< its base URLs, walked like module tiers
  sumdb::verifier_key key;                 ///< signed tree heads must verify with it
};

struct resolver_options {
  std::vector<upstream::tier_spec> tiers;          ///< public tiers, in order
  std::vector<upstream::tier_spec> private_tiers;  ///< the only tiers private modules may reach
  std::vector<std::string> private_patterns;       ///< GOPRIVATE globs
  /// Checksum databases served at /sumdb/<name>/; lookups of private modules are refused
  /// without asking anyone. Default: none (every /sumdb/ request is 404)
  std::vector<sumdb_options> sumdbs;
  /// Check every public .mod and .zip against the first of `sumdbs` (record proven in its
  /// signed tree, tree proven to extend the last one seen) before caching it. Default: false
  bool verify_sumdb = false;
  std::vector<std::string> no_sumdb_patterns;  ///< GONOSUMDB globs: never checked
  std::chrono::seconds list_ttl{60};           ///< list, @latest, query .info. Default: 60 s
  std::chrono::seconds negative_ttl{30};       ///< not-found answers. Default: 30 s
  /// The wall clock entries are stamped with when committed and their age against list_ttl and
  /// negative_ttl is measured by; tests move it instead of sleeping. Called from any thread.
  /// Default: empty (std::chrono::system_clock::now)
  std::function<std::chrono::system_clock::time_point()> now;
  /// Per tier attempt: connect and first byte; `total` bounds one attempt, which never runs
  /// past the fill's deadline either.
  upstream::deadlines deadlines;
  /// Bounds a whole fill: every tier attempt and the checksum-database verification (lookups
  /// and tiles) included. When it passes, the waiting requests are answered as when every tier
  /// failed, running attempts stop and nothing is cached. Default: 5 min
  std::chrono::milliseconds fill_timeout{300000};
  bool all_failed_502 = false;  ///< 502 instead of 404 when every tier failed. Default: false
  /// Answer from the cache alone: no tier and no checksum database is ever asked, an entry is
  /// served whatever its age (an expired one as when every tier failed), @latest may still be
  /// worked out from a cached @v/list, and anything else is a 404 "offline: not cached".
  /// Default: false
  bool offline = false;
  /// When a tier has not started answering after this, the next tier is asked too; the first
  /// valid answer wins and the other attempt is abandoned. nullopt: after the tier's stall limit
  /// (monitor::tier_health::stall_limit, learnt from its times to first byte); zero: never.
  /// Default: nullopt
  std::optional<std::chrono::milliseconds> hedge_after;
  /// Where requests, lookups and tier attempts are counted; tiers are matched by name. Must
  /// outlive the resolver and its fills. Default: none (nothing is counted)
  monitor::metrics* metrics = nullptr;
  /// Circuit breakers consulted before each tier attempt and fed its result; tiers are matched
  /// by name. Must outlive the resolver and its fills. Default: none (every tier is tried)
  monitor::tier_health* health = nullptr;
};

/// Why `options` never ask a checksum database about `module_path` ("no checksum database",
/// "private module", "matches no_sumdb"), or nullopt when they do. Fills and bundle imports both
/// decide by it, so a module an import lets in unchecked is one a fill would too.
std::optional<std::string_view> sumdb_exemption(const resolver_options& options,
                                                const std::string& module_path);

/// Where the resolver's slow work runs, never on a connection's thread. The server gives each a
/// pool of its own, so that hashing a 500 MiB zip delays neither a fill's sockets nor a warm
/// stream's cache reads; a single executor may serve as all three (tests, offline tools).
struct resolver_executors {
  /// The tier walks, their attempts and timers, and the cache writes the attempts make as the
  /// bytes arrive (so a slow disk slows the upstream read, not the readers).
  boost::asio::any_io_executor fills;
  /// CPU-bound checks of a finished attempt: body_check (zip structure, go.mod, JSON), the
  /// checksum database's signatures, and the h1 hash of a zip or go.mod.
  boost::asio::any_io_executor checks;
  /// Cache reads of entries streamed in views (larger than one inline value).
  boost::asio::any_io_executor reads;
};

/// Answers GOPROXY protocol requests. Thread-safe. `store` and the tiers `make_tier` returns must
/// outlive it (it builds each configured tier once, at construction), and the executors must be
/// stopped and joined before it is destroyed.
class resolver final : public server::handler {
 public:
  resolver(resolver_options options, cache::cache_store& store,
           const upstream::tier_factory& make_tier, resolver_executors executors);
  /// Everything on one executor.
  resolver(resolver_options options, cache::cache_store& store,
           const upstream::tier_factory& make_tier,
           const boost::asio::any_io_executor& work_executor);
  ~resolver() override;
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  boost::asio::awaitable<void> handle(const server::request_view& request,
                                      server::response_writer& writer) override;

  /// For shutdown: requests waiting on a fill are answered 503 now, and so are later misses;
  /// the fills go on until the work executor stops. Thread-safe.
  void abandon_waiting();

  /// True when at least one tier can answer (not only "off"), and always when offline: the
  /// cache, open for the resolver's whole life, is then all it answers from.
  bool ready() const;

  /// What the first checksum database says of a module's zip (or go.mod when `go_mod`): its h1
  /// hash, proven exactly as before caching a fill (the lookup and tiles are fetched through
  /// the database's tiers and cached), or why it cannot say. Private and no-sumdb modules are
  /// never looked up. For `cache verify --online`; runs on the fills and checks executors.
  struct database_answer {
    std::optional<std::string> hash;  ///< "h1:..." when the database vouches
    std::string why;                  ///< otherwise, one line
    /// When it could not vouch (empty for an exempt module): not_found when the database has no
    /// record of it, upstream_unavailable when it did not answer, verification_failed when its
    /// answer does not prove what it must.
    boost::system::error_code code;
  };
  boost::asio::awaitable<database_answer> database_hash(std::string module_path,
                                                        std::string version, bool go_mod);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace gomodproxy::resolver
