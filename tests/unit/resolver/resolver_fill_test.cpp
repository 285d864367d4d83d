// The resolver's fills under failure: the real resolver, a real RocksDB store in a temp dir
// (wrapped to fail its Nth append, commit or create, or throw there), real loopback upstreams
// (a module tier and a checksum database that fail their Nth request), and the fill deadline.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/errc.hpp"
#include "resolver/from_settings.hpp"
#include "resolver/resolver.hpp"
#include "sumdb/zip_check.hpp"
#include "tests/support/cpp/loopback_http_server.hpp"
#include "tests/support/cpp/test_checksum_database.hpp"
#include "tests/unit/resolver/capturing_writer.hpp"

namespace gomodproxy::resolver {
namespace {
namespace net = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using fill_testing::answer;
using fill_testing::testdata;
using fill_testing::tiers;
using test::scripted_request;
using test::scripted_response;

// ---- A store that fails its Nth call of one kind -------------------------------------------

// open and writer_read are the reads around a fill: the cache lookup before it, the verification
// of the bytes written, and the open that serves them after the commit.
enum class store_call { create, append, commit, open, writer_read };

// Which store call fails, and how. Counted across every fill (module files, lookups, tiles and
// the remembered tree head all go through the store).
struct store_faults {
  store_call call = store_call::append;
  /// The 0-based call that fails; -1: none. Atomic: a checksum proof started beside a fill
  /// that failed may still be filling its lookup or tiles when the test disarms.
  std::atomic<long> fail_at{-1};
  bool throw_instead = false;
  std::atomic<long> calls{0};
  std::atomic<bool> hit{false};

  // Returns true when this call is the one that fails (and throws when asked to).
  bool strike(store_call kind) {
    if (kind != call || fail_at < 0) return false;
    if (calls.fetch_add(1) != fail_at) return false;
    hit.store(true);
    if (throw_instead) throw std::runtime_error("injected store exception");
    return true;
  }
};

class faulty_writer final : public cache::entry_writer {
 public:
  faulty_writer(std::unique_ptr<cache::entry_writer> inner, store_faults& faults)
      : inner_(std::move(inner)), faults_(faults) {}
  cache::result<void> append(std::string_view bytes) override {
    if (faults_.strike(store_call::append)) return errc::cache_io;
    return inner_->append(bytes);
  }
  std::uint64_t size() const override { return inner_->size(); }
  cache::result<std::string> read(std::uint64_t offset, std::size_t max_bytes) override {
    if (faults_.strike(store_call::writer_read)) return errc::cache_io;
    return inner_->read(offset, max_bytes);
  }
  cache::result<void> commit(cache::entry_meta meta) override {
    if (faults_.strike(store_call::commit)) return errc::cache_io;
    return inner_->commit(std::move(meta));
  }

 private:
  std::unique_ptr<cache::entry_writer> inner_;
  store_faults& faults_;
};

class faulty_store final : public cache::cache_store {
 public:
  faulty_store(cache::cache_store& inner, store_faults& faults) : inner_(inner), faults_(faults) {}
  cache::result<std::optional<cache::entry_meta>> stat(std::string_view key) override {
    return inner_.stat(key);
  }
  cache::result<std::unique_ptr<cache::entry_reader>> open(std::string_view key) override {
    if (faults_.strike(store_call::open)) return errc::cache_io;
    return inner_.open(key);
  }
  cache::result<std::unique_ptr<cache::entry_writer>> create(std::string_view key) override {
    if (faults_.strike(store_call::create)) return errc::cache_io;
    auto created = inner_.create(key);
    if (!created) return created.error();
    return std::unique_ptr<cache::entry_writer>(
        std::make_unique<faulty_writer>(std::move(*created), faults_));
  }
  cache::result<void> remove(std::string_view key) override { return inner_.remove(key); }
  cache::result<void> for_each_entry(
      const std::function<bool(std::string_view, const cache::entry_meta&, bool)>& visit) override {
    return inner_.for_each_entry(visit);
  }
  cache::result<std::uint64_t> collect_garbage() override { return inner_.collect_garbage(); }
  cache::store_stats stats() const override { return inner_.stats(); }

