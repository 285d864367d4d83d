#include "sumdb/tile_plan.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/errc.hpp"
#include "tests/support/cpp/failure_of.hpp"

namespace gomodproxy::sumdb {
namespace {

using test::failed_with;

// check_records_in_tree's verdict as a value to compare: nullopt, or the code and the detail.
std::optional<test::code_and_detail> checked(
    std::int64_t tree_size, const tlog_hash& root, const std::map<std::string, std::string>& tiles,
    std::span<const std::pair<std::int64_t, tlog_hash>> record_hashes) {
  return test::failure_of(check_records_in_tree(tree_size, root, tiles, record_hashes));
}

std::vector<std::string> paths_of(const std::vector<tile>& tiles) {
  std::vector<std::string> paths;
  for (const tile& t : tiles) paths.push_back(tile_path(t));
  return paths;
}

struct plan_case {
  std::int64_t tree_size;
  std::vector<std::int64_t> record_ids;
  std::int64_t older_tree_size;
  std::vector<std::string> want;
};

// Worked out by hand from TileHashReader: the tiles holding the complete subtrees of [0, N)
// (each at its width in the tree of N), then for each hash the full tiles below the first planned
// ancestor tile.
TEST(tile_plan, client_tiles_for_small_and_edge_tree_sizes) {
  const std::vector<plan_case> cases = {
      {1, {0}, 0, {"tile/8/0/000.p/1"}},
      {2, {}, 0, {"tile/8/0/000.p/2"}},
      {255, {0, 254}, 0, {"tile/8/0/000.p/255"}},
      // At 256 records the tree hash is level-1 tile 0's first hash; records need the full tile.
      {256, {}, 0, {"tile/8/1/000.p/1"}},
      {256, {0, 255}, 0, {"tile/8/0/000", "tile/8/1/000.p/1"}},
      {257, {256}, 0, {"tile/8/0/001.p/1", "tile/8/1/000.p/1"}},
      {257, {0, 256}, 0, {"tile/8/0/000", "tile/8/0/001.p/1", "tile/8/1/000.p/1"}},
      {65536, {}, 0, {"tile/8/2/000.p/1"}},
      {65536, {0, 65535}, 0, {"tile/8/0/000", "tile/8/0/255", "tile/8/1/000", "tile/8/2/000.p/1"}},
      {65537, {65536}, 0, {"tile/8/0/256.p/1", "tile/8/2/000.p/1"}},
      {65537,
       {65535, 65536},
       0,
       {"tile/8/0/255", "tile/8/0/256.p/1", "tile/8/1/000", "tile/8/2/000.p/1"}},
      // 70000 = 2^16 + 2^12 + 2^8 + 2^6 + 2^5 + 2^4: the subtrees lie in three partial tiles.
      {70000, {}, 0, {"tile/8/0/273.p/112", "tile/8/1/001.p/17", "tile/8/2/000.p/1"}},
      {70000,
       {0, 65536, 69887, 69888, 69999},
       0,
       {"tile/8/0/000", "tile/8/0/256", "tile/8/0/272", "tile/8/0/273.p/112", "tile/8/1/000",
        "tile/8/1/001.p/17", "tile/8/2/000.p/1"}},
      // A duplicate id plans its tiles once.
      {300, {5, 5, 299}, 0, {"tile/8/0/000", "tile/8/0/001.p/44", "tile/8/1/000.p/1"}},
      // 256^3 + 5 records: the last level-0 tile has index 65536, spelled in groups.
      {16777221, {16777220}, 0, {"tile/8/0/x065/536.p/5", "tile/8/3/000.p/1"}},
      // The older tree's hash is recomputed from the newer tree's tiles: 300 = 256 + 32 + 8 + 4
      // needs level-1 tile 0 (full at 70000) and level-0 tile 1 (full at 70000). The older
      // tree's own tree-hash tiles at 300 come too: the client re-checks its remembered head.
      {70000,
       {},
       300,
       {"tile/8/0/001.p/44", "tile/8/0/001", "tile/8/0/273.p/112", "tile/8/1/000.p/1",
        "tile/8/1/000", "tile/8/1/001.p/17", "tile/8/2/000.p/1"}},
      {70000, {69999}, 65536, {"tile/8/0/273.p/112", "tile/8/1/001.p/17", "tile/8/2/000.p/1"}},
      {257, {}, 256, {"tile/8/0/001.p/1", "tile/8/1/000.p/1"}},
      {257, {}, 257, {"tile/8/0/001.p/1", "tile/8/1/000.p/1"}},
      {257, {}, 1, {"tile/8/0/000.p/1", "tile/8/0/000", "tile/8/0/001.p/1", "tile/8/1/000.p/1"}},
      {65537,
       {},
       65535,
       {"tile/8/0/255.p/255", "tile/8/0/255", "tile/8/0/256.p/1", "tile/8/1/000.p/255",
        "tile/8/1/000", "tile/8/2/000.p/1"}},
  };
  for (const plan_case& c : cases) {
    const auto tiles = client_tiles(c.tree_size, c.record_ids, c.older_tree_size);
    ASSERT_TRUE(tiles.has_value()) << c.tree_size;
    EXPECT_EQ(paths_of(*tiles), c.want) << "tree " << c.tree_size << ", older " << c.older_tree_size
                                        << ", " << c.record_ids.size() << " records";
  }
}

TEST(tile_plan, client_tiles_refuses_ids_and_sizes_outside_the_tree) {
  const auto invalid = make_error_code(errc::invalid_request);
  const std::vector<std::int64_t> none;
  const std::vector<std::int64_t> at_size = {256};
  const std::vector<std::int64_t> negative = {-1};
  EXPECT_EQ(client_tiles(0, none).error(), invalid);
  EXPECT_EQ(client_tiles(-5, none).error(), invalid);
  EXPECT_EQ(client_tiles(256, at_size).error(), invalid);
  EXPECT_EQ(client_tiles(256, negative).error(), invalid);
  EXPECT_EQ(client_tiles(256, none, 257).error(), invalid);
  EXPECT_EQ(client_tiles(256, none, -1).error(), invalid);
  // A signed tree note may claim any size; past 2^62 stored hash indexes would overflow.
  EXPECT_EQ(client_tiles(std::numeric_limits<std::int64_t>::max(), none).error(), invalid);
  EXPECT_EQ(client_tiles((std::int64_t{1} << 62) + 1, none).error(), invalid);
  const std::vector<std::int64_t> last = {(std::int64_t{1} << 62) - 1};
  const auto largest = client_tiles(std::int64_t{1} << 62, last);
  ASSERT_TRUE(largest.has_value());
  EXPECT_EQ(largest->size(), 8u);
  EXPECT_EQ(largest->back(), (tile{8, 7, 0, 64}));
}

TEST(tile_plan, authenticating_tiles_adds_the_tree_hash_tiles_and_parent_chains) {
  // Record 0's proof in a tree of 700 reads tile/8/0/000, 8/0/002.p/188 and 8/1/000.p/2: they
  // already are the tree-hash tiles and tile/8/0/000's parent.
  const std::vector<tile> proof = {{8, 0, 0, 256}, {8, 0, 2, 188}, {8, 1, 0, 2}};
  auto plan = authenticating_tiles(700, proof);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(paths_of(*plan),
            (std::vector<std::string>{"tile/8/0/000", "tile/8/0/002.p/188", "tile/8/1/000.p/2"}));
  // A full level-0 tile deep in a tree of 70000 needs its level-1 parent, which hangs off the
  // tree-hash tile at level 2; a narrower tile is planned at its exact width.
  const std::vector<tile> deep = {{8, 0, 5, 256}, {8, 0, 273, 100}};
  plan = authenticating_tiles(70000, deep);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(paths_of(*plan),
            (std::vector<std::string>{"tile/8/0/005", "tile/8/0/273.p/112", "tile/8/1/000",
                                      "tile/8/1/001.p/17", "tile/8/2/000.p/1"}));
  const auto invalid = make_error_code(errc::invalid_request);
  const std::vector<tile> too_wide = {{8, 0, 2, 189}};
  EXPECT_EQ(authenticating_tiles(700, too_wide).error(), invalid);
  const std::vector<tile> past_the_end = {{8, 0, 3, 1}};
  EXPECT_EQ(authenticating_tiles(700, past_the_end).error(), invalid);
  const std::vector<tile> other_height = {{4, 0, 0, 16}};
  EXPECT_EQ(authenticating_tiles(700, other_height).error(), invalid);
  const std::vector<tile> data_tile = {{8, -1, 0, 256}};
  EXPECT_EQ(authenticating_tiles(700, data_tile).error(), invalid);
  EXPECT_EQ(authenticating_tiles(0, {}).error(), invalid);
  EXPECT_EQ(authenticating_tiles((std::int64_t{1} << 62) + 1, {}).error(), invalid);
}

std::string hashes_bytes(int count, unsigned char seed) {
  std::string bytes;
  for (int i = 0; i < count * 32; ++i) bytes.push_back(static_cast<char>(seed + i * 7));
  return bytes;
}

TEST(tile_plan, cut_tile_widths) {
  const tile full{8, 0, 3, 256};
  const std::string full_bytes = hashes_bytes(256, 1);
  for (int width : {1, 2, 100, 255, 256}) {
    const auto cut = cut_tile(tile{8, 0, 3, width}, full, full_bytes);
    ASSERT_TRUE(cut.has_value()) << width;
    EXPECT_EQ(*cut, full_bytes.substr(0, static_cast<std::size_t>(width) * 32)) << width;
  }
  const tile partial{8, 1, 0, 100};
  const std::string partial_bytes = hashes_bytes(100, 9);
  EXPECT_EQ(cut_tile({8, 1, 0, 50}, partial, partial_bytes), partial_bytes.substr(0, 50 * 32));
  EXPECT_EQ(cut_tile({8, 1, 0, 100}, partial, partial_bytes), partial_bytes);
  // Too narrow, another tile, bytes of the wrong length, or not a hash tile.
  EXPECT_FALSE(cut_tile({8, 1, 0, 101}, partial, partial_bytes));
  EXPECT_FALSE(cut_tile({8, 1, 0, 256}, partial, partial_bytes));
  EXPECT_FALSE(cut_tile({8, 0, 4, 10}, full, full_bytes));
  EXPECT_FALSE(cut_tile({8, 1, 3, 10}, full, full_bytes));
  EXPECT_FALSE(cut_tile({8, 0, 3, 10}, full, full_bytes.substr(1)));
  EXPECT_FALSE(cut_tile({8, 0, 3, 10}, full, full_bytes + "x"));
  EXPECT_FALSE(cut_tile({8, 0, 3, 0}, full, full_bytes));
  EXPECT_FALSE(cut_tile({8, -1, 3, 10}, {8, -1, 3, 256}, full_bytes));
  EXPECT_FALSE(cut_tile({4, 0, 3, 10}, {4, 0, 3, 16}, hashes_bytes(16, 1)));
}

TEST(tile_plan, parse_tile_path_is_the_inverse_of_tile_path) {
  for (const tile& t : std::vector<tile>{{8, 0, 0, 256},
                                         {8, 0, 1, 44},
                                         {8, 1, 0, 1},
                                         {8, 0, 1000, 256},
                                         {8, 2, 1234067, 255},
                                         {8, -1, 5, 3},
                                         {4, 0, 1, 16}}) {
    EXPECT_EQ(parse_tile_path(tile_path(t)), t) << tile_path(t);
  }
  for (std::string_view bad : {"",
                               "tile/",
                               "tile/8/0",
                               "tile/8/0/",
                               "tile/8/0/00",
                               "tile/8/0/0000",
                               "tile/08/0/000",
                               "tile/0/0/000",
                               "tile/31/0/000",
                               "tile/8/00/000",
                               "tile/8/x/000",
                               "tile/8/0/x000/001",
                               "tile/8/0/001/000",
                               "tile/8/0/x1/000",
                               "tile/8/0/000.p/256",
                               "tile/8/0/000.p/0",
                               "tile/8/0/000.p/01",
                               "tile/8/0/000.p/",
                               "tile/8/0/000.p",
                               "tile/8/0/000/",
                               "8/0/000",
                               "tile/8/0/000.p/5/6"}) {
    EXPECT_FALSE(parse_tile_path(bad)) << bad;
  }
}

constexpr std::int64_t log_size = 70000;

std::string record_text(std::int64_t n) {
  return "example.com/m" + std::to_string(n) + " v1.0.0 h1:record" + std::to_string(n) + "=\n";
}

// A log of 70000 records built with stored_hashes; tiles are read from it as the checksum
// database serves them.
class tile_plan_tree : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    storage_ = new std::vector<tlog_hash>;
    for (std::int64_t n = 0; n < log_size; ++n) {
      auto hashes = stored_hashes(n, record_hash(record_text(n)), reader());
      ASSERT_TRUE(hashes.has_value());
      storage_->insert(storage_->end(), hashes->begin(), hashes->end());
    }
  }
  static void TearDownTestSuite() { delete storage_; }

