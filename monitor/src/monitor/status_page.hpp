// Rendering of the status board for people (/status, one self-contained HTML page) and for
// programs (/status.json).
#pragma once

#include <string>

#include "monitor/status_board.hpp"

namespace gomodproxy::monitor {

/// The /status.json body: the report as one JSON object (times in RFC 3339 UTC and Unix
/// milliseconds, durations in milliseconds, rates as fractions from 0 to 1 or null).
std::string status_json(const status_report& report);

/// The /status page: one HTML document with inline CSS and SVG, no script and no external
/// asset, that reloads itself every `refresh_seconds`. Every text from outside (tier names,
/// reasons) is escaped.
std::string status_html(const status_report& report, int refresh_seconds = 10);

}  // namespace gomodproxy::monitor
