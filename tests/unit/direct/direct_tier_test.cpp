// direct_tier with a stand-in go command (a shell script named by go_binary, the seam the
// server's --go-binary is): the commands it runs, what it makes of their output and failures,
// the deadline, the process bound, one repository at a time, and refused public paths.
// tests/integration/test_direct*.py run the real go against real git repositories.
#include "direct/direct_tier.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "common/errc.hpp"
#include "protocol/request.hpp"

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using upstream::outcome;
using steady_clock_point = std::chrono::steady_clock::time_point;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

protocol::module_request request(const std::string& target) {
  return protocol::parse_module_request(target).value();
}

struct answer {
  upstream::fetch_result result;
  std::string body;
  std::vector<std::size_t> chunks;
};

// Parameters, not lambda captures: a coroutine's frame keeps its own copies of them. The sink is
// a named variable because GCC 12 destroys a temporary closure in a co_await expression twice.
net::awaitable<void> fetch_into(direct_tier& tier, protocol::module_request req,
                                upstream::deadlines limits, std::shared_ptr<answer> out,
                                std::chrono::milliseconds delay) {
  if (delay.count() > 0) {
    net::steady_timer wait(co_await net::this_coro::executor, delay);
    co_await wait.async_wait(net::use_awaitable);
  }
  upstream::body_sink sink = [out](std::string_view chunk) {
    out->body += chunk;
    out->chunks.push_back(chunk.size());
    return true;
  };
  out->result = co_await tier.fetch(req, sink, limits);
}

class DirectTier : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("direct_tier_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "running");
    options_.root = dir_ / "root";
    options_.go_binary = (dir_ / "go").string();
    options_.private_patterns = {"git.corp.example.test"};
    options_.guard_url = "http://127.0.0.1:9";
    options_.server_environment = std::map<std::string, std::string>{
        {"PATH", "/usr/bin:/bin"}, {"HOME", dir_.string()}, {"SECRET_OF_SERVER", "x"}};
    options_.check_host =
        [](std::string, std::chrono::steady_clock::time_point) -> net::awaitable<outcome_of<void>> {
      co_return outcome_of<void>{};
    };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The stand-in go: `body` runs under /bin/sh with $STATE set to the test's directory, after
  // it has recorded its arguments and counted itself among the processes running.
  void go_script(const std::string& body) {
    std::ofstream out(dir_ / "go");
    out << "#!/bin/sh\nSTATE='" << dir_.string() << "'\n"
        << "echo \"$*\" >> \"$STATE/args\"\n"
        << "mkdir \"$STATE/running/$$\"; ls \"$STATE/running\" | wc -l >> \"$STATE/peaks\"\n"
        << body << "\nstatus=$?\nrmdir \"$STATE/running/$$\"\nexit $status\n";
    out.close();
    std::filesystem::permissions(dir_ / "go", std::filesystem::perms::owner_all);
  }

  int peak() {
    std::istringstream lines(read_file(dir_ / "peaks"));
    int most = 0;
    for (int n; lines >> n;) most = std::max(most, n);
    return most;
  }

  // `totals[i]`, when given, is the deadline of targets[i]; the others get `total`.
  std::vector<answer> fetch_all(direct_tier& tier, const std::vector<std::string>& targets,
                                std::chrono::milliseconds total = 20s,
                                std::vector<std::chrono::milliseconds> totals = {},
                                std::chrono::milliseconds stagger = 0ms) {
    std::vector<std::shared_ptr<answer>> answers;
    std::vector<std::future<void>> done;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& target = targets[i];
      auto out = std::make_shared<answer>();
      answers.push_back(out);
      upstream::deadlines limits;
      limits.total = i < totals.size() ? totals[i] : total;
      done.push_back(net::co_spawn(
          io_, fetch_into(tier, request(target), limits, out, stagger * static_cast<int>(i)),
          net::use_future));
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io_.run(); });
    for (auto& thread : threads) thread.join();
    io_.restart();
    std::vector<answer> out;
    for (auto& future : done) future.get();
    for (auto& a : answers) out.push_back(*a);
    return out;
  }

  answer fetch(direct_tier& tier, const std::string& target,
               std::chrono::milliseconds total = 20s) {
    return fetch_all(tier, {target}, total).front();
  }

  std::filesystem::path dir_;
  direct_options options_;
  net::io_context io_;
};

