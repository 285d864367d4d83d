// The request path: parse the target, answer from the cache when the entry is fresh, else join
// the one fill for its key (fill.cpp) and serve what that left in the cache, a stale entry, or
// the fill's error body.
#include "resolver/resolver.hpp"

#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "common/errc.hpp"
#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver_impl.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;
using protocol::endpoint;

namespace {

// Larger bodies are streamed in reads of this size, each on the reads executor.
constexpr std::size_t stream_chunk_bytes = 1 << 20;
// Entries up to this size are read on the I/O thread and sent in one write; the cache stores
// them inline with their metadata, so that is a single lookup, mostly from the block cache.
constexpr std::uint64_t small_entry_bytes = 64 << 10;

// The bytes a stored module file's key holds as they are: protocol::parse_module_request's
// upstream path leaves these raw, escapes upper case with '!' and percent-encodes the rest.
constexpr std::array<bool, 256> raw_key_bytes() {
  std::array<bool, 256> table{};
  for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = 'a'; c <= 'z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:@/")) table[static_cast<unsigned char>(c)] = true;
  return table;
}

// The kind of a target that may be looked up as it came, before it is parsed: a .info, .mod or
// .zip under "/@v/", outside /sumdb/, with nothing percent-encoded (the parse would decode it),
// no upper case, query or fragment.
std::optional<endpoint> verbatim_module_file(std::string_view target) {
  endpoint kind = endpoint::info;
  if (target.ends_with(".mod")) {
    kind = endpoint::mod;
  } else if (target.ends_with(".zip")) {
    kind = endpoint::zip;
  } else if (!target.ends_with(".info")) {
    return std::nullopt;
  }
  if (!target.starts_with('/') || target.starts_with("/sumdb/") ||
      target.find("/@v/") == std::string_view::npos) {
    return std::nullopt;
  }
  static constexpr auto raw = raw_key_bytes();
  for (char c : target) {
    if (!raw[static_cast<unsigned char>(c)]) return std::nullopt;
  }
  return kind;
}

// A body kept as a file goes out in ranges of this size, each made resident in the page cache
// before the I/O thread sends it.
constexpr std::uint64_t file_range_bytes = 1 << 20;

// cachestat(2) has the same number on every architecture (Linux 6.5+); older headers lack it.
#ifndef SYS_cachestat
// NOLINTNEXTLINE(cppcoreguidelines-macro-usage): stands in for the libc header's own macro.
#define SYS_cachestat 451
#endif

// Whether every page of the range is in the page cache, so that sending it never waits on the
// disk; nullopt when the kernel cannot tell (before Linux 6.5, or the call failed).
std::optional<bool> pages_resident(const server::file_range& range) {
  static std::atomic<bool> unsupported{false};
  if (unsupported.load(std::memory_order_relaxed)) return std::nullopt;
  struct {
    std::uint64_t offset;
    std::uint64_t length;
  } asked{range.offset, range.length};
  struct {
    std::uint64_t cached;
    std::uint64_t dirty;
    std::uint64_t writeback;
    std::uint64_t evicted;
    std::uint64_t recently_evicted;
  } pages{};
  if (::syscall(SYS_cachestat, range.fd, &asked, &pages, 0) != 0) {
    if (errno == ENOSYS) unsupported.store(true, std::memory_order_relaxed);
    return std::nullopt;
  }
  static const auto page_bytes = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t spanned =
      (range.offset + range.length + page_bytes - 1) / page_bytes - range.offset / page_bytes;
  return pages.cached >= spanned;
}

// Reads the range once, on a reads thread, so its pages are in the page cache when the I/O
// thread sends it. False when the file ends before the range does or cannot be read.
bool load_pages(const server::file_range& range) {
  constexpr std::size_t scratch_bytes = 128 << 10;
  thread_local std::vector<char> scratch;
  if (scratch.empty()) scratch.resize(scratch_bytes);
  std::uint64_t offset = range.offset;
  std::uint64_t left = range.length;
  while (left > 0) {
    const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(left, scratch_bytes));
    const auto n = ::pread(range.fd, scratch.data(), piece, static_cast<off_t>(offset));
    if (n > 0) {
      offset += static_cast<std::uint64_t>(n);
      left -= static_cast<std::uint64_t>(n);
    } else if (n == 0 || errno != EINTR) {
      return false;
    }
  }
  return true;
}

