#include "resolver/body_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "common/errc.hpp"
#include "common/failure.hpp"
#include "protocol/request.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tree_note.hpp"
#include "tests/support/cpp/test_checksum_database.hpp"
#include "tests/support/cpp/test_signer.hpp"

namespace gomodproxy::resolver {
namespace {

using protocol::endpoint;

protocol::module_request request_for(std::string_view target) {
  auto parsed = protocol::parse_module_request(target);
  if (!parsed) throw std::invalid_argument("not a request: " + std::string(target));
  return std::move(*parsed);
}

sumdb::random_reader reader_of(const std::string& body) {
  return [&body](std::uint64_t offset, std::size_t length) -> boost::system::result<std::string> {
    if (offset >= body.size()) return std::string();
    return body.substr(offset, length);
  };
}

// A reader that must not be called: a size over the limit is refused without reading the body.
const sumdb::random_reader unreadable = [](std::uint64_t, std::size_t) {
  ADD_FAILURE() << "the body was read";
  return boost::system::result<std::string>(make_error_code(errc::cache_io));
};

outcome_of<void> verdict(std::string_view target, const std::string& body) {
  return check_body(request_for(target), body.size(), reader_of(body));
}

// The reason a check refused with, "" when it accepted.
std::string reason_of(const outcome_of<void>& checked) {
  return checked ? std::string() : checked.error().detail;
}

std::string testdata(std::string_view name) {
  std::ifstream in(std::string(GOMODPROXY_TESTDATA_DIR) + "/" + std::string(name),
                   std::ios::binary);
  if (!in) throw std::runtime_error("missing testdata " + std::string(name));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One case of a table: `reason_has` empty means the body must be accepted; otherwise refused
// as verification_failed with a one-line reason containing it.
struct body_case {
  const char* name;
  const char* target;
  std::string body;
  const char* reason_has;
};

void run_table(const std::vector<body_case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto checked = verdict(c.target, c.body);
    if (*c.reason_has == '\0') {
      EXPECT_TRUE(checked) << "refused: " << reason_of(checked);
      continue;
    }
    ASSERT_FALSE(checked) << "accepted";
    const auto& bad = checked.error();
    EXPECT_EQ(bad.code, errc::verification_failed) << bad.detail;
    EXPECT_NE(bad.detail.find(c.reason_has), std::string::npos) << bad.detail;
    EXPECT_EQ(bad.detail.find('\n'), std::string::npos) << "reason spans lines: " << bad.detail;
  }
}

TEST(body_limit, per_endpoint_kind) {
  // cmd/go/internal/modfetch: MaxZipFile = 500<<20, MaxGoMod = 16<<20; the small JSON and
  // text answers get the proxy's own 1 MiB.
  EXPECT_EQ(body_limit(endpoint::zip), 500u << 20);
  EXPECT_EQ(body_limit(endpoint::mod), 16u << 20);
  for (endpoint kind : {endpoint::list, endpoint::latest, endpoint::info, endpoint::query,
                        endpoint::sumdb_supported, endpoint::sumdb_lookup, endpoint::sumdb_tile,
                        endpoint::sumdb_latest}) {
    EXPECT_EQ(body_limit(kind), 1u << 20) << protocol::endpoint_name(kind);
  }
}

TEST(check_body, list_is_any_text) {
  // The go command skips list lines that are not valid versions, so none of these is wrong.
  run_table({
      {"empty", "/example.com/hello/@v/list", "", ""},
      {"versions", "/example.com/hello/@v/list", "v1.0.0\nv1.2.0\n", ""},
      {"no final newline", "/example.com/hello/@v/list", "v1.0.0\nv1.2.0", ""},
      {"junk lines", "/example.com/hello/@v/list", "v1.0.0 2024-01-01T00:00:00Z\nmaster\n\n", ""},
  });
}

TEST(check_body, info_json_shape_and_version_echo) {
  const char* info = "/example.com/hello/@v/v1.2.0.info";
  run_table({
      {"version and time", info, R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})", ""},
      {"no time", info, R"({"Version":"v1.2.0"})", ""},
      {"zone offset", info, R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00+02:00"})", ""},
      {"fractional seconds", info,
       R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00.123456789Z"})", ""},
      {"extra fields", info,
       R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z","Origin":{"VCS":"git"}})", ""},
      {"white space", info, " {\n \"Version\" : \"v1.2.0\"\n}\n", ""},
      {"another version", info, R"({"Version":"v1.3.0","Time":"2024-01-01T00:00:00Z"})",
       "info is for version v1.3.0 instead of v1.2.0"},
      {"not JSON", info, "v1.2.0", "not a JSON object"},
      {"empty", info, "", "not a JSON object"},
      {"array", info, R"(["v1.2.0"])", "not a JSON object"},
      {"trailing bytes", info, R"({"Version":"v1.2.0"} x)", "not a JSON object"},
      {"no Version", info, R"({"Time":"2024-01-01T00:00:00Z"})", "info has no Version"},
      {"Version not a string", info, R"({"Version":1})", "info has no Version"},
      {"non-canonical Version", info, R"({"Version":"v1.2"})", "not canonical"},
      {"Time not a time", info, R"({"Version":"v1.2.0","Time":"yesterday"})", "RFC 3339"},
      {"Time without zone", info, R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00"})",
       "RFC 3339"},
      {"Time a number", info, R"({"Version":"v1.2.0","Time":1704067200})", "RFC 3339"},
      {"major version in path", "/example.com/hello/v2/@v/v2.0.0.info", R"({"Version":"v2.0.0"})",
       ""},
      // encoding/json, as the go command decodes an .info: keys match the field names without
      // regard to case, the last matching key wins, and a null time is the zero time.
      {"lower-case keys", info, R"({"version":"v1.2.0","time":"2024-01-01T00:00:00Z"})", ""},
      {"null Time", info, R"({"Version":"v1.2.0","Time":null})", ""},
      {"last matching key wins", info, R"({"Version":"v1.2.0","VERSION":"v1.3.0"})",
       "info is for version v1.3.0 instead of v1.2.0"},
      {"a lower-case key with a bad time", info, R"({"Version":"v1.2.0","tIME":"yesterday"})",
       "RFC 3339"},
      {"null Version", info, R"({"Version":null})", "info has no Version"},
  });
}

TEST(check_body, query_and_latest_name_a_version_that_fits_the_path) {
  // A query's answer names whatever version the query resolved to; only its fit is checked.
  run_table({
      {"branch to pseudo-version", "/example.com/hello/@v/master.info",
       R"({"Version":"v1.2.1-0.20240101000000-abcdefabcdef","Time":"2024-01-01T00:00:00Z"})", ""},
      {"short version", "/example.com/hello/@v/v1.2.info", R"({"Version":"v1.2.0"})", ""},
      {"incompatible", "/example.com/hello/@v/master.info", R"({"Version":"v2.0.0+incompatible"})",
       ""},
      {"major beyond the path", "/example.com/hello/@v/master.info", R"({"Version":"v2.0.0"})",
       "does not fit the module path"},
      {"v1 under a /v2 path", "/example.com/hello/v2/@v/master.info", R"({"Version":"v1.0.0"})",
       "does not fit the module path"},
      {"query not JSON", "/example.com/hello/@v/master.info", "nope", "not a JSON object"},
      {"latest", "/example.com/hello/@latest",
       R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})", ""},
      {"latest without Version", "/example.com/hello/@latest", R"({"Time":"2024-01-01T00:00:00Z"})",
       "info has no Version"},
      {"latest non-canonical", "/example.com/hello/@latest", R"({"Version":"1.2.0"})",
       "not canonical"},
      {"latest beyond the path", "/example.com/hello/@latest", R"({"Version":"v3.0.0"})",
       "does not fit the module path"},
  });
}

