// The checksum database's text bodies around the log: the signed tree head ("/latest", and the
// note closing each lookup) and the "/lookup/<module>@<version>" answer.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sumdb/tlog.hpp"
#include "sumdb/verify_errc.hpp"

namespace gomodproxy::sumdb {

/// A log of `size` records whose root hash is `root`.
struct tree_head {
  std::int64_t size = 0;
  tlog_hash root{};
  friend bool operator==(const tree_head&, const tree_head&) = default;
};

/// The tree `text` (a verified note's text) states: "go.sum database tree\n", the size in
/// canonical decimal, "\n", the root as padded base64 of 32 bytes, "\n"; later lines are
/// ignored, as the go command ignores them. verify_errc::malformed_tree otherwise, or when the
/// text exceeds 1 MB.
[[nodiscard]] boost::system::result<tree_head> parse_tree_head(std::string_view text);

/// "go.sum database tree\n<size>\n<base64 root>\n", the text a tree head note signs.
std::string format_tree_head(const tree_head& head);

/// A "/lookup" answer split into its parts; nothing in it is verified yet.
struct lookup_record {
  std::int64_t id = 0;      ///< the record's position in the log
  std::string text;         ///< the go.sum lines, each ending in "\n"; its record_hash is the leaf
  std::string signed_tree;  ///< the signed note of a tree head that contains the record
};

/// `body` as record id line, record text up to its first blank line, then the signed tree note.
/// verify_errc::malformed_record when the id is not canonical non-negative decimal, there is no
/// blank line, or the text is empty, starts with a blank line, is not valid UTF-8, or holds
/// control characters other than '\n'.
[[nodiscard]] boost::system::result<lookup_record> parse_lookup_response(std::string_view body);

/// The hash a record's go.sum lines give for the module zip (`go_mod` false: the line
/// "<path> <version> h1:...") or the go.mod ("<path> <version>/go.mod h1:..."), e.g. "h1:...";
/// nullopt when no line is for it.
std::optional<std::string> go_sum_hash(std::string_view record_text, std::string_view module_path,
                                       std::string_view version, bool go_mod);

}  // namespace gomodproxy::sumdb
