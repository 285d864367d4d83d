// The layout inside a bundle: the GOPROXY tree (<escaped module>/@v/list, <version>.info, .mod,
// .zip) and, per checksum database, sumdb/<name>/{supported,latest,lookup/...,tile/...}. A
// member's name is the proxy's cache key for the same answer without its leading '/'.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/failure.hpp"
#include "protocol/request.hpp"

namespace gomodproxy::bundle {

/// The member holding the answer cached under `cache_key` ("/example.com/!m/@v/v1.0.0.zip" ->
/// "example.com/!m/@v/v1.0.0.zip").
std::string member_for_key(std::string_view cache_key);

/// The cache key of a module file: "/<escaped path>/@v/<escaped version><suffix>", suffix one
/// of ".info", ".mod", ".zip".
std::string module_file_key(std::string_view module_path, std::string_view version,
                            std::string_view suffix);

/// "/<escaped path>/@v/list".
std::string list_key(std::string_view module_path);

/// What a member name asks for, as the proxy would parse the same request, or invalid_request
/// with the reason when the name is not one a bundle may hold: absolute, with "." or ".."
/// elements, empty elements, percent signs or backslashes, escaped other than canonically,
/// @latest or a non-canonical version, or a path the go command would refuse.
[[nodiscard]] outcome_of<protocol::module_request> parse_member_name(std::string_view name);

}  // namespace gomodproxy::bundle