std::string content_type_for(endpoint kind) {
  switch (kind) {
    case endpoint::info:
    case endpoint::query:
    case endpoint::latest:
      return "application/json";
    case endpoint::zip:
      return "application/zip";
    case endpoint::sumdb_tile:
      return "application/octet-stream";
    case endpoint::list:
    case endpoint::mod:
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_latest:
      break;
  }
  return "text/plain; charset=utf-8";
}

// Passes every call through and remembers the status sent, for the request metrics. The
// awaitables are returned, not awaited, so no coroutine frame is added per call.
class observed_writer final : public server::response_writer {
 public:
  explicit observed_writer(server::response_writer& inner) : inner_(inner) {}

  net::awaitable<bool> send(const server::response_head& head, std::string_view body) override {
    status_ = head.status;
    return inner_.send(head, body);
  }
  net::awaitable<bool> send_head(const server::response_head& head,
                                 std::uint64_t content_length) override {
    status_ = head.status;
    return inner_.send_head(head, content_length);
  }
  net::awaitable<bool> send_head_with(const server::response_head& head,
                                      std::uint64_t content_length,
                                      std::string_view first_chunk) override {
    status_ = head.status;
    return inner_.send_head_with(head, content_length, first_chunk);
  }
  net::awaitable<bool> write_body(std::string_view chunk) override {
    return inner_.write_body(chunk);
  }
  net::awaitable<bool> send_head_with_file(const server::response_head& head,
                                           std::uint64_t content_length,
                                           server::file_range first) override {
    status_ = head.status;
    return inner_.send_head_with_file(head, content_length, first);
  }
  net::awaitable<bool> write_file(server::file_range range) override {
    return inner_.write_file(range);
  }
  bool head_only() const override { return inner_.head_only(); }
  void note(std::string_view cache_result, std::string_view tier) override {
    inner_.note(cache_result, tier);
  }

  /// 0 when nothing was sent (the server then answers 500).
  int status() const { return status_; }

 private:
  server::response_writer& inner_;
  int status_ = 0;
};

// Counts a request in gomodproxy_inflight_requests on every way out, exceptions included.
class inflight_guard {
 public:
  explicit inflight_guard(monitor::metrics& metrics) : metrics_(metrics) {
    metrics_.inflight_started();
  }
  ~inflight_guard() { metrics_.inflight_finished(); }
  inflight_guard(const inflight_guard&) = delete;
  inflight_guard& operator=(const inflight_guard&) = delete;

 private:
  monitor::metrics& metrics_;
};

tier_chain make_chain(const std::vector<upstream::tier_spec>& tiers,
                      const upstream::tier_factory& make_tier, const monitor::metrics* metrics,
                      const monitor::tier_health* health) {
  tier_chain chain;
  chain.tiers = tiers;
  for (const auto& tier : tiers) {
    chain.sources.push_back(make_tier ? make_tier(tier) : nullptr);
    tier_slots slots;
    if (tier.type == upstream::tier_spec::kind::url) {
      if (metrics) slots.metrics = metrics->tier_index(tier.name);
      if (health) slots.health = health->tier_index(tier.name);
    }
    chain.slots.push_back(slots);
  }
  return chain;
}

}  // namespace

std::string describe(const protocol::module_request& request) {
  switch (request.kind) {
    case endpoint::list:
      return request.module_path + "/@v/list";
    case endpoint::latest:
      return request.module_path + "@latest";
    case endpoint::sumdb_supported:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      return request.sumdb + request.upstream_path;
    default:
      return request.module_path + "@" + request.version;
  }
}

monitor::request_kind kind_of(endpoint kind) {
  switch (kind) {
    case endpoint::list:
      return monitor::request_kind::list;
    case endpoint::latest:
      return monitor::request_kind::latest;
    case endpoint::info:
      return monitor::request_kind::info;
    case endpoint::query:
      return monitor::request_kind::query;
    case endpoint::mod:
      return monitor::request_kind::mod;
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      return monitor::request_kind::sumdb;
    case endpoint::zip:
      break;
  }
  return monitor::request_kind::zip;
}

resolver::resolver(resolver_options options, cache::cache_store& store,
                   const upstream::tier_factory& make_tier, resolver_executors executors)
    : impl_(std::make_shared<impl>(std::move(options), store, make_tier, std::move(executors))) {}

