// The threads of `gomodproxy serve`, their executors, and the order they stop in.
//
// The main thread's context accepts, catches signals and drains. Each I/O thread runs a
// single-threaded context of its own that owns the connections handed to it. Three pools keep
// slow work off them: fills (upstream sockets, tier walks, cache writes), checks (hashing, zip
// checks, admin work) and reads (large cache reads). What runs where is in docs/architecture.md,
// "Threads and wiring".
//
// Stopping is ordered, and the owner takes part in it, because what the pools and connections
// hold refers to objects the owner declares after this one (the server, the resolver):
//   run()               until the drain stops the main context;
//   stop_connections()  connections the drain cancelled finish (briefly), their threads end;
//   ...                 the owner stops what must go while the pools' contexts still exist;
//   stop_workers()      the pools stop; coroutines parked on checks, reads and the connection
//                       contexts are destroyed now, while the server and resolver are alive.
// The fills context itself goes with this object, as the last of them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace gomodproxy {

struct thread_counts {
  int io = 1;      ///< connection threads, each with a context of its own
  int fills = 2;   ///< upstream I/O, tier walks and the cache writes of fills
  int checks = 1;  ///< CPU-bound checks and hashing, admin work
  int reads = 2;   ///< reads of large entries for streaming
};

class worker_pool;

class serve_runtime {
 public:
  explicit serve_runtime(const thread_counts& counts);
  /// Stops whatever is still running, in the order above.
  ~serve_runtime();
  serve_runtime(const serve_runtime&) = delete;
  serve_runtime& operator=(const serve_runtime&) = delete;

  /// Runs on the thread that calls run(): the listener, signals and the drain.
  boost::asio::io_context& main_context() { return main_; }
  std::vector<boost::asio::any_io_executor> connection_executors() const;
  boost::asio::any_io_executor fills() const;
  boost::asio::any_io_executor checks() const;
  boost::asio::any_io_executor reads() const;

  /// Starts the pools' threads (fills and checks at a lower priority than serving) and the
  /// connection threads.
  void start();
  /// Runs the main context on the calling thread until something stops it.
  void run();
  /// Lets connections still finishing (a drain cancelled them) end, waiting at most 2 s, then
  /// stops their contexts and joins their threads.
  void stop_connections();
  /// Stops the pools and destroys what is parked on checks, reads and the connection contexts.
  void stop_workers();

 private:
  boost::asio::io_context main_{1};
  std::vector<std::unique_ptr<boost::asio::io_context>> connection_contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      connection_work_;
  std::unique_ptr<worker_pool> fills_;
  std::unique_ptr<worker_pool> checks_;
  std::unique_ptr<worker_pool> reads_;
  std::vector<std::thread> connection_threads_;
  bool started_ = false;
  bool connections_stopped_ = false;
  bool workers_stopped_ = false;
};

}  // namespace gomodproxy
