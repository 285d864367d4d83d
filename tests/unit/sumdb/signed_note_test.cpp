#include "sumdb/signed_note.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <vector>

#include "config/known_sumdb_key.hpp"
#include "sumdb/base64.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"
#include "tests/support/cpp/test_signer.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::string_view em_dash = "\xe2\x80\x94";

using test::test_signer;

verifier_key key_of(const test_signer& signer) {
  auto key = parse_verifier_key(signer.verifier_key_text());
  if (!key) throw std::runtime_error("verifier key: " + key.error().message());
  return *key;
}

constexpr std::string_view tree_text =
    "go.sum database tree\n300\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";

TEST(signed_note, a_signed_note_opens_to_its_text) {
  const test_signer signer("sum.example.com");
  const std::string note = signer.sign(tree_text);
  const auto text = open_note(note, key_of(signer));
  ASSERT_TRUE(text.has_value()) << text.error().message();
  EXPECT_EQ(*text, tree_text);

  const auto parsed = parse_note(note);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->text, tree_text);
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].name, "sum.example.com");
  EXPECT_EQ(parsed->signatures[0].key_hash, key_of(signer).key_hash);
  EXPECT_EQ(parsed->signatures[0].signature.size(), 64u);
}

TEST(signed_note, every_changed_text_byte_is_a_bad_signature) {
  const test_signer signer("sum.example.com");
  const verifier_key key = key_of(signer);
  const std::string note = signer.sign(tree_text);
  for (std::size_t i = 0; i < tree_text.size(); ++i) {
    SCOPED_TRACE(i);
    std::string changed = note;
    // Stay printable and never make or remove a newline, so only the signature can object.
    if (changed[i] == '\n') continue;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    const auto text = open_note(changed, key);
    ASSERT_FALSE(text.has_value());
    EXPECT_EQ(text.error(), make_error_code(verify_errc::bad_signature));
  }
}

TEST(signed_note, a_changed_signature_byte_is_a_bad_signature) {
  const test_signer signer("sum.example.com");
  const verifier_key key = key_of(signer);
  const std::string text(tree_text);
  const std::string signature = signer.signature_of(text);
  std::string key_hash(4, '\0');
  for (int i = 0; i < 4; ++i) key_hash[i] = static_cast<char>((key.key_hash >> (24 - 8 * i)) & 255);
  for (std::size_t i = 0; i < signature.size(); i += 7) {
    SCOPED_TRACE(i);
    std::string changed = signature;
    changed[i] = static_cast<char>(changed[i] ^ 0x20);
    const std::string note = text + "\n" + std::string(em_dash) + " sum.example.com " +
                             encode_base64(key_hash + changed) + "\n";
    const auto opened = open_note(note, key);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error(), make_error_code(verify_errc::bad_signature));
  }
}

TEST(signed_note, another_key_is_unknown_or_bad) {
  const test_signer signer("sum.example.com");
  const test_signer other("sum.example.com");
  const test_signer renamed("other.example.com");
  const std::string note = signer.sign(tree_text);
  // Same name, another key: a different key hash, so no signature is by the expected key.
  auto opened = open_note(note, key_of(other));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error(), make_error_code(verify_errc::unknown_key));
  opened = open_note(note, key_of(renamed));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error(), make_error_code(verify_errc::unknown_key));
  // The right key hash under a wrong name.
  const std::string misnamed =
      std::string(tree_text) + "\n" + signer.signature_line(tree_text, "sum.example.org");
  opened = open_note(misnamed, key_of(signer));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error(), make_error_code(verify_errc::unknown_key));
}

TEST(signed_note, signatures_by_other_keys_are_ignored) {
  const test_signer signer("sum.example.com");
  const test_signer witness("witness.example.com");
  const std::string note = std::string(tree_text) + "\n" + witness.signature_line(tree_text) +
                           signer.signature_line(tree_text);
  const auto text = open_note(note, key_of(signer));
  ASSERT_TRUE(text.has_value()) << text.error().message();
  EXPECT_EQ(*text, tree_text);
  const auto by_witness = open_note(note, key_of(witness));
  EXPECT_TRUE(by_witness.has_value());
}

