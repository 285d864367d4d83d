#include "sumdb/zip_check.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/errc.hpp"
#include "sumdb/zip_directory.hpp"
#include "tests/support/cpp/failure_of.hpp"

namespace gomodproxy::sumdb {
namespace {

using test::failed_with;

// §4.8 test vectors.
constexpr std::string_view hello_go_mod = "module example.com/hello\n\ngo 1.19\n";
constexpr std::string_view hello_go =
    "package hello\n\nfunc Hello() string { return \"v1.0.0\" }\n";
constexpr std::string_view hello_go_mod_h1 = "h1:RslnPMa/nR3RpskRbvoDBlr6/b2RhFS0EEnq72RQTo0=";
constexpr std::string_view hello_zip_h1 = "h1:kztWu7BEAMRvHrnoFxvz3DBoscffIMIfJJefjPuIhpY=";
constexpr std::string_view hello_zip_with_dirs_h1 =
    "h1:qplMI7475b1E91OvTSvErisGqdYRMQmKt1dkck4CLi0=";
constexpr std::string_view hello_prefix = "example.com/hello@v1.0.0/";

// ---- A small zip writer, enough to produce every shape the checker must judge. ----

constexpr std::uint16_t store = 0;
constexpr std::uint16_t deflated = 8;

struct entry_spec {
  std::string name;
  std::string content;
  std::uint16_t method = deflated;
  std::optional<std::uint16_t> method_field =
      std::nullopt;  // written instead of `method` (data still per method)
  std::optional<std::uint64_t> declared_size = std::nullopt;  // instead of content.size()
  std::optional<std::uint32_t> crc = std::nullopt;            // instead of the real CRC-32
};

struct zip_options {
  bool zip64 = false;
  std::string comment;
};

void put16(std::string& out, std::uint64_t v) {
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
}
void put32(std::string& out, std::uint64_t v) {
  put16(out, v & 0xffff);
  put16(out, (v >> 16) & 0xffff);
}
void put64(std::string& out, std::uint64_t v) {
  put32(out, v & 0xffffffff);
  put32(out, v >> 32);
}

std::string raw_deflate(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::uint32_t crc_of(std::string_view data) {
  return static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                          reinterpret_cast<const Bytef*>(data.data()),
                                          static_cast<uInt>(data.size())));
}

std::string build_zip(const std::vector<entry_spec>& entries, const zip_options& options = {}) {
  std::string out;
  std::string directory;
  for (const auto& e : entries) {
    const std::string data = e.method == deflated ? raw_deflate(e.content) : e.content;
    const std::uint16_t method = e.method_field.value_or(e.method);
    const std::uint32_t crc = e.crc.value_or(crc_of(e.content));
    const std::uint64_t usize = e.declared_size.value_or(e.content.size());
    const std::uint64_t offset = out.size();
    const std::uint16_t needed = options.zip64 ? 45 : 20;

    std::string local_extra;
    if (options.zip64) {
      put16(local_extra, 1);
      put16(local_extra, 16);
      put64(local_extra, usize);
      put64(local_extra, data.size());
    }
    put32(out, 0x04034b50);
    put16(out, needed);
    put16(out, 0x0800);
    put16(out, method);
    put16(out, 0);
    put16(out, 0x21);
    put32(out, crc);
    put32(out, options.zip64 ? 0xffffffff : data.size());
    put32(out, options.zip64 ? 0xffffffff : usize);
    put16(out, e.name.size());
    put16(out, local_extra.size());
    out += e.name;
    out += local_extra;
    out += data;

    std::string central_extra;
    if (options.zip64) {
      put16(central_extra, 1);
      put16(central_extra, 24);
      put64(central_extra, usize);
      put64(central_extra, data.size());
      put64(central_extra, offset);
    }
    put32(directory, 0x02014b50);
    put16(directory, 0x0300 | needed);
    put16(directory, needed);
    put16(directory, 0x0800);
    put16(directory, method);
    put16(directory, 0);
    put16(directory, 0x21);
    put32(directory, crc);
    put32(directory, options.zip64 ? 0xffffffff : data.size());
    put32(directory, options.zip64 ? 0xffffffff : usize);
    put16(directory, e.name.size());
    put16(directory, central_extra.size());
    put16(directory, 0);
    put16(directory, 0);
    put16(directory, 0);
    put32(directory, 0);
    put32(directory, options.zip64 ? 0xffffffff : offset);
    directory += e.name;
    directory += central_extra;
  }
  const std::uint64_t directory_offset = out.size();
  out += directory;
  if (options.zip64) {
    const std::uint64_t record_offset = out.size();
    put32(out, 0x06064b50);
    put64(out, 44);
    put16(out, 45);
    put16(out, 45);
    put32(out, 0);
    put32(out, 0);
    put64(out, entries.size());
    put64(out, entries.size());
    put64(out, directory.size());
    put64(out, directory_offset);
    put32(out, 0x07064b50);
    put32(out, 0);
    put64(out, record_offset);
    put32(out, 1);
  }
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, options.zip64 ? 0xffff : entries.size());
  put16(out, options.zip64 ? 0xffff : entries.size());
  put32(out, options.zip64 ? 0xffffffff : directory.size());
  put32(out, options.zip64 ? 0xffffffff : directory_offset);
  put16(out, options.comment.size());
  out += options.comment;
  return out;
}

