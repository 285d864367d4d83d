// The fill: the walk down a tier chain (fall-through, circuit breakers, hedging, the fill
// deadline), the attempts it starts, the verdict on each attempt that ends, and the commit of
// the answer that wins.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

#include "common/errc.hpp"
#include "common/log_if_thrown.hpp"
#include "protocol/request.hpp"
#include "resolver/body_check.hpp"
#include "resolver/resolver_impl.hpp"
#include "resolver/tier_walk.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;
using monitor::upstream_outcome;
using protocol::endpoint;

namespace {

using steady_clock = std::chrono::steady_clock;

bool is_immutable(endpoint kind) {
  // Lookup records and tiles never change (spec §5.6); /latest moves.
  return kind == endpoint::info || kind == endpoint::mod || kind == endpoint::zip ||
         kind == endpoint::sumdb_lookup || kind == endpoint::sumdb_tile;
}

}  // namespace

// What a tier attempt reports to the walk that started it.
struct resolver::impl::attempt_event {
  enum class type { answering, finished, hedge_due, fill_deadline } what = type::finished;
  std::size_t tier = 0;
  std::uint64_t hedge_generation = 0;
  upstream::fetch_result fetched;
  bool too_large = false;
  boost::system::error_code write_error;
  std::unique_ptr<cache::entry_writer> entry;
};

// Shared by a walk and its attempts, which may outlive it (an abandoned hedge).
struct resolver::impl::attempt_race {
  using event_channel = net::experimental::concurrent_channel<void(boost::system::error_code,
                                                                   std::shared_ptr<attempt_event>)>;
  attempt_race(const net::any_io_executor& executor, std::size_t tiers)
      : events(executor, 4 * tiers + 8) {}
  event_channel events;  // sized so try_send never finds it full
  std::atomic<bool> over{false};
  void post(std::shared_ptr<attempt_event> event) {
    (void)events.try_send(boost::system::error_code{}, std::move(event));
  }
};

