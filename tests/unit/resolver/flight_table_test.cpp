#include "resolver/flight_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gomodproxy::resolver {
namespace {
namespace net = boost::asio;

// A gate the test opens: fills wait on it, so every joiner is known to be waiting before the
// fill can finish (no sleeps decide the outcome).
struct gate {
  std::mutex mutex;
  std::condition_variable opened_cv;
  bool opened = false;
  void open() {
    std::lock_guard lock(mutex);
    opened = true;
    opened_cv.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex);
    opened_cv.wait_for(lock, std::chrono::seconds(10), [this] { return opened; });
  }
};

TEST(flight_table, concurrent_joins_share_one_fill) {
  net::thread_pool work(2);
  net::io_context io;
  flight_table<int> table(work.get_executor());
  std::atomic<int> fills{0};
  std::atomic<int> finished{0};
  std::atomic<int> shared{0};
  std::vector<int> outcomes(50, -1);
  gate fill_gate;

  auto fill = [&fills, &fill_gate]() -> net::awaitable<int> {
    fills.fetch_add(1);
    fill_gate.wait();
    co_return 42;
  };
  for (int i = 0; i < 50; ++i) {
    net::co_spawn(
        io,
        [&, i]() -> net::awaitable<void> {
          auto joined = co_await table.join("key", fill);  // fill() makes the awaitable
          outcomes[i] = joined.outcome;
          if (joined.shared) shared.fetch_add(1);
          finished.fetch_add(1);
        },
        net::detached);
  }
  // Run until every coroutine is parked on the flight, then let the fill finish.
  io.poll();
  EXPECT_EQ(table.in_flight(), 1u);
  fill_gate.open();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (finished.load() < 50 && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  ASSERT_EQ(finished.load(), 50);
  EXPECT_EQ(fills.load(), 1);
  EXPECT_EQ(shared.load(), 49);
  for (int outcome : outcomes) EXPECT_EQ(outcome, 42);
  EXPECT_EQ(table.in_flight(), 0u);
  work.join();
}

net::awaitable<std::string> make(std::atomic<int>& fills, std::string key) {
  fills.fetch_add(1);
  co_return key + std::to_string(fills.load());
}

TEST(flight_table, a_later_join_starts_a_new_fill_and_keys_are_independent) {
  net::thread_pool work(1);
  net::io_context io;
  flight_table<std::string> table(work.get_executor());
  std::atomic<int> fills{0};
  std::vector<std::string> results;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        for (const char* key : {"a", "a", "b"}) {
          auto joined = co_await table.join(key, [&fills, key] { return make(fills, key); });
          EXPECT_FALSE(joined.shared);
          results.push_back(joined.outcome);
        }
      },
      net::detached);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (results.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  EXPECT_EQ(fills.load(), 3);
  EXPECT_EQ(results, (std::vector<std::string>{"a1", "a2", "b3"}));
  work.join();
}

net::awaitable<int> make_number(std::atomic<int>& fills) { co_return fills.fetch_add(1) + 1; }

net::awaitable<int> gated_fill(std::atomic<int>& fills, gate& fill_gate,
                               std::atomic<int>& finished) {
  fills.fetch_add(1);
  fill_gate.wait();
  finished.fetch_add(1);
  co_return 7;
}

TEST(flight_table, close_releases_waiters_and_refuses_later_joins_while_the_fill_goes_on) {
  net::thread_pool work(1);
  net::io_context io;
  flight_table<int> table(work.get_executor());
  std::atomic<int> fills{0};
  std::atomic<int> fill_finished{0};
  gate fill_gate;
  // The fill outlives the joins, so its coroutine must not live in a lambda they own.
  auto fill = [&fills, &fill_gate, &fill_finished] {
    return gated_fill(fills, fill_gate, fill_finished);
  };
  std::vector<int> abandoned(3, -1);
  for (int i = 0; i < 3; ++i) {
    net::co_spawn(
        io,
        [&, i]() -> net::awaitable<void> {
          auto joined = co_await table.join("key", fill);
          abandoned[i] = joined.abandoned ? 1 : 0;
        },
        net::detached);
  }
  io.poll();
  ASSERT_EQ(table.in_flight(), 1u);
  table.close();
  // Every waiter resumes although the fill is still held at its gate.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::ranges::count(abandoned, -1) > 0 && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  EXPECT_EQ(abandoned, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(fill_finished.load(), 0);
  EXPECT_EQ(table.in_flight(), 0u);

  // A join after close neither waits nor starts a fill.
  int late = -1;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto joined = co_await table.join("other", fill);
        late = joined.abandoned ? 1 : 0;
      },
      net::detached);
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(late, 1);

  fill_gate.open();
  work.join();
  EXPECT_EQ(fills.load(), 1);  // the late join started none
  EXPECT_EQ(fill_finished.load(), 1);
}