 private:
  cache::cache_store& inner_;
  store_faults& faults_;
};

// ---- Upstreams that fail their Nth request ---------------------------------------------------

struct upstream_faults {
  /// The 0-based request answered 503; -1: none. Atomic for the reason store_faults' is.
  std::atomic<long> fail_at{-1};
  std::atomic<long> requests{0};
  std::atomic<bool> hit{false};
  bool strike() {
    if (requests.fetch_add(1) != fail_at || fail_at < 0) return false;
    hit.store(true);
    return true;
  }
};

constexpr std::string_view module_path = "example.com/hello";
constexpr std::string_view module_version = "v1.2.0";

struct served_files {
  std::string go_mod = testdata("hello-v1.2.0.mod");
  std::string zip = testdata("hello-v1.2.0.zip");
  std::string info = R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})";

  std::string record() const {
    auto read_from = [](const std::string& bytes) {
      return
          [&bytes](std::uint64_t offset, std::size_t length) -> boost::system::result<std::string> {
            return bytes.substr(std::min<std::uint64_t>(offset, bytes.size()), length);
          };
    };
    auto zip_hash = sumdb::module_file_h1_hash(true, zip.size(), read_from(zip));
    if (!zip_hash) throw std::runtime_error("testdata zip does not hash");
    return std::string(module_path) + " " + std::string(module_version) + " " + *zip_hash + "\n" +
           std::string(module_path) + " " + std::string(module_version) + "/go.mod " +
           sumdb::go_mod_h1_hash(go_mod) + "\n";
  }
};

// ---- The harness -------------------------------------------------------------------------

// One thread running one io_context, which a test can keep busy: the resolver's checks or reads
// pool when the harness is given pools of its own.
class one_thread_pool {
 public:
  one_thread_pool() : thread_([this] { context_.run(); }) {}
  ~one_thread_pool() { stop(); }
  void stop() {
    guard_.reset();
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }
  net::any_io_executor executor() { return context_.get_executor(); }

  // Keeps the thread busy (as a long hash would) until release(), or until it goes out of scope
  // (a failed assertion must not leave the pool's thread blocked for the teardown to join).
  class occupation {
   public:
    explicit occupation(std::shared_ptr<std::promise<void>> release)
        : release_(std::move(release)) {}
    occupation(const occupation&) = delete;
    occupation& operator=(const occupation&) = delete;
    ~occupation() { release(); }
    void release() {
      if (release_) std::exchange(release_, nullptr)->set_value();
    }

   private:
    std::shared_ptr<std::promise<void>> release_;
  };

  std::unique_ptr<occupation> occupy() {
    auto release = std::make_shared<std::promise<void>>();
    auto started = std::make_shared<std::promise<void>>();
    auto running = started->get_future();
    net::post(context_, [released = release->get_future().share(), started] {
      started->set_value();
      released.wait();
    });
    running.wait();
    return std::make_unique<occupation>(std::move(release));
  }

 private:
  net::io_context context_{1};
  net::executor_work_guard<net::io_context::executor_type> guard_{context_.get_executor()};
  std::thread thread_;
};

// Whether the resolver runs everything on the harness's work context, or as the server runs
// it: checks and reads each on a pool of their own.
enum class pools { one, separate };

