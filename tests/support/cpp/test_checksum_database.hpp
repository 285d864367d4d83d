// A tiny checksum database for unit tests: a fresh Ed25519 key, a log of the given records (at
// most 256, so one partial tile of height 8 holds every leaf), and its answers to /lookup,
// /tile and /latest, signed as sum.golang.org signs them.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sumdb/base64.hpp"
#include "sumdb/tile.hpp"
#include "sumdb/tlog.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::test {

class test_checksum_database {
 public:
  /// `records` are go.sum line groups, e.g. "m v1.0.0 h1:...\nm v1.0.0/go.mod h1:...\n".
  test_checksum_database(std::string name, std::vector<std::string> records)
      : name_(std::move(name)), records_(std::move(records)) {
    if (records_.empty() || records_.size() > 256) throw std::invalid_argument("1..256 records");
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
                                    &length) != 1) {
      throw std::runtime_error("raw public key");
    }
    algorithm_and_key_ = std::string(1, '\x01') + public_key;
    const std::string hashed = name_ + "\n" + algorithm_and_key_;
    unsigned char digest[32];
    unsigned int digest_length = 0;
    EVP_Digest(hashed.data(), hashed.size(), digest, &digest_length, EVP_sha256(), nullptr);
    key_hash_ = std::string(reinterpret_cast<const char*>(digest), 4);

    for (const auto& record : records_) leaves_.push_back(sumdb::record_hash(record));
    sumdb::tree_head head;
    head.size = static_cast<std::int64_t>(leaves_.size());
    head.root = subtree_hash(0, leaves_.size());
    signed_tree_ = sign(sumdb::format_tree_head(head));
  }

  /// "<name>+<hash>+<key>", what --sumdb-key takes.
  std::string verifier_key_text() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : key_hash_) {
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    return name_ + "+" + hex + "+" + sumdb::encode_base64(algorithm_and_key_);
  }

  /// The body the database serves at `path` below its base URL ("/lookup/m@v",
  /// "/tile/8/0/000.p/N", "/latest"); nullopt for a 404.
  std::optional<std::string> answer(std::string_view path) const {
    if (path == "/latest") return signed_tree_;
    if (path.starts_with("/lookup/")) {
      const auto wanted = path.substr(8);
      const auto at = wanted.rfind('@');
      if (at == std::string_view::npos) return std::nullopt;
      const std::string line_start =
          std::string(wanted.substr(0, at)) + " " + std::string(wanted.substr(at + 1)) + " ";
      for (std::size_t id = 0; id < records_.size(); ++id) {
        if (records_[id].starts_with(line_start)) {
          return std::to_string(id) + "\n" + records_[id] + "\n" + signed_tree_;
        }
      }
      return std::nullopt;
    }
    sumdb::tile tile;
    tile.width = static_cast<int>(leaves_.size());
    if (path == "/" + sumdb::tile_path(tile)) {
      std::string bytes;
      for (const auto& leaf : leaves_) bytes.append(leaf.begin(), leaf.end());
      return bytes;
    }
    return std::nullopt;
  }

 private:
  // RFC 6962: split at the largest power of two below the count.
  sumdb::tlog_hash subtree_hash(std::size_t begin, std::size_t count) const {
    if (count == 1) return leaves_[begin];
    std::size_t left = 1;
    while (left * 2 < count) left *= 2;
    return sumdb::node_hash(subtree_hash(begin, left), subtree_hash(begin + left, count - left));
  }

  std::string sign(const std::string& text) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::string signature(64, '\0');
    std::size_t length = signature.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(text.data()), text.size()) != 1) {
      throw std::runtime_error("sign");
    }
    return text + "\n\xe2\x80\x94 " + name_ + " " + sumdb::encode_base64(key_hash_ + signature) +
           "\n";
  }

  std::string name_;
  std::vector<std::string> records_;
  std::vector<sumdb::tlog_hash> leaves_;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
  std::string algorithm_and_key_;
  std::string key_hash_;
  std::string signed_tree_;
};

}  // namespace gomodproxy::test
