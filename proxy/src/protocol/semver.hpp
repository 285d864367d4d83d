// Semantic versions as golang.org/x/mod/semver and module.CanonicalVersion define them.
#pragma once

#include <string>
#include <string_view>

namespace gomodproxy::protocol {

/// True for "v1", "v1.2", "v1.2.3", "v1.2.3-pre.1+build"; leading 'v' mandatory.
bool is_valid_semver(std::string_view v);

/// "v1.2" -> "v1.2.0"; drops build metadata except "+incompatible". "" when invalid.
std::string canonical_version(std::string_view v);

/// Semver precedence: <0, 0, >0. Invalid versions sort before valid ones and equal each other.
int compare_versions(std::string_view a, std::string_view b);

/// True when v has the pseudo-version shape (three forms, 14-digit timestamp, revision).
bool is_pseudo_version(std::string_view v);

/// "v2" for "v2.3.4-pre"; "" when invalid.
std::string major_of(std::string_view v);

}  // namespace gomodproxy::protocol