class fill_harness {
 public:
  explicit fill_harness(std::function<void(resolver_options&)> adjust = {},
                        std::string module_tiers_separator = "|", pools layout = pools::one)
      : database_("sum.test",
                  {files_.record(), "example.com/other v1.0.0 h1:" + std::string(43, 'A') + "=\n"}),
        module_upstream_(
            [this](const scripted_request& request) { return module_answer(request); }),
        sumdb_upstream_([this](const scripted_request& request) { return sumdb_answer(request); }) {
    std::string pattern = (fs::temp_directory_path() / "gmp-resolver-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp");
    directory_ = pattern;
    cache::rocksdb_options store_options;
    store_options.path = directory_ / "cache";
    auto opened = cache::open_rocksdb_store(store_options);
    if (!opened) throw std::runtime_error("rocksdb: " + opened.error().detail);
    real_store_ = std::move(*opened);
    store_ = std::make_unique<faulty_store>(*real_store_, store_faults_);

    upstream::client_options client_options;
    client_options.proxy_from_environment = false;
    client_ =
        std::make_unique<upstream::http_client>(contexts_.work.get_executor(), client_options);

    resolver_options options;
    options.tiers =
        tiers(module_upstream_.url("") + module_tiers_separator + module_upstream_.url(""));
    options.sumdbs.push_back({"sum.test", tiers(sumdb_upstream_.url("")),
                              *sumdb::parse_verifier_key(database_.verifier_key_text())});
    options.verify_sumdb = true;
    options.deadlines.connect = 2s;
    options.deadlines.first_byte = 2s;
    options.deadlines.total = 10s;
    options.fill_timeout = 10s;
    if (adjust) adjust(options);
    if (layout == pools::separate) {
      resolver_ = std::make_unique<resolver>(
          std::move(options), *store_, upstream::http_tiers(*client_),
          resolver_executors{contexts_.work.get_executor(), checks_.executor(), reads_.executor()});
    } else {
      resolver_ =
          std::make_unique<resolver>(std::move(options), *store_, upstream::http_tiers(*client_),
                                     contexts_.work.get_executor());
    }
    contexts_.start();
  }

