// The RocksDB store's body files: bodies above inline_max_bytes kept as files of their own under
// the cache directory's bodies/, what their readers and writers promise, and how files of
// replaced, removed, abandoned, damaged and crashed versions are dealt with.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/rocksdb_layout.hpp"
#include "cache/size_cap.hpp"
#include "common/errc.hpp"
#include "tests/support/cpp/deleted_files.hpp"

namespace gomodproxy::cache {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t chunk_bytes = 4096;
constexpr std::size_t inline_max_bytes = 512;

std::string pattern_bytes(std::size_t n, char salt) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(salt)) % 251);
  }
  return out;
}

// Everything `fd` holds from its start, read with pread (the descriptor's offset is not moved,
// as sendfile with an explicit offset would not move it).
std::string whole_file(int fd) {
  std::string out;
  char buffer[8192];
  for (;;) {
    const auto got = ::pread(fd, buffer, sizeof buffer, static_cast<off_t>(out.size()));
    if (got <= 0) break;
    out.append(buffer, static_cast<std::size_t>(got));
  }
  return out;
}

class rocksdb_body_files_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gmp-body-files-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  rocksdb_options options() const {
    rocksdb_options o;
    o.path = (dir_ / "db").string();
    o.chunk_bytes = chunk_bytes;
    o.inline_max_bytes = inline_max_bytes;
    o.memory_bytes = 1u << 20;
    return o;
  }

  std::unique_ptr<cache_store> open() {
    auto store = open_rocksdb_store(options());
    if (!store) {
      ADD_FAILURE() << store.error().detail;
      return nullptr;
    }
    return std::move(*store);
  }

  void put(std::string_view key, std::string_view body) {
    auto writer = store_->create(key);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(body));
    ASSERT_TRUE((*writer)->commit({}));
  }

  fs::path bodies() const { return dir_ / "db" / "bodies"; }

  std::set<std::string> body_files() const {
    std::set<std::string> out;
    for (const auto& entry : fs::directory_iterator(bodies())) {
      out.insert(entry.path().filename().string());
    }
    return out;
  }

  // The body's one file (the test's entries are the only ones with a file).
  fs::path only_body_file() const {
    const auto files = body_files();
    EXPECT_EQ(files.size(), 1u);
    return files.empty() ? fs::path{} : bodies() / *files.begin();
  }

  std::unique_ptr<entry_reader> open_entry(std::string_view key) {
    auto reader = store_->open(key);
    EXPECT_TRUE(reader) << reader.error().message();
    if (!reader) return nullptr;
    return std::move(*reader);
  }

  // The body read whole through view(), in order, as a TLS answer or a bundle reads it.
  static result<std::string> view_whole(entry_reader& reader) {
    std::string out;
    while (out.size() < reader.meta().size) {
      auto piece = reader.view(out.size(), 1 << 20);
      if (!piece) return piece.error();
      if (piece->empty()) return errc::cache_corrupt;
      out.append(*piece);
    }
    return out;
  }

  fs::path dir_;
  std::unique_ptr<cache_store> store_;
};

