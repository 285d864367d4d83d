#include "protocol/request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace gomodproxy::protocol {
namespace {

TEST(endpoint_name, names_every_kind) {
  const struct {
    endpoint kind;
    std::string_view name;
  } cases[] = {
      {endpoint::list, "list"},
      {endpoint::latest, "latest"},
      {endpoint::info, "info"},
      {endpoint::query, "query"},
      {endpoint::mod, "mod"},
      {endpoint::zip, "zip"},
      {endpoint::sumdb_supported, "sumdb_supported"},
      {endpoint::sumdb_lookup, "sumdb_lookup"},
      {endpoint::sumdb_tile, "sumdb_tile"},
      {endpoint::sumdb_latest, "sumdb_latest"},
  };
  for (const auto& c : cases) EXPECT_EQ(endpoint_name(c.kind), c.name);
}

TEST(percent_decode, decodes_escapes_and_keeps_plus) {
  const struct {
    std::string in;
    bool ok;
    std::string out;
  } cases[] = {
      {"", true, ""},
      {"/a%2Fb", true, "/a/b"},
      {"%7e%7E", true, "~~"},
      {"%21upper", true, "!upper"},
      {"v2.0.0+incompatible", true, "v2.0.0+incompatible"},
      {"%2B", true, "+"},
      {"%", false, ""},
      {"%2", false, ""},
      {"a%g0", false, ""},
      {"a%0g", false, ""},
      {"a%00b", false, ""},
      {std::string("a\0b", 3), false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    std::string out;
    ASSERT_EQ(percent_decode(c.in, out), c.ok);
    if (c.ok) {
      EXPECT_EQ(out, c.out);
    }
  }
}

TEST(percent_encode, keeps_unreserved_and_the_bytes_asked_for_and_round_trips) {
  const struct {
    std::string in;
    std::string kept;
    std::string out;
  } cases[] = {
      {"", "", ""},
      {"AZaz09-._~", "", "AZaz09-._~"},
      {"a b+c&d=e", "", "a%20b%2Bc%26d%3De"},
      {"example.com/*@v1", "", "example.com%2F%2A%40v1"},
      {"example.com/*@v1", "/@*", "example.com/*@v1"},
      {std::string("\0\xff", 2), "", "%00%FF"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(percent_encode(c.in, c.kept), c.out);
  }
  std::string all;
  for (int byte = 1; byte < 256; ++byte) all += static_cast<char>(byte);
  std::string decoded;
  ASSERT_TRUE(percent_decode(percent_encode(all), decoded));
  EXPECT_EQ(decoded, all);
}

struct accepted {
  std::string target;
  endpoint kind;
  std::string module_path;
  std::string version;
  std::string upstream_path;
};

TEST(parse_module_request, accepts_what_the_go_command_sends) {
  const accepted cases[] = {
      {"/example.com/%21upper/@v/v1.0.0-%21r%21c1.info", endpoint::info, "example.com/Upper",
       "v1.0.0-RC1", "/example.com/!upper/@v/v1.0.0-!r!c1.info"},
      {"/example.com/!upper/@v/v1.0.0-!r!c1.zip", endpoint::zip, "example.com/Upper", "v1.0.0-RC1",
       "/example.com/!upper/@v/v1.0.0-!r!c1.zip"},
      {"/github.com/%21burnt%21sushi/toml/@v/list", endpoint::list, "github.com/BurntSushi/toml",
       "", "/github.com/!burnt!sushi/toml/@v/list"},
      {"/example.com/m/@latest", endpoint::latest, "example.com/m", "", "/example.com/m/@latest"},
      {"/example.com/m/@v/v2.0.0+incompatible.info", endpoint::info, "example.com/m",
       "v2.0.0+incompatible", "/example.com/m/@v/v2.0.0+incompatible.info"},
      {"/example.com/m/@v/v2.0.0+incompatible.mod", endpoint::mod, "example.com/m",
       "v2.0.0+incompatible", "/example.com/m/@v/v2.0.0+incompatible.mod"},
      {"/example.com/m/@v/v2.0.0%2Bincompatible.zip", endpoint::zip, "example.com/m",
       "v2.0.0+incompatible", "/example.com/m/@v/v2.0.0+incompatible.zip"},
      {"/example.com/m/v2/@v/v2.1.0.mod", endpoint::mod, "example.com/m/v2", "v2.1.0",
       "/example.com/m/v2/@v/v2.1.0.mod"},
      {"/gopkg.in/yaml.v2/@v/v2.4.0.zip", endpoint::zip, "gopkg.in/yaml.v2", "v2.4.0",
       "/gopkg.in/yaml.v2/@v/v2.4.0.zip"},
      {"/gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod", endpoint::mod,
       "gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405",
       "/gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod"},
      {"/example.com/m/@v/v0.0.0-20191109021931-daa7c04131f5.info", endpoint::info, "example.com/m",
       "v0.0.0-20191109021931-daa7c04131f5",
       "/example.com/m/@v/v0.0.0-20191109021931-daa7c04131f5.info"},
      {"/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.zip", endpoint::zip,
       "golang.org/toolchain", "v0.0.1-go1.21.0.linux-amd64",
       "/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.zip"},
      // Revision queries reach .info with anything a file name may hold.
      {"/example.com/m/@v/master.info", endpoint::query, "example.com/m", "master",
       "/example.com/m/@v/master.info"},
      {"/example.com/m/@v/daa7c041.info", endpoint::query, "example.com/m", "daa7c041",
       "/example.com/m/@v/daa7c041.info"},
      {"/example.com/m/@v/v1.2.info", endpoint::query, "example.com/m", "v1.2",
       "/example.com/m/@v/v1.2.info"},
      {"/example.com/m/@v/v1.2.3+meta.info", endpoint::query, "example.com/m", "v1.2.3+meta",
       "/example.com/m/@v/v1.2.3+meta.info"},
      {"/example.com/m/@v/v2.0.0.info", endpoint::query, "example.com/m", "v2.0.0",
       "/example.com/m/@v/v2.0.0.info"},
      {"/example.com/m/@v/!feature-!x.info", endpoint::query, "example.com/m", "Feature-X",
       "/example.com/m/@v/!feature-!x.info"},
      // However the client encoded it, the upstream path is the canonical escaping.
      {"/example.com%2Fm/@v/%761.0.0.zip", endpoint::zip, "example.com/m", "v1.0.0",
       "/example.com/m/@v/v1.0.0.zip"},
      {"/example.com/m/@v/list.info", endpoint::query, "example.com/m", "list",
       "/example.com/m/@v/list.info"},
      // File-name characters a URL path may not hold raw stay encoded on the way upstream.
      {"/example.com/m/@v/v1%25.info", endpoint::query, "example.com/m", "v1%",
       "/example.com/m/@v/v1%25.info"},
      {"/example.com/m/@v/a%20b%23c%5b%5D%5E%7B%7d.info", endpoint::query, "example.com/m",
       "a b#c[]^{}", "/example.com/m/@v/a%20b%23c%5B%5D%5E%7B%7D.info"},
      {"/example.com/m/@v/%24%26(),=@.info", endpoint::query, "example.com/m", "$&(),=@",
       "/example.com/m/@v/$&(),=@.info"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    const auto result = parse_module_request(c.target);
    ASSERT_TRUE(result) << result.error().detail;
    const auto* request = &*result;
    EXPECT_EQ(endpoint_name(request->kind), endpoint_name(c.kind));
    EXPECT_EQ(request->module_path, c.module_path);
    EXPECT_EQ(request->version, c.version);
    EXPECT_EQ(request->upstream_path, c.upstream_path);
    EXPECT_EQ(request->cache_key, c.upstream_path);
  }
}

// The upstream path is sent as a request target and is the cache key: it must parse back to the
// very same request. Found by tests/fuzz/request_path_fuzz.cpp with a '%' in a revision query.
TEST(parse_module_request, upstream_path_parses_back_to_the_same_request) {
  const std::string targets[] = {
      "/example.com/m/@v/v2222222222222222222%25.0.1.info",
      "/example.com/m/@v/a%20b%23c%5B%5D%5E%7B%7D.info",
      "/example.com/%21upper/@v/v1.0.0-%21r%21c1.info",
      "/example.com/m/@v/v2.0.0%2Bincompatible.zip",
  };
  for (const auto& target : targets) {
    SCOPED_TRACE(target);
    const auto first = parse_module_request(target);
    ASSERT_TRUE(first) << first.error().detail;
    const auto* request = &*first;
    const auto again = parse_module_request(request->upstream_path);
    ASSERT_TRUE(again) << again.error().detail;
    const auto* same = &*again;
    EXPECT_EQ(same->kind, request->kind);
    EXPECT_EQ(same->module_path, request->module_path);
    EXPECT_EQ(same->version, request->version);
    EXPECT_EQ(same->upstream_path, request->upstream_path);
  }
}

struct refused {
  std::string target;
  std::string reason;  // expected substring
};

const refused refusals[] = {
    {"/example.com/Upper/@v/list", "invalid escaped module path \"example.com/Upper\""},
    {"/example.com/%41/@v/list", "invalid escaped module path"},
    {"/example.com/!/@v/list", "invalid escaped module path"},
    {"/example.com/!!a/@v/list", "invalid escaped module path"},
    {"/exa%C3%A9mple.com/m/@v/list", "invalid escaped module path \"exa\\xc3\\xa9mple.com/m\""},
    {"/example.com/a+b/@v/list", "invalid char '+'"},
    {"/example.com/m/v1/@v/list", "invalid version"},
    {"/example.com//m/@v/list", "double slash"},
    {"//@v/list", "empty string"},
    {"/../etc/passwd/@v/list", "invalid path element \"..\""},
    {"/example.com/%2e%2e/@v/list", "invalid path element \"..\""},
    {"/example.com/m/@v/v1.0.0-RC1.info", "invalid escaped version \"v1.0.0-RC1\""},
    {"/example.com/m/@v/.info", "invalid escaped version \"\""},
    {"/example.com/m/@v/..info", "invalid escaped version \".\""},
    {"/example.com/m/@v/...info", "invalid escaped version \"..\""},
    {"/example.com/m/@v/con.info", "invalid escaped version \"con\""},
    {"/example.com/m/@v/a%2Fb.info", "invalid escaped version \"a/b\""},
    {"/example.com/m/@v/v1.0.0%0A.info", "invalid escaped version \"v1.0.0\\n\""},
    {"/example.com/m/@v/v1.0.0%7F.info", "invalid escaped version \"v1.0.0\\x7f\""},
    {"/example.com/m/@v/v1.2.mod", "version \"v1.2\" is not canonical"},
    {"/example.com/m/@v/v1.2.3+meta.zip", "version \"v1.2.3+meta\" is not canonical"},
    {"/example.com/m/@v/master.zip", "is not canonical"},
    {"/example.com/m/@v/2.7.5.mod", "is not canonical"},
    {"/example.com/m/@v/v1.0.0.info.zip", "is not canonical"},
    {"/example.com/m/@v/v2.0.0.zip", "should be v0 or v1, not v2"},
    {"/example.com/m/v2/@v/v1.0.0.mod", "should be v2, not v1"},
    {"/gopkg.in/yaml.v2/@v/v3.0.0.mod", "should be v2, not v3"},
    {"/example.com/m/@v/list?x=1", "query strings"},
    {"/example.com/m/@latest?", "query strings"},
    {"/example.com/m/@v/v1.0.0.zip#frag", "query strings"},
    {"/example.com/m/@v/v1.0.0.tar", "unknown endpoint"},
    {"/example.com/m/@v/", "unknown endpoint"},
    {"/example.com/m/@v/LIST", "unknown endpoint"},
    {"/example.com/m/@latest/", "unknown endpoint"},
    {"/example.com/m/@v/v1.0.0.zip/", "unknown endpoint"},
    {"/example.com/m/@v/list/", "unknown endpoint"},
    {"/example.com/m", "unknown endpoint"},
    {"/", "unknown endpoint"},
    {"/@latest", "unknown endpoint"},
    {"", "must start with '/'"},
    {"example.com/m/@v/list", "must start with '/'"},
    {"/example.com/m/@v/v1.0.0%00.zip", "percent-encoding"},
    {"/example.com/m/@v/v1.0.0%zz.zip", "percent-encoding"},
    {"/example.com/m/@v/v1.0.0.zip%", "percent-encoding"},
};

TEST(parse_module_request, refuses_what_the_go_command_never_sends) {
  for (const auto& [target, reason] : refusals) {
    SCOPED_TRACE(target);
    const auto result = parse_module_request(target);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, errc::invalid_request);
    EXPECT_EQ(to_http_status(result.error()), 404);
    EXPECT_NE(result.error().detail.find(reason), std::string::npos) << result.error().detail;
  }
}

TEST(parse_module_request, reasons_are_one_line_of_printable_ascii) {
  std::vector<std::string> targets;
  for (const auto& r : refusals) targets.push_back(r.target);
  targets.push_back("/\x01\xff/@v/list");
  targets.push_back("/example.com/m/@v/\xe2\x80\xae\r\n.info");
  targets.push_back("/example.com/" + std::string(4000, 'A') + "/@v/list");
  for (const auto& target : targets) {
    SCOPED_TRACE(target.substr(0, 80));
    const auto result = parse_module_request(target);
    ASSERT_FALSE(result);
    const auto& detail = result.error().detail;
    EXPECT_FALSE(detail.empty());
    EXPECT_LT(detail.size(), 600u);
    for (char c : detail) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << static_cast<int>(c);
    }
  }
}

// The module cache stores each escaped path element and the escaped version as a file or
// directory name; one longer than a file name can be is no module any go command can fetch.
TEST(parse_module_request, elements_longer_than_a_file_name_are_refused) {
  const std::string longest(255, 'a');
  const std::string too_long(256, 'a');
  std::string upper_escaped_255;  // 127 upper-case letters escape to 254 bytes, then one more
  for (int i = 0; i < 127; ++i) upper_escaped_255 += "!a";
  upper_escaped_255 += 'a';
  const std::string upper_escaped_256 = upper_escaped_255.substr(1) + "!a";
  const std::string long_prerelease = "v1.0.0-" + std::string(248, 'x');  // 255 bytes
  const std::string too_long_prerelease = long_prerelease + "x";
  const struct {
    std::string target;
    bool accepted;
    std::string reason;  // expected substring when refused
  } cases[] = {
      {"/example.com/" + longest + "/@v/list", true, ""},
      {"/example.com/" + too_long + "/@v/list", false, "module path element of 256 bytes"},
      {"/example.com/" + std::string(10240, 'a') + "/@latest", false,
       "module path element of 10240 bytes"},
      {"/example.com/" + too_long + "/x/@v/v1.0.0.zip", false, "module path element of 256"},
      {"/" + std::string(251, 'a') + ".com/m/@v/list", true, ""},
      {"/" + std::string(252, 'a') + ".com/m/@v/list", false, "module path element of 256"},
      {"/example.com/" + upper_escaped_255 + "/@v/v1.0.0.mod", true, ""},
      {"/example.com/" + upper_escaped_256 + "/@v/v1.0.0.mod", false, "element of 256 bytes"},
      {"/example.com/m/@v/" + long_prerelease + ".info", true, ""},
      {"/example.com/m/@v/" + too_long_prerelease + ".info", false, "version of 256 bytes"},
      {"/example.com/m/@v/" + too_long_prerelease + ".mod", false, "version of 256 bytes"},
      {"/example.com/m/@v/" + std::string(300, 'b') + ".info", false, "version of 300 bytes"},
      {"/sumdb/sum.golang.org/lookup/example.com/" + longest + "@v1.0.0", true, ""},
      {"/sumdb/sum.golang.org/lookup/example.com/" + too_long + "@v1.0.0", false,
       "module path element of 256 bytes"},
      {"/sumdb/sum.golang.org/lookup/example.com/m@" + too_long_prerelease, false,
       "version of 256 bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target.substr(0, 60) + "... (" + std::to_string(c.target.size()) + " bytes)");
    const auto result = parse_module_request(c.target);
    if (c.accepted) {
      EXPECT_TRUE(result) << result.error().detail;
      continue;
    }
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, errc::invalid_request);
    const auto& detail = result.error().detail;
    EXPECT_NE(detail.find(c.reason), std::string::npos) << detail;
    EXPECT_NE(detail.find("longer than a file name can be (255 bytes)"), std::string::npos)
        << detail;
    EXPECT_LT(detail.size(), 200u) << "the reason does not echo the element";
  }
}

TEST(parse_module_request, checksum_database_paths) {
  const struct {
    std::string_view target;
    endpoint kind;
    std::string_view module_path, version, upstream_path;
  } cases[] = {
      {"/sumdb/sum.golang.org/supported", endpoint::sumdb_supported, "", "", "/supported"},
      {"/sumdb/sum.golang.org/latest", endpoint::sumdb_latest, "", "", "/latest"},
      {"/sumdb/sum.golang.org/lookup/example.com/%21upper@v1.0.0-%21r%21c1", endpoint::sumdb_lookup,
       "example.com/Upper", "v1.0.0-RC1", "/lookup/example.com/!upper@v1.0.0-!r!c1"},
      {"/sumdb/sum.golang.org/lookup/example.com/m/v2@v2.0.1", endpoint::sumdb_lookup,
       "example.com/m/v2", "v2.0.1", "/lookup/example.com/m/v2@v2.0.1"},
      {"/sumdb/sum.golang.org/tile/8/0/000", endpoint::sumdb_tile, "", "", "/tile/8/0/000"},
      {"/sumdb/sum.golang.org/tile/8/1/x001/x234/067.p/255", endpoint::sumdb_tile, "", "",
       "/tile/8/1/x001/x234/067.p/255"},
      {"/sumdb/sum.golang.org/tile/8/data/000.p/1", endpoint::sumdb_tile, "", "",
       "/tile/8/data/000.p/1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    const auto result = parse_module_request(c.target);
    ASSERT_TRUE(result) << result.error().detail;
    const auto* request = &*result;
    EXPECT_EQ(request->kind, c.kind);
    EXPECT_TRUE(is_sumdb(request->kind));
    EXPECT_EQ(request->sumdb, "sum.golang.org");
    EXPECT_EQ(request->module_path, c.module_path);
    EXPECT_EQ(request->version, c.version);
    EXPECT_EQ(request->upstream_path, c.upstream_path);
    EXPECT_EQ(request->cache_key, "/sumdb/sum.golang.org" + std::string(c.upstream_path));
  }
  for (std::string_view bad :
       {"/sumdb/sum.golang.org", "/sumdb//latest", "/sumdb/a b/latest", "/sumdb/.x/latest",
        "/sumdb/sum.golang.org/lookup/example.com/m",
        "/sumdb/sum.golang.org/lookup/example.com/m@master",
        "/sumdb/sum.golang.org/lookup/example.com/m@v2.0.0",
        "/sumdb/sum.golang.org/lookup/nodot@v1.0.0", "/sumdb/sum.golang.org/tile/8/0/0001",
        "/sumdb/sum.golang.org/tile/8/0/00", "/sumdb/sum.golang.org/tile/0/0/000",
        "/sumdb/sum.golang.org/tile/08/0/000", "/sumdb/sum.golang.org/tile/8/0/000.p/0",
        "/sumdb/sum.golang.org/tile/8/0/000.p/256", "/sumdb/sum.golang.org/tile/8/0/x01/000",
        "/sumdb/sum.golang.org/tile/8/0/000/", "/sumdb/sum.golang.org/tile/8/64/000",
        "/sumdb/sum.golang.org/latest/", "/sumdb/sum.golang.org/other"}) {
    SCOPED_TRACE(bad);
    const auto result = parse_module_request(bad);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, errc::invalid_request);
  }
  EXPECT_FALSE(is_sumdb(endpoint::zip));
}

}  // namespace
}  // namespace gomodproxy::protocol
