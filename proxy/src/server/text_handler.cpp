#include "server/text_handler.hpp"

namespace gomodproxy::server {

boost::asio::awaitable<void> text_handler::handle(const request_view&, response_writer& writer) {
  text_answer answer = compute_();
  response_head head;
  head.status = answer.status;
  head.content_type = "text/plain; charset=utf-8";
  head.cache_control = "no-store";
  (void)co_await writer.send(head, answer.body);
}

}  // namespace gomodproxy::server
