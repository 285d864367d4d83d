#include "prefetch/prefetch_run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>

#include "protocol/escape.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::prefetch {

namespace {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

struct request {
  std::string url;
  std::string what;
};

// The proxy's answer when it gave one, else the client's reason (connection refused, timeout).
std::string failure_reason(const upstream::fetch_result& fetched) {
  return fetched.answer_text.empty() ? fetched.reason : fetched.answer_text;
}

struct run_state {
  upstream::http_client& client;
  upstream::deadlines limits;
  const run_events& events;
  std::vector<request> requests;
  std::size_t next = 0;
  run_summary summary;
  clock_type::time_point started = clock_type::now();

  run_progress& progress() {
    summary.final_progress.elapsed = clock_type::now() - started;
    return summary.final_progress;
  }
};

// One of the `jobs` workers: takes the next request until none is left. All workers run on one
// thread, so the shared state needs no lock.
net::awaitable<void> work(run_state& state) {
  while (state.next < state.requests.size()) {
    const auto& wanted = state.requests[state.next++];
    auto fetched = co_await state.client.get(
        wanted.url,
        [&state](std::string_view chunk) {
          state.summary.final_progress.bytes += chunk.size();
          return true;
        },
        state.limits);
    auto& progress = state.progress();
    ++progress.done;
    if (fetched.result != upstream::outcome::ok) {
      ++progress.failed;
      fetch_failure failure{wanted.what, failure_reason(fetched)};
      if (state.events.on_failure) state.events.on_failure(failure);
      state.summary.failures.push_back(std::move(failure));
    }
    if (state.events.on_progress) state.events.on_progress(progress);
  }
}

net::awaitable<upstream::fetch_result> get_discarding(upstream::http_client& client,
                                                      std::string url, upstream::deadlines limits) {
  co_return co_await client.get(
      std::move(url), [](std::string_view) { return true; }, limits);
}

// Redraws between finished requests too, so a large zip shows its bytes arriving.
net::awaitable<void> tick(run_state& state, net::steady_timer& timer) {
  constexpr auto redraw_every = std::chrono::milliseconds(250);
  while (state.summary.final_progress.done < state.summary.final_progress.total) {
    timer.expires_after(redraw_every);
    co_await timer.async_wait(net::use_awaitable);
    state.events.on_progress(state.progress());
  }
}

}  // namespace

run_summary run_prefetch(const std::vector<pin>& pins, const run_options& options,
                         const run_events& events) {
  net::io_context io;
  upstream::client_options client_options;
  client_options.ca_file = options.ca_file;
  client_options.max_idle_per_origin = std::max<std::size_t>(options.jobs, 1);
  client_options.user_agent = "gomodproxy-prefetch/0.1";
  upstream::http_client client(io.get_executor(), client_options);
  upstream::deadlines limits{options.connect, options.first_byte, options.total};
  run_state state{client, limits, events, {}, 0, {}, clock_type::now()};

  std::exception_ptr failed;
  // A worker that throws would leave its requests unfinished and the ticker waiting for them.
  auto rethrow = [&failed, &io](const std::exception_ptr& e) {
    if (!e) return;
    if (!failed) failed = e;
    io.stop();
  };

  {
    // The first contact with the proxy, so that a proxy that cannot be reached or refuses us is
    // reported once rather than once per file. /supported is answered by the proxy itself and
    // needs the same token as a module file; without a database to look records up in, the
    // shipped default name stands in.
    const auto& name =
        options.sumdb_name.empty() ? std::string("sum.golang.org") : options.sumdb_name;
    upstream::fetch_result supported;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          supported = co_await get_discarding(
              client, options.proxy_url + "/sumdb/" + name + "/supported", limits);
        },
        rethrow);
    io.run();
    io.restart();
    if (failed) std::rethrow_exception(failed);
    if (supported.status == 0) {
      state.summary.unreachable = supported.reason;
      return std::move(state.summary);
    }
    if (supported.status == 401 || supported.status == 403) {
      state.summary.unreachable = "the proxy refused: " + failure_reason(supported);
      return std::move(state.summary);
    }
    if (!options.sumdb_name.empty()) {
      state.summary.sumdb_served = supported.result == upstream::outcome::ok;
    }
  }

  for (const auto& p : pins) {
    const auto module_version = p.module_path + "@" + p.version;
    const auto base = options.proxy_url + "/" + protocol::escape_case(p.module_path) + "/@v/" +
                      protocol::escape_case(p.version);
    const std::vector<std::string_view> suffixes =
        p.go_mod_only ? std::vector<std::string_view>{".mod"}
                      : std::vector<std::string_view>{".info", ".mod", ".zip"};
    for (auto suffix : suffixes) {
      state.requests.push_back(
          {base + std::string(suffix), module_version + " " + std::string(suffix)});
      ++state.summary.file_requests;
    }
    if (state.summary.sumdb_served.value_or(false)) {
      state.requests.push_back({options.proxy_url + "/sumdb/" + options.sumdb_name + "/lookup/" +
                                    protocol::escape_case(p.module_path) + "@" +
                                    protocol::escape_case(p.version),
                                module_version + " sumdb lookup"});
      ++state.summary.lookup_requests;
    }
  }
  state.summary.final_progress.total = state.requests.size();
  state.started = clock_type::now();
  if (events.on_progress) events.on_progress(state.progress());
  const auto workers = std::min(std::max<std::size_t>(options.jobs, 1), state.requests.size());
  for (std::size_t i = 0; i < workers; ++i) net::co_spawn(io, work(state), rethrow);
  net::steady_timer timer(io);
  if (events.on_progress && workers > 0) net::co_spawn(io, tick(state, timer), rethrow);
  io.run();
  if (failed) std::rethrow_exception(failed);
  state.progress();
  return std::move(state.summary);
}

}  // namespace gomodproxy::prefetch