TEST_F(DirectTier, ListRunsGoListAndAnswersOneVersionPerLine) {
  go_script(R"(echo '{"Path":"git.corp.example.test/team/mod","Versions":["v1.0.0","v1.1.0"]}')");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/list");
  EXPECT_EQ(a.result.result, outcome::ok) << a.result.reason;
  EXPECT_EQ(a.body, "v1.0.0\nv1.1.0\n");
  EXPECT_EQ(read_file(dir_ / "args"),
            "list -m -retracted -versions -json git.corp.example.test/team/mod\n");
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "root" / "mod"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "root" / "gopath"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "root" / "gocache"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "root" / "scratch"));
}

TEST_F(DirectTier, AListWithoutTagsIsEmpty) {
  go_script(R"(echo '{"Path":"git.corp.example.test/team/mod"}')");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/list");
  EXPECT_EQ(a.result.result, outcome::ok);
  EXPECT_EQ(a.body, "");
}

TEST_F(DirectTier, LatestAndQueriesAnswerVersionAndTime) {
  go_script(
      R"(echo '{"Path":"git.corp.example.test/team/mod","Version":"v1.1.1-0.20260101000000-abcdefabcdef","Query":"main","Time":"2026-01-01T00:00:00Z","GoMod":"/x"}')");
  direct_tier tier(io_.get_executor(), options_);
  auto latest = fetch(tier, "/git.corp.example.test/team/mod/@latest");
  auto query = fetch(tier, "/git.corp.example.test/team/mod/@v/main.info");
  for (const auto& a : {latest, query}) {
    EXPECT_EQ(a.result.result, outcome::ok);
    EXPECT_EQ(
        a.body,
        R"({"Version":"v1.1.1-0.20260101000000-abcdefabcdef","Time":"2026-01-01T00:00:00Z"})");
  }
  EXPECT_EQ(read_file(dir_ / "args"),
            "list -m -json git.corp.example.test/team/mod@latest\n"
            "list -m -json git.corp.example.test/team/mod@main\n");
}

TEST_F(DirectTier, FilesAreStreamedInChunksAndTheExtractedTreeRemoved) {
  // The stand-in writes a 600 KiB zip where go keeps downloads, and an extracted tree.
  go_script(R"(
d="$GOMODCACHE/cache/download/git.corp.example.test/team/mod/@v"
x="$GOMODCACHE/git.corp.example.test/team/mod@v1.0.0"
mkdir -p "$d" "$x"
head -c 614400 /dev/urandom > "$d/v1.0.0.zip"
echo 'module git.corp.example.test/team/mod' > "$d/v1.0.0.mod"
echo '{"Version":"v1.0.0"}' > "$d/v1.0.0.info"
echo 'package mod' > "$x/mod.go"
printf '{"Path":"git.corp.example.test/team/mod","Version":"v1.0.0","Info":"%s","GoMod":"%s","Zip":"%s","Dir":"%s"}\n' "$d/v1.0.0.info" "$d/v1.0.0.mod" "$d/v1.0.0.zip" "$x")");
  direct_tier tier(io_.get_executor(), options_);
  const auto download = dir_ / "root/mod/cache/download/git.corp.example.test/team/mod/@v";
  const auto extracted = dir_ / "root/mod/git.corp.example.test/team/mod@v1.0.0";

  auto zip = fetch(tier, "/git.corp.example.test/team/mod/@v/v1.0.0.zip");
  EXPECT_EQ(zip.result.result, outcome::ok) << zip.result.reason;
  EXPECT_EQ(zip.result.body_bytes, 614400u);
  EXPECT_EQ(zip.body, read_file(download / "v1.0.0.zip"));
  EXPECT_EQ(zip.chunks, (std::vector<std::size_t>{262144, 262144, 90112}));
  EXPECT_FALSE(std::filesystem::exists(extracted));
  EXPECT_TRUE(std::filesystem::exists(download / "v1.0.0.zip"));

  auto mod = fetch(tier, "/git.corp.example.test/team/mod/@v/v1.0.0.mod");
  EXPECT_EQ(mod.body, "module git.corp.example.test/team/mod\n");
  auto info = fetch(tier, "/git.corp.example.test/team/mod/@v/v1.0.0.info");
  EXPECT_EQ(info.body, "{\"Version\":\"v1.0.0\"}\n");
  EXPECT_FALSE(std::filesystem::exists(extracted));
  EXPECT_EQ(read_file(dir_ / "args"),
            "mod download -json git.corp.example.test/team/mod@v1.0.0\n"
            "mod download -json git.corp.example.test/team/mod@v1.0.0\n"
            "mod download -json git.corp.example.test/team/mod@v1.0.0\n");
}

