// gomodproxy: wiring only.
//
// A request travels: http_server (accept, limits, deadlines) -> resolver (parse and validate the
// GOPROXY path, cache lookup in the RocksDB store; on a miss one singleflight fill per key walks
// the upstream tiers through the shared http_client on the fills pool, checks and hashes the body
// on the checks pool and commits it) -> the answer is streamed from the cache (large entries read
// on the reads pool). Every step is counted in the monitor's metrics; before each tier attempt the
// tier's circuit breaker is asked, and the prober keeps asking every tier a cheap question so a
// dead tier is skipped and a recovered one comes back. Health, readiness and /metrics are exact
// routes on the same port.
#include <pthread.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX sigset_t, pthread_sigmask
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <variant>
#include <vector>

#include "bundle/bundle_command.hpp"
#include "bundle/import_endpoint.hpp"
#include "cache/cache_store.hpp"
#include "cache_admin/admin_endpoints.hpp"
#include "cache_admin/cache_verify.hpp"
#include "common/log_if_thrown.hpp"
#include "config/bootstrap_script.hpp"
#include "config/settings.hpp"
#include "direct/address_policy.hpp"
#include "direct/connect_guard.hpp"
#include "direct/direct_tier.hpp"
#include "direct/go_process.hpp"
#include "direct/network_sandbox.hpp"
#include "monitor/health_prober.hpp"
#include "monitor/metrics.hpp"
#include "monitor/status_page.hpp"
#include "monitor/tier_health.hpp"
#include "prefetch/prefetch_command.hpp"
#include "probe_report/probe_command.hpp"
#include "protocol/escape.hpp"
#include "resolver/from_settings.hpp"
#include "resolver/resolver.hpp"
#include "serve_runtime.hpp"
#include "server/access_control.hpp"
#include "server/http_server.hpp"
#include "server/text_handler.hpp"
#include "server/tls_credentials.hpp"
#include "upstream/dns_resolver.hpp"
#include "upstream/http_client.hpp"
#include "upstream/tier.hpp"

namespace {
namespace net = boost::asio;
using namespace gomodproxy;

constexpr std::string_view version_text = "gomodproxy 0.1.0";

// Access-log messages a busy server may have queued before the oldest is dropped: a slow disk
// or a blocked stderr costs log lines, never an I/O thread's time. A message is a batch of lines
// of at most 4 KiB (http_server.cpp), so this bounds the queue near 4 MiB: 1 024 lines when idle,
// tens of thousands under load.
constexpr std::size_t access_log_queue_messages = 1024;

// Returns false, having said why on stderr, when the access log file cannot be opened.
bool set_up_logging(const config::settings& settings) {
  auto main_logger = spdlog::stderr_logger_mt("gomodproxy");
  main_logger->set_level(spdlog::level::from_str(settings.log_level));
  spdlog::set_default_logger(main_logger);
  // One line per request is written by spdlog's own thread, not by the I/O thread that served
  // the request. A file is flushed once a second rather than per line: a write per line cost
  // that thread enough to drop lines at 90k requests/s (docs/benchmarks.md).
  spdlog::init_thread_pool(access_log_queue_messages, 1);
  spdlog::sink_ptr sink;
  if (settings.access_log == "stderr" || settings.access_log == "off") {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(settings.access_log);
    } catch (const spdlog::spdlog_ex& e) {
      std::fprintf(stderr, "gomodproxy: access_log: %s; expected stderr, off or a writable file\n",
                   e.what());
      return false;
    }
  }
  auto access =
      std::make_shared<spdlog::async_logger>("access", std::move(sink), spdlog::thread_pool(),
                                             spdlog::async_overflow_policy::overrun_oldest);
  spdlog::register_logger(access);
  // No pattern here: the server writes whole lines, time stamp included, in batches.
  access->set_level(settings.access_log == "off" ? spdlog::level::off : spdlog::level::info);
  spdlog::flush_every(std::chrono::seconds(1));
  return true;
}

// "127.0.0.1:8081" or "[::1]:8081"; the loader has validated the shape.
std::pair<std::string, std::uint16_t> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  return {host, static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1)))};
}

