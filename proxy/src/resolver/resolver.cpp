#include "resolver/resolver.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "protocol/path_glob.hpp"
#include "protocol/request.hpp"
#include "resolver/body_check.hpp"
#include "resolver/flight_table.hpp"

namespace gomodproxy::resolver {
namespace net = boost::asio;
using protocol::endpoint;

namespace {

// Larger bodies are streamed in reads of this size, each on the work executor.
constexpr std::size_t stream_chunk_bytes = 1 << 20;
// Entries up to this size are read on the I/O thread and sent in one write; the cache stores
// them inline with their metadata, so that is a single lookup, mostly from the block cache.
constexpr std::uint64_t small_entry_bytes = 64 << 10;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_immutable(endpoint kind) {
  return kind == endpoint::info || kind == endpoint::mod || kind == endpoint::zip;
}

std::string content_type_for(endpoint kind) {
  switch (kind) {
    case endpoint::info:
    case endpoint::query:
    case endpoint::latest:
      return "application/json";
    case endpoint::zip:
      return "application/zip";
    case endpoint::list:
    case endpoint::mod:
      break;
  }
  return "text/plain; charset=utf-8";
}

std::string describe(const protocol::module_request& request) {
  switch (request.kind) {
    case endpoint::list:
      return request.module_path + "/@v/list";
    case endpoint::latest:
      return request.module_path + "@latest";
    default:
      return request.module_path + "@" + request.version;
  }
}

// The result of one fill, shared by every request that joined it.
struct fill_outcome {
  bool committed = false;  ///< the cache now holds the answer (possibly a negative entry)
  int status = 404;        ///< when not committed
  std::string body;        ///< when not committed: the plain-text error body
  std::string tier;        ///< tier that answered, or "-"
};

}  // namespace

struct resolver::impl : std::enable_shared_from_this<impl> {
  impl(resolver_options options, cache::cache_store& store, upstream::http_client& client,
       net::any_io_executor work_executor)
      : options_(std::move(options)),
        store_(store),
        client_(client),
        work_executor_(work_executor),
        flights_(work_executor) {}

  resolver_options options_;
  cache::cache_store& store_;
  upstream::http_client& client_;
  net::any_io_executor work_executor_;
  flight_table<fill_outcome> flights_;

  net::awaitable<void> handle(const server::request_view& request,
                              server::response_writer& writer) {
    auto parsed = protocol::parse_module_request(request.target);
    if (auto* error = std::get_if<protocol::parse_error>(&parsed)) {
      co_await send_text(writer, 404, "not found: " + error->reason + "\n");
      co_return;
    }
    auto& module_request = std::get<protocol::module_request>(parsed);

    std::unique_ptr<cache::entry_reader> stale;
    if (auto entry = open_entry(module_request.cache_key)) {
      const auto& meta = entry->meta();
      auto age = std::chrono::milliseconds(now_ms() - meta.stored_at_ms);
      switch (meta.kind) {
        case cache::entry_kind::immutable:
          co_await serve(writer, module_request, *entry, "hit");
          co_return;
        case cache::entry_kind::expiring:
          if (age < options_.list_ttl) {
            co_await serve(writer, module_request, *entry, "hit");
            co_return;
          }
          stale = std::move(entry);
          break;
        case cache::entry_kind::not_found:
          if (age < options_.negative_ttl) {
            co_await serve(writer, module_request, *entry, "hit");
            co_return;
          }
          break;
      }
    }

    auto joined = co_await flights_.join(module_request.cache_key, [this, &module_request] {
      return fill(shared_from_this(), module_request);
    });
    const char* cache_result = joined.shared ? "shared" : "miss";
    if (joined.outcome.committed) {
      if (auto entry = open_entry(module_request.cache_key)) {
        co_await serve(writer, module_request, *entry, cache_result);
        co_return;
      }
    }
    if (stale) {
      co_await serve(writer, module_request, *stale, "stale");
      co_return;
    }
    writer.note(cache_result, joined.outcome.tier);
    int status = joined.outcome.committed ? 404 : joined.outcome.status;
    std::string body = joined.outcome.committed ? "not found: cache entry vanished\n"
                                                : joined.outcome.body;
    co_await send_text(writer, status, body);
  }