TEST(check_body, go_mod_module_directive) {
  const char* mod = "/example.com/hello/@v/v1.2.0.mod";
  run_table({
      {"testdata", mod, testdata("hello-v1.2.0.mod"), ""},
      {"bare", mod, "module example.com/hello\n", ""},
      {"no final newline", mod, "module example.com/hello", ""},
      {"quoted", mod, "module \"example.com/hello\"\n", ""},
      {"back-quoted", mod, "module `example.com/hello`\n", ""},
      {"trailing comment", mod, "module example.com/hello // the greeter\n", ""},
      {"tab and CRLF", mod, "module\texample.com/hello\r\ngo 1.21\r\n", ""},
      {"after comments and blank lines", mod, "// Copyright\n\n  module example.com/hello\n", ""},
      {"block form", mod, "module (\n\texample.com/hello\n)\n", ""},
      {"another module", mod, "module example.com/other\n",
       "go.mod declares module example.com/other instead of example.com/hello"},
      {"major suffix the path lacks", mod, "module example.com/hello/v2\n",
       "declares module example.com/hello/v2"},
      {"prefix of the path", mod, "module example.com\n", "declares module example.com "},
      {"no directive", mod, "go 1.21\n\nrequire rsc.io/quote v1.5.2\n",
       "go.mod has no module directive"},
      {"empty", mod, "", "no module directive"},
      {"only a longer word", mod, "modules example.com/hello\n", "no module directive"},
      {"commented out", mod, "// module example.com/hello\n", "no module directive"},
      {"html error page", mod, "<html><body>502 Bad Gateway</body></html>\n",
       "no module directive"},
      {"major version path", "/example.com/hello/v2/@v/v2.0.0.mod", "module example.com/hello/v2\n",
       ""},
  });
}