  static hash_reader reader() {
    return
        [](std::span<const std::int64_t> indexes) -> boost::system::result<std::vector<tlog_hash>> {
          std::vector<tlog_hash> out;
          for (std::int64_t index : indexes) {
            if (index < 0 || index >= static_cast<std::int64_t>(storage_->size())) {
              return make_error_code(errc::invalid_request);
            }
            out.push_back((*storage_)[static_cast<std::size_t>(index)]);
          }
          return out;
        };
  }

  static tlog_hash root(std::int64_t size) {
    auto hash = tree_hash(size, reader());
    EXPECT_TRUE(hash.has_value());
    return *hash;
  }

  static std::string tile_bytes(const tile& t) {
    auto bytes = read_tile_data(t, reader());
    EXPECT_TRUE(bytes.has_value()) << tile_path(t);
    return *bytes;
  }

  // The tile map an exporter writes for these records: exactly client_tiles' tiles.
  static std::map<std::string, std::string> tiles_for(std::int64_t size,
                                                      const std::vector<std::int64_t>& ids) {
    std::map<std::string, std::string> tiles;
    for (const tile& t : *client_tiles(size, ids)) tiles[tile_path(t)] = tile_bytes(t);
    return tiles;
  }

  static std::vector<std::pair<std::int64_t, tlog_hash>> records(
      const std::vector<std::int64_t>& ids) {
    std::vector<std::pair<std::int64_t, tlog_hash>> out;
    for (std::int64_t id : ids) out.emplace_back(id, record_hash(record_text(id)));
    return out;
  }