TEST_F(rocksdb_body_files_test, a_large_body_is_a_file_named_by_its_fill_and_offered_to_send) {
  const auto body = pattern_bytes(3 * chunk_bytes + 17, 1);
  put("/example.com/m/@v/v1.0.0.zip", body);
  const auto name = only_body_file().filename().string();
  EXPECT_EQ(name.size(), 16u);
  EXPECT_TRUE(layout::parse_body_file_name(name).has_value()) << name;
  EXPECT_EQ(fs::file_size(bodies() / name), body.size());

  auto reader = open_entry("/example.com/m/@v/v1.0.0.zip");
  ASSERT_NE(reader, nullptr);
  const auto file = reader->file();
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(file->offset, 0u);
  EXPECT_TRUE(whole_file(file->fd) == body);
  const int flags = ::fcntl(file->fd, F_GETFD);
  EXPECT_TRUE(flags & FD_CLOEXEC);
  EXPECT_EQ(::fcntl(file->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  auto read = reader->read(0, body.size());
  ASSERT_TRUE(read);
  EXPECT_TRUE(*read == body);
  auto viewed = view_whole(*reader);
  ASSERT_TRUE(viewed);
  EXPECT_TRUE(*viewed == body);
}

TEST_F(rocksdb_body_files_test, bodies_up_to_the_inline_limit_have_no_file) {
  put("small", pattern_bytes(inline_max_bytes, 2));
  put("empty", "");
  EXPECT_TRUE(body_files().empty());
  auto reader = open_entry("small");
  ASSERT_NE(reader, nullptr);
  EXPECT_FALSE(reader->file().has_value());
}

TEST_F(rocksdb_body_files_test, views_hold_at_most_one_chunk) {
  const auto body = pattern_bytes(5 * chunk_bytes, 3);
  put("k", body);
  auto reader = open_entry("k");
  ASSERT_NE(reader, nullptr);
  for (const std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{100}, std::uint64_t{4095}}) {
    auto piece = reader->view(offset, body.size());
    ASSERT_TRUE(piece);
    EXPECT_EQ(piece->size(), chunk_bytes - offset % chunk_bytes);
    EXPECT_TRUE(*piece == std::string_view(body).substr(offset, piece->size()));
  }
}

TEST_F(rocksdb_body_files_test, a_writer_holds_at_most_one_chunk_and_reads_back_before_commit) {
  auto writer = store_->create("k");
  ASSERT_TRUE(writer);
  std::string body;
  for (int i = 0; i < 40; ++i) {
    // Pieces smaller and larger than a chunk, as a download delivers them.
    const auto piece = pattern_bytes(static_cast<std::size_t>(37 + i * 397), static_cast<char>(i));
    ASSERT_TRUE((*writer)->append(piece));
    body += piece;
    if (body.size() > inline_max_bytes) {
      const auto files = body_files();
      ASSERT_EQ(files.size(), 1u);
      EXPECT_GE(fs::file_size(bodies() / *files.begin()) + chunk_bytes, body.size())
          << "more than a chunk held in memory after " << body.size() << " bytes";
    }
  }
  for (const std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1000}, body.size() - 10}) {
    auto read = (*writer)->read(offset, 3 * chunk_bytes);
    ASSERT_TRUE(read);
    EXPECT_TRUE(*read == body.substr(offset, 3 * chunk_bytes)) << offset;
  }
  EXPECT_FALSE(store_->stat("k").value().has_value());
  ASSERT_TRUE((*writer)->commit({}));
  auto reader = open_entry("k");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(whole_file(reader->file()->fd) == body);
}

TEST_F(rocksdb_body_files_test, an_abandoned_writer_deletes_its_file) {
  {
    auto writer = store_->create("k");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(pattern_bytes(3 * chunk_bytes, 4)));
    EXPECT_EQ(body_files().size(), 1u);
  }
  EXPECT_TRUE(body_files().empty());
  EXPECT_FALSE(store_->stat("k").value().has_value());
}

TEST_F(rocksdb_body_files_test, replace_and_remove_delete_the_file_but_open_readers_keep_it) {
  const auto first = pattern_bytes(3 * chunk_bytes, 5);
  const auto second = pattern_bytes(2 * chunk_bytes + 1, 6);
  put("k", first);
  const auto first_file = only_body_file();
  auto old_reader = open_entry("k");
  ASSERT_NE(old_reader, nullptr);

  put("k", second);
  EXPECT_FALSE(fs::exists(first_file));
  const auto second_file = only_body_file();
  auto replaced_reader = open_entry("k");
  ASSERT_NE(replaced_reader, nullptr);

  ASSERT_TRUE(store_->remove("k"));
  EXPECT_TRUE(body_files().empty());
  EXPECT_EQ(store_->stats().entries, 0u);

  EXPECT_TRUE(whole_file(old_reader->file()->fd) == first);
  auto old_body = view_whole(*old_reader);
  ASSERT_TRUE(old_body);
  EXPECT_TRUE(*old_body == first);
  auto second_body = replaced_reader->read(0, second.size());
  ASSERT_TRUE(second_body);
  EXPECT_TRUE(*second_body == second);

  // A replacement by a small body deletes the file as well.
  put("k", first);
  EXPECT_EQ(body_files().size(), 1u);
  put("k", "small");
  EXPECT_TRUE(body_files().empty());
}