// Walks the tiers for one request, on the work executor. Fall-through follows GOPROXY rules:
// not-found always moves on; an error moves on only after '|'; a body that fails
// verification moves on too, since that tier's answer is unusable whatever the separator.
// With hedge_after, a tier that has not started answering in time gets the next tier asked
// alongside; the first valid answer wins. The whole fill, verification included, ends by
// fill_timeout. `self` keeps the resolver alive for a fill that outlives its requests.
net::awaitable<fill_outcome> resolver::impl::fill(std::shared_ptr<impl> self,
                                                  protocol::module_request request) {
  const auto fill_deadline = steady_clock::now() + options_.fill_timeout;
  if (options_.offline) co_return co_await fill_offline(request, fill_deadline);
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

// Offline, every fill ends here, and every way to a tier or checksum database (a miss, an
// expired entry, verification, the lookups and tiles behind it) goes through a fill, so this is
// the one place that keeps them all from being asked. Not committed and not remembered as
// absent: the caller serves an expired entry it holds, and a later online run fills the gap.
net::awaitable<fill_outcome> resolver::impl::fill_offline(const protocol::module_request& request,
                                                          steady_clock::time_point fill_deadline) {
  if (request.kind == endpoint::latest) {
    // An @latest the cache holds, however old, is what the caller serves, never replaced.
    // Without one it is worked out as online when no tier serves it, from the cached list,
    // go.mod and .info.
    auto held = store_.stat(request.cache_key);
    const bool has_answer = held && *held && (*held)->kind == cache::entry_kind::expiring;
    if (!has_answer) {
      if (auto derived = co_await latest_from_list(request, fill_deadline)) {
        co_return std::move(*derived);
      }
    }
  }
  co_return fill_outcome{false, errc::not_found, "offline: not cached: " + describe(request) + "\n",
                         "-"};
}

net::awaitable<fill_outcome> resolver::impl::walk_tiers(std::shared_ptr<impl> self,
                                                        protocol::module_request request,
                                                        steady_clock::time_point fill_deadline) {
  walk_notes notes;
  const tier_chain& chain = chain_for(request);
  const auto kind = kind_of(request.kind);
  const std::uint64_t limit = body_limit(request.kind);
  tier_walk walk(hedge_delays(chain));
  auto race = std::make_shared<attempt_race>(executors_.fills, chain.tiers.size());
  // However the walk ends, attempts still running stop at their next chunk.
  struct end_race {
    attempt_race& race;
    explicit end_race(attempt_race& r) : race(r) {}
    end_race(const end_race&) = delete;
    end_race& operator=(const end_race&) = delete;
    ~end_race() { race.over.store(true); }
  } race_guard{*race};
  std::optional<boost::system::error_code> cache_error;
  // Started with the first attempt, never before: a walk that asks no tier asks no database.
  std::shared_ptr<sumdb_proof> proof;

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
        notes.tried += "off: module lookup disabled\n";
        walk.skip(true);
        return;
      }
      if (!chain.sources[i]) {
        notes.tried += tier.name + ": not available in this process\n";
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
        notes.tried += tier.name + ": skipped (circuit open)\n";
        notes.hard_failure = true;
        walk.skip(!tier.fall_through_on_error);
        continue;
      }
      walk.started(steady_clock::now());
      // The attempt's own deadlines, cut short by the fill's: it stops when the fill ends.
      auto limits = options_.deadlines;
      limits.total = std::clamp(
          std::chrono::ceil<std::chrono::milliseconds>(fill_deadline - steady_clock::now()),
          std::chrono::milliseconds(1), limits.total);
      if (!proof && needs_sumdb_check(request)) {
        proof = start_sumdb_proof(self, request, fill_deadline);
      }
      net::co_spawn(executors_.fills,
                    attempt(self, race, i, chain.sources[i], request, slots.health, limit, limits,
                            std::move(*created)),
                    log_if_thrown("a tier attempt"));
      return;
    }
  };

  net::steady_timer deadline_timer(executors_.fills, fill_deadline);
  deadline_timer.async_wait([race](const boost::system::error_code& ec) {
    if (ec) return;
    auto event = std::make_shared<attempt_event>();
    event->what = attempt_event::type::fill_deadline;
    race->post(std::move(event));
  });
  net::steady_timer hedge_timer(executors_.fills);
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
      co_return fill_timed_out(request, notes.tried);
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
    auto judged = co_await judge_attempt(request, chain, *event, notes, proof, fill_deadline);
    if (judged.fill_ends) co_return std::move(*judged.fill_ends);
    if (walk.finished(i, judged.verdict, chain.tiers[i].fall_through_on_error) ==
        tier_walk::step::start_next) {
      start_next();
    }
    if (cache_error) co_return cache_failure(*cache_error);
  }
  if (cache_error) co_return cache_failure(*cache_error);
  // The last attempts ran out with the fill (their totals were cut to its deadline) just before
  // the deadline's own event was taken: that is still a fill that timed out, and says so.
  if (notes.hard_failure && steady_clock::now() >= fill_deadline) {
    co_return fill_timed_out(request, notes.tried);
  }
  std::string body = "not found: " + describe(request) + "\n" + notes.tried;
  fill_outcome outcome{false, notes.hard_failure ? errc::upstream_unavailable : errc::not_found,
                       std::move(body), "-"};
  outcome.a_tier_lacked_it = notes.lacked;
  outcome.absent = !notes.hard_failure;
  co_return outcome;
}

