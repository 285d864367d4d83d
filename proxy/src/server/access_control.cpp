#include "server/access_control.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>

#include "server/setting_file.hpp"

namespace gomodproxy::server {
namespace {

constexpr std::size_t max_name_length = 64;

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Strict RFC 4648 base64 with padding, as every client writes Basic credentials.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::array<int, 4> v{};
    int padding = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++padding;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const unsigned triple = (static_cast<unsigned>(v[0]) << 18) |
                            (static_cast<unsigned>(v[1]) << 12) |
                            (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    out += static_cast<char>((triple >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((triple >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(triple & 0xff);
  }
  return out;
}

// Compares against every token, match or not, so the time taken says nothing about which one
// (or whether any) matched; the digests have one length, so nor does it say a token's length.
const named_token* find_token(const std::vector<named_token>& tokens,
                              const std::array<unsigned char, 32>& digest) {
  const named_token* found = nullptr;
  for (const auto& token : tokens) {
    if (CRYPTO_memcmp(token.digest.data(), digest.data(), digest.size()) == 0) found = &token;
  }
  return found;
}

}  // namespace

path_class classify(std::string_view path) {
  if (path == "/healthz" || path == "/readyz" || path == "/bootstrap.sh") return path_class::open;
  if (path == "/metrics" || path == "/status" || path == "/status.json" ||
      path.starts_with("/admin/")) {
    return path_class::admin;
  }
  return path_class::client;
}

std::array<unsigned char, 32> token_digest(std::string_view token) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    // Without a digest no token could ever match; that is a broken OpenSSL, not bad input.
    throw std::runtime_error("SHA-256 is not available from OpenSSL");
  }
  return digest;
}

outcome_of<void> check_token_shape(std::string_view token) {
  if (token.size() < min_token_length) {
    return invalid_request("the token is shorter than " + std::to_string(min_token_length) +
                           " characters");
  }
  if (token.size() > max_token_length) {
    return invalid_request("the token is longer than " + std::to_string(max_token_length) +
                           " characters");
  }
  const bool printable = std::all_of(token.begin(), token.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (!printable) {
    return invalid_request("the token has a character other than printable ASCII without spaces");
  }
  return {};
}

outcome_of<std::vector<named_token>> parse_auth_file(std::string_view content) {
  std::vector<named_token> tokens;
  std::vector<std::size_t> token_lines;
  std::size_t line_number = 0;
  while (!content.empty()) {
    ++line_number;
    const auto end = content.find('\n');
    const std::string_view raw = content.substr(0, end);
    content = end == std::string_view::npos ? std::string_view() : content.substr(end + 1);
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "line " + std::to_string(line_number) + ": ";
    std::string name;
    std::string_view token = line;
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      const std::string_view given = line.substr(0, colon);
      if (given.empty() || given.size() > max_name_length ||
          !std::all_of(given.begin(), given.end(), is_name_char)) {
        return invalid_request(where + "the name before ':' is not 1 to 64 of A-Z a-z 0-9 . _ -");
      }
      name = std::string(given);
      token = line.substr(colon + 1);
    } else {
      name = "token-" + std::to_string(line_number);
    }
    if (auto shape = check_token_shape(token); !shape) {
      return failure{shape.error().code, where + shape.error().detail};
    }
    named_token entry{name, token_digest(token)};
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].name == entry.name) {
        return invalid_request(where + "the name is already used on line " +
                               std::to_string(token_lines[i]));
      }
      if (tokens[i].digest == entry.digest) {
        return invalid_request(where + "the token is already listed on line " +
                               std::to_string(token_lines[i]));
      }
    }
    tokens.push_back(std::move(entry));
    token_lines.push_back(line_number);
  }
  return tokens;
}

std::optional<std::string> presented_token(std::string_view authorization) {
  authorization = trim(authorization);
  const auto space = authorization.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = authorization.substr(0, space);
  const std::string_view credential = trim(authorization.substr(space + 1));
  if (credential.empty()) return std::nullopt;
  if (iequals(scheme, "Bearer")) return std::string(credential);
  if (!iequals(scheme, "Basic")) return std::nullopt;
  auto decoded = decode_base64(credential);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return decoded->substr(colon + 1);
}

access_control::access_control(std::string auth_file, std::string admin_token_setting)
    : auth_file_(std::move(auth_file)), admin_token_setting_(std::move(admin_token_setting)) {}

