// The health prober, which runs inside `gomodproxy serve` (the one-shot `gomodproxy probe` report
// is probe_report/): every interval each monitored tier is asked a cheap protocol question
// (a module's @v/list); the answer feeds the tier's circuit breaker and the probe metrics. A
// tier whose request stalled is probed at once, and a tier that is down is probed more often.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "monitor/metrics.hpp"
#include "monitor/tier_health.hpp"

namespace gomodproxy::monitor {

struct probe_target {
  std::size_t tier = 0;  ///< index in metrics and tier_health
  std::string url;       ///< full URL, e.g. "https://goproxy.cn/golang.org/x/mod/@v/list"
  /// How the log names it: the tier's display name and the path, never the URL's credentials.
  std::string shown;
};

/// What one probe fetch saw.
struct probe_answer {
  bool answered = false;  ///< 200, 404 or 410: the tier works, whether or not it has the module
  int status = 0;         ///< final HTTP status; 0 when none arrived
  std::optional<std::chrono::microseconds> ttfb;  ///< request start until response headers
  std::string reason;  ///< one line, for the log: "200", "connection refused", ...
};

/// Fetches `url` once, waiting at most `patience` for the connection and again for the
/// response headers (the tier's stall limit: a probe that hangs is a failed probe). Never
/// throws for network problems.
using probe_fetch = std::function<boost::asio::awaitable<probe_answer>(
    std::string url, std::chrono::milliseconds patience)>;

/// Runs one probe loop per tier on a strand of `executor`: wait, then probe every target of the
/// tier in turn, and again. The wait is `interval` while the tier is up (the first round comes
/// one interval after start()); while its breaker is open it is 2 s, doubling after each failed
/// round up to `interval`, so a recovered tier is noticed soon; and a stall reported to
/// `health` ends the wait at once. A probe's failure is logged when the tier's probes start
/// failing and its recovery when they answer again, not every time. Thread-safe. `health`,
/// `metrics` and whatever `fetch` uses must outlive the executor's last run, since a probe in
/// progress holds them until it finishes or the executor is stopped.
class health_prober final {
 public:
  health_prober(const boost::asio::any_io_executor& executor, std::chrono::milliseconds interval,
                std::vector<probe_target> targets, probe_fetch fetch, tier_health& health,
                metrics& metrics);
  ~health_prober();  // NOLINT(bugprone-exception-escape): see the definition
  health_prober(const health_prober&) = delete;
  health_prober& operator=(const health_prober&) = delete;

  /// Starts the loops; does nothing when the interval is zero or there is no target.
  void start();
  /// Ends the loops: a waiting loop stops at once, a probing one after its current fetch.
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace gomodproxy::monitor