  ~fill_harness() {
    contexts_.stop();
    reads_.stop();
    checks_.stop();
    resolver_.reset();
    store_.reset();
    real_store_.reset();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  // `count` requests for `target` at once; each answer, or status 0 when none came in 20 s.
  std::vector<answer> get_concurrently(const std::string& target, int count) {
    std::vector<std::future<answer>> pending;
    for (int i = 0; i < count; ++i) {
      pending.push_back(fill_testing::start_get(contexts_.front, *resolver_, target));
    }
    std::vector<answer> answers;
    for (auto& future : pending) {
      if (future.wait_for(20s) != std::future_status::ready) {
        answers.push_back(answer{});
        continue;
      }
      answers.push_back(future.get());
    }
    return answers;
  }

  answer get(const std::string& target) { return get_concurrently(target, 1).front(); }

  std::future<answer> start_get(const std::string& target) {
    return fill_testing::start_get(contexts_.front, *resolver_, target);
  }

  // Commits `body` under `key` as a fill would have, straight into the store.
  void put_cached(const std::string& key, const std::string& body) {
    auto created = real_store_->create(key);
    if (!created || !(*created)->append(body)) throw std::runtime_error("cache write");
    cache::entry_meta meta;
    meta.kind = cache::entry_kind::immutable;
    meta.stored_at_ms = 1;
    meta.tier = "seeded";
    if (!(*created)->commit(meta)) throw std::runtime_error("cache commit");
  }

  one_thread_pool& checks_pool() { return checks_; }

  // resolver::database_hash for example.com/hello at `version`, run on the front context.
  resolver::database_answer database_hash(const std::string& version, bool go_mod) {
    auto future = net::co_spawn(contexts_.front,
                                resolver_->database_hash(std::string(module_path), version, go_mod),
                                net::use_future);
    if (future.wait_for(20s) != std::future_status::ready) {
      throw std::runtime_error("database_hash did not end in 20 s");
    }
    return future.get();
  }

  // The committed entries, by key, with their bodies; negative entries (an upstream's true
  // 404, remembered briefly) are left out. Read with the contexts paused (fill_contexts::pause).
  std::map<std::string, std::string> committed() {
    contexts_.pause();
    std::map<std::string, std::string> entries;
    (void)real_store_->for_each_entry(
        [&](std::string_view key, const cache::entry_meta& meta, bool) {
          if (meta.kind == cache::entry_kind::not_found) return true;
          auto reader = real_store_->open(key);
          if (reader && *reader) {
            auto body = (*reader)->read(0, meta.size);
            entries[std::string(key)] = body ? *body : "(unreadable)";
          }
          return true;
        });
    contexts_.resume();
    return entries;
  }

  // What each committed entry should hold, were it committed: exactly what the upstreams serve.
  std::optional<std::string> expected_body(const std::string& key) const {
    const std::string module_prefix =
        "/" + std::string(module_path) + "/@v/" + std::string(module_version);
    if (key == module_prefix + ".mod") return files_.go_mod;
    if (key == module_prefix + ".zip") return files_.zip;
    if (key == module_prefix + ".info") return files_.info;
    if (key.starts_with("/sumdb/sum.test/")) return database_.answer(key.substr(15));
    return std::nullopt;
  }

  store_faults& store_faults_now() { return store_faults_; }
  upstream_faults& module_faults() { return module_faults_; }
  upstream_faults& sumdb_faults() { return sumdb_faults_; }
  int module_requests() const { return module_upstream_.requests(); }
  std::atomic<int>& module_stall() { return module_stall_; }
  std::atomic<int>& sumdb_stall() { return sumdb_stall_; }

 private:
  scripted_response module_answer(const scripted_request& request) {
    scripted_response response;
    if (module_faults_.strike()) {
      response.status = 503;
      response.body = "injected failure\n";
      return response;
    }
    if (module_stall_.load()) {
      response.mode = scripted_response::behaviour::stall_before_headers;
      return response;
    }
    const std::string prefix =
        "/" + std::string(module_path) + "/@v/" + std::string(module_version);
    if (request.target == prefix + ".mod") {
      response.body = files_.go_mod;
    } else if (request.target == prefix + ".zip") {
      // Small chunks, so the body reaches the cache in several appends.
      response.body = files_.zip;
      response.chunked = true;
      response.chunk_size = 97;
    } else if (request.target == prefix + ".info") {
      response.body = files_.info;
    } else {
      response.status = 404;
      response.body = "not found\n";
    }
    return response;
  }

  scripted_response sumdb_answer(const scripted_request& request) {
    scripted_response response;
    if (sumdb_faults_.strike()) {
      response.status = 503;
      response.body = "injected failure\n";
      return response;
    }
    if (sumdb_stall_.load()) {
      response.mode = scripted_response::behaviour::stall_before_headers;
      return response;
    }
    if (auto body = database_.answer(request.target)) {
      response.body = *body;
    } else {
      response.status = 404;
      response.body = "not found\n";
    }
    return response;
  }

  served_files files_;
  test::test_checksum_database database_;
  store_faults store_faults_;
  upstream_faults module_faults_;
  upstream_faults sumdb_faults_;
  std::atomic<int> module_stall_{0};
  std::atomic<int> sumdb_stall_{0};
  test::loopback_http_server module_upstream_;
  test::loopback_http_server sumdb_upstream_;
  fs::path directory_;
  std::unique_ptr<cache::cache_store> real_store_;
  std::unique_ptr<faulty_store> store_;
  fill_testing::fill_contexts contexts_;
  // Used only with pools::separate; declared after the store, so stopped before it goes.
  one_thread_pool checks_;
  one_thread_pool reads_;
  std::unique_ptr<upstream::http_client> client_;
  std::unique_ptr<resolver> resolver_;
};

const std::string mod_target = "/example.com/hello/@v/v1.2.0.mod";
const std::string zip_target = "/example.com/hello/@v/v1.2.0.zip";

// After a fill that met a failure: every committed entry is whole and verified (what the
// upstreams serve, byte for byte; a module file only with its proven record beside it).
void expect_nothing_partial(fill_harness& harness, const std::string& context) {
  const auto entries = harness.committed();
  for (const auto& [key, body] : entries) {
    if (key.starts_with("/gomodproxy/verified-tree/")) continue;
    const auto expected = harness.expected_body(key);
    ASSERT_TRUE(expected.has_value()) << context << ": unexpected entry " << key;
    EXPECT_EQ(body, *expected) << context << ": " << key << " is not what the upstream served";
    if (key.ends_with(".mod") || key.ends_with(".zip")) {
      EXPECT_TRUE(entries.contains("/sumdb/sum.test/lookup/example.com/hello@v1.2.0"))
          << context << ": " << key << " cached without its checksum record";
    }
  }
}

// Fail the Nth call of one kind, for N = 0, 1, ... until a fill no longer reaches it. Each
// time: every one of three concurrent requests is answered, nothing partial or unverified is
// cached, and once the failure is gone a retry is served in full.
void fail_the_nth(const std::string& what, const std::function<void(fill_harness&, long)>& arm,
                  const std::function<bool(fill_harness&)>& was_hit,
                  const std::function<void(fill_harness&)>& disarm) {
  for (const auto& target : {mod_target, zip_target}) {
    bool reached_end = false;
    int failures_met = 0;
    for (long n = 0; n < 40 && !reached_end; ++n) {
      const std::string context = what + " #" + std::to_string(n) + " of " + target;
      fill_harness harness;
      arm(harness, n);
      const auto answers = harness.get_concurrently(target, 3);
      const bool hit = was_hit(harness);
      for (const auto& got : answers) {
        ASSERT_NE(got.status, 0) << context << ": a waiter got no answer";
        if (hit) {
          EXPECT_TRUE(got.status == 200 || got.status == 404 || got.status == 502)
              << context << ": " << got.status << " " << got.body;
          if (got.status != 200) {
            EXPECT_EQ(got.cache_control, "no-store") << context;
          }
        } else {
          EXPECT_EQ(got.status, 200) << context << ": " << got.body;
        }
      }
      expect_nothing_partial(harness, context);
      disarm(harness);
      const auto retry = harness.get(target);
      EXPECT_EQ(retry.status, 200) << context << ": retry: " << retry.body;
      EXPECT_EQ(std::optional<std::string>(retry.body), harness.expected_body(target)) << context;
      reached_end = !hit;
      if (hit) ++failures_met;
    }
    EXPECT_TRUE(reached_end) << what << ": the fill of " << target << " never completed";
    EXPECT_GT(failures_met, 0) << what << ": no fill of " << target << " met the failure";
  }
}

void fail_the_nth_store_call(const std::string& what, store_call call, bool throw_instead) {
  fail_the_nth(
      what,
      [call, throw_instead](fill_harness& harness, long n) {
        auto& faults = harness.store_faults_now();
        faults.call = call;
        faults.throw_instead = throw_instead;
        faults.fail_at = n;
      },
      [](fill_harness& harness) { return harness.store_faults_now().hit.load(); },
      [](fill_harness& harness) { harness.store_faults_now().fail_at = -1; });
}

TEST(resolver_fill, fail_the_nth_cache_create) {
  fail_the_nth_store_call("cache create", store_call::create, false);
}

TEST(resolver_fill, fail_the_nth_cache_append) {
  fail_the_nth_store_call("cache append", store_call::append, false);
}

TEST(resolver_fill, fail_the_nth_cache_commit) {
  fail_the_nth_store_call("cache commit", store_call::commit, false);
}

// A store that throws (a bug, or bad_alloc) must not wedge the key: before fills closed their
// flight on an exception, the waiters of the first throwing fill never got an answer.
TEST(resolver_fill, fail_the_nth_cache_open) {
  fail_the_nth_store_call("cache open", store_call::open, false);
}

TEST(resolver_fill, fail_the_nth_read_back_before_commit) {
  fail_the_nth_store_call("read back before commit", store_call::writer_read, false);
}

// A body the fill cannot read back from its own staging is our disk's failure: the answer says
// so, and the tier is not blamed for an invalid answer or a checksum mismatch.
TEST(resolver_fill, a_failed_read_back_is_a_cache_failure_not_the_upstreams) {
  for (const auto& target : {mod_target, zip_target}) {
    fill_harness harness;
    auto& faults = harness.store_faults_now();
    faults.call = store_call::writer_read;
    faults.fail_at = 0;
    const auto got = harness.get(target);
    ASSERT_TRUE(faults.hit.load()) << target;
    EXPECT_EQ(got.status, 404) << target;
    EXPECT_NE(got.body.find("cache read back failed"), std::string::npos) << target << got.body;
    EXPECT_EQ(got.body.find("invalid answer"), std::string::npos) << target << got.body;
    EXPECT_EQ(got.body.find("checksum mismatch"), std::string::npos) << target << got.body;
    faults.fail_at = -1;
    EXPECT_EQ(harness.get(target).status, 200) << target;
  }
}

TEST(resolver_fill, fail_the_nth_cache_append_by_throwing) {
  fail_the_nth_store_call("throwing cache append", store_call::append, true);
}

TEST(resolver_fill, fail_the_nth_cache_commit_by_throwing) {
  fail_the_nth_store_call("throwing cache commit", store_call::commit, true);
}

TEST(resolver_fill, fail_the_nth_tier_call) {
  fail_the_nth(
      "tier call", [](fill_harness& harness, long n) { harness.module_faults().fail_at = n; },
      [](fill_harness& harness) { return harness.module_faults().hit.load(); },
      [](fill_harness& harness) { harness.module_faults().fail_at = -1; });
}

TEST(resolver_fill, fail_the_nth_checksum_fetch) {
  fail_the_nth(
      "checksum fetch", [](fill_harness& harness, long n) { harness.sumdb_faults().fail_at = n; },
      [](fill_harness& harness) { return harness.sumdb_faults().hit.load(); },
      [](fill_harness& harness) { harness.sumdb_faults().fail_at = -1; });
}

// ---- The fill deadline -------------------------------------------------------------------

// Three tiers that accept and never answer, a first-byte timeout far beyond the fill's: the
// whole fill, not each attempt, ends at fill_timeout (it used to take one fill_timeout per tier).
TEST(resolver_fill, the_fill_timeout_bounds_the_whole_fill_not_each_attempt) {
  for (const bool all_failed_502 : {false, true}) {
    fill_harness harness([all_failed_502](resolver_options& options) {
      config::settings settings;
      settings.fill_timeout = 1s;
      settings.first_byte_timeout = 30s;
      settings.all_failed_502 = all_failed_502;
      settings.upstreams = options.tiers;
      settings.upstreams.push_back(options.tiers.front());
      auto from_settings = options_from_settings(settings);
      ASSERT_TRUE(from_settings) << from_settings.error().detail;
      from_settings->verify_sumdb = false;
      options = std::move(*from_settings);
    });
    harness.module_stall() = 1;
    const auto started = std::chrono::steady_clock::now();
    const auto answers = harness.get_concurrently(mod_target, 3);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 1900ms) << "the fill ran past its deadline";
    for (const auto& got : answers) {
      EXPECT_EQ(got.status, all_failed_502 ? 502 : 404) << got.body;
      EXPECT_EQ(got.cache_control, "no-store");
      EXPECT_NE(got.body.find("timeout after 1s (fill deadline)"), std::string::npos) << got.body;
    }
    EXPECT_TRUE(harness.committed().empty());
    harness.module_stall() = 0;
    EXPECT_EQ(harness.get(mod_target).status, 200);
  }
}