  static inline std::vector<tlog_hash>* storage_ = nullptr;
};

TEST_F(tile_plan_tree, accepts_the_planned_tiles_at_every_interesting_size) {
  struct tree_case {
    std::int64_t size;
    std::vector<std::int64_t> ids;
  };
  const std::vector<tree_case> cases = {
      {1, {0}},
      {2, {0, 1}},
      {255, {0, 254}},
      {256, {0, 255}},
      {257, {0, 256}},
      {300, {3, 255, 299}},
      {65535, {65534}},
      {65536, {0, 65535}},
      {65537, {65536}},
      {69999, {70, 69998}},
      {70000, {0, 65536, 69887, 69888, 69999}},
      {70000, {}},
  };
  for (const tree_case& c : cases) {
    EXPECT_EQ(checked(c.size, root(c.size), tiles_for(c.size, c.ids), records(c.ids)), std::nullopt)
        << c.size;
  }
}

TEST_F(tile_plan_tree, tiles_cut_from_full_tiles_verify) {
  // A proxy's cache holds tiles as wide as it last saw; the exporter cuts the planned widths.
  const std::vector<std::int64_t> ids = {0, 299};
  std::map<std::string, std::string> tiles;
  for (const tile& t : *client_tiles(300, ids)) {
    const tile full{t.height, t.level, t.index, 256};
    const auto cut = cut_tile(t, full, tile_bytes(full));
    ASSERT_TRUE(cut.has_value()) << tile_path(t);
    tiles[tile_path(t)] = *cut;
  }
  EXPECT_EQ(checked(300, root(300), tiles, records(ids)), std::nullopt);
}

