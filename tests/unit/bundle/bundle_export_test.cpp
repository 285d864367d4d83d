// Export over the real RocksDB store holding a checksum database log of more than one tile: the
// bundle carries the tiles that prove its records, plus those that prove its tree extends an
// older tree the cache has seen, which an importer remembering that older tree then relates.
#include "bundle/bundle_export.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bundle/bundle_import.hpp"
#include "bundle/tar_format.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"
#include "tests/support/cpp/temp_dir.hpp"
#include "tests/support/cpp/test_signer.hpp"

namespace gomodproxy::bundle {
namespace {

namespace fs = std::filesystem;

const std::string name = "sum.test.example";
constexpr std::int64_t log_size = 300;  // two level-0 tiles, the second partial
constexpr std::int64_t older_size = 10;

std::string testdata(const std::string& file) {
  std::ifstream in(std::string(GOMODPROXY_SOURCE_DIR) + "/tests/unit/sumdb/testdata/" + file,
                   std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string h1(bool zip, const std::string& bytes) {
  return *sumdb::module_file_h1_hash(
      zip, bytes.size(), [&bytes](std::uint64_t offset, std::size_t length) {
        return boost::system::result<std::string>(bytes.substr(offset, length));
      });
}

std::unique_ptr<cache::cache_store> open_store(const fs::path& path) {
  cache::rocksdb_options options;
  options.path = path.string();
  options.memory_bytes = 1 << 20;
  return std::move(*cache::open_rocksdb_store(options));
}

void put(cache::cache_store& store, const std::string& key, const std::string& body) {
  auto writer = store.create(key);
  ASSERT_TRUE(writer && (*writer)->append(body));
  ASSERT_TRUE((*writer)->commit({}));
}

class bundle_export : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(scratch_.write(".keep", "")).parent_path();
    zip_ = testdata("hello-v1.2.0.zip");
    mod_ = testdata("hello-v1.2.0.mod");
    // The log: filler records, hello v1.2.0's last.
    std::vector<std::string> records;
    for (std::int64_t id = 0; id + 1 < log_size; ++id) {
      records.push_back("example.com/m" + std::to_string(id) +
                        " v1.0.0/go.mod h1:" + std::string(43, 'A') + "=\n");
    }
    records.push_back("example.com/hello v1.2.0 " + h1(true, zip_) +
                      "\nexample.com/hello v1.2.0/go.mod " + h1(false, mod_) + "\n");
    for (std::int64_t id = 0; id < log_size; ++id) {
      auto hashes = sumdb::stored_hashes(id, sumdb::record_hash(records[id]), reader());
      ASSERT_TRUE(hashes);
      stored_.insert(stored_.end(), hashes->begin(), hashes->end());
    }
    store_ = open_store(dir_ / "exporting");
    const std::string base = "/example.com/hello/@v/v1.2.0";
    put(*store_, base + ".info", R"({"Version":"v1.2.0"})");
    put(*store_, base + ".mod", mod_);
    put(*store_, base + ".zip", zip_);
    put(*store_, "/sumdb/" + name + "/lookup/example.com/hello@v1.2.0",
        std::to_string(log_size - 1) + "\n" + records.back() + "\n" + note(log_size));
    // A record this cache verified when the tree was smaller: that tree is an older one seen.
    put(*store_, "/sumdb/" + name + "/lookup/example.com/m3@v1.0.0",
        "3\n" + records[3] + "\n" + note(older_size));
    // Tiles as the proxy caches them: full ones and the right edge at the newest size.
    for (const sumdb::tile tile :
         {sumdb::tile{8, 0, 0, 256}, sumdb::tile{8, 0, 1, 44}, sumdb::tile{8, 1, 0, 1}}) {
      put(*store_, "/sumdb/" + name + "/" + sumdb::tile_path(tile),
          *sumdb::read_tile_data(tile, reader()));
    }
    resolver::sumdb_options database;
    database.name = name;
    database.key = *sumdb::parse_verifier_key(signer_.verifier_key_text());
    request_.sumdbs.push_back(database);
    request_.wanted.push_back({"example.com/hello", "v1.2.0", false});
  }

  sumdb::hash_reader reader() {
    return [this](std::span<const std::int64_t> indexes)
               -> boost::system::result<std::vector<sumdb::tlog_hash>> {
      std::vector<sumdb::tlog_hash> hashes;
      for (const auto index : indexes) hashes.push_back(stored_.at(index));
      return hashes;
    };
  }

  sumdb::tree_head head(std::int64_t size) { return {size, *sumdb::tree_hash(size, reader())}; }
  std::string note(std::int64_t size) { return signer_.sign(sumdb::format_tree_head(head(size))); }

  std::vector<std::string> member_names(const std::string& path) {
    std::vector<std::string> names;
    auto tar = tar_reader::open(path);
    EXPECT_TRUE(tar) << tar.error().detail;
    if (!tar) return names;
    for (auto member = (*tar)->next(); member && *member; member = (*tar)->next()) {
      names.push_back((*member)->name);
    }
    return names;
  }

  test::temp_dir scratch_;
  fs::path dir_;
  std::string zip_;
  std::string mod_;
  test::test_signer signer_{name};
  std::vector<sumdb::tlog_hash> stored_;
  std::unique_ptr<cache::cache_store> store_;
  export_request request_;
};

TEST_F(bundle_export, the_bundle_proves_its_tree_extends_an_older_one_the_cache_saw) {
  const auto out = (dir_ / "bundle.tar").string();
  export_summary summary;
  std::vector<std::string> problems;
  ASSERT_TRUE(export_bundle(*store_, request_, out, summary, problems)) << problems.front();
  ASSERT_EQ(summary.databases.size(), 1u);
  EXPECT_EQ(summary.databases[0].tree_size, log_size);
  EXPECT_EQ(summary.databases[0].older_trees, 1u);
  const auto names = member_names(out);
  const std::string tiles = "sumdb/" + name + "/tile/8/";
  // The record's proof: its own tile and the level above; the older tree's: the first tile.
  for (const auto* tile : {"0/001.p/44", "1/000.p/1", "0/000"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), tiles + tile), names.end()) << tile;
  }

