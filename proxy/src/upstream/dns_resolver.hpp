// Host name lookups for the upstream client: each lookup is bounded by its caller's deadline and
// never waits behind a lookup of another name, answers are cached for their DNS TTL, /etc/hosts
// is read before DNS, and IP literals and localhost names never reach a name server.
//
// Why not Asio's resolver: it runs getaddrinfo() one call at a time on a single background thread
// per io_context, and a call cannot be cancelled. One name whose queries a firewall drops blocks
// that thread for the resolver's whole retry schedule, so every later lookup of every other name
// (every tier, the prober, HTTPS_PROXY's host) times out behind it.
//
// Design: c-ares (Debian's libc-ares, 1.18) sends the queries, all of them in flight at once. Its
// channel is not thread-safe in that version, so one thread owns it: it sleeps in poll() on the
// channel's sockets and a wake-up pipe, starts the lookups callers queue, and hands each answer to
// its callers' executors. Callers wait on a timer of their own on a private strand, so a deadline
// ends only that caller's wait; the query itself runs on under c-ares' own retry schedule
// (resolv.conf's timeout and attempts, else c-ares' defaults), and callers asking for the same
// name meanwhile share it.
// A dedicated thread rather than watching c-ares' sockets from the io_context keeps the channel's
// lifetime independent of the io_context's and needs no lock around c-ares calls. c-ares reads
// resolv.conf once per channel, so when the file changes new lookups get a new channel and the
// old one is closed once its queries end.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "upstream/dns_cache.hpp"

namespace gomodproxy::upstream {

struct dns_resolver_options {
  dns_cache_options cache;  ///< Default: 256 names, TTLs capped at 5 min
  /// Name servers as "ip:port,ip:port" (IPv6 as "[ip]:port") instead of resolv.conf's; the rest
  /// of resolv.conf (timeout, attempts, search) still applies. Default: empty, resolv.conf's.
  std::string name_servers;
};

/// Thread-safe. Must outlive every resolve() in progress; its destructor stops the lookup thread
/// and drops queries still in flight.
class dns_resolver final {
 public:
  /// Reads the system's resolver configuration (/etc/resolv.conf, looked at again at most once a
  /// second while lookups are made). Throws std::runtime_error
  /// when c-ares cannot be set up (a start-up failure).
  explicit dns_resolver(dns_resolver_options options = {});
  ~dns_resolver();
  dns_resolver(const dns_resolver&) = delete;
  dns_resolver& operator=(const dns_resolver&) = delete;

  /// The addresses of `host` (a name, or an IP literal without brackets) as endpoints on `port`.
  /// IP literals, "localhost" and names under ".localhost" are answered at once; other names
  /// from the cache, else from /etc/hosts, else DNS (A and AAAA). Errors:
  /// asio::error::timed_out when `deadline` passed first; host_not_found, no_data, or
  /// host_not_found_try_again (server failure, refusal, or c-ares gave up) otherwise.
  boost::asio::awaitable<boost::system::result<std::vector<boost::asio::ip::tcp::endpoint>>>
  resolve(std::string host, std::uint16_t port, std::chrono::steady_clock::time_point deadline);

  /// Names remembered by the cache right now (for tests and diagnostics).
  [[nodiscard]] std::size_t cached_names() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gomodproxy::upstream
