#include "upstream/dns_resolver.hpp"

#include <ares.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

namespace gomodproxy::upstream {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using address_list = std::vector<net::ip::address>;
using endpoint_list = std::vector<net::ip::tcp::endpoint>;
using clock_type = std::chrono::steady_clock;

struct waiter;

/// What the lookup thread keeps of a caller: nothing that belongs to the caller's io_context, so
/// a query may outlive its callers, and their io_context, without touching either.
struct answer_slot {
  std::mutex mutex;
  /// Set while the caller waits; the first answer takes it, a caller that stops waiting clears
  /// it. Weak, so that a caller whose coroutine is destroyed unfinished (its io_context gone)
  /// leaves nothing to post to.
  std::weak_ptr<waiter> caller;
};

/// One caller waiting for one name. The lookup thread hands the answer over by posting to
/// `strand`, the same strand the caller checks `answered` and waits on, so an answer cannot slip
/// in between the check and the wait.
struct waiter {
  explicit waiter(const net::any_io_executor& executor)
      : strand(net::make_strand(executor)), wake(strand), slot(std::make_shared<answer_slot>()) {}
  net::strand<net::any_io_executor> strand;
  net::steady_timer wake;
  bool answered = false;   // strand only
  error_code error;        // strand only
  address_list addresses;  // strand only
  std::shared_ptr<answer_slot> slot;
};

error_code error_from_ares(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
      return net::error::host_not_found;
    case ARES_ENODATA:
      return net::error::no_data;
    case ARES_ENOMEM:
      return net::error::no_memory;
    default:
      // Timeouts after c-ares' last retry, SERVFAIL, REFUSED, no usable server: all say "try
      // again later" about the name, as getaddrinfo's EAI_AGAIN does.
      return net::error::host_not_found_try_again;
  }
}

bool is_localhost(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host == "localhost" || host.ends_with(".localhost");
}

endpoint_list with_port(const address_list& addresses, std::uint16_t port) {
  endpoint_list out;
  out.reserve(addresses.size());
  for (const auto& a : addresses) out.emplace_back(a, port);
  return out;
}

void initialise_ares_once() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (status != ARES_SUCCESS) {
    throw std::runtime_error(std::string("dns: cannot initialise c-ares: ") +
                             ares_strerror(status));
  }
}

/// One c-ares channel: the name servers of resolv.conf as it was read when the channel was made.
/// Lookup thread only.
struct name_server_channel {
  struct interest {
    bool read = false;
    bool write = false;
  };

  explicit name_server_channel(const std::string& name_servers) {
    ares_options ares{};
    ares.sock_state_cb = &name_server_channel::on_socket_state;
    ares.sock_state_cb_data = this;
    // /etc/hosts ("files") before DNS ("bind"), whatever host.conf or nsswitch.conf say: an
    // admin pinning a tier's address in /etc/hosts expects the proxy to honour it.
    static std::array<char, 3> lookups = {'f', 'b', '\0'};
    ares.lookups = lookups.data();
    int status = ares_init_options(&channel, &ares, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
    if (status != ARES_SUCCESS) {
      throw std::runtime_error(std::string("dns: cannot set up c-ares: ") + ares_strerror(status));
    }
    // As Asio's own sockets are: no process started from this one may inherit them.
    ares_set_socket_configure_callback(
        channel,
        [](ares_socket_t fd, int, void*) {
          ::fcntl(fd, F_SETFD, FD_CLOEXEC);
          return 0;
        },
        nullptr);
    if (!name_servers.empty()) {
      status = ares_set_servers_ports_csv(channel, name_servers.c_str());
      if (status != ARES_SUCCESS) {
        ares_destroy(channel);
        throw std::runtime_error("dns: bad name server list \"" + name_servers +
                                 "\": " + ares_strerror(status));
      }
    }
  }
  // Queries still in flight are answered with ARES_EDESTRUCTION.
  ~name_server_channel() { ares_destroy(channel); }
  name_server_channel(const name_server_channel&) = delete;
  name_server_channel& operator=(const name_server_channel&) = delete;

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<name_server_channel*>(data);
    if (!readable && !writable) {
      self->sockets.erase(fd);
    } else {
      self->sockets[fd] = interest{readable != 0, writable != 0};
    }
  }