// The module tier answers at once; the checksum database hangs on three tiers. Verification is
// part of the fill: it ends at fill_timeout, and the unverified go.mod is not cached.
TEST(resolver_fill, the_fill_timeout_includes_checksum_verification) {
  fill_harness harness([](resolver_options& options) {
    options.fill_timeout = 1s;
    options.deadlines.total = 1s;
    options.deadlines.first_byte = 30s;
    auto& database_tiers = options.sumdbs.front().tiers;
    database_tiers.push_back(database_tiers.front());
    database_tiers.push_back(database_tiers.front());
    for (auto& tier : database_tiers) tier.fall_through_on_error = true;
  });
  harness.sumdb_stall() = 1;
  const auto started = std::chrono::steady_clock::now();
  const auto got = harness.get(mod_target);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, 1900ms) << "verification ran past the fill deadline";
  EXPECT_EQ(got.status, 404) << got.body;
  EXPECT_EQ(got.cache_control, "no-store");
  EXPECT_NE(got.body.find("fill deadline"), std::string::npos) << got.body;
  EXPECT_FALSE(harness.committed().contains(mod_target));
}

// The server gives checks (zip structure, h1 hashing) a pool of their own, and large cache reads
// another: while every checks thread is busy with a long hash, a warm zip still streams, and
// the fill waiting for its check is answered once a thread frees up.
TEST(resolver_fill, a_busy_checks_pool_delays_only_the_fills_waiting_for_it) {
  fill_harness harness({}, "|", pools::separate);
  const std::string warm_target = "/example.com/other/@v/v1.0.0.zip";
  std::string warm_body(3 << 20, '\0');  // streamed in several views, not sent inline
  for (std::size_t i = 0; i < warm_body.size(); ++i) warm_body[i] = static_cast<char>(i * 7);
  harness.put_cached(warm_target, warm_body);

  auto busy = harness.checks_pool().occupy();
  auto filled = harness.start_get(zip_target);
  auto warm = harness.start_get(warm_target);
  ASSERT_EQ(warm.wait_for(20s), std::future_status::ready) << "a warm zip waited on the checks";
  const auto streamed = warm.get();
  EXPECT_EQ(streamed.status, 200);
  EXPECT_TRUE(streamed.body == warm_body);
  // The fill has its body (or is still receiving it) and cannot be judged without a check.
  EXPECT_EQ(filled.wait_for(0s), std::future_status::timeout)
      << "the fill finished while every checks thread was busy: its checks ran elsewhere";

  busy->release();
  ASSERT_EQ(filled.wait_for(20s), std::future_status::ready);
  const auto got = filled.get();
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(std::optional<std::string>(got.body), harness.expected_body(zip_target));
}

