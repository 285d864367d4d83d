// Import validation over the real RocksDB store: a bundle built here from the sumdb test data
// and a test checksum database is committed whole, and each kind of damage refuses it whole.
#include "bundle/bundle_import.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bundle/tar_format.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tile_plan.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"
#include "tests/support/cpp/temp_dir.hpp"
#include "tests/support/cpp/test_checksum_database.hpp"

namespace gomodproxy::bundle {
namespace {

namespace fs = std::filesystem;

const std::string database_name = "sum.test.example";
const std::string module_path = "example.com/hello";
const std::string version = "v1.2.0";
const std::string base = "example.com/hello/@v/v1.2.0";

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(GOMODPROXY_SOURCE_DIR) + "/tests/unit/sumdb/testdata/" + name,
                   std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string h1(bool zip, const std::string& bytes) {
  auto hash = sumdb::module_file_h1_hash(
      zip, bytes.size(), [&bytes](std::uint64_t offset, std::size_t length) {
        return boost::system::result<std::string>(bytes.substr(offset, length));
      });
  return hash ? *hash : "";
}

using members = std::vector<std::pair<std::string, std::string>>;  // name, content

class bundle_import : public ::testing::Test {
 protected:
  bundle_import()
      : zip_(testdata("hello-v1.2.0.zip")),
        mod_(testdata("hello-v1.2.0.mod")),
        database_(database_name,
                  {module_path + " " + version + " " + h1(true, zip_) + "\n" + module_path + " " +
                       version + "/go.mod " + h1(false, mod_) + "\n",
                   "example.com/other v1.0.0/go.mod h1:" + std::string(43, 'A') + "=\n"}) {}

  void SetUp() override {
    dir_ = fs::path(scratch_.write(".keep", "")).parent_path();
    cache::rocksdb_options options;
    options.path = (dir_ / "db").string();
    options.memory_bytes = 1 << 20;
    auto opened = cache::open_rocksdb_store(options);
    ASSERT_TRUE(opened);
    store_ = std::move(*opened);
    resolver::sumdb_options database;
    database.name = database_name;
    database.key = *sumdb::parse_verifier_key(database_.verifier_key_text());
    options_.sumdbs.push_back(database);
    resolver_options_.sumdbs = options_.sumdbs;
    options_.exempt = sumdb_exemption(resolver_options_);
  }

  // The bundle `cache export` writes for hello v1.2.0.
  members valid() const {
    const std::string sumdb = "sumdb/" + database_name;
    members bundle{
        {base + ".info", R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})"},
        {base + ".mod", mod_},
        {base + ".zip", zip_},
        {"example.com/hello/@v/list", "v1.2.0\n"},
        {sumdb + "/supported", ""},
        {sumdb + "/latest", *database_.answer("/latest")},
        {sumdb + "/lookup/example.com/hello@v1.2.0",
         *database_.answer("/lookup/example.com/hello@v1.2.0")},
    };
    const std::int64_t ids[] = {0};
    for (const auto& tile : *sumdb::client_tiles(2, ids)) {
      bundle.emplace_back(sumdb + "/" + sumdb::tile_path(tile),
                          *database_.answer("/" + sumdb::tile_path(tile)));
    }
    return bundle;
  }

  std::string write(const members& bundle, char type_of_first = '0') {
    const auto path = (dir_ / "bundle.tar").string();
    std::FILE* out = std::fopen(path.c_str(), "wb");
    tar_writer tar(out);
    for (const auto& [name, content] : bundle) EXPECT_TRUE(tar.add_file(name, content, 0));
    EXPECT_TRUE(tar.finish());
    std::fclose(out);
    if (type_of_first != '0') {
      // Another typeflag, and the header checksum that goes with it.
      std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
      std::string header(512, '\0');
      file.read(header.data(), 512);
      header[156] = type_of_first;
      std::fill(header.begin() + 148, header.begin() + 156, ' ');
      unsigned sum = 0;
      for (unsigned char c : header) sum += c;
      std::snprintf(header.data() + 148, 8, "%06o", sum);
      header[155] = ' ';
      file.seekp(0);
      file.write(header.data(), 512);
    }
    return path;
  }