// A receiver that takes its time over a big zip (a slow cache disk) must not hold up the
// other fetches of the tier, which share its strand: a list asked once the zip has started
// is answered before the zip has been copied.
TEST_F(DirectTier, AZipBeingCopiedDoesNotHoldUpOtherFetches) {
  go_script(R"(
if [ "$1" = list ]; then echo '{"Versions":["v1.0.0"]}'; exit 0; fi
d="$GOMODCACHE/cache/download/git.corp.example.test/team/big/@v"
mkdir -p "$d"
head -c 16777216 /dev/zero > "$d/v1.0.0.zip"
printf '{"Path":"git.corp.example.test/team/big","Version":"v1.0.0","Zip":"%s"}\n' "$d/v1.0.0.zip")");
  direct_tier tier(io_.get_executor(), options_);
  upstream::deadlines limits;
  limits.total = 20s;
  auto list = std::make_shared<answer>();
  std::atomic<bool> list_asked{false};
  std::atomic<steady_clock_point::rep> list_done{0};
  std::atomic<steady_clock_point::rep> zip_done{0};
  auto now = [] { return std::chrono::steady_clock::now().time_since_epoch().count(); };
  upstream::body_sink slow_sink = [&](std::string_view) {
    if (!list_asked.exchange(true)) {
      net::co_spawn(
          io_,
          fetch_into(tier, request("/git.corp.example.test/team/other/@v/list"), limits, list, 0ms),
          [&](std::exception_ptr) { list_done = now(); });
    }
    std::this_thread::sleep_for(5ms);
    return true;
  };
  upstream::fetch_result zip_result;
  net::co_spawn(
      io_,
      [&]() -> net::awaitable<void> {
        zip_result = co_await tier.fetch(request("/git.corp.example.test/team/big/@v/v1.0.0.zip"),
                                         slow_sink, limits);
        zip_done = now();
      },
      net::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io_.run(); });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(zip_result.result, outcome::ok) << zip_result.reason;
  EXPECT_EQ(zip_result.body_bytes, 16777216u);
  EXPECT_EQ(list->body, "v1.0.0\n");
  EXPECT_LT(list_done.load(), zip_done.load());
}

// A go.mod above the cache directory would make every go command run inside that module.
TEST_F(DirectTier, ACacheDirectoryInsideAGoModuleIsAStartUpFailure) {
  std::filesystem::create_directories(dir_ / "project" / "var");
  { std::ofstream(dir_ / "project" / "go.mod") << "module example.com/project\n\ngo 1.99\n"; }
  options_.root = dir_ / "project" / "var" / "direct";
  try {
    direct_tier tier(io_.get_executor(), options_);
    ADD_FAILURE() << "constructed";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find((dir_ / "project" / "go.mod").string()),
              std::string::npos)
        << error.what();
  }
}

TEST_F(DirectTier, AMissingRepositoryIsNotFoundWithTheGoMessageOnOneScrubbedLine) {
  go_script(R"(
printf "go: module git.corp.example.test/team/nope: git ls-remote -q origin in $GOMODCACHE/cache/vcs/6a0a8d: exit status 128:\n\tfatal: repository 'https://ci:hunter22@git.corp.example.test/team/nope.git/' not found\n" >&2
exit 1)");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/nope/@v/list");
  EXPECT_EQ(a.result.result, outcome::not_found);
  EXPECT_EQ(a.result.reason,
            "go list -m: module git.corp.example.test/team/nope: git ls-remote -q origin: exit "
            "status 128: fatal: repository 'https://git.corp.example.test/team/nope.git/' not "
            "found");
}