resolver::resolver(resolver_options options, cache::cache_store& store,
                   const upstream::tier_factory& make_tier,
                   const net::any_io_executor& work_executor)
    : resolver(std::move(options), store, make_tier,
               resolver_executors{work_executor, work_executor, work_executor}) {}

resolver::~resolver() = default;

// Not a coroutine: the caller awaits impl's own, one frame allocation fewer per request.
net::awaitable<void> resolver::handle(const server::request_view& request,
                                      server::response_writer& writer) {
  return impl_->handle(request, writer);
}

void resolver::abandon_waiting() { impl_->flights_.close(); }

bool resolver::ready() const {
  if (impl_->options_.offline) return true;
  auto usable = [](const std::vector<upstream::tier_spec>& tiers) {
    for (const auto& tier : tiers) {
      if (tier.type != upstream::tier_spec::kind::off) return true;
    }
    return false;
  };
  return usable(impl_->options_.tiers);
}

resolver::impl::impl(resolver_options options, cache::cache_store& store,
                     const upstream::tier_factory& make_tier, resolver_executors executors)
    : options_(std::move(options)),
      store_(store),
      executors_(std::move(executors)),
      flights_(executors_.fills),
      metrics_(options_.metrics),
      health_(options_.health),
      public_chain_(make_chain(options_.tiers, make_tier, metrics_, health_)),
      private_chain_(make_chain(options_.private_tiers, make_tier, metrics_, health_)) {
  for (const auto& database : options_.sumdbs) {
    sumdb_chains_.emplace(database.name, make_chain(database.tiers, make_tier, metrics_, health_));
  }
}

const sumdb_options* resolver::impl::sumdb_named(std::string_view name) const {
  for (const auto& database : options_.sumdbs) {
    if (database.name == name) return &database;
  }
  return nullptr;
}

bool resolver::impl::is_private(const std::string& module_path) const {
  return !options_.private_patterns.empty() &&
         protocol::match_prefix_patterns(options_.private_patterns, module_path);
}

net::awaitable<void> resolver::impl::handle(const server::request_view& request,
                                            server::response_writer& writer) {
  if (!metrics_) {
    auto kind = monitor::request_kind::other;
    co_await answer(request, writer, kind);
    co_return;
  }
  auto started = std::chrono::steady_clock::now();
  inflight_guard inflight(*metrics_);
  observed_writer observed(writer);
  auto kind = monitor::request_kind::other;
  co_await answer(request, observed, kind);
  metrics_->count_request(kind, observed.status() == 0 ? 500 : observed.status(),
                          std::chrono::steady_clock::now() - started);
}

void resolver::impl::count_lookup(monitor::request_kind kind, monitor::cache_result result) {
  if (metrics_) metrics_->count_cache_lookup(kind, result);
}

// Answers one request; sets `kind` as soon as it is known.
net::awaitable<void> resolver::impl::answer(const server::request_view& request,
                                            server::response_writer& writer,
                                            monitor::request_kind& kind) {
  // A warm .info, .mod or .zip is answered before its target is parsed (the parse is a fifth of a
  // warm request's instructions) when the target, as it came, is the key of a stored immutable
  // entry. The answer is the parse's own: keys are written only for parsed requests (fills,
  // bundle imports), as their canonical upstream path, and parsing that path gives back the same
  // request; of .info files only canonical versions' are immutable, revision queries expire.
  // Anything else goes the whole way, with the entry found here, so nothing is looked up twice.
  // The whole way is a coroutine of its own: its state would make this frame too large for
  // Asio to recycle (over 1,020 bytes), and a hit would allocate it every time.
  std::optional<std::unique_ptr<cache::entry_reader>> verbatim;
  if (const auto file_kind = verbatim_module_file(request.target)) {
    if (auto found = store_.open(request.target)) {
      if (*found && (*found)->meta().kind == cache::entry_kind::immutable) {
        kind = kind_of(*file_kind);
        count_lookup(kind, monitor::cache_result::hit);
        protocol::module_request hit;
        hit.kind = *file_kind;
        hit.cache_key = std::string(request.target);
        co_await serve(writer, hit, **found, "hit");
        co_return;
      }
      verbatim = std::move(*found);
    }
  }
  co_await answer_parsed(request, writer, kind, std::move(verbatim));
}

