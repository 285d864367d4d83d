#include "sumdb/signed_note.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "protocol/utf8.hpp"
#include "sumdb/base64.hpp"
#include "sumdb/sha256.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr unsigned char algorithm_ed25519 = 1;
constexpr std::string_view signature_prefix = "\xe2\x80\x94 ";  // U+2014 EM DASH, space
// More signatures than any real log uses; bounds the work a hostile note can cause.
constexpr std::size_t max_signatures = 100;

struct evp_pkey_deleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct evp_md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Go's unicode.IsSpace over the code points a valid UTF-8 name can hold.
bool is_unicode_space(char32_t r) {
  switch (r) {
    case U'\t':
    case U'\n':
    case U'\v':
    case U'\f':
    case U'\r':
    case U' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// A signer name: non-empty valid UTF-8 without spaces or '+', which would make keys ambiguous.
bool is_valid_name(std::string_view name) {
  if (name.empty()) return false;
  while (!name.empty()) {
    const auto rune = protocol::decode_rune(name);
    if (!rune.valid || rune.value == U'+' || is_unicode_space(rune.value)) return false;
    name.remove_prefix(rune.size);
  }
  return true;
}

std::uint32_t big_endian_32(std::string_view bytes) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

std::uint32_t key_hash_of(std::string_view name, std::string_view algorithm_and_key) {
  const sha256_digest digest = sha256_of(std::string(name) + "\n" + std::string(algorithm_and_key));
  return big_endian_32({reinterpret_cast<const char*>(digest.data()), 4});
}

bool ed25519_verifies(const verifier_key& key, std::string_view text, std::string_view signature) {
  std::unique_ptr<EVP_PKEY, evp_pkey_deleter> public_key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, key.public_key.data(), key.public_key.size()));
  std::unique_ptr<EVP_MD_CTX, evp_md_ctx_deleter> ctx(EVP_MD_CTX_new());
  if (!public_key || !ctx) std::abort();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, public_key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(text.data()),
                          text.size()) == 1;
}

}  // namespace

bool is_note_text(std::string_view text) {
  while (!text.empty()) {
    const auto rune = protocol::decode_rune(text);
    if (!rune.valid || (rune.value < 0x20 && rune.value != U'\n')) return false;
    text.remove_prefix(rune.size);
  }
  return true;
}

boost::system::result<verifier_key> parse_verifier_key(std::string_view encoded) {
  const auto malformed = make_error_code(verify_errc::malformed_key);
  const std::size_t first_plus = encoded.find('+');
  if (first_plus == std::string_view::npos) return malformed;
  const std::size_t second_plus = encoded.find('+', first_plus + 1);
  if (second_plus == std::string_view::npos) return malformed;
  verifier_key key;
  key.name = std::string(encoded.substr(0, first_plus));
  const std::string_view hash_hex = encoded.substr(first_plus + 1, second_plus - first_plus - 1);
  const auto algorithm_and_key = decode_base64(encoded.substr(second_plus + 1));
  if (!is_valid_name(key.name) || hash_hex.size() != 8 || !algorithm_and_key) return malformed;
  for (char c : hash_hex) {
    const bool digit = c >= '0' && c <= '9';
    const bool lower = c >= 'a' && c <= 'f';
    const bool upper = c >= 'A' && c <= 'F';
    if (!digit && !lower && !upper) return malformed;
    const int value = digit ? c - '0' : lower ? c - 'a' + 10 : c - 'A' + 10;
    key.key_hash = (key.key_hash << 4) | static_cast<std::uint32_t>(value);
  }
  if (algorithm_and_key->size() != 1 + key.public_key.size() ||
      static_cast<unsigned char>((*algorithm_and_key)[0]) != algorithm_ed25519) {
    return malformed;
  }
  if (key_hash_of(key.name, *algorithm_and_key) != key.key_hash) return malformed;
  std::copy(algorithm_and_key->begin() + 1, algorithm_and_key->end(), key.public_key.begin());
  return key;
}

boost::system::result<signed_note> parse_note(std::string_view message) {
  const auto malformed = make_error_code(verify_errc::malformed_note);
  if (!is_note_text(message)) return malformed;
  const std::size_t split = message.rfind("\n\n");
  if (split == std::string_view::npos) return malformed;
  signed_note note;
  note.text = std::string(message.substr(0, split + 1));
  std::string_view lines = message.substr(split + 2);
  if (lines.empty() || lines.back() != '\n') return malformed;
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end + 1);
    if (line.substr(0, signature_prefix.size()) != signature_prefix) return malformed;
    line.remove_prefix(signature_prefix.size());
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) return malformed;
    note_signature signature;
    signature.name = std::string(line.substr(0, space));
    const std::string_view encoded = line.substr(space + 1);
    auto bytes = decode_base64(encoded);
    if (!is_valid_name(signature.name) || encoded.empty() || !bytes || bytes->size() < 5) {
      return malformed;
    }
    if (note.signatures.size() == max_signatures) return malformed;
    signature.key_hash = big_endian_32(*bytes);
    signature.signature = bytes->substr(4);
    note.signatures.push_back(std::move(signature));
  }
  return note;
}

boost::system::result<std::string> open_note(std::string_view message, const verifier_key& key) {
  auto note = parse_note(message);
  if (!note) return note.error();
  const auto by_key = std::find_if(
      note->signatures.begin(), note->signatures.end(), [&](const note_signature& signature) {
        return signature.name == key.name && signature.key_hash == key.key_hash;
      });
  if (by_key == note->signatures.end()) return make_error_code(verify_errc::unknown_key);
  if (!ed25519_verifies(key, note->text, by_key->signature)) {
    return make_error_code(verify_errc::bad_signature);
  }
  return std::move(note->text);
}

}  // namespace gomodproxy::sumdb