// The tiers the monitor counts and guards: every URL tier of both lists, once each by name,
// plus each list as a chain of indexes (for the fallback series).
monitor::metrics_layout monitored_tiers(const config::settings& settings) {
  monitor::metrics_layout layout;
  for (const auto* list : {&settings.upstreams, &settings.private_upstreams}) {
    std::vector<std::size_t> chain;
    for (const auto& tier : *list) {
      if (tier.type != upstream::tier_spec::kind::url) continue;
      auto it = std::find(layout.tiers.begin(), layout.tiers.end(), tier.name);
      chain.push_back(static_cast<std::size_t>(it - layout.tiers.begin()));
      if (it == layout.tiers.end()) layout.tiers.push_back(tier.name);
    }
    layout.chains.push_back(std::move(chain));
  }
  return layout;
}

// The upstream list as the log shows it: the password of a tier URL (a central gomodproxy that
// asks for a token: https://NAME:TOKEN@host) is replaced, as Go's url.Redacted does.
std::string shown_upstreams(const std::vector<upstream::tier_spec>& tiers) {
  std::string out;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const auto& tier = tiers[i];
    std::string entry = tier.type == upstream::tier_spec::kind::url ? tier.url : tier.name;
    if (auto start = entry.find("://"); start != std::string::npos) {
      start += 3;
      const auto authority = entry.substr(start, entry.find('/', start) - start);
      const auto at = authority.rfind('@');
      const auto colon = authority.find(':');
      if (at != std::string::npos && colon < at)
        entry.replace(start + colon + 1, at - colon - 1, "xxxxx");
    }
    out += entry;
    if (i + 1 < tiers.size()) out += tier.fall_through_on_error ? '|' : ',';
  }
  return out;
}

// Public tiers are probed with public modules only and private tiers with private ones, so a
// private module name never reaches a public tier.
std::vector<monitor::probe_target> probe_targets(const config::settings& settings,
                                                 const monitor::tier_health& health) {
  std::vector<monitor::probe_target> targets;
  std::set<std::pair<std::size_t, std::string>> seen;
  auto add = [&](const std::vector<upstream::tier_spec>& tiers,
                 const std::vector<std::string>& modules) {
    for (const auto& tier : tiers) {
      auto index = health.tier_index(tier.name);
      if (tier.type != upstream::tier_spec::kind::url || !index) continue;
      for (const auto& module_path : modules) {
        const std::string path = "/" + protocol::escape_case(module_path) + "/@v/list";
        std::string url = tier.url + path;
        if (seen.emplace(*index, url).second) {
          targets.push_back({*index, std::move(url), tier.name + path});
        }
      }
    }
  };
  add(settings.upstreams, settings.probe_modules);
  add(settings.private_upstreams, settings.private_probe_modules);
  return targets;
}

net::awaitable<monitor::probe_answer> probe_get(upstream::http_client& client, std::string url,
                                                upstream::deadlines limits) {
  auto fetched = co_await client.get(
      std::move(url), [](std::string_view) { return true; }, limits);
  monitor::probe_answer answer;
  answer.answered =
      fetched.result == upstream::outcome::ok || fetched.result == upstream::outcome::not_found;
  answer.status = fetched.status;
  if (fetched.status != 0) answer.ttfb = fetched.ttfb;
  answer.reason = fetched.result == upstream::outcome::ok ? "200" : fetched.reason;
  co_return answer;
}

// SIGHUP ends a process by default, and a service manager may send one (a certificate renewal's
// reload racing a restart) while start-up is still reading settings or opening the cache. It is
// blocked (SIG_BLOCK) from the start of `gomodproxy serve` until the reloader listens for it,
// then unblocked (SIG_UNBLOCK), which delivers one that came meanwhile.
void set_hangup_mask(int how) {
  sigset_t hangup;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  pthread_sigmask(how, &hangup, nullptr);
}

// SIGHUP rereads what may change under a running server: the TLS certificate and key (renewed
// in place by certbot or a CA's agent; open connections keep the one they were given) and the
// token files (a file that no longer parses leaves the old tokens in force). It is handled even
// when there is nothing to reread, so that a service manager's "reload" never ends the server.
net::awaitable<void> reload_on_hangup(net::signal_set& hangups, server::tls_credentials* tls,
                                      server::access_control& access, bool tokens_from_files) {
  for (;;) {
    auto [ec, signal_number] = co_await hangups.async_wait(net::as_tuple(net::use_awaitable));
    if (ec) co_return;
    (void)signal_number;
    if (tls) {
      if (auto reloaded = tls->reload(); !reloaded) {
        spdlog::error("tls: reload failed, the old certificate stays in use: {}",
                      reloaded.error().detail);
      } else {
        auto loaded = tls->summary();
        spdlog::info("tls: certificate reloaded (subject {}, not after {}, serial {})",
                     loaded.subject, loaded.not_after, loaded.serial);
      }
    }
    if (tokens_from_files) {
      if (auto reloaded = access.reload(); reloaded) {
        spdlog::info("auth: token files reread, {} client tokens", *reloaded);
      } else {
        spdlog::error("auth: {}; the previous tokens stay in force", reloaded.error().detail);
      }
    }
    if (!tls && !tokens_from_files) {
      spdlog::info("SIGHUP: nothing to reread (no TLS certificate, no token file)");
    }
  }
}

