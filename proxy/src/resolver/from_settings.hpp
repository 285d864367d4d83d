// The resolver's options as the loaded settings describe them, shared by `serve` and by the
// admin commands that walk the same tiers and checksum databases.
#pragma once

#include <optional>
#include <string>

#include "config/settings.hpp"
#include "resolver/resolver.hpp"

namespace gomodproxy::resolver {

/// Everything but the metrics and health pointers; nullopt with one line in `error` when a
/// checksum database key does not parse.
std::optional<resolver_options> options_from_settings(const config::settings& settings,
                                                      std::string& error);

}  // namespace gomodproxy::resolver
