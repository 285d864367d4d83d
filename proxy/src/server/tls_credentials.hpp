// The TLS listener's credentials: the certificate chain and private key it presents, loaded into
// an OpenSSL server context with the listener's protocol policy, and replaced on reload.
// OpenSSL and Asio's SSL headers stay in tls_credentials.cpp.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/failure.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace gomodproxy::server {

/// What the loaded certificate says, for log lines: never anything from the key.
struct certificate_summary {
  std::string subject;    ///< RFC 2253 form, e.g. "CN=proxy.example.lan"
  std::string not_after;  ///< e.g. "Dec  6 10:00:00 2027 GMT"
  std::string serial;     ///< hexadecimal
};

/// Thread-safe: context() may be called from every I/O thread while reload() runs on another.
class tls_credentials final {
 public:
  /// Reads both PEM files. Returns the credentials, or the failure, coded as reload() codes it,
  /// with one line that names the setting (tls_cert or tls_key) and the path, never the key's
  /// content.
  [[nodiscard]] static outcome_of<std::shared_ptr<tls_credentials>> load(std::string cert_file,
                                                                         std::string key_file);

  ~tls_credentials();
  tls_credentials(const tls_credentials&) = delete;
  tls_credentials& operator=(const tls_credentials&) = delete;

  /// The context for a connection accepted now. The connection keeps it (and so its
  /// certificate) for its whole life, whatever later reloads do.
  std::shared_ptr<boost::asio::ssl::context> context() const;

  /// The certificate new connections are given.
  certificate_summary summary() const;

  /// Reads both files again. On success new connections get the new certificate; otherwise the
  /// old one stays in use and the failure says why, its detail as load() words it. The code:
  /// io_error (generic category) for a file that cannot be read, OpenSSL's (Asio's ssl category)
  /// for one that holds no usable certificate or key, errc::invalid_request for a key that is not
  /// the certificate's.
  [[nodiscard]] outcome_of<void> reload();

 private:
  struct loaded;
  static outcome_of<std::shared_ptr<loaded>> build(const std::string& cert_file,
                                                   const std::string& key_file);
  tls_credentials(std::string cert_file, std::string key_file, std::shared_ptr<loaded> current);

  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<loaded> current_;  ///< guarded by mutex_
};

}  // namespace gomodproxy::server