  std::unique_ptr<cache::entry_reader> open_entry(const std::string& key) {
    auto entry = store_.open(key);
    if (!entry) {
      spdlog::error("cache read of {} failed: {}", key, entry.error().message());
      return nullptr;
    }
    return std::move(*entry);
  }

  static net::awaitable<void> send_text(server::response_writer& writer, int status,
                                        std::string_view body) {
    server::response_head head;
    head.status = status;
    head.content_type = "text/plain; charset=utf-8";
    head.cache_control = "no-store";
    (void)co_await writer.send(head, body);
  }

  net::awaitable<void> serve(server::response_writer& writer,
                             const protocol::module_request& request, cache::entry_reader& entry,
                             std::string_view cache_result) {
    const auto& meta = entry.meta();
    writer.note(cache_result, meta.tier.empty() ? "-" : meta.tier);
    server::response_head head;
    if (meta.kind == cache::entry_kind::not_found) {
      head.status = 404;
      head.content_type = "text/plain; charset=utf-8";
      head.cache_control = "no-store";
    } else {
      head.content_type = content_type_for(request.kind);
      head.cache_control = meta.kind == cache::entry_kind::immutable
                               ? "public, max-age=604800, immutable"
                               : "public, max-age=" + std::to_string(options_.list_ttl.count());
    }
    if (meta.size <= small_entry_bytes) {
      auto body = writer.head_only() ? cache::result<std::string>(std::string())
                                     : entry.read(0, meta.size);
      if (!body || (!writer.head_only() && body->size() != meta.size)) {
        co_await send_text(writer, 500, "cache read failed\n");
        co_return;
      }
      if (writer.head_only()) {
        (void)co_await writer.send_head(head, meta.size);
      } else {
        (void)co_await writer.send(head, *body);
      }
      co_return;
    }
    if (!co_await writer.send_head(head, meta.size) || writer.head_only()) co_return;
    std::uint64_t offset = 0;
    while (offset < meta.size) {
      auto chunk = co_await net::co_spawn(
          work_executor_,
          [&entry, offset]() -> net::awaitable<cache::result<std::string>> {
            co_return entry.read(offset, stream_chunk_bytes);
          },
          net::use_awaitable);
      if (!chunk || chunk->empty()) {
        // The head is gone already; closing short of Content-Length is the only honest signal.
        spdlog::error("cache read of {} failed at offset {}", request.cache_key, offset);
        co_return;
      }
      if (!co_await writer.write_body(*chunk)) co_return;
      offset += chunk->size();
    }
  }

  const std::vector<upstream::tier_spec>& tiers_for(const std::string& module_path) const {
    if (!options_.private_patterns.empty() &&
        protocol::match_prefix_patterns(options_.private_patterns, module_path)) {
      return options_.private_tiers;
    }
    return options_.tiers;
  }

