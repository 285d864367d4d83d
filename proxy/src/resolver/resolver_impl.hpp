// The resolver's insides, shared by its own files only: resolver.cpp (the request path),
// fill.cpp (the tier walk), sumdb_verify.cpp (verify before cache) and derived_latest.cpp
// (@latest worked out from @v/list). Nothing outside src/resolver/ includes it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errc.hpp"
#include "common/failure.hpp"
#include "resolver/flight_table.hpp"
#include "resolver/resolver.hpp"
#include "resolver/tier_walk.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::resolver {

/// What a request asks for, for logs and error bodies: "module@version", "module/@v/list",
/// "module@latest", or the checksum database path.
std::string describe(const protocol::module_request& request);

/// The request kind metrics count `kind` under.
monitor::request_kind kind_of(protocol::endpoint kind);

// Where one configured tier is counted and checked; nullopt when the monitor does not know it
// (direct, off, or no monitor configured).
struct tier_slots {
  std::optional<std::size_t> metrics;
  std::optional<std::size_t> health;
};

// A tier list with its monitor slots, resolved once at construction so the walk never looks
// up a tier by name.
struct tier_chain {
  std::vector<upstream::tier_spec> tiers;
  std::vector<tier_slots> slots;                         ///< parallel to tiers
  std::vector<std::shared_ptr<upstream::tier>> sources;  ///< parallel to tiers; null: unusable
};

// The result of one fill, shared by every request that joined it.
struct fill_outcome {
  bool committed = false;  ///< the cache now holds the answer (possibly a negative entry)
  /// When not committed: errc::not_found (no tier has it), errc::upstream_unavailable (none
  /// answered, or none with an answer that could be verified), or the cache's own code (it could
  /// not take the answer). fill_status gives its status.
  boost::system::error_code error = errc::not_found;
  std::string body;               ///< when not committed: the plain-text error body
  std::string tier;               ///< tier that answered, or "-"
  bool a_tier_lacked_it = false;  ///< some tier answered not found
  bool absent = false;            ///< when not committed: no tier failed, a not-found to remember
};

struct resolver::impl : std::enable_shared_from_this<impl> {
  impl(resolver_options options, cache::cache_store& store, const upstream::tier_factory& make_tier,
       resolver_executors executors);

  resolver_options options_;
  cache::cache_store& store_;
  resolver_executors executors_;
  flight_table<fill_outcome> flights_;
  monitor::metrics* metrics_;
  monitor::tier_health* health_;
  tier_chain public_chain_;
  tier_chain private_chain_;
  std::map<std::string, tier_chain, std::less<>> sumdb_chains_;

  // --- The request path (resolver.cpp) ---

  const sumdb_options* sumdb_named(std::string_view name) const;
  bool is_private(const std::string& module_path) const;
  boost::asio::awaitable<void> handle(const server::request_view& request,
                                      server::response_writer& writer);
  void count_lookup(monitor::request_kind kind, monitor::cache_result result);
  boost::asio::awaitable<void> answer(const server::request_view& request,
                                      server::response_writer& writer, monitor::request_kind& kind);
  // The rest of answer() after the parse; `verbatim` is the entry answer() found under the raw
  // target, if it looked (nullptr: none there).
  boost::asio::awaitable<void> answer_parsed(
      const server::request_view& request, server::response_writer& writer,
      monitor::request_kind& kind, std::optional<std::unique_ptr<cache::entry_reader>> verbatim);
  /// Milliseconds since the Unix epoch by options_.now: cache entries' stored_at_ms.
  std::int64_t now_ms() const;
  bool is_fresh(const cache::entry_meta& meta) const;
  // The status when no tier could give the file (all failed, timed out, or the cache could not
  // take it).
  int unavailable_status() const;
  // The status of a fill that ended without the file, by its `error`.
  int fill_status(const boost::system::error_code& error) const;
  std::unique_ptr<cache::entry_reader> open_entry(const std::string& key);
  static boost::asio::awaitable<void> send_text(server::response_writer& writer, int status,
                                                std::string_view body);
  // A cache entry that cannot be read, answered before any of it went out.
  static boost::asio::awaitable<void> send_cache_read_failure(server::response_writer& writer,
                                                              boost::system::error_code error);
  boost::asio::awaitable<void> serve(server::response_writer& writer,
                                     const protocol::module_request& request,
                                     cache::entry_reader& entry, std::string_view cache_result);
  boost::asio::awaitable<void> serve_file(server::response_writer& writer,
                                          const protocol::module_request& request,
                                          const cache::body_file& file,
                                          const server::response_head& head, std::uint64_t size);
  static std::string tier_reasons(std::string_view body);
  boost::asio::awaitable<outcome_of<std::string>> cached_body(
      std::string target, std::chrono::steady_clock::time_point deadline);

  // --- The fill: the tier walk and its verdicts (fill.cpp) ---

  // What a tier attempt reports to the walk that started it; defined in fill.cpp.
  struct attempt_event;
  // Shared by a walk and its attempts, which may outlive it (an abandoned hedge); defined in
  // fill.cpp.
  struct attempt_race;
  // The checksum database's proven hash for the module file a walk fetches, worked out
  // alongside the body; defined in sumdb_verify.cpp.
  struct sumdb_proof;
  // What the walk has learnt from the attempts that ended so far.
  struct walk_notes {
    std::string tried;    ///< one line per tier asked or passed over, for the error body
    bool lacked = false;  ///< a tier answered not found
    /// A tier failed, its breaker passed it over, or its answer was unusable.
    bool hard_failure = false;
  };
  // How one finished attempt ends: the fill's outcome when it ends the fill (won, or a failure
  // no other tier can mend), otherwise the verdict the walk goes on with.
  struct attempt_judgement {
    attempt_verdict verdict = attempt_verdict::failed;
    std::optional<fill_outcome> fill_ends;
  };