// Start-up failures (a setting the process cannot use) exit with this, after one line on stderr
// naming the setting; like the loader's own refusals, they are the user's to fix.
constexpr int exit_bad_setting = 2;

bool uses_direct(const config::settings& settings) {
  for (const auto* list : {&settings.upstreams, &settings.private_upstreams}) {
    for (const auto& tier : *list) {
      if (tier.type == upstream::tier_spec::kind::direct) return true;
    }
  }
  return false;
}

// The addresses a public module path's host may never resolve to because they are this server:
// its interfaces and the address it listens on.
std::vector<net::ip::address> own_addresses(const std::string& listen_host) {
  auto own = direct::local_addresses();
  boost::system::error_code ec;
  auto listening = net::ip::make_address(listen_host, ec);
  if (!ec && std::find(own.begin(), own.end(), listening) == own.end()) own.push_back(listening);
  return own;
}

// The `direct` tier and what it needs: the connect guard every subprocess of a public path
// connects through, and the address check before any process starts. Built only when a tier list
// names `direct`, so a server without it creates no <cache_dir>/direct and no guard port.
struct direct_fetcher {
  /// `dns` must outlive the executor's last handler, not only this object.
  direct_fetcher(net::any_io_executor executor, upstream::dns_resolver& resolver,
                 const config::settings& settings, const std::string& listen_host)
      : dns(resolver),
        own(own_addresses(listen_host)),
        guard(executor, dns, [own = own](const net::ip::address& address) {
          return direct::check_address(address, own);
        }) {
    direct::direct_options options;
    options.go_binary = settings.go_binary;
    options.root = std::filesystem::path(settings.cache_dir) / "direct";
    options.concurrency = static_cast<std::size_t>(settings.direct_concurrency);
    options.private_patterns = settings.private_patterns;
    options.allow_patterns = settings.direct_allow_patterns;
    options.no_sumdb_patterns = settings.no_sumdb_patterns;
    options.guard_url = guard.start();
    if (auto sandbox = direct::check_sandbox(); !sandbox) {
      sandbox_problem = std::move(sandbox.error().detail);
    }
    options.network_sandbox = !sandbox_problem;
    options.check_host = [this](std::string host, std::chrono::steady_clock::time_point deadline) {
      return direct::check_host(dns, std::move(host), own, deadline);
    };
    tier = std::make_shared<direct::direct_tier>(std::move(executor), std::move(options));
  }

  // Once the server listens: a refusal to start stays the one line it is.
  void report(const config::settings& settings) const {
    if (sandbox_problem) {
      spdlog::warn(
          "direct: no network sandbox ({}); public paths' go command runs without one, so its "
          "own requests to loopback addresses are not checked by the connect guard",
          *sandbox_problem);
    } else {
      spdlog::info("direct: public paths' go command runs in a network namespace of its own");
    }
    const char* path = std::getenv("PATH");
    if (!direct::find_program(settings.go_binary, path != nullptr ? path : "")) {
      spdlog::warn(
          "direct: go binary \"{}\" not found; direct answers \"cannot run go\" until it is "
          "installed (--go-binary)",
          settings.go_binary);
    }
  }

  upstream::dns_resolver& dns;
  std::vector<net::ip::address> own;
  direct::connect_guard guard;
  std::optional<std::string> sandbox_problem;  ///< why public paths run unsandboxed
  std::shared_ptr<direct::direct_tier> tier;
};

