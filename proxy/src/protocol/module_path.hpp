// Module path, file path and version validity (module.CheckPath / Check / CheckFilePath rules).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::protocol {

/// nullopt when `path` is a valid module path; otherwise a one-line reason.
std::optional<std::string> check_path(std::string_view path);

/// nullopt when `version` is valid for `path` (major-version suffix rules, +incompatible,
/// gopkg.in); otherwise a one-line reason. `version` must be canonical semver.
std::optional<std::string> check_path_version(std::string_view path, std::string_view version);

/// nullopt when `name` is a valid zip file path element list (CheckFilePath); otherwise a reason.
std::optional<std::string> check_file_path(std::string_view name);

/// True when `element` can be a file-name element (used for versions in URLs).
bool is_valid_file_element(std::string_view element);

}  // namespace gomodproxy::protocol
