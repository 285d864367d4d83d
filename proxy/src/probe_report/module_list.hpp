// The modules a probe asks every upstream about: the --modules file format and the built-in list.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"

namespace gomodproxy::probe_report {

/// One module to probe, optionally pinned to a version for its .info/.mod/.zip requests.
struct module_target {
  std::string path;
  /// Canonical version from a `path@version` line; nullopt means "the newest in each upstream's
  /// own list".
  std::optional<std::string> version;

  bool operator==(const module_target&) const = default;
};

/// Parses a modules file: one `path` or `path@version` per line; text from '#' to the end of a
/// line and blank lines are ignored. Returns the targets in file order. Fails with
/// errc::invalid_request and a one-line detail naming the first bad line ("line 3: ...") for an
/// invalid module path, a version that is not canonical semver valid for the path, a module listed
/// twice, or (with no line number) a file with no modules: "lists no modules".
[[nodiscard]] outcome_of<std::vector<module_target>> parse_module_list(std::string_view text);

/// Well-known public modules probed when no --modules file is given.
std::vector<module_target> default_module_targets();

/// "path" or "path@version", as the report and progress lines show a target.
std::string describe(const module_target& target);

}  // namespace gomodproxy::probe_report
