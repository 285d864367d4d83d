#include "sumdb/tlog.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <map>
#include <string>
#include <vector>

#include "common/errc.hpp"
#include "sumdb/base64.hpp"
#include "sumdb/tile.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::int64_t log_size = 300;  // more than one full 256-wide tile and a partial one

std::string record_text(std::int64_t n) {
  return "example.com/m" + std::to_string(n) + " v1.0.0 h1:record" + std::to_string(n) + "=\n";
}

// RFC 6962 section 2.1 definitions, evaluated directly over the record hashes.
class naive_tree {
 public:
  explicit naive_tree(std::vector<tlog_hash> leaves) : leaves_(std::move(leaves)) {}

  tlog_hash root(std::int64_t lo, std::int64_t hi) {
    const auto key = std::make_pair(lo, hi);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    tlog_hash hash = leaves_[static_cast<std::size_t>(lo)];
    if (hi - lo > 1) {
      const std::int64_t k = split(hi - lo);
      hash = node_hash(root(lo, lo + k), root(lo + k, hi));
    }
    memo_.emplace(key, hash);
    return hash;
  }

  // PATH(m, D[lo:hi]), bottom first.
  std::vector<tlog_hash> audit_path(std::int64_t m, std::int64_t lo, std::int64_t hi) {
    if (hi - lo == 1) return {};
    const std::int64_t k = split(hi - lo);
    std::vector<tlog_hash> path;
    if (m < k) {
      path = audit_path(m, lo, lo + k);
      path.push_back(root(lo + k, hi));
    } else {
      path = audit_path(m - k, lo + k, hi);
      path.push_back(root(lo, lo + k));
    }
    return path;
  }

  // SUBPROOF(m, D[lo:hi], b).
  std::vector<tlog_hash> subproof(std::int64_t m, std::int64_t lo, std::int64_t hi, bool whole) {
    if (m == hi - lo) return whole ? std::vector<tlog_hash>{} : std::vector{root(lo, hi)};
    const std::int64_t k = split(hi - lo);
    std::vector<tlog_hash> proof;
    if (m <= k) {
      proof = subproof(m, lo, lo + k, whole);
      proof.push_back(root(lo + k, hi));
    } else {
      proof = subproof(m - k, lo + k, hi, false);
      proof.push_back(root(lo, lo + k));
    }
    return proof;
  }

 private:
  static std::int64_t split(std::int64_t n) {
    std::int64_t k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  }
  std::vector<tlog_hash> leaves_;
  std::map<std::pair<std::int64_t, std::int64_t>, tlog_hash> memo_;
};

// A log built with stored_hashes, record by record.
class tlog_fixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    storage_ = new std::vector<tlog_hash>;
    std::vector<tlog_hash> leaves;
    for (std::int64_t n = 0; n < log_size; ++n) {
      ASSERT_EQ(static_cast<std::int64_t>(storage_->size()), stored_hash_index(0, n));
      leaves.push_back(record_hash(record_text(n)));
      auto hashes = stored_hashes(n, leaves.back(), reader(n));
      ASSERT_TRUE(hashes.has_value()) << hashes.error().message();
      ASSERT_EQ(hashes->front(), leaves.back());
      storage_->insert(storage_->end(), hashes->begin(), hashes->end());
      ASSERT_EQ(static_cast<std::int64_t>(storage_->size()), stored_hash_count(n + 1));
    }
    naive_ = new naive_tree(std::move(leaves));
  }
  static void TearDownTestSuite() {
    delete storage_;
    delete naive_;
  }

  // Reads only what a log of `size` records has stored, so a read beyond it fails the test.
  static hash_reader reader(std::int64_t size) {
    return [size](std::span<const std::int64_t> indexes)
               -> boost::system::result<std::vector<tlog_hash>> {
      std::vector<tlog_hash> out;
      for (std::int64_t index : indexes) {
        if (index < 0 || index >= stored_hash_count(size)) {
          ADD_FAILURE() << "read of index " << index << " in a log of " << size;
          return make_error_code(errc::invalid_request);
        }
        out.push_back((*storage_)[static_cast<std::size_t>(index)]);
      }
      return out;
    };
  }

  static tlog_hash root(std::int64_t size) { return naive_->root(0, size); }

  static inline std::vector<tlog_hash>* storage_ = nullptr;
  static inline naive_tree* naive_ = nullptr;
};

