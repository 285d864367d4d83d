#include "monitor/status_page.hpp"

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

namespace gomodproxy::monitor {
namespace {

namespace json = boost::json;
using std::chrono::microseconds;

// --- shared formatting --------------------------------------------------------------------

std::int64_t unix_ms(wall_time at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

// RFC 3339 with milliseconds ("2024-05-01T12:34:56.789Z"), or "2024-05-01 12:34:56 UTC" for
// people.
std::string utc_text(wall_time at, bool for_people = false) {
  std::int64_t ms = unix_ms(at);
  auto seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  std::array<char, 40> text{};
  if (for_people) {
    std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M:%S UTC", &parts);
    return text.data();
  }
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &parts);
  std::array<char, 48> with_ms{};
  std::snprintf(with_ms.data(), with_ms.size(), "%s.%03dZ", text.data(),
                static_cast<int>((ms % 1000 + 1000) % 1000));
  return with_ms.data();
}

double milliseconds(microseconds duration) { return static_cast<double>(duration.count()) / 1000; }

std::string_view outcome_key(std::size_t outcome) {
  return label(static_cast<upstream_outcome>(outcome));
}

std::string_view result_key(std::size_t result) { return label(static_cast<cache_result>(result)); }

// --- JSON ---------------------------------------------------------------------------------

json::value json_ms(const std::optional<microseconds>& duration) {
  if (!duration) return nullptr;
  return milliseconds(*duration);
}

json::value json_rate(const std::optional<double>& rate) {
  if (!rate) return nullptr;
  return *rate;
}

json::object tier_json(const tier_status& tier) {
  json::array samples;
  for (const auto& sample : tier.probes) {
    samples.push_back(
        json::object{{"at_unix_ms", unix_ms(sample.at)}, {"ttfb_ms", json_ms(sample.ttfb)}});
  }
  json::object probe{
      {"ttfb_ms_now", json_ms(tier.probe_ttfb_now)},
      {"ttfb_ms_median", json_ms(tier.probe_ttfb_median)},
      {"ttfb_ms_max", json_ms(tier.probe_ttfb_max)},
      {"successes", tier.probe_successes},
      {"failures", tier.probe_failures},
      {"success_rate", json_rate(tier.probe_success_rate)},
      {"samples", std::move(samples)},
  };
  json::object traffic;
  for (std::size_t o = 0; o < tier.attempts.size(); ++o) {
    traffic[outcome_key(o)] = tier.attempts[o];
  }
  traffic["success_rate"] = json_rate(tier.success_rate);
  traffic["hit_rate"] = json_rate(tier.hit_rate);
  traffic["last_ttfb_ms"] = json_ms(tier.last_traffic_ttfb);
  return json::object{{"name", tier.name},         {"up", tier.up},
                      {"slowest", tier.slowest},   {"recent_ttfb_ms", json_ms(tier.recent_ttfb)},
                      {"probe", std::move(probe)}, {"traffic", std::move(traffic)}};
}

}  // namespace

std::string status_json(const status_report& report) {
  json::array tiers;
  json::value slowest = nullptr;
  for (const auto& tier : report.tiers) {
    tiers.push_back(tier_json(tier));
    if (tier.slowest) slowest = json::string(tier.name);
  }
  json::object cache{{"entries", report.cache.figures.entries},
                     {"bytes", report.cache.figures.bytes}};
  for (std::size_t r = 0; r < report.cache.lookups.size(); ++r) {
    cache[result_key(r)] = report.cache.lookups[r];
  }
  cache["hit_rate"] = json_rate(report.cache.hit_rate);
  const auto& figures = report.cache.figures;
  // Without a cap nothing measures the directory, so "disk_bytes" and "full" are null.
  json::object cap{{"max_bytes", figures.max_bytes},
                   {"disk_bytes", nullptr},
                   {"full", nullptr},
                   {"evictions", figures.evictions},
                   {"evicted_bytes", figures.evicted_bytes}};
  if (figures.max_bytes != 0) {
    cap["disk_bytes"] = figures.disk_bytes;
    cap["full"] = static_cast<double>(figures.disk_bytes) / static_cast<double>(figures.max_bytes);
  }
  cache["size_cap"] = std::move(cap);
  cache["memory"] = json::object{{"limit_bytes", figures.memory_limit_bytes},
                                 {"block_bytes", figures.memory_block_bytes},
                                 {"write_buffer_bytes", figures.memory_write_buffer_bytes},
                                 {"table_reader_bytes", figures.memory_table_reader_bytes}};
  json::array problems;
  for (const auto& problem : report.problems) {
    problems.push_back(json::object{{"at", utc_text(problem.last_at)},
                                    {"at_unix_ms", unix_ms(problem.last_at)},
                                    {"first_at", utc_text(problem.first_at)},
                                    {"count", problem.count},
                                    {"tier", problem.tier},
                                    {"kind", problem.kind},
                                    {"reason", problem.reason}});
  }
  json::object out{
      {"generated_at", utc_text(report.generated_at)},
      {"generated_at_unix_ms", unix_ms(report.generated_at)},
      {"offline", report.offline},
      {"traffic_window_seconds", report.traffic_window.count()},
      {"probe_window_seconds", status_board::window.count()},
      {"slowest_tier", std::move(slowest)},
      {"tiers", std::move(tiers)},
      {"cache", std::move(cache)},
      {"recent_errors", std::move(problems)},
  };
  return json::serialize(out) + "\n";
}

namespace {

// --- HTML ---------------------------------------------------------------------------------

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string printf_text(const char* format, double value) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), format, value);
  return text.data();
}

