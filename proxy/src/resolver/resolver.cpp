#include "resolver/resolver.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "errc.hpp"
#include "log_if_thrown.hpp"
#include "protocol/escape.hpp"
#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"
#include "resolver/body_check.hpp"
#include "resolver/flight_table.hpp"
#include "resolver/latest_from_list.hpp"
#include "resolver/tier_walk.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;
using monitor::upstream_outcome;
using protocol::endpoint;

namespace {

// Larger bodies are streamed in reads of this size, each on the work executor.
constexpr std::size_t stream_chunk_bytes = 1 << 20;
// The tier named for an @latest worked out from @v/list (access log, cache metadata).
constexpr const char* derived_latest_tier = "@v/list";
// Entries up to this size are read on the I/O thread and sent in one write; the cache stores
// them inline with their metadata, so that is a single lookup, mostly from the block cache.
constexpr std::uint64_t small_entry_bytes = 64 << 10;

using steady_clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_immutable(endpoint kind) {
  // Lookup records and tiles never change (spec §5.6); /latest moves.
  return kind == endpoint::info || kind == endpoint::mod || kind == endpoint::zip ||
         kind == endpoint::sumdb_lookup || kind == endpoint::sumdb_tile;
}

std::string content_type_for(endpoint kind) {
  switch (kind) {
    case endpoint::info:
    case endpoint::query:
    case endpoint::latest:
      return "application/json";
    case endpoint::zip:
      return "application/zip";
    case endpoint::sumdb_tile:
      return "application/octet-stream";
    case endpoint::list:
    case endpoint::mod:
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_latest:
      break;
  }
  return "text/plain; charset=utf-8";
}

std::string describe(const protocol::module_request& request) {
  switch (request.kind) {
    case endpoint::list:
      return request.module_path + "/@v/list";
    case endpoint::latest:
      return request.module_path + "@latest";
    case endpoint::sumdb_supported:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      return request.sumdb + request.upstream_path;
    default:
      return request.module_path + "@" + request.version;
  }
}

monitor::request_kind kind_of(endpoint kind) {
  switch (kind) {
    case endpoint::list:
      return monitor::request_kind::list;
    case endpoint::latest:
      return monitor::request_kind::latest;
    case endpoint::info:
      return monitor::request_kind::info;
    case endpoint::query:
      return monitor::request_kind::query;
    case endpoint::mod:
      return monitor::request_kind::mod;
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      return monitor::request_kind::sumdb;
    case endpoint::zip:
      break;
  }
  return monitor::request_kind::zip;
}

// Passes every call through and remembers the status sent, for the request metrics. The
// awaitables are returned, not awaited, so no coroutine frame is added per call.
class observed_writer final : public server::response_writer {
 public:
  explicit observed_writer(server::response_writer& inner) : inner_(inner) {}

  net::awaitable<bool> send(const server::response_head& head, std::string_view body) override {
    status_ = head.status;
    return inner_.send(head, body);
  }
  net::awaitable<bool> send_head(const server::response_head& head,
                                 std::uint64_t content_length) override {
    status_ = head.status;
    return inner_.send_head(head, content_length);
  }
  net::awaitable<bool> write_body(std::string_view chunk) override {
    return inner_.write_body(chunk);
  }
  bool head_only() const override { return inner_.head_only(); }
  void note(std::string_view cache_result, std::string_view tier) override {
    inner_.note(cache_result, tier);
  }

  /// 0 when nothing was sent (the server then answers 500).
  int status() const { return status_; }

 private:
  server::response_writer& inner_;
  int status_ = 0;
};

// Counts a request in gomodproxy_inflight_requests on every way out, exceptions included.
class inflight_guard {
 public:
  explicit inflight_guard(monitor::metrics& metrics) : metrics_(metrics) {
    metrics_.inflight_started();
  }
  ~inflight_guard() { metrics_.inflight_finished(); }
  inflight_guard(const inflight_guard&) = delete;
  inflight_guard& operator=(const inflight_guard&) = delete;

 private:
  monitor::metrics& metrics_;
};

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

tier_chain make_chain(const std::vector<upstream::tier_spec>& tiers,
                      const upstream::tier_factory& make_tier, const monitor::metrics* metrics,
                      const monitor::tier_health* health) {
  tier_chain chain;
  chain.tiers = tiers;
  for (const auto& tier : tiers) {
    chain.sources.push_back(make_tier ? make_tier(tier) : nullptr);
    tier_slots slots;
    if (tier.type == upstream::tier_spec::kind::url) {
      if (metrics) slots.metrics = metrics->tier_index(tier.name);
      if (health) slots.health = health->tier_index(tier.name);
    }
    chain.slots.push_back(slots);
  }
  return chain;
}

// The result of one fill, shared by every request that joined it.
struct fill_outcome {
  bool committed = false;         ///< the cache now holds the answer (possibly a negative entry)
  int status = 404;               ///< when not committed
  std::string body;               ///< when not committed: the plain-text error body
  std::string tier;               ///< tier that answered, or "-"
  bool a_tier_lacked_it = false;  ///< some tier answered not found
  bool absent = false;            ///< when not committed: no tier failed, a not-found to remember
};

}  // namespace

struct resolver::impl : std::enable_shared_from_this<impl> {
  impl(resolver_options options, cache::cache_store& store, const upstream::tier_factory& make_tier,
       net::any_io_executor work_executor)
      : options_(std::move(options)),
        store_(store),
        work_executor_(work_executor),
        flights_(work_executor),
        metrics_(options_.metrics),
        health_(options_.health),
        public_chain_(make_chain(options_.tiers, make_tier, metrics_, health_)),
        private_chain_(make_chain(options_.private_tiers, make_tier, metrics_, health_)) {
    for (const auto& database : options_.sumdbs) {
      sumdb_chains_.emplace(database.name,
                            make_chain(database.tiers, make_tier, metrics_, health_));
    }
  }

  resolver_options options_;
  cache::cache_store& store_;
  net::any_io_executor work_executor_;
  flight_table<fill_outcome> flights_;
  monitor::metrics* metrics_;
  monitor::tier_health* health_;
  tier_chain public_chain_;
  tier_chain private_chain_;
  std::map<std::string, tier_chain, std::less<>> sumdb_chains_;
  std::mutex verified_tree_mutex_;  ///< orders the updates of the remembered tree heads

