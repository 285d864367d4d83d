#include "sumdb/tlog.hpp"

#include <bit>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>

#include "common/errc.hpp"
#include "sumdb/sha256.hpp"

namespace gomodproxy::sumdb {
namespace {

tlog_hash sha256_of_parts(std::span<const std::string_view> parts) {
  sha256 hasher;
  for (std::string_view part : parts) hasher.update(part);
  return hasher.finish();
}

std::string_view bytes_of(const tlog_hash& hash) {
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

// Size of the left part when the records [lo, hi), hi - lo >= 2, split into a complete left
// subtree and the rest (RFC 6962's k: the largest power of two below hi - lo).
std::int64_t left_split(std::int64_t lo, std::int64_t hi) {
  return static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(hi - lo - 1)));
}

// [lo, hi) as complete subtrees, largest first: each is the largest power of two that fits.
template <typename Visit>
void for_each_complete_subtree(std::int64_t lo, std::int64_t hi, Visit visit) {
  while (lo < hi) {
    const auto width =
        static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(hi - lo)));
    visit(std::countr_zero(static_cast<std::uint64_t>(width)), lo);
    lo += width;
  }
}

void append_subtree_indexes(std::int64_t lo, std::int64_t hi, std::vector<std::int64_t>& indexes) {
  for_each_complete_subtree(lo, hi, [&](int level, std::int64_t start) {
    indexes.push_back(stored_hash_index(level, start >> level));
  });
}

// Hands out hashes read for an index list in the order the list was built.
class hash_cursor {
 public:
  explicit hash_cursor(const std::vector<tlog_hash>& hashes) : hashes_(hashes) {}
  const tlog_hash& next() { return hashes_[position_++]; }

 private:
  const std::vector<tlog_hash>& hashes_;
  std::size_t position_ = 0;
};

// Consumes the hashes append_subtree_indexes(lo, hi) asked for; the subtrees fold right to left.
tlog_hash subtree_hash(std::int64_t lo, std::int64_t hi, hash_cursor& cursor) {
  std::vector<tlog_hash> parts;
  for_each_complete_subtree(lo, hi, [&](int, std::int64_t) { parts.push_back(cursor.next()); });
  tlog_hash hash = parts.back();
  for (std::size_t i = parts.size() - 1; i-- > 0;) hash = node_hash(parts[i], hash);
  return hash;
}

boost::system::result<std::vector<tlog_hash>> read_exactly(
    const hash_reader& read, const std::vector<std::int64_t>& indexes) {
  auto hashes = read(indexes);
  if (!hashes) return hashes.error();
  if (hashes->size() != indexes.size()) return make_error_code(errc::verification_failed);
  return hashes;
}

void append_record_proof_indexes(std::int64_t lo, std::int64_t hi, std::int64_t n,
                                 std::vector<std::int64_t>& indexes) {
  if (hi - lo == 1) return;
  const std::int64_t k = left_split(lo, hi);
  if (n < lo + k) {
    append_record_proof_indexes(lo, lo + k, n, indexes);
    append_subtree_indexes(lo + k, hi, indexes);
  } else {
    append_subtree_indexes(lo, lo + k, indexes);
    append_record_proof_indexes(lo + k, hi, n, indexes);
  }
}

// Reads the hashes in the order append_record_proof_indexes listed them; the proof itself is
// ordered from the leaf up, so each level's sibling goes after the deeper ones.
void build_record_proof(std::int64_t lo, std::int64_t hi, std::int64_t n, hash_cursor& cursor,
                        std::vector<tlog_hash>& proof) {
  if (hi - lo == 1) return;
  const std::int64_t k = left_split(lo, hi);
  if (n < lo + k) {
    build_record_proof(lo, lo + k, n, cursor, proof);
    proof.push_back(subtree_hash(lo + k, hi, cursor));
  } else {
    const tlog_hash sibling = subtree_hash(lo, lo + k, cursor);
    build_record_proof(lo + k, hi, n, cursor, proof);
    proof.push_back(sibling);
  }
}