  // Walks the tiers for one request, on the work executor. Fall-through follows GOPROXY rules:
  // not-found always moves on; an error moves on only after '|'; a body that fails
  // verification moves on too, since that tier's answer is unusable whatever the separator.
  // `self` keeps the resolver alive for a fill that outlives its requests.
  net::awaitable<fill_outcome> fill([[maybe_unused]] std::shared_ptr<impl> self,
                                    protocol::module_request request) {
    std::string tried;
    bool hard_failure = false;
    for (const auto& tier : tiers_for(request.module_path)) {
      if (tier.type == upstream::tier_spec::kind::off) {
        tried += "off: module lookup disabled\n";
        break;
      }
      if (tier.type == upstream::tier_spec::kind::direct) {
        tried += "direct: fetching from version control is not supported yet\n";
        break;
      }
      auto created = store_.create(request.cache_key);
      if (!created) co_return cache_failure(created.error());
      std::unique_ptr<cache::entry_writer> entry = std::move(*created);
      std::uint64_t limit = body_limit(request.kind);
      bool too_large = false;
      boost::system::error_code write_error;
      auto sink = [&](std::string_view chunk) {
        if (entry->size() + chunk.size() > limit) {
          too_large = true;
          return false;
        }
        if (auto appended = entry->append(chunk); !appended) {
          write_error = appended.error();
          return false;
        }
        return true;
      };
      auto fetched = co_await client_.get(tier.url + request.upstream_path, sink,
                                          options_.deadlines);
      if (write_error) co_return cache_failure(write_error);
      switch (fetched.result) {
        case upstream::outcome::ok: {
          auto reader = [&entry](std::uint64_t offset, std::size_t length) {
            return entry->read(offset, length);
          };
          if (auto bad = check_body(request, entry->size(), reader)) {
            spdlog::warn("{} from {} rejected: {}", request.upstream_path, tier.name, *bad);
            tried += tier.name + ": invalid answer: " + *bad + "\n";
            hard_failure = true;
            continue;
          }
          cache::entry_meta meta;
          meta.kind = is_immutable(request.kind) ? cache::entry_kind::immutable
                                                 : cache::entry_kind::expiring;
          meta.stored_at_ms = now_ms();
          meta.tier = tier.name;
          if (auto committed = entry->commit(meta); !committed) {
            co_return cache_failure(committed.error());
          }
          co_return fill_outcome{true, 200, {}, tier.name};
        }
        case upstream::outcome::not_found:
          tried += tier.name + ": " + fetched.reason + "\n";
          continue;
        case upstream::outcome::error:
        case upstream::outcome::timeout:
          tried += tier.name + ": " + (too_large ? std::string("response too large")
                                                 : fetched.reason) +
                   "\n";
          hard_failure = true;
          break;
      }
      if (!tier.fall_through_on_error) break;
    }
    std::string body = "not found: " + describe(request) + "\n" + tried;
    if (hard_failure) {
      co_return fill_outcome{false, options_.all_failed_502 ? 502 : 404, std::move(body), "-"};
    }
    co_return remember_not_found(request, std::move(body));
  }

  // Every tier said not found: remember that briefly, unless an older positive answer exists
  // (a list or @latest that an upstream lost is better served stale than forgotten).
  fill_outcome remember_not_found(const protocol::module_request& request, std::string body) {
    auto existing = store_.stat(request.cache_key);
    if (existing && *existing && (*existing)->kind != cache::entry_kind::not_found) {
      return fill_outcome{false, 404, std::move(body), "-"};
    }
    auto created = store_.create(request.cache_key);
    if (created) {
      auto& entry = *created;
      cache::entry_meta meta;
      meta.kind = cache::entry_kind::not_found;
      meta.stored_at_ms = now_ms();
      if (entry->append(body) && entry->commit(meta)) return fill_outcome{true, 404, {}, "-"};
    }
    return fill_outcome{false, 404, std::move(body), "-"};
  }

  fill_outcome cache_failure(const boost::system::error_code& ec) const {
    spdlog::error("cache write failed: {}", ec.message());
    return fill_outcome{false, options_.all_failed_502 ? 502 : 404,
                        "not found: cache write failed: " + ec.message() + "\n", "-"};
  }
};

resolver::resolver(resolver_options options, cache::cache_store& store,
                   upstream::http_client& client, net::any_io_executor work_executor)
    : impl_(std::make_shared<impl>(std::move(options), store, client, std::move(work_executor))) {}

resolver::~resolver() = default;

net::awaitable<void> resolver::handle(const server::request_view& request,
                                      server::response_writer& writer) {
  co_await impl_->handle(request, writer);
}

bool resolver::ready() const {
  auto usable = [](const std::vector<upstream::tier_spec>& tiers) {
    for (const auto& tier : tiers) {
      if (tier.type != upstream::tier_spec::kind::off) return true;
    }
    return false;
  };
  return usable(impl_->options_.tiers);
}

}  // namespace gomodproxy::resolver