TEST_F(tile_plan_tree, refuses_a_changed_byte_in_any_tile) {
  const std::vector<std::int64_t> ids = {0, 65536, 69999};
  const auto good = tiles_for(log_size, ids);
  for (const auto& [path, bytes] : good) {
    for (std::size_t offset : {std::size_t{0}, bytes.size() - 1}) {
      auto tiles = good;
      tiles[path][offset] = static_cast<char>(tiles[path][offset] ^ 1);
      const auto reason = checked(log_size, root(log_size), tiles, records(ids));
      ASSERT_TRUE(reason.has_value()) << path << " byte " << offset;
      EXPECT_EQ(reason->first, errc::verification_failed) << reason->second;
    }
  }
  // A changed hash in a full tile is named with the parent it disagrees with.
  auto tiles = good;
  tiles["tile/8/0/256"][40] ^= 1;
  EXPECT_EQ(checked(log_size, root(log_size), tiles, records(ids)),
            failed_with(errc::verification_failed,
                        "tile tile/8/0/256 does not match its parent tile tile/8/1/001.p/17"));
  tiles = good;
  tiles["tile/8/2/000.p/1"][0] ^= 1;
  EXPECT_EQ(checked(log_size, root(log_size), tiles, records(ids)),
            failed_with(
                errc::verification_failed,
                "tiles tile/8/2/000.p/1, tile/8/1/001.p/17, tile/8/0/273.p/112 do not hash to the "
                "root of the tree of 70000 records"));
}

