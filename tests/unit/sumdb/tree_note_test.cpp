#include "sumdb/tree_note.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::sumdb {
namespace {

// golang.org/x/mod/sumdb/tlog's tree text test: size 123456789012, root RecordHash("hello world").
constexpr std::string_view go_tree =
    "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";

TEST(tree_head, published_vector) {
  const auto head = parse_tree_head(go_tree);
  ASSERT_TRUE(head.has_value()) << head.error().message();
  EXPECT_EQ(head->size, 123456789012);
  EXPECT_EQ(head->root, record_hash("hello world"));
  EXPECT_EQ(format_tree_head(*head), go_tree);
}

TEST(tree_head, later_lines_are_ignored) {
  std::string many(go_tree);
  for (int i = 0; i < 1000; ++i) many += "JOE\n";
  for (const std::string& text :
       {std::string(go_tree) + "JOE", std::string(go_tree) + "JOE\n", many}) {
    const auto head = parse_tree_head(text);
    ASSERT_TRUE(head.has_value());
    EXPECT_EQ(head->size, 123456789012);
  }
}

TEST(tree_head, malformed) {
  const std::string hash = "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"prefix", "not-" + std::string(go_tree)},
      {"hex size", "go.sum database tree\n0xabcdef\n" + hash + "\n"},
      {"bad hash",
       "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n"},
      {"short hash", "go.sum database tree\n1\n" + hash.substr(0, 40) + "\n"},
      {"no final newline", "go.sum database tree\n1\n" + hash},
      {"negative size", "go.sum database tree\n-1\n" + hash + "\n"},
      {"plus sign", "go.sum database tree\n+1\n" + hash + "\n"},
      {"leading zero", "go.sum database tree\n01\n" + hash + "\n"},
      {"empty size", "go.sum database tree\n\n" + hash + "\n"},
      {"size overflows", "go.sum database tree\n9223372036854775808\n" + hash + "\n"},
      {"space", "go.sum database tree\n1 \n" + hash + "\n"},
      {"too long", std::string(go_tree) + std::string(1000000, 'x')},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    const auto head = parse_tree_head(text);
    ASSERT_FALSE(head.has_value());
    EXPECT_EQ(head.error(), make_error_code(verify_errc::malformed_tree));
  }
  EXPECT_TRUE(parse_tree_head("go.sum database tree\n0\n" + hash + "\n").has_value());
  EXPECT_EQ(parse_tree_head("go.sum database tree\n9223372036854775807\n" + hash + "\n")->size,
            9223372036854775807);
}

TEST(lookup_response, splits_id_record_and_note) {
  // The shape of golang.org/x/mod/sumdb/tlog's record text test, with junk as the "note".
  const auto record = parse_lookup_response("123456789012\nhello, world\n\njunk on end\x01\xff");
  ASSERT_TRUE(record.has_value()) << record.error().message();
  EXPECT_EQ(record->id, 123456789012);
  EXPECT_EQ(record->text, "hello, world\n");
  EXPECT_EQ(record->signed_tree, "junk on end\x01\xff");

  const std::string body =
      "7\ngolang.org/x/text v0.3.0 h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=\n"
      "golang.org/x/text v0.3.0/go.mod h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ=\n"
      "\ngo.sum database tree\n8\n...\n\n\xe2\x80\x94 sum.golang.org x\n";
  const auto lookup = parse_lookup_response(body);
  ASSERT_TRUE(lookup.has_value());
  EXPECT_EQ(lookup->id, 7);
  EXPECT_EQ(lookup->text.size(), body.find("\n\n") + 1 - 2);
  EXPECT_EQ(lookup->signed_tree.rfind("go.sum database tree\n8\n", 0), 0u);
}

TEST(lookup_response, malformed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"prefix", "not-123456789012\nhello, world\n\n"},
      {"control character", "123\nhello\x01world\n\n"},
      {"invalid utf8", "123\nhello\xffworld\n\n"},
      {"no blank line", "123\nhello world\n"},
      {"hex id", "0x123\nhello world\n\n"},
      {"negative id", "-1\nhello world\n\n"},
      {"empty id", "\nhello world\n\n"},
      {"empty text", "123\n\n\nnote"},
      {"no newline", "123"},
  };
  for (const auto& [name, body] : cases) {
    SCOPED_TRACE(name);
    const auto record = parse_lookup_response(body);
    ASSERT_FALSE(record.has_value());
    EXPECT_EQ(record.error(), make_error_code(verify_errc::malformed_record));
  }
}

TEST(go_sum_hash, finds_the_zip_and_go_mod_lines_of_one_module_version) {
  const std::string text =
      "example.com/m v1.0.0 h1:zip=\n"
      "example.com/m v1.0.0/go.mod h1:mod=\n";
  EXPECT_EQ(go_sum_hash(text, "example.com/m", "v1.0.0", false), "h1:zip=");
  EXPECT_EQ(go_sum_hash(text, "example.com/m", "v1.0.0", true), "h1:mod=");
  EXPECT_FALSE(go_sum_hash(text, "example.com/m", "v1.0.1", false));
  EXPECT_FALSE(go_sum_hash(text, "example.com/m/v2", "v1.0.0", false));
  EXPECT_FALSE(go_sum_hash("example.com/m v1.0.0 h2:other\n", "example.com/m", "v1.0.0", false));
  EXPECT_FALSE(go_sum_hash("", "example.com/m", "v1.0.0", true));
}

}  // namespace
}  // namespace gomodproxy::sumdb
