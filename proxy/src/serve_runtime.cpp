#include "serve_runtime.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace gomodproxy {
namespace net = boost::asio;

namespace {

// Names the calling thread, so `top -H` and /proc/<pid>/task show which pool spends the CPU.
void name_this_thread(const char* name) {
#ifdef __linux__
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

// How long stop_connections() lets connections a drain cancelled finish: one waiting on a slow
// fill is not waited for longer.
constexpr std::chrono::seconds connection_settle_time{2};

}  // namespace

// Threads running one io_context, for work kept off the connections' threads.
class worker_pool {
 public:
  explicit worker_pool(int threads)
      : context_(threads), guard_(net::make_work_guard(context_)), size_(threads) {}
  ~worker_pool() { stop(); }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  net::any_io_executor executor() { return context_.get_executor(); }

  // `yields_to_serving`: the threads run at a lower scheduling priority (Linux threads each have
  // their own nice value), so on a busy machine the kernel runs the connections' threads first
  // and a long hash waits instead of a warm request.
  void start(const char* name, bool yields_to_serving) {
    for (int i = 0; i < size_; ++i) {
      threads_.emplace_back([this, name, yields_to_serving] {
        name_this_thread(name);
#ifdef __linux__
        if (yields_to_serving) {
          (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), background_niceness);
        }
#else
        (void)yields_to_serving;
#endif
        context_.run();
      });
    }
  }
  void stop() {
    guard_.reset();
    context_.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  static constexpr int background_niceness = 10;
  net::io_context context_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  int size_;
  std::vector<std::thread> threads_;
};

serve_runtime::serve_runtime(const thread_counts& counts)
    : fills_(std::make_unique<worker_pool>(counts.fills)),
      checks_(std::make_unique<worker_pool>(counts.checks)),
      reads_(std::make_unique<worker_pool>(counts.reads)) {
  for (int i = 0; i < counts.io; ++i) {
    connection_contexts_.push_back(std::make_unique<net::io_context>(1));
    connection_work_.push_back(net::make_work_guard(*connection_contexts_.back()));
  }
}

serve_runtime::~serve_runtime() {
  main_.stop();
  stop_connections();
  stop_workers();
}

std::vector<net::any_io_executor> serve_runtime::connection_executors() const {
  std::vector<net::any_io_executor> executors;
  for (const auto& context : connection_contexts_) executors.emplace_back(context->get_executor());
  return executors;
}

net::any_io_executor serve_runtime::fills() const { return fills_->executor(); }
net::any_io_executor serve_runtime::checks() const { return checks_->executor(); }
net::any_io_executor serve_runtime::reads() const { return reads_->executor(); }

void serve_runtime::start() {
  started_ = true;
  fills_->start("gmp-fills", true);
  checks_->start("gmp-checks", true);
  reads_->start("gmp-reads", false);
  for (auto& context : connection_contexts_) {
    connection_threads_.emplace_back([&context = *context] {
      name_this_thread("gmp-io");
      context.run();
    });
  }
}

void serve_runtime::run() { main_.run(); }

void serve_runtime::stop_connections() {
  if (connections_stopped_) return;
  connections_stopped_ = true;
  // A context runs out of work once its connections have ended.
  connection_work_.clear();
  if (started_) {
    const auto settle_until = std::chrono::steady_clock::now() + connection_settle_time;
    auto all_stopped = [this] {
      return std::ranges::all_of(connection_contexts_,
                                 [](const auto& context) { return context->stopped(); });
    };
    while (!all_stopped() && std::chrono::steady_clock::now() < settle_until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  for (auto& context : connection_contexts_) context->stop();
  for (auto& thread : connection_threads_) thread.join();
  connection_threads_.clear();
}

void serve_runtime::stop_workers() {
  if (workers_stopped_) return;
  workers_stopped_ = true;
  // Fills in progress are abandoned: their entries were never committed, so they stay invisible.
  reads_->stop();
  checks_->stop();
  fills_->stop();
  // A fill or stream parked on a check or a read is destroyed here, with what it refers to
  // (its fills or connection context among them) alive.
  reads_.reset();
  checks_.reset();
  // Coroutines still parked on a connection context are destroyed with it, here, while nothing
  // runs and the server and resolver they refer to are still alive.
  connection_contexts_.clear();
}

}  // namespace gomodproxy