struct read_stats {
  std::size_t calls = 0;
  std::size_t largest = 0;
  std::uint64_t total = 0;
};

random_reader reader_of(const std::string& zip, read_stats* stats = nullptr) {
  return [&zip, stats](std::uint64_t offset,
                       std::size_t length) -> boost::system::result<std::string> {
    if (stats != nullptr) {
      ++stats->calls;
      stats->largest = std::max(stats->largest, length);
      stats->total += length;
    }
    if (offset > zip.size()) return std::string();
    return zip.substr(static_cast<std::size_t>(offset), length);
  };
}

// check_module_zip's verdict as a value to compare: nullopt, or the code and the detail.
std::optional<test::code_and_detail> check(const std::string& zip, std::string_view module_path,
                                           std::string_view version,
                                           const zip_limits& limits = {}) {
  return test::failure_of(
      check_module_zip(module_path, version, zip.size(), reader_of(zip), limits));
}

boost::system::result<std::string> h1(const std::string& zip) {
  return zip_h1_hash(zip.size(), reader_of(zip));
}

std::string p(std::string_view rest) { return std::string(hello_prefix) + std::string(rest); }

std::vector<entry_spec> hello_files(std::uint16_t method = deflated) {
  return {{p("go.mod"), std::string(hello_go_mod), method},
          {p("hello.go"), std::string(hello_go), method}};
}

// An independent Hash1: sha256sum of each file, sorted by name, piped into sha256sum.
std::string reference_h1(std::vector<std::pair<std::string, std::string>> files) {
  auto sha = [](std::string_view data) {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(digest), length);
  };
  std::sort(files.begin(), files.end());
  std::string summary;
  for (const auto& [name, content] : files) {
    std::ostringstream hex;
    for (unsigned char c : sha(content)) {
      hex << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
    }
    summary += hex.str() + "  " + name + "\n";
  }
  const std::string digest = sha(summary);
  unsigned char encoded[64];
  const int n = EVP_EncodeBlock(encoded, reinterpret_cast<const unsigned char*>(digest.data()), 32);
  return "h1:" + std::string(reinterpret_cast<char*>(encoded), n);
}

