#include "server/http_server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>

#include "common/log_if_thrown.hpp"
#include "server/tls_credentials.hpp"

namespace gomodproxy::server {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

using namespace std::string_view_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// RFC 9110 requires a Date header; formatting it once a second per thread keeps it off the
// per-request cost.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local std::array<char, 40> text = {};
  thread_local std::size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return {text.data(), length};
}

// Appends `value` in decimal.
void append_number(std::string& out, std::uint64_t value) {
  std::array<char, 20> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  // A pointer and a count: the iterator pair overload goes through _M_replace, twice the work.
  out.append(digits.data(), static_cast<std::size_t>(end - digits.data()));
}

// "2026-01-31T12:34:56.789 access ", local time, as the access log's lines have always begun.
void append_access_stamp(std::string& out) {
  thread_local std::time_t cached_second = -1;
  thread_local std::array<char, 32> text = {};
  thread_local std::size_t length = 0;
  const auto now = std::chrono::system_clock::now();
  const std::time_t second = std::chrono::system_clock::to_time_t(now);
  if (second != cached_second) {
    cached_second = second;
    std::tm tm{};
    localtime_r(&second, &tm);
    length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  }
  const auto millis = static_cast<unsigned>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  const std::array<char, 4> fraction = {'.', static_cast<char>('0' + millis / 100),
                                        static_cast<char>('0' + millis / 10 % 10),
                                        static_cast<char>('0' + millis % 10)};
  out.append(text.data(), length).append(fraction.data(), fraction.size()).append(" access "sv);
}

// The access-log lines one thread produced since its last hand-over, given to the logger as one
// message. One message per line woke the logger's thread (a futex call on each side) and cost
// it a write(2) for every request; a batch is handed over once the handlers that were ready
// together have run (a post to the back of the queue), so an idle server still logs a request
// as soon as it is answered. Owned by a thread; the mutex is for a hand-over that runs on
// another thread of a shared io_context.
class access_batch : public std::enable_shared_from_this<access_batch> {
 public:
  // Lines past this are handed over at once rather than after the ready handlers. It bounds the
  // logger's queue in bytes (main.cpp counts that queue in messages).
  static constexpr std::size_t max_bytes = 4 << 10;

  access_batch() = default;
  ~access_batch() { hand_over(); }
  access_batch(const access_batch&) = delete;
  access_batch& operator=(const access_batch&) = delete;

  // The calling thread's batch for `log`.
  static access_batch& of_this_thread(const std::shared_ptr<spdlog::logger>& log) {
    thread_local std::shared_ptr<access_batch> batch;
    if (!batch || batch->log_ != log) {
      if (batch) batch->hand_over();
      batch = std::make_shared<access_batch>();
      batch->log_ = log;
    }
    return *batch;
  }

  // `fill` appends one line (no newline) to the string it is given.
  template <class Fill>
  void add(const net::any_io_executor& executor, Fill&& fill) {
    bool post_hand_over = false;
    bool full = false;
    {
      std::lock_guard lock(mutex_);
      if (!lines_.empty()) lines_ += '\n';
      append_access_stamp(lines_);
      fill(lines_);
      full = lines_.size() >= max_bytes;
      post_hand_over = !full && !hand_over_posted_;
      if (post_hand_over) hand_over_posted_ = true;
    }
    if (full) {
      hand_over();
    } else if (post_hand_over) {
      net::post(executor, [self = shared_from_this()] { self->hand_over(); });
    }
  }

  void hand_over() {
    std::string out;
    {
      std::lock_guard lock(mutex_);
      hand_over_posted_ = false;
      out.swap(lines_);
      // The next batch starts with the capacity this one grew to.
      lines_.reserve(out.capacity());
    }
    if (!out.empty() && log_) log_->info(std::string_view(out));
  }

 private:
  std::mutex mutex_;
  std::string lines_;
  bool hand_over_posted_ = false;
  std::shared_ptr<spdlog::logger> log_;
};

