#include "monitor/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>

#include "monitor/status_board.hpp"

namespace gomodproxy::monitor {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

// Protocol answers range from a warm hit in well under a millisecond to a cold zip fill over a
// slow link; buckets cover both ends.
const Histogram::BucketBoundaries request_buckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
// Time to first byte of an upstream: loopback to an overloaded mirror across the world.
const Histogram::BucketBoundaries ttfb_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   20,  30};

constexpr std::array<request_kind, request_kind_count> all_kinds{
    request_kind::list, request_kind::latest, request_kind::info,  request_kind::mod,
    request_kind::zip,  request_kind::query,  request_kind::sumdb, request_kind::other};
constexpr std::array<cache_result, cache_result_count> all_results{
    cache_result::hit, cache_result::miss, cache_result::stale};
constexpr std::array<upstream_outcome, upstream_outcome_count> all_outcomes{
    upstream_outcome::ok, upstream_outcome::not_found, upstream_outcome::error,
    upstream_outcome::timeout, upstream_outcome::skipped};

std::size_t at(request_kind kind) { return static_cast<std::size_t>(kind); }

double seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

}  // namespace

std::string_view label(request_kind kind) {
  switch (kind) {
    case request_kind::list:
      return "list";
    case request_kind::latest:
      return "latest";
    case request_kind::info:
      return "info";
    case request_kind::mod:
      return "mod";
    case request_kind::zip:
      return "zip";
    case request_kind::query:
      return "query";
    case request_kind::sumdb:
      return "sumdb";
    case request_kind::other:
      break;
  }
  return "other";
}

std::string_view label(cache_result result) {
  switch (result) {
    case cache_result::hit:
      return "hit";
    case cache_result::miss:
      return "miss";
    case cache_result::stale:
      break;
  }
  return "stale";
}

std::string_view label(upstream_outcome outcome) {
  switch (outcome) {
    case upstream_outcome::ok:
      return "ok";
    case upstream_outcome::not_found:
      return "not_found";
    case upstream_outcome::error:
      return "error";
    case upstream_outcome::timeout:
      return "timeout";
    case upstream_outcome::skipped:
      break;
  }
  return "skipped";
}

