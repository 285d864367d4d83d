// The cache admin verbs over HTTP, for a running proxy: GET /admin/cache/stats (text, as
// `cache stats` prints it), GET /admin/cache/stats.json, GET /admin/cache/ls?glob=GLOB and
// POST /admin/cache/rm?module=MODULE[@VERSION]. main.cpp routes them only when an admin token
// is set; access_control makes /admin/ an admin path.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <string>
#include <string_view>

#include "cache/cache_store.hpp"
#include "server/http_server.hpp"

namespace gomodproxy::cache_admin {

enum class admin_verb : std::uint8_t { stats, stats_json, ls, rm };

/// Paths the endpoints are routed at, in admin_verb order.
inline constexpr std::string_view admin_stats_path = "/admin/cache/stats";
inline constexpr std::string_view admin_stats_json_path = "/admin/cache/stats.json";
inline constexpr std::string_view admin_ls_path = "/admin/cache/ls";
inline constexpr std::string_view admin_rm_path = "/admin/cache/rm";

/// One endpoint. The store walk runs on `blocking` (the checks pool), never on the
/// connection's thread: a stats pass over a large cache takes seconds of disk reads.
class admin_endpoint final : public server::handler {
 public:
  admin_endpoint(admin_verb verb, cache::cache_store& store, boost::asio::any_io_executor blocking)
      : verb_(verb), store_(store), blocking_(std::move(blocking)) {}

  boost::asio::awaitable<void> handle(const server::request_view& request,
                                      server::response_writer& writer) override;

 private:
  admin_verb verb_;
  cache::cache_store& store_;
  boost::asio::any_io_executor blocking_;
};

/// The percent-decoded value of `name` in the query of `target`, or nullopt when absent or
/// badly escaped.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

}  // namespace gomodproxy::cache_admin
