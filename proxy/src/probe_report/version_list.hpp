// Reading an @v/list body the way the go command does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gomodproxy::probe_report {

/// The versions of an @v/list body: the first field of each line when it is a canonical semver
/// that is not a pseudo-version (the go command drops pseudo-versions from lists, and only a
/// canonical version names an immutable .zip), without duplicates, in ascending semver order.
std::vector<std::string> parse_version_list(std::string_view body);

/// The highest of `versions` by semver precedence; nullopt for an empty list.
std::optional<std::string> newest_version(const std::vector<std::string>& versions);

}  // namespace gomodproxy::probe_report