  const sumdb_options* sumdb_named(std::string_view name) const {
    for (const auto& database : options_.sumdbs) {
      if (database.name == name) return &database;
    }
    return nullptr;
  }

  bool is_private(const std::string& module_path) const {
    return !options_.private_patterns.empty() &&
           protocol::match_prefix_patterns(options_.private_patterns, module_path);
  }

  net::awaitable<void> handle(const server::request_view& request,
                              server::response_writer& writer) {
    if (!metrics_) {
      auto kind = monitor::request_kind::other;
      co_await answer(request, writer, kind);
      co_return;
    }
    auto started = std::chrono::steady_clock::now();
    inflight_guard inflight(*metrics_);
    observed_writer observed(writer);
    auto kind = monitor::request_kind::other;
    co_await answer(request, observed, kind);
    metrics_->count_request(kind, observed.status() == 0 ? 500 : observed.status(),
                            std::chrono::steady_clock::now() - started);
  }

  void count_lookup(monitor::request_kind kind, monitor::cache_result result) {
    if (metrics_) metrics_->count_cache_lookup(kind, result);
  }

  // Answers one request; sets `kind` as soon as it is known.
  net::awaitable<void> answer(const server::request_view& request, server::response_writer& writer,
                              monitor::request_kind& kind) {
    auto parsed = protocol::parse_module_request(request.target);
    if (auto* error = std::get_if<protocol::parse_error>(&parsed)) {
      if (request.target.starts_with("/sumdb/")) kind = monitor::request_kind::sumdb;
      co_await send_text(writer, 404, "not found: " + error->reason + "\n");
      co_return;
    }
    auto& module_request = std::get<protocol::module_request>(parsed);
    kind = kind_of(module_request.kind);
    if (protocol::is_sumdb(module_request.kind)) {
      // Answered here, never forwarded: an unknown database (404 makes the go command go
      // direct), the support probe, and lookups that would reveal a private module's name.
      if (!sumdb_named(module_request.sumdb)) {
        co_await send_text(
            writer, 404,
            "not found: checksum database " + module_request.sumdb + " is not proxied here\n");
        co_return;
      }
      if (module_request.kind == endpoint::sumdb_supported) {
        co_await send_text(writer, 200, "");
        co_return;
      }
      if (module_request.kind == endpoint::sumdb_lookup && is_private(module_request.module_path)) {
        co_await send_text(writer, 404,
                           "not found: " + module_request.module_path +
                               " is private; it is never looked up in a checksum database "
                               "(set GONOSUMDB or GOPRIVATE for it)\n");
        co_return;
      }
    }

    std::unique_ptr<cache::entry_reader> stale;
    if (auto entry = open_entry(module_request.cache_key)) {
      if (is_fresh(entry->meta())) {
        count_lookup(kind, monitor::cache_result::hit);
        co_await serve(writer, module_request, *entry, "hit");
        co_return;
      }
      if (entry->meta().kind == cache::entry_kind::expiring) {
        count_lookup(kind, monitor::cache_result::stale);
        stale = std::move(entry);
      } else {
        count_lookup(kind, monitor::cache_result::miss);
      }
    } else {
      count_lookup(kind, monitor::cache_result::miss);
    }

    auto joined = co_await flights_.join(module_request.cache_key, [this, &module_request] {
      return fill(shared_from_this(), module_request);
    });
    if (joined.shared && metrics_) metrics_->count_singleflight_shared();
    const char* cache_result = joined.shared ? "shared" : "miss";
    if (joined.outcome.committed) {
      if (auto entry = open_entry(module_request.cache_key)) {
        co_await serve(writer, module_request, *entry, cache_result);
        co_return;
      }
    }
    if (stale) {
      if (metrics_) metrics_->count_stale_served(kind);
      co_await serve(writer, module_request, *stale, "stale");
      co_return;
    }
    if (joined.abandoned) {
      writer.note("abandoned", "");
      co_await send_text(writer, 503, "server is shutting down; retry\n");
      co_return;
    }
    if (joined.thrown) {
      writer.note(cache_result, "-");
      co_await send_text(writer, options_.all_failed_502 ? 502 : 404,
                         "not found: " + describe(module_request) +
                             "\ninternal error: the fill failed: " + *joined.thrown + "\n");
      co_return;
    }
    writer.note(cache_result, joined.outcome.tier);
    int status = joined.outcome.committed ? 404 : joined.outcome.status;
    std::string body =
        joined.outcome.committed ? "not found: cache entry vanished\n" : joined.outcome.body;
    co_await send_text(writer, status, body);
  }

  // Whether an entry may be answered as it is, without asking the tiers again.
  bool is_fresh(const cache::entry_meta& meta) const {
    const auto age = std::chrono::milliseconds(now_ms() - meta.stored_at_ms);
    switch (meta.kind) {
      case cache::entry_kind::immutable:
        return true;
      case cache::entry_kind::expiring:
        return age < options_.list_ttl;
      case cache::entry_kind::not_found:
        return age < options_.negative_ttl;
    }
    return false;
  }

  std::unique_ptr<cache::entry_reader> open_entry(const std::string& key) {
    auto entry = store_.open(key);
    if (!entry) {
      spdlog::error("cache read of {} failed: {}", key, entry.error().message());
      return nullptr;
    }
    return std::move(*entry);
  }

  static net::awaitable<void> send_text(server::response_writer& writer, int status,
                                        std::string_view body) {
    server::response_head head;
    head.status = status;
    head.content_type = "text/plain; charset=utf-8";
    head.cache_control = "no-store";
    (void)co_await writer.send(head, body);
  }

