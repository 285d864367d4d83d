// Standard base64 (RFC 4648 alphabet, '=' padding) for the checksum database's text formats.
// Private to sumdb.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::sumdb {

/// `bytes` encoded with padding.
std::string encode_base64(std::string_view bytes);

/// The bytes `text` encodes, or nullopt unless `text` is padded standard base64 with nothing
/// else in it (no whitespace, no missing or extra padding).
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace gomodproxy::sumdb