std::string duration_text(microseconds duration) {
  double ms = milliseconds(duration);
  if (ms < 10) return printf_text("%.2f ms", ms);
  if (ms < 100) return printf_text("%.1f ms", ms);
  if (ms < 10000) return printf_text("%.0f ms", ms);
  return printf_text("%.1f s", ms / 1000);
}

std::string duration_text(const std::optional<microseconds>& duration) {
  return duration ? duration_text(*duration) : "&mdash;";
}

std::string percent_text(const std::optional<double>& rate) {
  if (!rate) return "&mdash;";
  double percent = *rate * 100;
  // 99.96% is not 100%: a tier that failed once must not look perfect.
  if (percent > 99.9 && percent < 100) return "99.9%";
  return printf_text(percent == std::floor(percent) ? "%.0f%%" : "%.1f%%", percent);
}

std::string bytes_text(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 5> units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  value /= 1024;
  while (value >= 1024 && unit + 1 < units.size()) {
    value /= 1024;
    ++unit;
  }
  return printf_text(value < 10 ? "%.2f " : value < 100 ? "%.1f " : "%.0f ", value) + units[unit];
}

std::string span_text(std::chrono::seconds span) {
  auto s = span.count();
  if (s < 120) return std::to_string(s) + " s";
  if (s < 2L * 3600) return std::to_string(s / 60) + " min";
  if (s < 2L * 86400) return std::to_string(s / 3600) + " h";
  return std::to_string(s / 86400) + " d";
}

std::string age_text(wall_time at, wall_time now) {
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - at);
  if (age.count() <= 0) return "just now";
  return span_text(age) + " ago";
}

std::string window_text(std::chrono::seconds window) {
  if (window >= std::chrono::minutes(59) && window <= std::chrono::minutes(65)) {
    return "the last hour";
  }
  if (window < std::chrono::minutes(59)) return "the " + span_text(window) + " since start";
  return "the last " + span_text(window);
}

std::string number_text(double value) { return printf_text("%.1f", value); }