TEST(check_body, go_mod_declaring_a_long_path_gives_a_bounded_reason) {
  const std::string body = "module example.com/" + std::string(5000, 'x') + "\n";
  const auto bad = verdict("/example.com/hello/@v/v1.2.0.mod", body);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::verification_failed);
  EXPECT_LT(bad.error().detail.size(), 400u);
}

TEST(check_body, zip_structure_through_zip_check) {
  const std::string v120 = testdata("hello-v1.2.0.zip");
  const std::string v121 = testdata("hello-v1.2.1.zip");
  run_table({
      {"v1.2.0", "/example.com/hello/@v/v1.2.0.zip", v120, ""},
      {"v1.2.1", "/example.com/hello/@v/v1.2.1.zip", v121, ""},
      {"zip of another version", "/example.com/hello/@v/v1.2.1.zip", v120,
       "example.com/hello@v1.2"},
      {"zip of another module", "/example.com/other/@v/v1.2.0.zip", v120, "example.com"},
      {"truncated", "/example.com/hello/@v/v1.2.0.zip", v120.substr(0, v120.size() / 2), "zip"},
      {"last byte missing", "/example.com/hello/@v/v1.2.0.zip", v120.substr(0, v120.size() - 1),
       "zip"},
      {"not a zip", "/example.com/hello/@v/v1.2.0.zip", "<html>not found</html>", "zip"},
      {"empty", "/example.com/hello/@v/v1.2.0.zip", "", "zip"},
  });
}

void put16(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v & 255);
  out += static_cast<char>((v >> 8) & 255);
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xffff);
  put16(out, v >> 16);
}

// A zip of exactly `total` bytes holding one stored file whose content is never read by the
// structure check: its headers are real, the data between them reads as zeros.
struct sparse_zip {
  std::string head;  // local file header
  std::string tail;  // central directory and its end record
  std::uint64_t total = 0;

  sparse_zip(std::string_view name, std::uint64_t total_size) : total(total_size) {
    const auto data = static_cast<std::uint32_t>(total - 30 - 46 - 22 - 2 * name.size());
    put32(head, 0x04034b50);
    put16(head, 20);
    put16(head, 0);  // flags
    put16(head, 0);  // stored
    put32(head, 0);  // time, date
    put32(head, 0);  // crc: never checked without reading the data
    put32(head, data);
    put32(head, data);
    put16(head, static_cast<std::uint32_t>(name.size()));
    put16(head, 0);
    head += name;
    put32(tail, 0x02014b50);
    put16(tail, 20);
    put16(tail, 20);
    put16(tail, 0);
    put16(tail, 0);
    put32(tail, 0);
    put32(tail, 0);
    put32(tail, data);
    put32(tail, data);
    put16(tail, static_cast<std::uint32_t>(name.size()));
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, 0);
    put32(tail, 0);
    put32(tail, 0);  // local header at 0
    tail += name;
    const auto directory_size = static_cast<std::uint32_t>(tail.size());
    put32(tail, 0x06054b50);
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, 1);
    put16(tail, 1);
    put32(tail, directory_size);
    put32(tail, static_cast<std::uint32_t>(total - directory_size - 22));
    put16(tail, 0);
  }

  sumdb::random_reader reader() const {
    return [this](std::uint64_t offset, std::size_t length) -> boost::system::result<std::string> {
      std::string out;
      const std::uint64_t end = std::min<std::uint64_t>(total, offset + length);
      const std::uint64_t tail_start = total - tail.size();
      for (std::uint64_t at = offset; at < end; ++at) {
        if (at < head.size()) {
          out += head[at];
        } else if (at >= tail_start) {
          out += tail[at - tail_start];
        } else {
          out += '\0';
        }
      }
      return out;
    };
  }
};

