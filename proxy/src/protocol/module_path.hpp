// Module path, file path and version validity (module.CheckPath / Check / CheckFilePath rules).
#pragma once

#include <cstddef>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::protocol {

// Each check_* below succeeds with no value, or fails with errc::invalid_request and a one-line
// reason as the detail.

/// Success when `path` is a valid module path.
[[nodiscard]] outcome_of<void> check_path(std::string_view path);

/// Success when `version` is valid for `path` (major-version suffix rules, +incompatible,
/// gopkg.in). `version` must be canonical semver.
[[nodiscard]] outcome_of<void> check_path_version(std::string_view path, std::string_view version);

/// check_path_version for a `path` that check_path has accepted already: the same answer without
/// validating the path a second time (the request parser's hot path).
[[nodiscard]] outcome_of<void> check_version_of_checked_path(std::string_view path,
                                                             std::string_view version);

/// Success when `name` is a valid zip file path element list (CheckFilePath).
[[nodiscard]] outcome_of<void> check_file_path(std::string_view name);

/// True when `element` can be a file-name element (used for versions in URLs).
bool is_valid_file_element(std::string_view element);

/// The longest file name the module cache can hold: NAME_MAX on Linux and macOS, 255 UTF-16 code
/// units on Windows.
inline constexpr std::size_t max_file_name_bytes = 255;

/// Success when each element of `escaped_path` (a module path in its !-escaped form, the form the
/// module cache stores) and `escaped_version` (may be empty) fits in a file name; otherwise the
/// reason gives the length, not the bytes, of the first one that does not.
[[nodiscard]] outcome_of<void> check_file_name_lengths(std::string_view escaped_path,
                                                       std::string_view escaped_version);

}  // namespace gomodproxy::protocol
