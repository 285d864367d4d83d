// The cache inventory over the real RocksDB store in a temporary directory.
#include "cache_admin/cache_inventory.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace gomodproxy::cache_admin {
namespace {

namespace fs = std::filesystem;

class inventory : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gmp-inventory-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    cache::rocksdb_options options;
    options.path = (dir_ / "db").string();
    options.memory_bytes = 1 << 20;
    auto opened = cache::open_rocksdb_store(options);
    ASSERT_TRUE(opened);
    store_ = std::move(*opened);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void put(const std::string& key, const std::string& body,
           cache::entry_kind kind = cache::entry_kind::immutable, std::int64_t stored_at = 0) {
    auto writer = store_->create(key);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(body));
    cache::entry_meta meta;
    meta.kind = kind;
    meta.stored_at_ms = stored_at;
    ASSERT_TRUE((*writer)->commit(meta));
  }

  bool present(const std::string& key) {
    auto found = store_->stat(key);
    return found && found->has_value();
  }

  // Two versions of one module, one of another, and a checksum database's records for them.
  void fill() {
    put("/example.com/hello/@v/list", "v1.0.0\nv1.1.0\n", cache::entry_kind::expiring, 2000);
    put("/example.com/hello/@latest", "{}", cache::entry_kind::expiring, 3000);
    put("/example.com/hello/@v/main.info", "{}", cache::entry_kind::expiring, 3000);
    put("/example.com/hello/@v/v1.0.0.info", "{}", cache::entry_kind::immutable, 1000);
    put("/example.com/hello/@v/v1.0.0.mod", "module example.com/hello\n",
        cache::entry_kind::immutable, 1000);
    put("/example.com/hello/@v/v1.0.0.zip", std::string(5000, 'z'), cache::entry_kind::immutable,
        1000);
    put("/example.com/hello/@v/v1.1.0.mod", "module example.com/hello\n",
        cache::entry_kind::immutable, 4000);
    put("/example.com/hello/@v/v1.2.0.info", "not found", cache::entry_kind::not_found, 5000);
    put("/example.com/!upper/@v/v1.0.0.mod", "module example.com/Upper\n",
        cache::entry_kind::immutable, 6000);
    put("/sumdb/sum.golang.org/lookup/example.com/hello@v1.0.0", "record",
        cache::entry_kind::immutable, 7000);
    put("/sumdb/sum.golang.org/tile/8/0/000", std::string(256, 't'), cache::entry_kind::immutable,
        7000);
    put("/sumdb/sum.golang.org/latest", "head", cache::entry_kind::expiring, 8000);
    put("not a protocol key", "x", cache::entry_kind::immutable, 9000);
  }

  fs::path dir_;
  std::unique_ptr<cache::cache_store> store_;
};

TEST_F(inventory, classifies_every_kind_of_key) {
  cache::entry_meta meta;
  EXPECT_EQ(classify_entry("/m.com/x/@v/list", meta), inventory_kind::list);
  EXPECT_EQ(classify_entry("/m.com/x/@latest", meta), inventory_kind::latest);
  EXPECT_EQ(classify_entry("/m.com/x/@v/master.info", meta), inventory_kind::query);
  EXPECT_EQ(classify_entry("/m.com/x/@v/v1.0.0.info", meta), inventory_kind::info);
  EXPECT_EQ(classify_entry("/m.com/x/@v/v1.0.0.mod", meta), inventory_kind::mod);
  EXPECT_EQ(classify_entry("/m.com/x/@v/v1.0.0.zip", meta), inventory_kind::zip);
  EXPECT_EQ(classify_entry("/sumdb/sum.golang.org/lookup/m.com/x@v1.0.0", meta),
            inventory_kind::sumdb_record);
  EXPECT_EQ(classify_entry("/sumdb/sum.golang.org/tile/8/1/002.p/5", meta),
            inventory_kind::sumdb_tile);
  EXPECT_EQ(classify_entry("/sumdb/sum.golang.org/tile/8/data/000", meta),
            inventory_kind::sumdb_tile);
  EXPECT_EQ(classify_entry("/sumdb/sum.golang.org/latest", meta), inventory_kind::sumdb_other);
  EXPECT_EQ(classify_entry("garbage", meta), inventory_kind::other);
  meta.kind = cache::entry_kind::not_found;
  EXPECT_EQ(classify_entry("/m.com/x/@v/v1.0.0.zip", meta), inventory_kind::negative);
}