  ares_channel channel = nullptr;
  std::map<ares_socket_t, interest> sockets;
  std::size_t queries_in_flight = 0;
};

/// What identifies one version of resolv.conf, to notice that it was replaced or rewritten.
struct file_identity {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t modified_ns = 0;
  bool operator==(const file_identity&) const = default;
};

file_identity identify(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return {};
  return {true, st.st_dev, st.st_ino, st.st_size,
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

constexpr const char* resolv_conf_path = "/etc/resolv.conf";
// As glibc (since 2.26) and Go's resolver do, a changed resolv.conf (a laptop joining another
// network) is picked up without a restart; Go looks at most every 5 s, a stat() per second is
// as cheap.
constexpr auto resolv_conf_check_interval = std::chrono::seconds(1);

}  // namespace

struct dns_resolver::impl {
  explicit impl(dns_resolver_options options)
      : cache_(options.cache), name_servers_(std::move(options.name_servers)) {
    initialise_ares_once();
    std::array<int, 2> pipe_fds{};
    if (::pipe2(pipe_fds.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
      throw std::runtime_error("dns: cannot create the wake-up pipe");
    }
    wake_read_ = pipe_fds[0];
    wake_write_ = pipe_fds[1];
    try {
      resolv_conf_ = identify(resolv_conf_path);
      resolv_conf_checked_ = clock_type::now();
      current_ = std::make_unique<name_server_channel>(name_servers_);
    } catch (...) {
      ::close(wake_read_);
      ::close(wake_write_);
      throw;
    }
    thread_ = std::thread([this] { run(); });
  }

  ~impl() {
    {
      std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    wake_thread();
    thread_.join();
    ::close(wake_read_);
    ::close(wake_write_);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  /// Queues a lookup of `host` for the slot's caller; the answer arrives on its strand.
  void submit(std::string host, std::shared_ptr<answer_slot> slot) {
    {
      std::lock_guard lock(queue_mutex_);
      queue_.push_back({std::move(host), std::move(slot)});
    }
    wake_thread();
  }

  // Thread-safe on its own: dns_resolver's lookups read it without the request queue.
  dns_cache cache_;  // NOLINT(cppcoreguidelines-non-private-member-variables-in-classes)

 private:
  struct request {
    std::string host;
    std::shared_ptr<answer_slot> slot;
  };
  struct query_context {
    impl* self;
    name_server_channel* channel;
    std::string host;
  };

  void wake_thread() {
    char byte = 1;
    // A full pipe already holds a wake-up, so a failed write loses nothing.
    (void)!::write(wake_write_, &byte, 1);
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
    std::unique_ptr<query_context> context(static_cast<query_context*>(arg));
    --context->channel->queries_in_flight;
    address_list addresses;
    int ttl = INT_MAX;
    if (status == ARES_SUCCESS && result) {
      for (auto* node = result->nodes; node; node = node->ai_next) {
        net::ip::address a;
        if (node->ai_family == AF_INET && node->ai_addr) {
          const auto* in = reinterpret_cast<const sockaddr_in*>(node->ai_addr);
          net::ip::address_v4::bytes_type bytes;
          std::memcpy(bytes.data(), &in->sin_addr, bytes.size());
          a = net::ip::address_v4(bytes);
        } else if (node->ai_family == AF_INET6 && node->ai_addr) {
          const auto* in6 = reinterpret_cast<const sockaddr_in6*>(node->ai_addr);
          net::ip::address_v6::bytes_type bytes;
          std::memcpy(bytes.data(), &in6->sin6_addr, bytes.size());
          a = net::ip::address_v6(bytes, in6->sin6_scope_id);
        } else {
          continue;
        }
        ttl = std::min(ttl, node->ai_ttl);
        if (std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
          addresses.push_back(a);
        }
      }
      // An answer reached through a CNAME is good only as long as the alias is.
      for (auto* alias = result->cnames; alias; alias = alias->next) {
        ttl = std::min(ttl, alias->ttl);
      }
    }
    if (result) ares_freeaddrinfo(result);

    error_code error;
    if (status != ARES_SUCCESS) {
      error = error_from_ares(status);
    } else if (addresses.empty()) {
      error = net::error::no_data;
    } else {
      // /etc/hosts answers carry no TTL (0): they are read again each time, which is cheap.
      context->self->cache_.remember(context->host, addresses, std::chrono::seconds(ttl),
                                     clock_type::now());
    }
    context->self->finish(context->host, error, addresses);
  }

  void finish(const std::string& host, const error_code& error, const address_list& addresses) {
    auto it = queries_.find(host);
    if (it == queries_.end()) return;
    auto slots = std::move(it->second);
    queries_.erase(it);
    for (const auto& slot : slots) deliver(*slot, error, addresses);
  }

  static void deliver(answer_slot& slot, const error_code& error, const address_list& addresses) {
    std::lock_guard lock(slot.mutex);
    // A caller past its deadline has left, perhaps with its io_context.
    auto w = slot.caller.lock();
    slot.caller.reset();
    if (!w) return;
    auto strand = w->strand;
    net::post(strand, [w = std::move(w), error, addresses = addresses]() mutable {
      w->answered = true;
      w->error = error;
      w->addresses = std::move(addresses);
      w->wake.cancel();
    });
  }

  /// New queries go to a new channel once resolv.conf changed; the old channel stays until the
  /// queries it carries end.
  void follow_resolv_conf() {
    auto now = clock_type::now();
    if (now - resolv_conf_checked_ < resolv_conf_check_interval) return;
    resolv_conf_checked_ = now;
    auto seen = identify(resolv_conf_path);
    if (seen == resolv_conf_) return;
    std::unique_ptr<name_server_channel> fresh;
    try {
      fresh = std::make_unique<name_server_channel>(name_servers_);
    } catch (const std::exception&) {
      return;  // checked again in a second; the old channel serves meanwhile
    }
    resolv_conf_ = seen;
    if (current_->queries_in_flight > 0) draining_.push_back(std::move(current_));
    current_ = std::move(fresh);
  }

  void start(request r) {
    auto running = queries_.find(r.host);
    if (running != queries_.end()) {
      running->second.push_back(std::move(r.slot));
      return;
    }
    // Filled by a query that finished after the caller looked.
    if (auto cached = cache_.find(r.host, clock_type::now())) {
      deliver(*r.slot, {}, *cached);
      return;
    }
    follow_resolv_conf();
    queries_[r.host].push_back(std::move(r.slot));
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    ++current_->queries_in_flight;
    auto* context = new query_context{this, current_.get(), r.host};
    // May answer before returning (from /etc/hosts, or a failure to send).
    ares_getaddrinfo(current_->channel, r.host.c_str(), nullptr, &hints, &impl::on_answer, context);
  }

  void run() {
    std::vector<pollfd> polled;
    std::vector<name_server_channel*> owners;  // of polled[i + 1]
    for (;;) {
      std::vector<request> taken;
      {
        std::lock_guard lock(queue_mutex_);
        if (stopping_) break;
        taken.swap(queue_);
      }
      for (auto& r : taken) start(std::move(r));
      std::erase_if(draining_, [](const auto& c) { return c->queries_in_flight == 0; });

      polled.clear();
      owners.clear();
      polled.push_back({wake_read_, POLLIN, 0});
      int wait_ms = -1;
      auto watch = [&](name_server_channel& c) {
        for (const auto& [fd, want] : c.sockets) {
          auto events = static_cast<short>((want.read ? POLLIN : 0) | (want.write ? POLLOUT : 0));
          polled.push_back({fd, events, 0});
          owners.push_back(&c);
        }
        timeval tv{};
        if (ares_timeout(c.channel, nullptr, &tv)) {
          int ms = static_cast<int>(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
          wait_ms = wait_ms < 0 ? ms : std::min(wait_ms, ms);
        }
      };
      watch(*current_);
      for (auto& c : draining_) watch(*c);

      int ready = ::poll(polled.data(), polled.size(), wait_ms);
      if (ready < 0 && errno != EINTR) {
        // poll() fails only on bad arguments or exhausted memory; pausing keeps a persistent
        // failure from spinning a core while the timeouts below still end the queries.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (ready > 0 && (polled[0].revents & POLLIN)) {
        std::array<char, 64> drain{};
        while (::read(wake_read_, drain.data(), drain.size()) > 0) {
        }
      }
      if (ready > 0) {
        for (std::size_t i = 1; i < polled.size(); ++i) {
          auto revents = polled[i].revents;
          if (revents == 0) continue;
          bool readable = (revents & (POLLIN | POLLERR | POLLHUP)) != 0;
          bool writable = (revents & POLLOUT) != 0;
          ares_process_fd(owners[i - 1]->channel, readable ? polled[i].fd : ARES_SOCKET_BAD,
                          writable ? polled[i].fd : ARES_SOCKET_BAD);
        }
      }
      // Retries and timeouts of queries whose sockets stayed silent.
      ares_process_fd(current_->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      for (auto& c : draining_) ares_process_fd(c->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    draining_.clear();
    current_.reset();
  }

  const std::string name_servers_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::vector<request> queue_;
  bool stopping_ = false;
  // Lookup thread only:
  std::unique_ptr<name_server_channel> current_;
  std::vector<std::unique_ptr<name_server_channel>> draining_;
  file_identity resolv_conf_;
  clock_type::time_point resolv_conf_checked_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<answer_slot>>> queries_;
  std::thread thread_;
};

namespace {

net::awaitable<boost::system::result<endpoint_list>> await_answer(std::shared_ptr<waiter> w,
                                                                  std::uint16_t port) {
  if (!w->answered) {
    (void)co_await w->wake.async_wait(net::as_tuple(net::use_awaitable));
  }
  {
    std::lock_guard lock(w->slot->mutex);
    w->slot->caller.reset();
  }
  if (!w->answered) co_return error_code(net::error::timed_out);
  if (w->error) co_return w->error;
  co_return with_port(w->addresses, port);
}

}  // namespace

dns_resolver::dns_resolver(dns_resolver_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

dns_resolver::~dns_resolver() = default;

net::awaitable<boost::system::result<endpoint_list>> dns_resolver::resolve(
    std::string host, std::uint16_t port, clock_type::time_point deadline) {
  error_code literal_error;
  auto literal = net::ip::make_address(host, literal_error);
  if (!literal_error) co_return endpoint_list{{literal, port}};
  if (is_localhost(host)) {
    co_return endpoint_list{{net::ip::address_v4::loopback(), port},
                            {net::ip::address_v6::loopback(), port}};
  }
  if (auto cached = impl_->cache_.find(host, clock_type::now())) {
    co_return with_port(*cached, port);
  }
  auto w = std::make_shared<waiter>(co_await net::this_coro::executor);
  w->slot->caller = w;
  w->wake.expires_at(deadline);
  auto strand = w->strand;
  // On w's strand the check of `answered` and the start of the wait happen without an answer
  // being handed over in between.
  co_return co_await net::co_spawn(
      strand,
      [](impl& resolver, std::string name, std::shared_ptr<waiter> w,
         std::uint16_t port) -> net::awaitable<boost::system::result<endpoint_list>> {
        resolver.submit(std::move(name), w->slot);
        co_return co_await await_answer(std::move(w), port);
      }(*impl_, std::move(host), std::move(w), port),
      net::use_awaitable);
}

std::size_t dns_resolver::cached_names() const { return impl_->cache_.size(); }

}  // namespace gomodproxy::upstream
