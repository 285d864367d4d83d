#include "server/tls_credentials.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>

#include "server/setting_file.hpp"

namespace gomodproxy::server {
namespace net = boost::asio;

namespace {

// TLS 1.2 suites with forward secrecy and an AEAD cipher only (Mozilla's "intermediate" list
// without finite-field DHE); TLS 1.3 suites are all AEAD and keep OpenSSL's defaults.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Wipes the key's bytes from the heap once OpenSSL has its own parsed copy.
struct wiped_string {
  std::string text;
  explicit wiped_string(std::string t) : text(std::move(t)) {}
  wiped_string(const wiped_string&) = delete;
  wiped_string& operator=(const wiped_string&) = delete;
  ~wiped_string() {
    if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
  }
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

certificate_summary summarize(X509* certificate) {
  certificate_summary out;
  if (certificate == nullptr) return out;
  std::unique_ptr<BIO, decltype(&BIO_free)> subject(BIO_new(BIO_s_mem()), BIO_free);
  if (subject && X509_NAME_print_ex(subject.get(), X509_get_subject_name(certificate), 0,
                                    XN_FLAG_RFC2253) >= 0) {
    out.subject = bio_text(subject.get());
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> not_after(BIO_new(BIO_s_mem()), BIO_free);
  if (not_after && ASN1_TIME_print(not_after.get(), X509_get0_notAfter(certificate)) == 1) {
    out.not_after = bio_text(not_after.get());
  }
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr), BN_free);
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) {
      out.serial = hex;
      OPENSSL_free(hex);
    }
  }
  return out;
}

}  // namespace

struct tls_credentials::loaded {
  std::shared_ptr<net::ssl::context> context;
  certificate_summary summary;
};

tls_credentials::tls_credentials(std::string cert_file, std::string key_file,
                                 std::shared_ptr<loaded> current)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      current_(std::move(current)) {}

tls_credentials::~tls_credentials() = default;

outcome_of<std::shared_ptr<tls_credentials>> tls_credentials::load(std::string cert_file,
                                                                   std::string key_file) {
  auto first = build(cert_file, key_file);
  if (!first) return std::move(first).error();
  return std::shared_ptr<tls_credentials>(
      new tls_credentials(std::move(cert_file), std::move(key_file), std::move(*first)));
}

std::shared_ptr<net::ssl::context> tls_credentials::context() const {
  std::lock_guard lock(mutex_);
  return current_->context;
}

certificate_summary tls_credentials::summary() const {
  std::lock_guard lock(mutex_);
  return current_->summary;
}

outcome_of<void> tls_credentials::reload() {
  // Built outside the lock: reading files must not hold up connections being accepted.
  auto fresh = build(cert_file_, key_file_);
  if (!fresh) return std::move(fresh).error();
  std::lock_guard lock(mutex_);
  current_ = std::move(*fresh);
  return {};
}

outcome_of<std::shared_ptr<tls_credentials::loaded>> tls_credentials::build(
    const std::string& cert_file, const std::string& key_file) {
  // OpenSSL's error queue is per thread: an entry left from before must not become this load's
  // reason, nor one left by this load a later handshake's on the same thread.
  ERR_clear_error();
  struct clear_errors_on_return {
    clear_errors_on_return() = default;
    clear_errors_on_return(const clear_errors_on_return&) = delete;
    clear_errors_on_return& operator=(const clear_errors_on_return&) = delete;
    ~clear_errors_on_return() { ERR_clear_error(); }
  } cleared;
  auto chain_read = read_setting_file(cert_file);
  if (!chain_read) {
    return failure{chain_read.error().code, "tls_cert: cannot read " + quoted_path(cert_file) +
                                                ": " + chain_read.error().detail +
                                                "; expected a readable PEM certificate chain"};
  }
  const std::string& chain = *chain_read;
  auto key_read = read_setting_file(key_file);
  if (!key_read) {
    return failure{key_read.error().code, "tls_key: cannot read " + quoted_path(key_file) + ": " +
                                              key_read.error().detail +
                                              "; expected a readable PEM private key"};
  }
  wiped_string key{std::move(*key_read)};

  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // Compression invites CRIME-style attacks; renegotiation lets a client make the server redo
  // the expensive half of a handshake at will and has no use here.
  context->set_options(net::ssl::context::no_compression | net::ssl::context::single_dh_use |
                       SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(native, tls12_ciphers);
  // An encrypted key would otherwise make OpenSSL prompt on the terminal for a passphrase and
  // hang start-up or a reload; with an empty one it fails with a reason instead.
  context->set_password_callback(
      [](std::size_t, net::ssl::context::password_purpose) { return std::string(); });

  boost::system::error_code ec;
  context->use_certificate_chain(net::buffer(chain), ec);
  if (ec) {
    return failure{ec, "tls_cert: " + quoted_path(cert_file) + " holds no usable certificate (" +
                           ec.message() +
                           "); expected the server certificate then its intermediates, PEM"};
  }
  context->use_private_key(net::buffer(key.text), net::ssl::context::pem, ec);
  const bool mismatch =
      ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (mismatch || (!ec && SSL_CTX_check_private_key(native) != 1)) {
    return invalid_request("tls_key: " + quoted_path(key_file) +
                           " is not the key of the certificate in " + quoted_path(cert_file) +
                           "; expected the private key matching tls_cert");
  }
  if (ec) {
    return failure{ec, "tls_key: " + quoted_path(key_file) + " holds no usable private key (" +
                           ec.message() + "); expected an unencrypted PEM private key"};
  }
  auto out = std::make_shared<loaded>();
  out->summary = summarize(SSL_CTX_get0_certificate(native));
  out->context = std::move(context);
  return out;
}

}  // namespace gomodproxy::server