  net::awaitable<void> serve(server::response_writer& writer,
                             const protocol::module_request& request, cache::entry_reader& entry,
                             std::string_view cache_result) {
    const auto& meta = entry.meta();
    writer.note(cache_result, meta.tier.empty() ? "-" : meta.tier);
    server::response_head head;
    if (meta.kind == cache::entry_kind::not_found) {
      head.status = 404;
      head.content_type = "text/plain; charset=utf-8";
      head.cache_control = "no-store";
    } else {
      head.content_type = content_type_for(request.kind);
      head.cache_control = meta.kind == cache::entry_kind::immutable
                               ? "public, max-age=604800, immutable"
                               : "public, max-age=" + std::to_string(options_.list_ttl.count());
    }
    if (meta.size <= small_entry_bytes) {
      auto body = writer.head_only() ? cache::result<std::string_view>(std::string_view())
                                     : entry.view(0, meta.size);
      cache::result<std::string> copied;
      if (body && !writer.head_only() && body->size() < meta.size) {
        // Stored in chunks smaller than the entry: gather them.
        copied = entry.read(0, meta.size);
        body = copied ? cache::result<std::string_view>(*copied)
                      : cache::result<std::string_view>(copied.error());
      }
      if (!body || (!writer.head_only() && body->size() != meta.size)) {
        co_await send_text(writer, 500, "cache read failed\n");
        co_return;
      }
      if (writer.head_only()) {
        (void)co_await writer.send_head(head, meta.size);
      } else {
        (void)co_await writer.send(head, *body);
      }
      co_return;
    }
    if (!co_await writer.send_head(head, meta.size) || writer.head_only()) co_return;
    std::uint64_t offset = 0;
    while (offset < meta.size) {
      // A view of the store's own copy of the chunk (checked on the work thread), written
      // straight to the socket: no per-request copy of the body.
      auto chunk = co_await net::co_spawn(
          work_executor_,
          [&entry, offset]() -> net::awaitable<cache::result<std::string_view>> {
            co_return entry.view(offset, stream_chunk_bytes);
          },
          net::use_awaitable);
      if (!chunk || chunk->empty()) {
        // The head is gone already; closing short of Content-Length is the only honest signal.
        spdlog::error("cache read of {} failed at offset {}", request.cache_key, offset);
        co_return;
      }
      if (!co_await writer.write_body(*chunk)) co_return;
      offset += chunk->size();
    }
  }

  const tier_chain& chain_for(const protocol::module_request& request) const {
    if (!request.sumdb.empty()) {
      // answer() lets only configured databases through.
      return sumdb_chains_.find(request.sumdb)->second;
    }
    if (is_private(request.module_path)) {
      return private_chain_;
    }
    return public_chain_;
  }

  // For the public /status page, which shows a reason carrying an upstream's words as its
  // `status` only (the board applies that rule for every caller).
  void note_problem(const tier_slots& slots, monitor::request_kind kind, const std::string& reason,
                    int status = 0) {
    if (metrics_ && slots.metrics) {
      metrics_->note_upstream_problem(*slots.metrics, kind, reason, status);
    }
  }

  void count_attempt(const tier_slots& slots, monitor::request_kind kind, upstream_outcome outcome,
                     const upstream::fetch_result* fetched) {
    if (!metrics_ || !slots.metrics) return;
    std::optional<std::chrono::microseconds> ttfb;
    if (fetched && fetched->status != 0) ttfb = fetched->ttfb;
    metrics_->count_upstream(*slots.metrics, kind, outcome, ttfb);
  }

  // What a tier attempt reports to the walk that started it.
  struct attempt_event {
    enum class type { answering, finished, hedge_due, fill_deadline } what = type::finished;
    std::size_t tier = 0;
    std::uint64_t hedge_generation = 0;
    upstream::fetch_result fetched;
    bool too_large = false;
    boost::system::error_code write_error;
    std::unique_ptr<cache::entry_writer> entry;
  };
  using event_channel = net::experimental::concurrent_channel<void(boost::system::error_code,
                                                                   std::shared_ptr<attempt_event>)>;

  // Shared by a walk and its attempts, which may outlive it (an abandoned hedge).
  struct attempt_race {
    attempt_race(net::any_io_executor executor, std::size_t tiers)
        : events(std::move(executor), 4 * tiers + 8) {}
    event_channel events;  // sized so try_send never finds it full
    std::atomic<bool> over{false};
    void post(std::shared_ptr<attempt_event> event) {
      (void)events.try_send(boost::system::error_code{}, std::move(event));
    }
  };

  // One tier attempt, detached on the work executor: streams the body into its own cache
  // writer and reports the first bytes and the end to the race. Once the race is over it stops
  // at the next chunk and its answer is dropped (its writer is never committed). An attempt
  // with no first bytes after its tier's stall limit is reported stalled to the tier's health
  // at that moment, not at its own deadline, so a hung tier is found while it is still hanging.
  net::awaitable<void> attempt(std::shared_ptr<impl> self, std::shared_ptr<attempt_race> race,
                               std::size_t index, std::shared_ptr<upstream::tier> source,
                               protocol::module_request request,
                               std::optional<std::size_t> health_slot, std::uint64_t limit,
                               upstream::deadlines limits,
                               std::unique_ptr<cache::entry_writer> entry) {
    auto done = std::make_shared<attempt_event>();
    done->tier = index;
    bool abandoned = false;
    bool first_bytes = true;
    // The stall timer runs on another thread of the pool: one compare-and-swap decides whether
    // the attempt stalled or answered first, so its tier is never counted twice.
    enum class stall_state { waiting, answered, stalled };
    auto watch = std::make_shared<std::atomic<stall_state>>(stall_state::waiting);
    auto answered = [&watch] {
      auto expected = stall_state::waiting;
      watch->compare_exchange_strong(expected, stall_state::answered);
    };
    net::steady_timer stall_timer(work_executor_);
    if (health_ && health_slot) {
      stall_timer.expires_after(health_->stall_limit(*health_slot));
      stall_timer.async_wait([self, watch, slot = *health_slot](boost::system::error_code ec) {
        auto expected = stall_state::waiting;
        if (ec || !watch->compare_exchange_strong(expected, stall_state::stalled)) return;
        self->health_->record_stall(slot);
      });
    }
    auto sink = [&](std::string_view chunk) {
      answered();
      if (std::exchange(first_bytes, false)) {
        auto answering = std::make_shared<attempt_event>();
        answering->what = attempt_event::type::answering;
        answering->tier = index;
        race->post(std::move(answering));
      }
      if (race->over.load()) {
        abandoned = true;
        return false;
      }
      if (entry->size() + chunk.size() > limit) {
        done->too_large = true;
        return false;
      }
      if (auto appended = entry->append(chunk); !appended) {
        done->write_error = appended.error();
        return false;
      }
      return true;
    };
    try {
      done->fetched = co_await source->fetch(request, sink, limits);
    } catch (const std::exception& error) {
      // The walk waits for this attempt's end: it must be reported whatever happens.
      done->fetched.result = upstream::outcome::error;
      done->fetched.reason = std::string("internal error: ") + error.what();
    }
    answered();
    stall_timer.cancel();
    if (health_ && health_slot) {
      const auto& fetched = done->fetched;
      const bool stalled = watch->load() == stall_state::stalled;
      if (fetched.status != 0) health_->record_ttfb(*health_slot, fetched.ttfb);
      // A body refused by our own sink (too large, cache write failed) still means the tier
      // answered; only transport failures, timeouts and bad statuses count against it. A
      // stalled attempt was counted when it stalled, and an abandoned one that had started its
      // body shows the tier slow but alive.
      bool failed = (fetched.result == upstream::outcome::error ||
                     fetched.result == upstream::outcome::timeout) &&
                    !done->too_large && !done->write_error && !abandoned;
      if (failed) {
        // The log gets a status number, never the upstream's own words.
        if (!stalled) {
          health_->record_failure(*health_slot, fetched.status != 0
                                                    ? "status " + std::to_string(fetched.status)
                                                    : fetched.reason);
        }
      } else if (!abandoned || stalled) {
        health_->record_success(*health_slot, stalled);
      }
    }
    done->entry = std::move(entry);
    race->post(std::move(done));
  }