// The routes that answer about the server itself rather than modules: liveness, readiness,
// metrics, the status page and the client bootstrap script.
struct info_pages {
  info_pages(monitor::metrics& metrics, resolver::resolver& modules, bool offline)
      : metrics_page([&metrics] {
          return server::text_answer{200, metrics.serialize(),
                                     "text/plain; version=0.0.4; charset=utf-8"};
        }),
        status_page([&metrics, offline] {
          return server::text_answer{200, monitor::status_html(status_report(metrics, offline)),
                                     "text/html; charset=utf-8"};
        }),
        status_json_page([&metrics, offline] {
          return server::text_answer{200, monitor::status_json(status_report(metrics, offline)),
                                     "application/json"};
        }),
        readyz([this, &modules] {
          readiness_watched = true;
          if (stopping.load()) return server::text_answer{503, "shutting down\n"};
          // The store is open for the whole life of the server, so readiness is about the tiers.
          return modules.ready() ? server::text_answer{200, "ready\n"}
                                 : server::text_answer{503, "no usable upstream tier\n"};
        }) {}
  ~info_pages() = default;
  info_pages(const info_pages&) = delete;
  info_pages& operator=(const info_pages&) = delete;

  void add_to(server::http_server& http) {
    http.add_route("/healthz", healthz);
    http.add_route("/readyz", readyz);
    http.add_route("/metrics", metrics_page);
    http.add_route("/status", status_page);
    http.add_route("/status.json", status_json_page);
    http.add_route("/bootstrap.sh", bootstrap_page);
  }

  // Readable by anyone who reaches the port unless tokens guard it, like /metrics: tier names and
  // counts only.
  static monitor::status_report status_report(monitor::metrics& metrics, bool offline) {
    auto report = metrics.status();
    report.offline = offline;
    return report;
  }

  // Set on SIGTERM/SIGINT, before the listener closes: a load balancer's health check takes the
  // replica out while it still answers, instead of finding out from refused connections. The
  // grace is waited only when something has asked /readyz: nobody else would notice it.
  std::atomic<bool> stopping{false};
  std::atomic<bool> readiness_watched{false};

  server::text_handler healthz{[] { return server::text_answer{200, "ok\n"}; }};
  server::text_handler metrics_page;
  server::text_handler status_page;
  server::text_handler status_json_page;
  // What a developer's machine runs to start using this proxy: curl .../bootstrap.sh | sh -s --
  server::text_handler bootstrap_page{[] {
    return server::text_answer{200, std::string(config::bootstrap_script()),
                               "text/x-shellscript; charset=utf-8"};
  }};
  server::text_handler readyz;
};

// The endpoints that change or walk the whole cache. Without an admin token nobody could be told
// apart from a client, so then they do not exist at all (add_to is not called).
struct admin_routes {
  void add_to(server::http_server& http, const config::settings& settings,
              cache::cache_store& store, const resolver::resolver_options& resolver_options,
              const net::any_io_executor& checks) {
    const std::array<std::pair<cache_admin::admin_verb, std::string_view>, 4> verbs = {{
        {cache_admin::admin_verb::stats, cache_admin::admin_stats_path},
        {cache_admin::admin_verb::stats_json, cache_admin::admin_stats_json_path},
        {cache_admin::admin_verb::ls, cache_admin::admin_ls_path},
        {cache_admin::admin_verb::rm, cache_admin::admin_rm_path},
    }};
    for (const auto& [verb, path] : verbs) {
      endpoints.push_back(std::make_unique<cache_admin::admin_endpoint>(verb, store, checks));
      http.add_route(std::string(path), *endpoints.back());
    }
    bundle::import_options import_options;
    import_options.sumdbs = resolver_options.sumdbs;
    import_options.exempt = bundle::sumdb_exemption(resolver_options);
    import = std::make_unique<bundle::import_endpoint>(
        store, std::move(import_options),
        (std::filesystem::path(settings.cache_dir) / "import-spool").string(), checks,
        settings.request_timeout);
    http.add_body_route(std::string(bundle::admin_import_path), *import,
                        bundle::max_import_body_bytes);
  }

  std::vector<std::unique_ptr<cache_admin::admin_endpoint>> endpoints;
  std::unique_ptr<bundle::import_endpoint> import;
};

