// The checksum database's transparency log (RFC 6962 Merkle tree, Crosby-Wallach storage order):
// record and node hashes, stored hash indexes, tree hashes, and record and tree proofs.
#pragma once

#include <array>
#include <boost/system/result.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

namespace gomodproxy::sumdb {

/// A SHA-256 naming a record, an interior node or a whole tree.
using tlog_hash = std::array<unsigned char, 32>;

/// Reads the hashes at the given stored hash indexes (see stored_hash_index), in that order.
/// Must return exactly one hash per index or an error. Called synchronously and not kept.
using hash_reader = std::function<boost::system::result<std::vector<tlog_hash>>(
    std::span<const std::int64_t> indexes)>;

/// SHA-256(0x00 || record), the leaf hash of a record's text.
tlog_hash record_hash(std::string_view record);

/// SHA-256(0x01 || left || right), the hash of an interior node.
tlog_hash node_hash(const tlog_hash& left, const tlog_hash& right);

/// Where the hash of node `n` at `level` (level 0 = records) lives in the dense storage order in
/// which each record's hash is followed by the hashes of the subtrees it completes.
/// Requires level >= 0 and n >= 0.
std::int64_t stored_hash_index(int level, std::int64_t n);

struct tree_coordinate {
  int level = 0;
  std::int64_t n = 0;
  friend bool operator==(const tree_coordinate&, const tree_coordinate&) = default;
};

/// The inverse of stored_hash_index. Requires index >= 0.
tree_coordinate split_stored_hash_index(std::int64_t index);

/// How many hashes a log of `records` records has stored.
std::int64_t stored_hash_count(std::int64_t records);

/// The hashes to store, starting at stored_hash_index(0, n), when appending record `n` whose
/// hash is `record`: the record hash, then one per subtree it completes. Reads the left siblings
/// of those subtrees through `read`. Errors: the reader's error, or errc::verification_failed
/// when it returns the wrong number of hashes.
[[nodiscard]] boost::system::result<std::vector<tlog_hash>> stored_hashes(std::int64_t n,
                                                                          const tlog_hash& record,
                                                                          const hash_reader& read);

/// The root hash of the tree of the first `size` records (all zeros for size 0), from at most
/// 1 + log2(size) stored hashes read in one call. Errors as for stored_hashes.
[[nodiscard]] boost::system::result<tlog_hash> tree_hash(std::int64_t size,
                                                         const hash_reader& read);

/// RFC 6962 audit path: the sibling hashes from record `n` up to the root of the tree of `size`
/// records, bottom first. Requires 0 <= n < size (else errc::invalid_request). Other errors as for
/// stored_hashes.
[[nodiscard]] boost::system::result<std::vector<tlog_hash>> prove_record(std::int64_t size,
                                                                         std::int64_t n,
                                                                         const hash_reader& read);

/// True when `proof` shows that the tree of `size` records with root `root` holds record `n`
/// with hash `record`. False for any other proof, including one with extra or missing hashes, and
/// for n outside [0, size).
[[nodiscard]] bool check_record(std::span<const tlog_hash> proof, std::int64_t size,
                                const tlog_hash& root, std::int64_t n, const tlog_hash& record);

/// RFC 6962 consistency proof that the tree of `size` records extends the tree of its first
/// `old_size` records. Requires 1 <= old_size <= size (else errc::invalid_request). Other errors
/// as for stored_hashes.
[[nodiscard]] boost::system::result<std::vector<tlog_hash>> prove_tree(std::int64_t size,
                                                                       std::int64_t old_size,
                                                                       const hash_reader& read);

/// True when `proof` shows that the tree of `size` records with root `root` has the tree of
/// `old_size` records with root `old_root` as its prefix. False for any other proof and for
/// sizes outside 1 <= old_size <= size.
[[nodiscard]] bool check_tree(std::span<const tlog_hash> proof, std::int64_t size,
                              const tlog_hash& root, std::int64_t old_size,
                              const tlog_hash& old_root);

}  // namespace gomodproxy::sumdb
