// A handler answering every request with a small plain-text body computed on the spot
// (health and readiness probes).
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "server/http_server.hpp"

namespace gomodproxy::server {

struct text_answer {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

class text_handler final : public handler {
 public:
  /// `compute` runs on the connection's strand for each request; it must be quick and
  /// thread-safe.
  explicit text_handler(std::function<text_answer()> compute) : compute_(std::move(compute)) {}

  boost::asio::awaitable<void> handle(const request_view& request,
                                      response_writer& writer) override;

 private:
  std::function<text_answer()> compute_;
};

}  // namespace gomodproxy::server
