// Signed notes of the checksum database (golang.org/x/mod/sumdb/note): verifier keys, parsing a
// note into text and signatures, and checking its Ed25519 signature by one known key.
#pragma once

#include <array>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sumdb/verify_errc.hpp"

namespace gomodproxy::sumdb {

/// A parsed "<name>+<8 hex key hash>+<base64(0x01 || 32-byte Ed25519 public key)>".
struct verifier_key {
  std::string name;
  std::uint32_t key_hash = 0;
  std::array<unsigned char, 32> public_key{};
};

/// The key `encoded` describes. verify_errc::malformed_key when its syntax is wrong, the name is
/// empty or holds a '+' or a space, the algorithm is not Ed25519 (1), the key is not 32 bytes, or
/// the key hash is not the first 4 bytes of SHA-256(name "\n" 0x01 key).
[[nodiscard]] boost::system::result<verifier_key> parse_verifier_key(std::string_view encoded);

/// One signature line "— <name> <base64(key hash (4 bytes, big-endian) || signature)>".
struct note_signature {
  std::string name;
  std::uint32_t key_hash = 0;
  std::string signature;  ///< raw bytes after the key hash
};

struct signed_note {
  std::string text;  ///< the signed text, ending in "\n"
  std::vector<note_signature> signatures;
};

/// True when `text` is valid UTF-8 without control characters other than '\n': what a note,
/// and each record it vouches for, may hold.
bool is_note_text(std::string_view text);

/// `message` split into its text and signature lines, without checking any signature.
/// verify_errc::malformed_note unless it is valid UTF-8 without control characters other than
/// '\n', the last blank line is followed by 1 to 100 well-formed signature lines each ending in
/// "\n", and every signature has a valid name and at least one byte after its key hash.
[[nodiscard]] boost::system::result<signed_note> parse_note(std::string_view message);

/// The text of `message` once a signature by `key` (same name and key hash) verifies over it.
/// Errors: verify_errc::malformed_note as for parse_note; verify_errc::unknown_key when no
/// signature names this key; verify_errc::bad_signature when the first one that does fails.
/// Signatures by other keys are ignored.
[[nodiscard]] boost::system::result<std::string> open_note(std::string_view message,
                                                           const verifier_key& key);

}  // namespace gomodproxy::sumdb
