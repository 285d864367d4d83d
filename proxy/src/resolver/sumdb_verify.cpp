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

#include "errc.hpp"
#include "log_if_thrown.hpp"
#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver_impl.hpp"
#include "resolver/verified_tree.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
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
  std::string path;
  std::string full_path;
  std::optional<std::string> data;  ///< nullopt: not fetched, see `why`
  std::string why;
};

// The outcome of tree_extends_known run beside a record's inclusion proof; written by
// check_consistency, read by proven_hash only after `done`.
struct resolver::impl::consistency_check {
  explicit consistency_check(net::any_io_executor executor) : done(std::move(executor), 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> done;
  bool consistent = false;
  std::string why;
};

// Shared by with_tiles and the workers it starts; each worker claims fetches by `next`, so each
// fetch is written by one worker, and read by with_tiles only after every worker has sent on
// `done`.
struct resolver::impl::tile_batch {
  tile_batch(net::any_io_executor executor, std::vector<tile_fetch> wanted, std::size_t workers)
      : fetches(std::move(wanted)), done(std::move(executor), workers) {}
  std::vector<tile_fetch> fetches;
  std::atomic<std::size_t> next{0};
  net::experimental::concurrent_channel<void(boost::system::error_code)> done;
};

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
  explicit sumdb_proof(net::any_io_executor executor) : proven(std::move(executor), 0) {}
  // Closed when `hash` and `detail` are final: a close completes every pending and later
  // receive, however many attempts' verdicts wait for it.
  net::experimental::concurrent_channel<void(boost::system::error_code)> proven;
  std::mutex mutex;
  std::optional<std::string> hash;  ///< nullopt: the database could not vouch, see `detail`
  std::string detail;
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
  std::string detail;
  std::optional<std::string> hash;
  // The walk waits for the close below: it must come whatever happens.
  try {
    hash = co_await self->proven_hash(request, detail, deadline);
  } catch (const std::exception& error) {
    hash.reset();
    detail = std::string("internal error: ") + error.what();
  }
  {
    std::lock_guard lock(proof->mutex);
    proof->hash = std::move(hash);
    proof->detail = std::move(detail);
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
    expected = proof.hash;
    if (!expected) detail = proof.detail;
  }
  if (!expected) co_return sumdb_check::unavailable;
  if (*expected != *actual) {
    detail = "expected " + *expected + " (" + database.name + "), got " + *actual;
    co_return sumdb_check::mismatch;
  }
  co_return sumdb_check::ok;
}

// The hash the first checksum database gives for the request's zip or go.mod, once its record
// is proven in the signed tree and that tree proven to extend the newest one seen; nullopt
// with `detail` when the database cannot vouch for it.
net::awaitable<std::optional<std::string>> resolver::impl::proven_hash(
    const protocol::module_request& request, std::string& detail,
    steady_clock::time_point deadline) {
  const auto& database = options_.sumdbs.front();
  std::string why;
  auto answer = co_await cached_body(
      "/sumdb/" + database.name + protocol::sumdb_lookup_path(request.module_path, request.version),
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
  // The tree is checked against the one remembered while the record's inclusion is proven, so
  // the tiles of both proofs travel together instead of in two rounds. (The go command checks
  // the tree first, then the record; neither proof depends on the other.)
  auto consistency = std::make_shared<consistency_check>(executors_.fills);
  net::co_spawn(executors_.fills,
                check_consistency(shared_from_this(), *head, consistency, deadline),
                log_if_thrown("a checksum database consistency check"));
  const auto leaf = sumdb::record_hash(record->text);
  bool included = co_await with_tiles(
      database, head->size,
      [&](const sumdb::hash_reader& read) -> std::optional<bool> {
        auto proof = sumdb::prove_record(head->size, record->id, read);
        if (!proof) return std::nullopt;
        return sumdb::check_record(*proof, head->size, head->root, record->id, leaf);
      },
      why, deadline);
  (void)co_await consistency->done.async_receive(net::as_tuple(net::use_awaitable));
  if (!included) {
    detail = database.name + ": the lookup record is not in its signed tree" +
             (why.empty() ? "" : " (" + why + ")");
    co_return std::nullopt;
  }
  if (!consistency->consistent) {
    detail = database.name + " misbehaves: " + consistency->why;
    spdlog::error("checksum database {}: {}", database.name, consistency->why);
    co_return std::nullopt;
  }

  const auto expected = sumdb::go_sum_hash(record->text, request.module_path, request.version,
                                           request.kind == endpoint::mod);
  if (!expected) detail = database.name + ": the record has no hash for it";
  co_return expected;
}

// Runs `compute` over the database's tiles for a tree of `size` records, fetching the tiles
// it asks for and running it again (a proof names all it lacks at once: two rounds). The tiles
// need no trust: what is computed from them is checked against signed roots. Returns compute's
// verdict; on a failed check the tiles used are dropped from the cache, so a bad one is
// fetched anew next time.
net::awaitable<bool> resolver::impl::with_tiles(
    const sumdb_options& database, std::int64_t size,
    const std::function<std::optional<bool>(const sumdb::hash_reader&)>& compute, std::string& why,
    steady_clock::time_point deadline) {
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
    std::vector<tile_fetch> wanted;
    for (auto& [path, full_path] : missing) {
      const bool named_before = std::any_of(wanted.begin(), wanted.end(),
                                            [&](const tile_fetch& f) { return f.path == path; });
      if (!named_before)
        wanted.push_back(tile_fetch{std::move(path), std::move(full_path), std::nullopt, {}});
    }
    auto fetched = co_await fetch_tiles(database, std::move(wanted), deadline);
    // Every fetch has ended; the first failure in the proof's order is the one reported.
    for (auto& fetch : fetched) {
      if (!fetch.data) {
        why = fetch.path + ": " + fetch.why;
        co_return false;
      }
    }
    for (auto& fetch : fetched) tiles.emplace(std::move(fetch.path), std::move(*fetch.data));
  }
  why = "tiles kept missing";
  co_return false;
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
      fetch.data = co_await self->cached_body(prefix + fetch.path, fetch.why, deadline);
      if (!fetch.data && fetch.full_path != fetch.path) {
        fetch.data = co_await self->cached_body(prefix + fetch.full_path, fetch.why, deadline);
      }
    } catch (const std::exception& error) {
      fetch.data.reset();
      fetch.why = std::string("internal error: ") + error.what();
    } catch (...) {
      fetch.data.reset();
      fetch.why = "internal error: unknown exception";
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
                                                          check->why, deadline);
  } catch (const std::exception& error) {
    check->consistent = false;
    check->why = std::string("internal error: ") + error.what();
  } catch (...) {
    check->consistent = false;
    check->why = "internal error: unknown exception";
  }
  (void)check->done.try_send(boost::system::error_code{});
}

// The newest tree head this cache has verified for `database`, kept under a key no request
// can produce; a tree that does not extend it (or is not extended by it) is a fork.
net::awaitable<bool> resolver::impl::tree_extends_known(const sumdb_options& database,
                                                        const sumdb::tree_head& head,
                                                        std::string& why,
                                                        steady_clock::time_point deadline) {
  const std::optional<sumdb::tree_head> known = remembered_tree(store_, database.name);
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
  // Another fill or an import may have remembered a newer tree while this one was proving;
  // the stored one stays then. A failed write only costs re-proving against the older tree.
  (void)remember_tree(store_, database.name, head);
  co_return true;
}

}  // namespace gomodproxy::resolver