// The root of [lo, hi) implied by `proof` (its last hash is this level's sibling) and the leaf.
std::optional<tlog_hash> run_record_proof(std::span<const tlog_hash> proof, std::int64_t lo,
                                          std::int64_t hi, std::int64_t n, const tlog_hash& leaf) {
  if (hi - lo == 1) return proof.empty() ? std::optional(leaf) : std::nullopt;
  if (proof.empty()) return std::nullopt;
  const tlog_hash& sibling = proof.back();
  const auto deeper = proof.first(proof.size() - 1);
  const std::int64_t k = left_split(lo, hi);
  if (n < lo + k) {
    auto left = run_record_proof(deeper, lo, lo + k, n, leaf);
    if (!left) return std::nullopt;
    return node_hash(*left, sibling);
  }
  auto right = run_record_proof(deeper, lo + k, hi, n, leaf);
  if (!right) return std::nullopt;
  return node_hash(sibling, *right);
}

// The old tree is the records [0, old_size); within [lo, hi) it ends at old_size.
void append_tree_proof_indexes(std::int64_t lo, std::int64_t hi, std::int64_t old_size,
                               std::vector<std::int64_t>& indexes) {
  if (old_size == hi) {
    // The verifier knows the whole old tree's root; a later subtree must be given.
    if (lo != 0) append_subtree_indexes(lo, hi, indexes);
    return;
  }
  const std::int64_t k = left_split(lo, hi);
  if (old_size <= lo + k) {
    append_tree_proof_indexes(lo, lo + k, old_size, indexes);
    append_subtree_indexes(lo + k, hi, indexes);
  } else {
    append_subtree_indexes(lo, lo + k, indexes);
    append_tree_proof_indexes(lo + k, hi, old_size, indexes);
  }
}

void build_tree_proof(std::int64_t lo, std::int64_t hi, std::int64_t old_size, hash_cursor& cursor,
                      std::vector<tlog_hash>& proof) {
  if (old_size == hi) {
    if (lo != 0) proof.push_back(subtree_hash(lo, hi, cursor));
    return;
  }
  const std::int64_t k = left_split(lo, hi);
  if (old_size <= lo + k) {
    build_tree_proof(lo, lo + k, old_size, cursor, proof);
    proof.push_back(subtree_hash(lo + k, hi, cursor));
  } else {
    const tlog_hash sibling = subtree_hash(lo, lo + k, cursor);
    build_tree_proof(lo + k, hi, old_size, cursor, proof);
    proof.push_back(sibling);
  }
}

struct tree_roots {
  tlog_hash old_root;  ///< of the old records inside [lo, hi)
  tlog_hash root;      ///< of all of [lo, hi)
};

std::optional<tree_roots> run_tree_proof(std::span<const tlog_hash> proof, std::int64_t lo,
                                         std::int64_t hi, std::int64_t old_size,
                                         const tlog_hash& old_root) {
  if (old_size == hi) {
    if (lo == 0) {
      if (!proof.empty()) return std::nullopt;
      return tree_roots{old_root, old_root};
    }
    if (proof.size() != 1) return std::nullopt;
    return tree_roots{proof[0], proof[0]};
  }
  if (proof.empty()) return std::nullopt;
  const tlog_hash& sibling = proof.back();
  const auto deeper = proof.first(proof.size() - 1);
  const std::int64_t k = left_split(lo, hi);
  if (old_size <= lo + k) {
    auto left = run_tree_proof(deeper, lo, lo + k, old_size, old_root);
    if (!left) return std::nullopt;
    return tree_roots{left->old_root, node_hash(left->root, sibling)};
  }
  auto right = run_tree_proof(deeper, lo + k, hi, old_size, old_root);
  if (!right) return std::nullopt;
  return tree_roots{node_hash(sibling, right->old_root), node_hash(sibling, right->root)};
}

}  // namespace

tlog_hash record_hash(std::string_view record) {
  const std::array<std::string_view, 2> parts = {std::string_view("\x00", 1), record};
  return sha256_of_parts(parts);
}

tlog_hash node_hash(const tlog_hash& left, const tlog_hash& right) {
  const std::array<std::string_view, 3> parts = {std::string_view("\x01", 1), bytes_of(left),
                                                 bytes_of(right)};
  return sha256_of_parts(parts);
}

std::int64_t stored_hash_index(int level, std::int64_t n) {
  // Node (level, n) is stored right after the last leaf under it, leaf (n + 1) << level) - 1,
  // and the level hashes that leaf completed before it.
  const std::int64_t last_leaf = ((n + 1) << level) - 1;
  std::int64_t index = 0;
  for (std::int64_t m = last_leaf; m > 0; m >>= 1) index += m;
  return index + level;
}

