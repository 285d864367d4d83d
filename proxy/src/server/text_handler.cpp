#include "server/text_handler.hpp"

#include <utility>

namespace gomodproxy::server {

boost::asio::awaitable<void> send_text_answer(response_writer& writer, text_answer answer,
                                              std::string allow) {
  response_head head;
  head.status = answer.status;
  head.content_type = std::move(answer.content_type);
  head.cache_control = "no-store";
  if (!allow.empty()) head.extra_headers.emplace_back("Allow", std::move(allow));
  (void)co_await writer.send(head, answer.body);
}

boost::asio::awaitable<void> text_handler::handle(const request_view&, response_writer& writer) {
  text_answer answer = compute_();
  co_await send_text_answer(writer, std::move(answer));
}

}  // namespace gomodproxy::server
