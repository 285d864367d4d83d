#include "direct/direct_tier.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <deque>
#include <stdexcept>

#include "direct/go_env.hpp"
#include "direct/go_errors.hpp"
#include "direct/go_process.hpp"
#include "direct/network_sandbox.hpp"

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): POSIX declares it so.
extern char** environ;

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using protocol::endpoint;
using std::chrono::steady_clock;
using upstream::outcome;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// How much earlier than its deadline a fetch gives up, at most (a tenth of it for short ones).
constexpr std::chrono::milliseconds kill_margin{500};

// Files are handed to the cache in pieces of this size, never whole.
constexpr std::size_t file_chunk_bytes = std::size_t{256} * 1024;

// At most `capacity` holders at once, the others queued in arrival order until their deadline.
// Used only from one strand, so it needs no lock.
class async_gate {
 public:
  explicit async_gate(std::size_t capacity) : capacity_(capacity) {}

  /// True once admitted; false when `deadline` passed first.
  net::awaitable<bool> enter(steady_clock::time_point deadline) {
    if (in_use_ < capacity_ && waiters_.empty()) {
      ++in_use_;
      co_return true;
    }
    auto me = std::make_shared<waiter>(co_await net::this_coro::executor, deadline);
    waiters_.push_back(me);
    co_await me->timer.async_wait(use_tuple);
    if (me->admitted) co_return true;
    std::erase(waiters_, me);
    co_return false;
  }

  void leave() {
    // The place passes straight to the first waiter, so a newcomer cannot overtake it.
    if (!waiters_.empty()) {
      auto next = waiters_.front();
      waiters_.pop_front();
      next->admitted = true;
      next->timer.cancel();
      return;
    }
    --in_use_;
  }

  [[nodiscard]] bool idle() const { return in_use_ == 0 && waiters_.empty(); }

 private:
  struct waiter {
    waiter(const net::any_io_executor& executor, steady_clock::time_point deadline)
        : timer(executor, deadline) {}
    net::steady_timer timer;
    bool admitted = false;
  };
  std::size_t capacity_;
  std::size_t in_use_ = 0;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

template <typename F>
struct on_exit {
  F run;
  explicit on_exit(F f) : run(std::move(f)) {}
  on_exit(const on_exit&) = delete;
  on_exit& operator=(const on_exit&) = delete;
  // The clean-ups only throw std::bad_alloc; the destructor is noexcept, so running out of memory
  // there ends the process, which is fine.
  // NOLINTNEXTLINE(bugprone-exception-escape)
  ~on_exit() { run(); }
};
template <typename F>
on_exit(F) -> on_exit<F>;

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq != std::string_view::npos) {
      out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    }
  }
  return out;
}

std::filesystem::path make_directory(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    throw std::runtime_error("direct: cannot create " + path.string() + ": " + ec.message());
  }
  return path;
}

std::string text_field(const json::object& object, std::string_view name) {
  if (const auto* value = object.if_contains(name); value && value->is_string()) {
    return std::string(value->as_string());
  }
  return {};
}

bool is_under(const std::filesystem::path& path, const std::filesystem::path& directory) {
  auto relative = path.lexically_normal().lexically_relative(directory.lexically_normal());
  return !relative.empty() && *relative.begin() != ".." && !relative.is_absolute();
}

// A name that does not exist, or an address that may not be reached, is a verdict on the host;
// a lookup that failed for now (timed out, a server failure) is not, and must not be remembered
// as a not-found.
outcome refusal_outcome(const boost::system::error_code& code) {
  if (code == errc::refused || code == errc::invalid_request ||
      code == boost::asio::error::host_not_found || code == boost::asio::error::no_data) {
    return outcome::not_found;
  }
  return code == boost::asio::error::timed_out ? outcome::timeout : outcome::error;
}

}  // namespace