// The limits are spelled out, not taken from body_limit(), so a changed limit fails here.
constexpr std::uint64_t max_zip = 500u << 20;
constexpr std::uint64_t max_go_mod = 16u << 20;
constexpr std::uint64_t max_small = 1u << 20;

// A body over its limit is too_large, before any of it is read.
void expect_too_large(const outcome_of<void>& checked) {
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, errc::too_large);
  EXPECT_EQ(checked.error().detail, "response too large");
}

TEST(check_body, sizes_at_and_over_the_limits) {
  const auto zip = request_for("/example.com/hello/@v/v1.2.0.zip");
  const sparse_zip at_limit("example.com/hello@v1.2.0/big.bin", max_zip);
  EXPECT_TRUE(check_body(zip, at_limit.total, at_limit.reader()));
  expect_too_large(check_body(zip, max_zip + 1, unreadable));

  // A go.mod padded with comment lines to exactly 16 MiB is still a go.mod.
  const auto mod = request_for("/example.com/hello/@v/v1.2.0.mod");
  std::string go_mod = "module example.com/hello\n";
  const std::string comment = "// " + std::string(60, 'c') + "\n";
  while (go_mod.size() + comment.size() <= max_go_mod) go_mod += comment;
  go_mod += "//" + std::string(max_go_mod - go_mod.size() - 2, 'c');
  ASSERT_EQ(go_mod.size(), max_go_mod);
  EXPECT_TRUE(check_body(mod, go_mod.size(), reader_of(go_mod)));
  expect_too_large(check_body(mod, max_go_mod + 1, unreadable));

  const std::string list(max_small, 'v');
  EXPECT_TRUE(verdict("/example.com/hello/@v/list", list));
  for (const char* target :
       {"/example.com/hello/@v/list", "/example.com/hello/@latest",
        "/example.com/hello/@v/v1.2.0.info", "/example.com/hello/@v/master.info",
        "/sumdb/sum.golang.org/latest", "/sumdb/sum.golang.org/lookup/example.com/hello@v1.2.0",
        "/sumdb/sum.golang.org/tile/8/0/000"}) {
    SCOPED_TRACE(target);
    expect_too_large(check_body(request_for(target), max_small + 1, unreadable));
  }
}

TEST(check_body, sumdb_tiles_are_their_width_of_hashes) {
  run_table({
      {"full hash tile", "/sumdb/sum.golang.org/tile/8/0/000", std::string(256 * 32, 'h'), ""},
      {"partial hash tile", "/sumdb/sum.golang.org/tile/8/1/002.p/5", std::string(5 * 32, 'h'), ""},
      {"short full tile", "/sumdb/sum.golang.org/tile/8/0/000", std::string(255 * 32, 'h'),
       "tile of 8160 bytes, not 8192"},
      {"long partial tile", "/sumdb/sum.golang.org/tile/8/0/001.p/5", std::string(5 * 32 + 1, 'h'),
       "tile of 161 bytes, not 160"},
      {"empty", "/sumdb/sum.golang.org/tile/8/0/000.p/1", "", "tile of 0 bytes, not 32"},
      // Record texts: any length, checked by the proofs that use them.
      {"data tile", "/sumdb/sum.golang.org/tile/8/data/000.p/3", "example.com/a v1.0.0 h1:x\n", ""},
  });
}

