// Byte counts as users write them in flags, environment and the config file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::config {

/// Parses a whole number of bytes with an optional binary suffix: "1048576", "512KiB", "50MiB",
/// "2GiB", "1TiB" (also "B" for plain bytes). nullopt for anything else: signs, spaces,
/// fractions, decimal units like "MB", or a value that does not fit in 63 bits.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

/// The shortest exact spelling parse_byte_size reads back: "50MiB", "1536KiB", "0".
std::string format_byte_size(std::uint64_t bytes);

}  // namespace gomodproxy::config