metrics::metrics(metrics_layout layout, std::function<std::chrono::system_clock::time_point()> now)
    : tiers_(std::move(layout.tiers)), registry_(std::make_shared<prometheus::Registry>()) {
  board_ = std::make_unique<status_board>(tiers_, std::move(now));
  auto& registry = *registry_;
  const std::size_t tier_count = tiers_.size();

  auto& requests = prometheus::BuildCounter()
                       .Name("gomodproxy_requests_total")
                       .Help("Protocol requests answered, by endpoint kind and HTTP status.")
                       .Register(registry);
  requests_family_ = &requests;
  auto& request_duration = prometheus::BuildHistogram()
                               .Name("gomodproxy_request_duration_seconds")
                               .Help("Time to answer a protocol request, body included.")
                               .Register(registry);
  auto& cache_lookups = prometheus::BuildCounter()
                            .Name("gomodproxy_cache_lookups_total")
                            .Help("Cache lookups by endpoint kind and result.")
                            .Register(registry);
  auto& stale_served = prometheus::BuildCounter()
                           .Name("gomodproxy_stale_served_total")
                           .Help("Expired entries served because every tier failed.")
                           .Register(registry);
  for (auto kind : all_kinds) {
    std::string kind_label(label(kind));
    for (std::size_t c = 0; c < known_codes_.size(); ++c) {
      requests_[at(kind)][c] =
          &requests.Add({{"kind", kind_label}, {"code", std::to_string(known_codes_[c])}});
    }
    request_duration_[at(kind)] = &request_duration.Add({{"kind", kind_label}}, request_buckets);
    for (auto result : all_results) {
      cache_lookups_[static_cast<std::size_t>(result)][at(kind)] =
          &cache_lookups.Add({{"kind", kind_label}, {"result", std::string(label(result))}});
    }
    stale_served_[at(kind)] = &stale_served.Add({{"kind", kind_label}});
  }

  auto& upstream_requests = prometheus::BuildCounter()
                                .Name("gomodproxy_upstream_requests_total")
                                .Help("Tier attempts by tier, endpoint kind and outcome.")
                                .Register(registry);
  auto& upstream_ttfb = prometheus::BuildHistogram()
                            .Name("gomodproxy_upstream_ttfb_seconds")
                            .Help("Time from request start to response headers, per tier.")
                            .Register(registry);
  auto& upstream_up = prometheus::BuildGauge()
                          .Name("gomodproxy_upstream_up")
                          .Help("1 when the tier is usable, 0 while its circuit breaker skips it.")
                          .Register(registry);
  auto& probe_ttfb = prometheus::BuildGauge()
                         .Name("gomodproxy_probe_ttfb_seconds")
                         .Help("Time to first byte of the last active probe that got an answer.")
                         .Register(registry);
  auto& probe_duration = prometheus::BuildGauge()
                             .Name("gomodproxy_probe_duration_seconds")
                             .Help("Total time of the last active probe, answered or not.")
                             .Register(registry);
  auto& probe_success = prometheus::BuildCounter()
                            .Name("gomodproxy_probe_success_total")
                            .Help("Active probes the tier answered (200, 404 or 410).")
                            .Register(registry);
  auto& probe_failure = prometheus::BuildCounter()
                            .Name("gomodproxy_probe_failure_total")
                            .Help("Active probes that failed (error, timeout, other status).")
                            .Register(registry);
  auto& integrity_failures =
      prometheus::BuildCounter()
          .Name("gomodproxy_integrity_failures_total")
          .Help("Module zips and go.mod files whose hash the checksum database contradicts.")
          .Register(registry);
  upstream_requests_.resize(tier_count);
  for (std::size_t t = 0; t < tier_count; ++t) {
    const std::string& tier = tiers_[t];
    for (auto outcome : all_outcomes) {
      for (auto kind : all_kinds) {
        upstream_requests_[t][static_cast<std::size_t>(outcome)][at(kind)] =
            &upstream_requests.Add({{"upstream", tier},
                                    {"kind", std::string(label(kind))},
                                    {"outcome", std::string(label(outcome))}});
      }
    }
    upstream_ttfb_.push_back(&upstream_ttfb.Add({{"upstream", tier}}, ttfb_buckets));
    upstream_up_.push_back(&upstream_up.Add({{"upstream", tier}}));
    upstream_up_.back()->Set(1);
    probe_ttfb_.push_back(&probe_ttfb.Add({{"upstream", tier}}));
    probe_duration_.push_back(&probe_duration.Add({{"upstream", tier}}));
    probe_success_.push_back(&probe_success.Add({{"upstream", tier}}));
    probe_failure_.push_back(&probe_failure.Add({{"upstream", tier}}));
    integrity_failures_.push_back(&integrity_failures.Add({{"upstream", tier}}));
  }

  auto& fallbacks = prometheus::BuildCounter()
                        .Name("gomodproxy_fallbacks_total")
                        .Help("Times the tier walk moved on from one tier to the next.")
                        .Register(registry);
  fallbacks_family_ = &fallbacks;
  fallbacks_.assign(tier_count * tier_count, nullptr);
  for (const auto& chain : layout.chains) {
    for (std::size_t i = 1; i < chain.size(); ++i) {
      std::size_t from = chain[i - 1];
      std::size_t to = chain[i];
      if (from >= tier_count || to >= tier_count) continue;
      fallbacks_[from * tier_count + to] =
          &fallbacks.Add({{"from", tiers_[from]}, {"to", tiers_[to]}});
    }
  }

  singleflight_shared_ = &prometheus::BuildCounter()
                              .Name("gomodproxy_singleflight_shared_total")
                              .Help("Requests that joined a fill another request started.")
                              .Register(registry)
                              .Add({});
  inflight_ = &prometheus::BuildGauge()
                   .Name("gomodproxy_inflight_requests")
                   .Help("Protocol requests being answered right now.")
                   .Register(registry)
                   .Add({});
  cache_bytes_ = &prometheus::BuildGauge()
                      .Name("gomodproxy_cache_bytes")
                      .Help("Bytes of committed cache entries.")
                      .Register(registry)
                      .Add({});
  cache_entries_ = &prometheus::BuildGauge()
                        .Name("gomodproxy_cache_entries")
                        .Help("Committed cache entries.")
                        .Register(registry)
                        .Add({});
  cache_max_bytes_ = &prometheus::BuildGauge()
                          .Name("gomodproxy_cache_max_bytes")
                          .Help("Size cap on the cache directory on disk (0: no cap).")
                          .Register(registry)
                          .Add({});
  cache_disk_bytes_ = &prometheus::BuildGauge()
                           .Name("gomodproxy_cache_disk_bytes")
                           .Help(
                               "Bytes the cache directory takes on disk, as last measured "
                               "by the size cap (0: no cap, not measured).")
                           .Register(registry)
                           .Add({});
  cache_evictions_ = &prometheus::BuildCounter()
                          .Name("gomodproxy_cache_evictions_total")
                          .Help("Cache entries evicted by the size cap.")
                          .Register(registry)
                          .Add({});
  cache_evicted_bytes_ = &prometheus::BuildCounter()
                              .Name("gomodproxy_cache_evicted_bytes_total")
                              .Help("Body bytes of the cache entries evicted by the size cap.")
                              .Register(registry)
                              .Add({});
  bytes_sent_ = &prometheus::BuildCounter()
                     .Name("gomodproxy_bytes_sent_total")
                     .Help("Response body bytes written to clients.")
                     .Register(registry)
                     .Add({});
  auto& unauthorized = prometheus::BuildCounter()
                           .Name("gomodproxy_unauthorized_total")
                           .Help("Requests answered 401, by kind of path and why.")
                           .Register(registry);
  for (std::size_t route = 0; route < 2; ++route) {
    for (std::size_t reason = 0; reason < 2; ++reason) {
      unauthorized_[route][reason] =
          &unauthorized.Add({{"route", route == 0 ? "client" : "admin"},
                             {"reason", reason == 0 ? "missing" : "invalid"}});
    }
  }
}