// open() reads the record, then opens the file it names; a replacement committed in between
// unlinks that file. Such an open reads the newer version instead of calling the entry corrupt.
TEST_F(rocksdb_body_files_test, opens_racing_replacements_always_get_a_whole_version) {
  constexpr int versions = 300;
  const auto version = [](int v) {
    return pattern_bytes(2 * chunk_bytes + static_cast<std::size_t>(v % 7),
                         static_cast<char>(v % 100));
  };
  put("k", version(0));
  std::atomic<bool> done{false};
  std::thread replacer([&] {
    for (int v = 1; v < versions; ++v) {
      auto writer = store_->create("k");
      if (!writer || !(*writer)->append(version(v))) break;
      entry_meta meta;
      meta.tier = std::to_string(v);
      if (!(*writer)->commit(meta)) break;
    }
    done = true;
  });
  int opened = 0;
  for (int i = 0; i < 20 * versions && !done.load(); ++i) {
    auto reader = store_->open("k");
    if (!reader) {
      ADD_FAILURE() << "open " << i << ": " << reader.error().message();
      break;
    }
    ASSERT_NE(*reader, nullptr);
    const int v = (*reader)->meta().tier.empty() ? 0 : std::stoi((*reader)->meta().tier);
    const auto body = view_whole(**reader);
    EXPECT_TRUE(body && *body == version(v)) << "version " << v;
    ++opened;
  }
  replacer.join();
  EXPECT_GT(opened, 0);
  EXPECT_EQ(body_files().size(), 1u);
}

// A body file stays open after its reader closes: the next open takes the same descriptor
// rather than opening the file again (here shown by the file having gone behind its back).
TEST_F(rocksdb_body_files_test, a_body_file_stays_open_for_the_next_reader) {
  const auto body = pattern_bytes(3 * chunk_bytes, 12);
  put("k", body);
  open_entry("k").reset();
  fs::remove(only_body_file());
  auto reader = open_entry("k");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(whole_file(reader->file()->fd) == body);
}

// Kept descriptors go with the version: once a replaced or removed version's readers are done,
// the process holds nothing of its deleted file, so its blocks are freed.
TEST_F(rocksdb_body_files_test, replace_and_remove_close_the_kept_descriptor) {
  put("k", pattern_bytes(3 * chunk_bytes, 13));
  open_entry("k").reset();
  auto reader = open_entry("k");
  put("k", pattern_bytes(3 * chunk_bytes, 14));
  EXPECT_EQ(test::open_deleted_files_in(bodies()), 1);
  reader.reset();
  EXPECT_EQ(test::open_deleted_files_in(bodies()), 0);
  open_entry("k").reset();
  ASSERT_TRUE(store_->remove("k"));
  EXPECT_TRUE(body_files().empty());
  EXPECT_EQ(test::open_deleted_files_in(bodies()), 0);
  EXPECT_EQ(open_entry("k"), nullptr);
}

TEST_F(rocksdb_body_files_test, a_missing_file_is_corrupt_and_the_entry_can_be_replaced) {
  put("k", pattern_bytes(3 * chunk_bytes, 7));
  fs::remove(only_body_file());
  auto reader = store_->open("k");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error(), errc::cache_corrupt);
  ASSERT_TRUE(store_->remove("k"));
  put("k", pattern_bytes(3 * chunk_bytes, 8));
  auto fresh = open_entry("k");
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(*fresh->read(0, 3 * chunk_bytes) == pattern_bytes(3 * chunk_bytes, 8));
}

TEST_F(rocksdb_body_files_test, a_file_of_another_size_is_corrupt) {
  for (const bool longer : {false, true}) {
    put("k", pattern_bytes(3 * chunk_bytes, 9));
    const auto file = only_body_file();
    fs::resize_file(file, longer ? 3 * chunk_bytes + 1 : 3 * chunk_bytes - 1);
    auto reader = store_->open("k");
    ASSERT_FALSE(reader) << "longer " << longer;
    EXPECT_EQ(reader.error(), errc::cache_corrupt);
    ASSERT_TRUE(store_->remove("k"));
    EXPECT_TRUE(body_files().empty());
  }
}