TEST(tlog, hash_vectors) {
  // golang.org/x/mod/sumdb/tlog's tree test uses RecordHash("hello world") with this encoding.
  const tlog_hash hello = record_hash("hello world");
  EXPECT_EQ(encode_base64({reinterpret_cast<const char*>(hello.data()), hello.size()}),
            "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=");
  // RFC 6962's empty-leaf hash: SHA-256 of the single byte 0x00.
  const tlog_hash empty = record_hash("");
  EXPECT_EQ(encode_base64({reinterpret_cast<const char*>(empty.data()), empty.size()}),
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=");
  EXPECT_NE(node_hash(hello, empty), node_hash(empty, hello));
}

TEST(tlog, stored_hash_indexes) {
  // Each record's hash is followed by the subtrees it completes: record 1 completes (1, 0),
  // record 3 completes (1, 1) and then (2, 0).
  const std::vector<tree_coordinate> layout = {{0, 0}, {0, 1}, {1, 0}, {0, 2},
                                               {0, 3}, {1, 1}, {2, 0}, {0, 4}};
  for (std::size_t i = 0; i < layout.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(stored_hash_index(layout[i].level, layout[i].n), static_cast<std::int64_t>(i));
    EXPECT_EQ(split_stored_hash_index(static_cast<std::int64_t>(i)), layout[i]);
  }
  for (std::int64_t index = 0; index < 5000; ++index) {
    const tree_coordinate node = split_stored_hash_index(index);
    ASSERT_EQ(stored_hash_index(node.level, node.n), index) << index;
  }
  EXPECT_EQ(stored_hash_count(0), 0);
  EXPECT_EQ(stored_hash_count(1), 1);
  EXPECT_EQ(stored_hash_count(2), 3);
  EXPECT_EQ(stored_hash_count(4), 7);
  EXPECT_EQ(stored_hash_count(5), 8);
}

TEST_F(tlog_fixture, tree_hash_matches_the_recursive_definition) {
  EXPECT_EQ(*tree_hash(0, reader(0)), tlog_hash{});
  for (std::int64_t size = 1; size <= log_size; ++size) {
    std::size_t reads = 0;
    std::size_t hashes_read = 0;
    const hash_reader counting = [&](std::span<const std::int64_t> indexes) {
      ++reads;
      hashes_read += indexes.size();
      return reader(size)(indexes);
    };
    const auto hash = tree_hash(size, counting);
    ASSERT_TRUE(hash.has_value()) << size;
    ASSERT_EQ(*hash, root(size)) << size;
    EXPECT_EQ(reads, 1u);
    EXPECT_EQ(hashes_read,
              static_cast<std::size_t>(std::popcount(static_cast<std::uint64_t>(size))));
  }
  // Every stored node hash is the root of the records under it.
  for (std::int64_t index = 0; index < stored_hash_count(log_size); ++index) {
    const tree_coordinate node = split_stored_hash_index(index);
    ASSERT_EQ((*storage_)[static_cast<std::size_t>(index)],
              naive_->root(node.n << node.level, (node.n + 1) << node.level))
        << index;
  }
}

const std::vector<std::int64_t> proof_sizes = {1, 2, 3, 4, 5, 7, 8, 9, 100, 255, 256, 257, 300};

TEST_F(tlog_fixture, every_record_proof_checks_and_tampering_fails) {
  for (std::int64_t size : proof_sizes) {
    const tlog_hash tree_root = root(size);
    for (std::int64_t n = 0; n < size; ++n) {
      SCOPED_TRACE(testing::Message() << "size " << size << " record " << n);
      const tlog_hash leaf = record_hash(record_text(n));
      const auto proof = prove_record(size, n, reader(size));
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, naive_->audit_path(n, 0, size));
      ASSERT_TRUE(check_record(*proof, size, tree_root, n, leaf));

      EXPECT_FALSE(check_record(*proof, size, tree_root, n, record_hash(record_text(n + 1))));
      EXPECT_FALSE(check_record(*proof, size, root(size == 1 ? 2 : size - 1), n, leaf));
      if (n + 1 < size) {
        EXPECT_FALSE(check_record(*proof, size, tree_root, n + 1, leaf));
      }
      for (std::size_t i = 0; i < proof->size(); ++i) {
        auto tampered = *proof;
        tampered[i][i % 32] ^= 0x01;
        EXPECT_FALSE(check_record(tampered, size, tree_root, n, leaf)) << "hash " << i;
      }
      auto longer = *proof;
      longer.push_back(tree_root);
      EXPECT_FALSE(check_record(longer, size, tree_root, n, leaf));
      if (!proof->empty()) {
        const std::span<const tlog_hash> shorter(proof->data(), proof->size() - 1);
        EXPECT_FALSE(check_record(shorter, size, tree_root, n, leaf));
      }
    }
  }
}