std::string repository_key(const std::string& module_path) {
  const auto slash = module_path.rfind('/');
  if (slash == std::string::npos || slash + 2 >= module_path.size() ||
      module_path[slash + 1] != 'v') {
    return module_path;
  }
  const std::string_view digits = std::string_view(module_path).substr(slash + 2);
  const bool major = digits.find_first_not_of("0123456789") == std::string_view::npos &&
                     digits.front() != '0' && digits != "1";
  return major ? module_path.substr(0, slash) : module_path;
}

struct direct_tier::impl {
  impl(net::any_io_executor process_executor, direct_options opts)
      : executor(std::move(process_executor)),
        strand(net::make_strand(executor)),
        options(std::move(opts)),
        processes(std::max<std::size_t>(1, options.concurrency)) {
    root = std::filesystem::absolute(options.root).lexically_normal();
    env.mod_cache = make_directory(root / "mod");
    env.gopath = make_directory(root / "gopath");
    env.go_cache = make_directory(root / "gocache");
    scratch = make_directory(root / "scratch");
    // The go command looks for a go.mod from its working directory up: found, it would run in
    // that module (its go line, replace directives and vendor directory) instead of none.
    for (auto directory = scratch; directory.has_relative_path();
         directory = directory.parent_path()) {
      std::error_code ignored;
      if (std::filesystem::exists(directory / "go.mod", ignored)) {
        throw std::runtime_error("cache_dir: " + scratch.string() + " is inside the Go module of " +
                                 (directory / "go.mod").string() +
                                 ", which the go command would run in; choose a --cache-dir "
                                 "outside any Go module");
      }
    }
    env.private_patterns = options.private_patterns;
    env.allow_patterns = options.allow_patterns;
    env.no_sumdb_patterns = options.no_sumdb_patterns;
    env.guard_url = options.guard_url;
    env.server_environment =
        options.server_environment ? *options.server_environment : process_environment();
    secrets = known_secrets(env.server_environment);
  }

  net::any_io_executor executor;
  net::strand<net::any_io_executor> strand;
  direct_options options;
  std::filesystem::path root;
  std::filesystem::path scratch;
  go_env_inputs env;
  std::vector<std::string> secrets;
  async_gate processes;
  std::map<std::string, std::shared_ptr<async_gate>> repositories;
  std::atomic<std::uint64_t> started{0};

  struct go_run {
    std::string subcommand;  ///< "go list -m", "go mod download"
    process_result process;
  };

  net::awaitable<upstream::fetch_result> fetch(protocol::module_request request,
                                               upstream::body_sink sink,
                                               upstream::deadlines limits);

  net::awaitable<go_run> run_go(const protocol::module_request& request, path_access access,
                                steady_clock::time_point deadline);
};

net::awaitable<direct_tier::impl::go_run> direct_tier::impl::run_go(
    const protocol::module_request& request, path_access access,
    steady_clock::time_point deadline) {
  go_run run;
  process_spec spec;
  spec.program = options.go_binary;
  const std::string& module_path = request.module_path;
  switch (request.kind) {
    case endpoint::list:
      run.subcommand = "go list -m";
      // -retracted: a proxy lists every tagged version; the go command hides retracted ones
      // itself, from the latest go.mod.
      spec.arguments = {"list", "-m", "-retracted", "-versions", "-json", module_path};
      break;
    case endpoint::latest:
      run.subcommand = "go list -m";
      spec.arguments = {"list", "-m", "-json", module_path + "@latest"};
      break;
    case endpoint::query:
      run.subcommand = "go list -m";
      spec.arguments = {"list", "-m", "-json", module_path + "@" + request.version};
      break;
    default:
      run.subcommand = "go mod download";
      spec.arguments = {"mod", "download", "-json", module_path + "@" + request.version};
      break;
  }
  spec.environment = go_environment(env, access);
  spec.working_directory = scratch;
  spec.deadline = deadline;
  if (access == path_access::public_path && options.network_sandbox) {
    spec = sandboxed(std::move(spec), env.guard_url);
  }
  ++started;
  run.process = co_await run_process(executor, std::move(spec));
  const auto& process = run.process;
  const std::string target = request.kind == endpoint::latest ? module_path + "@latest"
                             : request.version.empty()        ? module_path
                                                              : module_path + "@" + request.version;
  switch (process.how) {
    case process_result::ending::exited:
      spdlog::info("direct: {} {}: exit {} in {} ms", run.subcommand, target, process.exit_status,
                   process.duration.count());
      break;
    case process_result::ending::killed_at_deadline:
      spdlog::warn("direct: {} {}: killed at the deadline after {} ms", run.subcommand, target,
                   process.duration.count());
      break;
    case process_result::ending::spawn_failed:
      spdlog::warn("direct: {} {}: cannot run go: {}", run.subcommand, target, process.spawn_error);
      break;
  }
  co_return run;
}

