// The tier seam as the resolver's unit tests drive it: scripted tiers that record every request
// they are handed and answer as told, and a resolver built over them with a cache store of its
// own and a wall clock the test moves (resolver_options::now) instead of sleeping.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/cache_store.hpp"
#include "cache/memory_store.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver.hpp"
#include "tests/unit/resolver/capturing_writer.hpp"
#include "upstream/tier.hpp"

namespace gomodproxy::resolver::fill_testing {

// The wall clock a harness's resolver reads: where the system clock stood when the harness was
// built, moved only by advance(). Read by the resolver's threads, moved by the test's.
class manual_clock {
 public:
  std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::time_point(
        std::chrono::system_clock::duration(since_epoch_.load()));
  }
  void advance(std::chrono::system_clock::duration by) { since_epoch_ += by.count(); }

 private:
  std::atomic<std::chrono::system_clock::rep> since_epoch_{
      std::chrono::system_clock::now().time_since_epoch().count()};
};

// Where a harness's resolver caches: RocksDB in a temp dir, or the in-memory store (which
// passes the same conformance suite).
enum class backing { rocksdb, memory };

namespace net = boost::asio;
// How a scripted tier answers every request it is handed.
struct tier_script {
  enum class answer { ok, not_found, error, timeout, slow } what = answer::not_found;
  std::string body;    ///< for ok and slow: the 200 body
  std::string reason;  ///< for not_found, error and timeout: the tier's one-line reason
  std::chrono::milliseconds delay{0};  ///< for slow: before the body starts

  static tier_script ok(std::string body) { return {answer::ok, std::move(body), {}, {}}; }
  static tier_script not_found(std::string reason = "404") {
    return {answer::not_found, {}, std::move(reason), {}};
  }
  static tier_script error(std::string reason = "connection refused") {
    return {answer::error, {}, std::move(reason), {}};
  }
  static tier_script timeout(std::string reason = "timeout after 10s (first byte)") {
    return {answer::timeout, {}, std::move(reason), {}};
  }
  static tier_script slow(std::string body, std::chrono::milliseconds delay) {
    return {answer::slow, std::move(body), {}, delay};
  }
};

class scripted_tier final : public upstream::tier {
 public:
  explicit scripted_tier(tier_script script) : script_(std::move(script)) {}

  net::awaitable<upstream::fetch_result> fetch(const protocol::module_request& request,
                                               upstream::body_sink sink,
                                               upstream::deadlines limits) override {
    tier_script script;
    {
      std::lock_guard lock(mutex_);
      asked_.push_back(request);
      script = script_;
    }
    upstream::fetch_result result;
    switch (script.what) {
      case tier_script::answer::not_found:
        result.result = upstream::outcome::not_found;
        result.status = 404;
        result.reason = script.reason;
        co_return result;
      case tier_script::answer::error:
        result.result = upstream::outcome::error;
        result.reason = script.reason;
        co_return result;
      case tier_script::answer::timeout:
        result.result = upstream::outcome::timeout;
        result.reason = script.reason;
        co_return result;
      case tier_script::answer::slow: {
        net::steady_timer timer(co_await net::this_coro::executor,
                                std::min(script.delay, limits.total));
        (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        if (script.delay > limits.total) {
          result.result = upstream::outcome::timeout;
          result.reason = "timeout after " + upstream::format_duration(limits.total) + " (total)";
          co_return result;
        }
        break;
      }
      case tier_script::answer::ok:
        break;
    }
    result.status = 200;
    result.ttfb = std::chrono::milliseconds(1);
    if (!sink(script.body)) {
      result.result = upstream::outcome::error;
      result.reason = "aborted by receiver";
      co_return result;
    }
    result.result = upstream::outcome::ok;
    result.body_bytes = script.body.size();
    co_return result;
  }

  void answer_with(tier_script script) {
    std::lock_guard lock(mutex_);
    script_ = std::move(script);
  }

  std::vector<protocol::module_request> asked() const {
    std::lock_guard lock(mutex_);
    return asked_;
  }
  std::size_t times_asked() const { return asked().size(); }

 private:
  mutable std::mutex mutex_;
  tier_script script_;
  std::vector<protocol::module_request> asked_;
};

// A resolver on a cache store of its own (RocksDB in a temp dir, or in memory) and a clock that
// moves only when the test says, whose factory hands out the scripted tiers by tier name ("a.test"
// for https://a.test, "direct"); a name with no script gets no tier, as `direct` gets none in a
// process without a direct fetcher.
class scripted_harness {
 public:
  scripted_harness(std::map<std::string, tier_script> scripts,
                   const std::function<void(resolver_options&)>& adjust,
                   backing where = backing::rocksdb) {
    for (auto& [name, script] : scripts) {
      tiers_.emplace(name, std::make_shared<scripted_tier>(std::move(script)));
    }
    if (where == backing::memory) {
      auto opened = cache::open_memory_store();
      if (!opened) throw std::runtime_error("memory store: " + opened.error().message());
      store_ = std::move(*opened);
    } else {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "gmp-fill-test-XXXXXX").string();
      if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp");
      directory_.path = pattern;
      cache::rocksdb_options store_options;
      store_options.path = directory_.path / "cache";
      auto opened = cache::open_rocksdb_store(store_options);
      if (!opened) throw std::runtime_error("rocksdb: " + opened.error().detail);
      store_ = std::move(*opened);
    }

    resolver_options options;
    options.now = [this] { return clock_.now(); };
    adjust(options);
    auto factory = [this](const upstream::tier_spec& spec) -> std::shared_ptr<upstream::tier> {
      ++factory_calls_[spec.name];
      auto found = tiers_.find(spec.name);
      return found == tiers_.end() ? nullptr : found->second;
    };
    resolver_ = std::make_unique<resolver>(std::move(options), *store_, factory,
                                           contexts_.work.get_executor());
    contexts_.start();
  }

  ~scripted_harness() {
    contexts_.stop();
    resolver_.reset();
    // The io_contexts go next (declared after the store): an attempt abandoned mid-fetch still
    // holds a cache writer, which must be released while the store is open.
  }

  scripted_tier& tier(const std::string& name) { return *tiers_.at(name); }
  manual_clock& clock() { return clock_; }
  cache::cache_store& store() { return *store_; }
  const resolver& under_test() const { return *resolver_; }
  int factory_calls(const std::string& name) const {
    auto found = factory_calls_.find(name);
    return found == factory_calls_.end() ? 0 : found->second;
  }

  // The answer to one GET of `target`, or status 0 when none came in 20 s.
  answer get(const std::string& target) {
    auto future = fill_testing::start_get(contexts_.front, *resolver_, target);
    if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) return answer{};
    return future.get();
  }

 private:
  std::map<std::string, std::shared_ptr<scripted_tier>> tiers_;
  std::map<std::string, int> factory_calls_;
  manual_clock clock_;
  // Removed last, once the store is closed.
  struct temp_directory {
    std::filesystem::path path;
    ~temp_directory() {
      std::error_code ignored;
      if (!path.empty()) std::filesystem::remove_all(path, ignored);
    }
  };
  temp_directory directory_;
  std::unique_ptr<cache::cache_store> store_;
  fill_testing::fill_contexts contexts_;
  std::unique_ptr<resolver> resolver_;
};

}  // namespace gomodproxy::resolver::fill_testing