  // When each tier of `chain` gets the next one asked alongside it.
  std::vector<std::chrono::milliseconds> hedge_delays(const tier_chain& chain) const {
    std::vector<std::chrono::milliseconds> delays;
    for (const auto& slots : chain.slots) {
      if (options_.hedge_after) {
        delays.push_back(*options_.hedge_after);
      } else if (health_ && slots.health) {
        delays.push_back(health_->stall_limit(*slots.health));
      } else {
        delays.push_back(health_ ? health_->stalls().min : monitor::stall_options{}.min);
      }
    }
    return delays;
  }

  // Walks the tiers for one request, on the work executor. Fall-through follows GOPROXY rules:
  // not-found always moves on; an error moves on only after '|'; a body that fails
  // verification moves on too, since that tier's answer is unusable whatever the separator.
  // With hedge_after, a tier that has not started answering in time gets the next tier asked
  // alongside; the first valid answer wins. The whole fill, verification included, ends by
  // fill_timeout. `self` keeps the resolver alive for a fill that outlives its requests.
  net::awaitable<fill_outcome> fill(std::shared_ptr<impl> self, protocol::module_request request) {
    const auto fill_deadline = steady_clock::now() + options_.fill_timeout;
    auto outcome = co_await walk_tiers(self, request, fill_deadline);
    if (request.kind == endpoint::latest && outcome.a_tier_lacked_it) {
      if (auto derived = co_await latest_from_list(request, fill_deadline)) {
        co_return std::move(*derived);
      }
    }
    // Only now: remembered before the derivation ended, the absence would be served to the
    // requests arriving meanwhile instead of their joining this fill.
    if (outcome.absent) co_return remember_not_found(request, std::move(outcome.body));
    co_return outcome;
  }