// Deterministic bytes that deflate cannot shrink, so data spans many reader pieces.
std::string noise(std::size_t size) {
  std::string out(size, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

// ---- Hash vectors ----

TEST(go_mod_h1_hash, matches_go_vector) {
  EXPECT_EQ(go_mod_h1_hash(hello_go_mod), hello_go_mod_h1);
  EXPECT_NE(go_mod_h1_hash("module example.com/hello\n"), hello_go_mod_h1);
}

TEST(zip_h1_hash, matches_go_vectors_for_every_encoding) {
  struct vector_case {
    std::string name;
    std::vector<entry_spec> entries;
    zip_options options;
    std::string_view want;
  };
  auto with_dirs = [](std::uint16_t method) {
    auto files = hello_files(method);
    files.insert(files.begin(), {p(""), "", store});
    files.push_back({p("sub/"), "", store});
    return files;
  };
  auto reversed = hello_files();
  std::reverse(reversed.begin(), reversed.end());
  const std::vector<vector_case> cases = {
      {"store", hello_files(store), {}, hello_zip_h1},
      {"deflate", hello_files(deflated), {}, hello_zip_h1},
      {"reverse order", reversed, {}, hello_zip_h1},
      {"zip64", hello_files(deflated), {true, ""}, hello_zip_h1},
      {"with comment", hello_files(store), {false, "a comment PK\x05\x06 inside"}, hello_zip_h1},
      {"directory entries", with_dirs(store), {}, hello_zip_with_dirs_h1},
      {"directory entries deflated", with_dirs(deflated), {}, hello_zip_with_dirs_h1},
      {"directory entries zip64", with_dirs(store), {true, ""}, hello_zip_with_dirs_h1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string zip = build_zip(c.entries, c.options);
    const auto hash = h1(zip);
    ASSERT_TRUE(hash.has_value()) << hash.error().message();
    EXPECT_EQ(*hash, c.want);
    EXPECT_EQ(check(zip, "example.com/hello", "v1.0.0"), std::nullopt);
  }
}

TEST(zip_h1_hash, equals_reference_for_large_and_mixed_entries) {
  const std::string big = noise(300 * 1024);
  const std::string text(200 * 1024, 'a');
  const std::vector<entry_spec> entries = {
      {p("z/big.bin"), big, store},    {p("a/big.bin"), big, deflated},
      {p("text.txt"), text, deflated}, {p("empty.go"), "", deflated},
      {p("empty2.go"), "", store},     {p("a/"), "", store},
  };
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& e : entries) files.emplace_back(e.name, e.content);
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64);
    const std::string zip = build_zip(entries, {zip64, ""});
    read_stats stats;
    const auto hash = zip_h1_hash(zip.size(), reader_of(zip, &stats));
    ASSERT_TRUE(hash.has_value()) << hash.error().message();
    EXPECT_EQ(*hash, reference_h1(files));
    // Read in pieces: no single read beyond the EOCD search window.
    EXPECT_LE(stats.largest, 65535u + 22u);
    EXPECT_GT(stats.calls, 10u);
  }
}

TEST(zip_h1_hash, repeated_name_hashes_last_content_like_go) {
  const std::string zip = build_zip({{p("x.go"), "first", store}, {p("x.go"), "second", deflated}});
  const auto hash = h1(zip);
  ASSERT_TRUE(hash.has_value());
  EXPECT_EQ(*hash, reference_h1({{p("x.go"), "second"}, {p("x.go"), "second"}}));
}