TEST_F(tlog_fixture, every_tree_proof_checks_and_tampering_fails) {
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  for (std::int64_t size = 1; size <= 40; ++size) {
    for (std::int64_t old_size = 1; old_size <= size; ++old_size)
      pairs.emplace_back(old_size, size);
  }
  for (std::int64_t size : {255, 256, 257, 300}) {
    for (std::int64_t old_size = 1; old_size <= size; ++old_size)
      pairs.emplace_back(old_size, size);
  }
  for (const auto& [old_size, size] : pairs) {
    SCOPED_TRACE(testing::Message() << "old " << old_size << " new " << size);
    const tlog_hash old_root = root(old_size);
    const tlog_hash new_root = root(size);
    const auto proof = prove_tree(size, old_size, reader(size));
    ASSERT_TRUE(proof.has_value());
    ASSERT_EQ(*proof, naive_->subproof(old_size, 0, size, true));
    ASSERT_TRUE(check_tree(*proof, size, new_root, old_size, old_root));

    EXPECT_FALSE(check_tree(*proof, size, record_hash("forged root"), old_size, old_root));
    EXPECT_FALSE(check_tree(*proof, size, new_root, old_size, record_hash("forged")));
    if (old_size > 1) {
      EXPECT_FALSE(check_tree(*proof, size, new_root, old_size - 1, root(old_size - 1)));
    }
    for (std::size_t i = 0; i < proof->size(); ++i) {
      auto tampered = *proof;
      tampered[i][31 - i % 32] ^= 0x80;
      EXPECT_FALSE(check_tree(tampered, size, new_root, old_size, old_root)) << "hash " << i;
    }
    auto longer = *proof;
    longer.insert(longer.begin(), old_root);
    EXPECT_FALSE(check_tree(longer, size, new_root, old_size, old_root));
    if (!proof->empty()) {
      const std::span<const tlog_hash> shorter(proof->data() + 1, proof->size() - 1);
      EXPECT_FALSE(check_tree(shorter, size, new_root, old_size, old_root));
    }
  }
}

TEST_F(tlog_fixture, invalid_sizes_and_reader_failures) {
  EXPECT_EQ(prove_record(5, 5, reader(5)).error(), make_error_code(errc::invalid_request));
  EXPECT_EQ(prove_record(5, -1, reader(5)).error(), make_error_code(errc::invalid_request));
  EXPECT_EQ(prove_tree(5, 0, reader(5)).error(), make_error_code(errc::invalid_request));
  EXPECT_EQ(prove_tree(5, 6, reader(6)).error(), make_error_code(errc::invalid_request));
  const tlog_hash leaf = record_hash(record_text(0));
  EXPECT_FALSE(check_record({}, 1, leaf, 1, leaf));
  EXPECT_FALSE(check_record({}, 0, leaf, 0, leaf));
  EXPECT_TRUE(check_record({}, 1, leaf, 0, leaf));
  EXPECT_FALSE(check_tree({}, 1, leaf, 0, leaf));
  EXPECT_FALSE(check_tree({}, 1, leaf, 2, leaf));
  EXPECT_TRUE(check_tree({}, 1, leaf, 1, leaf));

  const hash_reader failing =
      [](std::span<const std::int64_t>) -> boost::system::result<std::vector<tlog_hash>> {
    return make_error_code(errc::cache_io);
  };
  const hash_reader short_read =
      [](std::span<const std::int64_t> indexes) -> boost::system::result<std::vector<tlog_hash>> {
    return std::vector<tlog_hash>(indexes.size() - 1);
  };
  for (const auto& [read, want] :
       {std::pair{failing, errc::cache_io}, std::pair{short_read, errc::verification_failed}}) {
    EXPECT_EQ(tree_hash(300, read).error(), make_error_code(want));
    EXPECT_EQ(prove_record(300, 17, read).error(), make_error_code(want));
    EXPECT_EQ(prove_tree(300, 17, read).error(), make_error_code(want));
    EXPECT_EQ(stored_hashes(7, leaf, read).error(), make_error_code(want));
  }
  // Record 8 completes no subtree, so nothing is read.
  const auto alone = stored_hashes(8, leaf, failing);
  ASSERT_TRUE(alone.has_value());
  EXPECT_EQ(*alone, std::vector<tlog_hash>{leaf});
}

// ---- tiles ----

TEST(tile, paths) {
  struct path_case {
    tile t;
    std::string_view want;
  };
  const std::vector<path_case> cases = {
      {{8, 0, 0, 256}, "tile/8/0/000"},
      {{8, 0, 1, 44}, "tile/8/0/001.p/44"},
      {{8, 1, 0, 1}, "tile/8/1/000.p/1"},
      {{8, 0, 999, 256}, "tile/8/0/999"},
      {{8, 0, 1000, 256}, "tile/8/0/x001/000"},
      {{8, 2, 1234067, 256}, "tile/8/2/x001/x234/067"},
      {{8, 0, 1234067, 5}, "tile/8/0/x001/x234/067.p/5"},
      {{8, -1, 5, 256}, "tile/8/data/005"},
      {{8, -1, 5, 3}, "tile/8/data/005.p/3"},
      {{4, 0, 1, 16}, "tile/4/0/001"},
  };
  for (const auto& c : cases) EXPECT_EQ(tile_path(c.t), c.want);
}

