// GOPRIVATE-style glob lists: comma-separated path.Match patterns matched against path prefixes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gomodproxy::protocol {

/// Splits "a,*.corp.com,b/c/" into patterns (trailing '/' dropped, empty entries skipped).
std::vector<std::string> parse_glob_list(std::string_view list);

/// Go's path.Match for one pattern and one name ('*', '?', '[...]', '\\'); false on a bad pattern.
bool path_match(std::string_view pattern, std::string_view name);

/// module.MatchPrefixPatterns: true when some pattern matches a prefix of `path` with the same
/// number of '/'-separated elements as the pattern.
bool match_prefix_patterns(const std::vector<std::string>& patterns, std::string_view path);

}  // namespace gomodproxy::protocol
