// The Prometheus metric families of gomodproxy: built once at start-up, every label value from a
// closed set (endpoint kind, result, outcome, tier name from config; never a module path), and
// their text exposition for /metrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gomodproxy::monitor {

/// Label `kind`: what a request asked for.
enum class request_kind : std::uint8_t { list, latest, info, mod, zip, query, sumdb, other };
inline constexpr std::size_t request_kind_count = 8;

/// Label `result` of a cache lookup: a fresh entry, nothing usable, or an expired entry that
/// is kept as the stale-if-error fallback while a fill runs.
enum class cache_result : std::uint8_t { hit, miss, stale };
inline constexpr std::size_t cache_result_count = 3;

/// Label `outcome` of one tier attempt; `skipped` means the circuit breaker kept the request
/// away from the tier.
enum class upstream_outcome : std::uint8_t { ok, not_found, error, timeout, skipped };
inline constexpr std::size_t upstream_outcome_count = 5;

/// Labels of gomodproxy_unauthorized_total: the kind of path a 401 answered (`route`), and
/// whether the request carried no usable credential or one that matched no token (`reason`).
enum class refused_route : std::uint8_t { client, admin };
enum class refused_because : std::uint8_t { missing, invalid };

std::string_view label(request_kind kind);
std::string_view label(cache_result result);
std::string_view label(upstream_outcome outcome);

/// What the cache holds right now (cache_store::stats(), usage() and memory()).
struct cache_figures {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;               ///< body bytes of committed entries
  std::uint64_t max_bytes = 0;           ///< the size cap on the directory; 0: none
  std::uint64_t disk_bytes = 0;          ///< the directory's size on disk when last measured
  std::uint64_t evictions = 0;           ///< entries the cap evicted (over the directory's life)
  std::uint64_t evicted_bytes = 0;       ///< their body bytes
  std::uint64_t memory_limit_bytes = 0;  ///< the store's memory budget (--cache-memory)
  std::uint64_t memory_block_bytes = 0;  ///< metadata blocks held in that budget
  std::uint64_t memory_write_buffer_bytes = 0;  ///< unflushed writes held in that budget
  std::uint64_t memory_table_reader_bytes = 0;  ///< indexes and filters of open table files
};

class status_board;
struct status_report;

struct metrics_layout {
  /// Distinct tier names, the values of the `upstream`, `from` and `to` labels.
  std::vector<std::string> tiers;
  /// Tier chains in walk order (indexes into `tiers`); their consecutive pairs are the
  /// fallbacks series created at start-up.
  std::vector<std::vector<std::size_t>> chains;
};

/// Owns the registry and every family. Recording calls are thread-safe and, apart from
/// prometheus-cpp's per-histogram mutex, lock-free: every series the data path touches is
/// created in the constructor, so no labels are built per request (only a status code outside
/// the usual set, or a fallback between tiers of different chains, takes the family's lock).
/// Off the data path, count_probe(), the note_ calls and status() take the status board's
/// mutex.
/// Tier indexes are positions in layout.tiers; an index out of range is ignored.
class metrics final {
 public:
  /// `now` is the wall clock of the status board (default: the system clock).
  explicit metrics(metrics_layout layout,
                   std::function<std::chrono::system_clock::time_point()> now = {});
  ~metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  const std::vector<std::string>& tiers() const { return tiers_; }
  /// Position of `name` in layout.tiers; nullopt when it is not a monitored tier.
  std::optional<std::size_t> tier_index(std::string_view name) const;

  /// One answered protocol request: gomodproxy_requests_total{kind,code} and
  /// gomodproxy_request_duration_seconds{kind}.
  void count_request(request_kind kind, int status, std::chrono::nanoseconds duration);
  void count_cache_lookup(request_kind kind, cache_result result);
  /// A stale entry was served because every tier failed (stale-if-error).
  void count_stale_served(request_kind kind);
  /// One tier attempt; `ttfb` when response headers arrived.
  void count_upstream(std::size_t tier, request_kind kind, upstream_outcome outcome,
                      std::optional<std::chrono::microseconds> ttfb);
  /// A body from `tier` whose h1 hash the checksum database contradicts:
  /// gomodproxy_integrity_failures_total{upstream}.
  void count_integrity_failure(std::size_t tier);
  /// The tier walk moved on from tier `from` to tier `to`.
  void count_fallback(std::size_t from, std::size_t to);
  void count_singleflight_shared();
  void inflight_started();
  void inflight_finished();
  void count_bytes_sent(std::uint64_t bytes);
  /// A request answered 401: gomodproxy_unauthorized_total{route,reason}.
  void count_unauthorized(refused_route route, refused_because reason);
  /// One active probe of `tier`: `ttfb` (when the tier answered) and `total` are kept as the
  /// last probe's gomodproxy_probe_ttfb_seconds and gomodproxy_probe_duration_seconds.
  void count_probe(std::size_t tier, bool success, std::optional<std::chrono::microseconds> ttfb,
                   std::chrono::microseconds total);

