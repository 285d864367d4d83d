// The loopback HTTP CONNECT proxy that the go and git subprocesses of public module paths are
// pointed at (HTTPS_PROXY): it resolves each tunnel's host itself and checks every address before
// it connects, so a DNS answer that changes between the module path's check and the subprocess's
// connection cannot reach an address the policy refuses.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/failure.hpp"
#include "upstream/dns_resolver.hpp"

namespace gomodproxy::direct {

/// Bounds of one client connection to the guard.
struct connect_guard_limits {
  std::size_t max_head_bytes = std::size_t{8} * 1024;  ///< Default: 8 KiB of CONNECT request head
  std::chrono::milliseconds head_timeout{10'000};      ///< Default: 10 s to send the head
  std::chrono::milliseconds resolve_timeout{10'000};   ///< Default: 10 s to look the host up
  std::chrono::milliseconds connect_timeout{10'000};   ///< Default: 10 s for all its addresses
  std::chrono::milliseconds idle_timeout{300'000};     ///< Default: 5 min without a byte either way
  std::size_t max_connections = 512;  ///< Default: 512 open at once; more are closed unanswered
};

/// HTTP CONNECT proxy on 127.0.0.1 for the go/git subprocesses of public paths.
/// A CONNECT host:port is resolved with `dns` (bounded), every address is checked with
/// `check_address`, and the tunnel is opened only when none is refused, to those addresses in
/// order; a refusal is answered 403 with the reason in the status line and the body (the go
/// command quotes the status line in its error), never a tunnel. Other methods get 405, malformed
/// heads 400. Tunnels carry bytes both ways until either side closes or `limits.idle_timeout`
/// passes without a byte. Reasons never contain userinfo. Thread-safe. The executor's execution
/// context must outlive the guard, and `dns` every connection (until the executor's work ends, not
/// only the guard); the guard may be destroyed while connections are open, from any thread: it
/// stops them, and each keeps the guard's state (the address check among it) until it has ended.
class connect_guard final {
 public:
  /// Success when a connection to the address is allowed, else a failure whose detail says why
  /// not (a short phrase such as check_address() returns; the guard answers 403 whatever the
  /// code). Production passes check_address with the server's own addresses; tests allow
  /// loopback.
  using address_check = std::function<outcome_of<void>(const boost::asio::ip::address&)>;

  connect_guard(boost::asio::any_io_executor executor, upstream::dns_resolver& dns,
                address_check check_address, connect_guard_limits limits = {});
  ~connect_guard();  // NOLINT(bugprone-exception-escape): see the definition
  connect_guard(const connect_guard&) = delete;
  connect_guard& operator=(const connect_guard&) = delete;

  /// Binds 127.0.0.1:0 and starts accepting; returns "http://127.0.0.1:PORT". Throws on failure.
  /// A second call returns the same URL.
  std::string start();
  /// Closes the listening socket and every open connection and tunnel. Idempotent.
  void stop();
  /// CONNECTs refused: a refused address (403), a method other than CONNECT (405), a malformed
  /// or oversized request head (400).
  [[nodiscard]] std::uint64_t refused() const;
  /// Tunnels opened (200 answered).
  [[nodiscard]] std::uint64_t connected() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace gomodproxy::direct
