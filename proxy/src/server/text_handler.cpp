#include "server/text_handler.hpp"

#include <utility>

namespace gomodproxy::server {

boost::asio::awaitable<void> text_handler::handle(const request_view&, response_writer& writer) {
  text_answer answer = compute_();
  response_head head;
  head.status = answer.status;
  head.content_type = std::move(answer.content_type);
  head.cache_control = "no-store";
  (void)co_await writer.send(head, answer.body);
}

}  // namespace gomodproxy::server
