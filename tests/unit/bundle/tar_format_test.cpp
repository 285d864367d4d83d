// The bundle tar format: round trips, pax long names, and damaged archives.
#include "bundle/tar_format.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::bundle {
namespace {

namespace fs = std::filesystem;

// A fresh directory, removed afterwards.
class scratch {
 public:
  fs::path path() const { return fs::path(dir_.write(".keep", "")).parent_path(); }

 private:
  test::temp_dir dir_;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

struct read_member {
  std::string name;
  char type = '0';
  std::string content;
};

// Every member of the archive at `path`, or the reader's error.
std::vector<read_member> read_all(const fs::path& path, std::string& why) {
  std::vector<read_member> members;
  auto reader = tar_reader::open(path.string(), why);
  if (!reader) return members;
  for (;;) {
    std::optional<tar_member> member;
    if (!reader->next(member, why)) return members;
    if (!member) break;
    std::string content;
    EXPECT_TRUE(reader->read(member->offset, member->size, content, why));
    members.push_back({member->name, member->type, content});
  }
  why.clear();
  return members;
}

const std::string long_name = "example.com/" + std::string(120, 'a') + "/@v/v1.0.0.zip";

fs::path write_sample(const fs::path& dir) {
  const auto path = dir / "sample.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  std::string why;
  EXPECT_TRUE(tar.add_file("example.com/m/@v/list", "v1.0.0\n", 1700000000, why)) << why;
  EXPECT_TRUE(tar.add_file("sumdb/sum.golang.org/supported", "", 1700000000, why)) << why;
  // Written in pieces, larger than a block and not a multiple of one.
  const std::string big(3 * 512 + 17, 'z');
  EXPECT_TRUE(tar.begin_file(long_name, big.size(), 1700000000, why)) << why;
  EXPECT_TRUE(tar.write(std::string_view(big).substr(0, 700), why));
  EXPECT_TRUE(tar.write(std::string_view(big).substr(700), why));
  EXPECT_TRUE(tar.end_file(why)) << why;
  EXPECT_TRUE(tar.finish(why)) << why;
  std::fclose(out);
  return path;
}

TEST(tar_format, members_round_trip) {
  scratch dir;
  const auto path = write_sample(dir.path());
  EXPECT_EQ(fs::file_size(path) % 512, 0u);
  std::string why;
  const auto members = read_all(path, why);
  ASSERT_EQ(why, "");
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].name, "example.com/m/@v/list");
  EXPECT_EQ(members[0].content, "v1.0.0\n");
  EXPECT_EQ(members[1].name, "sumdb/sum.golang.org/supported");
  EXPECT_EQ(members[1].content, "");
  EXPECT_EQ(members[2].name, long_name);
  EXPECT_EQ(members[2].content, std::string(3 * 512 + 17, 'z'));
}

TEST(tar_format, a_long_name_travels_in_a_pax_header) {
  scratch dir;
  const auto bytes = slurp(write_sample(dir.path()));
  const std::string record = " path=" + long_name + "\n";
  const auto at = bytes.find(record);
  ASSERT_NE(at, std::string::npos);
  // The record's length counts its own digits.
  const auto start = bytes.rfind('\0', at) + 1;
  EXPECT_EQ(std::stoul(bytes.substr(start, at - start)), at + record.size() - start);
  // After a one-block member and an empty one (three blocks): the pax header.
  EXPECT_EQ(bytes[3 * 512 + 156], 'x');
}

TEST(tar_format, a_cut_archive_is_truncated_wherever_it_is_cut) {
  scratch dir;
  const auto whole = slurp(write_sample(dir.path()));
  // Every cut before the end-of-archive marker: inside headers, contents and padding.
  for (std::size_t cut = 0; cut + 2 * 512 <= whole.size(); cut += 100) {
    const auto path = dir.path() / "cut.tar";
    spit(path, whole.substr(0, cut));
    std::string why;
    read_all(path, why);
    EXPECT_NE(why.find("truncated"), std::string::npos) << cut << ": " << why;
  }
}

TEST(tar_format, a_changed_header_byte_fails_its_checksum) {
  scratch dir;
  auto bytes = slurp(write_sample(dir.path()));
  bytes[3] ^= 0x20;  // a letter of the first name
  const auto path = dir.path() / "bad.tar";
  spit(path, bytes);
  std::string why;
  read_all(path, why);
  EXPECT_NE(why.find("bad header checksum"), std::string::npos) << why;
}

TEST(tar_format, a_malformed_pax_record_is_refused) {
  scratch dir;
  for (const std::string records : {"nospace", "99 path=x\n", "8 path=x\n", "12 noequals\n"}) {
    SCOPED_TRACE(records);
    const auto path = dir.path() / "pax.tar";
    std::FILE* out = std::fopen(path.c_str(), "wb");
    tar_writer tar(out);
    std::string why;
    ASSERT_TRUE(tar.add_file("header", records, 0, why));
    ASSERT_TRUE(tar.add_file("member", "x", 0, why));
    ASSERT_TRUE(tar.finish(why));
    std::fclose(out);
    // The first member becomes a pax extended header, with the checksum that goes with it.
    auto bytes = slurp(path);
    bytes[156] = 'x';
    std::fill(bytes.begin() + 148, bytes.begin() + 156, ' ');
    unsigned sum = 0;
    for (std::size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[i]);
    char field[8];
    std::snprintf(field, sizeof field, "%06o", sum);
    std::copy_n(field, 7, bytes.begin() + 148);
    spit(path, bytes);
    read_all(path, why);
    EXPECT_NE(why.find("malformed pax extended header"), std::string::npos) << why;
  }
}

TEST(tar_format, names_are_returned_as_stored_for_the_caller_to_judge) {
  scratch dir;
  const auto path = dir.path() / "dots.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  std::string why;
  ASSERT_TRUE(tar.add_file("../escape", "x", 0, why));
  ASSERT_TRUE(tar.finish(why));
  std::fclose(out);
  const auto members = read_all(path, why);
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].name, "../escape");
}

TEST(tar_format, the_writer_refuses_content_beyond_the_declared_size) {
  scratch dir;
  const auto path = dir.path() / "over.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  std::string why;
  ASSERT_TRUE(tar.begin_file("a", 2, 0, why));
  EXPECT_FALSE(tar.write("abc", why));
  EXPECT_FALSE(tar.finish(why));
  std::fclose(out);
}

}  // namespace
}  // namespace gomodproxy::bundle
