#include "upstream/dns_cache.hpp"

#include <algorithm>
#include <utility>

namespace gomodproxy::upstream {

dns_cache::dns_cache(dns_cache_options options) : options_(options) {}

std::optional<std::vector<boost::asio::ip::address>> dns_cache::find(const std::string& host,
                                                                     clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(host);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.addresses;
}

void dns_cache::remember(const std::string& host, std::vector<boost::asio::ip::address> addresses,
                         std::chrono::seconds ttl, clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto kept_for = std::min(ttl, options_.max_ttl);
  if (addresses.empty() || kept_for <= std::chrono::seconds::zero() || options_.max_names == 0) {
    entries_.erase(host);
    return;
  }
  auto it = entries_.find(host);
  if (it == entries_.end()) {
    make_room(now);
    it = entries_.emplace(host, entry{}).first;
  }
  it->second.addresses = std::move(addresses);
  it->second.expires = now + kept_for;
}

void dns_cache::make_room(clock::time_point now) {
  if (entries_.size() < options_.max_names) return;
  std::erase_if(entries_, [now](const auto& item) { return item.second.expires <= now; });
  // With a few hundred names a scan on each insertion of a new name costs less than keeping a
  // second index ordered by expiry.
  while (entries_.size() >= options_.max_names) {
    auto soonest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    entries_.erase(soonest);
  }
}

std::size_t dns_cache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace gomodproxy::upstream
