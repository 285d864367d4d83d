// Singleflight: one fill per key however many requests ask. The fill runs detached on the work
// executor; every requester, the first included, waits for the same outcome, so a requester
// hanging up cancels nothing.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace gomodproxy::resolver {

template <class Outcome>
class flight_table final {
 public:
  struct joined {
    Outcome outcome;
    bool shared = false;     ///< true when another request started the fill
    bool abandoned = false;  ///< the table was closed first; `outcome` is default
  };

  explicit flight_table(boost::asio::any_io_executor work_executor)
      : work_executor_(std::move(work_executor)) {}

  /// Waits for the outcome of the fill for `key`, starting `make_fill()` (returning a lazy
  /// awaitable<Outcome> that owns what it needs, run on the work executor) when no fill for it
  /// is in progress. make_fill is called at most once, before this returns to its caller.
  template <class MakeFill>
  boost::asio::awaitable<joined> join(const std::string& key, MakeFill make_fill) {
    std::shared_ptr<flight> current;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      if (closed_) co_return joined{Outcome{}, false, true};
      auto [it, inserted] = flights_.try_emplace(key);
      if (inserted) it->second = std::make_shared<flight>(work_executor_);
      current = it->second;
      leader = inserted;
    }
    if (leader) {
      // The awaitable, not the callable, crosses into the detached coroutine: GCC 12 destroys
      // by-value lambda parameters of coroutines twice.
      boost::asio::co_spawn(work_executor_, run(key, current, make_fill()), boost::asio::detached);
    }
    // Closing the channel is the broadcast: every pending and later receive completes.
    (void)co_await current->done.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
    std::lock_guard lock(current->mutex);
    co_return joined{current->outcome, !leader, current->abandoned};
  }

  /// Releases every waiter now with `abandoned` set, and every later join at once: at shutdown
  /// no request may stay parked on a fill that could take minutes. The fills themselves go on.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [key, current] : flights_) {
      {
        std::lock_guard flight_lock(current->mutex);
        current->abandoned = true;
      }
      current->done.close();
    }
    flights_.clear();
  }

  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  struct flight {
    explicit flight(boost::asio::any_io_executor executor) : done(std::move(executor), 0) {}
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
    std::mutex mutex;
    Outcome outcome{};
    bool abandoned = false;
  };

  boost::asio::awaitable<void> run(std::string key, std::shared_ptr<flight> current,
                                   boost::asio::awaitable<Outcome> fill) {
    Outcome outcome = co_await std::move(fill);
    {
      // Unlisted before the outcome is published: a request arriving now finds the committed
      // cache entry, or starts a fresh fill after a failure.
      std::lock_guard lock(mutex_);
      if (auto it = flights_.find(key); it != flights_.end() && it->second == current) {
        flights_.erase(it);
      }
    }
    {
      std::lock_guard lock(current->mutex);
      if (current->abandoned) co_return;
      current->outcome = std::move(outcome);
    }
    current->done.close();
  }

  boost::asio::any_io_executor work_executor_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<flight>> flights_;
  bool closed_ = false;
};

}  // namespace gomodproxy::resolver