  net::awaitable<fill_outcome> walk_tiers(std::shared_ptr<impl> self,
                                          protocol::module_request request,
                                          steady_clock::time_point fill_deadline) {
    std::string tried;
    bool lacked = false;
    bool hard_failure = false;
    const tier_chain& chain = chain_for(request);
    const auto kind = kind_of(request.kind);
    const std::uint64_t limit = body_limit(request.kind);
    tier_walk walk(hedge_delays(chain));
    auto race = std::make_shared<attempt_race>(work_executor_, chain.tiers.size());
    // However the walk ends, attempts still running stop at their next chunk.
    struct end_race {
      attempt_race& race;
      ~end_race() { race.over.store(true); }
    } race_guard{*race};
    std::optional<boost::system::error_code> cache_error;

    // Starts the next tier that can be asked, noting the ones that cannot.
    auto start_next = [&] {
      while (auto next = walk.next_candidate()) {
        const std::size_t i = *next;
        const auto& tier = chain.tiers[i];
        const auto& slots = chain.slots[i];
        if (i > 0 && metrics_ && chain.slots[i - 1].metrics && slots.metrics) {
          metrics_->count_fallback(*chain.slots[i - 1].metrics, *slots.metrics);
        }
        if (tier.type == upstream::tier_spec::kind::off) {
          tried += "off: module lookup disabled\n";
          walk.skip(true);
          return;
        }
        if (!chain.sources[i]) {
          tried += tier.name + ": not available in this process\n";
          walk.skip(true);
          return;
        }
        auto created = store_.create(request.cache_key);
        if (!created) {
          cache_error = created.error();
          walk.skip(true);
          return;
        }
        // After create(), so that a claimed half-open trial is always reported.
        if (health_ && slots.health && !health_->allow(*slots.health)) {
          count_attempt(slots, kind, upstream_outcome::skipped, nullptr);
          tried += tier.name + ": skipped (circuit open)\n";
          hard_failure = true;
          walk.skip(!tier.fall_through_on_error);
          continue;
        }
        walk.started(steady_clock::now());
        // The attempt's own deadlines, cut short by the fill's: it stops when the fill ends.
        auto limits = options_.deadlines;
        limits.total = std::clamp(
            std::chrono::ceil<std::chrono::milliseconds>(fill_deadline - steady_clock::now()),
            std::chrono::milliseconds(1), limits.total);
        net::co_spawn(work_executor_,
                      attempt(self, race, i, chain.sources[i], request, slots.health, limit, limits,
                              std::move(*created)),
                      log_if_thrown("a tier attempt"));
        return;
      }
    };

    net::steady_timer deadline_timer(work_executor_, fill_deadline);
    deadline_timer.async_wait([race](const boost::system::error_code& ec) {
      if (ec) return;
      auto event = std::make_shared<attempt_event>();
      event->what = attempt_event::type::fill_deadline;
      race->post(std::move(event));
    });
    net::steady_timer hedge_timer(work_executor_);
    std::uint64_t hedge_generation = 0;
    std::optional<tier_walk::clock::time_point> hedge_armed_for;
    start_next();
    while (walk.running() > 0) {
      if (auto due = walk.hedge_due(); due && due != hedge_armed_for) {
        hedge_armed_for = due;
        hedge_timer.expires_at(*due);
        hedge_timer.async_wait(
            [race, generation = ++hedge_generation](const boost::system::error_code& ec) {
              if (ec) return;
              auto event = std::make_shared<attempt_event>();
              event->what = attempt_event::type::hedge_due;
              event->hedge_generation = generation;
              race->post(std::move(event));
            });
      }
      auto [ec, event] = co_await race->events.async_receive(net::as_tuple(net::use_awaitable));
      if (ec || !event) break;
      if (event->what == attempt_event::type::fill_deadline) {
        // Attempts still running end by their own total, which the fill deadline cut short;
        // what they wrote is never committed.
        co_return fill_timed_out(request, tried);
      }
      if (event->what == attempt_event::type::hedge_due) {
        if (event->hedge_generation == hedge_generation &&
            walk.hedge_now(std::chrono::steady_clock::now())) {
          start_next();
          if (cache_error) co_return cache_failure(*cache_error);
        }
        continue;
      }
      if (event->what == attempt_event::type::answering) {
        walk.answering(event->tier);
        continue;
      }
      const std::size_t i = event->tier;
      const auto& tier = chain.tiers[i];
      const auto& slots = chain.slots[i];
      const auto& fetched = event->fetched;
      if (event->write_error) {
        count_attempt(slots, kind, upstream_outcome::ok, &fetched);  // the failure is ours
        co_return cache_failure(event->write_error);
      }
      auto verdict = attempt_verdict::failed;
      switch (fetched.result) {
        case upstream::outcome::ok: {
          auto& entry = event->entry;
          auto reader = [&entry](std::uint64_t offset, std::size_t length) {
            return entry->read(offset, length);
          };
          auto bad = check_body(request, entry->size(), reader);
          if (!bad &&
              (request.kind == endpoint::sumdb_lookup || request.kind == endpoint::sumdb_latest)) {
            bad = check_signed_answer(request, entry->size(), reader,
                                      sumdb_named(request.sumdb)->key);
          }
          if (bad) {
            spdlog::warn("{} from {} rejected: {}", request.upstream_path, tier.name, *bad);
            count_attempt(slots, kind, upstream_outcome::error, &fetched);
            note_problem(slots, kind, "invalid answer (failed verification)");
            tried += tier.name + ": invalid answer: " + *bad + "\n";
            hard_failure = true;
            verdict = attempt_verdict::invalid;
            break;
          }
          if (needs_sumdb_check(request)) {
            std::string detail;
            const auto checked =
                co_await verify_against_sumdb(request, *entry, detail, fill_deadline);
            if (checked == sumdb_check::mismatch) {
              spdlog::error("integrity failure: {} {}@{} from {}: {}",
                            protocol::endpoint_name(request.kind), request.module_path,
                            request.version, tier.name, detail);
              if (metrics_ && slots.metrics) metrics_->count_integrity_failure(*slots.metrics);
              count_attempt(slots, kind, upstream_outcome::error, &fetched);
              note_problem(slots, kind, "checksum mismatch");
              tried += tier.name + ": checksum mismatch: " + detail + "\n";
              hard_failure = true;
              verdict = attempt_verdict::invalid;
              break;
            }
            if (checked == sumdb_check::unavailable) {
              // Nothing unverified is cached; another tier would meet the same database.
              if (steady_clock::now() >= fill_deadline) {
                count_attempt(slots, kind, upstream_outcome::ok, &fetched);
                co_return fill_timed_out(request, tried);
              }
              spdlog::error("cannot verify {}@{}: {}", request.module_path, request.version,
                            detail);
              count_attempt(slots, kind, upstream_outcome::ok, &fetched);
              tried += "not verified: " + detail + "\n";
              co_return fill_outcome{false, options_.all_failed_502 ? 502 : 404,
                                     "not found: " + describe(request) + "\n" + tried, "-"};
            }
          }
          cache::entry_meta meta;
          meta.kind = is_immutable(request.kind) ? cache::entry_kind::immutable
                                                 : cache::entry_kind::expiring;
          meta.stored_at_ms = now_ms();
          meta.tier = tier.name;
          count_attempt(slots, kind, upstream_outcome::ok, &fetched);
          if (auto committed = entry->commit(meta); !committed) {
            co_return cache_failure(committed.error());
          }
          co_return fill_outcome{true, 200, {}, tier.name};
        }
        case upstream::outcome::not_found:
          count_attempt(slots, kind, upstream_outcome::not_found, &fetched);
          lacked = true;
          tried += tier.name + ": " + fetched.reason + "\n";
          verdict = attempt_verdict::not_found;
          break;
        case upstream::outcome::error:
        case upstream::outcome::timeout:
          count_attempt(slots, kind,
                        fetched.result == upstream::outcome::timeout ? upstream_outcome::timeout
                                                                     : upstream_outcome::error,
                        &fetched);
          if (event->too_large) {
            note_problem(slots, kind, "response too large");
          } else {
            note_problem(slots, kind, fetched.reason, fetched.status);
          }
          tried += tier.name + ": " +
                   (event->too_large ? std::string("response too large") : fetched.reason) + "\n";
          hard_failure = true;
          break;
      }
      if (walk.finished(i, verdict, tier.fall_through_on_error) == tier_walk::step::start_next) {
        start_next();
      }
      if (cache_error) co_return cache_failure(*cache_error);
    }
    if (cache_error) co_return cache_failure(*cache_error);
    std::string body = "not found: " + describe(request) + "\n" + tried;
    fill_outcome outcome{false, hard_failure && options_.all_failed_502 ? 502 : 404,
                         std::move(body), "-"};
    outcome.a_tier_lacked_it = lacked;
    outcome.absent = !hard_failure;
    co_return outcome;
  }

