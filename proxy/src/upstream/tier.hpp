// What the resolver asks for a file: a tier. An HTTP(S) GOPROXY or checksum-database base URL is
// one kind, the `direct` fetcher (version control through the go command) another, and tests
// plug in their own. The resolver knows nothing else about where a body comes from.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "protocol/request.hpp"
#include "upstream/http_client.hpp"
#include "upstream/upstream_list.hpp"

namespace gomodproxy::upstream {

class tier {
 public:
  virtual ~tier() = default;

  /// Answers `request` (a module endpoint, or a checksum-database path for a database's tiers):
  /// a 200 body is streamed to `sink` in order, and the result says how it ended. `limits.total`
  /// bounds the whole fetch, any queueing included. Failures of the tier itself (network,
  /// timeouts, a process that failed) come back in the result, never as exceptions.
  virtual boost::asio::awaitable<fetch_result> fetch(const protocol::module_request& request,
                                                     body_sink sink, deadlines limits) = 0;
};

/// A base URL asked over HTTP(S): the file is GET base_url + request.upstream_path.
class http_tier final : public tier {
 public:
  /// `client` must outlive the tier.
  http_tier(http_client& client, std::string base_url)
      : client_(client), base_url_(std::move(base_url)) {}

  boost::asio::awaitable<fetch_result> fetch(const protocol::module_request& request,
                                             body_sink sink, deadlines limits) override {
    return client_.get(base_url_ + request.upstream_path, std::move(sink), limits);
  }

 private:
  http_client& client_;
  std::string base_url_;
};

/// Makes the tier that answers for one entry of an upstream list; nullptr when nothing can
/// (always for `off`; for `direct` when the server runs without a direct fetcher).
using tier_factory = std::function<std::shared_ptr<tier>(const tier_spec& spec)>;

/// URL entries become http_tiers over `client` (which must outlive them); `direct` gets nothing.
inline tier_factory http_tiers(http_client& client) {
  return [&client](const tier_spec& spec) -> std::shared_ptr<tier> {
    if (spec.type != tier_spec::kind::url) return nullptr;
    return std::make_shared<http_tier>(client, spec.url);
  };
}

}  // namespace gomodproxy::upstream