  /// A problem with a tier for the recent-errors list of /status: a failed attempt of a
  /// request of `kind`, with a one-line `reason` ("timeout after 10s") and the HTTP `status`
  /// it came with (0: none). The page is readable by anyone who reaches the proxy, so a reason
  /// carrying an upstream's words is shown as its status only (status_board::record_problem).
  void note_upstream_problem(std::size_t tier, request_kind kind, std::string_view reason,
                             int status = 0);
  /// A failed active probe of `tier`, listed like note_upstream_problem with kind "probe".
  void note_probe_problem(std::size_t tier, std::string_view reason, int status = 0);

  /// Sources read at every serialize(); set them at start-up, before serving. Both default to
  /// "nothing known" (0 entries; every tier up).
  void set_cache_source(std::function<cache_figures()> source);
  void set_up_source(std::function<bool(std::size_t tier)> source);

  /// The Prometheus text exposition format (version 0.0.4) of every family. Thread-safe.
  std::string serialize() const;
  /// What /status and /status.json show, as of now (status_board.hpp has the type; both
  /// sources are read). Thread-safe.
  status_report status() const;

 private:
  using kind_counters = std::array<prometheus::Counter*, request_kind_count>;

  std::vector<std::string> tiers_;
  std::shared_ptr<prometheus::Registry> registry_;

  // Status codes the server answers with; series for them exist from the start.
  static constexpr std::array<int, 8> known_codes_{200, 400, 404, 405, 410, 500, 502, 503};
  std::array<std::array<prometheus::Counter*, known_codes_.size()>, request_kind_count> requests_{};
  prometheus::Family<prometheus::Counter>* requests_family_ = nullptr;  // for other codes
  std::array<prometheus::Histogram*, request_kind_count> request_duration_{};
  std::array<kind_counters, cache_result_count> cache_lookups_{};
  kind_counters stale_served_{};
  // [tier][outcome][kind]
  std::vector<std::array<kind_counters, upstream_outcome_count>> upstream_requests_;
  std::vector<prometheus::Histogram*> upstream_ttfb_;
  std::vector<prometheus::Gauge*> upstream_up_;
  std::vector<prometheus::Gauge*> probe_ttfb_;
  std::vector<prometheus::Gauge*> probe_duration_;
  std::vector<prometheus::Counter*> probe_success_;
  std::vector<prometheus::Counter*> probe_failure_;
  std::vector<prometheus::Counter*> integrity_failures_;
  std::vector<prometheus::Counter*> fallbacks_;  // [from * tiers + to]; null: not a route
  prometheus::Family<prometheus::Counter>* fallbacks_family_ = nullptr;
  prometheus::Counter* singleflight_shared_ = nullptr;
  prometheus::Gauge* inflight_ = nullptr;
  prometheus::Gauge* cache_bytes_ = nullptr;
  prometheus::Gauge* cache_entries_ = nullptr;
  prometheus::Gauge* cache_max_bytes_ = nullptr;
  prometheus::Gauge* cache_disk_bytes_ = nullptr;
  prometheus::Counter* cache_evictions_ = nullptr;
  prometheus::Counter* cache_evicted_bytes_ = nullptr;
  mutable std::mutex cache_totals_mutex_;  // two scrapes must not both add the same evictions
  prometheus::Counter* bytes_sent_ = nullptr;
  std::array<std::array<prometheus::Counter*, 2>, 2> unauthorized_{};  // [route][reason]

  // Fed by the recording calls above; owned here so the data path talks to one object.
  std::unique_ptr<status_board> board_;
  std::function<cache_figures()> cache_source_;
  std::function<bool(std::size_t)> up_source_;
};

}  // namespace gomodproxy::monitor