  // What the go command does when a proxy has no @latest (cmd/go/internal/modfetch/proxy.go,
  // modload/query.go): the newest tagged version of @v/list that the newest version's go.mod
  // does not retract, release before pre-release. The list, go.mod and .info come through this
  // cache (and so through the tiers, verified); the answer is kept for the list TTL.
  net::awaitable<std::optional<fill_outcome>> latest_from_list(
      const protocol::module_request& request, steady_clock::time_point deadline) {
    const std::string base = "/" + protocol::escape_case(request.module_path) + "/@v/";
    std::string why;  // a derivation that fails leaves the tiers' own answer standing
    auto file = [&](const std::string& version, const char* suffix) {
      return cached_body(base + protocol::escape_case(version) + suffix, why, deadline);
    };
    auto list = co_await cached_body(base + "list", why, deadline);
    if (!list) co_return std::nullopt;
    const auto versions = tagged_versions(*list);
    // +incompatible versions count only when the newest compatible one has no go.mod of its
    // own (modload's filterVersions).
    auto drop_incompatible = [&](const std::vector<retraction>& retracted) -> net::awaitable<bool> {
      auto compatible = compatible_version_to_check(versions, retracted);
      if (!compatible) co_return false;
      auto go_mod = co_await file(*compatible, ".mod");
      co_return go_mod && !is_synthesised_go_mod(*go_mod, request.module_path);
    };
    auto newest = latest_version(versions, {}, co_await drop_incompatible({}));
    if (!newest) co_return std::nullopt;
    // As for go, a go.mod that cannot be had retracts nothing.
    std::vector<retraction> retracted;
    if (auto go_mod = co_await file(*newest, ".mod")) retracted = parse_retractions(*go_mod);
    auto chosen = latest_version(versions, retracted, co_await drop_incompatible(retracted));
    if (!chosen) co_return std::nullopt;
    auto info = co_await file(*chosen, ".info");
    if (!info) co_return std::nullopt;

    auto created = store_.create(request.cache_key);
    if (!created) co_return cache_failure(created.error());
    cache::entry_meta meta;
    meta.kind = cache::entry_kind::expiring;
    meta.stored_at_ms = now_ms();
    meta.tier = derived_latest_tier;
    if (auto appended = (*created)->append(*info); !appended) {
      co_return cache_failure(appended.error());
    }
    if (auto committed = (*created)->commit(meta); !committed) {
      co_return cache_failure(committed.error());
    }
    co_return fill_outcome{true, 200, {}, derived_latest_tier};
  }

  // --- Verify before cache: a public go.mod or zip is checked against the checksum database ---

  enum class sumdb_check { ok, mismatch, unavailable };

  // Why the checksum database is never asked about `module_path`, or nullopt when it is.
  std::optional<std::string_view> sumdb_exempt(const std::string& module_path) const {
    if (options_.sumdbs.empty()) return "no checksum database";
    if (is_private(module_path)) return "private module";
    if (!options_.no_sumdb_patterns.empty() &&
        protocol::match_prefix_patterns(options_.no_sumdb_patterns, module_path)) {
      return "matches no_sumdb";
    }
    return std::nullopt;
  }

  bool needs_sumdb_check(const protocol::module_request& request) const {
    return options_.verify_sumdb &&
           (request.kind == endpoint::zip || request.kind == endpoint::mod) &&
           !sumdb_exempt(request.module_path);
  }

  // One line from an error answer: what each tier said ("a: 404; b: dns: ..."), since its first
  // line only repeats what was asked; the first line when no tier is named.
  static std::string tier_reasons(std::string_view body) {
    if (body.empty()) return "no answer";
    const auto first_end = body.find('\n');
    std::string tiers;
    for (auto rest = first_end == std::string_view::npos ? std::string_view{}
                                                         : body.substr(first_end + 1);
         !rest.empty();) {
      const auto end = rest.find('\n');
      if (const auto line = rest.substr(0, end); !line.empty()) {
        tiers += (tiers.empty() ? "" : "; ") + std::string(line);
      }
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    }
    return tiers.empty() ? std::string(body.substr(0, first_end)) : tiers;
  }

  // The body the proxy would answer for `target` (a protocol or checksum database path): from
  // the cache, or fetched through the tiers like any client request, so it is verified, cached
  // and shared the same way (a stale list is refreshed, and served if that fails); nullopt
  // with `why` when there is none.
  net::awaitable<std::optional<std::string>> cached_body(std::string target, std::string& why,
                                                         steady_clock::time_point deadline) {
    auto parsed = protocol::parse_module_request(target);
    if (auto* error = std::get_if<protocol::parse_error>(&parsed)) {
      why = error->reason;
      co_return std::nullopt;
    }
    auto request = std::get<protocol::module_request>(std::move(parsed));
    auto entry = open_entry(request.cache_key);
    // A remembered absence is asked about again however recent: a checksum database learns of
    // a version when first asked for it, and the fill waiting for this body fails without it.
    if (!entry || entry->meta().kind == cache::entry_kind::not_found || !is_fresh(entry->meta())) {
      auto joined = co_await flights_.join(
          request.cache_key, [this, &request] { return fill(shared_from_this(), request); },
          deadline);
      if (joined.gave_up) {
        why = fill_deadline_reason();
        co_return std::nullopt;
      }
      if (joined.thrown) {
        why = "internal error: the fill failed: " + *joined.thrown;
        co_return std::nullopt;
      }
      auto filled = joined.outcome.committed ? open_entry(request.cache_key) : nullptr;
      if (filled) {
        entry = std::move(filled);
      } else if (!entry || entry->meta().kind != cache::entry_kind::expiring) {
        why = tier_reasons(joined.outcome.body);
        co_return std::nullopt;
      }
    }
    if (entry->meta().kind == cache::entry_kind::not_found) {
      why = request.sumdb.empty() ? "not found" : "not in the checksum database";
      co_return std::nullopt;
    }
    auto body = entry->read(0, static_cast<std::size_t>(entry->meta().size));
    if (!body) {
      why = "cache read failed: " + body.error().message();
      co_return std::nullopt;
    }
    co_return std::move(*body);
  }

