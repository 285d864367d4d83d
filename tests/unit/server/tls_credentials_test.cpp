// Loading and reloading the TLS listener's certificate and key: what is refused and in which
// words, and that a failed reload leaves the certificate in use alone.
#include "server/tls_credentials.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "server/setting_file.hpp"
#include "tests/support/cpp/temp_dir.hpp"
#include "tests/support/cpp/test_certificates.hpp"

namespace gomodproxy::server {
namespace {

using test::temp_dir;

// The failure load() refuses with; empty, and a test failure, when it loads.
failure refusal_of(const std::string& cert_file, const std::string& key_file) {
  auto loaded = tls_credentials::load(cert_file, key_file);
  if (loaded) {
    ADD_FAILURE() << "loaded " << cert_file << " and " << key_file;
    return {};
  }
  return std::move(loaded).error();
}

// The credentials load() makes; null, and a test failure, when it refuses.
std::shared_ptr<tls_credentials> credentials_from(const std::string& cert_file,
                                                  const std::string& key_file) {
  auto loaded = tls_credentials::load(cert_file, key_file);
  if (!loaded) {
    ADD_FAILURE() << loaded.error().detail;
    return nullptr;
  }
  return std::move(*loaded);
}

TEST(tls_credentials, loads_a_certificate_and_its_key) {
  temp_dir dir;
  const auto pki = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  const auto credentials = credentials_from(dir.write("cert.pem", pki.server_cert_pem),
                                            dir.write("key.pem", pki.server_key_pem));
  ASSERT_TRUE(credentials);
  ASSERT_TRUE(credentials->context());
  const auto summary = credentials->summary();
  EXPECT_EQ(summary.subject, "CN=gomodproxy test server");
  EXPECT_EQ(summary.serial, "02");
  EXPECT_FALSE(summary.not_after.empty());
}

TEST(tls_credentials, bad_files_are_refused_with_the_setting_and_path_named) {
  temp_dir dir;
  const auto pki = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  const auto other = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  const auto cert = dir.write("cert.pem", pki.server_cert_pem);
  const auto key = dir.write("key.pem", pki.server_key_pem);
  struct refusal {
    std::string name;
    std::string cert_file;
    std::string key_file;
    std::string starts;
    std::string contains;
    /// The code; nullopt for OpenSSL's own (any code of Asio's ssl category).
    std::optional<boost::system::error_code> code;
  };
  const auto enoent = make_error_code(boost::system::errc::no_such_file_or_directory);
  const std::optional<boost::system::error_code> openssl;
  const std::vector<refusal> cases = {
      {"missing certificate", dir.write("x", "") + ".missing", key, "tls_cert: cannot read ",
       "No such file", enoent},
      {"missing key", cert, cert + ".missing", "tls_key: cannot read ", "No such file", enoent},
      {"text as certificate", dir.write("text.pem", "not a certificate\n"), key,
       "tls_cert: ", "holds no usable certificate", openssl},
      {"empty certificate", dir.write("empty.pem", ""), key,
       "tls_cert: ", "holds no usable certificate", openssl},
      {"key as certificate", key, key, "tls_cert: ", "holds no usable certificate", openssl},
      {"certificate as key", cert, cert, "tls_key: ", "holds no usable private key", openssl},
      {"another certificate's key", cert, dir.write("other-key.pem", other.server_key_pem),
       "tls_key: ", "is not the key of the certificate in", errc::invalid_request},
      {"line break in the path", dir.write("a\nb.pem", "junk"), key, "tls_cert: ", "\\x0a",
       openssl},
      // A wrong path must not fill a running server's memory on SIGHUP.
      {"oversized certificate", dir.write("huge.pem", std::string((4 << 20) + 1, 'A')), key,
       "tls_cert: cannot read ", "it is larger than 4 MiB", errc::too_large},
      {"directory as key", cert, std::filesystem::path(cert).parent_path().string(),
       "tls_key: cannot read ", "it is a directory",
       make_error_code(boost::system::errc::is_a_directory)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const failure refused = refusal_of(c.cert_file, c.key_file);
    if (c.code) {
      EXPECT_EQ(refused.code, *c.code) << refused.code.message();
    } else {
      EXPECT_EQ(refused.code.category(), boost::asio::error::get_ssl_category())
          << refused.code.message();
    }
    const std::string& error = refused.detail;
    EXPECT_TRUE(error.starts_with(c.starts)) << error;
    EXPECT_NE(error.find(c.contains), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_EQ(error.find("PRIVATE KEY"), std::string::npos) << error;
  }
}

// OpenSSL asks for a passphrase on the terminal by default; start-up and SIGHUP must not wait on
// one, so an encrypted key is refused instead.
TEST(tls_credentials, an_encrypted_key_is_refused_without_asking_for_a_passphrase) {
  temp_dir dir;
  const auto pki = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_mem_buf(pki.server_key_pem.data(), static_cast<int>(pki.server_key_pem.size())),
      BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  ASSERT_TRUE(key);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  char passphrase[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(), passphrase,
                                          sizeof passphrase - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  const failure refused = refusal_of(dir.write("cert.pem", pki.server_cert_pem),
                                     dir.write("key.pem", std::string(data, size)));
  EXPECT_EQ(refused.code.category(), boost::asio::error::get_ssl_category())
      << refused.code.message();
  const std::string& error = refused.detail;
  EXPECT_TRUE(error.starts_with("tls_key: ")) << error;
  EXPECT_NE(error.find("holds no usable private key"), std::string::npos) << error;
}

TEST(tls_credentials, reload_swaps_in_new_files_and_a_failed_one_keeps_the_old) {
  temp_dir dir;
  const auto first = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  const auto second = test::make_test_pki({"localhost"}, {"127.0.0.1"});
  const auto cert = dir.write("cert.pem", first.server_cert_pem);
  const auto key = dir.write("key.pem", first.server_key_pem);
  const auto credentials = credentials_from(cert, key);
  ASSERT_TRUE(credentials);
  const auto before = credentials->context();

  // A certificate replaced before its key: the pair does not match, so nothing changes.
  dir.write("cert.pem", second.server_cert_pem);
  auto failed = credentials->reload();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, errc::invalid_request) << failed.error().code.message();
  EXPECT_EQ(failed.error().detail,
            "tls_key: " + quoted_path(key) + " is not the key of the certificate in " +
                quoted_path(cert) + "; expected the private key matching tls_cert");
  EXPECT_EQ(credentials->context(), before);

  // A certificate file that holds no certificate: OpenSSL's code, and still nothing changes.
  dir.write("cert.pem", "not a certificate\n");
  failed = credentials->reload();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code.category(), boost::asio::error::get_ssl_category())
      << failed.error().code.message();
  EXPECT_TRUE(failed.error().detail.starts_with("tls_cert: " + quoted_path(cert) +
                                                " holds no usable certificate ("))
      << failed.error().detail;
  EXPECT_EQ(credentials->context(), before);

  dir.write("cert.pem", second.server_cert_pem);
  dir.write("key.pem", second.server_key_pem);
  EXPECT_TRUE(credentials->reload());
  const auto after = credentials->context();
  EXPECT_NE(after, before);
  // The old context is still whole for the connections that hold it.
  EXPECT_NE(SSL_CTX_get0_certificate(before->native_handle()), nullptr);
  EXPECT_NE(X509_cmp(SSL_CTX_get0_certificate(before->native_handle()),
                     SSL_CTX_get0_certificate(after->native_handle())),
            0);

  std::filesystem::remove(key);
  failed = credentials->reload();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, boost::system::errc::no_such_file_or_directory)
      << failed.error().code.message();
  EXPECT_TRUE(failed.error().detail.starts_with("tls_key: cannot read ")) << failed.error().detail;
  EXPECT_EQ(credentials->context(), after);
}

}  // namespace
}  // namespace gomodproxy::server
