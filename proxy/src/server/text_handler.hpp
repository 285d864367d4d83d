// Small answers computed on the spot, sent uncacheable: a handler answering every request with
// one (health and readiness probes), and the sending of one for handlers that compute their own
// (the admin endpoints).
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

/// Sends `answer` with `Cache-Control: no-store` and, when `allow` is not empty (a 405), that
/// Allow header.
boost::asio::awaitable<void> send_text_answer(response_writer& writer, text_answer answer,
                                              std::string allow = {});

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