TEST_F(DirectTier, PasswordsOfTheServersNetrcNeverAppearInAReason) {
  {
    std::ofstream(dir_ / ".netrc") << "machine git.corp.example.test login ci password pa55-w0rd\n";
  }
  go_script(R"(echo "fatal: could not read from pa55-w0rd remote" >&2; exit 1)");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/list");
  EXPECT_EQ(a.result.result, outcome::not_found);
  EXPECT_EQ(a.result.reason, "go list -m: fatal: could not read from *** remote");
}

TEST_F(DirectTier, AMissingVersionComesFromTheJsonError) {
  go_script(
      R"(echo '{"Path":"git.corp.example.test/team/mod","Version":"v1.9.0","Error":"git.corp.example.test/team/mod@v1.9.0: invalid version: unknown revision v1.9.0"}'; exit 1)");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/v1.9.0.zip");
  EXPECT_EQ(a.result.result, outcome::not_found);
  EXPECT_EQ(a.result.reason,
            "go mod download: git.corp.example.test/team/mod@v1.9.0: invalid version: unknown "
            "revision v1.9.0");
}

TEST_F(DirectTier, ANetworkFailureIsAnErrorNotANotFound) {
  go_script(
      R"(echo "go: module git.corp.example.test/team/mod: Get \"https://git.corp.example.test/team/mod?go-get=1\": dial tcp 10.0.0.1:443: connect: connection refused" >&2; exit 1)");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@latest");
  EXPECT_EQ(a.result.result, outcome::error);
}

// Killed by something else than the deadline (the out-of-memory killer, say): the module may
// well exist, so this must not be cached as a not-found.
TEST_F(DirectTier, AGoKilledByASignalIsAnErrorNotANotFound) {
  go_script("echo 'go: downloading git.corp.example.test/team/mod v1.0.0' >&2; kill -9 $$");
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/v1.0.0.zip");
  EXPECT_EQ(a.result.result, outcome::error) << a.result.reason;
  EXPECT_EQ(a.result.reason, "go mod download: killed by signal 9");
}

