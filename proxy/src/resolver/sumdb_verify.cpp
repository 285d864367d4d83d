// Verify before cache: a public go.mod or zip is hashed and checked against the first checksum
// database's record, proven in its signed tree, that tree proven to extend the last one seen.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "common/errc.hpp"
#include "common/log_if_thrown.hpp"
#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver_impl.hpp"
#include "resolver/verified_tree.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;
using protocol::endpoint;

namespace {

using steady_clock = std::chrono::steady_clock;

// At most this many of one proof's tiles are fetched at once. The go command fetches all of a
// proof's tiles together; a record proof names at most about two tiles per tile level (the
// record's path and the tree's right edge), so in trees below 2^32 records all of them travel at
// once, while one proof never holds more than this many upstream requests.
constexpr std::size_t max_tile_fetches_at_once = 8;

}  // namespace

// One tile a proof lacks: the path it reads, and the same tile when full, which starts with the
// same hashes when the database no longer serves the partial one.
struct resolver::impl::tile_fetch {
  sumdb::tile tile;  ///< at its exact width in the proof's tree
  std::string path;
  std::string full_path;
  /// The tile's bytes, or why it was not fetched.
  outcome_of<std::string> data = failure{errc::upstream_unavailable, "not fetched"};
  bool from_full_tile = false;  ///< `data` is the full tile's
};

