#include "probe_report/probe_report.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "protocol/semver.hpp"

namespace gomodproxy::probe_report {

namespace {

constexpr std::size_t max_failure_reasons = 3;

std::size_t index_of(request_kind kind) { return static_cast<std::size_t>(kind); }

bool is_hit(const module_lookup& lookup, const module_target& target) {
  if (lookup.list == list_answer::found && !lookup.versions.empty()) return true;
  return target.version.has_value() && lookup.info_found;
}

// Per module: the union of versions an upstream listed over all rounds, present only when its
// list was answered at least once.
using version_sets = std::vector<std::optional<std::set<std::string>>>;

version_sets listed_versions(const upstream_run& upstream, std::size_t module_count) {
  version_sets sets(module_count);
  for (const auto& lookup : upstream.lookups) {
    if (lookup.list == list_answer::failed || lookup.module_index >= module_count) continue;
    auto& set = sets[lookup.module_index];
    if (!set) set.emplace();
    set->insert(lookup.versions.begin(), lookup.versions.end());
  }
  return sets;
}

std::vector<sync_lag> compute_lags(const probe_run& run) {
  const std::size_t module_count = run.modules.size();
  std::vector<version_sets> sets;
  for (const auto& upstream : run.upstreams) {
    sets.push_back(listed_versions(upstream, module_count));
  }
  std::vector<sync_lag> lags(run.upstreams.size());
  for (std::size_t m = 0; m < module_count; ++m) {
    const std::set<std::string>* freshest = nullptr;
    for (const auto& upstream_sets : sets) {
      const auto& set = upstream_sets[m];
      if (set && (freshest == nullptr || set->size() > freshest->size())) freshest = &*set;
    }
    if (freshest == nullptr) continue;
    std::vector<std::string> ordered(freshest->begin(), freshest->end());
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      return protocol::compare_versions(a, b) < 0;
    });
    for (std::size_t u = 0; u < sets.size(); ++u) {
      const auto& own = sets[u][m];
      if (!own) continue;
      ++lags[u].compared_modules;
      for (const auto& version : ordered) {
        if (!own->contains(version)) lags[u].missing.push_back(run.modules[m].path + "@" + version);
      }
    }
  }
  return lags;
}

std::vector<failure_count> top_failures(const upstream_run& upstream) {
  std::map<std::string, std::size_t> counts;
  for (const auto& request : upstream.requests) {
    if (!request.answered) ++counts[request.failure.empty() ? "unknown" : request.failure];
  }
  std::vector<failure_count> out;
  out.reserve(counts.size());
  for (auto& [reason, count] : counts) out.push_back({reason, count});
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
  if (out.size() > max_failure_reasons) out.resize(max_failure_reasons);
  return out;
}

std::optional<double> ratio(std::size_t part, std::size_t whole) {
  if (whole == 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

upstream_summary summarize_upstream(const upstream_run& upstream, const probe_run& run) {
  upstream_summary summary;
  summary.name = upstream.name;
  summary.url = upstream.url;
  summary.skipped = upstream.skipped;
  if (upstream.skipped) return summary;

  std::vector<std::chrono::microseconds> ttfbs;
  std::array<std::vector<std::chrono::microseconds>, 4> ttfbs_by_kind;
  std::vector<std::chrono::microseconds> zip_times;
  for (const auto& request : upstream.requests) {
    auto& kind = summary.by_kind[index_of(request.kind)];
    ++summary.requests;
    ++kind.requests;
    if (request.answered) {
      ++summary.answered;
      ++kind.answered;
    }
    if (request.ttfb) {
      ttfbs.push_back(*request.ttfb);
      ttfbs_by_kind[index_of(request.kind)].push_back(*request.ttfb);
    }
    if (request.kind == request_kind::zip && request.status == 200 && request.answered) {
      ++summary.zips;
      summary.zip_bytes += request.body_bytes;
      zip_times.push_back(request.elapsed);
    }
  }
  summary.success_rate = ratio(summary.answered, summary.requests);
  summary.ttfb = summarize_timings(std::move(ttfbs));
  for (std::size_t k = 0; k < summary.by_kind.size(); ++k) {
    summary.by_kind[k].ttfb = summarize_timings(std::move(ttfbs_by_kind[k]));
  }
  std::chrono::microseconds zip_total{0};
  for (auto t : zip_times) zip_total += t;
  if (zip_total.count() > 0) {
    summary.zip_bytes_per_second =
        static_cast<double>(summary.zip_bytes) * 1e6 / static_cast<double>(zip_total.count());
  }
  summary.zip_time = summarize_timings(std::move(zip_times));

  for (const auto& lookup : upstream.lookups) {
    if (lookup.module_index >= run.modules.size()) continue;
    ++summary.lookups;
    if (is_hit(lookup, run.modules[lookup.module_index])) ++summary.hits;
  }
  summary.hit_rate = ratio(summary.hits, summary.lookups);
  summary.failures = top_failures(upstream);
  return summary;
}

}  // namespace

probe_report summarize(const probe_run& run) {
  probe_report report;
  report.modules = run.modules.size();
  report.rounds = run.rounds;
  report.timeout = run.timeout;
  auto lags = compute_lags(run);
  for (std::size_t u = 0; u < run.upstreams.size(); ++u) {
    auto summary = summarize_upstream(run.upstreams[u], run);
    if (!summary.skipped) summary.lag = std::move(lags[u]);
    report.upstreams.push_back(std::move(summary));
  }
  return report;
}

}  // namespace gomodproxy::probe_report
