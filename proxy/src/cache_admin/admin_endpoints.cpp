#include "cache_admin/admin_endpoints.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

#include "cache_admin/cache_inventory.hpp"
#include "common/errc.hpp"
#include "protocol/request.hpp"
#include "server/text_handler.hpp"

namespace gomodproxy::cache_admin {
namespace {

namespace net = boost::asio;

struct answer : server::text_answer {
  std::string allow;  ///< set for a 405
};

answer text(int status, std::string body) {
  answer plain;
  plain.status = status;
  plain.body = std::move(body);
  return plain;
}

answer failed(const boost::system::error_code& error) {
  return text(to_http_status(error), "cannot read the cache: " + error.message() + "\n");
}

answer compute(admin_verb verb, cache::cache_store& store, const std::string& target, bool post) {
  // rm changes the cache, so it is never a GET a crawler or prefetcher could trigger; the
  // others change nothing and are GETs.
  if ((verb == admin_verb::rm) != post) {
    auto refused = text(405, "method not allowed\n");
    refused.allow = verb == admin_verb::rm ? "POST" : "GET, HEAD";
    return refused;
  }
  switch (verb) {
    case admin_verb::stats:
    case admin_verb::stats_json: {
      auto summary = summarize_cache(store);
      if (!summary) return failed(summary.error());
      if (verb == admin_verb::stats) return text(200, format_summary(*summary));
      auto json = text(200, summary_json(*summary));
      json.content_type = "application/json";
      return json;
    }
    case admin_verb::ls: {
      const bool has_query = target.find('?') != std::string::npos;
      auto glob = query_parameter(target, "glob");
      if (has_query && !glob) return text(400, "bad request: the query must be glob=GLOB\n");
      auto entries = list_modules(store, glob.value_or(""));
      if (!entries) return failed(entries.error());
      return text(200, format_module_entries(*entries));
    }
    case admin_verb::rm: {
      auto wanted = query_parameter(target, "module");
      if (!wanted) {
        return text(400, "bad request: name what to remove with ?module=MODULE[@VERSION]\n");
      }
      auto selector = parse_module_selector(*wanted);
      if (!selector) return text(400, "bad request: not a module path or module@version\n");
      auto removed = remove_module(
          store, selector->module_path,
          selector->version ? std::optional<std::string_view>(*selector->version) : std::nullopt);
      if (!removed) return failed(removed.error());
      std::string body;
      for (const auto& key : *removed) body += "removed " + key + "\n";
      body += std::to_string(removed->size()) + " entries removed\n";
      return text(removed->empty() ? 404 : 200, std::move(body));
    }
  }
  return text(500, "unknown admin verb\n");
}

// A coroutine of its own with its arguments by value, so the frame owns them while it runs on
// the other executor (a capturing lambda coroutine would leave them in a temporary).
net::awaitable<answer> compute_on(admin_verb verb, cache::cache_store* store, std::string target,
                                  bool post) {
  co_return compute(verb, *store, target, post);
}

}  // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto equals = pair.find('=');
    if (equals == std::string_view::npos || pair.substr(0, equals) != name) continue;
    std::string value;
    if (!protocol::percent_decode(pair.substr(equals + 1), value)) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

net::awaitable<void> admin_endpoint::handle(const server::request_view& request,
                                            server::response_writer& writer) {
  const bool post = request.method == "POST";
  auto result = co_await net::co_spawn(
      blocking_, compute_on(verb_, &store_, std::string(request.target), post), net::use_awaitable);
  std::string allow = std::move(result.allow);
  co_await server::send_text_answer(writer, std::move(result), std::move(allow));
}

}  // namespace gomodproxy::cache_admin
