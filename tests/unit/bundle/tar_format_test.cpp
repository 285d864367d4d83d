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

// Every member of the archive at `path`; `failed` set to the reader's failure, if any.
std::vector<read_member> read_all(const fs::path& path, std::optional<failure>& failed) {
  std::vector<read_member> members;
  failed.reset();
  auto reader = tar_reader::open(path.string());
  if (!reader) {
    failed = reader.error();
    return members;
  }
  for (;;) {
    auto member = (*reader)->next();
    if (!member) {
      failed = member.error();
      return members;
    }
    if (!*member) break;
    std::string content;
    EXPECT_TRUE((*reader)->read((*member)->offset, (*member)->size, content));
    members.push_back({(*member)->name, (*member)->type, content});
  }
  return members;
}

// The detail of a failure, or "" for none, for messages.
std::string detail(const std::optional<failure>& failed) { return failed ? failed->detail : ""; }

const std::string long_name = "example.com/" + std::string(120, 'a') + "/@v/v1.0.0.zip";

fs::path write_sample(const fs::path& dir) {
  const auto path = dir / "sample.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  EXPECT_TRUE(tar.add_file("example.com/m/@v/list", "v1.0.0\n", 1700000000));
  EXPECT_TRUE(tar.add_file("sumdb/sum.golang.org/supported", "", 1700000000));
  // Written in pieces, larger than a block and not a multiple of one.
  const std::string big(3 * 512 + 17, 'z');
  EXPECT_TRUE(tar.begin_file(long_name, big.size(), 1700000000));
  EXPECT_TRUE(tar.write(std::string_view(big).substr(0, 700)));
  EXPECT_TRUE(tar.write(std::string_view(big).substr(700)));
  EXPECT_TRUE(tar.end_file());
  EXPECT_TRUE(tar.finish());
  std::fclose(out);
  return path;
}

TEST(tar_format, members_round_trip) {
  scratch dir;
  const auto path = write_sample(dir.path());
  EXPECT_EQ(fs::file_size(path) % 512, 0u);
  std::optional<failure> failed;
  const auto members = read_all(path, failed);
  ASSERT_FALSE(failed) << detail(failed);
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
    std::optional<failure> failed;
    read_all(path, failed);
    ASSERT_TRUE(failed) << cut;
    EXPECT_EQ(failed->code, errc::invalid_request) << cut;
    EXPECT_NE(failed->detail.find("truncated"), std::string::npos) << cut << ": " << failed->detail;
  }
}

TEST(tar_format, a_changed_header_byte_fails_its_checksum) {
  scratch dir;
  auto bytes = slurp(write_sample(dir.path()));
  bytes[3] ^= 0x20;  // a letter of the first name
  const auto path = dir.path() / "bad.tar";
  spit(path, bytes);
  std::optional<failure> failed;
  read_all(path, failed);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->code, errc::invalid_request);
  EXPECT_NE(failed->detail.find("bad header checksum"), std::string::npos) << failed->detail;
}

TEST(tar_format, a_malformed_pax_record_is_refused) {
  scratch dir;
  for (const std::string records : {"nospace", "99 path=x\n", "8 path=x\n", "12 noequals\n"}) {
    SCOPED_TRACE(records);
    const auto path = dir.path() / "pax.tar";
    std::FILE* out = std::fopen(path.c_str(), "wb");
    tar_writer tar(out);
    ASSERT_TRUE(tar.add_file("header", records, 0));
    ASSERT_TRUE(tar.add_file("member", "x", 0));
    ASSERT_TRUE(tar.finish());
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
    std::optional<failure> failed;
    read_all(path, failed);
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->code, errc::invalid_request);
    EXPECT_NE(failed->detail.find("malformed pax extended header"), std::string::npos)
        << failed->detail;
  }
}

TEST(tar_format, names_are_returned_as_stored_for_the_caller_to_judge) {
  scratch dir;
  const auto path = dir.path() / "dots.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  ASSERT_TRUE(tar.add_file("../escape", "x", 0));
  ASSERT_TRUE(tar.finish());
  std::fclose(out);
  std::optional<failure> failed;
  const auto members = read_all(path, failed);
  ASSERT_FALSE(failed) << detail(failed);
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].name, "../escape");
}

TEST(tar_format, the_writer_refuses_content_beyond_the_declared_size) {
  scratch dir;
  const auto path = dir.path() / "over.tar";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  tar_writer tar(out);
  ASSERT_TRUE(tar.begin_file("a", 2, 0));
  const auto over = tar.write("abc");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, boost::system::errc::invalid_argument);
  EXPECT_EQ(over.error().detail, "more content than the member's declared size");
  const auto unfinished = tar.finish();
  ASSERT_FALSE(unfinished);
  EXPECT_EQ(unfinished.error().detail, "the archive ended inside a member");
  std::fclose(out);
}

TEST(tar_format, an_archive_that_cannot_be_opened_fails_with_the_errno_or_as_no_file) {
  scratch dir;
  const auto missing = tar_reader::open((dir.path() / "missing.tar").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, boost::system::errc::no_such_file_or_directory);
  EXPECT_NE(missing.error().detail.find("cannot open "), std::string::npos)
      << missing.error().detail;
  const auto directory = tar_reader::open(dir.path().string());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, errc::invalid_request);
  EXPECT_EQ(directory.error().detail, dir.path().string() + " is not a regular file");
}

TEST(tar_format, a_write_that_fails_carries_the_errno) {
  std::FILE* out = std::fopen("/dev/full", "wb");
  ASSERT_NE(out, nullptr);
  tar_writer tar(out);
  // /dev/full takes writes into the stdio buffer and refuses them at the flush.
  outcome_of<void> written = tar.add_file("a", std::string(1 << 20, 'x'), 0);
  if (written) written = tar.finish();
  std::fclose(out);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, boost::system::errc::no_space_on_device);
  EXPECT_EQ(written.error().detail.rfind("write failed: ", 0), 0u) << written.error().detail;
}

}  // namespace
}  // namespace gomodproxy::bundle