TEST(signed_note, malformed_notes) {
  const test_signer signer("sum.example.com");
  const verifier_key key = key_of(signer);
  const std::string text(tree_text);
  const std::string line = signer.signature_line(text);
  const std::string b64 = line.substr(line.rfind(' ') + 1, line.size() - line.rfind(' ') - 2);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"no blank line", text + line},
      {"no signatures", text + "\n"},
      {"signature without newline", text + "\n" + line.substr(0, line.size() - 1)},
      {"hyphen instead of em dash", text + "\n- sum.example.com " + b64 + "\n"},
      {"no space before base64", text + "\n" + std::string(em_dash) + " sum.example.com\n"},
      {"empty base64", text + "\n" + std::string(em_dash) + " sum.example.com \n"},
      {"bad base64", text + "\n" + std::string(em_dash) + " sum.example.com !!!!\n"},
      {"only a key hash",
       text + "\n" + std::string(em_dash) + " sum.example.com " + encode_base64("abcd") + "\n"},
      {"plus in name", text + "\n" + std::string(em_dash) + " sum+x " + b64 + "\n"},
      {"control character in text", "go.sum\tdatabase tree\n\n" + line},
      {"invalid utf8 in text", "go.sum \xff tree\n\n" + line},
      {"carriage return", text + "\n" + line.substr(0, line.size() - 1) + "\r\n"},
      {"trailing junk line", text + "\n" + line + "junk\n"},
  };
  for (const auto& [name, note] : cases) {
    SCOPED_TRACE(name);
    const auto opened = open_note(note, key);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error(), make_error_code(verify_errc::malformed_note));
  }
  std::string many = text + "\n";
  for (int i = 0; i < 101; ++i) many += line;
  EXPECT_EQ(parse_note(many).error(), make_error_code(verify_errc::malformed_note));
  std::string hundred = text + "\n";
  for (int i = 0; i < 100; ++i) hundred += line;
  EXPECT_TRUE(open_note(hundred, key).has_value());
}

// The example in golang.org/x/mod/sumdb/note's package documentation: a published key and a
// note it signed.
TEST(signed_note, published_example_note) {
  const auto key =
      parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_TRUE(key.has_value()) << key.error().message();
  EXPECT_EQ(key->key_hash, 0xc74f20a3u);
  const std::string text =
      "If you think cryptography is the answer to your problem,\n"
      "then you don't know what your problem is.\n";
  const std::string note =
      text + "\n" + std::string(em_dash) +
      " PeterNeumann "
      "x08go/ZJkuBS9UG/"
      "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  const auto opened = open_note(note, *key);
  ASSERT_TRUE(opened.has_value()) << opened.error().message();
  EXPECT_EQ(*opened, text);
  std::string changed = note;
  changed[0] = 'i';
  EXPECT_EQ(open_note(changed, *key).error(), make_error_code(verify_errc::bad_signature));
}

// A lookup answer checked the way a client does: the signed tree head, then the record's
// inclusion in that tree.
TEST(signed_note, lookup_answer_verifies_end_to_end) {
  const test_signer signer("sum.example.com");
  const verifier_key key = key_of(signer);
  std::vector<std::string> records;
  std::vector<tlog_hash> storage;
  const hash_reader read =
      [&storage](
          std::span<const std::int64_t> indexes) -> boost::system::result<std::vector<tlog_hash>> {
    std::vector<tlog_hash> out;
    for (std::int64_t index : indexes) out.push_back(storage.at(static_cast<std::size_t>(index)));
    return out;
  };
  for (std::int64_t n = 0; n < 10; ++n) {
    records.push_back("example.com/m" + std::to_string(n) + " v1.0.0 h1:x=\nexample.com/m" +
                      std::to_string(n) + " v1.0.0/go.mod h1:y=\n");
    auto hashes = stored_hashes(n, record_hash(records.back()), read);
    ASSERT_TRUE(hashes.has_value());
    storage.insert(storage.end(), hashes->begin(), hashes->end());
  }
  const tree_head signed_head{10, *tree_hash(10, read)};
  const std::string note = signer.sign(format_tree_head(signed_head));

  auto verify = [&](const std::string& body, const verifier_key& with) -> std::string {
    auto lookup = parse_lookup_response(body);
    if (!lookup) return lookup.error().message();
    auto text = open_note(lookup->signed_tree, with);
    if (!text) return text.error().message();
    auto head = parse_tree_head(*text);
    if (!head) return head.error().message();
    auto proof = prove_record(head->size, lookup->id, read);
    if (!proof) return proof.error().message();
    return check_record(*proof, head->size, head->root, lookup->id, record_hash(lookup->text))
               ? "ok"
               : "not in tree";
  };
  EXPECT_EQ(verify("6\n" + records[6] + "\n" + note, key), "ok");
  EXPECT_EQ(verify("6\n" + records[5] + "\n" + note, key), "not in tree");
  EXPECT_EQ(verify("5\n" + records[6] + "\n" + note, key), "not in tree");
  const test_signer other("sum.example.com");
  EXPECT_EQ(verify("6\n" + records[6] + "\n" + note, key_of(other)),
            make_error_code(verify_errc::unknown_key).message());
  std::string forged_note = note;
  forged_note[forged_note.find("\n10\n") + 2] = '1';  // claims 11 records
  EXPECT_EQ(verify("6\n" + records[6] + "\n" + forged_note, key),
            make_error_code(verify_errc::bad_signature).message());
}