TEST(zip_h1_hash, rejects_unreadable_entries) {
  const std::string content = "package x\n// some content that deflates\n" + std::string(500, 'x');
  struct bad_case {
    std::string name;
    std::string zip;
  };
  std::string flipped = build_zip({{p("x.go"), content, store}});
  flipped[30 + p("x.go").size() + 3] ^= 0x20;  // one byte of stored data
  const std::vector<bad_case> cases = {
      {"crc mismatch", build_zip({{p("x.go"), content, deflated, {}, {}, 0x12345678}})},
      {"corrupted stored data", flipped},
      {"declared size too small", build_zip({{p("x.go"), content, deflated, {}, 10}})},
      {"declared size too large", build_zip({{p("x.go"), content, deflated, {}, 100000}})},
      {"stored size mismatch", build_zip({{p("x.go"), content, store, {}, 10}})},
      {"bzip2 method", build_zip({{p("x.go"), content, store, 12}})},
      {"not deflated data", build_zip({{p("x.go"), std::string(64, '\xff'), store, 8}})},
      {"name with newline", build_zip({{p("x\n.go"), "x", store}})},
      {"truncated", build_zip(hello_files()).substr(0, 60)},
      {"empty", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto hash = h1(c.zip);
    ASSERT_FALSE(hash.has_value()) << *hash;
    EXPECT_EQ(hash.error(), make_error_code(errc::verification_failed));
  }
}

TEST(zip_h1_hash, passes_reader_errors_through) {
  const std::string zip = build_zip(hello_files());
  for (std::size_t fail_at = 0; fail_at < 6; ++fail_at) {
    SCOPED_TRACE(fail_at);
    std::size_t calls = 0;
    const random_reader failing = [&](std::uint64_t offset,
                                      std::size_t length) -> boost::system::result<std::string> {
      if (calls++ == fail_at) return make_error_code(errc::cache_io);
      return zip.substr(static_cast<std::size_t>(offset), length);
    };
    const auto hash = zip_h1_hash(zip.size(), failing);
    ASSERT_FALSE(hash.has_value());
    EXPECT_EQ(hash.error(), make_error_code(errc::cache_io));
  }
  std::size_t calls = 0;
  const random_reader failing = [&](std::uint64_t,
                                    std::size_t) -> boost::system::result<std::string> {
    ++calls;
    return make_error_code(errc::cache_io);
  };
  const auto checked = check_module_zip("example.com/hello", "v1.0.0", zip.size(), failing);
  ASSERT_FALSE(checked);
  // The reader's own error, not the zip's: the bytes could not be read, not judged.
  EXPECT_EQ(checked.error().code, errc::cache_io);
  EXPECT_NE(checked.error().detail.find("read failed"), std::string::npos)
      << checked.error().detail;
  EXPECT_EQ(calls, 1u);
}

// The directory reader under both: bytes that are no zip are verification_failed with the reason
// alone (check_module_zip puts the subject in front), a read that failed is the reader's code.
TEST(read_zip_directory, a_bad_zip_is_verification_failed_and_a_failed_read_the_readers_code) {
  const std::string zip = build_zip(hello_files());
  const auto directory = read_zip_directory(zip.size(), reader_of(zip));
  ASSERT_TRUE(directory) << directory.error().detail;
  ASSERT_EQ(directory->entries.size(), 2u);
  const auto offset = entry_data_offset(*directory, directory->entries[0], reader_of(zip));
  ASSERT_TRUE(offset) << offset.error().detail;
  EXPECT_LT(*offset, directory->directory_offset);

  const std::string nothing;
  const auto empty = read_zip_directory(0, reader_of(nothing));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::verification_failed);
  EXPECT_EQ(empty.error().detail, "no end of central directory record");
  const std::string truncated = zip.substr(0, 60);
  const auto cut = read_zip_directory(truncated.size(), reader_of(truncated));
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, errc::verification_failed);
  EXPECT_EQ(cut.error().detail, "no end of central directory record (truncated or not a zip)");

  const random_reader failing = [](std::uint64_t,
                                   std::size_t) -> boost::system::result<std::string> {
    return make_error_code(errc::cache_io);
  };
  const auto unread = read_zip_directory(zip.size(), failing);
  ASSERT_FALSE(unread);
  EXPECT_EQ(unread.error().code, errc::cache_io);
  EXPECT_EQ(unread.error().detail, "read failed: " + make_error_code(errc::cache_io).message());
  const auto no_header = entry_data_offset(*directory, directory->entries[0], failing);
  ASSERT_FALSE(no_header);
  EXPECT_EQ(no_header.error().code, errc::cache_io);
}

TEST(zip_h1_hash, stops_a_deflate_bomb_at_its_declared_size) {
  const std::string bomb(20 * 1024 * 1024, '\0');
  const std::string zip = build_zip({{p("bomb.bin"), bomb, deflated, {}, 1000}});
  EXPECT_LT(zip.size(), 100u * 1024);
  const auto hash = h1(zip);
  ASSERT_FALSE(hash.has_value());
  EXPECT_EQ(hash.error(), make_error_code(errc::verification_failed));
}

// ---- check_module_zip ----

struct check_case {
  std::string name;
  std::vector<entry_spec> entries;
  std::optional<std::string> want;  // nullopt: valid; else a substring of the reason
  zip_limits limits = {};
  zip_options options = {};
};

