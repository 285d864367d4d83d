// A tiny checksum database for unit tests: a fresh Ed25519 key (test_signer), a log of the given
// records (at most 256, so one partial tile of height 8 holds every leaf), and its answers to
// /lookup, /tile and /latest, signed as sum.golang.org signs them.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"
#include "tests/support/cpp/test_signer.hpp"

namespace gomodproxy::test {

class test_checksum_database {
 public:
  /// `records` are go.sum line groups, e.g. "m v1.0.0 h1:...\nm v1.0.0/go.mod h1:...\n".
  test_checksum_database(std::string name, std::vector<std::string> records)
      : signer_(std::move(name)), records_(std::move(records)) {
    if (records_.empty() || records_.size() > 256) throw std::invalid_argument("1..256 records");
    for (const auto& record : records_) leaves_.push_back(sumdb::record_hash(record));
    sumdb::tree_head head;
    head.size = static_cast<std::int64_t>(leaves_.size());
    head.root = subtree_hash(0, leaves_.size());
    signed_tree_ = signer_.sign(sumdb::format_tree_head(head));
  }

  /// A tree head signed with this database's key, as its /latest would serve it.
  std::string sign_tree(const sumdb::tree_head& head) const {
    return signer_.sign(sumdb::format_tree_head(head));
  }

  /// "<name>+<hash>+<key>", what --sumdb-key takes.
  std::string verifier_key_text() const { return signer_.verifier_key_text(); }

  /// The body the database serves at `path` below its base URL ("/lookup/m@v",
  /// "/tile/8/0/000.p/N", "/latest"); nullopt for a 404.
  std::optional<std::string> answer(std::string_view path) const {
    if (path == "/latest") return signed_tree_;
    if (path.starts_with("/lookup/")) {
      const auto wanted = path.substr(8);
      const auto at = wanted.rfind('@');
      if (at == std::string_view::npos) return std::nullopt;
      const std::string line_start =
          std::string(wanted.substr(0, at)) + " " + std::string(wanted.substr(at + 1)) + " ";
      for (std::size_t id = 0; id < records_.size(); ++id) {
        if (records_[id].starts_with(line_start)) {
          return std::to_string(id) + "\n" + records_[id] + "\n" + signed_tree_;
        }
      }
      return std::nullopt;
    }
    sumdb::tile tile;
    tile.width = static_cast<int>(leaves_.size());
    if (path == "/" + sumdb::tile_path(tile)) {
      std::string bytes;
      for (const auto& leaf : leaves_) bytes.append(leaf.begin(), leaf.end());
      return bytes;
    }
    return std::nullopt;
  }

 private:
  // RFC 6962: split at the largest power of two below the count.
  sumdb::tlog_hash subtree_hash(std::size_t begin, std::size_t count) const {
    if (count == 1) return leaves_[begin];
    std::size_t left = 1;
    while (left * 2 < count) left *= 2;
    return sumdb::node_hash(subtree_hash(begin, left), subtree_hash(begin + left, count - left));
  }

  test_signer signer_;
  std::vector<std::string> records_;
  std::vector<sumdb::tlog_hash> leaves_;
  std::string signed_tree_;
};

}  // namespace gomodproxy::test