// "{method} {target} {status} {bytes} {ms}ms {cache} {tier} {client}", the milliseconds with
// three decimals. Built by hand on the I/O thread, per request: a format string parsed for every
// line cost about as much as the rest of answering a cached .info (docs/benchmarks.md).
void format_access_line(std::string& out, std::string_view method, std::string_view target,
                        int status, std::uint64_t bytes, std::int64_t micros,
                        std::string_view cache_result, std::string_view tier,
                        std::string_view client) {
  out.append(method).push_back(' ');
  out.append(target).push_back(' ');
  append_number(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  append_number(out, bytes);
  out.push_back(' ');
  const auto whole = static_cast<std::uint64_t>(std::max<std::int64_t>(micros, 0));
  append_number(out, whole / 1000);
  const auto fraction = whole % 1000;
  const std::array<char, 4> decimals = {'.', static_cast<char>('0' + fraction / 100),
                                        static_cast<char>('0' + fraction / 10 % 10),
                                        static_cast<char>('0' + fraction % 10)};
  out.append(decimals.data(), decimals.size());
  out.append("ms "sv).append(cache_result).push_back(' ');
  out.append(tier).push_back(' ');
  out.append(client);
}

// Into `out`, replacing what it held: a connection's buffer, whose capacity is kept from one
// response to the next instead of a string allocated for every head.
void serialize_head(std::string& out, const response_head& head, std::uint64_t content_length,
                    bool keep_alive, bool http10) {
  out.clear();
  out.reserve(256);
  out += "HTTP/1.1 "sv;
  append_number(out, static_cast<std::uint64_t>(head.status));
  out += ' ';
  out += reason_phrase(head.status);
  out += "\r\nDate: "sv;
  out += http_date();
  out += "\r\nServer: gomodproxy"sv;
  if (!head.content_type.empty()) {
    out += "\r\nContent-Type: "sv;
    out += head.content_type;
  }
  out += "\r\nContent-Length: "sv;
  append_number(out, content_length);
  if (!head.cache_control.empty()) {
    out += "\r\nCache-Control: "sv;
    out += head.cache_control;
  }
  for (const auto& [name, value] : head.extra_headers) {
    out += "\r\n"sv;
    out += name;
    out += ": "sv;
    out += value;
  }
  if (!keep_alive) {
    out += "\r\nConnection: close"sv;
  } else if (http10) {
    out += "\r\nConnection: keep-alive"sv;
  }
  out += "\r\n\r\n"sv;
}

// The most a file range costs in user-space memory where it cannot go by sendfile (TLS, and
// writers that are not a connection's).
constexpr std::size_t file_buffer_bytes = 128 << 10;

// Up to `size` bytes of `fd` from `offset` into `into`: their count, short only where the file
// ends, or nullopt when reading fails.
std::optional<std::size_t> read_file_at(int fd, std::uint64_t offset, char* into,
                                        std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const auto n = ::pread(fd, into + got, size - got, static_cast<off_t>(offset + got));
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      return std::nullopt;
    }
  }
  return got;
}

// Sends `range` through `writer` in buffered pieces, the head with the first one when `head` is
// set. False when the file ends early or cannot be read, or the writer fails.
net::awaitable<bool> send_file_copied(response_writer& writer, const response_head* head,
                                      std::uint64_t content_length, file_range range) {
  std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(
                         std::max<std::uint64_t>(range.length, 1), file_buffer_bytes)),
                     '\0');
  bool head_pending = head != nullptr;
  while (range.length > 0 || head_pending) {
    const auto piece =
        static_cast<std::size_t>(std::min<std::uint64_t>(range.length, buffer.size()));
    const auto got = read_file_at(range.fd, range.offset, buffer.data(), piece);
    if (!got || *got != piece) co_return false;
    const std::string_view bytes(buffer.data(), piece);
    if (head_pending) {
      head_pending = false;
      if (!co_await writer.send_head_with(*head, content_length, bytes)) co_return false;
    } else if (!co_await writer.write_body(bytes)) {
      co_return false;
    }
    range.offset += piece;
    range.length -= piece;
  }
  co_return true;
}

using clock = std::chrono::steady_clock;
constexpr auto no_deadline = clock::time_point::max();
constexpr std::chrono::milliseconds close_notify_wait{1000};

// What a drain and the deadline watchdog need to reach an open connection: its executor, its
// TCP stream (under TLS, the layer below it; null before the connection's coroutine starts and once
// it is done), the deadline of the phase it is in and whether a request is being answered. `stream`
// is written under the server's connections mutex (a drain reads it there from another thread); the
// rest is touched on the connection's executor only, except `busy`.
struct connection_state {
  explicit connection_state(net::any_io_executor on) : executor(std::move(on)) {}
  const net::any_io_executor executor;
  beast::tcp_stream* stream = nullptr;
  std::atomic<bool> busy{false};
  clock::time_point deadline = no_deadline;
  net::steady_timer* watchdog = nullptr;
  // The response head being written; one response at a time per connection.
  std::string head_text;
};

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// A request's header fields live in an arena of the connection's exchange, emptied after each
// request: Beast's fields otherwise allocate the request line and every field on the heap.
using fields_allocator = std::pmr::polymorphic_allocator<char>;
using request_fields = http::basic_fields<fields_allocator>;
template <class Body>
using request_parser = http::parser<true, Body, fields_allocator>;

// Drained after a handler that left the body unread, so its answer is not lost to a reset.
constexpr std::uint64_t max_discarded_body = 1 << 20;

// A request body read through Beast's parser on the connection's stream, each read bounded by
// the request timeout.
template <class Stream>
class parsed_body final : public request_body {
 public:
  parsed_body(Stream& stream, beast::flat_buffer& buffer, request_parser<http::empty_body>&& header,
              std::uint64_t limit, connection_state& state, std::chrono::milliseconds timeout)
      : stream_(stream),
        buffer_(buffer),
        parser_(std::move(header)),
        state_(state),
        timeout_(timeout) {
    parser_.body_limit(limit);
  }

  std::optional<std::uint64_t> declared_length() const override {
    auto length = parser_.content_length();
    if (!length) return std::nullopt;
    return *length;
  }