net::awaitable<void> resolver::impl::answer_parsed(
    const server::request_view& request, server::response_writer& writer,
    monitor::request_kind& kind, std::optional<std::unique_ptr<cache::entry_reader>> verbatim) {
  auto parsed = protocol::parse_module_request(request.target);
  if (!parsed) {
    if (request.target.starts_with("/sumdb/")) kind = monitor::request_kind::sumdb;
    co_await send_text(writer, to_http_status(parsed.error()),
                       "not found: " + parsed.error().detail + "\n");
    co_return;
  }
  auto& module_request = *parsed;
  kind = kind_of(module_request.kind);
  if (protocol::is_sumdb(module_request.kind)) {
    // Answered here, never forwarded: an unknown database (404 makes the go command go
    // direct), the support probe, and lookups that would reveal a private module's name.
    if (!sumdb_named(module_request.sumdb)) {
      co_await send_text(
          writer, to_http_status(errc::not_found),
          "not found: checksum database " + module_request.sumdb + " is not proxied here\n");
      co_return;
    }
    if (module_request.kind == endpoint::sumdb_supported) {
      co_await send_text(writer, 200, "");
      co_return;
    }
    if (module_request.kind == endpoint::sumdb_lookup && is_private(module_request.module_path)) {
      co_await send_text(writer, to_http_status(errc::not_found),
                         "not found: " + module_request.module_path +
                             " is private; it is never looked up in a checksum database "
                             "(set GONOSUMDB or GOPRIVATE for it)\n");
      co_return;
    }
  }

  std::unique_ptr<cache::entry_reader> stale;
  auto entry = verbatim && module_request.cache_key == request.target
                   ? std::move(*verbatim)
                   : open_entry(module_request.cache_key);
  if (entry) {
    if (is_fresh(entry->meta())) {
      count_lookup(kind, monitor::cache_result::hit);
      co_await serve(writer, module_request, *entry, "hit");
      co_return;
    }
    if (entry->meta().kind == cache::entry_kind::expiring) {
      count_lookup(kind, monitor::cache_result::stale);
      stale = std::move(entry);
    } else {
      count_lookup(kind, monitor::cache_result::miss);
    }
  } else {
    count_lookup(kind, monitor::cache_result::miss);
  }

  auto joined = co_await flights_.join(module_request.cache_key, [this, &module_request] {
    return fill(shared_from_this(), module_request);
  });
  if (joined.shared && metrics_) metrics_->count_singleflight_shared();
  const char* cache_result = joined.shared ? "shared" : "miss";
  if (joined.outcome.committed) {
    if (auto entry = open_entry(module_request.cache_key)) {
      co_await serve(writer, module_request, *entry, cache_result);
      co_return;
    }
  }
  if (stale) {
    if (metrics_) metrics_->count_stale_served(kind);
    co_await serve(writer, module_request, *stale, "stale");
    co_return;
  }
  if (joined.abandoned) {
    writer.note("abandoned", "");
    co_await send_text(writer, 503, "server is shutting down; retry\n");
    co_return;
  }
  if (joined.thrown) {
    writer.note(cache_result, "-");
    co_await send_text(writer, unavailable_status(),
                       "not found: " + describe(module_request) +
                           "\ninternal error: the fill failed: " + *joined.thrown + "\n");
    co_return;
  }
  writer.note(cache_result, joined.outcome.tier);
  int status = joined.outcome.committed ? to_http_status(errc::not_found)
                                        : fill_status(joined.outcome.error);
  std::string body =
      joined.outcome.committed ? "not found: cache entry vanished\n" : joined.outcome.body;
  co_await send_text(writer, status, body);
}

// upstream_unavailable's 404 by default: the go command then tries the next entry of its GOPROXY
// whatever separates them, where a 502 stops it at a `,`.
int resolver::impl::unavailable_status() const {
  return options_.all_failed_502 ? 502 : to_http_status(errc::upstream_unavailable);
}

// A cache that could not take the answer is answered as when no tier answered: the go command
// may find the module at its next proxy either way.
int resolver::impl::fill_status(const boost::system::error_code& error) const {
  return error == errc::not_found ? to_http_status(error) : unavailable_status();
}

