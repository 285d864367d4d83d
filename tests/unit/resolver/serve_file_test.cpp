// The resolver's answer for a body the store keeps as a file of its own: it is handed to the
// writer as file ranges (never read through the reader's views), each in the page cache before it
// is handed over, HEAD sends the head alone, and a file shorter than its entry is a 500 before the
// head and a cut-off body after it. The store is a stand-in with one entry over a temp file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/errc.hpp"
#include "resolver/resolver.hpp"
#include "server/http_server.hpp"
#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::resolver {
namespace {
namespace net = boost::asio;

constexpr std::string_view zip_target = "/example.com/m/@v/v1.0.0.zip";

// Junk before the body in the file, so a range taken from the file's start instead of the body's
// offset shows.
const std::string file_prefix(100, '#');

std::string patterned(std::size_t bytes) {
  std::string out(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  return out;
}

// Its bytes only through file(): read() and view() fail, so an answer that used them fails.
class file_reader final : public cache::entry_reader {
 public:
  file_reader(int fd, std::uint64_t size) : fd_(fd) {
    meta_.kind = cache::entry_kind::immutable;
    meta_.size = size;
    meta_.tier = "test";
  }
  ~file_reader() override { ::close(fd_); }
  const cache::entry_meta& meta() const override { return meta_; }
  cache::result<std::string> read(std::uint64_t, std::size_t) override { return errc::cache_io; }
  cache::result<std::string_view> view(std::uint64_t, std::size_t) override {
    return errc::cache_io;
  }
  std::optional<cache::body_file> file() const override {
    return cache::body_file{fd_, file_prefix.size()};
  }

 private:
  int fd_;
  cache::entry_meta meta_;
};

// Every key is the one entry: the file at `path`, said to hold `size` body bytes.
class one_file_store final : public cache::cache_store {
 public:
  one_file_store(std::string path, std::uint64_t size) : path_(std::move(path)), size_(size) {}
  cache::result<std::optional<cache::entry_meta>> stat(std::string_view) override {
    cache::entry_meta meta;
    meta.size = size_;
    return std::optional<cache::entry_meta>(meta);
  }
  cache::result<std::unique_ptr<cache::entry_reader>> open(std::string_view) override {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errc::cache_io;
    return std::unique_ptr<cache::entry_reader>(std::make_unique<file_reader>(fd, size_));
  }
  cache::result<std::unique_ptr<cache::entry_writer>> create(std::string_view) override {
    return errc::cache_io;
  }
  cache::result<void> remove(std::string_view) override { return {}; }
  cache::result<void> for_each_entry(
      const std::function<bool(std::string_view, const cache::entry_meta&, bool)>&) override {
    return {};
  }
  cache::result<std::uint64_t> collect_garbage() override { return 0; }
  cache::store_stats stats() const override { return {1, size_}; }

 private:
  std::string path_;
  std::uint64_t size_;
};

// Whether the kernel can tell page-cache residency (cachestat, Linux 6.5+), and if so whether
// every page of the range is resident.
std::optional<bool> resident(int fd, std::uint64_t offset, std::uint64_t length) {
  struct {
    std::uint64_t offset, length;
  } range{offset, length};
  struct {
    std::uint64_t cached, dirty, writeback, evicted, recently_evicted;
  } pages{};
  if (::syscall(451, fd, &range, &pages, 0) != 0) return std::nullopt;
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return pages.cached >= (offset + length + page - 1) / page - offset / page;
}

struct answer {
  int status = 0;
  std::uint64_t declared = 0;
  std::string body;
  std::vector<server::file_range> ranges;
  bool all_resident = true;  ///< every range was in the page cache when handed over
};

class recording_writer final : public server::response_writer {
 public:
  explicit recording_writer(bool head_only) : head_only_(head_only) {}
  net::awaitable<bool> send(const server::response_head& head, std::string_view body) override {
    got.status = head.status;
    got.declared = body.size();
    got.body = body;
    co_return true;
  }
  net::awaitable<bool> send_head(const server::response_head& head,
                                 std::uint64_t content_length) override {
    got.status = head.status;
    got.declared = content_length;
    co_return true;
  }
  net::awaitable<bool> send_head_with(const server::response_head&, std::uint64_t,
                                      std::string_view) override {
    ADD_FAILURE() << "a file body was sent from memory";
    co_return false;
  }
  net::awaitable<bool> write_body(std::string_view) override {
    ADD_FAILURE() << "a file body was sent from memory";
    co_return false;
  }
  net::awaitable<bool> send_head_with_file(const server::response_head& head,
                                           std::uint64_t content_length,
                                           server::file_range first) override {
    got.status = head.status;
    got.declared = content_length;
    co_return take(first);
  }
  net::awaitable<bool> write_file(server::file_range range) override { co_return take(range); }
  bool head_only() const override { return head_only_; }
  void note(std::string_view, std::string_view) override {}

  answer got;

 private:
  bool take(const server::file_range& range) {
    got.ranges.push_back(range);
    if (resident(range.fd, range.offset, range.length) == false) got.all_resident = false;
    std::string bytes(range.length, '\0');
    const auto n = ::pread(range.fd, bytes.data(), bytes.size(), static_cast<off_t>(range.offset));
    if (n < 0 || static_cast<std::uint64_t>(n) != range.length) return false;
    got.body += bytes;
    return true;
  }
  bool head_only_;
};

// The resolver, offline (the cache is all it answers from), answering on `front` with its
// reads on `reads`, each one thread.
class harness {
 public:
  harness(const std::string& path, std::uint64_t size) : store_(path, size) {
    resolver_options options;
    options.offline = true;
    resolver_ = std::make_unique<resolver>(
        options, store_, nullptr,
        resolver_executors{work_.get_executor(), work_.get_executor(), reads_.get_executor()});
    threads_.emplace_back([this] { front_.run(); });
    threads_.emplace_back([this] { work_.run(); });
    threads_.emplace_back([this] { reads_.run(); });
  }
  ~harness() {
    for (auto* guard : {&front_guard_, &work_guard_, &reads_guard_}) guard->reset();
    front_.stop();
    work_.stop();
    reads_.stop();
    for (auto& thread : threads_) thread.join();
    resolver_.reset();
  }

  answer get(bool head_only) {
    std::promise<answer> done;
    auto future = done.get_future();
    net::co_spawn(
        front_,
        [this, head_only, &done]() -> net::awaitable<void> {
          recording_writer writer(head_only);
          server::request_view view{head_only ? "HEAD" : "GET", zip_target, head_only};
          co_await resolver_->handle(view, writer);
          done.set_value(writer.got);
        },
        net::detached);
    return future.get();
  }

 private:
  one_file_store store_;
  net::io_context front_{1};
  net::io_context work_{1};
  net::io_context reads_{1};
  using guard = net::executor_work_guard<net::io_context::executor_type>;
  guard front_guard_{front_.get_executor()};
  guard work_guard_{work_.get_executor()};
  guard reads_guard_{reads_.get_executor()};
  std::unique_ptr<resolver> resolver_;
  std::vector<std::thread> threads_;
};

// Writes the prefix and `body` to `name`, then drops its pages from the page cache, so the
// answer must load them before handing the ranges over.
std::string write_cold(const test::temp_dir& dir, const std::string& body) {
  const std::string path = dir.write("body", file_prefix + body);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  return path;
}

TEST(serve_file, a_body_kept_as_a_file_goes_out_in_resident_ranges_from_its_offset) {
  test::temp_dir dir;
  const std::string body = patterned((2 << 20) + (512 << 10) + 3);
  harness under_test(write_cold(dir, body), body.size());
  const auto got = under_test.get(false);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.declared, body.size());
  EXPECT_TRUE(got.body == body);
  ASSERT_EQ(got.ranges.size(), 3u);
  EXPECT_EQ(got.ranges[0].offset, file_prefix.size());
  EXPECT_EQ(got.ranges[0].length, 1u << 20);
  EXPECT_TRUE(got.all_resident) << "a range was handed over before its pages were loaded";
}

TEST(serve_file, head_sends_the_head_alone) {
  test::temp_dir dir;
  const std::string body = patterned(300000);
  harness under_test(write_cold(dir, body), body.size());
  const auto got = under_test.get(true);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.declared, body.size());
  EXPECT_TRUE(got.ranges.empty());
}

struct short_case {
  std::string name;
  std::size_t file_body_bytes;  ///< what the file holds of a 2.5 MiB entry
  int status;
  std::size_t body_bytes;  ///< what is sent before the answer stops
};

TEST(serve_file, a_file_shorter_than_its_entry_is_a_500_before_the_head_and_cut_off_after) {
  const std::size_t entry_bytes = (2 << 20) + (512 << 10);
  const std::vector<short_case> cases = {
      {"short in the first range", 500 << 10, 500, 0},
      {"short in a later range", (1 << 20) + (500 << 10), 200, 1 << 20},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    test::temp_dir dir;
    harness under_test(write_cold(dir, patterned(c.file_body_bytes)), entry_bytes);
    const auto got = under_test.get(false);
    EXPECT_EQ(got.status, c.status);
    if (c.status == 200) {
      EXPECT_EQ(got.declared, entry_bytes);
      EXPECT_EQ(got.body.size(), c.body_bytes);
    } else {
      EXPECT_EQ(got.body, "cache read failed: cache entry corrupt\n");
    }
  }
}

}  // namespace
}  // namespace gomodproxy::resolver