  net::awaitable<boost::system::result<std::size_t>> read_some(char* buffer,
                                                               std::size_t size) override {
    // Beast reads only as much as the buffer has room for (at least 512 bytes), and the parser
    // moves every byte on into the caller's buffer, so without room made here a large upload
    // would arrive 512 bytes per system call.
    const std::size_t room = std::min(size, buffer_.max_size());
    if (buffer_.capacity() < room) buffer_.reserve(room);
    while (!parser_.is_done() && !failed_) {
      auto& body = parser_.get().body();
      body.data = buffer;
      body.size = size;
      state_.deadline = clock::now() + timeout_;
      auto [ec, ignored] = co_await http::async_read_some(stream_, buffer_, parser_,
                                                          net::as_tuple(net::use_awaitable));
      (void)ignored;
      state_.deadline = no_deadline;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        failed_ = true;
        co_return ec;
      }
      const std::size_t got = size - parser_.get().body().size;
      if (got > 0) co_return got;
    }
    if (failed_) co_return boost::system::error_code(net::error::connection_aborted);
    co_return std::size_t{0};
  }

  // Whether the connection may carry another request: the body was read to its end (after
  // discarding a small remainder the handler left).
  net::awaitable<bool> finish() {
    std::array<char, 16384> sink{};
    std::uint64_t discarded = 0;
    while (!parser_.is_done() && !failed_ && discarded <= max_discarded_body) {
      auto got = co_await read_some(sink.data(), sink.size());
      if (!got) co_return false;
      discarded += *got;
    }
    co_return parser_.is_done() && !failed_;
  }

  const http::request<http::buffer_body, request_fields>& request() const { return parser_.get(); }

 private:
  Stream& stream_;
  beast::flat_buffer& buffer_;
  request_parser<http::buffer_body> parser_;
  connection_state& state_;
  std::chrono::milliseconds timeout_;
  bool failed_ = false;
};

template <class Stream>
class connection_writer final : public response_writer {
 public:
  connection_writer(Stream& stream, connection_state& state,
                    std::chrono::milliseconds write_timeout, bool head_only, bool keep_alive,
                    bool http10)
      : stream_(stream),
        state_(state),
        write_timeout_(write_timeout),
        head_only_(head_only),
        keep_alive_(keep_alive),
        http10_(http10) {}