std::int64_t resolver::impl::now_ms() const {
  const auto now = options_.now ? options_.now() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

// Whether an entry may be answered as it is, without asking the tiers again.
bool resolver::impl::is_fresh(const cache::entry_meta& meta) const {
  const auto age = std::chrono::milliseconds(now_ms() - meta.stored_at_ms);
  switch (meta.kind) {
    case cache::entry_kind::immutable:
      return true;
    case cache::entry_kind::expiring:
      return age < options_.list_ttl;
    case cache::entry_kind::not_found:
      return age < options_.negative_ttl;
  }
  return false;
}

std::unique_ptr<cache::entry_reader> resolver::impl::open_entry(const std::string& key) {
  auto entry = store_.open(key);
  if (!entry) {
    spdlog::error("cache read of {} failed: {}", key, entry.error().message());
    return nullptr;
  }
  return std::move(*entry);
}

net::awaitable<void> resolver::impl::send_text(server::response_writer& writer, int status,
                                               std::string_view body) {
  server::response_head head;
  head.status = status;
  head.content_type = "text/plain; charset=utf-8";
  head.cache_control = "no-store";
  (void)co_await writer.send(head, body);
}

net::awaitable<void> resolver::impl::send_cache_read_failure(server::response_writer& writer,
                                                             boost::system::error_code error) {
  co_await send_text(writer, to_http_status(error), "cache read failed: " + error.message() + "\n");
}

net::awaitable<void> resolver::impl::serve(server::response_writer& writer,
                                           const protocol::module_request& request,
                                           cache::entry_reader& entry,
                                           std::string_view cache_result) {
  const auto& meta = entry.meta();
  writer.note(cache_result, meta.tier.empty() ? "-" : meta.tier);
  server::response_head head;
  if (meta.kind == cache::entry_kind::not_found) {
    head.status = to_http_status(errc::not_found);
    head.content_type = "text/plain; charset=utf-8";
    head.cache_control = "no-store";
  } else {
    head.content_type = content_type_for(request.kind);
    head.cache_control = meta.kind == cache::entry_kind::immutable
                             ? "public, max-age=604800, immutable"
                             : "public, max-age=" + std::to_string(options_.list_ttl.count());
  }
  if (const auto file = entry.file()) {
    co_await serve_file(writer, request, *file, head, meta.size);
    co_return;
  }
  if (meta.size <= small_entry_bytes) {
    auto body = writer.head_only() ? cache::result<std::string_view>(std::string_view())
                                   : entry.view(0, meta.size);
    cache::result<std::string> copied;
    if (body && !writer.head_only() && body->size() < meta.size) {
      // Stored in chunks smaller than the entry: gather them.
      copied = entry.read(0, meta.size);
      body = copied ? cache::result<std::string_view>(*copied)
                    : cache::result<std::string_view>(copied.error());
    }
    if (!body || (!writer.head_only() && body->size() != meta.size)) {
      co_await send_cache_read_failure(writer,
                                       body ? make_error_code(errc::cache_corrupt) : body.error());
      co_return;
    }
    if (writer.head_only()) {
      (void)co_await writer.send_head(head, meta.size);
    } else {
      (void)co_await writer.send(head, *body);
    }
    co_return;
  }
  if (writer.head_only()) {
    (void)co_await writer.send_head(head, meta.size);
    co_return;
  }
  // A view of the store's own copy of a chunk (read on the reads pool, which a fill's hashing
  // never occupies), written straight to the socket: no per-request copy of the body.
  auto read_at = [this, &entry](std::uint64_t offset) {
    return net::co_spawn(
        executors_.reads,
        [&entry, offset]() -> net::awaitable<cache::result<std::string_view>> {
          co_return entry.view(offset, stream_chunk_bytes);
        },
        net::use_awaitable);
  };
  // The first chunk is read before the head goes out: an entry whose bytes cannot be read is
  // still answered 500, and the head travels with the first bytes in one write.
  auto first = co_await read_at(0);
  if (!first || first->empty()) {
    spdlog::error("cache read of {} failed at offset 0", request.cache_key);
    co_await send_cache_read_failure(writer,
                                     first ? make_error_code(errc::cache_corrupt) : first.error());
    co_return;
  }
  if (!co_await writer.send_head_with(head, meta.size, *first)) co_return;
  std::uint64_t offset = first->size();
  while (offset < meta.size) {
    auto chunk = co_await read_at(offset);
    if (!chunk || chunk->empty()) {
      // The head is gone already; closing short of Content-Length is the only honest signal.
      spdlog::error("cache read of {} failed at offset {}", request.cache_key, offset);
      co_return;
    }
    if (!co_await writer.write_body(*chunk)) co_return;
    offset += chunk->size();
  }
}

// A body the store keeps as a file, sent from it by the connection (sendfile on plain TCP): no
// byte of it passes through this process. A range whose pages are not all in the page cache is
// read on the reads pool first, so the I/O thread never waits on the disk.
net::awaitable<void> resolver::impl::serve_file(server::response_writer& writer,
                                                const protocol::module_request& request,
                                                const cache::body_file& file,
                                                const server::response_head& head,
                                                std::uint64_t size) {
  if (writer.head_only() || size == 0) {
    (void)co_await writer.send_head(head, size);
    co_return;
  }
  for (std::uint64_t sent = 0; sent < size;) {
    const server::file_range range{file.fd, file.offset + sent,
                                   std::min(file_range_bytes, size - sent)};
    if (pages_resident(range) != true) {
      const bool loaded = co_await net::co_spawn(
          executors_.reads, [range]() -> net::awaitable<bool> { co_return load_pages(range); },
          net::use_awaitable);
      if (!loaded) {
        spdlog::error("cache read of {} failed at offset {}: its body file is short or unreadable",
                      request.cache_key, sent);
        // Before the head a 500; after it, closing short of Content-Length is the only honest
        // signal.
        if (sent == 0) co_await send_cache_read_failure(writer, errc::cache_corrupt);
        co_return;
      }
    }
    const bool written = sent == 0 ? co_await writer.send_head_with_file(head, size, range)
                                   : co_await writer.write_file(range);
    if (!written) co_return;
    sent += range.length;
  }
}

// One line from an error answer: what each tier said ("a: 404; b: dns: ..."), since its first
// line only repeats what was asked; the first line when no tier is named.
std::string resolver::impl::tier_reasons(std::string_view body) {
  if (body.empty()) return "no answer";
  const auto first_end = body.find('\n');
  std::string tiers;
  for (auto rest = first_end == std::string_view::npos ? std::string_view{}
                                                       : body.substr(first_end + 1);
       !rest.empty();) {
    const auto end = rest.find('\n');
    if (const auto line = rest.substr(0, end); !line.empty()) {
      tiers += (tiers.empty() ? "" : "; ") + std::string(line);
    }
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
  return tiers.empty() ? std::string(body.substr(0, first_end)) : tiers;
}

// The body the proxy would answer for `target` (a protocol or checksum database path): from
// the cache, or fetched through the tiers like any client request, so it is verified, cached
// and shared the same way (a stale list is refreshed, and served if that fails). A failure
// when there is none: invalid_request for a target that does not parse, not_found when no tier
// has it, upstream_unavailable when none answered (or the fill ended without an answer), the
// cache's code when the cache could not take or give it.
net::awaitable<outcome_of<std::string>> resolver::impl::cached_body(
    std::string target, std::chrono::steady_clock::time_point deadline) {
  auto parsed = protocol::parse_module_request(target);
  if (!parsed) co_return parsed.error();
  auto request = std::move(*parsed);
  auto entry = open_entry(request.cache_key);
  // A remembered absence is asked about again however recent: a checksum database learns of
  // a version when first asked for it, and the fill waiting for this body fails without it.
  if (!entry || entry->meta().kind == cache::entry_kind::not_found || !is_fresh(entry->meta())) {
    auto joined = co_await flights_.join(
        request.cache_key, [this, &request] { return fill(shared_from_this(), request); },
        deadline);
    if (joined.gave_up) co_return failure{errc::upstream_unavailable, fill_deadline_reason()};
    if (joined.thrown) {
      co_return failure{errc::upstream_unavailable,
                        "internal error: the fill failed: " + *joined.thrown};
    }
    auto filled = joined.outcome.committed ? open_entry(request.cache_key) : nullptr;
    if (filled) {
      entry = std::move(filled);
    } else if (!entry || entry->meta().kind != cache::entry_kind::expiring) {
      co_return failure{
          joined.outcome.committed ? make_error_code(errc::not_found) : joined.outcome.error,
          tier_reasons(joined.outcome.body)};
    }
  }
  if (entry->meta().kind == cache::entry_kind::not_found) {
    co_return failure{errc::not_found,
                      request.sumdb.empty() ? "not found" : "not in the checksum database"};
  }
  auto body = entry->read(0, static_cast<std::size_t>(entry->meta().size));
  if (!body) {
    co_return failure{body.error(), "cache read failed: " + body.error().message()};
  }
  co_return std::move(*body);
}

}  // namespace gomodproxy::resolver
