// Remembers the addresses of host names the upstream client looked up, for as long as their DNS
// TTL allows (capped), within a bound on the number of names. Pure bookkeeping: the caller
// passes the time, so tests drive it with their own clock.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace gomodproxy::upstream {

struct dns_cache_options {
  std::size_t max_names = 256;  ///< names remembered at once. Default: 256
  std::chrono::seconds max_ttl{
      300};  ///< longest an answer is kept, whatever its TTL. Default: 5 min
};

/// Thread-safe. Keys are host names as the caller spells them (the client lower-cases them).
class dns_cache final {
 public:
  using clock = std::chrono::steady_clock;

  explicit dns_cache(dns_cache_options options = {});

  /// The addresses remembered for `host`, or nullopt when there are none or their TTL has run out
  /// at `now` (an expired entry is dropped).
  [[nodiscard]] std::optional<std::vector<boost::asio::ip::address>> find(const std::string& host,
                                                                          clock::time_point now);

  /// Remembers `addresses` for `host` until `now + min(ttl, max_ttl)`. An empty list or a TTL of
  /// zero or less is not remembered (and forgets what was). When the cache is full, expired
  /// entries go first, then the entry that would expire soonest.
  void remember(const std::string& host, std::vector<boost::asio::ip::address> addresses,
                std::chrono::seconds ttl, clock::time_point now);

  [[nodiscard]] std::size_t size() const;

 private:
  struct entry {
    std::vector<boost::asio::ip::address> addresses;
    clock::time_point expires;
  };

  void make_room(clock::time_point now);

  dns_cache_options options_;
  mutable std::mutex mutex_;  // guards entries_; never held across a call out
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace gomodproxy::upstream
