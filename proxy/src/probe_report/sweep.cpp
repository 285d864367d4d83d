#include "probe_report/sweep.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>

#include "probe_report/version_list.hpp"
#include "protocol/escape.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::probe_report {

namespace {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

// A list is a few lines per version; anything near this is not a list worth comparing.
constexpr std::size_t max_list_bytes = std::size_t{16} * 1024 * 1024;

constexpr std::array<std::pair<request_kind, std::string_view>, 3> file_requests = {
    {{request_kind::info, ".info"}, {request_kind::mod, ".mod"}, {request_kind::zip, ".zip"}}};

std::string skip_reason(upstream::tier_spec::kind type) {
  return type == upstream::tier_spec::kind::direct
             ? "direct fetches from version control, not from an HTTP mirror"
             : "off disables module lookups";
}

// "https://host/path" without userinfo: the name already leaves credentials out.
std::string shown_url(const upstream::tier_spec& tier) {
  const auto scheme_end = tier.url.find("://");
  return tier.url.substr(0, scheme_end + 3) + tier.name;
}

std::vector<upstream_run> planned_upstreams(const std::vector<upstream::tier_spec>& tiers) {
  std::map<std::string, int> name_uses;
  for (const auto& tier : tiers) ++name_uses[tier.name];
  std::vector<upstream_run> runs;
  for (const auto& tier : tiers) {
    upstream_run run;
    if (tier.type == upstream::tier_spec::kind::url) {
      run.url = shown_url(tier);
      // http://h and https://h share a name; rows must still tell them apart.
      run.name = name_uses[tier.name] > 1 ? run.url : tier.name;
    } else {
      run.name = tier.name;
      run.skipped = skip_reason(tier.type);
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

std::string format_elapsed(std::chrono::microseconds d) {
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.2fms", static_cast<double>(d.count()) / 1000.0);
  return buffer.data();
}

// "list 200 0.41ms", "zip 200 1234 B 2.10ms", "info failed (connection refused)".
std::string describe_sample(const request_sample& sample) {
  std::string out(kind_name(sample.kind));
  // A failure's reason already names its status ("500: ...", "timeout after 10s (first byte)").
  if (!sample.answered) return out + " failed (" + sample.failure + ")";
  out += " " + std::to_string(sample.status);
  if (sample.kind == request_kind::zip && sample.status == 200) {
    out += " " + std::to_string(sample.body_bytes) + " B";
  }
  return out + " " + format_elapsed(sample.elapsed);
}

struct sweep_state {
  upstream::http_client& client;
  const sweep_options& options;
  const progress_sink& progress;
};

net::awaitable<request_sample> fetch(sweep_state& state, request_kind kind, std::string url,
                                     std::string* body) {
  upstream::deadlines limits;
  const auto whole = kind == request_kind::zip ? state.options.zip_timeout : state.options.timeout;
  limits.connect = state.options.timeout;
  limits.first_byte = state.options.timeout;
  limits.total = whole;
  // The body is kept only where it is read (the list); everything else is counted and dropped
  // as it streams, so a large zip costs no memory.
  upstream::body_sink sink = [body](std::string_view chunk) {
    if (body == nullptr) return true;
    if (body->size() + chunk.size() > max_list_bytes) return false;
    body->append(chunk);
    return true;
  };
  const auto started = clock_type::now();
  auto fetched = co_await state.client.get(std::move(url), std::move(sink), limits);
  request_sample sample;
  sample.kind = kind;
  sample.elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started);
  sample.status = fetched.status;
  if (fetched.status != 0) sample.ttfb = fetched.ttfb;
  sample.answered =
      fetched.result == upstream::outcome::ok || fetched.result == upstream::outcome::not_found;
  sample.body_bytes = fetched.body_bytes;
  if (!sample.answered) {
    sample.failure = fetched.reason;
    if (sample.failure == "aborted by receiver") {
      sample.failure = "list longer than " + std::to_string(max_list_bytes) + " bytes";
    }
  }
  co_return sample;
}

net::awaitable<void> probe_module(sweep_state& state, const upstream::tier_spec& tier,
                                  upstream_run& run, std::size_t module_index,
                                  std::string progress_prefix) {
  const auto& target = state.options.modules[module_index];
  const std::string base = tier.url + "/" + protocol::escape_case(target.path) + "/@v/";
  module_lookup lookup;
  lookup.module_index = module_index;
  std::vector<std::string> steps;

  std::string list_body;
  auto list = co_await fetch(state, request_kind::list, base + "list", &list_body);
  if (list.status == 200 && list.answered) {
    lookup.list = list_answer::found;
    lookup.versions = parse_version_list(list_body);
  } else if (list.answered) {
    lookup.list = list_answer::not_found;
  }
  steps.push_back(describe_sample(list));
  run.requests.push_back(std::move(list));

  lookup.probed_version = target.version ? target.version : newest_version(lookup.versions);
  if (lookup.probed_version) {
    const std::string file = base + protocol::escape_case(*lookup.probed_version);
    for (const auto& [kind, suffix] : file_requests) {
      auto sample = co_await fetch(state, kind, file + std::string(suffix), nullptr);
      if (kind == request_kind::info) lookup.info_found = sample.status == 200 && sample.answered;
      steps.push_back(describe_sample(sample));
      run.requests.push_back(std::move(sample));
    }
  } else {
    steps.emplace_back(lookup.list == list_answer::failed ? "no version to fetch"
                                                          : "no version listed");
  }

  std::string line = progress_prefix + " " + run.name + " " + target.path;
  if (lookup.probed_version) line += "@" + *lookup.probed_version;
  line += ":";
  for (std::size_t i = 0; i < steps.size(); ++i) line += (i == 0 ? " " : ", ") + steps[i];
  state.progress(line);
  run.lookups.push_back(std::move(lookup));
}

net::awaitable<void> sweep(sweep_state& state, probe_run& run) {
  const auto& options = state.options;
  const auto module_count = options.modules.size();
  for (int round = 1; round <= options.rounds; ++round) {
    for (std::size_t m = 0; m < module_count; ++m) {
      const std::string prefix = "probe: round " + std::to_string(round) + "/" +
                                 std::to_string(options.rounds) + ", module " +
                                 std::to_string(m + 1) + "/" + std::to_string(module_count) + ":";
      for (std::size_t u = 0; u < options.tiers.size(); ++u) {
        if (run.upstreams[u].skipped) continue;
        co_await probe_module(state, options.tiers[u], run.upstreams[u], m, prefix);
      }
    }
  }
}

}  // namespace

probe_run run_sweep(const sweep_options& options, const progress_sink& progress) {
  probe_run run;
  run.modules = options.modules;
  run.rounds = options.rounds;
  run.timeout = options.timeout;
  run.upstreams = planned_upstreams(options.tiers);
  for (const auto& upstream : run.upstreams) {
    if (upstream.skipped) progress("probe: skipping " + upstream.name + ": " + *upstream.skipped);
  }

  net::io_context io(1);
  upstream::client_options client_options;
  client_options.ca_file = options.ca_file;
  client_options.user_agent = "gomodproxy-probe/0.1";
  std::unique_ptr<upstream::http_client> client_holder;
  try {
    client_holder = std::make_unique<upstream::http_client>(io.get_executor(), client_options);
  } catch (const boost::system::system_error& e) {
    // The TLS context's failures are the CA file's (the resolver's throw std::runtime_error and
    // go out as they are); say which flag to fix.
    if (options.ca_file.empty()) throw;
    throw std::runtime_error("--ca-file: cannot load " + protocol::quote(options.ca_file) + ": " +
                             e.what());
  }
  auto& client = *client_holder;
  sweep_state state{client, options, progress};

  std::exception_ptr failure;
  net::co_spawn(io, sweep(state, run),
                [&failure](std::exception_ptr e) { failure = std::move(e); });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return run;
}

}  // namespace gomodproxy::probe_report