  // Imports `bundle`, expecting it taken; what the import says it did.
  import_summary expect_imported(const members& bundle) {
    auto imported = import_bundle(*store_, write(bundle), options_);
    EXPECT_TRUE(imported) << imported.error().detail;
    return imported ? *imported : import_summary{};
  }

  std::size_t cached_entries() {
    std::size_t count = 0;
    EXPECT_TRUE(store_->for_each_entry([&count](std::string_view, const cache::entry_meta&, bool) {
      count += 1;
      return true;
    }));
    return count;
  }

  // Imports `bundle`; expects a refusal of `code` whose detail contains `reason` and an
  // untouched cache.
  void expect_refused(errc code, const members& bundle, const std::string& reason,
                      char type = '0') {
    const auto before = cached_entries();
    const auto imported = import_bundle(*store_, write(bundle, type), options_);
    ASSERT_FALSE(imported) << reason;
    EXPECT_EQ(imported.error().code, code) << imported.error().detail;
    EXPECT_NE(imported.error().detail.find(reason), std::string::npos) << imported.error().detail;
    EXPECT_EQ(cached_entries(), before);
  }

  std::optional<std::string> body(const std::string& key) {
    auto reader = store_->open(key);
    if (!reader || !*reader) return std::nullopt;
    return *(*reader)->read(0, (*reader)->meta().size);
  }