TEST_F(tile_plan_tree, authenticating_tiles_catch_a_hash_no_proof_reads) {
  // A record proof reads only the siblings on the record's path; a tampered hash elsewhere in a
  // tile it loaded passes the proof but not the whole-tile check over authenticating_tiles.
  const std::int64_t size = 70000;
  auto proof = prove_record(size, 0, reader());
  ASSERT_TRUE(proof.has_value());
  EXPECT_TRUE(check_record(*proof, size, root(size), 0, record_hash(record_text(0))));
  const std::vector<tile> read_by_proof = {
      {8, 0, 0, 256}, {8, 1, 0, 256}, {8, 1, 1, 17}, {8, 0, 273, 112}};
  auto plan = authenticating_tiles(size, read_by_proof);
  ASSERT_TRUE(plan.has_value());
  std::map<std::string, std::string> tiles;
  for (const tile& t : *plan) tiles[tile_path(t)] = tile_bytes(t);
  EXPECT_EQ(checked(size, root(size), tiles, {}), std::nullopt);
  // The first hash of tile/8/1/000 (records 0-255) is not on record 0's path, which recomputes
  // it from tile/8/0/000; folded into its parent, the changed tile no longer matches.
  tiles["tile/8/1/000"][0] ^= 1;
  EXPECT_EQ(checked(size, root(size), tiles, {}),
            failed_with(errc::verification_failed,
                        "tile tile/8/1/000 does not match its parent tile tile/8/2/000.p/1"));
}

TEST_F(tile_plan_tree, refuses_a_missing_or_mis_sized_tile) {
  const std::vector<std::int64_t> ids = {0, 65536, 69999};
  const auto good = tiles_for(log_size, ids);
  for (const auto& [path, bytes] : good) {
    auto tiles = good;
    tiles.erase(path);
    EXPECT_EQ(checked(log_size, root(log_size), tiles, records(ids)),
              failed_with(errc::verification_failed, "tile " + path + " is missing"));
    tiles = good;
    tiles[path].pop_back();
    EXPECT_EQ(checked(log_size, root(log_size), tiles, records(ids)),
              failed_with(errc::verification_failed,
                          "tile " + path + " has " + std::to_string(bytes.size() - 1) +
                              " bytes, not " + std::to_string(bytes.size())));
  }
  EXPECT_EQ(checked(log_size, root(log_size), {}, records({})),
            failed_with(errc::verification_failed, "tile tile/8/2/000.p/1 is missing"));
}

TEST_F(tile_plan_tree, refuses_a_record_hash_at_the_wrong_id_or_outside_the_tree) {
  const auto tiles = tiles_for(log_size, {0, 1, 69999});
  auto wrong = records({0, 1, 69999});
  std::swap(wrong[0].second, wrong[1].second);
  EXPECT_EQ(checked(log_size, root(log_size), tiles, wrong),
            failed_with(errc::verification_failed,
                        "record 0 is not in the tree of 70000 records at that id"));
  auto changed = records({0, 1, 69999});
  changed[2].second[31] ^= 1;
  EXPECT_EQ(checked(log_size, root(log_size), tiles, changed),
            failed_with(errc::verification_failed,
                        "record 69999 is not in the tree of 70000 records at that id"));
  EXPECT_EQ(checked(log_size, root(log_size), tiles, records({70000})),
            failed_with(errc::invalid_request, "record 70000 is not in the tree of 70000 records"));
  EXPECT_EQ(checked(0, root(1), {}, records({})),
            failed_with(errc::invalid_request, "a tree of 0 records has no tiles"));
  EXPECT_EQ(checked(std::numeric_limits<std::int64_t>::max(), root(1), {}, records({})),
            failed_with(errc::invalid_request,
                        "the tree of 9223372036854775807 records is larger than 2^62 records"));
}

