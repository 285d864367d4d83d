#include "cache_admin/standalone_resolver.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <string_view>
#include <thread>

namespace gomodproxy::cache_admin {
namespace {

namespace net = boost::asio;

// Captures one answer of the resolver in memory: only tiles and lookups, a few KiB each, are
// asked.
class captured_answer final : public server::response_writer {
 public:
  net::awaitable<bool> send(const server::response_head& head, std::string_view body) override {
    status_ = head.status;
    body_.assign(body);
    co_return true;
  }
  net::awaitable<bool> send_head(const server::response_head& head, std::uint64_t) override {
    status_ = head.status;
    co_return true;
  }
  net::awaitable<bool> send_head_with(const server::response_head& head, std::uint64_t,
                                      std::string_view first_chunk) override {
    status_ = head.status;
    body_.append(first_chunk);
    co_return body_.size() <= (1u << 20);
  }
  net::awaitable<bool> write_body(std::string_view chunk) override {
    body_.append(chunk);
    co_return body_.size() <= (1u << 20);
  }
  bool head_only() const override { return false; }
  void note(std::string_view, std::string_view) override {}

  int status_ = 0;
  std::string body_;
};

}  // namespace

struct standalone_resolver::impl {
  impl(const resolver::resolver_options& options, const upstream::client_options& client_options,
       cache::cache_store& store)
      : guard(net::make_work_guard(work)),
        client(work.get_executor(), client_options),
        resolver(options, store, upstream::http_tiers(client), work.get_executor()),
        thread([this] { work.run(); }) {}

  ~impl() {
    guard.reset();
    work.stop();
    thread.join();
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  net::io_context work{1};
  net::executor_work_guard<net::io_context::executor_type> guard;
  upstream::http_client client;
  resolver::resolver resolver;
  std::thread thread;  // last: started once everything it runs exists
};

standalone_resolver::standalone_resolver(const resolver::resolver_options& options,
                                         const upstream::client_options& client_options,
                                         cache::cache_store& store)
    : impl_(std::make_unique<impl>(options, client_options, store)) {}

standalone_resolver::~standalone_resolver() = default;

resolver::resolver::database_answer standalone_resolver::database_hash(
    const std::string& module_path, const std::string& version, bool go_mod) {
  return net::co_spawn(impl_->work, impl_->resolver.database_hash(module_path, version, go_mod),
                       net::use_future)
      .get();
}

std::optional<std::string> standalone_resolver::get(const std::string& target) {
  auto answer = std::make_shared<captured_answer>();
  auto path = std::make_shared<std::string>(target);
  net::co_spawn(
      impl_->work,
      [this, answer, path]() -> net::awaitable<void> {
        server::request_view view{"GET", *path, false};
        co_await impl_->resolver.handle(view, *answer);
      },
      net::use_future)
      .get();
  if (answer->status_ != 200) return std::nullopt;
  return std::move(answer->body_);
}

}  // namespace gomodproxy::cache_admin