// The HTTP front's settings; requests are counted in `metrics`, and checked by `access` when it
// holds tokens.
server::server_options server_options_for(const config::settings& settings,
                                          const serve_runtime& runtime,
                                          std::shared_ptr<server::tls_credentials> tls,
                                          server::access_control& access,
                                          monitor::metrics& metrics) {
  auto [host, port] = split_listen(settings.listen);
  server::server_options options;
  options.tls = std::move(tls);
  options.host = host;
  options.port = port;
  options.request_timeout = settings.request_timeout;
  options.idle_timeout = settings.idle_timeout;
  options.write_timeout = settings.write_timeout;
  options.max_header_bytes = settings.max_header_bytes;
  options.max_connections = settings.max_connections;
  options.connection_executors = runtime.connection_executors();
  options.access_log = settings.access_log != "off";
  options.on_response = [&metrics](int, std::uint64_t body_bytes) {
    if (body_bytes > 0) metrics.count_bytes_sent(body_bytes);
  };
  if (access.enabled()) {
    options.authorize = [&access, &metrics](
                            std::string_view path,
                            std::string_view authorization) -> std::optional<std::string> {
      auto decision = access.check(path, authorization);
      if (decision.allowed) return std::move(decision.name);
      metrics.count_unauthorized(
          server::classify(path) == server::path_class::admin ? monitor::refused_route::admin
                                                              : monitor::refused_route::client,
          decision.reason == server::refusal::missing ? monitor::refused_because::missing
                                                      : monitor::refused_because::invalid);
      return std::nullopt;
    };
  }
  return options;
}

// The line scripts wait for on stdout, then what the server runs with, in the log.
void announce_listening(const config::settings& settings, const std::string& host,
                        std::uint16_t port, server::tls_credentials* tls) {
  std::printf("gomodproxy listening on %s://%s:%u\n", tls ? "https" : "http",
              host.find(':') == std::string::npos ? host.c_str() : ("[" + host + "]").c_str(),
              static_cast<unsigned>(port));
  std::fflush(stdout);
  spdlog::info("listening on {}:{}{}, cache {}, {}", host, port, tls ? " (TLS)" : "",
               settings.cache_dir,
               settings.offline ? "offline: answering from the cache only, no upstream is asked"
                                : "upstreams " + shown_upstreams(settings.upstreams));
  if (tls) {
    auto loaded = tls->summary();
    spdlog::info("tls: certificate subject {}, not after {}, serial {}", loaded.subject,
                 loaded.not_after, loaded.serial);
  }
}

// The pools' sizes as set; 0 means one thread per core. Fills mostly wait on sockets, so a few
// threads carry many; reads are short, blocking reads that wait on the disk when the page cache
// lacks them, so at least two run at once even on one core.
thread_counts thread_counts_for(const config::settings& settings) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  thread_counts counts;
  counts.io = settings.io_threads > 0 ? settings.io_threads : cores;
  counts.fills = settings.fill_threads;
  counts.checks = settings.check_threads > 0 ? settings.check_threads : cores;
  counts.reads = settings.read_threads > 0 ? settings.read_threads : std::max(2, cores);
  return counts;
}