outcome_of<std::shared_ptr<const access_control::rules>> access_control::read() const {
  auto loaded = std::make_shared<rules>();
  if (!auth_file_.empty()) {
    auto content = read_setting_file(auth_file_);
    if (!content) {
      return failure{content.error().code,
                     "auth_file: " + quoted_path(auth_file_) +
                         " cannot read it: " + content.error().detail +
                         "; expected a readable file of TOKEN or NAME:TOKEN lines"};
    }
    auto parsed = parse_auth_file(*content);
    if (!parsed) {
      return failure{parsed.error().code,
                     "auth_file: " + quoted_path(auth_file_) + " " + parsed.error().detail +
                         "; expected lines of TOKEN or NAME:TOKEN (# starts a comment)"};
    }
    loaded->clients = std::move(*parsed);
    if (loaded->clients.empty()) {
      // An empty file would lock every client out, which is never what a deployer means.
      return invalid_request("auth_file: " + quoted_path(auth_file_) +
                             " holds no token; expected lines of TOKEN or NAME:TOKEN (# starts a "
                             "comment)");
    }
  }
  if (!admin_token_setting_.empty()) {
    std::string token = admin_token_setting_;
    std::string source = "the value";
    if (token.front() == '@') {
      const std::string path = token.substr(1);
      auto content = read_setting_file(path);
      if (!content) {
        return failure{content.error().code,
                       "admin_token: " + quoted_path(path) +
                           " cannot read it: " + content.error().detail +
                           "; expected @FILE naming a readable file whose first line is the token"};
      }
      const std::string& text = *content;
      token = std::string(trim(std::string_view(text).substr(0, text.find('\n'))));
      source = quoted_path(path);
    }
    if (auto shape = check_token_shape(token); !shape) {
      return failure{shape.error().code,
                     "admin_token: " + source + ": " + shape.error().detail +
                         "; expected a token of " + std::to_string(min_token_length) + " to " +
                         std::to_string(max_token_length) + " printable characters, or @FILE"};
    }
    loaded->admin = token_digest(token);
  }
  return std::shared_ptr<const rules>(std::move(loaded));
}

outcome_of<std::unique_ptr<access_control>> access_control::load(std::string auth_file,
                                                                 std::string admin_token) {
  std::unique_ptr<access_control> control(
      new access_control(std::move(auth_file), std::move(admin_token)));
  auto loaded = control->read();
  if (!loaded) return std::move(loaded).error();
  control->rules_ = std::move(*loaded);
  return control;
}

outcome_of<std::size_t> access_control::reload() {
  auto loaded = read();
  if (!loaded) return std::move(loaded).error();
  auto fresh = std::move(*loaded);
  const std::size_t count = fresh->clients.size();
  std::lock_guard lock(mutex_);
  rules_ = std::move(fresh);
  return count;
}

bool access_control::enabled() const {
  return !auth_file_.empty() || !admin_token_setting_.empty();
}

std::shared_ptr<const access_control::rules> access_control::current() const {
  std::lock_guard lock(mutex_);
  return rules_;
}

access_decision access_control::check(std::string_view path, std::string_view authorization) const {
  const auto rules = current();
  const path_class needs = classify(path);
  const bool admin_route = needs == path_class::admin && rules->admin;
  const bool protected_route =
      needs != path_class::open && (admin_route || !rules->clients.empty());
  access_decision decision;
  if (!protected_route) {
    decision.allowed = true;
    return decision;
  }
  const auto token = presented_token(authorization);
  if (!token) {
    decision.reason = refusal::missing;
    return decision;
  }
  const auto digest = token_digest(*token);
  const bool is_admin =
      rules->admin && CRYPTO_memcmp(rules->admin->data(), digest.data(), digest.size()) == 0;
  const named_token* client = find_token(rules->clients, digest);
  // The admin token opens every path; a client token opens client paths, and admin paths too
  // when no admin token is set (the deployer then protected them with the client tokens).
  if (is_admin) {
    decision.allowed = true;
    decision.name = "admin";
  } else if (client != nullptr && !admin_route) {
    decision.allowed = true;
    decision.name = client->name;
  } else {
    decision.reason = refusal::invalid;
    if (client != nullptr) decision.name = client->name;
  }
  return decision;
}

}  // namespace gomodproxy::server
