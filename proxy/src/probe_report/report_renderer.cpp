#include "probe_report/report_renderer.hpp"

#include <array>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace gomodproxy::probe_report {

namespace {

namespace json = boost::json;

constexpr std::size_t lag_examples_shown = 3;

// --- text pieces shared by the table and Markdown -----------------------------------------------

std::string format_ms(std::optional<double> ms) {
  if (!ms) return "-";
  std::array<char, 32> buffer{};
  // Three significant figures or so: loopback answers take fractions of a millisecond, mirrors
  // across the world hundreds.
  const char* pattern = *ms < 10 ? "%.2f" : (*ms < 100 ? "%.1f" : "%.0f");
  std::snprintf(buffer.data(), buffer.size(), pattern, *ms);
  return buffer.data();
}

std::string format_percent(std::optional<double> fraction) {
  if (!fraction) return "-";
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.1f%%", *fraction * 100.0);
  return buffer.data();
}

std::string format_bytes(double bytes) {
  static constexpr std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  while (bytes >= 1024.0 && unit + 1 < units.size()) {
    bytes /= 1024.0;
    ++unit;
  }
  std::array<char, 48> buffer{};
  if (unit == 0) {
    std::snprintf(buffer.data(), buffer.size(), "%.0f B", bytes);
  } else {
    std::snprintf(buffer.data(), buffer.size(), "%.1f %s", bytes, units[unit]);
  }
  return buffer.data();
}

std::string format_rate(std::optional<double> bytes_per_second) {
  if (!bytes_per_second) return "-";
  return format_bytes(*bytes_per_second) + "/s";
}

std::string lag_count(const upstream_summary& upstream) {
  if (upstream.skipped || upstream.lag.compared_modules == 0) return "-";
  return std::to_string(upstream.lag.missing.size());
}

std::string lag_examples(const sync_lag& lag) {
  std::string out;
  for (std::size_t i = 0; i < lag.missing.size() && i < lag_examples_shown; ++i) {
    if (i > 0) out += ", ";
    out += lag.missing[i];
  }
  if (lag.missing.size() > lag_examples_shown) {
    out += ", ... (" + std::to_string(lag.missing.size() - lag_examples_shown) + " more)";
  }
  return out;
}

std::string sweep_line(const probe_report& report) {
  return std::to_string(report.modules) + (report.modules == 1 ? " module" : " modules") + " x " +
         std::to_string(report.rounds) + (report.rounds == 1 ? " round" : " rounds") +
         ", timeout " + format_duration(report.timeout);
}

struct column {
  std::string title;
  bool right_aligned;
};

const std::vector<column>& columns() {
  static const std::vector<column> all = {
      {"UPSTREAM", false},    {"REQUESTS", true},    {"SUCCESS", true},     {"HIT RATE", true},
      {"TTFB MEAN ms", true}, {"TTFB P50 ms", true}, {"TTFB P95 ms", true}, {"ZIPS", true},
      {"ZIP BYTES", true},    {"ZIP RATE", true},    {"SYNC LAG", true},
  };
  return all;
}

std::vector<std::string> row_cells(const upstream_summary& upstream) {
  if (upstream.skipped) {
    std::vector<std::string> cells(columns().size(), "-");
    cells[0] = upstream.name;
    return cells;
  }
  return {upstream.name,
          std::to_string(upstream.requests),
          format_percent(upstream.success_rate),
          format_percent(upstream.hit_rate),
          format_ms(upstream.ttfb.mean_ms),
          format_ms(upstream.ttfb.p50_ms),
          format_ms(upstream.ttfb.p95_ms),
          std::to_string(upstream.zips),
          upstream.zips > 0 ? format_bytes(static_cast<double>(upstream.zip_bytes)) : "-",
          format_rate(upstream.zip_bytes_per_second),
          lag_count(upstream)};
}

// --- JSON ---------------------------------------------------------------------------------------

// Rounded before printing so the shortest exact form is short: ms to the microsecond, rates to
// four places.
json::value rounded(std::optional<double> value, double scale) {
  if (!value) return nullptr;
  return std::round(*value * scale) / scale;
}

json::value ms_value(std::optional<double> ms) { return rounded(ms, 1000.0); }

json::object timing_object(const timing_summary& timing) {
  return {{"samples", timing.samples},
          {"mean", ms_value(timing.mean_ms)},
          {"p50", ms_value(timing.p50_ms)},
          {"p95", ms_value(timing.p95_ms)}};
}

json::object upstream_object(const upstream_summary& upstream) {
  json::object out;
  out["name"] = upstream.name;
  out["url"] = upstream.url.empty() ? json::value(nullptr) : json::value(upstream.url);
  out["skipped"] = upstream.skipped ? json::value(*upstream.skipped) : json::value(nullptr);
  out["requests"] = upstream.requests;
  out["answered"] = upstream.answered;
  out["success_rate"] = rounded(upstream.success_rate, 1e4);
  out["lookups"] = upstream.lookups;
  out["hits"] = upstream.hits;
  out["hit_rate"] = rounded(upstream.hit_rate, 1e4);
  out["ttfb_ms"] = timing_object(upstream.ttfb);
  json::object by_kind;
  for (auto kind : all_request_kinds) {
    const auto& figures = upstream.by_kind[static_cast<std::size_t>(kind)];
    by_kind[kind_name(kind)] = json::object{{"requests", figures.requests},
                                            {"answered", figures.answered},
                                            {"ttfb_ms", timing_object(figures.ttfb)}};
  }
  out["by_kind"] = std::move(by_kind);
  out["zip"] = json::object{{"count", upstream.zips},
                            {"bytes", upstream.zip_bytes},
                            {"time_ms", timing_object(upstream.zip_time)},
                            {"bytes_per_second", rounded(upstream.zip_bytes_per_second, 1.0)}};
  json::array missing;
  for (const auto& version : upstream.lag.missing) missing.emplace_back(version);
  const bool compared = !upstream.skipped && upstream.lag.compared_modules > 0;
  out["sync_lag"] = json::object{
      {"compared_modules", upstream.lag.compared_modules},
      {"missing_count", compared ? json::value(upstream.lag.missing.size()) : json::value(nullptr)},
      {"missing", std::move(missing)}};
  json::array failures;
  for (const auto& failure : upstream.failures) {
    failures.emplace_back(json::object{{"reason", failure.reason}, {"count", failure.count}});
  }
  out["failures"] = std::move(failures);
  return out;
}

// Boost.JSON prints doubles in exponent form ("1.2345E1"); this printer keeps its string
// escaping but writes numbers in plain decimal and indents for people who read the file too.
void write_json(const json::value& value, std::string& out, int depth) {
  auto newline = [&out](int level) {
    out += '\n';
    out.append(static_cast<std::size_t>(level) * 2, ' ');
  };
  switch (value.kind()) {
    case json::kind::object: {
      const auto& object = value.get_object();
      if (object.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& [key, member] : object) {
        if (!first) out += ',';
        first = false;
        newline(depth + 1);
        out += json::serialize(json::string_view(key));
        out += ": ";
        write_json(member, out, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    case json::kind::array: {
      const auto& array = value.get_array();
      if (array.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& element : array) {
        if (!first) out += ',';
        first = false;
        newline(depth + 1);
        write_json(element, out, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case json::kind::double_: {
      std::array<char, 64> buffer{};
      auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(),
                                     value.get_double(), std::chars_format::fixed);
      out.append(buffer.data(), ec == std::errc{} ? end : buffer.data());
      return;
    }
    default:
      out += json::serialize(value);
      return;
  }
}

// --- Markdown -----------------------------------------------------------------------------------

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string format_duration(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  if (ms == 0) return "0s";
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  auto seconds = ms / 1000;
  std::string out;
  if (seconds >= 3600) {
    out += std::to_string(seconds / 3600) + "h";
    seconds %= 3600;
  }
  if (seconds >= 60) {
    out += std::to_string(seconds / 60) + "m";
    seconds %= 60;
  }
  if (seconds > 0) out += std::to_string(seconds) + "s";
  return out;
}

std::string render_table(const probe_report& report) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const auto& c : columns()) header.push_back(c.title);
  rows.push_back(std::move(header));
  for (const auto& upstream : report.upstreams) rows.push_back(row_cells(upstream));

  std::vector<std::size_t> widths(columns().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out = "gomodproxy probe: " + sweep_line(report) + "\n\n";
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      const auto pad = std::string(widths[i] - row[i].size(), ' ');
      line += columns()[i].right_aligned ? pad + row[i] : row[i] + pad;
    }
    while (line.ends_with(' ')) line.pop_back();
    out += line + "\n";
  }

  std::size_t name_width = 0;
  for (const auto& upstream : report.upstreams) {
    name_width = std::max(name_width, upstream.name.size());
  }
  auto labelled = [name_width](const std::string& name, const std::string& text) {
    return "  " + name + std::string(name_width - name.size(), ' ') + "  " + text + "\n";
  };
  std::string lag_lines, failure_lines, skipped_lines;
  for (const auto& upstream : report.upstreams) {
    if (upstream.skipped) {
      skipped_lines += labelled(upstream.name, *upstream.skipped);
      continue;
    }
    if (!upstream.lag.missing.empty()) {
      lag_lines += labelled(upstream.name, std::to_string(upstream.lag.missing.size()) +
                                               " missing: " + lag_examples(upstream.lag));
    }
    for (const auto& failure : upstream.failures) {
      failure_lines +=
          labelled(upstream.name, std::to_string(failure.count) + " x " + failure.reason);
    }
  }
  if (!lag_lines.empty()) {
    out += "\nSync lag (versions the freshest upstream lists but this one does not):\n" + lag_lines;
  }
  if (!failure_lines.empty()) out += "\nFailures (most frequent reasons):\n" + failure_lines;
  if (!skipped_lines.empty()) out += "\nSkipped:\n" + skipped_lines;
  return out;
}

std::string render_json(const probe_report& report) {
  json::array upstreams;
  for (const auto& upstream : report.upstreams) upstreams.emplace_back(upstream_object(upstream));
  json::object root{{"modules", report.modules},
                    {"rounds", report.rounds},
                    {"timeout_ms", report.timeout.count()},
                    {"upstreams", std::move(upstreams)}};
  std::string out;
  write_json(root, out, 0);
  out += '\n';
  return out;
}

std::string render_markdown(const probe_report& report) {
  std::string out = "gomodproxy probe: " + sweep_line(report) +
                    "; success = answered 200/404/410, hit = module found\n\n";
  out +=
      "| Upstream | Requests | Success | Hit rate | TTFB mean (ms) | TTFB p50 (ms) | "
      "TTFB p95 (ms) | Zips | Zip rate | Sync lag |\n";
  out += "|:--|--:|--:|--:|--:|--:|--:|--:|--:|:--|\n";
  for (const auto& upstream : report.upstreams) {
    auto cells = row_cells(upstream);
    std::string lag = upstream.skipped ? "skipped: " + *upstream.skipped : lag_count(upstream);
    if (!upstream.skipped && !upstream.lag.missing.empty()) {
      lag += " (" + lag_examples(upstream.lag) + ")";
    }
    const std::array<std::string, 10> row = {"`" + upstream.name + "`",
                                             cells[1],
                                             cells[2],
                                             cells[3],
                                             cells[4],
                                             cells[5],
                                             cells[6],
                                             cells[7],
                                             cells[9],
                                             lag};
    out += "|";
    for (const auto& cell : row) out += " " + markdown_cell(cell) + " |";
    out += "\n";
  }
  return out;
}

std::string render(const probe_report& report, output_format format) {
  switch (format) {
    case output_format::json:
      return render_json(report);
    case output_format::markdown:
      return render_markdown(report);
    case output_format::table:
      break;
  }
  return render_table(report);
}

}  // namespace gomodproxy::probe_report