  net::awaitable<bool> send(const response_head& head, std::string_view body) override {
    if (started_) co_return false;
    started_ = true;
    status_ = head.status;
    std::string& header = state_.head_text;
    serialize_head(header, head, body.size(), keep_alive_, http10_);
    if (head_only_) body = {};
    declared_ = body.size();
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      // One buffer per write under TLS: a gather write of head and body through beast's
      // ssl_stream (Boost 1.81) whose total passed 16 KiB completed with the body never sent, so
      // the client waited forever for it (a 24 KB /metrics).
      if (!co_await write(net::buffer(header), 0)) co_return false;
      co_return co_await write(net::buffer(body), body.size());
    } else {
      // Every cached small file is answered through this call. Most responses fit the socket's
      // send buffer, so one sendmsg(2) made here finishes them without a trip through the
      // io_context (an async_write that completes at once still posts its completion, and the
      // scheduler polls epoll before running it); only what did not fit is awaited.
      // sendmsg(2) only reads the bytes; iovec has no const member for them.
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast)
      auto* body_bytes = const_cast<char*>(body.data());
      std::array<iovec, 2> parts{iovec{header.data(), header.size()},
                                 iovec{body_bytes, body.size()}};
      msghdr message{};
      message.msg_iov = parts.data();
      message.msg_iovlen = parts.size();
      const int socket = beast::get_lowest_layer(stream_).socket().native_handle();
      ssize_t sent = 0;
      do {
        sent = ::sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (sent < 0 && errno == EINTR);
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        co_return finish_write(boost::system::error_code(errno, boost::system::system_category()),
                               0);
      }
      const auto done = static_cast<std::size_t>(std::max<ssize_t>(sent, 0));
      if (done == header.size() + body.size()) co_return finish_write({}, body.size());
      std::array<net::const_buffer, 2> rest{
          net::buffer(header) + std::min(done, header.size()),
          net::buffer(body) + (done > header.size() ? done - header.size() : 0)};
      start_write();
      auto [ec, n] = co_await net::async_write(stream_, rest, use_tuple);
      (void)n;
      co_return finish_write(ec, body.size());
    }
  }

  net::awaitable<bool> send_head(const response_head& head, std::uint64_t content_length) override {
    if (started_) co_return false;
    started_ = true;
    status_ = head.status;
    declared_ = head_only_ ? 0 : content_length;
    std::string& header = state_.head_text;
    serialize_head(header, head, content_length, keep_alive_, http10_);
    co_return co_await write(net::buffer(header), 0);
  }

  net::awaitable<bool> send_head_with(const response_head& head, std::uint64_t content_length,
                                      std::string_view first_chunk) override {
    if (started_) co_return false;
    started_ = true;
    status_ = head.status;
    declared_ = head_only_ ? 0 : content_length;
    if (head_only_) first_chunk = {};
    if (first_chunk.size() > declared_) {
      failed_ = true;
      co_return false;
    }
    std::string& header = state_.head_text;
    serialize_head(header, head, content_length, keep_alive_, http10_);
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      // One buffer per write under TLS (see send()).
      if (!co_await write(net::buffer(header), 0)) co_return false;
      co_return co_await write(net::buffer(first_chunk), first_chunk.size());
    } else {
      std::array<net::const_buffer, 2> buffers{net::buffer(header), net::buffer(first_chunk)};
      co_return co_await write(buffers, first_chunk.size());
    }
  }

  net::awaitable<bool> write_body(std::string_view chunk) override {
    if (!started_ || failed_) co_return false;
    if (head_only_) co_return true;
    if (body_sent_ + chunk.size() > declared_) {
      // A handler writing more than it declared would corrupt the framing of the next
      // response on this connection.
      failed_ = true;
      co_return false;
    }
    co_return co_await write(net::buffer(chunk), chunk.size());
  }

  net::awaitable<bool> send_head_with_file(const response_head& head, std::uint64_t content_length,
                                           file_range first) override {
    if (started_) co_return false;
    if (head_only_) co_return co_await send_head(head, content_length);
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      const bool sent = co_await send_file_copied(*this, &head, content_length, first);
      if (!sent) failed_ = true;
      co_return sent;
    } else {
      started_ = true;
      status_ = head.status;
      declared_ = content_length;
      if (first.length > declared_) {
        failed_ = true;
        co_return false;
      }
      std::string& header = state_.head_text;
      serialize_head(header, head, content_length, keep_alive_, http10_);
      co_return co_await send_from_file(header, first);
    }
  }

  net::awaitable<bool> write_file(file_range range) override {
    if (!started_ || failed_) co_return false;
    if (head_only_) co_return true;
    if (body_sent_ + range.length > declared_) {
      failed_ = true;
      co_return false;
    }
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      const bool sent = co_await send_file_copied(*this, nullptr, 0, range);
      if (!sent) failed_ = true;
      co_return sent;
    } else {
      co_return co_await send_from_file({}, range);
    }
  }

  bool head_only() const override { return head_only_; }

  /// The response not yet started will say "Connection: close".
  void close_after_response() { keep_alive_ = false; }

  void note(std::string_view cache_result, std::string_view tier) override {
    cache_result_ = cache_result;
    tier_ = tier;
  }

  bool started() const { return started_; }
  // The connection may carry another request only if the body went out complete.
  bool reusable() const { return started_ && !failed_ && body_sent_ == declared_; }
  int status() const { return status_; }
  std::uint64_t body_sent() const { return body_sent_; }
  const std::string& cache_result() const { return cache_result_; }
  const std::string& tier() const { return tier_; }

 private:
  template <class Buffers>
  net::awaitable<bool> write(const Buffers& buffers, std::uint64_t body_bytes) {
    start_write();
    auto [ec, n] = co_await net::async_write(stream_, buffers, use_tuple);
    (void)n;
    co_return finish_write(ec, body_bytes);
  }

  void start_write() { state_.deadline = clock::now() + write_timeout_; }

  // `head` (may be empty) and then `range` by sendfile(2), on the socket as Asio keeps it:
  // non-blocking since the request was read from it. The head is sent with MSG_MORE, so it
  // leaves in the first packet of the file's bytes instead of one of its own. The whole call has
  // one write deadline, as one write_body() has; the watchdog cancels the wait for room.
  net::awaitable<bool> send_from_file(std::string_view head, file_range range) {
    auto& socket = beast::get_lowest_layer(stream_).socket();
    const int out = socket.native_handle();
    start_write();
    while (!head.empty()) {
      const int more = range.length > 0 ? MSG_MORE : 0;
      const auto n = ::send(out, head.data(), head.size(), MSG_NOSIGNAL | MSG_DONTWAIT | more);
      if (n >= 0) {
        head.remove_prefix(static_cast<std::size_t>(n));
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!co_await writable(socket)) co_return finish_write(net::error::operation_aborted, 0);
      } else if (errno != EINTR) {
        co_return finish_write(boost::system::error_code(errno, boost::system::system_category()),
                               0);
      }
    }
    auto offset = static_cast<off_t>(range.offset);
    std::uint64_t left = range.length;
    // Linux sends at most this much per call.
    constexpr std::uint64_t most_per_call = 0x7ffff000;
    while (left > 0) {
      const auto n = ::sendfile(out, range.fd, &offset,
                                static_cast<std::size_t>(std::min(left, most_per_call)));
      if (n > 0) {
        left -= static_cast<std::uint64_t>(n);
        body_sent_ += static_cast<std::uint64_t>(n);
      } else if (n == 0) {
        // The file ends before the range does: the response cannot be completed.
        co_return finish_write(net::error::eof, 0);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!co_await writable(socket)) co_return finish_write(net::error::operation_aborted, 0);
      } else if (errno != EINTR) {
        co_return finish_write(boost::system::error_code(errno, boost::system::system_category()),
                               0);
      }
    }
    co_return finish_write({}, 0);
  }

  static net::awaitable<bool> writable(tcp::socket& socket) {
    auto [ec] = co_await socket.async_wait(tcp::socket::wait_write, use_tuple);
    co_return !ec;
  }

  // Whether the write went out; the body bytes it carried count as sent only then.
  bool finish_write(const boost::system::error_code& ec, std::uint64_t body_bytes) {
    state_.deadline = no_deadline;
    if (ec) {
      failed_ = true;
      return false;
    }
    body_sent_ += body_bytes;
    return true;
  }

  Stream& stream_;
  connection_state& state_;
  std::chrono::milliseconds write_timeout_;
  bool head_only_;
  bool keep_alive_;
  bool http10_;
  bool started_ = false;
  bool failed_ = false;
  int status_ = 0;
  std::uint64_t declared_ = 0;
  std::uint64_t body_sent_ = 0;
  std::string cache_result_ = "-";
  std::string tier_ = "-";
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& io, server_options options, handler& fallback)
      : io_(io),
        options_(std::move(options)),
        fallback_(fallback),
        acceptor_(io),
        watchdog_tick_(tick_for(options_)) {}

  // A quarter of the shortest deadline, within [10 ms, 1 s].
  static std::chrono::milliseconds tick_for(const server_options& options) {
    auto shortest =
        std::min({options.request_timeout, options.idle_timeout, options.write_timeout});
    return std::clamp(shortest / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  }

  net::io_context& io_;
  server_options options_;
  handler& fallback_;
  std::shared_ptr<spdlog::logger> access_log_;
  // Looked up by the request's path as it is: every request asks, and a key built per request
  // was a heap allocation for any path longer than 15 bytes.
  struct path_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view path) const {
      return std::hash<std::string_view>{}(path);
    }
  };
  std::unordered_map<std::string, handler*, path_hash, std::equal_to<>> routes_;
  std::size_t longest_route_ = 0;
  std::unordered_map<std::string, std::uint64_t> body_limits_;  // path -> max body bytes
  tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
  mutable std::mutex connections_mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<connection_state>> connections_;
  std::uint64_t next_connection_id_ = 0;
  std::chrono::milliseconds watchdog_tick_;

  handler& route_for(std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    // Module paths are longer than any route: no hash of the whole target for them.
    if (path.size() > longest_route_) return fallback_;
    if (auto it = routes_.find(path); it != routes_.end()) return *it->second;
    return fallback_;
  }

  net::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      // Accepted on the listening context so no pending accept ever refers to another context
      // (their teardown order would matter); the socket then moves to its connection's context.
      auto [ec, socket] =
          co_await acceptor_.async_accept(net::any_io_executor(net::make_strand(io_)), use_tuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        // Out of descriptors and similar: back off briefly instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        net::steady_timer pause(io_, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (!options_.connection_executors.empty()) {
        auto rehomed = move_to_connection_executor(std::move(socket));
        if (!rehomed) continue;
        socket = std::move(*rehomed);
      }
      // Counted here, in the same step as the check, not when the connection's coroutine
      // starts on its own executor: otherwise every connection accepted before the first of
      // them started would pass the check.
      auto registered = register_connection(socket.get_executor());
      if (!registered) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto executor = socket.get_executor();
      net::co_spawn(executor,
                    serve_connection(std::move(socket), registered->first, registered->second),
                    log_if_thrown("a connection"));
    }
  }

  // A slot for a new connection, or nullopt when max_connections are open.
  std::optional<std::pair<std::uint64_t, std::shared_ptr<connection_state>>> register_connection(
      net::any_io_executor executor) {
    std::lock_guard lock(connections_mutex_);
    if (connections_.size() >= options_.max_connections) return std::nullopt;
    const std::uint64_t id = next_connection_id_++;
    auto state = std::make_shared<connection_state>(std::move(executor));
    connections_.emplace(id, state);
    return std::make_pair(id, std::move(state));
  }

  // Takes a connection off the books however its coroutine ends, exceptions included; a
  // connection left listed would hold a drain for its whole timeout and point it at a stream
  // that no longer exists.
  class registration {
   public:
    registration(impl& server, std::uint64_t id, std::shared_ptr<connection_state> state,
                 beast::tcp_stream& stream)
        : server_(server), id_(id), state_(std::move(state)) {
      std::lock_guard lock(server_.connections_mutex_);
      state_->stream = &stream;
    }
    ~registration() {
      // The watchdog is not touched here: when the io_context is torn down with the
      // connection parked, its frame may be gone already. It ends at its next tick.
      std::lock_guard lock(server_.connections_mutex_);
      state_->stream = nullptr;
      server_.connections_.erase(id_);
    }
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;

   private:
    impl& server_;
    std::uint64_t id_;
    std::shared_ptr<connection_state> state_;
  };

  // Round-robin over the connection executors; only the accept loop calls this.
  std::optional<tcp::socket> move_to_connection_executor(tcp::socket accepted) {
    const auto& executors = options_.connection_executors;
    const auto& executor = executors[next_executor_++ % executors.size()];
    boost::system::error_code ec;
    auto protocol = accepted.local_endpoint(ec).protocol();
    if (ec) return std::nullopt;  // the peer is already gone
    auto descriptor = accepted.release(ec);
    if (ec) {
      spdlog::warn("cannot hand a connection to its I/O thread: {}", ec.message());
      return std::nullopt;
    }
    tcp::socket socket(executor);
    socket.assign(protocol, descriptor, ec);
    if (ec) {
      ::close(descriptor);
      spdlog::warn("cannot hand a connection to its I/O thread: {}", ec.message());
      return std::nullopt;
    }
    return socket;
  }
  std::size_t next_executor_ = 0;

  std::size_t connection_count() const {
    std::lock_guard lock(connections_mutex_);
    return connections_.size();
  }

  net::awaitable<void> serve_connection(tcp::socket socket, std::uint64_t id,
                                        std::shared_ptr<connection_state> state) {
    auto self = shared_from_this();
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (!options_.tls) {
      beast::tcp_stream stream(std::move(socket));
      co_await serve_stream(stream, id, std::move(state));
      co_return;
    }
    // Taken once, here: a reload while this connection is open changes only later ones.
    auto context = options_.tls->context();
    tls_stream stream(std::move(socket), *context);
    co_await serve_stream(stream, id, std::move(state));
  }

  template <class Stream>
  net::awaitable<void> serve_stream(Stream& stream, std::uint64_t id,
                                    std::shared_ptr<connection_state> state) {
    constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;
    beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
    // Declared after the stream, so it is gone from the books before the stream is destroyed.
    registration registered(*this, id, state, tcp_layer);
    net::co_spawn(tcp_layer.get_executor(), watch_deadline(state),
                  log_if_thrown("a connection's deadline watchdog"));
    bool secured = true;
    if constexpr (is_tls) secured = co_await handshake(stream, *state);
    if (secured) co_await exchange(stream, *state);
    if constexpr (is_tls) {
      if (secured) co_await close_notify(stream, *state);
    }
    boost::system::error_code ignored;
    tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_layer.close();
    if (state->watchdog) state->watchdog->cancel();
  }

  // Requests and responses until the client, a deadline, an error or a drain ends the connection.
  template <class Stream>
  net::awaitable<void> exchange(Stream& stream, connection_state& state) {
    // Bounded: a pipelining client can queue at most this much unparsed input with us.
    beast::flat_buffer buffer(options_.max_header_bytes + 8192);
    // Storage the fields' allocator hands out, written before it is read; zeroing it would cost
    // every connection for nothing.
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
    alignas(std::max_align_t) std::array<std::byte, 1024> fields_block;
    bool first = true;
    while (!draining_.load()) {
      // Declared before the parser, so it outlives the fields it holds; a header past the
      // arena's first block takes more from the heap, given back when the request is done.
      std::pmr::monotonic_buffer_resource arena(fields_block.data(), fields_block.size());
      request_parser<http::empty_body> parser(std::piecewise_construct, std::make_tuple(),
                                              std::make_tuple(fields_allocator(&arena)));
      parser.header_limit(options_.max_header_bytes);
      // The parser would refuse a declared length above its default limit (1 MiB) while
      // reading the header; answer_with_body applies the route's own limit instead.
      parser.body_limit(boost::none);
      state.deadline = clock::now() + (first ? options_.request_timeout : options_.idle_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
      (void)n;
      state.deadline = no_deadline;
      if (ec) {
        co_await answer_read_error(stream, state, ec);
        break;
      }
      state.busy.store(true);
      bool keep = false;
      if (parser.is_done()) {
        keep = co_await answer(stream, state, parser.get(), nullptr);
      } else {
        keep = co_await answer_with_body(stream, buffer, state, std::move(parser));
      }
      state.busy.store(false);
      if (!keep) break;
      first = false;
    }
  }

  // A request with a body: only a body route's POST reads it; anything else is refused before
  // a byte of it is read, and the connection closes (its framing is lost).
  template <class Stream>
  net::awaitable<bool> answer_with_body(Stream& stream, beast::flat_buffer& buffer,
                                        connection_state& state,
                                        request_parser<http::empty_body>&& header) {
    const auto target = header.get().target();
    const auto limit = body_limits_.find(std::string(target.substr(0, target.find('?'))));
    if (limit == body_limits_.end() || header.get().method() != http::verb::post) {
      co_await answer_unparsed(
          stream, state, 400,
          "bad request: " + http::make_error_code(http::error::unexpected_body).message() + "\n");
      co_return false;
    }
    if (auto length = header.content_length(); length && *length > limit->second) {
      co_await answer_unparsed(
          stream, state, 413,
          "request body too large: at most " + std::to_string(limit->second) + " bytes\n");
      co_return false;
    }
    parsed_body<Stream> body(stream, buffer, std::move(header), limit->second, state,
                             options_.request_timeout);
    const bool keep = co_await answer(stream, state, body.request(), &body);
    co_return co_await body.finish() && keep;
  }

  // The handshake shares the first request's deadline: a client that connects and then stalls
  // (or speaks too slowly) costs no more than one that sends no headers.
  net::awaitable<bool> handshake(tls_stream& stream, connection_state& state) {
    if (draining_.load()) co_return false;
    state.deadline = clock::now() + options_.request_timeout;
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, use_tuple);
    state.deadline = no_deadline;
    if (!ec) co_return true;
    if (ec.category() == net::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
      // A client that sent plain HTTP to the TLS port (an http:// GOPROXY) is told so in words
      // the go command prints, instead of seeing the connection drop.
      co_await answer_unparsed(beast::get_lowest_layer(stream), state, 400,
                               "this server speaks HTTPS only: use an https:// URL\n");
    } else {
      spdlog::debug("tls handshake failed: {}", ec.message());
    }
    co_return false;
  }

  // Tells the client the stream ends here, so it can tell a complete response from a cut one.
  // The wait for its answer is short: it only confirms, and a client that never answers must
  // not hold a drain.
  net::awaitable<void> close_notify(tls_stream& stream, connection_state& state) {
    state.deadline = clock::now() + std::min(options_.write_timeout, close_notify_wait);
    (void)co_await stream.async_shutdown(use_tuple);
    state.deadline = no_deadline;
  }

  // Enforces the connection's phase deadlines by looking at them on a coarse tick, instead of
  // arming and cancelling a timer around every read and write: on a keep-alive connection that
  // was two timerfd system calls per request (docs/benchmarks.md). A deadline is met late by
  // at most one tick.
  net::awaitable<void> watch_deadline(std::shared_ptr<connection_state> state) {
    net::steady_timer timer(co_await net::this_coro::executor);
    state->watchdog = &timer;
    while (state->stream) {
      if (clock::now() >= state->deadline) {
        // The pending read or write fails now, and so does any later one.
        boost::system::error_code ignored;
        state->stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        state->stream->cancel();
        break;
      }
      timer.expires_after(watchdog_tick_);
      (void)co_await timer.async_wait(use_tuple);
    }
    state->watchdog = nullptr;
  }

  template <class Stream>
  net::awaitable<void> answer_read_error(Stream& stream, connection_state& state,
                                         const boost::system::error_code& ec) {
    int status = 0;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      status = 431;
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      status = 400;
    }
    if (status == 0) co_return;  // closed, reset, timed out or drained: nothing to answer
    const std::string body =
        status == 431 ? "request header fields too large\n" : "bad request: " + ec.message() + "\n";
    co_await answer_unparsed(stream, state, status, body);
  }

  // A plain-text error to a request no handler saw, after which the connection closes. Its
  // access line has the fields of every other one, with "-" for what was never read.
  template <class Stream>
  net::awaitable<void> answer_unparsed(Stream& stream, connection_state& state, int status,
                                       std::string_view body) {
    response_head head;
    head.status = status;
    head.content_type = "text/plain; charset=utf-8";
    head.cache_control = "no-store";
    connection_writer<Stream> writer(stream, state, options_.write_timeout, false, false, false);
    (void)co_await writer.send(head, body);
    if (options_.on_response) options_.on_response(status, writer.body_sent());
    if (options_.access_log) {
      access_batch::of_this_thread(access_log_)
          .add(beast::get_lowest_layer(stream).get_executor(), [&](std::string& out) {
            out.append("- - ");
            append_number(out, static_cast<std::uint64_t>(status));
            out.append(1, ' ');
            append_number(out, body.size());
            out.append(" 0 - - -");
          });
    }
  }

  // Returns whether the connection may carry another request.
  template <class Stream, class Body>
  net::awaitable<bool> answer(Stream& stream, connection_state& state,
                              const http::request<Body, request_fields>& request,
                              request_body* body) {
    auto started = std::chrono::steady_clock::now();
    bool is_head = request.method() == http::verb::head;
    bool keep_alive = request.keep_alive() && !draining_.load();
    connection_writer<Stream> writer(stream, state, options_.write_timeout, is_head, keep_alive,
                                     request.version() == 10);
    request_view view{request.method_string(), request.target(), is_head, body};
    // Who the authorizer says the client is; none without an authorizer (logged as "-").
    std::optional<std::string> client;
    bool refused = false;
    if (options_.authorize) {
      client = options_.authorize(view.target.substr(0, view.target.find('?')),
                                  request[http::field::authorization]);
      refused = !client;
    }
    if (refused) {
      response_head head;
      head.status = 401;
      head.content_type = "text/plain; charset=utf-8";
      head.cache_control = "no-store";
      head.extra_headers.emplace_back("WWW-Authenticate", "Basic realm=\"gomodproxy\"");
      (void)co_await writer.send(head,
                                 "unauthorized: this proxy needs a valid token (Basic auth, as "
                                 "the go command sends it from .netrc, or a Bearer token)\n");
    } else if (const bool post = request.method() == http::verb::post;
               request.method() != http::verb::get && !is_head &&
               !(post && view.target.starts_with("/admin/"))) {
      // POST only for the admin endpoints, which change state; their arguments travel in the
      // query or a body route's body, and their handlers check the method.
      response_head head;
      head.status = 405;
      head.content_type = "text/plain; charset=utf-8";
      head.cache_control = "no-store";
      head.extra_headers.emplace_back("Allow", "GET, HEAD");
      (void)co_await writer.send(head, "method not allowed\n");
    } else if (post && &route_for(view.target) == &fallback_) {
      // No admin endpoint has this path (there are none without an admin token). The fallback
      // answers GET and HEAD only, and would answer a GET of the path 404: so is the POST.
      response_head head;
      head.status = 404;
      head.content_type = "text/plain; charset=utf-8";
      head.cache_control = "no-store";
      (void)co_await writer.send(head, "not found: no such endpoint\n");
    } else {
      bool threw = false;
      try {
        co_await route_for(view.target).handle(view, writer);
      } catch (const std::exception& error) {
        // A bug in a handler costs this request and connection, not the server.
        spdlog::error("{} {}: handler failed: {}", view.method, view.target, error.what());
        threw = true;
      }
      // A response cut short by the exception has no honest end; keeping the connection would
      // frame the next response inside this one's body.
      if (threw) {
        keep_alive = false;
        writer.close_after_response();
      }
      if (!writer.started()) {
        response_head head;
        head.status = 500;
        head.content_type = "text/plain; charset=utf-8";
        head.cache_control = "no-store";
        (void)co_await writer.send(head,
                                   threw ? "internal error\n" : "internal error: no response\n");
      }
    }
    if (options_.on_response) options_.on_response(writer.status(), writer.body_sent());
    if (options_.access_log) {
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
      access_batch::of_this_thread(access_log_)
          .add(beast::get_lowest_layer(stream).get_executor(), [&](std::string& out) {
            format_access_line(out, view.method, view.target, writer.status(), writer.body_sent(),
                               micros, writer.cache_result(), writer.tier(),
                               client ? *client : "-");
          });
    }
    co_return keep_alive&& writer.reusable();
  }
};

