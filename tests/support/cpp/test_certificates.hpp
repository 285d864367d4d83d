// Throwaway PKI for TLS tests, generated at test time with the OpenSSL API: a self-signed CA and
// a server certificate it signs for chosen DNS names and IP addresses (P-256 keys, valid one day).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gomodproxy::test {

struct test_pki {
  std::string ca_pem;           ///< the CA certificate, for the client's trust store
  std::string server_cert_pem;  ///< the server certificate
  std::string server_key_pem;   ///< its private key (PKCS#8)
};

namespace detail {

struct openssl_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};

template <class T>
using owned = std::unique_ptr<T, openssl_free>;

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

inline void add_extension(X509* subject, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
  owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  check(ext != nullptr, "extension");
  check(X509_add_ext(subject, ext.get(), -1) == 1, "add extension");
}

inline owned<X509> make_certificate(EVP_PKEY* key, const std::string& common_name, long serial) {
  owned<X509> cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

inline std::string pem_of(X509* cert) {
  owned<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

inline std::string pem_of(EVP_PKEY* key) {
  owned<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace detail

/// Builds a CA and a server certificate valid for `dns_names` and `ip_addresses`.
inline test_pki make_test_pki(const std::vector<std::string>& dns_names,
                              const std::vector<std::string>& ip_addresses) {
  using namespace detail;
  owned<EVP_PKEY> ca_key(EVP_EC_gen("P-256"));
  owned<EVP_PKEY> server_key(EVP_EC_gen("P-256"));
  check(ca_key && server_key, "key generation");

  auto ca = make_certificate(ca_key.get(), "gomodproxy test CA", 1);
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  add_extension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "sign CA");

  auto server = make_certificate(server_key.get(), "gomodproxy test server", 2);
  X509_set_issuer_name(server.get(), X509_get_subject_name(ca.get()));
  std::string alt_names;
  for (const auto& dns : dns_names) alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : ip_addresses) alt_names += (alt_names.empty() ? "IP:" : ",IP:") + ip;
  add_extension(server.get(), ca.get(), NID_subject_alt_name, alt_names);
  add_extension(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(server.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(server.get(), ca.get(), NID_ext_key_usage, "serverAuth");
  add_extension(server.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(server.get(), ca_key.get(), EVP_sha256()) > 0, "sign server");

  return {pem_of(ca.get()), pem_of(server.get()), pem_of(server_key.get())};
}

}  // namespace gomodproxy::test
