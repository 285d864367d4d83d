#include "upstream/upstream_list.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>
#include <boost/url/url_view.hpp>

#include "protocol/escape.hpp"

namespace gomodproxy::upstream {

using protocol::trim_space;

namespace {

// Messages end up on one log or terminal line: control and non-ASCII bytes are shown as \xNN.
// No length cap: the entries come from the operator's own configuration.
std::string printable(std::string_view s) {
  return protocol::quote(
      s, {.quotes = false, .named_controls = false, .max_bytes = std::string_view::npos});
}

// Like Go's url.Redacted: a password never reaches a message, even from a URL that fails to parse.
std::string redacted(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return printable(url);
  const auto authority_start = scheme_end + 3;
  const auto authority =
      url.substr(authority_start, url.find_first_of("/?#", authority_start) - authority_start);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return printable(url);
  const auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return printable(url);
  return printable(url.substr(0, authority_start + colon + 1)) + "xxxxx" +
         printable(url.substr(authority_start + at));
}

[[nodiscard]] outcome_of<tier_spec> parse_url_entry(std::string_view entry) {
  std::string url(entry);
  // Go's rule: single words are reserved for keywords, anything with ":/" or a leading '/' must
  // already be a full URL, and the rest ("goproxy.cn", "127.0.0.1:1") is https.
  if (entry.find_first_of(".:/") != std::string_view::npos &&
      entry.find(":/") == std::string_view::npos && entry.front() != '/') {
    url = "https://" + url;
  }
  while (url.ends_with('/') && !url.ends_with("://")) url.pop_back();
  const auto shown = redacted(url);
  const auto parsed = boost::urls::parse_uri_reference(url);
  if (!parsed)
    return invalid_request("invalid proxy URL " + shown + ": " + parsed.error().message());
  const boost::urls::url_view& u = *parsed;
  switch (u.scheme_id()) {
    case boost::urls::scheme::http:
      if (u.has_userinfo()) {
        return invalid_request("refusing to pass credentials to insecure URL: " + shown);
      }
      break;
    case boost::urls::scheme::https:
      break;
    case boost::urls::scheme::file:
      return invalid_request("invalid proxy URL " + shown +
                             ": file:// proxies are not supported by gomodproxy");
    case boost::urls::scheme::none:
      return invalid_request("invalid proxy URL missing scheme: " + shown);
    default:
      return invalid_request("invalid proxy URL scheme (must be https or http): " + shown);
  }
  if (u.encoded_host().empty()) return invalid_request("invalid proxy URL missing host: " + shown);
  // Boost.URL 1.81 reads "https://h:port" as host "h", empty port and path "port"; insist on a
  // numeric port and a path that starts at '/'.
  const auto port = u.port();
  const auto path = u.encoded_path();
  if (u.has_port() &&
      (port.empty() || port.size() > 5 ||
       port.find_first_not_of("0123456789") != std::string_view::npos || u.port_number() == 0)) {
    return invalid_request("invalid proxy URL port: " + shown);
  }
  if (!path.empty() && path.front() != '/') return invalid_request("invalid proxy URL " + shown);
  if (u.has_query() || u.has_fragment()) {
    return invalid_request("invalid proxy URL with a query or fragment: " + shown);
  }
  tier_spec tier;
  tier.type = tier_spec::kind::url;
  tier.name = std::string(u.encoded_host_and_port()) + std::string(u.encoded_path());
  tier.url = std::move(url);
  return tier;
}

}  // namespace

outcome_of<std::vector<tier_spec>> parse_upstream_list(std::string_view list) {
  if (list.empty()) return invalid_request("upstream list is empty");
  std::vector<tier_spec> tiers;
  while (!list.empty()) {
    const auto separator = list.find_first_of(",|");
    const auto entry = trim_space(list.substr(0, separator));
    const bool fall_through_on_error =
        separator != std::string_view::npos && list[separator] == '|';
    list = separator == std::string_view::npos ? std::string_view{} : list.substr(separator + 1);
    if (entry.empty()) continue;
    // "off" and "direct" end the walk, so whatever follows them is ignored, as go does.
    if (entry == "off" || entry == "direct") {
      tier_spec tier;
      tier.type = entry == "off" ? tier_spec::kind::off : tier_spec::kind::direct;
      tier.name = entry;
      tiers.push_back(std::move(tier));
      break;
    }
    auto parsed = parse_url_entry(entry);
    if (!parsed) return parsed.error();
    auto& tier = *parsed;
    tier.fall_through_on_error = fall_through_on_error;
    tiers.push_back(std::move(tier));
  }
  if (tiers.empty()) {
    return invalid_request("GOPROXY list is not the empty string, but contains no entries");
  }
  return tiers;
}

}  // namespace gomodproxy::upstream