net::awaitable<bool> response_writer::send_head_with_file(const response_head& head,
                                                          std::uint64_t content_length,
                                                          file_range first) {
  if (head_only()) co_return co_await send_head(head, content_length);
  co_return co_await send_file_copied(*this, &head, content_length, first);
}

net::awaitable<bool> response_writer::write_file(file_range range) {
  if (head_only()) co_return true;
  co_return co_await send_file_copied(*this, nullptr, 0, range);
}

http_server::http_server(net::io_context& io, server_options options, handler& fallback)
    : impl_(std::make_shared<impl>(io, std::move(options), fallback)) {
  // sendfile(2) has no MSG_NOSIGNAL: a client gone mid-file must cost its send an EPIPE, not the
  // process its life. Children are unaffected: the go processes start with every signal at its
  // default (direct/go_process.cpp).
  std::signal(SIGPIPE, SIG_IGN);
  impl_->access_log_ = spdlog::get("access");
  if (!impl_->access_log_) {
    impl_->access_log_ = spdlog::default_logger()->clone("access");
    spdlog::register_logger(impl_->access_log_);
  }
  // Each line carries its own time stamp (access_batch): a message is a batch of lines.
  impl_->access_log_->set_pattern("%v");
}

http_server::~http_server() {
  boost::system::error_code ignored;
  impl_->acceptor_.close(ignored);
}