// Where the sparklines' time axis starts: an hour ago, or at the first probe of any tier when
// the server is younger, so a fresh server's few probes spread over the width instead of
// piling up at its right end. The same for every tier, so their lines line up.
wall_time sparkline_start(const status_report& report) {
  wall_time start = report.generated_at;
  for (const auto& tier : report.tiers) {
    if (!tier.probes.empty()) start = std::min(start, tier.probes.front().at);
  }
  return std::max(start, report.generated_at - status_board::window);
}

// The longest probe answer of any tier: the top of every sparkline. One scale for all makes
// the slow tier's line stand out above the others.
std::optional<microseconds> sparkline_top(const status_report& report) {
  std::optional<microseconds> top;
  for (const auto& tier : report.tiers) {
    if (tier.probe_ttfb_max && (!top || *tier.probe_ttfb_max > *top)) top = tier.probe_ttfb_max;
  }
  return top;
}

// An inline SVG of the probe answers since `start`: a line through the times to first byte
// (x: time, y: duration from 0 at the bottom to `top_ms` at the top) and a red tick for each
// moment a probe failed.
std::string sparkline(const tier_status& tier, wall_time start, wall_time now, double top_ms) {
  constexpr double width = 240;
  constexpr double height = 40;
  constexpr double pad = 3;
  // Beyond this many points a denser line shows nothing more at this width.
  constexpr std::size_t max_points = 480;
  if (tier.probes.empty()) return "<span class=\"empty\">no probe yet</span>";

  const double span_us = std::chrono::duration<double, std::micro>(now - start).count();
  auto x_of = [&](wall_time at) {
    if (span_us <= 0) return width - pad;
    double offset = std::chrono::duration<double, std::micro>(at - start).count();
    return pad + std::clamp(offset / span_us, 0.0, 1.0) * (width - 2 * pad);
  };

  std::vector<std::pair<double, double>> answered;  // x, milliseconds
  std::set<int> failed_columns;
  for (const auto& sample : tier.probes) {
    if (sample.ttfb) {
      answered.emplace_back(x_of(sample.at), milliseconds(*sample.ttfb));
    } else {
      failed_columns.insert(static_cast<int>(x_of(sample.at)));
    }
  }
  if (answered.size() > max_points) {
    std::size_t group = (answered.size() + max_points - 1) / max_points;
    std::vector<std::pair<double, double>> merged;
    for (std::size_t i = 0; i < answered.size(); i += group) {
      std::size_t end = std::min(answered.size(), i + group);
      double x = 0;
      double ms = 0;
      for (std::size_t j = i; j < end; ++j) {
        x += answered[j].first;
        ms += answered[j].second;
      }
      merged.emplace_back(x / static_cast<double>(end - i), ms / static_cast<double>(end - i));
    }
    answered = std::move(merged);
  }
  auto y_of = [&](double ms) {
    if (top_ms <= 0) return height - pad;
    return height - pad - std::min(ms / top_ms, 1.0) * (height - 2 * pad);
  };

  const std::string span = span_text(std::chrono::duration_cast<std::chrono::seconds>(now - start));
  std::string label = answered.empty()
                          ? "no probe answered in the last " + span
                          : "probe time to first byte over the last " + span + ", max " +
                                duration_text(tier.probe_ttfb_max.value_or(microseconds(0))) +
                                " (top of the scale: " + printf_text("%.2f ms", top_ms) + ")";
  if (!failed_columns.empty()) label += "; red: failed probes";
  std::string svg =
      "<svg class=\"spark\" width=\"240\" height=\"40\" viewBox=\"0 0 240 40\" role=\"img\" "
      "aria-label=\"" +
      escape(label) + "\"><title>" + escape(label) + "</title>";
  svg += "<line class=\"axis\" x1=\"0\" y1=\"39.5\" x2=\"240\" y2=\"39.5\"/>";
  for (int column : failed_columns) {
    svg += "<rect class=\"fail\" x=\"" + std::to_string(column) +
           "\" y=\"28\" width=\"2\" height=\"12\"/>";
  }
  if (!answered.empty()) {
    svg += "<polyline class=\"line\" points=\"";
    for (std::size_t i = 0; i < answered.size(); ++i) {
      if (i > 0) svg += ' ';
      svg += number_text(answered[i].first) + "," + number_text(y_of(answered[i].second));
    }
    svg += "\"/>";
    const auto& last = answered.back();
    svg += "<circle class=\"dot\" cx=\"" + number_text(last.first) + "\" cy=\"" +
           number_text(y_of(last.second)) + "\" r=\"2.5\"/>";
  }
  svg += "</svg>";
  return svg;
}