  // Runs `compute` over the database's tiles for a tree of `size` records, fetching the tiles
  // it asks for and running it again (a proof names all it lacks at once: two rounds). The tiles
  // need no trust: what is computed from them is checked against signed roots. Returns compute's
  // verdict; on a failed check the tiles used are dropped from the cache, so a bad one is
  // fetched anew next time.
  net::awaitable<bool> with_tiles(
      const sumdb_options& database, std::int64_t size,
      const std::function<std::optional<bool>(const sumdb::hash_reader&)>& compute,
      std::string& why, steady_clock::time_point deadline) {
    std::map<std::string, std::string> tiles;
    for (int round = 0; round < 8; ++round) {
      std::vector<std::pair<std::string, std::string>> missing;  // path, full-tile path
      sumdb::hash_reader read = [&](std::span<const std::int64_t> indexes)
          -> boost::system::result<std::vector<sumdb::tlog_hash>> {
        std::vector<sumdb::tlog_hash> out;
        // Every tile the proof lacks is named in one round, so they are fetched together
        // rather than one round each.
        bool lacking = false;
        for (const auto index : indexes) {
          auto span = sumdb::tile_for_index(sumdb::sumdb_tile_height, index);
          auto tile = span.tile;
          const std::int64_t full = std::int64_t{1} << tile.height;
          const std::int64_t at_level = size >> (tile.level * tile.height);
          tile.width =
              static_cast<int>(std::clamp<std::int64_t>(at_level - tile.index * full, 0, full));
          if (tile.width == 0) return errc::verification_failed;
          const auto path = sumdb::tile_path(tile);
          auto found = tiles.find(path);
          if (found == tiles.end()) {
            auto whole = tile;
            whole.width = static_cast<int>(full);
            missing.emplace_back(path, sumdb::tile_path(whole));
            lacking = true;
            continue;
          }
          auto hash = sumdb::hash_from_tile(tile, found->second, index);
          if (!hash) return hash.error();
          out.push_back(*hash);
        }
        if (lacking) return errc::verification_failed;
        return out;
      };
      auto verdict = compute(read);
      if (verdict) {
        if (!*verdict) {
          for (const auto& [path, data] : tiles) {
            (void)store_.remove("/sumdb/" + database.name + "/" + path);
          }
        }
        co_return *verdict;
      }
      if (missing.empty()) {
        why = "tiles do not hold the hashes the proof needs";
        co_return false;
      }
      for (const auto& [path, full_path] : missing) {
        if (tiles.contains(path)) continue;
        std::string tile_why;
        auto data =
            co_await cached_body("/sumdb/" + database.name + "/" + path, tile_why, deadline);
        // A partial tile the database no longer serves: its full tile starts with the same hashes.
        if (!data && full_path != path) {
          data =
              co_await cached_body("/sumdb/" + database.name + "/" + full_path, tile_why, deadline);
        }
        if (!data) {
          why = path + ": " + tile_why;
          co_return false;
        }
        tiles.emplace(path, std::move(*data));
      }
    }
    why = "tiles kept missing";
    co_return false;
  }

  // The newest tree head this cache has verified for `database`, kept under a key no request
  // can produce; a tree that does not extend it (or is not extended by it) is a fork.
  net::awaitable<bool> tree_extends_known(const sumdb_options& database,
                                          const sumdb::tree_head& head, std::string& why,
                                          steady_clock::time_point deadline) {
    const std::string key = "/gomodproxy/verified-tree/" + database.name;
    auto stored_tree = [this, &key]() -> std::optional<sumdb::tree_head> {
      if (auto entry = open_entry(key)) {
        auto text = entry->read(0, static_cast<std::size_t>(entry->meta().size));
        if (text) {
          if (auto parsed = sumdb::parse_tree_head(*text)) return *parsed;
        }
      }
      return std::nullopt;
    };
    const std::optional<sumdb::tree_head> known = stored_tree();
    if (known && known->size == head.size && known->root != head.root) {
      why = "two different trees of size " + std::to_string(head.size);
      co_return false;
    }
    if (known && known->size != head.size) {
      const auto& older = head.size < known->size ? head : *known;
      const auto& newer = head.size < known->size ? *known : head;
      bool consistent = co_await with_tiles(
          database, newer.size,
          [&](const sumdb::hash_reader& read) -> std::optional<bool> {
            auto proof = sumdb::prove_tree(newer.size, older.size, read);
            if (!proof) return std::nullopt;
            return sumdb::check_tree(*proof, newer.size, newer.root, older.size, older.root);
          },
          why, deadline);
      if (!consistent) {
        why = "tree of size " + std::to_string(newer.size) + " does not extend the tree of size " +
              std::to_string(older.size) + (why.empty() ? "" : " (" + why + ")");
        co_return false;
      }
    }
    // Another fill may have stored a newer tree while this one was proving: the remembered
    // tree only ever grows.
    std::lock_guard lock(verified_tree_mutex_);
    const auto latest = stored_tree();
    if (!latest || head.size > latest->size) {
      auto created = store_.create(key);
      if (created) {
        cache::entry_meta meta;
        meta.kind = cache::entry_kind::immutable;
        meta.stored_at_ms = now_ms();
        (void)((*created)->append(sumdb::format_tree_head(head)) && (*created)->commit(meta));
      }
    }
    co_return true;
  }

