#include "upstream/dns_resolver.hpp"

#include <ares.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

/// One caller waiting for one name. The lookup thread hands the answer over by posting to
/// `strand`, the same strand the caller checks `answered` and waits on, so an answer cannot slip
/// in between the check and the wait.
struct waiter {
  explicit waiter(const net::any_io_executor& executor)
      : strand(net::make_strand(executor)), wake(strand) {}
  net::strand<net::any_io_executor> strand;
  net::steady_timer wake;
  bool answered = false;   // strand only
  error_code error;        // strand only
  address_list addresses;  // strand only
  std::atomic<bool> gave_up{false};
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

}  // namespace

struct dns_resolver::impl {
  explicit impl(dns_resolver_options options) : cache_(options.cache) {
    initialise_ares_once();
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) throw std::runtime_error("dns: cannot create the wake-up pipe");
    wake_read_ = pipe_fds[0];
    wake_write_ = pipe_fds[1];
    for (int fd : pipe_fds) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }

    ares_options ares{};
    ares.sock_state_cb = &impl::on_socket_state;
    ares.sock_state_cb_data = this;
    // /etc/hosts ("files") before DNS ("bind"), whatever host.conf or nsswitch.conf say: an
    // admin pinning a tier's address in /etc/hosts expects the proxy to honour it.
    static char lookups[] = "fb";
    ares.lookups = lookups;
    int status = ares_init_options(&channel_, &ares, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
    if (status != ARES_SUCCESS) {
      ::close(wake_read_);
      ::close(wake_write_);
      throw std::runtime_error(std::string("dns: cannot set up c-ares: ") + ares_strerror(status));
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

  /// Queues a lookup of `host` for `w`; the answer arrives on w's strand.
  void submit(std::string host, std::shared_ptr<waiter> w) {
    {
      std::lock_guard lock(queue_mutex_);
      queue_.push_back({std::move(host), std::move(w)});
    }
    wake_thread();
  }

  dns_cache cache_;

 private:
  struct request {
    std::string host;
    std::shared_ptr<waiter> w;
  };
  struct query_context {
    impl* self;
    std::string host;
  };
  struct interest {
    bool read = false;
    bool write = false;
  };

  void wake_thread() {
    char byte = 1;
    // A full pipe already holds a wake-up, so a failed write loses nothing.
    (void)!::write(wake_write_, &byte, 1);
  }

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<impl*>(data);
    if (!readable && !writable) {
      self->sockets_.erase(fd);
    } else {
      self->sockets_[fd] = interest{readable != 0, writable != 0};
    }
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
    std::unique_ptr<query_context> context(static_cast<query_context*>(arg));
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
      for (auto* alias = result->cnames; alias; alias = alias->next)
        ttl = std::min(ttl, alias->ttl);
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
    auto waiters = std::move(it->second);
    queries_.erase(it);
    for (auto& w : waiters) deliver(std::move(w), error, addresses);
  }

  static void deliver(std::shared_ptr<waiter> w, const error_code& error,
                      const address_list& addresses) {
    // A caller past its deadline has left; posting to its strand would only keep the io_context
    // busy for nothing.
    if (w->gave_up.load()) return;
    auto& strand = w->strand;
    net::post(strand, [w = std::move(w), error, addresses]() mutable {
      w->answered = true;
      w->error = error;
      w->addresses = std::move(addresses);
      w->wake.cancel();
    });
  }

  void start(request r) {
    auto running = queries_.find(r.host);
    if (running != queries_.end()) {
      running->second.push_back(std::move(r.w));
      return;
    }
    // Filled by a query that finished after the caller looked.
    if (auto cached = cache_.find(r.host, clock_type::now())) {
      deliver(std::move(r.w), {}, *cached);
      return;
    }
    queries_[r.host].push_back(std::move(r.w));
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    auto* context = new query_context{this, r.host};
    // May answer before returning (from /etc/hosts, or a failure to send).
    ares_getaddrinfo(channel_, r.host.c_str(), nullptr, &hints, &impl::on_answer, context);
  }

  void run() {
    std::vector<pollfd> polled;
    for (;;) {
      std::vector<request> taken;
      {
        std::lock_guard lock(queue_mutex_);
        if (stopping_) break;
        taken.swap(queue_);
      }
      for (auto& r : taken) start(std::move(r));

      polled.clear();
      polled.push_back({wake_read_, POLLIN, 0});
      for (const auto& [fd, want] : sockets_) {
        short events = static_cast<short>((want.read ? POLLIN : 0) | (want.write ? POLLOUT : 0));
        polled.push_back({fd, events, 0});
      }
      timeval tv{};
      int wait_ms = -1;
      if (ares_timeout(channel_, nullptr, &tv)) {
        wait_ms = static_cast<int>(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
      }
      int ready = ::poll(polled.data(), polled.size(), wait_ms);
      if (ready < 0 && errno != EINTR) {
        // poll() fails only on bad arguments or exhausted memory; pausing keeps a persistent
        // failure from spinning a core while the timeouts below still end the queries.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (ready > 0 && (polled[0].revents & POLLIN)) {
        char drain[64];
        while (::read(wake_read_, drain, sizeof drain) > 0) {
        }
      }
      if (ready > 0) {
        for (std::size_t i = 1; i < polled.size(); ++i) {
          auto revents = polled[i].revents;
          if (revents == 0) continue;
          bool readable = (revents & (POLLIN | POLLERR | POLLHUP)) != 0;
          bool writable = (revents & POLLOUT) != 0;
          ares_process_fd(channel_, readable ? polled[i].fd : ARES_SOCKET_BAD,
                          writable ? polled[i].fd : ARES_SOCKET_BAD);
        }
      }
      // Retries and timeouts of queries whose sockets stayed silent.
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    // Every query still in flight is answered with ARES_EDESTRUCTION; nobody waits for them.
    ares_destroy(channel_);
  }

  ares_channel channel_ = nullptr;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::vector<request> queue_;
  bool stopping_ = false;
  // Lookup thread only:
  std::map<ares_socket_t, interest> sockets_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<waiter>>> queries_;
  std::thread thread_;
};

namespace {

net::awaitable<boost::system::result<endpoint_list>> await_answer(std::shared_ptr<waiter> w,
                                                                  std::uint16_t port) {
  if (!w->answered) {
    (void)co_await w->wake.async_wait(net::as_tuple(net::use_awaitable));
  }
  if (!w->answered) {
    w->gave_up = true;
    co_return error_code(net::error::timed_out);
  }
  if (w->error) co_return w->error;
  co_return with_port(w->addresses, port);
}

}  // namespace

dns_resolver::dns_resolver(dns_resolver_options options) : impl_(std::make_unique<impl>(options)) {}

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
  w->wake.expires_at(deadline);
  auto strand = w->strand;
  // On w's strand the check of `answered` and the start of the wait happen without an answer
  // being handed over in between.
  co_return co_await net::co_spawn(
      strand,
      [](impl& resolver, std::string name, std::shared_ptr<waiter> w,
         std::uint16_t port) -> net::awaitable<boost::system::result<endpoint_list>> {
        resolver.submit(std::move(name), w);
        co_return co_await await_answer(std::move(w), port);
      }(*impl_, std::move(host), std::move(w), port),
      net::use_awaitable);
}

std::size_t dns_resolver::cached_names() const { return impl_->cache_.size(); }

}  // namespace gomodproxy::upstream