  // An importer that remembers the older tree proves the bundle's extends it.
  auto importing = open_store(dir_ / "importing");
  put(*importing, "/gomodproxy/verified-tree/" + name, sumdb::format_tree_head(head(older_size)));
  resolver::resolver_options resolver_options;
  resolver_options.sumdbs = request_.sumdbs;
  import_options options;
  options.sumdbs = request_.sumdbs;
  options.exempt = sumdb_exemption(resolver_options);
  const auto imported = import_bundle(*importing, out, options);
  ASSERT_TRUE(imported) << imported.error().detail;
  ASSERT_EQ(imported->notes.size(), 1u);
  EXPECT_EQ(imported->notes[0], name + ": tree of 300 records, extends the remembered one");

  // One that remembers a tree of the same size with another root refuses it as a fork.
  auto forked = open_store(dir_ / "forked");
  auto other = head(log_size);
  other.root[5] ^= 1;
  put(*forked, "/gomodproxy/verified-tree/" + name, sumdb::format_tree_head(other));
  const auto refused = import_bundle(*forked, out, options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::verification_failed);
  EXPECT_NE(refused.error().detail.find("forked"), std::string::npos) << refused.error().detail;
}

TEST_F(bundle_export, what_is_not_cached_is_named_and_nothing_is_written) {
  request_.wanted.push_back({"example.com/absent", "v1.0.0", true});
  const auto out = (dir_ / "bundle.tar").string();
  export_summary summary;
  std::vector<std::string> problems;
  ASSERT_FALSE(export_bundle(*store_, request_, out, summary, problems));
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "not cached: example.com/absent@v1.0.0 .mod",
                          "not cached: " + name + " record for example.com/absent@v1.0.0"}));
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace gomodproxy::bundle