  // The hash the first checksum database gives for the request's zip or go.mod, once its record
  // is proven in the signed tree and that tree proven to extend the newest one seen; nullopt
  // with `detail` when the database cannot vouch for it.
  net::awaitable<std::optional<std::string>> proven_hash(const protocol::module_request& request,
                                                         std::string& detail,
                                                         steady_clock::time_point deadline) {
    const auto& database = options_.sumdbs.front();
    std::string why;
    auto answer =
        co_await cached_body("/sumdb/" + database.name +
                                 protocol::sumdb_lookup_path(request.module_path, request.version),
                             why, deadline);
    if (!answer) {
      detail = database.name + " lookup: " + why;
      co_return std::nullopt;
    }
    // Checked when it was cached; checked again here because the proof needs its parts.
    auto record = sumdb::parse_lookup_response(*answer);
    if (!record) {
      detail = database.name + " lookup: " + record.error().message();
      co_return std::nullopt;
    }
    auto tree_text = sumdb::open_note(record->signed_tree, database.key);
    auto head = tree_text ? sumdb::parse_tree_head(*tree_text)
                          : boost::system::result<sumdb::tree_head>(tree_text.error());
    if (!head || record->id >= head->size) {
      detail = database.name + " lookup: tree head not verified";
      co_return std::nullopt;
    }
    const auto leaf = sumdb::record_hash(record->text);
    bool included = co_await with_tiles(
        database, head->size,
        [&](const sumdb::hash_reader& read) -> std::optional<bool> {
          auto proof = sumdb::prove_record(head->size, record->id, read);
          if (!proof) return std::nullopt;
          return sumdb::check_record(*proof, head->size, head->root, record->id, leaf);
        },
        why, deadline);
    if (!included) {
      detail = database.name + ": the lookup record is not in its signed tree" +
               (why.empty() ? "" : " (" + why + ")");
      co_return std::nullopt;
    }
    if (!co_await tree_extends_known(database, *head, why, deadline)) {
      detail = database.name + " misbehaves: " + why;
      spdlog::error("checksum database {}: {}", database.name, why);
      co_return std::nullopt;
    }

    const auto expected = sumdb::go_sum_hash(record->text, request.module_path, request.version,
                                             request.kind == endpoint::mod);
    if (!expected) detail = database.name + ": the record has no hash for it";
    co_return expected;
  }

  net::awaitable<sumdb_check> verify_against_sumdb(const protocol::module_request& request,
                                                   cache::entry_writer& entry, std::string& detail,
                                                   steady_clock::time_point deadline) {
    const auto& database = options_.sumdbs.front();
    auto reader = [&entry](std::uint64_t offset, std::size_t length) {
      return entry.read(offset, length);
    };
    const bool is_zip = request.kind == endpoint::zip;
    auto actual = sumdb::module_file_h1_hash(is_zip, entry.size(), reader);
    if (!actual) {
      // A zip that cannot be hashed is not the module; a go.mod that cannot be read back is
      // our failure.
      detail =
          (is_zip ? "cannot hash the zip: " : "cache read failed: ") + actual.error().message();
      co_return is_zip ? sumdb_check::mismatch : sumdb_check::unavailable;
    }

    auto expected = co_await proven_hash(request, detail, deadline);
    if (!expected) co_return sumdb_check::unavailable;
    if (*expected != *actual) {
      detail = "expected " + *expected + " (" + database.name + "), got " + *actual;
      co_return sumdb_check::mismatch;
    }
    co_return sumdb_check::ok;
  }

  // Every tier said not found: remember that briefly, unless an older positive answer exists
  // (a list or @latest that an upstream lost is better served stale than forgotten).
  fill_outcome remember_not_found(const protocol::module_request& request, std::string body) {
    auto existing = store_.stat(request.cache_key);
    if (existing && *existing && (*existing)->kind != cache::entry_kind::not_found) {
      return fill_outcome{false, 404, std::move(body), "-"};
    }
    auto created = store_.create(request.cache_key);
    if (created) {
      auto& entry = *created;
      cache::entry_meta meta;
      meta.kind = cache::entry_kind::not_found;
      meta.stored_at_ms = now_ms();
      if (entry->append(body) && entry->commit(meta)) return fill_outcome{true, 404, {}, "-"};
    }
    return fill_outcome{false, 404, std::move(body), "-"};
  }

  std::string fill_deadline_reason() const {
    return "timeout after " + upstream::format_duration(options_.fill_timeout) + " (fill deadline)";
  }

  // The fill's deadline passed: answered as when every tier failed, never cached.
  fill_outcome fill_timed_out(const protocol::module_request& request,
                              const std::string& tried) const {
    spdlog::warn("fill of {} stopped: {}", describe(request), fill_deadline_reason());
    return fill_outcome{
        false, options_.all_failed_502 ? 502 : 404,
        "not found: " + describe(request) + "\n" + tried + fill_deadline_reason() + "\n", "-"};
  }

  fill_outcome cache_failure(const boost::system::error_code& ec) const {
    spdlog::error("cache write failed: {}", ec.message());
    return fill_outcome{false, options_.all_failed_502 ? 502 : 404,
                        "not found: cache write failed: " + ec.message() + "\n", "-"};
  }
};

resolver::resolver(resolver_options options, cache::cache_store& store,
                   upstream::tier_factory make_tier, net::any_io_executor work_executor)
    : impl_(
          std::make_shared<impl>(std::move(options), store, make_tier, std::move(work_executor))) {}

resolver::~resolver() = default;

net::awaitable<void> resolver::handle(const server::request_view& request,
                                      server::response_writer& writer) {
  co_await impl_->handle(request, writer);
}

net::awaitable<resolver::database_answer> resolver::database_hash(std::string module_path,
                                                                  std::string version,
                                                                  bool go_mod) {
  if (auto exempt = impl_->sumdb_exempt(module_path)) {
    co_return database_answer{std::nullopt, std::string(*exempt)};
  }
  protocol::module_request request;
  request.kind = go_mod ? endpoint::mod : endpoint::zip;
  request.module_path = std::move(module_path);
  request.version = std::move(version);
  database_answer answer;
  answer.hash = co_await impl_->proven_hash(
      request, answer.why, std::chrono::steady_clock::now() + impl_->options_.fill_timeout);
  co_return answer;
}

void resolver::abandon_waiting() { impl_->flights_.close(); }

bool resolver::ready() const {
  auto usable = [](const std::vector<upstream::tier_spec>& tiers) {
    for (const auto& tier : tiers) {
      if (tier.type != upstream::tier_spec::kind::off) return true;
    }
    return false;
  };
  return usable(impl_->options_.tiers);
}

}  // namespace gomodproxy::resolver
