// Singleflight: one fill per key however many requests ask. The fill runs on its own on the work
// executor; every requester, the first included, waits for the same outcome, so a requester
// hanging up cancels nothing, and a fill that throws still releases them.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/log_if_thrown.hpp"

namespace gomodproxy::resolver {

template <class Outcome>
class flight_table final {
 public:
  struct joined {
    Outcome outcome;
    bool shared = false;     ///< true when another request started the fill
    bool abandoned = false;  ///< the table was closed first; `outcome` is default
    /// What the fill threw instead of producing an outcome; `outcome` is then default.
    std::optional<std::string> thrown;
    /// The caller's `wait_until` passed first; `outcome` is default and the fill goes on.
    bool gave_up = false;
  };

  explicit flight_table(boost::asio::any_io_executor work_executor)
      : work_executor_(std::move(work_executor)) {}

  /// Waits for the outcome of the fill for `key`, starting `make_fill()` (returning a lazy
  /// awaitable<Outcome> that owns what it needs, run on the work executor) when no fill for it
  /// is in progress. make_fill is called at most once, before this returns to its caller. With
  /// `wait_until`, stops waiting then (`gave_up`), leaving the fill to finish for others.
  template <class MakeFill>
  boost::asio::awaitable<joined> join(
      const std::string& key, MakeFill make_fill,
      std::optional<std::chrono::steady_clock::time_point> wait_until = std::nullopt) {
    std::shared_ptr<flight> current;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      if (closed_) co_return joined{Outcome{}, false, true, std::nullopt, false};
      auto [it, inserted] = flights_.try_emplace(key);
      if (inserted) it->second = std::make_shared<flight>(work_executor_);
      current = it->second;
      leader = inserted;
    }
    if (leader) {
      // The awaitable, not the callable, crosses into the detached coroutine: GCC 12 destroys
      // by-value lambda parameters of coroutines twice.
      boost::asio::co_spawn(work_executor_, run(key, current, make_fill()),
                            log_if_thrown("a fill's bookkeeping"));
    }
    // Closing the channel is the broadcast: every pending and later receive completes.
    if (wait_until) {
      // Whichever of the fill's end and the deadline comes first is sent here. (Cancelling a
      // pending receive on the flight's channel through a parallel group did not complete it
      // on Boost 1.81; a receive left pending instead ends harmlessly when the fill does.)
      auto first = std::make_shared<wake_channel>(co_await boost::asio::this_coro::executor, 2);
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, *wait_until);
      timer.async_wait([first](const boost::system::error_code& ec) {
        if (!ec) (void)first->try_send(boost::system::error_code{}, true);
      });
      current->done.async_receive([first](const boost::system::error_code&) {
        (void)first->try_send(boost::system::error_code{}, false);
      });
      auto [ec, timed_out] =
          co_await first->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (!ec && timed_out) co_return joined{Outcome{}, !leader, false, std::nullopt, true};
    } else {
      (void)co_await current->done.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    std::lock_guard lock(current->mutex);
    co_return joined{current->outcome, !leader, current->abandoned, current->thrown, false};
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
  using wake_channel =
      boost::asio::experimental::concurrent_channel<void(boost::system::error_code, bool)>;

  struct flight {
    explicit flight(const boost::asio::any_io_executor& executor) : done(executor, 0) {}
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
    std::mutex mutex;
    Outcome outcome{};
    bool abandoned = false;
    std::optional<std::string> thrown;
  };

  boost::asio::awaitable<void> run(std::string key, std::shared_ptr<flight> current,
                                   boost::asio::awaitable<Outcome> fill) {
    Outcome outcome{};
    std::optional<std::string> thrown;
    // A fill that throws is a bug, but its waiters must still be answered and its key freed,
    // or every later request for the key would wait on it until restart.
    try {
      outcome = co_await std::move(fill);
    } catch (const std::exception& error) {
      thrown = error.what();
    } catch (...) {
      thrown = "unknown exception";
    }
    if (thrown) spdlog::error("fill of {} failed: {}", key, *thrown);
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
      current->thrown = std::move(thrown);
    }
    current->done.close();
  }

  boost::asio::any_io_executor work_executor_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<flight>> flights_;
  bool closed_ = false;
};

}  // namespace gomodproxy::resolver
