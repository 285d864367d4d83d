// The go command's choice of `M@latest` from a version list, for tiers that serve @v/list but
// no @latest (static GOPROXY trees, mirrors written from a module cache): the rules of
// cmd/go/internal/modload (query.go, modfile.go), without the network.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gomodproxy::resolver {

/// One `retract` directive of a go.mod: versions v with low <= v <= high.
struct retraction {
  std::string low;
  std::string high;
};

/// The tagged versions an @v/list body names, ascending by semver: the first field of each
/// line when it is a valid canonical version and not a pseudo-version (as go reads a list).
std::vector<std::string> tagged_versions(std::string_view list_body);

/// The `retract` directives of a go.mod (single versions, `[low, high]` intervals and blocks);
/// lines it cannot read are skipped, as a go.mod that does not parse retracts nothing.
std::vector<retraction> parse_retractions(std::string_view go_mod);

/// True when `go_mod` is the go.mod a proxy synthesises for a version that has none
/// ("module <path>\n"): such a version does not opt in to semantic import versioning.
bool is_synthesised_go_mod(std::string_view go_mod, std::string_view module_path);

/// The highest version of `ascending` (tagged_versions' order) that is not +incompatible and
/// not retracted: whether its go.mod is real decides if +incompatible versions count. nullopt
/// when there is none or when no +incompatible version is listed (nothing to decide).
std::optional<std::string> compatible_version_to_check(const std::vector<std::string>& ascending,
                                                       const std::vector<retraction>& retracted);

/// go's `latest`: the highest release that is not retracted, else the highest such
/// pre-release; +incompatible versions are left out when `drop_incompatible` (the version
/// compatible_version_to_check named has a real go.mod). nullopt when every version is retracted.
std::optional<std::string> latest_version(const std::vector<std::string>& ascending,
                                          const std::vector<retraction>& retracted,
                                          bool drop_incompatible);

}  // namespace gomodproxy::resolver