TEST(tile, coordinates_of_stored_hashes) {
  // Record 0 is the first hash of the first tile.
  EXPECT_EQ(tile_for_index(8, stored_hash_index(0, 0)).tile, (tile{8, 0, 0, 1}));
  // Record 299 is the 44th hash of level-0 tile 1.
  const tile_span last = tile_for_index(8, stored_hash_index(0, 299));
  EXPECT_EQ(last.tile, (tile{8, 0, 1, 44}));
  EXPECT_EQ(last.begin, 43u * 32);
  EXPECT_EQ(last.end, 44u * 32);
  // The node over records [256, 288) is folded from hashes 0..31 of that tile.
  const tile_span node = tile_for_index(8, stored_hash_index(5, 8));
  EXPECT_EQ(node.tile, (tile{8, 0, 1, 32}));
  EXPECT_EQ(node.begin, 0u);
  EXPECT_EQ(node.end, 32u * 32);
  // The root of the first 256 records is the first hash of level-1 tile 0.
  EXPECT_EQ(tile_for_index(8, stored_hash_index(8, 0)).tile, (tile{8, 1, 0, 1}));
  EXPECT_EQ(tile_for_index(8, stored_hash_index(9, 0)).tile, (tile{8, 1, 0, 2}));
}

TEST_F(tlog_fixture, every_stored_hash_comes_back_out_of_its_tile) {
  const hash_reader read = reader(log_size);
  for (std::int64_t index = 0; index < stored_hash_count(log_size); ++index) {
    SCOPED_TRACE(index);
    const tile_span span = tile_for_index(sumdb_tile_height, index);
    auto data = read_tile_data(span.tile, read);
    ASSERT_TRUE(data.has_value());
    ASSERT_EQ(data->size(), static_cast<std::size_t>(span.tile.width) * 32);
    const tlog_hash want = (*storage_)[static_cast<std::size_t>(index)];
    auto hash = hash_from_tile(span.tile, *data, index);
    ASSERT_TRUE(hash.has_value());
    EXPECT_EQ(*hash, want);

    // A wider tile, as a later partial or the full tile, gives the same hash.
    tile wider = span.tile;
    wider.width = wider.level == 0 && wider.index == 0 ? 256 : wider.width;
    if (wider.level == 0 && wider.index == 1) wider.width = 44;
    auto wider_data = read_tile_data(wider, read);
    ASSERT_TRUE(wider_data.has_value());
    EXPECT_EQ(*hash_from_tile(wider, *wider_data, index), want);
    // Extra bytes past the declared width are ignored.
    EXPECT_EQ(*hash_from_tile(span.tile, *wider_data, index), want);

    // Any changed byte among the hashes it is folded from changes it.
    std::string tampered = *data;
    tampered[span.begin + (span.end - span.begin) / 2] ^= 0x04;
    auto changed = hash_from_tile(span.tile, tampered, index);
    ASSERT_TRUE(changed.has_value());
    EXPECT_NE(*changed, want);
  }
}

TEST_F(tlog_fixture, tiles_that_do_not_hold_the_hash_are_rejected) {
  const hash_reader read = reader(log_size);
  const std::int64_t index = stored_hash_index(0, 299);
  const tile right{8, 0, 1, 44};
  const std::string data = *read_tile_data(right, read);
  ASSERT_TRUE(hash_from_tile(right, data, index).has_value());
  const auto failed = make_error_code(errc::verification_failed);
  EXPECT_EQ(hash_from_tile({8, 0, 1, 43}, data, index).error(), failed);  // too narrow
  EXPECT_EQ(hash_from_tile({8, 0, 0, 44}, data, index).error(), failed);  // another tile
  EXPECT_EQ(hash_from_tile({8, 1, 1, 44}, data, index).error(), failed);  // another level
  EXPECT_EQ(hash_from_tile(right, data.substr(0, data.size() - 1), index).error(), failed);
  EXPECT_EQ(hash_from_tile({8, -1, 1, 44}, data, index).error(), failed);  // data tile
  EXPECT_EQ(hash_from_tile({8, 0, 1, 0}, data, index).error(), failed);
  EXPECT_EQ(hash_from_tile({8, 0, 1, 257}, data, index).error(), failed);
  EXPECT_EQ(hash_from_tile({0, 0, 1, 1}, data, index).error(), failed);
  EXPECT_EQ(hash_from_tile(right, data, -1).error(), failed);
  EXPECT_EQ(read_tile_data({8, -1, 0, 1}, read).error(), make_error_code(errc::invalid_request));
}

}  // namespace
}  // namespace gomodproxy::sumdb
