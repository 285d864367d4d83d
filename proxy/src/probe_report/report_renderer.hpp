// The three shapes of a probe report: an aligned table for a terminal, one JSON object for
// machines, and a Markdown table to paste into an issue.
#pragma once

#include <string>
#include <string_view>

#include "probe_report/probe_report.hpp"

namespace gomodproxy::probe_report {

enum class output_format { table, json, markdown };

/// Aligned columns, one row per --upstreams entry, then the lagging versions, the most frequent
/// failure reasons and the skipped entries.
std::string render_table(const probe_report& report);

/// One JSON object, indented, ending in a newline. Field names are stable: top level
/// `modules`, `rounds`, `timeout_ms`, `upstreams`; per upstream `name`, `url` (without
/// credentials; null for direct/off), `skipped` (null or the reason), `requests`, `answered`,
/// `success_rate`, `lookups`, `hits`, `hit_rate`, `ttfb_ms` {`samples`, `mean`, `p50`, `p95`},
/// `by_kind` {`list`|`info`|`mod`|`zip`: {`requests`, `answered`, `ttfb_ms`}}, `zip` {`count`,
/// `bytes`, `time_ms`, `bytes_per_second`}, `sync_lag` {`compared_modules`, `missing_count`
/// (null when nothing was compared), `missing`} and `failures` [{`reason`, `count`}]. Times are
/// milliseconds, rates are fractions in [0, 1]; a figure without samples is null.
std::string render_json(const probe_report& report);

/// A GitHub-flavoured Markdown table with a header row and one row per --upstreams entry,
/// preceded by one line naming the sweep.
std::string render_markdown(const probe_report& report);

std::string render(const probe_report& report, output_format format);

/// "10s", "250ms", "1m30s": how a timeout is shown, in the syntax the flags accept.
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace gomodproxy::probe_report