int serve(const config::settings& settings) {
  if (!set_up_logging(settings)) return exit_bad_setting;

  std::unique_ptr<cache::cache_store> store = cache_admin::open_cache_or_report(
      settings.cache_dir, settings.cache_max_bytes, settings.cache_memory);
  if (!store) return exit_bad_setting;

  // Before the runtime, so that it outlives every handler the fills context may still hold.
  std::unique_ptr<upstream::dns_resolver> direct_dns;
  serve_runtime runtime(thread_counts_for(settings));
  auto [host, port] = split_listen(settings.listen);
  // After the runtime: the guard's sockets are closed while the fills context still exists.
  std::unique_ptr<direct_fetcher> direct_source;

  upstream::client_options client_options;
  client_options.ca_file = settings.ca_file;
  upstream::http_client client(runtime.fills(), client_options);

  auto layout = monitored_tiers(settings);
  monitor::tier_health health(layout.tiers,
                              {settings.breaker_failures, settings.breaker_retry_after}, {},
                              {settings.stall_min, settings.stall_max});
  monitor::metrics metrics(std::move(layout));
  metrics.set_cache_source([&store] {
    const auto stats = store->stats();
    const auto usage = store->usage();
    const auto memory = store->memory();
    return monitor::cache_figures{.entries = stats.entries,
                                  .bytes = stats.bytes,
                                  .max_bytes = usage.max_bytes,
                                  .disk_bytes = usage.disk_bytes,
                                  .evictions = usage.evictions,
                                  .evicted_bytes = usage.evicted_bytes,
                                  .memory_limit_bytes = memory.limit_bytes,
                                  .memory_block_bytes = memory.block_bytes,
                                  .memory_write_buffer_bytes = memory.write_buffer_bytes,
                                  .memory_table_reader_bytes = memory.table_reader_bytes};
  });
  metrics.set_up_source([&health](std::size_t tier) { return health.up(tier); });

  auto loaded_options = resolver::options_from_settings(settings);
  if (!loaded_options) {
    std::fprintf(stderr, "gomodproxy: %s\n", loaded_options.error().detail.c_str());
    return exit_bad_setting;
  }
  auto resolver_options = std::move(*loaded_options);
  resolver_options.metrics = &metrics;
  resolver_options.health = &health;
  if (uses_direct(settings)) {
    try {
      direct_dns = std::make_unique<upstream::dns_resolver>();
      direct_source =
          std::make_unique<direct_fetcher>(runtime.fills(), *direct_dns, settings, host);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gomodproxy: %s\n", e.what());
      return exit_bad_setting;
    }
  }
  auto url_tiers = upstream::http_tiers(client);
  upstream::tier_factory make_tier =
      [&url_tiers,
       &direct_source](const upstream::tier_spec& spec) -> std::shared_ptr<upstream::tier> {
    if (spec.type == upstream::tier_spec::kind::direct) {
      return direct_source ? direct_source->tier : nullptr;
    }
    return url_tiers(spec);
  };
  resolver::resolver module_resolver(
      resolver_options, *store, make_tier,
      resolver::resolver_executors{runtime.fills(), runtime.checks(), runtime.reads()});

  info_pages pages(metrics, module_resolver, settings.offline);

  std::shared_ptr<server::tls_credentials> tls;
  if (!settings.tls_cert.empty()) {
    auto loaded_tls = server::tls_credentials::load(settings.tls_cert, settings.tls_key);
    if (!loaded_tls) {
      std::fprintf(stderr, "gomodproxy: %s\n", loaded_tls.error().detail.c_str());
      return exit_bad_setting;
    }
    tls = std::move(*loaded_tls);
  }
  // Read before listening, so that an unreadable or malformed token file stops start-up.
  auto loaded_access = server::access_control::load(settings.auth_file, settings.admin_token);
  if (!loaded_access) {
    std::fprintf(stderr, "gomodproxy: %s\n", loaded_access.error().detail.c_str());
    return exit_bad_setting;
  }
  auto access = std::move(*loaded_access);

  auto server_options = server_options_for(settings, runtime, tls, *access, metrics);
  // Declared before the server, which must not outlive its handlers.
  admin_routes admin;
  server::http_server http(runtime.main_context(), server_options, module_resolver);
  pages.add_to(http);
  if (!settings.admin_token.empty()) {
    admin.add_to(http, settings, *store, resolver_options, runtime.checks());
  }
  // Also without an admin token: a body left by a killed import is removed all the same.
  bundle::clear_import_spool((std::filesystem::path(settings.cache_dir) / "import-spool").string());
  auto bound = http.listen();
  if (!bound) {
    std::fprintf(stderr, "gomodproxy: listen: cannot listen on %s: %s\n", settings.listen.c_str(),
                 bound.error().message().c_str());
    return exit_bad_setting;
  }
  if (direct_source) direct_source->report(settings);
  if (access->enabled() && !tls) {
    // The go command adds .netrc credentials to https requests only (cmd/go/internal/web).
    spdlog::warn(
        "auth: tokens are required but this listener is plain HTTP, and the go command sends "
        ".netrc credentials over https only: serve TLS (--tls-cert, --tls-key) or put a TLS "
        "front before it");
  }

  http.start();

  // A probe waits at most the tier's stall limit for a connect and again for the headers, then
  // briefly for a small list body: a probe that hangs is a failed probe.
  monitor::health_prober prober(
      runtime.fills(), settings.probe_interval, probe_targets(settings, health),
      [&client, &settings](std::string url, std::chrono::milliseconds patience) {
        upstream::deadlines limits;
        limits.connect = std::min(settings.connect_timeout, patience);
        limits.first_byte = std::min(settings.first_byte_timeout, patience);
        limits.total = limits.connect + limits.first_byte + std::chrono::milliseconds(10000);
        return probe_get(client, std::move(url), limits);
      },
      health, metrics);
  // Offline, no tier may be asked anything, probes included.
  if (!settings.offline) prober.start();

  net::io_context& io = runtime.main_context();
  net::signal_set hangups(io, SIGHUP);
  set_hangup_mask(SIG_UNBLOCK);
  net::co_spawn(
      io,
      reload_on_hangup(hangups, tls.get(), *access,
                       !settings.auth_file.empty() || settings.admin_token.starts_with('@')),
      log_if_thrown("the SIGHUP reloader"));

  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    pages.stopping = true;
    const auto grace =
        pages.readiness_watched ? settings.drain_grace : std::chrono::milliseconds(0);
    spdlog::info(
        "signal {}: /readyz answers 503; listener closes in {} ms, then draining "
        "connections (up to {} ms)",
        signal_number, grace.count(), settings.drain_timeout.count());
    prober.stop();
    net::co_spawn(
        io,
        [&, grace]() -> net::awaitable<void> {
          if (grace.count() > 0) {
            net::steady_timer grace_timer(io, grace);
            co_await grace_timer.async_wait(net::use_awaitable);
          }
          co_await http.drain(settings.drain_timeout);
          module_resolver.abandon_waiting();
          io.stop();
        },
        [&io](const std::exception_ptr& thrown) {
          // A drain that failed must still end the process rather than leave it half stopped.
          log_if_thrown("the drain")(thrown);
          if (thrown) io.stop();
        });
  });

  // Leftovers of fills that a crash interrupted are invisible; reclaim their space in the
  // background rather than delaying start-up with a scan.
  net::post(runtime.checks(), [&store] {
    auto collected = store->collect_garbage();
    if (collected && *collected > 0)
      spdlog::info("cache: collected {} stale chunks and body files", *collected);
  });

  runtime.start();

  announce_listening(settings, host, *bound, tls.get());

  runtime.run();
  // The drain is over. Connections it cancelled still finish on their own threads.
  runtime.stop_connections();
  if (direct_source) direct_source->guard.stop();
  runtime.stop_workers();
  if (auto dropped = spdlog::thread_pool()->overrun_counter(); dropped > 0) {
    spdlog::warn("access log: {} batches of lines dropped while its queue was full", dropped);
  }
  spdlog::info("stopped");
  return 0;
}