TEST_F(DirectTier, AHangingGoIsKilledWithItsChildrenAtTheDeadline) {
  go_script("sleep 300 & echo $! > \"$STATE/child\"; sleep 300");
  direct_tier tier(io_.get_executor(), options_);
  const auto started = std::chrono::steady_clock::now();
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/list", 700ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(a.result.result, outcome::timeout);
  EXPECT_EQ(a.result.reason, "timeout after 700ms (go list -m killed)");
  const std::string child = read_file(dir_ / "child");
  ASSERT_FALSE(child.empty());
  std::string state;
  for (int i = 0; i < 100; ++i) {
    std::ifstream stat("/proc/" + std::to_string(std::stoi(child)) + "/stat");
    std::string line;
    state = std::getline(stat, line) ? line.substr(line.rfind(')') + 2, 1) : "gone";
    if (state == "gone" || state == "Z") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(state == "gone" || state == "Z") << state;
}

TEST_F(DirectTier, AGoThatCannotRunIsAnError) {
  options_.go_binary = (dir_ / "no-go-here").string();
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/git.corp.example.test/team/mod/@v/list");
  EXPECT_EQ(a.result.result, outcome::error);
  EXPECT_EQ(a.result.reason, "cannot run go: " + (dir_ / "no-go-here").string() + ": not found");
}

TEST_F(DirectTier, NoMoreProcessesThanTheConcurrencyRunAtOnce) {
  options_.concurrency = 2;
  go_script(R"(sleep 0.3; echo '{"Versions":["v1.0.0"]}')");
  direct_tier tier(io_.get_executor(), options_);
  std::vector<std::string> targets;
  for (int i = 0; i < 7; ++i) {
    targets.push_back("/git.corp.example.test/team/mod" + std::to_string(i) + "/@v/list");
  }
  auto answers = fetch_all(tier, targets);
  for (const auto& a : answers) EXPECT_EQ(a.result.result, outcome::ok) << a.result.reason;
  EXPECT_EQ(peak(), 2);
  EXPECT_EQ(tier.processes_started(), 7u);
}

TEST_F(DirectTier, FetchesFromOneRepositoryRunOneAtATime) {
  go_script(R"(sleep 0.2; echo '{"Version":"v2.0.0","Versions":["v2.0.0"]}')");
  direct_tier tier(io_.get_executor(), options_);
  auto answers = fetch_all(
      tier,
      {"/git.corp.example.test/team/mod/@v/list", "/git.corp.example.test/team/mod/v2/@v/list",
       "/git.corp.example.test/team/mod/v3/@latest", "/git.corp.example.test/team/mod/@v/list"});
  for (const auto& a : answers) EXPECT_EQ(a.result.result, outcome::ok) << a.result.reason;
  EXPECT_EQ(peak(), 1);
  EXPECT_EQ(tier.processes_started(), 4u);
}

TEST_F(DirectTier, WaitingForAProcessSlotCountsAgainstTheDeadline) {
  options_.concurrency = 1;
  go_script(R"(sleep 1.5; echo '{"Versions":[]}')");
  direct_tier tier(io_.get_executor(), options_);
  // The first takes the only slot for 1.5 s; the second gives up waiting after 0.5 s.
  auto answers = fetch_all(
      tier, {"/git.corp.example.test/team/a/@v/list", "/git.corp.example.test/team/b/@v/list"}, 20s,
      {5s, 500ms}, 200ms);
  EXPECT_EQ(answers[0].result.result, outcome::ok);
  EXPECT_EQ(answers[1].result.result, outcome::timeout);
  EXPECT_EQ(answers[1].result.reason, "timeout after 500ms (waiting for a go process)");
  EXPECT_EQ(tier.processes_started(), 1u);
}

TEST_F(DirectTier, ARefusedPublicHostStartsNoProcess) {
  go_script(R"(echo '{"Versions":["v1.0.0"]}')");
  std::vector<std::string> asked;
  options_.check_host =
      [&asked](std::string host,
               std::chrono::steady_clock::time_point) -> net::awaitable<outcome_of<void>> {
    asked.push_back(host);
    co_return failure{errc::refused, host + " resolves to 127.0.0.1 (loopback)"};
  };
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/evil.example.com/x/@v/list");
  EXPECT_EQ(a.result.result, outcome::not_found);
  EXPECT_EQ(a.result.reason, "refused: evil.example.com resolves to 127.0.0.1 (loopback)");
  EXPECT_EQ(asked, std::vector<std::string>{"evil.example.com"});
  // Private paths are not checked.
  auto private_answer = fetch(tier, "/git.corp.example.test/team/mod/@v/list");
  EXPECT_EQ(private_answer.result.result, outcome::ok);
  EXPECT_EQ(asked.size(), 1u);
  EXPECT_EQ(tier.processes_started(), 1u);
}

// A lookup that fails for now says nothing about the module: not a not-found, which the
// resolver would remember for the negative TTL. The refusal's code decides, not its words.
TEST_F(DirectTier, AHostWhoseLookupFailedForNowIsNotANotFound) {
  go_script(R"(echo '{"Versions":["v1.0.0"]}')");
  struct row {
    boost::system::error_code code;
    std::string said;
    outcome expected;
  };
  const row rows[] = {
      {net::error::timed_out, "timed out", outcome::timeout},
      {net::error::host_not_found_try_again, "lookup failed (server failure)", outcome::error},
      {net::error::network_unreachable, "Network is unreachable", outcome::error},
      {net::error::host_not_found, "host not found", outcome::not_found},
      {net::error::no_data, "no address", outcome::not_found},
      // The address policy's own refusals are verdicts on the host, whatever they say.
      {errc::refused, "timed out", outcome::not_found},
      {errc::invalid_request, "not a host name", outcome::not_found},
  };
  const row* current = nullptr;
  options_.check_host =
      [&current](std::string host,
                 std::chrono::steady_clock::time_point) -> net::awaitable<outcome_of<void>> {
    co_return failure{current->code, host + ": dns: " + current->said};
  };
  direct_tier tier(io_.get_executor(), options_);
  for (const auto& r : rows) {
    current = &r;
    auto a = fetch(tier, "/example.com/x/@v/list");
    EXPECT_EQ(a.result.result, r.expected) << r.code.message();
    EXPECT_EQ(a.result.reason, "refused: example.com: dns: " + r.said);
  }
  EXPECT_EQ(tier.processes_started(), 0u);
}

TEST_F(DirectTier, WithoutAGuardEveryPublicPathIsRefused) {
  go_script(R"(echo '{"Versions":["v1.0.0"]}')");
  options_.guard_url.clear();
  direct_tier tier(io_.get_executor(), options_);
  auto a = fetch(tier, "/github.com/google/uuid/@v/list");
  EXPECT_EQ(a.result.result, outcome::not_found);
  EXPECT_EQ(a.result.reason, "refused: public module paths need the connect guard");
  EXPECT_EQ(tier.processes_started(), 0u);
}

TEST_F(DirectTier, PublicPathsRunBehindTheGuardAndAllowedOnesDoNot) {
  go_script(
      R"sh(env | sort > "$STATE/env.$(echo "$*" | tr -c 'a-z' _)"; echo '{"Versions":[]}')sh");
  options_.allow_patterns = {"gitlab.lan"};
  options_.server_environment->emplace("HTTPS_PROXY", "http://corp-proxy:3128");
  direct_tier tier(io_.get_executor(), options_);
  fetch(tier, "/github.com/google/uuid/@v/list");
  fetch(tier, "/gitlab.lan/group/project/@v/list");
  std::string public_env, allowed_env;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const auto name = entry.path().filename().string();
    if (name.find("github") != std::string::npos) public_env = read_file(entry.path());
    if (name.find("gitlab") != std::string::npos) allowed_env = read_file(entry.path());
  }
  EXPECT_NE(public_env.find("HTTPS_PROXY=http://127.0.0.1:9\n"), std::string::npos) << public_env;
  EXPECT_NE(public_env.find("GIT_ALLOW_PROTOCOL=https\n"), std::string::npos);
  EXPECT_NE(allowed_env.find("HTTPS_PROXY=http://corp-proxy:3128\n"), std::string::npos)
      << allowed_env;
  EXPECT_EQ(allowed_env.find("GIT_ALLOW_PROTOCOL"), std::string::npos);
  EXPECT_EQ(public_env.find("SECRET_OF_SERVER"), std::string::npos);
  EXPECT_NE(public_env.find("PWD=" + (dir_ / "root/scratch").string() + "\n"), std::string::npos);
}