TEST_F(inventory, stats_count_entries_bytes_and_ages_by_kind) {
  fill();
  auto summary = summarize_cache(*store_);
  ASSERT_TRUE(summary);
  const auto& zip = summary->by_kind[static_cast<std::size_t>(inventory_kind::zip)];
  EXPECT_EQ(zip.entries, 1u);
  EXPECT_EQ(zip.bytes, 5000u);
  const auto& mod = summary->by_kind[static_cast<std::size_t>(inventory_kind::mod)];
  EXPECT_EQ(mod.entries, 3u);
  EXPECT_EQ(mod.oldest_ms, 1000);
  EXPECT_EQ(mod.newest_ms, 6000);
  EXPECT_EQ(summary->by_kind[static_cast<std::size_t>(inventory_kind::negative)].entries, 1u);
  EXPECT_EQ(summary->by_kind[static_cast<std::size_t>(inventory_kind::sumdb_tile)].bytes, 256u);
  EXPECT_EQ(summary->by_kind[static_cast<std::size_t>(inventory_kind::other)].entries, 1u);
  EXPECT_EQ(summary->total.entries, 13u);
  EXPECT_EQ(summary->total.entries, store_->stats().entries);
  EXPECT_EQ(summary->total.bytes, store_->stats().bytes);
  EXPECT_EQ(summary->total.oldest_ms, 1000);
  EXPECT_EQ(summary->total.newest_ms, 9000);

  const auto text = format_summary(*summary);
  EXPECT_NE(text.find("zip: 1 entries, 5000 bytes, oldest 1970-01-01T00:00:01Z"), std::string::npos)
      << text;
  EXPECT_NE(text.find("total: 13 entries"), std::string::npos) << text;
  EXPECT_EQ(text.find("query: 0"), std::string::npos) << "kinds with no entries are left out";
  const auto json = summary_json(*summary);
  EXPECT_NE(json.find("\"zip\":{\"entries\":1,\"bytes\":5000,"), std::string::npos) << json;
}

TEST_F(inventory, stats_of_an_empty_cache_are_zero) {
  auto summary = summarize_cache(*store_);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->total.entries, 0u);
  EXPECT_NE(format_summary(*summary).find("total: 0 entries, 0 bytes\n"), std::string::npos);
  EXPECT_NE(format_summary(*summary).find("evictions: 0 entries, 0 bytes"), std::string::npos);
  EXPECT_NE(summary_json(*summary).find("\"evictions\":0,\"evicted_bytes\":0}"), std::string::npos);
}

TEST_F(inventory, ls_matches_module_paths_like_goprivate_and_never_lists_sumdb) {
  fill();
  auto all = list_modules(*store_, "");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 9u);
  for (const auto& entry : *all) EXPECT_FALSE(entry.key.starts_with("/sumdb/")) << entry.key;

  auto upper = list_modules(*store_, "example.com/U*");
  ASSERT_TRUE(upper);
  ASSERT_EQ(upper->size(), 1u);
  EXPECT_EQ(upper->front().module_path, "example.com/Upper");
  EXPECT_EQ(format_module_entries(*upper), "example.com/Upper v1.0.0 mod 25\n");

  auto prefix = list_modules(*store_, "example.com");
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->size(), 9u);
  auto none = list_modules(*store_, "golang.org/*");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(inventory, rm_of_a_version_removes_its_files_and_keeps_the_rest) {
  fill();
  auto removed = remove_module(*store_, "example.com/hello", "v1.0.0");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->size(), 3u);
  EXPECT_FALSE(present("/example.com/hello/@v/v1.0.0.zip"));
  EXPECT_FALSE(present("/example.com/hello/@v/v1.0.0.info"));
  EXPECT_TRUE(present("/example.com/hello/@v/v1.1.0.mod"));
  EXPECT_TRUE(present("/example.com/hello/@v/list"));
  EXPECT_TRUE(present("/sumdb/sum.golang.org/lookup/example.com/hello@v1.0.0"));
}

TEST_F(inventory, rm_of_a_module_removes_everything_of_it_but_checksum_records) {
  fill();
  auto removed = remove_module(*store_, "example.com/hello", std::nullopt);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->size(), 8u);
  EXPECT_FALSE(present("/example.com/hello/@v/list"));
  EXPECT_FALSE(present("/example.com/hello/@v/v1.2.0.info"));
  EXPECT_TRUE(present("/example.com/!upper/@v/v1.0.0.mod"));
  EXPECT_TRUE(present("/sumdb/sum.golang.org/lookup/example.com/hello@v1.0.0"));
  EXPECT_TRUE(present("/sumdb/sum.golang.org/tile/8/0/000"));
  EXPECT_EQ(store_->stats().entries, 5u);

  auto again = remove_module(*store_, "example.com/hello", std::nullopt);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

TEST(module_selector, parses_module_and_version) {
  auto whole = parse_module_selector("example.com/hello");
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->module_path, "example.com/hello");
  EXPECT_FALSE(whole->version);
  auto one = parse_module_selector("example.com/hello@v1.0.0");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->version, "v1.0.0");
  EXPECT_FALSE(parse_module_selector("example.com/hello@"));
  EXPECT_FALSE(parse_module_selector(""));
  EXPECT_FALSE(parse_module_selector("../etc"));
  EXPECT_FALSE(parse_module_selector("/sumdb/sum.golang.org/tile"));
}

}  // namespace
}  // namespace gomodproxy::cache_admin
