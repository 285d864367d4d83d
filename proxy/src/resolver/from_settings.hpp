// The resolver's options as the loaded settings describe them, shared by `serve` and by the
// admin commands that walk the same tiers and checksum databases.
#pragma once

#include "common/failure.hpp"
#include "config/settings.hpp"
#include "resolver/resolver.hpp"

namespace gomodproxy::resolver {

/// Everything but the metrics and health pointers; invalid_request with one line when a checksum
/// database key does not parse.
[[nodiscard]] outcome_of<resolver_options> options_from_settings(const config::settings& settings);

}  // namespace gomodproxy::resolver