metrics::~metrics() = default;

std::optional<std::size_t> metrics::tier_index(std::string_view name) const {
  auto it = std::find(tiers_.begin(), tiers_.end(), name);
  if (it == tiers_.end()) return std::nullopt;
  return static_cast<std::size_t>(it - tiers_.begin());
}

void metrics::count_request(request_kind kind, int status, std::chrono::nanoseconds duration) {
  auto known = std::find(known_codes_.begin(), known_codes_.end(), status);
  if (known != known_codes_.end()) {
    requests_[at(kind)][static_cast<std::size_t>(known - known_codes_.begin())]->Increment();
  } else {
    // Rare (codes the server never sends today); Add returns the existing series when present.
    requests_family_->Add({{"kind", std::string(label(kind))}, {"code", std::to_string(status)}})
        .Increment();
  }
  request_duration_[at(kind)]->Observe(seconds(duration));
}

void metrics::count_cache_lookup(request_kind kind, cache_result result) {
  cache_lookups_[static_cast<std::size_t>(result)][at(kind)]->Increment();
  board_->record_cache_lookup(result);
}

void metrics::count_stale_served(request_kind kind) { stale_served_[at(kind)]->Increment(); }

void metrics::count_upstream(std::size_t tier, request_kind kind, upstream_outcome outcome,
                             std::optional<std::chrono::microseconds> ttfb) {
  if (tier >= tiers_.size()) return;
  upstream_requests_[tier][static_cast<std::size_t>(outcome)][at(kind)]->Increment();
  if (ttfb) upstream_ttfb_[tier]->Observe(seconds(*ttfb));
  board_->record_attempt(tier, outcome, ttfb);
}

void metrics::count_fallback(std::size_t from, std::size_t to) {
  if (from >= tiers_.size() || to >= tiers_.size()) return;
  if (auto* counter = fallbacks_[from * tiers_.size() + to]) {
    counter->Increment();
    return;
  }
  fallbacks_family_->Add({{"from", tiers_[from]}, {"to", tiers_[to]}}).Increment();
}

void metrics::count_singleflight_shared() { singleflight_shared_->Increment(); }

void metrics::inflight_started() { inflight_->Increment(); }

void metrics::inflight_finished() { inflight_->Decrement(); }

void metrics::count_unauthorized(refused_route route, refused_because reason) {
  unauthorized_[static_cast<std::size_t>(route)][static_cast<std::size_t>(reason)]->Increment();
}

void metrics::count_bytes_sent(std::uint64_t bytes) {
  bytes_sent_->Increment(static_cast<double>(bytes));
}

void metrics::count_integrity_failure(std::size_t tier) {
  if (tier >= tiers_.size()) return;
  integrity_failures_[tier]->Increment();
}

void metrics::count_probe(std::size_t tier, bool success,
                          std::optional<std::chrono::microseconds> ttfb,
                          std::chrono::microseconds total) {
  if (tier >= tiers_.size()) return;
  (success ? probe_success_ : probe_failure_)[tier]->Increment();
  if (ttfb) probe_ttfb_[tier]->Set(seconds(*ttfb));
  probe_duration_[tier]->Set(seconds(total));
  board_->record_probe(tier, success, ttfb);
}

void metrics::note_upstream_problem(std::size_t tier, request_kind kind, std::string_view reason,
                                    int status) {
  board_->record_problem(tier, label(kind), reason, status);
}

void metrics::note_probe_problem(std::size_t tier, std::string_view reason, int status) {
  board_->record_problem(tier, "probe", reason, status);
}

void metrics::set_cache_source(std::function<cache_figures()> source) {
  cache_source_ = std::move(source);
}

void metrics::set_up_source(std::function<bool(std::size_t tier)> source) {
  up_source_ = std::move(source);
}

std::string metrics::serialize() const {
  // Gauges that mirror state owned elsewhere are refreshed here rather than on every change,
  // so the data path never pays for them.
  if (cache_source_) {
    auto figures = cache_source_();
    cache_entries_->Set(static_cast<double>(figures.entries));
    cache_bytes_->Set(static_cast<double>(figures.bytes));
    cache_max_bytes_->Set(static_cast<double>(figures.max_bytes));
    cache_disk_bytes_->Set(static_cast<double>(figures.disk_bytes));
    // The store keeps the totals (they survive restarts); a counter only moves forward.
    std::lock_guard lock(cache_totals_mutex_);
    const auto catch_up = [](prometheus::Counter* counter, std::uint64_t total) {
      const auto now = static_cast<double>(total);
      if (now > counter->Value()) counter->Increment(now - counter->Value());
    };
    catch_up(cache_evictions_, figures.evictions);
    catch_up(cache_evicted_bytes_, figures.evicted_bytes);
  }
  if (up_source_) {
    for (std::size_t t = 0; t < tiers_.size(); ++t) upstream_up_[t]->Set(up_source_(t) ? 1 : 0);
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

status_report metrics::status() const {
  return board_->report(cache_source_ ? cache_source_() : cache_figures{}, up_source_);
}

}  // namespace gomodproxy::monitor