TEST(check_body, signed_sumdb_answers_are_left_to_check_signed_answer) {
  run_table({
      {"supported", "/sumdb/sum.golang.org/supported", "", ""},
      {"latest", "/sumdb/sum.golang.org/latest", "anything", ""},
      {"lookup", "/sumdb/sum.golang.org/lookup/example.com/hello@v1.2.0", "anything", ""},
  });
}

TEST(check_body, reader_failures_are_refusals) {
  const sumdb::random_reader failing = [](std::uint64_t, std::size_t) {
    return boost::system::result<std::string>(make_error_code(errc::cache_io));
  };
  const std::string half = "module example.com/hello\n";
  const sumdb::random_reader short_reader = [&half](std::uint64_t, std::size_t) {
    return boost::system::result<std::string>(half);
  };
  for (const char* target : {"/example.com/hello/@v/v1.2.0.mod", "/example.com/hello/@v/list",
                             "/example.com/hello/@v/v1.2.0.info"}) {
    SCOPED_TRACE(target);
    const auto request = request_for(target);
    const auto failed = check_body(request, 100, failing);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, errc::cache_io);  // the reader's own code
    EXPECT_TRUE(failed.error().detail.starts_with("cannot read body back")) << reason_of(failed);
    const auto short_read = check_body(request, 100, short_reader);
    ASSERT_FALSE(short_read);
    EXPECT_EQ(short_read.error().code, errc::cache_corrupt);
    EXPECT_EQ(short_read.error().detail, "body shorter than received");
  }
  // zip_check reads the zip itself: a zip it cannot read is one it cannot accept, with the
  // reader's code, as above.
  const auto zip = check_body(request_for("/example.com/hello/@v/v1.2.0.zip"), 100, failing);
  ASSERT_FALSE(zip);
  EXPECT_EQ(zip.error().code, errc::cache_io);
}

// ---- check_signed_answer -----------------------------------------------------------------------

class signed_answer : public ::testing::Test {
 protected:
  static constexpr const char* hello_record =
      "example.com/hello v1.2.0 h1:zipzipzipzipzipzipzipzipzipzipzipzipzipzipz=\n"
      "example.com/hello v1.2.0/go.mod h1:modmodmodmodmodmodmodmodmodmodmodmodmodmodm=\n";
  static constexpr const char* only_go_mod_record =
      "example.com/modonly v1.0.0/go.mod h1:modmodmodmodmodmodmodmodmodmodmodmodmodmodm=\n";

  test::test_checksum_database db_{
      "sum.example.com", {"example.com/other v1.0.0 h1:aaaa=\n", hello_record, only_go_mod_record}};
  sumdb::verifier_key key_ = sumdb::parse_verifier_key(db_.verifier_key_text()).value();

  outcome_of<void> check(std::string_view target, const std::string& body) {
    return check_signed_answer(request_for(target), body.size(), reader_of(body), key_);
  }
  std::string answer(std::string_view path) { return db_.answer(path).value(); }
};

constexpr const char* latest = "/sumdb/sum.example.com/latest";
constexpr const char* hello_lookup = "/sumdb/sum.example.com/lookup/example.com/hello@v1.2.0";

TEST_F(signed_answer, signed_tree_head_is_accepted) {
  EXPECT_TRUE(check(latest, answer("/latest")));
}

TEST_F(signed_answer, tree_head_refusals) {
  const test::test_signer impostor("sum.example.com");
  sumdb::tree_head head;
  head.size = 3;
  const std::string tree = sumdb::format_tree_head(head);
  std::string tampered = answer("/latest");
  tampered[tampered.find('\n') + 1] = '4';  // the size line: 3 -> 4
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"unsigned", tree}, {"signed by another key", impostor.sign(tree)}, {"tampered", tampered},
      {"empty", ""},      {"not a note", "go.sum database tree\n3\n"},
  };
  for (const auto& [name, body] : cases) {
    SCOPED_TRACE(name);
    const auto bad = check(latest, body);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::verification_failed);
    EXPECT_TRUE(bad.error().detail.starts_with("tree head not signed by sum.example.com"))
        << reason_of(bad);
    EXPECT_EQ(reason_of(bad).find('\n'), std::string::npos) << reason_of(bad);
  }
  // Signed, but not a tree head.
  const test::test_signer signer("sum.example.com");
  const auto own_key = sumdb::parse_verifier_key(signer.verifier_key_text()).value();
  const std::string not_a_tree = signer.sign("go.sum database tree\nthree\n");
  const auto bad =
      check_signed_answer(request_for(latest), not_a_tree.size(), reader_of(not_a_tree), own_key);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::verification_failed);
  EXPECT_TRUE(bad.error().detail.starts_with("tree head: ")) << reason_of(bad);
}

