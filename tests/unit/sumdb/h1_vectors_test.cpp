// h1 hashes of zips and go.mod files checked against what the real go command reported for the
// same bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/errc.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::sumdb {
namespace {

// testdata/ holds the exact bytes tests/support/test_upstream.py served to go1.19.8 from a
// tests/support/module_tree.py tree:
//   tree.add("example.com/hello", "v1.2.0", files)                       # every entry deflated
//   tree.add("example.com/hello", "v1.2.1", files, stored=[all names])   # every entry stored
// with files = go.mod ("module example.com/hello\n\ngo 1.18\n\nrequire rsc.io/quote v1.5.2\n"),
// hello.go, LICENSE (1632 bytes) and greet/greet.go. Sum and GoModSum below come from
//   GOPROXY=http://127.0.0.1:PORT GOFLAGS=-mod=mod GONOSUMDB=* GONOSUMCHECK=1 GOSUMDB=off
//   GOMODCACHE=<fresh dir> go mod download -json example.com/hello@v1.2.0   (and @v1.2.1)
constexpr std::string_view deflated_zip_sum = "h1:1FKcJv0yLjwKviIe+U2LsCt9QjTyXbXM0xEHTUROvU4=";
constexpr std::string_view stored_zip_sum = "h1:Q0UUNO16sH14c7g1z9pFxcniTEvMyHBjr554HUFfqhE=";
constexpr std::string_view go_mod_sum = "h1:z64+VWv+vvi9dtDDUaUOjPuyEgtKL2xvXNYk3EVilxw=";

std::string testdata(const std::string& name) {
  const auto path =
      std::filesystem::path(GOMODPROXY_SOURCE_DIR) / "tests/unit/sumdb/testdata" / name;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

random_reader reader_of(const std::string& zip) {
  return [&zip](std::uint64_t offset, std::size_t length) -> boost::system::result<std::string> {
    if (offset > zip.size()) return std::string();
    return zip.substr(static_cast<std::size_t>(offset), length);
  };
}

boost::system::result<std::string> h1(const std::string& zip) {
  return zip_h1_hash(zip.size(), reader_of(zip));
}

TEST(h1_vectors, zips_hash_as_the_go_command_reported) {
  struct vector_case {
    std::string file;
    std::string version;
    std::string_view sum;
  };
  for (const auto& c : {vector_case{"hello-v1.2.0.zip", "v1.2.0", deflated_zip_sum},
                        vector_case{"hello-v1.2.1.zip", "v1.2.1", stored_zip_sum}}) {
    SCOPED_TRACE(c.file);
    const std::string zip = testdata(c.file);
    ASSERT_FALSE(zip.empty());
    EXPECT_TRUE(check_module_zip("example.com/hello", c.version, zip.size(), reader_of(zip)));
    const auto hash = h1(zip);
    ASSERT_TRUE(hash.has_value()) << hash.error().message();
    EXPECT_EQ(*hash, c.sum);
  }
}

TEST(h1_vectors, go_mod_hashes_as_the_go_command_reported) {
  const std::string go_mod = testdata("hello-v1.2.0.mod");
  ASSERT_FALSE(go_mod.empty());
  EXPECT_EQ(go_mod_h1_hash(go_mod), go_mod_sum);
  EXPECT_NE(go_mod_h1_hash(go_mod + "\n"), go_mod_sum);
}

TEST(h1_vectors, a_changed_stored_byte_fails_its_crc) {
  std::string zip = testdata("hello-v1.2.1.zip");
  const std::size_t content = zip.find("require rsc.io/quote");
  ASSERT_NE(content, std::string::npos);
  ASSERT_EQ(zip.find("require rsc.io/quote", content + 1), std::string::npos);
  zip[content] = 'R';
  const auto hash = h1(zip);
  ASSERT_FALSE(hash.has_value());
  EXPECT_EQ(hash.error(), make_error_code(errc::verification_failed));
}

TEST(h1_vectors, a_changed_directory_crc_fails_the_deflated_entry) {
  const std::string good = testdata("hello-v1.2.0.zip");
  const std::size_t header = good.find("PK\x01\x02");
  ASSERT_NE(header, std::string::npos);
  std::string zip = good;
  zip[header + 16] = static_cast<char>(zip[header + 16] ^ 0x01);  // first byte of the CRC-32
  const auto hash = h1(zip);
  ASSERT_FALSE(hash.has_value());
  EXPECT_EQ(hash.error(), make_error_code(errc::verification_failed));
  ASSERT_TRUE(h1(good).has_value());
}

}  // namespace
}  // namespace gomodproxy::sumdb