net::awaitable<int> gated_throwing_fill(std::atomic<int>& fills, gate& fill_gate) {
  fills.fetch_add(1);
  fill_gate.wait();
  throw std::runtime_error("store exploded");
  co_return 0;
}

// Runs `io` until `done` holds or 10 s pass.
template <class Done>
void run_until(net::io_context& io, Done done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
}

TEST(flight_table, a_fill_that_throws_releases_every_waiter_and_frees_its_key) {
  net::thread_pool work(1);
  net::io_context io;
  flight_table<int> table(work.get_executor());
  std::atomic<int> fills{0};
  gate fill_gate;
  auto fill = [&fills, &fill_gate] { return gated_throwing_fill(fills, fill_gate); };
  std::vector<std::string> thrown(3);
  std::atomic<int> finished{0};
  for (int i = 0; i < 3; ++i) {
    net::co_spawn(
        io,
        [&, i]() -> net::awaitable<void> {
          auto joined = co_await table.join("key", fill);
          EXPECT_FALSE(joined.abandoned);
          thrown[i] = joined.thrown.value_or("(nothing thrown)");
          finished.fetch_add(1);
        },
        net::detached);
  }
  io.poll();
  ASSERT_EQ(table.in_flight(), 1u);
  fill_gate.open();
  run_until(io, [&] { return finished.load() == 3; });
  ASSERT_EQ(finished.load(), 3);
  for (const auto& what : thrown) EXPECT_EQ(what, "store exploded");
  EXPECT_EQ(table.in_flight(), 0u);

  // The key is free again: the next join starts a fill of its own.
  int later = -1;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto joined = co_await table.join("key", [&fills] { return make_number(fills); });
        later = joined.outcome;
      },
      net::detached);
  run_until(io, [&] { return later != -1; });
  EXPECT_EQ(later, 2);
  work.join();
}

TEST(flight_table, a_waiter_gives_up_at_its_deadline_while_the_fill_goes_on_for_others) {
  net::thread_pool work(1);
  net::io_context io;
  flight_table<int> table(work.get_executor());
  std::atomic<int> fills{0};
  std::atomic<int> fill_finished{0};
  gate fill_gate;
  auto fill = [&fills, &fill_gate, &fill_finished] {
    return gated_fill(fills, fill_gate, fill_finished);
  };
  int impatient = -1;
  int patient = -1;
  auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration impatient_waited{};
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto joined = co_await table.join("key", fill, started + std::chrono::milliseconds(100));
        impatient_waited = std::chrono::steady_clock::now() - started;
        impatient = joined.gave_up ? 1 : 0;
      },
      net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto joined = co_await table.join("key", fill);
        patient = joined.outcome;
      },
      net::detached);
  run_until(io, [&] { return impatient != -1; });
  EXPECT_EQ(impatient, 1);
  EXPECT_GE(impatient_waited, std::chrono::milliseconds(100));
  EXPECT_LT(impatient_waited, std::chrono::seconds(5));
  EXPECT_EQ(patient, -1);
  EXPECT_EQ(table.in_flight(), 1u);
  fill_gate.open();
  run_until(io, [&] { return patient != -1; });
  EXPECT_EQ(patient, 7);
  EXPECT_EQ(fills.load(), 1);
  work.join();
}

}  // namespace
}  // namespace gomodproxy::resolver