// Judges one finished attempt. A body that passes every check (its structure, a checksum
// database's signature, verify before cache) is committed and wins the fill; one that fails a
// check, a not-found and a failure are noted and leave the walk a verdict to go on with.
net::awaitable<resolver::impl::attempt_judgement> resolver::impl::judge_attempt(
    const protocol::module_request& request, const tier_chain& chain, attempt_event& event,
    walk_notes& notes, const std::shared_ptr<sumdb_proof>& proof,
    steady_clock::time_point fill_deadline) {
  const auto kind = kind_of(request.kind);
  const auto& tier = chain.tiers[event.tier];
  const auto& slots = chain.slots[event.tier];
  const auto& fetched = event.fetched;
  auto ends_fill = [](fill_outcome outcome) {
    return attempt_judgement{attempt_verdict::failed, std::move(outcome)};
  };
  if (event.write_error) {
    count_attempt(slots, kind, upstream_outcome::ok, &fetched);  // the failure is ours
    co_return ends_fill(cache_failure(event.write_error));
  }
  auto verdict = attempt_verdict::failed;
  switch (fetched.result) {
    case upstream::outcome::ok: {
      auto& entry = event.entry;
      // Reading back, checking and hashing up to 500 MiB is CPU work: it runs on the checks
      // pool so the fills pool keeps serving other fills' sockets meanwhile, in one hop (each
      // hop is a wake-up of a checks thread and of the walk's again). The walk waits for it
      // here, so the entry has one user at a time.
      const bool hashed = needs_sumdb_check(request);
      struct checked_body {
        outcome_of<void> verdict;
        boost::system::result<std::string> h1 = std::string();
        // The first failed read of the staged body: then the verdicts above are about our
        // disk, not the upstream's answer.
        boost::system::error_code read_error;
      };
      auto checked = co_await net::co_spawn(
          executors_.checks,
          [this, &request, &entry, hashed]() -> net::awaitable<checked_body> {
            checked_body out;
            auto reader = [&entry, &out](std::uint64_t offset, std::size_t length) {
              auto got = entry->read(offset, length);
              if (!got && !out.read_error) out.read_error = got.error();
              return got;
            };
            out.verdict = check_body(request, entry->size(), reader);
            if (out.verdict && (request.kind == endpoint::sumdb_lookup ||
                                request.kind == endpoint::sumdb_latest)) {
              out.verdict = check_signed_answer(request, entry->size(), reader,
                                                sumdb_named(request.sumdb)->key);
            }
            if (out.verdict && hashed) {
              out.h1 =
                  sumdb::module_file_h1_hash(request.kind == endpoint::zip, entry->size(), reader);
            }
            co_return out;
          },
          net::use_awaitable);
      if (checked.read_error) {
        count_attempt(slots, kind, upstream_outcome::ok, &fetched);  // the failure is ours
        co_return ends_fill(cache_failure(checked.read_error, "read back"));
      }
      if (!checked.verdict) {
        const auto& bad = checked.verdict.error().detail;
        spdlog::warn("{} from {} rejected: {}", request.upstream_path, tier.name, bad);
        count_attempt(slots, kind, upstream_outcome::error, &fetched);
        note_problem(slots, kind, "invalid answer (failed verification)");
        notes.tried += tier.name + ": invalid answer: " + bad + "\n";
        notes.hard_failure = true;
        verdict = attempt_verdict::invalid;
        break;
      }
      if (hashed) {
        std::string detail;
        // The walk starts the proof with the attempt whose body this is.
        const auto sumdb_verdict =
            co_await verify_against_sumdb(request, checked.h1, *proof, detail);
        if (sumdb_verdict == sumdb_check::mismatch) {
          spdlog::error("integrity failure: {} {}@{} from {}: {}",
                        protocol::endpoint_name(request.kind), request.module_path, request.version,
                        tier.name, detail);
          if (metrics_ && slots.metrics) metrics_->count_integrity_failure(*slots.metrics);
          count_attempt(slots, kind, upstream_outcome::error, &fetched);
          note_problem(slots, kind, "checksum mismatch");
          notes.tried += tier.name + ": checksum mismatch: " + detail + "\n";
          notes.hard_failure = true;
          verdict = attempt_verdict::invalid;
          break;
        }
        if (sumdb_verdict == sumdb_check::unavailable) {
          // Nothing unverified is cached; another tier would meet the same database.
          if (steady_clock::now() >= fill_deadline) {
            count_attempt(slots, kind, upstream_outcome::ok, &fetched);
            co_return ends_fill(fill_timed_out(request, notes.tried));
          }
          spdlog::error("cannot verify {}@{}: {}", request.module_path, request.version, detail);
          count_attempt(slots, kind, upstream_outcome::ok, &fetched);
          notes.tried += "not verified: " + detail + "\n";
          // No tier gave an answer that could be verified: answered as when none answered,
          // whether the database failed or has no record of it.
          co_return ends_fill(fill_outcome{false, errc::upstream_unavailable,
                                           "not found: " + describe(request) + "\n" + notes.tried,
                                           "-"});
        }
      }
      cache::entry_meta meta;
      meta.kind =
          is_immutable(request.kind) ? cache::entry_kind::immutable : cache::entry_kind::expiring;
      meta.stored_at_ms = now_ms();
      meta.tier = tier.name;
      count_attempt(slots, kind, upstream_outcome::ok, &fetched);
      if (auto committed = entry->commit(meta); !committed) {
        co_return ends_fill(cache_failure(committed.error()));
      }
      co_return attempt_judgement{attempt_verdict::valid, fill_outcome{true, {}, {}, tier.name}};
    }
    case upstream::outcome::not_found:
      count_attempt(slots, kind, upstream_outcome::not_found, &fetched);
      notes.lacked = true;
      notes.tried += tier.name + ": " + fetched.reason + "\n";
      verdict = attempt_verdict::not_found;
      break;
    case upstream::outcome::error:
    case upstream::outcome::timeout:
      count_attempt(slots, kind,
                    fetched.result == upstream::outcome::timeout ? upstream_outcome::timeout
                                                                 : upstream_outcome::error,
                    &fetched);
      if (event.too_large) {
        note_problem(slots, kind, "response too large");
      } else {
        note_problem(slots, kind, fetched.reason, fetched.status);
      }
      notes.tried += tier.name + ": " +
                     (event.too_large ? std::string("response too large") : fetched.reason) + "\n";
      notes.hard_failure = true;
      break;
  }
  co_return attempt_judgement{verdict, std::nullopt};
}