TEST_F(signed_answer, lookup_names_the_module_version_inside_the_tree) {
  EXPECT_TRUE(check(hello_lookup, answer("/lookup/example.com/hello@v1.2.0")));
  // A version known only by its go.mod has no zip line; its go.mod line is enough.
  EXPECT_TRUE(check("/sumdb/sum.example.com/lookup/example.com/modonly@v1.0.0",
                    "2\n" + std::string(only_go_mod_record) + "\n" + answer("/latest")));
}

TEST_F(signed_answer, lookup_refusals) {
  const std::string tree = answer("/latest");  // a signed tree of 3 records
  sumdb::tree_head small;
  small.size = 1;
  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> cases = {
      {"another module's record",
       {answer("/lookup/example.com/other@v1.0.0"), "lookup record is for another module version"}},
      {"another version",
       {"1\nexample.com/hello v1.2.1 h1:x=\n\n" + tree,
        "lookup record is for another module version"}},
      {"a longer path with the same prefix",
       {"1\nexample.com/hello/v2 v1.2.0 h1:x=\n\n" + tree,
        "lookup record is for another module version"}},
      {"a version with the same prefix",
       {"1\nexample.com/hello v1.2.0.1 h1:x=\n\n" + tree,
        "lookup record is for another module version"}},
      {"a line without a hash",
       {"1\nexample.com/hello v1.2.0 xx\n\n" + tree,
        "lookup record is for another module version"}},
      {"record id at the tree size",
       {"3\n" + std::string(hello_record) + "\n" + tree, "lookup record lies beyond its tree"}},
      {"record id beyond a smaller tree",
       {"1\n" + std::string(hello_record) + "\n" + db_.sign_tree(small),
        "lookup record lies beyond its tree"}},
      {"unsigned tree",
       {"1\n" + std::string(hello_record) + "\n" + sumdb::format_tree_head(small),
        "tree head not signed"}},
      {"no blank line", {"1\n" + std::string(hello_record), "lookup answer: "}},
      {"id not decimal", {"x\n" + std::string(hello_record) + "\n" + tree, "lookup answer: "}},
      {"empty", {"", "lookup answer: "}},
  };
  for (const auto& [name, body_and_reason] : cases) {
    SCOPED_TRACE(name);
    const auto& [body, reason] = body_and_reason;
    const auto bad = check(hello_lookup, body);
    ASSERT_FALSE(bad) << "accepted";
    EXPECT_EQ(bad.error().code, errc::verification_failed);
    EXPECT_TRUE(bad.error().detail.starts_with(reason)) << reason_of(bad);
    EXPECT_EQ(reason_of(bad).find('\n'), std::string::npos) << reason_of(bad);
  }
}

TEST_F(signed_answer, unreadable_body_is_refused) {
  const std::string body = answer("/latest");
  const sumdb::random_reader failing = [](std::uint64_t, std::size_t) {
    return boost::system::result<std::string>(make_error_code(errc::cache_io));
  };
  const auto bad = check_signed_answer(request_for(latest), body.size(), failing, key_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::cache_io);
  EXPECT_TRUE(bad.error().detail.starts_with("cannot read body back")) << reason_of(bad);
  const auto short_read =
      check_signed_answer(request_for(latest), body.size() + 1, reader_of(body), key_);
  ASSERT_FALSE(short_read);
  EXPECT_EQ(short_read.error().code, errc::cache_corrupt);
  EXPECT_EQ(short_read.error().detail, "body shorter than received");
}

}  // namespace
}  // namespace gomodproxy::resolver
