// A freshly generated Ed25519 key for tests, signing notes the way a checksum database does
// (golang.org/x/mod/sumdb/note).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sumdb/base64.hpp"

namespace gomodproxy::test {

class test_signer {
 public:
  explicit test_signer(std::string name) : name_(std::move(name)) {
    EVP_PKEY* raw = nullptr;
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
      throw std::runtime_error("ed25519 keygen");
    }
    key_.reset(raw);
    std::string public_key(32, '\0');
    std::size_t length = public_key.size();
    if (EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(public_key.data()),
                                    &length) != 1 ||
        length != 32) {
      throw std::runtime_error("raw public key");
    }
    algorithm_and_key_ = std::string(1, '\x01') + public_key;
    const std::string hashed = name_ + "\n" + algorithm_and_key_;
    unsigned char digest[32];
    unsigned int digest_length = 0;
    EVP_Digest(hashed.data(), hashed.size(), digest, &digest_length, EVP_sha256(), nullptr);
    key_hash_ = std::string(reinterpret_cast<const char*>(digest), 4);
  }

  std::string verifier_key_text() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : key_hash_) {
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    return name_ + "+" + hex + "+" + sumdb::encode_base64(algorithm_and_key_);
  }

  std::string signature_of(std::string_view text) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::string signature(64, '\0');
    std::size_t length = signature.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(text.data()), text.size()) != 1) {
      throw std::runtime_error("sign");
    }
    return signature;
  }

  /// "— <name> <base64(key hash || signature)>\n" for `text`, under `as_name` when given.
  std::string signature_line(std::string_view text, std::string_view as_name = {}) const {
    return std::string("\xe2\x80\x94") + " " + std::string(as_name.empty() ? name_ : as_name) +
           " " + sumdb::encode_base64(key_hash_ + signature_of(text)) + "\n";
  }

  std::string sign(std::string_view text) const {
    return std::string(text) + "\n" + signature_line(text);
  }

 private:
  std::string name_;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
  std::string algorithm_and_key_;
  std::string key_hash_;
};

}  // namespace gomodproxy::test