const tier_chain& resolver::impl::chain_for(const protocol::module_request& request) const {
  if (!request.sumdb.empty()) {
    // answer() lets only configured databases through.
    return sumdb_chains_.find(request.sumdb)->second;
  }
  if (is_private(request.module_path)) {
    return private_chain_;
  }
  return public_chain_;
}

// When each tier of `chain` gets the next one asked alongside it.
std::vector<std::chrono::milliseconds> resolver::impl::hedge_delays(const tier_chain& chain) const {
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

// One tier attempt, detached on the work executor: streams the body into its own cache
// writer and reports the first bytes and the end to the race. Once the race is over it stops
// at the next chunk and its answer is dropped (its writer is never committed). An attempt
// with no first bytes after its tier's stall limit is reported stalled to the tier's health
// at that moment, not at its own deadline, so a hung tier is found while it is still hanging.
net::awaitable<void> resolver::impl::attempt(std::shared_ptr<impl> self,
                                             std::shared_ptr<attempt_race> race, std::size_t index,
                                             std::shared_ptr<upstream::tier> source,
                                             protocol::module_request request,
                                             std::optional<std::size_t> health_slot,
                                             std::uint64_t limit, upstream::deadlines limits,
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
  net::steady_timer stall_timer(executors_.fills);
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

// For the public /status page, which shows a reason carrying an upstream's words as its
// `status` only (the board applies that rule for every caller).
void resolver::impl::note_problem(const tier_slots& slots, monitor::request_kind kind,
                                  const std::string& reason, int status) {
  if (metrics_ && slots.metrics) {
    metrics_->note_upstream_problem(*slots.metrics, kind, reason, status);
  }
}

void resolver::impl::count_attempt(const tier_slots& slots, monitor::request_kind kind,
                                   upstream_outcome outcome,
                                   const upstream::fetch_result* fetched) {
  if (!metrics_ || !slots.metrics) return;
  std::optional<std::chrono::microseconds> ttfb;
  if (fetched && fetched->status != 0) ttfb = fetched->ttfb;
  metrics_->count_upstream(*slots.metrics, kind, outcome, ttfb);
}

// Every tier said not found: remember that briefly, unless an older positive answer exists
// (a list or @latest that an upstream lost is better served stale than forgotten).
fill_outcome resolver::impl::remember_not_found(const protocol::module_request& request,
                                                std::string body) {
  auto existing = store_.stat(request.cache_key);
  if (existing && *existing && (*existing)->kind != cache::entry_kind::not_found) {
    return fill_outcome{false, errc::not_found, std::move(body), "-"};
  }
  auto created = store_.create(request.cache_key);
  if (created) {
    auto& entry = *created;
    cache::entry_meta meta;
    meta.kind = cache::entry_kind::not_found;
    meta.stored_at_ms = now_ms();
    if (entry->append(body) && entry->commit(meta)) return fill_outcome{true, {}, {}, "-"};
  }
  return fill_outcome{false, errc::not_found, std::move(body), "-"};
}

std::string resolver::impl::fill_deadline_reason() const {
  return "timeout after " + upstream::format_duration(options_.fill_timeout) + " (fill deadline)";
}

// The fill's deadline passed: answered as when every tier failed, never cached.
fill_outcome resolver::impl::fill_timed_out(const protocol::module_request& request,
                                            const std::string& tried) const {
  spdlog::warn("fill of {} stopped: {}", describe(request), fill_deadline_reason());
  return fill_outcome{
      false, errc::upstream_unavailable,
      "not found: " + describe(request) + "\n" + tried + fill_deadline_reason() + "\n", "-"};
}

fill_outcome resolver::impl::cache_failure(const boost::system::error_code& ec,
                                           std::string_view operation) const {
  spdlog::error("cache {} failed: {}", operation, ec.message());
  return fill_outcome{
      false, ec, "not found: cache " + std::string(operation) + " failed: " + ec.message() + "\n",
      "-"};
}

}  // namespace gomodproxy::resolver