// ---- What the checksum database says, and why it cannot ------------------------------------

TEST(resolver_fill, a_proven_hash_or_the_kind_of_failure_that_stopped_it) {
  fill_harness harness;
  // The database fails the lookup: it did not answer, and that is not remembered.
  harness.sumdb_faults().fail_at = 0;
  const auto failed = harness.database_hash(std::string(module_version), true);
  EXPECT_FALSE(failed.hash);
  EXPECT_EQ(failed.code, errc::upstream_unavailable) << failed.why;
  EXPECT_TRUE(failed.why.starts_with("sum.test lookup: ")) << failed.why;

  harness.sumdb_faults().fail_at = -1;
  const auto proven = harness.database_hash(std::string(module_version), true);
  ASSERT_TRUE(proven.hash) << proven.why;
  EXPECT_TRUE(proven.hash->starts_with("h1:")) << *proven.hash;
  EXPECT_FALSE(proven.code);

  // A version the database has no record of.
  const auto unknown = harness.database_hash("v1.9.9", true);
  EXPECT_FALSE(unknown.hash);
  EXPECT_EQ(unknown.code, errc::not_found) << unknown.why;
  EXPECT_EQ(unknown.why, "sum.test lookup: not in the checksum database");

  // A version this module path cannot have is never asked for.
  const auto invalid = harness.database_hash("v9.9.9", true);
  EXPECT_FALSE(invalid.hash);
  EXPECT_EQ(invalid.code, errc::invalid_request) << invalid.why;
  EXPECT_EQ(
      invalid.why,
      "sum.test lookup: example.com/hello@v9.9.9: invalid version: should be v0 or v1, not v9");
}

TEST(resolver_fill, a_record_proof_that_cannot_fetch_its_tile_says_why) {
  fill_harness harness;
  // Request 0 is the lookup, 1 the partial tile its proof needs; the full tile asked for next
  // is one the database (of two records) does not serve, so its not_found is the reason.
  harness.sumdb_faults().fail_at = 1;
  const auto failed = harness.database_hash(std::string(module_version), false);
  EXPECT_FALSE(failed.hash);
  EXPECT_EQ(failed.code, errc::not_found) << failed.why;
  EXPECT_TRUE(
      failed.why.starts_with("sum.test: the lookup record is not in its signed tree (tile/"))
      << failed.why;
}

}  // namespace
}  // namespace gomodproxy::resolver
