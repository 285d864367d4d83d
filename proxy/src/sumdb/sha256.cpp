#include "sumdb/sha256.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace gomodproxy::sumdb {

void sha256::context_deleter::operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }

sha256::sha256() : context_(EVP_MD_CTX_new()) {
  if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

void sha256::update(const unsigned char* bytes, std::size_t length) {
  if (length != 0 && EVP_DigestUpdate(context_.get(), bytes, length) != 1) std::abort();
}

sha256_digest sha256::finish() {
  sha256_digest out{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_.get(), out.data(), &length) != 1 || length != out.size()) {
    std::abort();
  }
  return out;
}

sha256_digest sha256_of(std::string_view bytes) {
  sha256 hasher;
  hasher.update(bytes);
  return hasher.finish();
}

}  // namespace gomodproxy::sumdb