net::awaitable<upstream::fetch_result> direct_tier::impl::fetch(protocol::module_request request,
                                                                upstream::body_sink sink,
                                                                upstream::deadlines limits) {
  const auto started_at = steady_clock::now();
  // A little before limits.total, which is usually the fill's own deadline: the killed process's
  // timeout then reaches the walk in time to be the tier's line in the answer.
  const auto deadline = started_at + limits.total -
                        std::min<std::chrono::milliseconds>(kill_margin, limits.total / 10);
  upstream::fetch_result result;
  auto answer = [&result](outcome how, std::string reason) {
    result.result = how;
    result.reason = std::move(reason);
    return result;
  };
  auto timed_out = [&](std::string_view while_doing) {
    return answer(outcome::timeout, "timeout after " + upstream::format_duration(limits.total) +
                                        " (" + std::string(while_doing) + ")");
  };
  if (protocol::is_sumdb(request.kind)) {
    co_return answer(outcome::error, "checksum databases are not fetched from version control");
  }

  const auto access = access_for(env, request.module_path);
  if (access == path_access::public_path) {
    if (env.guard_url.empty() || !options.check_host) {
      co_return answer(outcome::not_found, "refused: public module paths need the connect guard");
    }
    const std::string host = request.module_path.substr(0, request.module_path.find('/'));
    auto allowed = co_await options.check_host(host, deadline);
    if (!allowed) {
      co_return answer(refusal_outcome(allowed.error().code), "refused: " + allowed.error().detail);
    }
  }

  // One fetch per repository at a time: the second reuses the clone the first made, instead of
  // both cloning it, and a version's extracted tree is never removed under another fetch.
  const std::string key = repository_key(request.module_path);
  auto& slot = repositories[key];
  if (!slot) slot = std::make_shared<async_gate>(1);
  auto repository = slot;
  auto forget_if_idle = [this, &key, repository] {
    if (repository->idle()) repositories.erase(key);
  };
  if (!co_await repository->enter(deadline)) {
    forget_if_idle();
    co_return timed_out("waiting for another fetch from this repository");
  }
  on_exit leave_repository{[&] {
    repository->leave();
    forget_if_idle();
  }};

  go_run run;
  {
    if (!co_await processes.enter(deadline)) co_return timed_out("waiting for a go process");
    on_exit leave_processes{[this] { processes.leave(); }};
    run = co_await run_go(request, access, deadline);
  }
  const auto& process = run.process;
  if (process.how == process_result::ending::spawn_failed) {
    co_return answer(outcome::error, "cannot run go: " + process.spawn_error);
  }
  if (process.how == process_result::ending::killed_at_deadline) {
    co_return timed_out(run.subcommand + " killed");
  }

  if (process.signal != 0) {
    // Not a verdict on the module: the out-of-memory killer, an operator, a crash.
    co_return answer(outcome::error,
                     run.subcommand + ": killed by signal " + std::to_string(process.signal));
  }
  json::object reply;
  {
    boost::system::error_code ec;
    auto parsed = json::parse(process.out, ec);
    if (!ec && parsed.is_object()) reply = std::move(parsed.as_object());
  }
  std::string go_error = text_field(reply, "Error");
  if (process.exit_status != 0 || !go_error.empty()) {
    // go mod download -json puts the failure in the JSON; go list says it on stderr.
    const std::string& message = go_error.empty() ? process.err : go_error;
    const std::string shown =
        message.empty() ? "exit status " + std::to_string(process.exit_status) : message;
    co_return answer(classify_failure(shown),
                     condense(run.subcommand, shown, secrets, root.string()));
  }
  auto unexpected = [&](std::string_view what) {
    return answer(outcome::error,
                  run.subcommand + ": unexpected output (" + std::string(what) + ")");
  };
  if (reply.empty()) co_return unexpected("not a JSON object");

  auto deliver = [&](std::string_view body) {
    result.ttfb =
        std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - started_at);
    if (!body.empty() && !sink(body)) return answer(outcome::error, "aborted by receiver");
    result.body_bytes = body.size();
    result.status = 200;
    return answer(outcome::ok, "200");
  };
  switch (request.kind) {
    case endpoint::list: {
      std::string body;
      if (const auto* versions = reply.if_contains("Versions"); versions && versions->is_array()) {
        for (const auto& version : versions->as_array()) {
          if (version.is_string()) body += std::string(version.as_string()) + "\n";
        }
      }
      co_return deliver(body);
    }
    case endpoint::latest:
    case endpoint::query: {
      json::object info;
      info["Version"] = text_field(reply, "Version");
      if (info["Version"].as_string().empty()) co_return unexpected("no Version");
      if (auto time = text_field(reply, "Time"); !time.empty()) info["Time"] = time;
      co_return deliver(json::serialize(info));
    }
    default:
      break;
  }

  const std::string file = text_field(reply, request.kind == endpoint::info  ? "Info"
                                             : request.kind == endpoint::mod ? "GoMod"
                                                                             : "Zip");
  const std::filesystem::path extracted = text_field(reply, "Dir");
  // The extracted tree is only a copy of the zip, which stays in the module cache; leaving it
  // would double the disk the cache needs.
  on_exit remove_extracted{[&] {
    if (!extracted.empty() && is_under(extracted, env.mod_cache)) {
      std::error_code ignored;
      std::filesystem::remove_all(extracted, ignored);
    }
  }};
  if (file.empty()) co_return unexpected("no file named");
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) co_return unexpected("cannot open the file it named");
  on_exit close_file{[fd] { ::close(fd); }};
  std::string chunk(file_chunk_bytes, '\0');
  result.ttfb =
      std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - started_at);
  for (;;) {
    const auto n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) co_return answer(outcome::error, "reading the module cache failed");
    if (n == 0) break;
    if (!sink(std::string_view(chunk.data(), static_cast<std::size_t>(n)))) {
      co_return answer(outcome::error, "aborted by receiver");
    }
    result.body_bytes += static_cast<std::uint64_t>(n);
    // Every fetch of the tier runs on its strand: without a turn for the others between pieces,
    // a 500 MiB zip would hold all of them (and their finished processes) until it is copied.
    co_await net::post(strand, net::use_awaitable);
  }
  result.status = 200;
  co_return answer(outcome::ok, "200");
}

direct_tier::direct_tier(net::any_io_executor executor, direct_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

direct_tier::~direct_tier() = default;

net::awaitable<upstream::fetch_result> direct_tier::fetch(const protocol::module_request& request,
                                                          upstream::body_sink sink,
                                                          upstream::deadlines limits) {
  auto self = impl_;
  // Every step of a fetch runs on the tier's strand: the gates and the repository table are
  // touched only there, and the sink sees one caller at a time.
  co_return co_await net::co_spawn(self->strand, self->fetch(request, std::move(sink), limits),
                                   net::use_awaitable);
}

std::uint64_t direct_tier::processes_started() const { return impl_->started.load(); }

}  // namespace gomodproxy::direct
