// SHA-256 through OpenSSL: every hash the checksum database is built on (h1 summaries, tlog
// records and nodes, verifier key hashes) is one. Private to sumdb.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

namespace gomodproxy::sumdb {

using sha256_digest = std::array<unsigned char, 32>;

/// An incremental SHA-256. OpenSSL fails here only when allocation does, which is not a
/// data-path condition worth a value: it aborts.
class sha256 {
 public:
  sha256();
  void update(const unsigned char* bytes, std::size_t length);
  void update(std::string_view bytes) {
    update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  }
  /// The digest of everything given so far; call once.
  sha256_digest finish();

 private:
  struct context_deleter {
    void operator()(EVP_MD_CTX* context) const;
  };
  std::unique_ptr<EVP_MD_CTX, context_deleter> context_;
};

sha256_digest sha256_of(std::string_view bytes);

}  // namespace gomodproxy::sumdb
