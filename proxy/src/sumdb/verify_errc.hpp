// Why checksum-database bytes (signed notes, verifier keys, tree heads, lookup records) were
// rejected. Callers outside sumdb treat every value as errc::verification_failed.
#pragma once

#include <boost/system/error_code.hpp>
#include <system_error>

namespace gomodproxy::sumdb {

enum class verify_errc {
  /// A signed note is not text, blank line, signature lines, or its text is not valid UTF-8.
  malformed_note = 1,
  /// A verifier key is not "<name>+<8 hex>+<base64 Ed25519 key>" or its key hash is wrong.
  malformed_key,
  /// The note carries no signature by the expected key name and key hash.
  unknown_key,
  /// A signature by the expected key does not verify over the note text.
  bad_signature,
  /// A tree head is not "go.sum database tree\n<size>\n<base64 hash>\n".
  malformed_tree,
  /// A lookup answer is not "<id>\n<record lines>\n<signed note>".
  malformed_record,
};

const boost::system::error_category& verify_category() noexcept;

inline boost::system::error_code make_error_code(verify_errc e) noexcept {
  return {static_cast<int>(e), verify_category()};
}

}  // namespace gomodproxy::sumdb

template <>
struct boost::system::is_error_code_enum<gomodproxy::sumdb::verify_errc> : std::true_type {};
