// Duration text as users write it in flags, environment and the config file.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace gomodproxy::config {

/// Parses "250ms", "60s", "5m", "1h", compounds like "1m30s", or a bare integer meaning seconds.
/// nullopt for anything else: signs, spaces, fractions, unknown units, or more than ten years.
/// Zero is returned as zero; callers decide whether zero is allowed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace gomodproxy::config