TEST(check_module_zip, table) {
  auto plus = [](std::vector<entry_spec> extra) {
    auto files = hello_files();
    files.insert(files.end(), extra.begin(), extra.end());
    return files;
  };
  zip_limits small_go_mod;
  small_go_mod.max_go_mod_bytes = 10;
  zip_limits small_license;
  small_license.max_license_bytes = 100;
  zip_limits small_total;
  small_total.max_uncompressed_bytes = 60;
  const std::vector<check_case> cases = {
      {"valid", hello_files(), std::nullopt},
      {"valid stored", hello_files(store), std::nullopt},
      {"valid zip64", hello_files(), std::nullopt, {}, {true, ""}},
      {"bare prefix and directories",
       plus({{p(""), "", store}, {p("sub/"), "", store}, {p("sub/x.go"), "package sub", store}}),
       std::nullopt},
      {"directory listed twice", plus({{p("d/"), "", store}, {p("d/"), "", store}}), std::nullopt},
      {"leading dot and dash", plus({{p(".github/ci.yml"), "x"}, {p("-x/y.go"), "x"}}),
       std::nullopt},
      {"unicode letters", plus({{p("d\xc3\xa9j\xc3\xa0/x.go"), "x"}}), std::nullopt},
      {"no go.mod at all", {{p("x.go"), "package x"}}, std::nullopt},
      {"LICENSE at limit", plus({{p("LICENSE"), std::string(100, 'l')}}), std::nullopt,
       small_license},
      {"wrong prefix", plus({{"other/x.go", "x"}}),
       "zip for example.com/hello@v1.0.0 has unexpected file other/x.go"},
      {"wrong version", plus({{"example.com/hello@v1.0.1/x.go", "x"}}), "unexpected file"},
      {"prefix case differs", plus({{"example.com/Hello@v1.0.0/x.go", "x"}}), "unexpected file"},
      {"prefix without slash", plus({{"example.com/hello@v1.0.0", ""}}), "unexpected file"},
      {"duplicate file", plus({{p("hello.go"), "again"}}), "multiple entries for file hello.go"},
      {"case collision through parents", plus({{p("a/x.go"), "x"}, {p("A/y.go"), "y"}}),
       "case-insensitive file name collision: a and A"},
      {"case collision of files", plus({{p("Hello.go"), "x"}}),
       "case-insensitive file name collision: hello.go and Hello.go"},
      {"unicode case collision", plus({{p("\xc3\xa9.go"), "x"}, {p("\xc3\x89.go"), "y"}}),
       "case-insensitive file name collision"},
      {"kelvin sign collides with k", plus({{p("k.go"), "x"}, {p("\xe2\x84\xaa.go"), "y"}}),
       "case-insensitive file name collision"},
      {"file then directory", plus({{p("a"), "x"}, {p("a/b.go"), "y"}}),
       "has both a file and a directory named a"},
      {"directory then file", plus({{p("a/"), "", store}, {p("a"), "x"}}),
       "both a file and a directory named a"},
      {"go.mod in subdirectory", plus({{p("sub/go.mod"), "module x"}}),
       "go.mod file sub/go.mod outside the module root"},
      {"GO.MOD in subdirectory", plus({{p("sub/GO.MOD"), "module x"}}), "outside the module root"},
      {"GO.MOD at root",
       {{p("GO.MOD"), std::string(hello_go_mod)}, {p("hello.go"), "x"}},
       "GO.MOD at the module root; it must be spelled go.mod"},
      {"Go.mod at root", {{p("Go.mod"), std::string(hello_go_mod)}}, "must be spelled go.mod"},
      {"go.mod directory is fine", plus({{p("x/go.mod.d/a.go"), "x"}}), std::nullopt},
      {"bzip2 method", plus({{p("x.go"), "x", store, 12}}), "unsupported compression method 12"},
      {"lzma method on a directory", plus({{p("d/"), "", store, 14}}),
       "unsupported compression method 14"},
      {"oversize go.mod declared", hello_files(),
       "has a go.mod of 34 bytes, more than the limit of 10 bytes", small_go_mod},
      {"oversize LICENSE", plus({{p("LICENSE"), std::string(101, 'l')}}),
       "has a LICENSE of 101 bytes, more than the limit of 100 bytes", small_license},
      {"sub/LICENSE is not limited", plus({{p("sub/LICENSE"), std::string(101, 'l')}}),
       std::nullopt, small_license},
      {"total uncompressed size", plus({{p("x.go"), std::string(30, 'x')}}),
       "its files total more than the limit of 60 uncompressed bytes", small_total},
      {"huge declared size", plus({{p("x.go"), "x", store, {}, 600ull << 20}}),
       "its files total more than the limit of 524288000"},
      {"dot dot", plus({{p("a/../b.go"), "x"}}),
       "has file example.com/hello@v1.0.0/a/../b.go whose path is not clean"},
      {"leading dot dot", plus({{p("../b.go"), "x"}}), "not clean"},
      {"dot element", plus({{p("./b.go"), "x"}}), "not clean"},
      {"double slash", plus({{p("a//b.go"), "x"}}), "not clean"},
      {"trailing dot directory", plus({{p("a/./"), "", store}}), "not clean"},
      {"absolute after prefix", plus({{p("/b.go"), "x"}}), "not clean"},
      {"windows reserved name", plus({{p("aux.go"), "x"}}), "has invalid file"},
      {"windows reserved name in directory", plus({{p("sub/CON.txt"), "x"}}), "invalid file"},
      {"backslash", plus({{p("a\\b.go"), "x"}}), "invalid file"},
      {"invalid utf8", plus({{p("\xff.go"), "x"}}), "invalid file"},
      {"colon", plus({{p("a:b.go"), "x"}}), "invalid file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string zip = build_zip(c.entries, c.options);
    const auto reason = check(zip, "example.com/hello", "v1.0.0", c.limits);
    if (!c.want) {
      EXPECT_EQ(reason, std::nullopt) << reason->second;
      continue;
    }
    ASSERT_TRUE(reason.has_value());
    const auto& [code, detail] = *reason;
    EXPECT_EQ(code, errc::verification_failed) << detail;
    EXPECT_NE(detail.find(*c.want), std::string::npos) << detail;
    EXPECT_EQ(detail.rfind("zip for example.com/hello@v1.0.0 ", 0), 0u) << detail;
    EXPECT_TRUE(std::all_of(detail.begin(), detail.end(), [](char ch) {
      return ch >= 0x20 && ch < 0x7f;
    })) << detail;
  }
}

TEST(check_module_zip, structural_damage) {
  const std::string good = build_zip(hello_files());
  const std::size_t eocd = good.size() - 22;
  auto patched = [&](std::size_t at, std::uint32_t value, int bytes) {
    std::string zip = good;
    for (int i = 0; i < bytes; ++i) zip[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return zip;
  };
  struct damage_case {
    std::string name;
    std::string zip;
    std::string want;
  };
  const std::vector<damage_case> cases = {
      {"empty", "", "no end of central directory"},
      {"too short", "PK\x05\x06", "no end of central directory"},
      {"truncated end", good.substr(0, good.size() - 10), "no end of central directory"},
      {"truncated half", good.substr(0, good.size() / 2), "no end of central directory"},
      {"not a zip", std::string(1000, 'x'), "no end of central directory"},
      {"comment longer than file", patched(eocd + 20, 5, 2), "no end of central directory"},
      {"directory offset past end", patched(eocd + 16, 0x7fffffff, 4), "outside the file"},
      {"directory size past end", patched(eocd + 12, 0x7fffffff, 4), "outside the file"},
      {"too many entries", patched(eocd + 10, 1000, 2), "entries, more than"},
      {"entry signature", patched(static_cast<std::size_t>(good.find("PK\x01\x02")), 0, 4),
       "bad signature"},
      {"local offset past directory",
       patched(static_cast<std::size_t>(good.find("PK\x01\x02")) + 42, 0x00ffffff, 4),
       "points outside the file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto reason = check(c.zip, "example.com/hello", "v1.0.0");
    ASSERT_TRUE(reason.has_value());
    const auto& [code, detail] = *reason;
    EXPECT_EQ(code, errc::verification_failed) << detail;
    EXPECT_NE(detail.find("zip for example.com/hello@v1.0.0 is not a valid zip: "),
              std::string::npos)
        << detail;
    EXPECT_NE(detail.find(c.want), std::string::npos) << detail;
    EXPECT_FALSE(h1(c.zip).has_value());
  }
}

TEST(check_module_zip, zip_size_limit) {
  const std::string zip = build_zip(hello_files());
  zip_limits limits;
  limits.max_zip_bytes = zip.size();
  EXPECT_EQ(check(zip, "example.com/hello", "v1.0.0", limits), std::nullopt);
  limits.max_zip_bytes = zip.size() - 1;
  const auto reason = check(zip, "example.com/hello", "v1.0.0", limits);
  // The go command refuses such a zip too: one that does not check, not one too large to store.
  EXPECT_EQ(reason, failed_with(errc::verification_failed,
                                "zip for example.com/hello@v1.0.0 is too large: a zip of " +
                                    std::to_string(zip.size()) + " bytes, more than the limit of " +
                                    std::to_string(zip.size() - 1) + " bytes"));
  // The default limit, 500 MiB, judged on the declared size alone: nothing is read.
  read_stats stats;
  EXPECT_FALSE(check_module_zip("example.com/hello", "v1.0.0", 524288001, reader_of(zip, &stats)));
  EXPECT_EQ(stats.calls, 0u);
}

TEST(check_module_zip, reads_only_the_directory_in_bounded_pieces) {
  std::vector<entry_spec> entries = hello_files();
  entries.push_back({p("data.bin"), noise(2 * 1024 * 1024), store});
  for (int i = 0; i < 3000; ++i) {
    entries.push_back({p("pkg/file" + std::to_string(i) + ".go"), "package pkg", store});
  }
  const std::string zip = build_zip(entries);
  read_stats stats;
  EXPECT_TRUE(check_module_zip("example.com/hello", "v1.0.0", zip.size(), reader_of(zip, &stats)));
  EXPECT_LE(stats.largest, 65535u + 22u);
  // The central directory (about 200 KiB here) and the tail, never the 2 MiB of data.
  EXPECT_LT(stats.total, 400u * 1024);
  EXPECT_GT(stats.calls, 3u);
}

TEST(check_module_zip, module_path_in_reason_is_printable) {
  const std::string zip = build_zip({{"other\x01/x.go", "x"}});
  const auto reason = check(zip, "example.com/hello", "v1.0.0");
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->second.find("other\\x01/x.go"), std::string::npos) << reason->second;
}

// Fixtures made by Python's zipfile, an independent writer: deflated streams it chose, zip64
// extras from force_zip64, and a zip64 end record from more than 65535 entries.
class python_zip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gmp-zip-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const auto script = dir_ / "make.py";
    std::ofstream(script) << R"PY(import sys, zipfile
out = sys.argv[1]
pre = "example.com/hello@v1.0.0/"
mod = b"module example.com/hello\n\ngo 1.19\n"
src = b'package hello\n\nfunc Hello() string { return "v1.0.0" }\n'
with zipfile.ZipFile(out + "/deflated.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(pre + "go.mod", mod)
    z.writestr(pre + "hello.go", src)
with zipfile.ZipFile(out + "/dirs.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(pre, b"")
    z.writestr(pre + "go.mod", mod)
    z.writestr(pre + "hello.go", src)
    z.writestr(pre + "sub/", b"")
with zipfile.ZipFile(out + "/force64.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in ((pre + "go.mod", mod), (pre + "hello.go", src)):
        with z.open(name, "w", force_zip64=True) as f:
            f.write(data)
with zipfile.ZipFile(out + "/many.zip", "w", zipfile.ZIP_STORED) as z:
    for i in range(65540):
        z.writestr("example.com/many@v1.0.0/f%05d.go" % i, b"package many\n")
with zipfile.ZipFile(out + "/bzip2.zip", "w", zipfile.ZIP_BZIP2) as z:
    z.writestr(pre + "go.mod", mod)
)PY";
    const std::string command = "python3 " + script.string() + " " + dir_.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string fixture(const std::string& name) {
    std::ifstream in(dir_ / name, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }
  static inline std::filesystem::path dir_;
};

TEST_F(python_zip, hello_vectors) {
  struct case_t {
    std::string file;
    std::string_view want;
  };
  for (const auto& c : std::vector<case_t>{{"deflated.zip", hello_zip_h1},
                                           {"force64.zip", hello_zip_h1},
                                           {"dirs.zip", hello_zip_with_dirs_h1}}) {
    SCOPED_TRACE(c.file);
    const std::string zip = fixture(c.file);
    ASSERT_FALSE(zip.empty());
    EXPECT_EQ(check(zip, "example.com/hello", "v1.0.0"), std::nullopt);
    const auto hash = h1(zip);
    ASSERT_TRUE(hash.has_value()) << hash.error().message();
    EXPECT_EQ(*hash, c.want);
  }
}

TEST_F(python_zip, zip64_end_record_with_many_entries) {
  const std::string zip = fixture("many.zip");
  ASSERT_NE(zip.find(std::string("PK\x06\x06", 4)), std::string::npos);
  EXPECT_EQ(check(zip, "example.com/many", "v1.0.0"), std::nullopt);
  const auto reason = check(zip, "example.com/other", "v1.0.0");
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->first, errc::verification_failed);
  EXPECT_NE(reason->second.find("unexpected file example.com/many@v1.0.0/f00000.go"),
            std::string::npos);
  const auto hash = h1(zip);
  ASSERT_TRUE(hash.has_value()) << hash.error().message();
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 65540; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "example.com/many@v1.0.0/f%05d.go", i);
    files.emplace_back(name, "package many\n");
  }
  EXPECT_EQ(*hash, reference_h1(files));
}

TEST_F(python_zip, bzip2_rejected) {
  const std::string zip = fixture("bzip2.zip");
  const auto reason = check(zip, "example.com/hello", "v1.0.0");
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->first, errc::verification_failed);
  EXPECT_NE(reason->second.find("unsupported compression method 12"), std::string::npos)
      << reason->second;
  EXPECT_FALSE(h1(zip).has_value());
}

}  // namespace
}  // namespace gomodproxy::sumdb