// The outcome of tree_extends_known run beside a record's inclusion proof; written by
// check_consistency, read by proven_hash only after `done`.
struct resolver::impl::consistency_check {
  explicit consistency_check(const net::any_io_executor& executor) : done(executor, 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> done;
  outcome_of<void> consistent = failure{errc::upstream_unavailable, "not checked"};
  std::vector<std::string> used_tiles;  ///< cache keys, dropped by proven_hash on a failure
};

// Shared by with_tiles and the workers it starts; each worker claims fetches by `next`, so each
// fetch is written by one worker, and read by with_tiles only after every worker has sent on
// `done`.
struct resolver::impl::tile_batch {
  tile_batch(const net::any_io_executor& executor, std::vector<tile_fetch> wanted,
             std::size_t workers)
      : fetches(std::move(wanted)), done(executor, workers) {}
  std::vector<tile_fetch> fetches;
  std::atomic<std::size_t> next{0};
  net::experimental::concurrent_channel<void(boost::system::error_code)> done;
};

net::awaitable<resolver::database_answer> resolver::database_hash(std::string module_path,
                                                                  std::string version,
                                                                  bool go_mod) {
  if (auto exempt = impl_->sumdb_exempt(module_path)) {
    co_return database_answer{std::nullopt, std::string(*exempt), {}};
  }
  protocol::module_request request;
  request.kind = go_mod ? endpoint::mod : endpoint::zip;
  request.module_path = std::move(module_path);
  request.version = std::move(version);
  database_answer answer;
  auto proven = co_await impl_->proven_hash(
      request, std::chrono::steady_clock::now() + impl_->options_.fill_timeout);
  if (proven) {
    answer.hash = std::move(*proven);
  } else {
    answer.code = proven.error().code;
    answer.why = std::move(proven.error().detail);
  }
  co_return answer;
}

std::optional<std::string_view> sumdb_exemption(const resolver_options& options,
                                                const std::string& module_path) {
  if (options.sumdbs.empty()) return "no checksum database";
  if (!options.private_patterns.empty() &&
      protocol::match_prefix_patterns(options.private_patterns, module_path)) {
    return "private module";
  }
  if (!options.no_sumdb_patterns.empty() &&
      protocol::match_prefix_patterns(options.no_sumdb_patterns, module_path)) {
    return "matches no_sumdb";
  }
  return std::nullopt;
}

std::optional<std::string_view> resolver::impl::sumdb_exempt(const std::string& module_path) const {
  return sumdb_exemption(options_, module_path);
}

bool resolver::impl::needs_sumdb_check(const protocol::module_request& request) const {
  return options_.verify_sumdb &&
         (request.kind == endpoint::zip || request.kind == endpoint::mod) &&
         !sumdb_exempt(request.module_path);
}

// Set once by run_sumdb_proof, read by the walk's verdicts (the walk coroutine and the proof
// may run on different threads of the fills pool).
struct resolver::impl::sumdb_proof {
  explicit sumdb_proof(const net::any_io_executor& executor) : proven(executor, 0) {}
  // Closed when `hash` is final: a close completes every pending and later
  // receive, however many attempts' verdicts wait for it.
  net::experimental::concurrent_channel<void(boost::system::error_code)> proven;
  std::mutex mutex;
  /// The proven hash, or why the database could not vouch.
  outcome_of<std::string> hash = failure{errc::upstream_unavailable, "not proven"};
};

// Started with the walk's first tier attempt, so the lookup, the tiles it needs and the tree's
// consistency proof travel while the body does: a cold verified miss costs the longer of the
// two, not their sum. One per walk: a second tier's body is checked against the same proof.
// The lookup and tiles are fills of their own, shared with any other fill asking for them and
// cached as when asked after the body. A walk that ends first (every tier lacked the module,
// the fill deadline) leaves the proof to finish unread, by the same deadline.
std::shared_ptr<resolver::impl::sumdb_proof> resolver::impl::start_sumdb_proof(
    std::shared_ptr<impl> self, const protocol::module_request& request,
    steady_clock::time_point deadline) {
  auto proof = std::make_shared<sumdb_proof>(executors_.fills);
  net::co_spawn(executors_.fills, run_sumdb_proof(std::move(self), request, proof, deadline),
                log_if_thrown("a checksum database proof"));
  return proof;
}

net::awaitable<void> resolver::impl::run_sumdb_proof(std::shared_ptr<impl> self,
                                                     protocol::module_request request,
                                                     std::shared_ptr<sumdb_proof> proof,
                                                     steady_clock::time_point deadline) {
  outcome_of<std::string> hash;
  // The walk waits for the close below: it must come whatever happens.
  try {
    hash = co_await self->proven_hash(request, deadline);
  } catch (const std::exception& error) {
    hash = failure{errc::upstream_unavailable, std::string("internal error: ") + error.what()};
  }
  {
    std::lock_guard lock(proof->mutex);
    proof->hash = std::move(hash);
  }
  proof->proven.close();
}

net::awaitable<resolver::impl::sumdb_check> resolver::impl::verify_against_sumdb(
    const protocol::module_request& request, const boost::system::result<std::string>& actual,
    sumdb_proof& proof, std::string& detail) {
  const auto& database = options_.sumdbs.front();
  const bool is_zip = request.kind == endpoint::zip;
  if (!actual) {
    // A zip that cannot be hashed is not the module; a go.mod that cannot be read back is
    // our failure.
    detail = (is_zip ? "cannot hash the zip: " : "cache read failed: ") + actual.error().message();
    co_return is_zip ? sumdb_check::mismatch : sumdb_check::unavailable;
  }

  (void)co_await proof.proven.async_receive(net::as_tuple(net::use_awaitable));
  std::optional<std::string> expected;
  {
    std::lock_guard lock(proof.mutex);
    if (proof.hash) {
      expected = *proof.hash;
    } else {
      detail = proof.hash.error().detail;
    }
  }
  if (!expected) co_return sumdb_check::unavailable;
  if (*expected != *actual) {
    detail = "expected " + *expected + " (" + database.name + "), got " + *actual;
    co_return sumdb_check::mismatch;
  }
  co_return sumdb_check::ok;
}

// The hash the first checksum database gives for the request's zip or go.mod, once its record
// is proven in the signed tree and that tree proven to extend the newest one seen. A failure
// when the database cannot vouch for it: the lookup's own (not_found when the database has no
// record of it, upstream_unavailable when it did not answer), verification_failed for an answer
// or tree that does not prove what it must, and what stopped a proof from telling.
net::awaitable<outcome_of<std::string>> resolver::impl::proven_hash(
    const protocol::module_request& request, steady_clock::time_point deadline) {
  const auto& database = options_.sumdbs.front();
  auto answer = co_await cached_body(
      "/sumdb/" + database.name + protocol::sumdb_lookup_path(request.module_path, request.version),
      deadline);
  if (!answer) {
    co_return failure{answer.error().code, database.name + " lookup: " + answer.error().detail};
  }
  // Checked when it was cached; checked again here because the proof needs its parts.
  auto record = sumdb::parse_lookup_response(*answer);
  if (!record) {
    co_return verification_failed(database.name + " lookup: " + record.error().message());
  }
  auto tree_text = sumdb::open_note(record->signed_tree, database.key);
  auto head = tree_text ? sumdb::parse_tree_head(*tree_text)
                        : boost::system::result<sumdb::tree_head>(tree_text.error());
  if (!head || record->id >= head->size) {
    co_return verification_failed(database.name + " lookup: tree head not verified");
  }
  // The tree is checked against the one remembered while the record's inclusion is proven, so
  // the tiles of both proofs travel together instead of in two rounds. (The go command checks
  // the tree first, then the record; neither proof depends on the other.)
  auto consistency = std::make_shared<consistency_check>(executors_.fills);
  net::co_spawn(executors_.fills,
                check_consistency(shared_from_this(), *head, consistency, deadline),
                log_if_thrown("a checksum database consistency check"));
  const auto leaf = sumdb::record_hash(record->text);
  std::vector<std::string> record_tiles;
  auto included = co_await with_tiles(
      database, head->size, head->root,
      [&](const sumdb::hash_reader& read) -> std::optional<bool> {
        auto proof = sumdb::prove_record(head->size, record->id, read);
        if (!proof) return std::nullopt;
        return sumdb::check_record(*proof, head->size, head->root, record->id, leaf);
      },
      record_tiles, deadline);
  (void)co_await consistency->done.async_receive(net::as_tuple(net::use_awaitable));
  // Only now that both proofs have ended: they share tiles, and one dropped while the other is
  // still reading it would fail that one too, with a reason that is not its own.
  const bool proven_included = included && *included;
  if (!proven_included) drop_tiles(record_tiles);
  if (!consistency->consistent) drop_tiles(consistency->used_tiles);
  if (!proven_included) {
    // Disproven, or a proof that could not tell (and says why).
    co_return failure{
        included ? make_error_code(errc::verification_failed) : included.error().code,
        database.name + ": the lookup record is not in its signed tree" +
            (included || included.error().detail.empty() ? ""
                                                         : " (" + included.error().detail + ")")};
  }
  if (!consistency->consistent) {
    const auto& why = consistency->consistent.error();
    spdlog::error("checksum database {}: {}", database.name, why.detail);
    co_return failure{why.code, database.name + " misbehaves: " + why.detail};
  }

  auto expected = sumdb::go_sum_hash(record->text, request.module_path, request.version,
                                     request.kind == endpoint::mod);
  if (!expected) {
    co_return verification_failed(database.name + ": the record has no hash for it");
  }
  co_return std::move(*expected);
}

void resolver::impl::drop_tiles(const std::vector<std::string>& cache_keys) {
  for (const auto& key : cache_keys) (void)store_.remove(key);
}

// Runs `compute` over the database's tiles for the tree of `size` records with root `root`,
// fetching the tiles it asks for and running it again (a proof names all it lacks at once: two
// rounds). Every tile it read is then checked whole, as the go command's tile reader checks what
// it loads: the tiles holding the tree hash must hash to `root` and each other tile must hash to
// its parent tile's hash, so a wrong hash no proof reads is caught too (go clients would refuse
// such a tile from us). Those tiles travel in the same round as the ones the proof lacks. Returns
// compute's verdict (true: proven, false: disproven), or a failure when it could not tell:
// verification_failed when the tiles are not the tree's or lack what the proof needs, a tile's
// fetch's own failure (cached_body's) when one could not be had. `used_tiles` gets the cache keys
// of the tiles it used, for the caller to drop on a failure (drop_tiles), so a bad one is fetched
// anew next time; not here, since a proof running beside this one may be reading the same tiles.
net::awaitable<outcome_of<bool>> resolver::impl::with_tiles(
    const sumdb_options& database, std::int64_t size, const sumdb::tlog_hash& root,
    const std::function<std::optional<bool>(const sumdb::hash_reader&)>& compute,
    std::vector<std::string>& used_tiles, steady_clock::time_point deadline) {
  const std::string prefix = "/sumdb/" + database.name + "/";
  std::map<std::string, std::string> tiles;  // tile path -> bytes at its exact width at `size`
  std::vector<sumdb::tile> held;
  for (int round = 0; round < 8; ++round) {
    std::vector<sumdb::tile> missing;
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
        auto found = tiles.find(sumdb::tile_path(tile));
        if (found == tiles.end()) {
          if (std::find(missing.begin(), missing.end(), tile) == missing.end()) {
            missing.push_back(tile);
          }
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
    if (verdict && !*verdict) co_return false;
    if (!verdict && missing.empty()) {
      co_return verification_failed("tiles do not hold the hashes the proof needs");
    }
    std::vector<sumdb::tile> wanted_tiles = held;
    wanted_tiles.insert(wanted_tiles.end(), missing.begin(), missing.end());
    auto plan = sumdb::authenticating_tiles(size, wanted_tiles);
    if (!plan)
      co_return verification_failed("cannot plan the tiles of the tree of " + std::to_string(size));
    std::vector<tile_fetch> wanted;
    for (const sumdb::tile& tile : *plan) {
      auto path = sumdb::tile_path(tile);
      if (tiles.contains(path)) continue;
      auto whole = tile;
      whole.width = 1 << tile.height;
      tile_fetch fetch;
      fetch.tile = tile;
      fetch.path = std::move(path);
      fetch.full_path = sumdb::tile_path(whole);
      wanted.push_back(std::move(fetch));
    }
    if (wanted.empty()) {
      // The proof holds and every tile it needs is here: check them all whole.
      if (auto fits = sumdb::check_records_in_tree(size, root, tiles, {}); !fits) {
        co_return fits.error();
      }
      co_return true;
    }
    auto fetched = co_await fetch_tiles(database, std::move(wanted), deadline);
    for (auto& fetch : fetched) {
      if (fetch.data) {
        used_tiles.push_back(prefix + (fetch.from_full_tile ? fetch.full_path : fetch.path));
      }
    }
    // Every fetch has ended; the first failure in the proof's order is the one reported.
    for (auto& fetch : fetched) {
      if (!fetch.data) {
        co_return failure{fetch.data.error().code, fetch.path + ": " + fetch.data.error().detail};
      }
    }
    for (auto& fetch : fetched) {
      // A full tile stands in for a partial one the database no longer serves: its first
      // hashes are the partial tile's.
      const auto width = static_cast<std::size_t>(fetch.tile.width) * 32;
      if (fetch.from_full_tile && fetch.data->size() > width) fetch.data->resize(width);
      held.push_back(fetch.tile);
      tiles.emplace(std::move(fetch.path), std::move(*fetch.data));
    }
  }
  co_return verification_failed("tiles kept missing");
}

// The tiles of `wanted`, fetched through cached_body (so each is shared with any other fill
// asking for it, and cached) at most max_tile_fetches_at_once at a time, as the go command's
// client fetches a proof's tiles together: a proof needing several tiles waits about one
// round trip for them, not one per tile. Returns when every fetch has ended, each with its
// bytes or why it has none.
net::awaitable<std::vector<resolver::impl::tile_fetch>> resolver::impl::fetch_tiles(
    const sumdb_options& database, std::vector<tile_fetch> wanted,
    steady_clock::time_point deadline) {
  if (wanted.empty()) co_return wanted;
  const std::size_t workers = std::min(wanted.size(), max_tile_fetches_at_once);
  auto batch = std::make_shared<tile_batch>(executors_.fills, std::move(wanted), workers);
  const std::string prefix = "/sumdb/" + database.name + "/";
  for (std::size_t i = 0; i < workers; ++i) {
    net::co_spawn(executors_.fills, fetch_tile_worker(shared_from_this(), batch, prefix, deadline),
                  log_if_thrown("a checksum database tile fetch"));
  }
  for (std::size_t i = 0; i < workers; ++i) {
    (void)co_await batch->done.async_receive(net::as_tuple(net::use_awaitable));
  }
  co_return std::move(batch->fetches);
}

// Fetches the batch's tiles one after another until none is left unclaimed; sends on `done`
// once, whatever happens, since fetch_tiles waits for every worker.
net::awaitable<void> resolver::impl::fetch_tile_worker(std::shared_ptr<impl> self,
                                                       std::shared_ptr<tile_batch> batch,
                                                       std::string prefix,
                                                       steady_clock::time_point deadline) {
  while (true) {
    const std::size_t claimed = batch->next.fetch_add(1);
    if (claimed >= batch->fetches.size()) break;
    tile_fetch& fetch = batch->fetches[claimed];
    try {
      fetch.data = co_await self->cached_body(prefix + fetch.path, deadline);
      if (!fetch.data && fetch.full_path != fetch.path) {
        fetch.data = co_await self->cached_body(prefix + fetch.full_path, deadline);
        fetch.from_full_tile = fetch.data.has_value();
      }
    } catch (const std::exception& error) {
      fetch.data =
          failure{errc::upstream_unavailable, std::string("internal error: ") + error.what()};
    } catch (...) {
      fetch.data = failure{errc::upstream_unavailable, "internal error: unknown exception"};
    }
  }
  (void)batch->done.try_send(boost::system::error_code{});
}

// Runs tree_extends_known for the first checksum database and sends on `check->done` once,
// whatever happens, since proven_hash waits for it.
net::awaitable<void> resolver::impl::check_consistency(std::shared_ptr<impl> self,
                                                       sumdb::tree_head head,
                                                       std::shared_ptr<consistency_check> check,
                                                       steady_clock::time_point deadline) {
  try {
    check->consistent = co_await self->tree_extends_known(self->options_.sumdbs.front(), head,
                                                          check->used_tiles, deadline);
  } catch (const std::exception& error) {
    check->consistent =
        failure{errc::upstream_unavailable, std::string("internal error: ") + error.what()};
  } catch (...) {
    check->consistent = failure{errc::upstream_unavailable, "internal error: unknown exception"};
  }
  (void)check->done.try_send(boost::system::error_code{});
}

// The newest tree head this cache has verified for `database`, kept under a key no request
// can produce; a tree that does not extend it (or is not extended by it) is a fork:
// verification_failed. A proof that could not tell fails with its own code, under the same
// words.
net::awaitable<outcome_of<void>> resolver::impl::tree_extends_known(
    const sumdb_options& database, const sumdb::tree_head& head,
    std::vector<std::string>& used_tiles, steady_clock::time_point deadline) {
  const std::optional<sumdb::tree_head> known = remembered_tree(store_, database.name);
  if (known && known->size == head.size && known->root != head.root) {
    co_return verification_failed("two different trees of size " + std::to_string(head.size));
  }
  if (known && known->size != head.size) {
    const auto& older = head.size < known->size ? head : *known;
    const auto& newer = head.size < known->size ? *known : head;
    auto consistent = co_await with_tiles(
        database, newer.size, newer.root,
        [&](const sumdb::hash_reader& read) -> std::optional<bool> {
          auto proof = sumdb::prove_tree(newer.size, older.size, read);
          if (!proof) return std::nullopt;
          return sumdb::check_tree(*proof, newer.size, newer.root, older.size, older.root);
        },
        used_tiles, deadline);
    if (!consistent || !*consistent) {
      const std::string why = consistent ? std::string() : consistent.error().detail;
      co_return failure{
          consistent ? make_error_code(errc::verification_failed) : consistent.error().code,
          "tree of size " + std::to_string(newer.size) + " does not extend the tree of size " +
              std::to_string(older.size) + (why.empty() ? "" : " (" + why + ")")};
    }
  }
  // Another fill or an import may have remembered a newer tree while this one was proving;
  // the stored one stays then. A failed write only costs re-proving against the older tree.
  (void)remember_tree(store_, database.name, head);
  co_return outcome_of<void>();
}

}  // namespace gomodproxy::resolver