TEST_F(tile_plan_tree, refuses_a_wrong_root_or_size) {
  const std::vector<std::int64_t> ids = {0, 69998};
  const auto tiles = tiles_for(69999, ids);
  EXPECT_EQ(checked(69999, root(69999), tiles, records(ids)), std::nullopt);
  tlog_hash zero{};
  for (const auto& verdict : {checked(69999, root(70000), tiles, records(ids)),
                              checked(70000, root(70000), tiles, records(ids)),
                              checked(69999, zero, tiles, records(ids))}) {
    ASSERT_TRUE(verdict.has_value());
    EXPECT_EQ(verdict->first, errc::verification_failed) << verdict->second;
  }
}

TEST_F(tile_plan_tree, checks_tiles_beyond_the_plan_too) {
  const std::vector<std::int64_t> ids = {0};
  auto tiles = tiles_for(log_size, ids);
  // An authentic full tile elsewhere (its parent, level-1 tile 0, is planned for record 0) and an
  // authentic narrower copy of a planned partial tile are accepted.
  tiles["tile/8/0/100"] = tile_bytes({8, 0, 100, 256});
  tiles["tile/8/0/273.p/50"] = tile_bytes({8, 0, 273, 50});
  EXPECT_EQ(checked(log_size, root(log_size), tiles, records(ids)), std::nullopt);

  // An export for clients that remember the tree of 300 records adds the older tree's proof
  // tiles and its own tree-hash tiles at their widths at 300, narrower than at 70000.
  std::map<std::string, std::string> with_older;
  for (const tile& t : *client_tiles(log_size, ids, 300)) with_older[tile_path(t)] = tile_bytes(t);
  ASSERT_TRUE(with_older.contains("tile/8/0/001.p/44"));
  EXPECT_EQ(checked(log_size, root(log_size), with_older, records(ids)), std::nullopt);

  auto changed = tiles;
  changed["tile/8/0/100"][5] ^= 1;
  EXPECT_EQ(checked(log_size, root(log_size), changed, records(ids)),
            failed_with(errc::verification_failed,
                        "tile tile/8/0/100 does not match its parent tile tile/8/1/000"));
  changed = tiles;
  changed["tile/8/0/273.p/50"][5] ^= 1;
  EXPECT_EQ(checked(log_size, root(log_size), changed, records(ids)),
            failed_with(errc::verification_failed,
                        "tile tile/8/0/273.p/50 is not a prefix of tile tile/8/0/273.p/112"));

  // A full tile whose parent tile (level-1 tile 1, at width 17) is not in the map.
  auto orphan = tiles_for(log_size, {});
  orphan["tile/8/0/260"] = tile_bytes({8, 0, 260, 256});
  EXPECT_EQ(checked(log_size, root(log_size), orphan, records({})), std::nullopt);
  orphan = tiles_for(log_size, {});
  orphan["tile/8/0/100"] = tile_bytes({8, 0, 100, 256});
  EXPECT_EQ(checked(log_size, root(log_size), orphan, records({})),
            failed_with(errc::verification_failed, "tile tile/8/1/000 is missing"));

  // Wider than the tree allows, beyond the tree, not a hash tile, or not a tile name at all.
  for (const auto& [path, reason] : std::vector<std::pair<std::string, std::string>>{
           {"tile/8/0/273", "tile tile/8/0/273 is not in the tree of 70000 records"},
           {"tile/8/0/274.p/1", "tile tile/8/0/274.p/1 is not in the tree of 70000 records"},
           {"tile/8/3/000.p/1", "tile tile/8/3/000.p/1 is not in the tree of 70000 records"},
           {"tile/8/0/x999/x999/x999/x999/x999/999",
            "tile tile/8/0/x999/x999/x999/x999/x999/999 is not in the tree of 70000 records"},
           {"tile/8/data/000", "entry tile/8/data/000 is not a hash tile of height 8"},
           {"tile/4/0/000", "entry tile/4/0/000 is not a hash tile of height 8"},
           {"lookup/example.com/m@v1.0.0",
            "entry lookup/example.com/m@v1.0.0 is not a hash tile of height 8"}}) {
    auto extra = tiles_for(log_size, ids);
    extra[path] = std::string(32, 'a');
    EXPECT_EQ(checked(log_size, root(log_size), extra, records(ids)),
              failed_with(errc::invalid_request, reason));
  }
}

}  // namespace
}  // namespace gomodproxy::sumdb
