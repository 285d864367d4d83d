// @latest worked out from @v/list, as the go command does, when no tier serves @latest.
#include <string>
#include <utility>
#include <vector>

#include "protocol/escape.hpp"
#include "resolver/latest_from_list.hpp"
#include "resolver/resolver_impl.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;

namespace {

// The tier named for an @latest worked out from @v/list (access log, cache metadata).
constexpr const char* derived_latest_tier = "@v/list";

}  // namespace

// What the go command does when a proxy has no @latest (cmd/go/internal/modfetch/proxy.go,
// modload/query.go): the newest tagged version of @v/list that the newest version's go.mod
// does not retract, release before pre-release. The list, go.mod and .info come through this
// cache (and so through the tiers, verified); the answer is kept for the list TTL.
net::awaitable<std::optional<fill_outcome>> resolver::impl::latest_from_list(
    const protocol::module_request& request, std::chrono::steady_clock::time_point deadline) {
  const std::string base = "/" + protocol::escape_case(request.module_path) + "/@v/";
  // A derivation that fails leaves the tiers' own answer standing: its failures are not read.
  auto file = [&](const std::string& version, const char* suffix) {
    return cached_body(base + protocol::escape_case(version) + suffix, deadline);
  };
  auto list = co_await cached_body(base + "list", deadline);
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
  co_return fill_outcome{true, {}, {}, derived_latest_tier};
}

}  // namespace gomodproxy::resolver