TEST_F(rocksdb_body_files_test, a_flipped_byte_fails_whoever_reads_the_body_whole) {
  const auto body = pattern_bytes(3 * chunk_bytes + 5, 10);
  put("k", body);
  {
    std::fstream file(only_body_file(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(chunk_bytes + 3);
    file.put(static_cast<char>(body[chunk_bytes + 3] ^ 0x20));
  }
  auto reader = open_entry("k");
  ASSERT_NE(reader, nullptr);
  auto viewed = view_whole(*reader);
  ASSERT_FALSE(viewed);
  EXPECT_EQ(viewed.error(), errc::cache_corrupt);
  auto again = open_entry("k");
  ASSERT_NE(again, nullptr);
  auto read = again->read(0, body.size());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), errc::cache_corrupt);
  // Pieces read out of order are not checked (a range request); they are what the file holds.
  auto third = open_entry("k");
  ASSERT_NE(third, nullptr);
  auto piece = third->read(2 * chunk_bytes, 100);
  ASSERT_TRUE(piece);
  EXPECT_TRUE(*piece == body.substr(2 * chunk_bytes, 100));
}

TEST_F(rocksdb_body_files_test, collect_garbage_deletes_files_no_record_names) {
  const auto kept = pattern_bytes(3 * chunk_bytes, 11);
  put("kept", kept);
  const auto kept_file = only_body_file().filename().string();
  auto writing = store_->create("writing");
  ASSERT_TRUE(writing);
  ASSERT_TRUE((*writing)->append(pattern_bytes(2 * chunk_bytes, 12)));
  writing->reset();
  store_.reset();

  // What a crash leaves: a file whose fill wrote it (up to its fdatasync, say) but never wrote
  // the record naming it. Fill ids below the next one are the dead process's.
  const auto orphan = layout::body_file_name(1);
  ASSERT_NE(orphan, kept_file);
  std::ofstream(bodies() / orphan) << pattern_bytes(5000, 13);
  // Not a body file's name: not the store's to delete.
  std::ofstream(bodies() / "notes.txt") << "keep";

  store_ = open();
  ASSERT_NE(store_, nullptr);
  auto in_progress = store_->create("in-progress");
  ASSERT_TRUE(in_progress);
  ASSERT_TRUE((*in_progress)->append(pattern_bytes(2 * chunk_bytes, 14)));
  auto collected = store_->collect_garbage();
  ASSERT_TRUE(collected);
  EXPECT_EQ(*collected, 1u);
  const auto left = body_files();
  EXPECT_FALSE(left.contains(orphan));
  EXPECT_TRUE(left.contains(kept_file));
  EXPECT_TRUE(left.contains("notes.txt"));
  EXPECT_EQ(left.size(), 3u) << "the writer in progress keeps its file";
  ASSERT_TRUE((*in_progress)->commit({}));
  EXPECT_EQ(store_->collect_garbage().value(), 0u);
  auto reader = open_entry("kept");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(*reader->read(0, kept.size()) == kept);
  auto committed = open_entry("in-progress");
  ASSERT_NE(committed, nullptr);
  EXPECT_TRUE(*committed->read(0, 2 * chunk_bytes) == pattern_bytes(2 * chunk_bytes, 14));
}

TEST_F(rocksdb_body_files_test, body_files_count_toward_the_directory_size) {
  const auto before = size_cap::disk_usage(options().path);
  ASSERT_TRUE(before);
  put("k", pattern_bytes(1u << 20, 15));
  const auto after = size_cap::disk_usage(options().path);
  ASSERT_TRUE(after);
  EXPECT_GE(*after, *before + (1u << 20));
}

TEST_F(rocksdb_body_files_test, chunked_entries_of_an_older_cache_stay_readable) {
  const auto old_body = pattern_bytes(5 * chunk_bytes + 7, 16);
  store_.reset();
  {
    auto o = options();
    o.body_files = false;
    auto store = open_rocksdb_store(o);
    ASSERT_TRUE(store);
    auto writer = (*store)->create("old");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(old_body));
    ASSERT_TRUE((*writer)->commit({}));
  }
  store_ = open();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(body_files().empty());
  auto reader = open_entry("old");
  ASSERT_NE(reader, nullptr);
  EXPECT_FALSE(reader->file().has_value());
  EXPECT_TRUE(*reader->read(0, old_body.size()) == old_body);
  // Its replacement is a file, and the old chunks go with the old version.
  put("old", old_body);
  EXPECT_EQ(body_files().size(), 1u);
  auto replaced = open_entry("old");
  ASSERT_NE(replaced, nullptr);
  EXPECT_TRUE(replaced->file().has_value());
  EXPECT_EQ(store_->stats().entries, 1u);
  EXPECT_EQ(store_->stats().bytes, old_body.size());
}

}  // namespace
}  // namespace gomodproxy::cache
