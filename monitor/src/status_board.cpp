#include "monitor/status_board.hpp"

#include <algorithm>
#include <utility>

namespace gomodproxy::monitor {
namespace {

using std::chrono::microseconds;

// The traffic window moves in steps of this size, so the counters are copied at most once a
// minute however often the page is read or probes run.
constexpr std::chrono::seconds checkpoint_every{60};
// "Recent" for picking the slowest tier: few enough to follow a change within minutes, enough
// that one slow answer does not mark a tier.
constexpr std::size_t recent_probe_answers = 5;

std::optional<microseconds> median(std::vector<microseconds> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  std::size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2;
}

std::optional<double> ratio(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

// One line of at most `limit` bytes, cut on a UTF-8 character boundary, without control
// characters: it ends up in a table cell and a JSON string.
std::string one_line(std::string_view text, std::size_t limit) {
  text = text.substr(0, text.find_first_of("\r\n"));
  if (text.size() > limit) {
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  std::string out(text);
  for (char& c : out) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) c = ' ';
  }
  return out;
}

}  // namespace

status_board::status_board(std::vector<std::string> tiers, wall_clock_fn now)
    : tiers_(std::move(tiers)),
      now_(now ? std::move(now) : wall_clock_fn([] { return std::chrono::system_clock::now(); })),
      counters_(tiers_.size()),
      probes_(tiers_.size()) {
  // The first report covers the time since start rather than nothing.
  checkpoints_.push_back(read_counters(now_()));
}

void status_board::record_cache_lookup(cache_result result) {
  lookups_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
}

void status_board::record_attempt(std::size_t tier, upstream_outcome outcome,
                                  std::optional<microseconds> ttfb) {
  if (tier >= counters_.size()) return;
  auto& counters = counters_[tier];
  counters.attempts[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  if (ttfb) counters.last_ttfb_us.store(ttfb->count(), std::memory_order_relaxed);
}

void status_board::record_probe(std::size_t tier, bool success, std::optional<microseconds> ttfb) {
  if (tier >= tiers_.size()) return;
  auto now = now_();
  std::lock_guard lock(mutex_);
  // Probes are the board's clock tick: they keep the traffic checkpoints a minute apart even
  // when nobody reads the page.
  (void)checkpoint_locked(now);
  trim_probes_locked(tier, now);
  auto& samples = probes_[tier];
  samples.push_back({now, success ? ttfb : std::nullopt});
  if (samples.size() > max_probe_samples) samples.pop_front();
}

void status_board::record_problem(std::size_t tier, std::string_view kind, std::string_view reason,
                                  int status) {
  if (tier >= tiers_.size()) return;
  auto now = now_();
  const std::string code = std::to_string(status);
  std::string line = status != 0 && reason.starts_with(code) ? "status " + code
                                                             : one_line(reason, max_reason_bytes);
  std::lock_guard lock(mutex_);
  auto same = std::find_if(problems_.begin(), problems_.end(), [&](const problem_entry& entry) {
    return entry.tier == tier && entry.kind == kind && entry.reason == line;
  });
  problem_entry entry{now, now, 1, tier, std::string(kind), std::move(line)};
  if (same != problems_.end()) {
    // A dead tier fails every probe and request the same way; one row with a count keeps
    // the other problems on the page.
    entry.first_at = same->first_at;
    entry.count = same->count + 1;
    problems_.erase(same);
  }
  problems_.push_front(std::move(entry));
  if (problems_.size() > max_problems) problems_.pop_back();
}

status_board::checkpoint status_board::read_counters(wall_time at) const {
  checkpoint out{at, std::vector<attempt_counts>(counters_.size()), {}};
  for (std::size_t t = 0; t < counters_.size(); ++t) {
    for (std::size_t o = 0; o < upstream_outcome_count; ++o) {
      out.attempts[t][o] = counters_[t].attempts[o].load(std::memory_order_relaxed);
    }
  }
  for (std::size_t r = 0; r < cache_result_count; ++r) {
    out.lookups[r] = lookups_[r].load(std::memory_order_relaxed);
  }
  return out;
}

status_board::checkpoint status_board::checkpoint_locked(wall_time now) {
  // The window starts at the last checkpoint no later than an hour ago, so it spans an hour
  // (plus at most a minute) once the server has run that long; nothing counted is dropped when
  // checkpoints are sparse, the window is only reported longer.
  while (checkpoints_.size() >= 2 && checkpoints_[1].at <= now - window) {
    checkpoints_.pop_front();
  }
  checkpoint baseline = checkpoints_.front();
  if (now - checkpoints_.back().at >= checkpoint_every) {
    checkpoints_.push_back(read_counters(now));
  }
  return baseline;
}

void status_board::trim_probes_locked(std::size_t tier, wall_time now) {
  auto& samples = probes_[tier];
  while (!samples.empty() && samples.front().at < now - window) samples.pop_front();
}

status_report status_board::report(cache_figures cache,
                                   const std::function<bool(std::size_t)>& up) {
  // Asked before the lock: the source takes locks of its own.
  std::vector<bool> up_now(tiers_.size(), true);
  if (up) {
    for (std::size_t t = 0; t < tiers_.size(); ++t) up_now[t] = up(t);
  }
  status_report out;
  out.cache.figures = cache;
  auto now = now_();
  out.generated_at = now;
  {
    std::lock_guard lock(mutex_);
    checkpoint baseline = checkpoint_locked(now);
    checkpoint current = read_counters(now);
    out.traffic_window =
        std::max(std::chrono::seconds(0),
                 std::chrono::duration_cast<std::chrono::seconds>(now - baseline.at));

    for (std::size_t t = 0; t < tiers_.size(); ++t) {
      tier_status tier;
      tier.name = tiers_[t];
      tier.up = up_now[t];
      trim_probes_locked(t, now);
      tier.probes.assign(probes_[t].begin(), probes_[t].end());
      std::vector<microseconds> answers;
      for (const auto& sample : tier.probes) {
        if (!sample.ttfb) {
          ++tier.probe_failures;
          continue;
        }
        ++tier.probe_successes;
        answers.push_back(*sample.ttfb);
      }
      tier.probe_success_rate = ratio(tier.probe_successes, tier.probes.size());
      if (!tier.probes.empty()) tier.probe_ttfb_now = tier.probes.back().ttfb;
      if (!answers.empty()) {
        tier.probe_ttfb_max = *std::max_element(answers.begin(), answers.end());
        std::size_t from =
            answers.size() > recent_probe_answers ? answers.size() - recent_probe_answers : 0;
        tier.recent_ttfb =
            median({answers.begin() + static_cast<std::ptrdiff_t>(from), answers.end()});
      }
      tier.probe_ttfb_median = median(std::move(answers));

      for (std::size_t o = 0; o < upstream_outcome_count; ++o) {
        tier.attempts[o] = current.attempts[t][o] - baseline.attempts[t][o];
      }
      auto count = [&tier](upstream_outcome outcome) {
        return tier.attempts[static_cast<std::size_t>(outcome)];
      };
      auto ok = count(upstream_outcome::ok);
      auto not_found = count(upstream_outcome::not_found);
      tier.tried =
          ok + not_found + count(upstream_outcome::error) + count(upstream_outcome::timeout);
      tier.success_rate = ratio(ok + not_found, tier.tried);
      tier.hit_rate = ratio(ok, ok + not_found);
      auto last_ttfb = counters_[t].last_ttfb_us.load(std::memory_order_relaxed);
      if (last_ttfb >= 0) tier.last_traffic_ttfb = microseconds(last_ttfb);
      if (!tier.recent_ttfb) tier.recent_ttfb = tier.last_traffic_ttfb;
      out.tiers.push_back(std::move(tier));
    }

    std::uint64_t lookups = 0;
    for (std::size_t r = 0; r < cache_result_count; ++r) {
      out.cache.lookups[r] = current.lookups[r] - baseline.lookups[r];
      lookups += out.cache.lookups[r];
    }
    out.cache.hit_rate =
        ratio(out.cache.lookups[static_cast<std::size_t>(cache_result::hit)], lookups);

    for (const auto& entry : problems_) {
      out.problems.push_back({entry.first_at, entry.last_at, entry.count, tiers_[entry.tier],
                              entry.kind, entry.reason});
    }
  }

  std::optional<std::size_t> slowest;
  std::size_t candidates = 0;
  bool tie = false;
  for (std::size_t t = 0; t < out.tiers.size(); ++t) {
    const auto& recent = out.tiers[t].recent_ttfb;
    if (!out.tiers[t].up || !recent) continue;
    ++candidates;
    if (!slowest || *recent > *out.tiers[*slowest].recent_ttfb) {
      slowest = t;
      tie = false;
    } else if (*recent == *out.tiers[*slowest].recent_ttfb) {
      tie = true;
    }
  }
  if (slowest && candidates >= 2 && !tie) out.tiers[*slowest].slowest = true;
  return out;
}

}  // namespace gomodproxy::monitor