TEST(RepositoryKey, DropsAMajorVersionSuffix) {
  EXPECT_EQ(repository_key("git.corp.example.test/team/mod"), "git.corp.example.test/team/mod");
  EXPECT_EQ(repository_key("git.corp.example.test/team/mod/v2"), "git.corp.example.test/team/mod");
  EXPECT_EQ(repository_key("example.com/m/v10"), "example.com/m");
  EXPECT_EQ(repository_key("example.com/m/v1"), "example.com/m/v1");
  EXPECT_EQ(repository_key("example.com/m/v02"), "example.com/m/v02");
  EXPECT_EQ(repository_key("example.com/m/vx"), "example.com/m/vx");
  EXPECT_EQ(repository_key("example.com/m/v"), "example.com/m/v");
  EXPECT_EQ(repository_key("example.com"), "example.com");
  // Upper case is kept: the go command clones by the path as written.
  EXPECT_EQ(repository_key("github.com/Team/Upper/v2"), "github.com/Team/Upper");
  // gopkg.in puts the major in the last element, and each major is a repository of its own
  // (its own branch, its own clone in the go command's cache).
  EXPECT_EQ(repository_key("gopkg.in/yaml.v2"), "gopkg.in/yaml.v2");
  EXPECT_EQ(repository_key("gopkg.in/user/pkg.v1"), "gopkg.in/user/pkg.v1");
}

}  // namespace
}  // namespace gomodproxy::direct