  test::temp_dir scratch_;
  fs::path dir_;
  std::string zip_;
  std::string mod_;
  test::test_checksum_database database_;
  std::unique_ptr<cache::cache_store> store_;
  resolver::resolver_options resolver_options_;
  import_options options_;
};

members replaced(members bundle, const std::string& name, const std::string& content) {
  for (auto& member : bundle) {
    if (member.first == name) member.second = content;
  }
  return bundle;
}

members without(members bundle, const std::string& name) {
  std::erase_if(bundle, [&name](const auto& member) { return member.first == name; });
  return bundle;
}

TEST_F(bundle_import, a_valid_bundle_is_committed_under_the_serving_keys) {
  auto summary = expect_imported(valid());
  EXPECT_EQ(summary.versions, 1u);
  EXPECT_EQ(summary.files_added, 3u);
  EXPECT_EQ(summary.records, 1u);
  EXPECT_EQ(body("/" + base + ".zip"), zip_);
  EXPECT_EQ(body("/" + base + ".mod"), mod_);
  EXPECT_EQ(body("/sumdb/" + database_name + "/latest"), database_.answer("/latest"));
  auto list = store_->stat("/example.com/hello/@v/list");
  ASSERT_TRUE(list && *list);
  EXPECT_EQ((*list)->kind, cache::entry_kind::expiring);
  auto zip = store_->stat("/" + base + ".zip");
  EXPECT_EQ((*zip)->kind, cache::entry_kind::immutable);
  auto remembered = body("/gomodproxy/verified-tree/" + database_name);
  ASSERT_TRUE(remembered);
  EXPECT_EQ(sumdb::parse_tree_head(*remembered)->size, 2);

  // Again: nothing new, the same tree is consistent with itself.
  summary = expect_imported(valid());
  EXPECT_EQ(summary.files_present, 3u);
}

TEST_F(bundle_import, a_cached_list_is_merged) {
  auto writer = store_->create("/example.com/hello/@v/list");
  ASSERT_TRUE(writer && (*writer)->append("v1.0.0\nv1.3.0\n"));
  cache::entry_meta meta;
  meta.kind = cache::entry_kind::expiring;
  ASSERT_TRUE((*writer)->commit(meta));
  auto summary = expect_imported(valid());
  EXPECT_EQ(body("/example.com/hello/@v/list"), "v1.0.0\nv1.2.0\nv1.3.0\n");
}

TEST_F(bundle_import, bad_names_are_refused) {
  expect_refused(errc::verification_failed, replaced(valid(), base + ".info", "{}"),
                 ".info: not JSON whose Version");
  auto bundle = valid();
  bundle.emplace_back("../example.com/hello/@v/list", "v1.2.0\n");
  expect_refused(errc::invalid_request, bundle, "../example.com/hello/@v/list: '..' path element");
  bundle = valid();
  bundle.emplace_back("/example.com/hello/@v/list", "");
  expect_refused(errc::invalid_request, bundle, "absolute path");
  bundle = valid();
  bundle.emplace_back("README", "hello");
  expect_refused(errc::invalid_request, bundle, "README: ");
  bundle = valid();
  bundle.emplace_back("example.com/hello!/@v/list", "");
  expect_refused(errc::invalid_request, bundle, "example.com/hello!/@v/list: ");
  bundle = valid();
  bundle.emplace_back("example.com/Hello/@v/list", "");
  expect_refused(errc::invalid_request, bundle, "example.com/Hello/@v/list: ");
  bundle = valid();
  bundle.emplace_back("example.com/hello/@latest", "");
  expect_refused(errc::invalid_request, bundle, "example.com/hello/@latest: ");
  bundle = valid();
  bundle.emplace_back("example.com/hello/@v/list", "v1.2.0\n");
  expect_refused(errc::invalid_request, bundle, "example.com/hello/@v/list: duplicate member");
  expect_refused(errc::invalid_request, valid(), "not a regular file (tar type \"2\")", '2');
  bundle = valid();
  bundle.emplace_back("example.com/hello/@v/v1.0.0.mod\nforged line", "");
  expect_refused(errc::invalid_request, bundle, "example.com/hello/@v/v1.0.0.mod\\nforged line: ");
  bundle = valid();
  bundle.emplace_back("sumdb/" + database_name + "/tile/8/0/000.p/1", std::string(8193, 'x'));
  expect_refused(errc::too_large, bundle,
                 "tile/8/0/000.p/1: 8193 bytes is too large for this file");
  expect_refused(errc::invalid_request,
                 replaced(valid(), "example.com/hello/@v/list", "v1.2.0\nmaster\n"),
                 "list: line 2 is not a version");
}

TEST_F(bundle_import, module_files_must_match_the_signed_records) {
  auto mod = mod_;
  mod[0] = 'M';
  expect_refused(errc::verification_failed, replaced(valid(), base + ".mod", mod),
                 base + ".mod: h1 is ");
  expect_refused(errc::verification_failed,
                 without(valid(), "sumdb/" + database_name + "/lookup/example.com/hello@v1.2.0"),
                 base + ".mod: no " + database_name + " record in the bundle vouches for it");
}

TEST_F(bundle_import, records_and_tiles_must_prove_the_signed_tree) {
  const std::string lookup = "sumdb/" + database_name + "/lookup/example.com/hello@v1.2.0";
  auto answer = *database_.answer("/lookup/example.com/hello@v1.2.0");
  const auto at = answer.find("h1:") + 3;
  answer[at] = answer[at] == 'B' ? 'C' : 'B';
  expect_refused(errc::verification_failed, replaced(valid(), lookup, answer),
                 lookup + ": not in the bundle's signed tree");

  const std::string tile = "sumdb/" + database_name + "/tile/8/0/000.p/2";
  auto bytes = *database_.answer("/tile/8/0/000.p/2");
  bytes[40] ^= 1;
  expect_refused(errc::verification_failed, replaced(valid(), tile, bytes),
                 "sumdb/" + database_name + ": ");
  expect_refused(errc::invalid_request, without(valid(), "sumdb/" + database_name + "/latest"),
                 "latest: missing");

  // Signed by another key under the same name.
  test::test_checksum_database stranger(database_name,
                                        {"x v1.0.0/go.mod h1:" + std::string(43, 'A') + "=\n"});
  options_.sumdbs.front().key = *sumdb::parse_verifier_key(stranger.verifier_key_text());
  expect_refused(errc::verification_failed, valid(),
                 "latest: the signed tree does not verify with the configured key");
  options_.sumdbs.front().name = "other.example";
  expect_refused(errc::invalid_request, valid(),
                 "checksum database " + database_name + " is not configured here");
}

TEST_F(bundle_import, tiles_the_signed_tree_cannot_have_are_refused_before_they_are_read) {
  const std::string tiles = "sumdb/" + database_name + "/tile/";
  // The tree has 2 records: one partial tile of width 1 or 2 at level 0, nothing else.
  for (const std::string name :
       {"8/0/001", "8/0/000.p/3", "8/0/000", "8/1/000.p/1", "8/data/001.p/1", "4/0/000.p/2"}) {
    auto bundle = valid();
    bundle.emplace_back(tiles + name, std::string(32, 'x'));
    expect_refused(errc::invalid_request, bundle, tiles + name + ": ");
  }
  auto bundle = valid();
  bundle.emplace_back(tiles + "8/0/001", std::string(32, 'x'));
  expect_refused(errc::invalid_request, bundle, "not a tile of the signed tree of 2 records");
}

TEST_F(bundle_import, the_checksum_data_held_at_once_is_bounded_in_total) {
  EXPECT_EQ(options_.max_checksum_bytes, std::uint64_t{256} << 20);
  std::uint64_t checksum_bytes = 0;
  for (const auto& [name, content] : valid()) {
    if (name.find("/tile/") != std::string::npos || name.find("/lookup/") != std::string::npos) {
      checksum_bytes += content.size();
    }
  }
  options_.max_checksum_bytes = checksum_bytes - 1;
  expect_refused(errc::too_large, valid(),
                 "the bundle's tiles and checksum records exceed " +
                     std::to_string(checksum_bytes - 1) + " bytes");
  options_.max_checksum_bytes = checksum_bytes;
  expect_imported(valid());
}

TEST_F(bundle_import, a_remembered_tree_of_the_same_size_with_another_root_is_a_fork) {
  sumdb::tree_head forked{2, {}};
  forked.root[0] = 1;
  auto writer = store_->create("/gomodproxy/verified-tree/" + database_name);
  ASSERT_TRUE(writer && (*writer)->append(sumdb::format_tree_head(forked)));
  ASSERT_TRUE((*writer)->commit({}));
  expect_refused(errc::verification_failed, valid(), "the database forked");
}

TEST_F(bundle_import, a_cached_latest_of_a_larger_tree_stays) {
  // A fill cached the database's /latest of a tree larger than the bundle's, and no tree is
  // remembered yet, so the bundle's tree becomes the remembered one.
  const std::string latest_key = "/sumdb/" + database_name + "/latest";
  const auto larger = database_.sign_tree({3, {}});
  auto writer = store_->create(latest_key);
  ASSERT_TRUE(writer && (*writer)->append(larger));
  cache::entry_meta meta;
  meta.kind = cache::entry_kind::expiring;
  ASSERT_TRUE((*writer)->commit(meta));
  auto summary = expect_imported(valid());
  EXPECT_EQ(body(latest_key), larger);
  EXPECT_EQ(sumdb::parse_tree_head(*body("/gomodproxy/verified-tree/" + database_name))->size, 2);

  // One of a smaller tree is replaced by the bundle's.
  writer = store_->create(latest_key);
  ASSERT_TRUE(writer && (*writer)->append(database_.sign_tree({1, {}})));
  ASSERT_TRUE((*writer)->commit(meta));
  summary = expect_imported(valid());
  EXPECT_EQ(body(latest_key), database_.answer("/latest"));
}

TEST_F(bundle_import, exempt_modules_need_no_record) {
  resolver_options_.no_sumdb_patterns = {"example.com/hello"};
  const auto summary = expect_imported(
      without(valid(), "sumdb/" + database_name + "/lookup/example.com/hello@v1.2.0"));
  ASSERT_EQ(summary.unverified.size(), 1u);
  EXPECT_EQ(summary.unverified[0], "example.com/hello@v1.2.0 (matches no_sumdb)");
}

}  // namespace
}  // namespace gomodproxy::bundle
