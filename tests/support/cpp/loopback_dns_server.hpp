// In-process UDP DNS server on 127.0.0.1 for resolver tests, the C++ twin of tiny_dns.py:
// answers A queries for the names it is given (AAAA with no records), drops every query for a
// silent name as a black-holing firewall does, answers NXDOMAIN for the rest, and counts queries
// by name and type. Header-only, plain sockets.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gomodproxy::test {

class loopback_dns_server {
 public:
  static constexpr std::uint16_t type_a = 1;
  static constexpr std::uint16_t type_aaaa = 28;

  struct record {
    std::string ipv4;
    std::uint32_t ttl;
  };

  loopback_dns_server(std::map<std::string, record> records, std::set<std::string> silent)
      : records_(std::move(records)), silent_(std::move(silent)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("dns server: socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("dns server: bind");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~loopback_dns_server() {
    stopping_ = true;
    thread_.join();
    ::close(fd_);
  }

  loopback_dns_server(const loopback_dns_server&) = delete;
  loopback_dns_server& operator=(const loopback_dns_server&) = delete;

  /// "127.0.0.1:PORT", as dns_resolver_options::name_servers takes it.
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Queries of `type` for `name` received so far, answered or dropped.
  [[nodiscard]] int queries(const std::string& name, std::uint16_t type = type_a) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find({name, type});
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  void serve() {
    std::vector<unsigned char> packet(4096);
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_in peer{};
      socklen_t peer_len = sizeof peer;
      auto n = ::recvfrom(fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                          &peer_len);
      if (n < 12) continue;
      auto reply = answer(std::vector<unsigned char>(packet.begin(), packet.begin() + n));
      if (!reply.empty()) {
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
      }
    }
  }

  std::vector<unsigned char> answer(const std::vector<unsigned char>& query) {
    if ((query[2] & 0x80) != 0 || query[4] != 0 || query[5] != 1) return {};
    std::string name;
    std::size_t at = 12;
    while (at < query.size() && query[at] != 0) {
      std::size_t length = query[at++];
      if ((length & 0xC0) != 0 || at + length > query.size()) return {};
      if (!name.empty()) name.push_back('.');
      for (std::size_t i = 0; i < length; ++i) {
        name.push_back(static_cast<char>(std::tolower(query[at + i])));
      }
      at += length;
    }
    if (at + 5 > query.size()) return {};
    std::uint16_t type = static_cast<std::uint16_t>((query[at + 1] << 8) | query[at + 2]);
    std::size_t question_end = at + 5;
    {
      std::lock_guard lock(mutex_);
      ++counts_[{name, type}];
    }
    if (silent_.contains(name)) return {};

    std::vector<unsigned char> reply(query.begin(), query.begin() + question_end);
    reply[2] = static_cast<unsigned char>(0x80 | 0x04 | (query[2] & 0x01));  // QR, AA, RD
    reply[3] = 0x80;                                                         // RA, NOERROR
    reply[6] = reply[7] = reply[8] = reply[9] = reply[10] = reply[11] = 0;
    auto found = records_.find(name);
    if (found == records_.end()) {
      reply[3] |= 3;  // NXDOMAIN
      return reply;
    }
    if (type != type_a) return reply;  // the name exists, without records of that type
    in_addr address{};
    ::inet_pton(AF_INET, found->second.ipv4.c_str(), &address);
    auto ttl = found->second.ttl;
    reply[7] = 1;
    const unsigned char rr[] = {0xC0,
                                0x0C,
                                0,
                                1,
                                0,
                                1,
                                static_cast<unsigned char>(ttl >> 24),
                                static_cast<unsigned char>(ttl >> 16),
                                static_cast<unsigned char>(ttl >> 8),
                                static_cast<unsigned char>(ttl),
                                0,
                                4};
    reply.insert(reply.end(), std::begin(rr), std::end(rr));
    const auto* bytes = reinterpret_cast<const unsigned char*>(&address.s_addr);
    reply.insert(reply.end(), bytes, bytes + 4);
    return reply;
  }

  std::map<std::string, record> records_;
  std::set<std::string> silent_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::uint16_t>, int> counts_;
};

}  // namespace gomodproxy::test
