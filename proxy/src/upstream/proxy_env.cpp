#include "upstream/proxy_env.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>

#include "protocol/escape.hpp"

namespace gomodproxy::upstream {
namespace {

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

// Like Go's net.SplitHostPort, but an entry without a port (including a bare IPv6 address) is
// returned whole with an empty port instead of failing.
std::pair<std::string_view, std::string_view> split_host_port(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return {s, {}};
    auto host = s.substr(1, close - 1);
    auto rest = s.substr(close + 1);
    if (rest.size() > 1 && rest.front() == ':') return {host, rest.substr(1)};
    return {host, {}};
  }
  auto colon = s.find(':');
  if (colon == std::string_view::npos || s.find(':', colon + 1) != std::string_view::npos) {
    return {s, {}};
  }
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::optional<std::vector<unsigned char>> address_bytes(std::string_view text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(text, ec);
  if (ec) return std::nullopt;
  if (address.is_v4()) {
    auto b = address.to_v4().to_bytes();
    return std::vector<unsigned char>(b.begin(), b.end());
  }
  auto b = address.to_v6().to_bytes();
  return std::vector<unsigned char>(b.begin(), b.end());
}

bool prefix_equal(const std::vector<unsigned char>& a, const std::vector<unsigned char>& b,
                  unsigned bits) {
  if (a.size() != b.size()) return false;
  std::size_t whole = bits / 8;
  if (!std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(whole), b.begin())) {
    return false;
  }
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

outcome_of<proxy_endpoint> parse_proxy_url(std::string_view value) {
  value = protocol::trim_space(value);
  if (value.empty()) return invalid_request("empty proxy URL");
  auto parsed = boost::urls::parse_uri(value);
  std::string with_scheme;
  // Go's rule: a value that does not parse as an absolute URL with a host is retried with
  // "http://" in front, so "proxy:3128" means http://proxy:3128.
  if (!parsed || !parsed->has_authority() || parsed->encoded_host().empty()) {
    with_scheme = "http://" + std::string(value);
    parsed = boost::urls::parse_uri(with_scheme);
    if (!parsed || parsed->encoded_host().empty()) {
      return invalid_request("invalid proxy URL \"" + std::string(value) + "\"");
    }
  }
  auto scheme = to_lower(parsed->scheme());
  if (scheme != "http") {
    return invalid_request("unsupported proxy scheme \"" + scheme +
                           "\" (only http proxies are supported)");
  }
  proxy_endpoint endpoint;
  endpoint.host = to_lower(parsed->host_address());
  if (parsed->has_port()) {
    auto port = parse_port(parsed->port());
    if (!port) return invalid_request("invalid proxy port in \"" + std::string(value) + "\"");
    endpoint.port = *port;
  }
  if (parsed->has_userinfo()) {
    endpoint.authorization = basic_credentials(parsed->user(), parsed->password());
  }
  return endpoint;
}

no_proxy_list::no_proxy_list(std::string_view value) {
  while (!value.empty()) {
    auto comma = value.find(',');
    auto raw = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    auto entry = to_lower(protocol::trim_space(raw));
    if (entry.empty()) continue;
    if (entry == "*") {
      all_ = true;
      continue;
    }
    if (auto slash = entry.find('/'); slash != std::string::npos) {
      auto bytes = address_bytes(std::string_view(entry).substr(0, slash));
      unsigned bits = 0;
      auto bits_text = std::string_view(entry).substr(slash + 1);
      auto [end, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
      if (bytes && ec == std::errc{} && end == bits_text.data() + bits_text.size() &&
          !bits_text.empty() && bits <= bytes->size() * 8) {
        ips_.push_back({std::move(*bytes), bits, 0});
      }
      continue;
    }
    auto [host, port_text] = split_host_port(entry);
    std::uint16_t port = 0;
    if (!port_text.empty()) {
      auto parsed = parse_port(port_text);
      if (!parsed) continue;
      port = *parsed;
    }
    if (host.empty()) continue;
    if (auto bytes = address_bytes(host)) {
      auto bits = static_cast<unsigned>(bytes->size() * 8);
      ips_.push_back({std::move(*bytes), bits, port});
      continue;
    }
    if (host.starts_with("*.")) host.remove_prefix(1);
    domain_entry domain;
    domain.port = port;
    if (host.front() == '.') {
      domain.match_self = false;
      domain.suffix = std::string(host);
    } else {
      domain.suffix = "." + std::string(host);
    }
    if (domain.suffix.size() > 1) domains_.push_back(std::move(domain));
  }
}

bool no_proxy_list::bypass(std::string_view host_in, std::uint16_t port) const {
  if (all_) return true;
  auto host = to_lower(protocol::trim_space(host_in));
  if (auto bytes = address_bytes(host)) {
    for (const auto& ip : ips_) {
      if ((ip.port == 0 || ip.port == port) && prefix_equal(ip.bytes, *bytes, ip.prefix_bits)) {
        return true;
      }
    }
  }
  for (const auto& domain : domains_) {
    bool matches =
        host.ends_with(domain.suffix) ||
        (domain.match_self && std::string_view(host) == std::string_view(domain.suffix).substr(1));
    if (matches && (domain.port == 0 || domain.port == port)) return true;
  }
  return false;
}

std::string basic_credentials(std::string_view user, std::string_view password) {
  std::string plain;
  plain.reserve(user.size() + 1 + password.size());
  plain.append(user).append(":").append(password);
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                           reinterpret_cast<const unsigned char*>(plain.data()),
                           static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(n));
  return "Basic " + encoded;
}

}  // namespace gomodproxy::upstream