int usage(int code) {
  std::fprintf(
      code == 0 ? stdout : stderr,
      "usage: gomodproxy <command> [flags]\n\n"
      "commands:\n"
      "  serve     run the proxy (gomodproxy serve --help lists its flags)\n"
      "  probe     compare upstream mirrors once (gomodproxy probe --help)\n"
      "  cache     cache verify [--repair] [--online]: re-check every cached entry\n"
      "            cache stats | ls [GLOB] | rm MODULE[@VERSION]: inspect or trim a\n"
      "            stopped proxy's cache\n"
      "            cache export --out FILE.tar (--go-sum FILE... | --modules FILE | --all),\n"
      "            cache import FILE.tar: verified bundles for air-gapped sites\n"
      "  prefetch  warm a running proxy with what go.sum/go.mod/go.work files pin\n"
      "            (gomodproxy prefetch --help)\n"
      "  version   print the version\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage(2);
  std::string command = args.front();
  args.erase(args.begin());
  if (command == "version" || command == "--version") {
    std::printf("%s\n", std::string(version_text).c_str());
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") return usage(0);
  if (command == "probe") return probe_report::run_probe_command(args);
  if (command == "cache" && !args.empty() &&
      (args.front() == "export" || args.front() == "import")) {
    const std::string verb = args.front();
    args.erase(args.begin());
    return bundle::run_bundle_command(verb, std::move(args));
  }
  if (command == "cache") return cache_admin::run_cache_command(args);
  if (command == "prefetch") return prefetch::run_prefetch_command(args);
  if (command == direct::sandbox_command) return direct::run_sandbox_command(args);
  if (command != "serve") {
    std::fprintf(stderr, "gomodproxy: unknown command \"%s\"\n", command.c_str());
    return usage(2);
  }
  for (const auto& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", config::usage_text().c_str());
      return 0;
    }
  }
  set_hangup_mask(SIG_BLOCK);
  auto loaded = config::load_settings(args, config::current_environment());
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().detail.c_str());
    return 2;
  }
  int code = 1;
  try {
    code = serve(*loaded);
  } catch (const std::exception& e) {
    // A start-up step that was not expected to fail still ends in one line, not std::terminate.
    std::fprintf(stderr, "gomodproxy: %s\n", e.what());
  }
  // Writes out what the access log still has queued; here, once everything serve() built (which
  // may log while it is destroyed) is gone, since no logger is left afterwards.
  spdlog::shutdown();
  return code;
}