constexpr std::string_view style = R"css(
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1f2937; background: #f9fafb; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #6b7280; margin: 0 0 12px; }
.summary { font-size: 16px; padding: 10px 14px; border-radius: 6px; background: #ecfdf5;
           border: 1px solid #a7f3d0; display: inline-block; margin: 4px 0; }
.summary.bad { background: #fef2f2; border-color: #fecaca; }
table { border-collapse: collapse; background: #fff; border: 1px solid #e5e7eb; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e5e7eb; text-align: left;
         vertical-align: middle; }
th { background: #f3f4f6; font-weight: 600; font-size: 13px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; min-width: 44px; text-align: center; padding: 2px 8px;
         border-radius: 10px; font-weight: 700; font-size: 12px; color: #fff; }
.badge.up { background: #16a34a; }
.badge.down { background: #dc2626; }
tr.slowest td { background: #fff7ed; }
tr.slowest td:first-child { box-shadow: inset 4px 0 0 #f97316; }
tr.down td { background: #fef2f2; }
.tag { display: inline-block; padding: 1px 6px; border-radius: 4px;
       font-size: 11px; font-weight: 700; background: #f97316; color: #fff; }
.name { font-weight: 600; }
.host { white-space: nowrap; }
.small { color: #6b7280; font-size: 12px; }
.empty { color: #9ca3af; font-style: italic; }
svg.spark { display: block; background: #f8fafc; }
svg.spark .axis { stroke: #e5e7eb; stroke-width: 1; }
svg.spark .line { fill: none; stroke: #2563eb; stroke-width: 1.5; stroke-linejoin: round; }
svg.spark .dot { fill: #1d4ed8; }
svg.spark .fail { fill: #dc2626; }
td.reason { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
            word-break: break-word; max-width: 560px; }
footer { margin-top: 28px; color: #6b7280; font-size: 12px; }
a { color: #2563eb; }
)css";

std::string summary(const status_report& report) {
  std::vector<std::string> down;
  const tier_status* slowest = nullptr;
  for (const auto& tier : report.tiers) {
    if (!tier.up) down.push_back("<b>" + escape(tier.name) + "</b>");
    if (tier.slowest) slowest = &tier;
  }
  std::string text;
  if (report.offline) {
    // Nothing probes or asks the tiers, so their states below are whatever they were at start.
    return "<p class=\"summary\" id=\"summary\"><b>Offline</b>: answering from the cache only; "
           "no upstream tier or checksum database is asked, so the tier states below are not "
           "checked.</p>\n";
  }
  if (report.tiers.empty()) {
    text = "No upstream tier is monitored (only <code>direct</code> or <code>off</code>).";
  } else if (down.empty()) {
    text = report.tiers.size() == 1
               ? "The upstream tier is up."
               : "All " + std::to_string(report.tiers.size()) + " upstream tiers are up.";
  } else {
    text = std::to_string(down.size()) + " of " + std::to_string(report.tiers.size()) +
           " upstream tiers down: ";
    for (std::size_t i = 0; i < down.size(); ++i) text += (i > 0 ? ", " : "") + down[i];
    text += ".";
  }
  if (slowest != nullptr) {
    text += " Slowest right now: <b>" + escape(slowest->name) + "</b>, " +
            duration_text(slowest->recent_ttfb.value_or(microseconds(0))) +
            (slowest->probe_successes > 0 ? " to first byte (median of recent probes)."
                                          : " to first byte (last request).");
  }
  return "<p class=\"summary" + std::string(down.empty() ? "" : " bad") + "\" id=\"summary\">" +
         text + "</p>\n";
}

std::string tier_row(const tier_status& tier, wall_time sparkline_from, wall_time now,
                     double sparkline_top) {
  auto count = [&tier](upstream_outcome outcome) {
    return tier.attempts[static_cast<std::size_t>(outcome)];
  };
  std::uint64_t skipped = count(upstream_outcome::skipped);
  std::string classes = "tier";
  if (tier.slowest) classes += " slowest";
  if (!tier.up) classes += " down";
  std::string row = "<tr class=\"" + classes + "\" data-tier=\"" + escape(tier.name) + "\">";
  row += "<td class=\"name\"><span class=\"host\">" + escape(tier.name) + "</span>";
  if (tier.slowest) row += " <span class=\"tag\">SLOWEST</span>";
  row += "</td>";
  row += tier.up ? "<td><span class=\"badge up\">UP</span></td>"
                 : "<td><span class=\"badge down\">DOWN</span></td>";
  std::string now_text = duration_text(tier.probe_ttfb_now);
  if (!tier.probe_ttfb_now && !tier.probes.empty()) now_text = "failed";
  row += "<td class=\"num\">" + now_text + "</td>";
  row += "<td>" + sparkline(tier, sparkline_from, now, sparkline_top) + "</td>";
  row += "<td class=\"num\">" + duration_text(tier.probe_ttfb_median) + " / " +
         duration_text(tier.probe_ttfb_max) + "</td>";
  row += "<td class=\"num\">" + std::to_string(tier.probe_successes) + " / " +
         std::to_string(tier.probe_successes + tier.probe_failures) + "</td>";
  row += "<td class=\"num\">" + std::to_string(tier.tried);
  if (skipped > 0)
    row += " <span class=\"small\">(+" + std::to_string(skipped) + " skipped)</span>";
  row += "</td>";
  row += "<td class=\"num\">" + percent_text(tier.success_rate) + "</td>";
  row += "<td class=\"num\">" + percent_text(tier.hit_rate) + "</td>";
  row += "<td class=\"num\">" + duration_text(tier.last_traffic_ttfb) + "</td>";
  row += "</tr>\n";
  return row;
}

}  // namespace

std::string status_html(const status_report& report, int refresh_seconds) {
  const std::string window = window_text(report.traffic_window);
  std::string page;
  page.reserve(16384);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refresh_seconds) + "\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<title>gomodproxy status</title>\n<style>";
  page += style;
  page += "</style>\n</head>\n<body>\n<h1>gomodproxy status</h1>\n";
  page += "<p class=\"meta\">Generated " + utc_text(report.generated_at, true) +
          " &middot; reloads every " + std::to_string(refresh_seconds) +
          " s &middot; request figures cover " + window + ", probes the last hour</p>\n";
  page += summary(report);

  page +=
      "<h2>Upstream tiers</h2>\n<table id=\"tiers\">\n<thead><tr>"
      "<th>Tier</th><th>State</th><th>Probe TTFB now</th><th>Probe TTFB, last hour";
  const auto top = sparkline_top(report);
  if (top) page += " <span class=\"small\">(0 to " + duration_text(*top) + ")</span>";
  page +=
      "</th><th>Median / max</th><th>Probes answered</th><th>Requests</th>"
      "<th>Success</th><th>Hit rate</th><th>Last request TTFB</th>"
      "</tr></thead>\n<tbody>\n";
  const wall_time sparkline_from = sparkline_start(report);
  for (const auto& tier : report.tiers) {
    page += tier_row(tier, sparkline_from, report.generated_at, top ? milliseconds(*top) : 0.0);
  }
  if (report.tiers.empty()) {
    page += "<tr><td colspan=\"10\" class=\"empty\">no monitored tier</td></tr>\n";
  }
  page += "</tbody>\n</table>\n";
  page +=
      "<p class=\"small\">TTFB: time to first byte. Success: requests the tier answered "
      "(found or not found) out of those sent to it; hit rate: found out of answered. "
      "Skipped requests went elsewhere because the tier was down.</p>\n";

  const auto& cache = report.cache;
  auto lookups = [&cache](cache_result result) {
    return std::to_string(cache.lookups[static_cast<std::size_t>(result)]);
  };
  page +=
      "<h2>Cache</h2>\n<table id=\"cache\">\n<thead><tr><th>Entries</th><th>Size</th>"
      "<th>Hit rate</th><th>Hits</th><th>Misses</th><th>Stale</th></tr></thead>\n<tbody><tr>";
  page += "<td class=\"num\">" + std::to_string(cache.figures.entries) + "</td>";
  page += "<td class=\"num\">" + bytes_text(cache.figures.bytes) + "</td>";
  page += "<td class=\"num\">" + percent_text(cache.hit_rate) + "</td>";
  page += "<td class=\"num\">" + lookups(cache_result::hit) + "</td>";
  page += "<td class=\"num\">" + lookups(cache_result::miss) + "</td>";
  page += "<td class=\"num\">" + lookups(cache_result::stale) + "</td>";
  page += "</tr></tbody>\n</table>\n";
  const auto& figures = cache.figures;
  if (figures.max_bytes == 0) {
    page +=
        "<p class=\"small\" id=\"size-cap\">Size cap: none (the cache grows without "
        "limit).</p>\n";
  } else {
    page += "<p class=\"small\" id=\"size-cap\">Size cap: " + bytes_text(figures.max_bytes) +
            "; directory on disk " + bytes_text(figures.disk_bytes) + " (" +
            percent_text(static_cast<double>(figures.disk_bytes) /
                         static_cast<double>(figures.max_bytes)) +
            " full); " + std::to_string(figures.evictions) + " entries (" +
            bytes_text(figures.evicted_bytes) + ") evicted so far.</p>\n";
  }
  page += "<p class=\"small\" id=\"cache-memory\">Cache memory: " +
          bytes_text(figures.memory_limit_bytes) + " for metadata blocks (" +
          bytes_text(figures.memory_block_bytes) + " now) and write buffers (" +
          bytes_text(figures.memory_write_buffer_bytes) + "); table indexes " +
          bytes_text(figures.memory_table_reader_bytes) + ".</p>\n";

  page += "<h2>Recent errors</h2>\n";
  if (report.problems.empty()) {
    page += "<p class=\"empty\" id=\"no-errors\">No upstream error recorded.</p>\n";
  } else {
    page +=
        "<table id=\"errors\">\n<thead><tr><th>When</th><th>Tier</th><th>Kind</th>"
        "<th>Reason</th><th>Times</th></tr></thead>\n<tbody>\n";
    for (const auto& problem : report.problems) {
      page += "<tr><td class=\"num\" title=\"" + utc_text(problem.last_at, true) + "\">" +
              age_text(problem.last_at, report.generated_at) + "</td>";
      page += "<td class=\"name\">" + escape(problem.tier) + "</td>";
      page += "<td>" + escape(problem.kind) + "</td>";
      page += "<td class=\"reason\">" + escape(problem.reason) + "</td>";
      page += "<td class=\"num\">" + std::to_string(problem.count);
      if (problem.count > 1) {
        page += " <span class=\"small\">since " + age_text(problem.first_at, report.generated_at) +
                "</span>";
      }
      page += "</td></tr>\n";
    }
    page += "</tbody>\n</table>\n";
  }
  page +=
      "<footer>Also as <a href=\"status.json\">status.json</a> and Prometheus "
      "<a href=\"metrics\">metrics</a>.</footer>\n</body>\n</html>\n";
  return page;
}

}  // namespace gomodproxy::monitor