void http_server::add_route(std::string path, handler& route) {
  impl_->longest_route_ = std::max(impl_->longest_route_, path.size());
  impl_->routes_[std::move(path)] = &route;
}

void http_server::add_body_route(std::string path, handler& route, std::uint64_t max_body_bytes) {
  impl_->body_limits_[path] = max_body_bytes;
  impl_->longest_route_ = std::max(impl_->longest_route_, path.size());
  impl_->routes_[std::move(path)] = &route;
}

boost::system::result<std::uint16_t> http_server::listen() {
  boost::system::error_code ec;
  auto address = net::ip::make_address(impl_->options_.host, ec);
  if (ec) return ec;
  tcp::endpoint endpoint(address, impl_->options_.port);
  auto& acceptor = impl_->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return ec;
  acceptor.bind(endpoint, ec);
  if (ec) return ec;
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  return acceptor.local_endpoint().port();
}

void http_server::start() {
  net::co_spawn(impl_->acceptor_.get_executor(), impl_->accept_loop(),
                log_if_thrown("the accept loop"));
}

net::awaitable<void> http_server::drain(std::chrono::milliseconds timeout) {
  auto self = impl_;
  self->draining_.store(true);
  net::post(self->acceptor_.get_executor(), [self] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
  auto close_idle = [self](bool force) {
    std::lock_guard lock(self->connections_mutex_);
    for (auto& [id, state] : self->connections_) {
      if (!state->stream) continue;
      // Copied by an init-capture: clang 14 (the fuzz build) cannot capture a structured binding.
      net::post(state->executor, [state = state, force] {
        if (state->stream && (force || !state->busy.load())) state->stream->cancel();
      });
    }
  };
  close_idle(false);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  net::steady_timer tick(co_await net::this_coro::executor);
  while (self->connection_count() > 0 && std::chrono::steady_clock::now() < deadline) {
    // Connections that finished a response see draining_ and close by themselves; idle ones
    // that raced the first pass are closed here.
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(use_tuple);
    close_idle(false);
  }
  if (self->connection_count() > 0) close_idle(true);
}

std::size_t http_server::connections() const { return impl_->connection_count(); }

}  // namespace gomodproxy::server