tree_coordinate split_stored_hash_index(std::int64_t index) {
  // stored_hash_index(0, n) lies in [n, 2n), so the leaf stored last at or before `index` is at
  // least index / 2 and a few steps beyond.
  std::int64_t leaf = index / 2;
  std::int64_t leaf_index = stored_hash_index(0, leaf);
  while (true) {
    const std::int64_t next =
        leaf_index + 1 + std::countr_zero(static_cast<std::uint64_t>(leaf + 1));
    if (next > index) break;
    ++leaf;
    leaf_index = next;
  }
  const auto level = static_cast<int>(index - leaf_index);
  return {level, leaf >> level};
}

std::int64_t stored_hash_count(std::int64_t records) {
  if (records == 0) return 0;
  const std::int64_t last = records - 1;
  return stored_hash_index(0, last) + 1 + std::countr_one(static_cast<std::uint64_t>(last));
}

boost::system::result<std::vector<tlog_hash>> stored_hashes(std::int64_t n, const tlog_hash& record,
                                                            const hash_reader& read) {
  // Each trailing one bit of n closes a subtree whose left half is already stored.
  const int completed = std::countr_one(static_cast<std::uint64_t>(n));
  std::vector<std::int64_t> indexes(static_cast<std::size_t>(completed));
  for (int level = 0; level < completed; ++level) {
    indexes[static_cast<std::size_t>(completed - 1 - level)] =
        stored_hash_index(level, (n >> level) - 1);
  }
  std::vector<tlog_hash> left_halves;
  if (completed > 0) {
    auto read_hashes = read_exactly(read, indexes);
    if (!read_hashes) return read_hashes.error();
    left_halves = std::move(*read_hashes);
  }
  std::vector<tlog_hash> hashes{record};
  for (int level = 0; level < completed; ++level) {
    hashes.push_back(
        node_hash(left_halves[static_cast<std::size_t>(completed - 1 - level)], hashes.back()));
  }
  return hashes;
}

boost::system::result<tlog_hash> tree_hash(std::int64_t size, const hash_reader& read) {
  if (size == 0) return tlog_hash{};
  std::vector<std::int64_t> indexes;
  append_subtree_indexes(0, size, indexes);
  auto hashes = read_exactly(read, indexes);
  if (!hashes) return hashes.error();
  hash_cursor cursor(*hashes);
  return subtree_hash(0, size, cursor);
}

boost::system::result<std::vector<tlog_hash>> prove_record(std::int64_t size, std::int64_t n,
                                                           const hash_reader& read) {
  if (n < 0 || n >= size) return make_error_code(errc::invalid_request);
  std::vector<std::int64_t> indexes;
  append_record_proof_indexes(0, size, n, indexes);
  std::vector<tlog_hash> proof;
  if (indexes.empty()) return proof;
  auto hashes = read_exactly(read, indexes);
  if (!hashes) return hashes.error();
  hash_cursor cursor(*hashes);
  build_record_proof(0, size, n, cursor, proof);
  return proof;
}

bool check_record(std::span<const tlog_hash> proof, std::int64_t size, const tlog_hash& root,
                  std::int64_t n, const tlog_hash& record) {
  if (n < 0 || n >= size) return false;
  const auto implied = run_record_proof(proof, 0, size, n, record);
  return implied && *implied == root;
}

boost::system::result<std::vector<tlog_hash>> prove_tree(std::int64_t size, std::int64_t old_size,
                                                         const hash_reader& read) {
  if (old_size < 1 || old_size > size) return make_error_code(errc::invalid_request);
  std::vector<std::int64_t> indexes;
  append_tree_proof_indexes(0, size, old_size, indexes);
  std::vector<tlog_hash> proof;
  if (indexes.empty()) return proof;
  auto hashes = read_exactly(read, indexes);
  if (!hashes) return hashes.error();
  hash_cursor cursor(*hashes);
  build_tree_proof(0, size, old_size, cursor, proof);
  return proof;
}

bool check_tree(std::span<const tlog_hash> proof, std::int64_t size, const tlog_hash& root,
                std::int64_t old_size, const tlog_hash& old_root) {
  if (old_size < 1 || old_size > size) return false;
  const auto implied = run_tree_proof(proof, 0, size, old_size, old_root);
  return implied && implied->old_root == old_root && implied->root == root;
}

}  // namespace gomodproxy::sumdb