  boost::asio::awaitable<fill_outcome> fill(std::shared_ptr<impl> self,
                                            protocol::module_request request);
  boost::asio::awaitable<fill_outcome> fill_offline(
      const protocol::module_request& request, std::chrono::steady_clock::time_point fill_deadline);
  boost::asio::awaitable<fill_outcome> walk_tiers(
      std::shared_ptr<impl> self, protocol::module_request request,
      std::chrono::steady_clock::time_point fill_deadline);
  boost::asio::awaitable<attempt_judgement> judge_attempt(
      const protocol::module_request& request, const tier_chain& chain, attempt_event& event,
      walk_notes& notes, const std::shared_ptr<sumdb_proof>& proof,
      std::chrono::steady_clock::time_point fill_deadline);
  const tier_chain& chain_for(const protocol::module_request& request) const;
  std::vector<std::chrono::milliseconds> hedge_delays(const tier_chain& chain) const;
  boost::asio::awaitable<void> attempt(std::shared_ptr<impl> self,
                                       std::shared_ptr<attempt_race> race, std::size_t index,
                                       std::shared_ptr<upstream::tier> source,
                                       protocol::module_request request,
                                       std::optional<std::size_t> health_slot, std::uint64_t limit,
                                       upstream::deadlines limits,
                                       std::unique_ptr<cache::entry_writer> entry);
  void note_problem(const tier_slots& slots, monitor::request_kind kind, const std::string& reason,
                    int status = 0);
  void count_attempt(const tier_slots& slots, monitor::request_kind kind,
                     monitor::upstream_outcome outcome, const upstream::fetch_result* fetched);
  fill_outcome remember_not_found(const protocol::module_request& request, std::string body);
  std::string fill_deadline_reason() const;
  fill_outcome fill_timed_out(const protocol::module_request& request,
                              const std::string& tried) const;
  /// `operation` failed on the cache ("write", "read back"): the fill ends, nothing is cached.
  fill_outcome cache_failure(const boost::system::error_code& ec,
                             std::string_view operation = "write") const;

  // --- @latest from @v/list (derived_latest.cpp) ---

  boost::asio::awaitable<std::optional<fill_outcome>> latest_from_list(
      const protocol::module_request& request, std::chrono::steady_clock::time_point deadline);

  // --- Verify before cache: a public go.mod or zip is checked against the checksum database
  // (sumdb_verify.cpp) ---

  enum class sumdb_check { ok, mismatch, unavailable };

  std::optional<std::string_view> sumdb_exempt(const std::string& module_path) const;
  bool needs_sumdb_check(const protocol::module_request& request) const;
  boost::asio::awaitable<outcome_of<bool>> with_tiles(
      const sumdb_options& database, std::int64_t size, const sumdb::tlog_hash& root,
      const std::function<std::optional<bool>(const sumdb::hash_reader&)>& compute,
      std::vector<std::string>& used_tiles, std::chrono::steady_clock::time_point deadline);
  // Removes the tiles a failed proof used from the cache, so each is fetched anew next time.
  void drop_tiles(const std::vector<std::string>& cache_keys);
  // One tile a proof lacks and what fetching it gave; defined in sumdb_verify.cpp.
  struct tile_fetch;
  // The tiles one round of a proof fetches together; defined in sumdb_verify.cpp.
  struct tile_batch;
  boost::asio::awaitable<std::vector<tile_fetch>> fetch_tiles(
      const sumdb_options& database, std::vector<tile_fetch> wanted,
      std::chrono::steady_clock::time_point deadline);
  static boost::asio::awaitable<void> fetch_tile_worker(
      std::shared_ptr<impl> self, std::shared_ptr<tile_batch> batch, std::string prefix,
      std::chrono::steady_clock::time_point deadline);
  // tree_extends_known's outcome when run beside a record proof; defined in sumdb_verify.cpp.
  struct consistency_check;
  static boost::asio::awaitable<void> check_consistency(
      std::shared_ptr<impl> self, sumdb::tree_head head, std::shared_ptr<consistency_check> check,
      std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<outcome_of<void>> tree_extends_known(
      const sumdb_options& database, const sumdb::tree_head& head,
      std::vector<std::string>& used_tiles, std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<outcome_of<std::string>> proven_hash(
      const protocol::module_request& request, std::chrono::steady_clock::time_point deadline);
  std::shared_ptr<sumdb_proof> start_sumdb_proof(std::shared_ptr<impl> self,
                                                 const protocol::module_request& request,
                                                 std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<void> run_sumdb_proof(std::shared_ptr<impl> self,
                                               protocol::module_request request,
                                               std::shared_ptr<sumdb_proof> proof,
                                               std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<sumdb_check> verify_against_sumdb(
      const protocol::module_request& request,
      const boost::system::result<std::string>& actual_hash, sumdb_proof& proof,
      std::string& detail);
};

}  // namespace gomodproxy::resolver