TEST(verifier_key, the_shipped_sum_golang_org_key_parses) {
  // Spec §5.2: the key the go command has built in for sum.golang.org, which the proxy ships
  // as its default (config/sum.golang.org.key; test_shipped_defaults.py compares it with go's).
  const auto key = parse_verifier_key(config::sum_golang_org_key());
  ASSERT_TRUE(key.has_value()) << key.error().message();
  EXPECT_EQ(key->name, "sum.golang.org");
  EXPECT_EQ(key->key_hash, 0x033de0aeu);
}

TEST(verifier_key, malformed_keys) {
  const test_signer signer("sum.example.com");
  const std::string good = signer.verifier_key_text();
  ASSERT_TRUE(parse_verifier_key(good).has_value());
  const std::size_t first = good.find('+');
  const std::size_t second = good.find('+', first + 1);
  const std::string hash = good.substr(first + 1, 8);
  const std::string key64 = good.substr(second + 1);
  std::string wrong_hash = hash;
  wrong_hash[7] = wrong_hash[7] == '0' ? '1' : '0';
  const auto raw = decode_base64(key64);
  ASSERT_TRUE(raw.has_value());
  std::string other_algorithm = *raw;
  other_algorithm[0] = '\x02';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"name only", "sum.example.com"},
      {"no key", "sum.example.com+" + hash},
      {"empty name", "+" + hash + "+" + key64},
      {"space in name", "sum example.com+" + hash + "+" + key64},
      {"short hash", "sum.example.com+" + hash.substr(1) + "+" + key64},
      {"non-hex hash", "sum.example.com+" + hash.substr(0, 7) + "g+" + key64},
      {"wrong hash", "sum.example.com+" + wrong_hash + "+" + key64},
      {"other name, same hash", "sum.example.org+" + hash + "+" + key64},
      {"bad base64", "sum.example.com+" + hash + "+" + key64.substr(1)},
      {"short key", "sum.example.com+" + hash + "+" + encode_base64(raw->substr(0, 32))},
      {"other algorithm", "sum.example.com+" + hash + "+" + encode_base64(other_algorithm)},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    const auto key = parse_verifier_key(text);
    ASSERT_FALSE(key.has_value());
    EXPECT_EQ(key.error(), make_error_code(verify_errc::malformed_key));
  }
}

TEST(base64, round_trips_and_rejects_non_canonical_forms) {
  for (const std::string bytes : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const auto decoded = decode_base64(encode_base64(bytes));
    ASSERT_TRUE(decoded.has_value()) << bytes;
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(encode_base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(encode_base64("fo"), "Zm8=");
  EXPECT_EQ(encode_base64("f"), "Zg==");
  for (const std::string text : {"Zm8", "Zm8==", "Z===", "Zg=a", "Zg==Zg==", "Zm 8=", "Zm8=\n"}) {
    EXPECT_EQ(decode_base64(text), std::nullopt) << text;
  }
}

}  // namespace
}  // namespace gomodproxy::sumdb
