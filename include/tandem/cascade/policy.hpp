// tandem: cascade policies (stage order and per-stage acceptance thresholds), the decision
// rule accept / escalate / abstain, the decision trace, deterministic replay of a logged
// trace, and save/load of a policy as a versioned text file.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// What a cascade stage does with its answer.
enum class cascade_decision : std::uint8_t {
  accept,    ///< return this stage's answer
  escalate,  ///< ask the next stage
  abstain,   ///< return no answer
};

/// Stable lower-case name, e.g. "escalate".
[[nodiscard]] constexpr std::string_view to_string(cascade_decision d) noexcept {
  switch (d) {
    case cascade_decision::accept:
      return "accept";
    case cascade_decision::escalate:
      return "escalate";
    case cascade_decision::abstain:
      return "abstain";
  }
  return "unknown";
}

/// One decision of a cascade run, enough to log it and replay it.
struct cascade_trace_entry {
  std::size_t stage = 0;  ///< index of the stage (into the cascade's stage list)
  double score = 0;       ///< the stage's calibrated confidence in its answer
  double threshold = 0;   ///< the acceptance threshold it was compared with
  double cost = 0;        ///< what the stage's call cost
  cascade_decision decision = cascade_decision::accept;  ///< what the policy decided
};

/// A cascade policy: which stages run in which order, and when each accepts. Stage
/// `order[r]` runs r-th; it accepts when its score >= `accept[r]`. Below that, a stage
/// that is not the last escalates, unless its score is < `abstain_below[r]` (then the
/// cascade abstains); the last stage abstains below its threshold (threshold -inf: it
/// always accepts). Value type.
struct cascade_policy {
  std::vector<std::size_t> order;     ///< stage indices, each at most once
  std::vector<double> accept;         ///< per position in `order`
  std::vector<double> abstain_below;  ///< per position; -inf disables (the default)

  /// A policy over `order` whose every stage but the last accepts at `threshold`, the
  /// last always accepts.
  [[nodiscard]] static cascade_policy chain(std::vector<std::size_t> order, double threshold) {
    cascade_policy p;
    const std::size_t k = order.size();
    p.order = std::move(order);
    p.accept.assign(k, threshold);
    if (k > 0) p.accept.back() = -std::numeric_limits<double>::infinity();
    p.abstain_below.assign(k, -std::numeric_limits<double>::infinity());
    return p;
  }

  /// Checks the policy against `stages` stages: non-empty, matching sizes, indices in
  /// range and distinct, thresholds not NaN. Errors: empty_input, size_mismatch,
  /// invalid_argument.
  [[nodiscard]] errc validate(std::size_t stages) const noexcept {
    if (order.empty()) return errc::empty_input;
    if (accept.size() != order.size() || abstain_below.size() != order.size())
      return errc::size_mismatch;
    for (std::size_t r = 0; r < order.size(); ++r) {
      if (order[r] >= stages || std::isnan(accept[r]) || std::isnan(abstain_below[r]))
        return errc::invalid_argument;
      for (std::size_t s = 0; s < r; ++s)
        if (order[s] == order[r]) return errc::invalid_argument;
    }
    return errc::ok;
  }

  /// The decision at position `rank` (into `order`) for calibrated score `score`.
  /// Precondition (TANDEM_ASSERT: a programming error, the caller's index): rank <
  /// order.size(). A NaN score is never accepted (it escalates, or abstains at the last
  /// stage).
  [[nodiscard]] cascade_decision decide(std::size_t rank, double score) const noexcept {
    TANDEM_ASSERT(rank < order.size(), "cascade_policy::decide: rank out of range");
    if (score >= accept[rank]) return cascade_decision::accept;
    if (rank + 1 == order.size() || score < abstain_below[rank]) return cascade_decision::abstain;
    return cascade_decision::escalate;
  }

  /// The policy as text: a "tandem-cascade-policy 1" line (1: file_version), then one line
  /// per stage "stage accept abstain_below" with thresholds in hexadecimal floating point
  /// (exact).
  [[nodiscard]] std::string to_text() const {
    std::string out = "tandem-cascade-policy " + std::to_string(file_version) + "\n";
    char buf[128];
    for (std::size_t r = 0; r < order.size(); ++r) {
      std::snprintf(buf, sizeof buf, "%zu %a %a\n", order[r], accept[r], abstain_below[r]);
      out += buf;
    }
    return out;
  }

  /// Reads text written by `to_text` (or `save`). Errors, with details in `*info` when not
  /// null (the line, and the column where a field is bad): unsupported_version (another
  /// version line; the details state it and file_version), corrupt_file (a bad header,
  /// line or number, a NaN, repeated stages, no stage).
  [[nodiscard]] static result<cascade_policy> from_text(std::string_view text,
                                                        error_info* info = nullptr) {
    constexpr std::string_view head = "tandem-cascade-policy ";
    if (text.substr(0, head.size()) != head)
      return detail::fail_at(info, errc::corrupt_file, 1, 1,
                             "not a cascade policy file (no \"tandem-cascade-policy\" header)");
    text.remove_prefix(head.size());
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos)
      return detail::fail_at(info, errc::corrupt_file, 1, 0, "cascade policy file truncated");
    if (const std::string_view v = text.substr(0, nl); v != std::to_string(file_version))
      return detail::fail_at(info, errc::unsupported_version, 1, head.size() + 1,
                             "cascade policy file of format version %.*s; this build reads "
                             "version %u",
                             static_cast<int>(std::min<std::size_t>(v.size(), 32)), v.data(),
                             static_cast<unsigned>(file_version));
    text.remove_prefix(nl + 1);
    cascade_policy p;
    for (std::uint64_t n = 2; !text.empty(); ++n) {
      const std::size_t e = text.find('\n');
      if (e == std::string_view::npos)
        return detail::fail_at(info, errc::corrupt_file, n, 0,
                               "cascade policy file truncated (no newline)");
      const std::string line(text.substr(0, e));
      text.remove_prefix(e + 1);
      const char* s = line.c_str();
      auto bad = [&](const char* what) {
        return detail::fail_at(
            info, errc::corrupt_file, n, static_cast<std::uint64_t>(s - line.c_str()) + 1,
            "cascade policy: bad %s in \"%.*s\"", what,
            static_cast<int>(std::min<std::size_t>(line.size(), 64)), line.c_str());
      };
      char* end = nullptr;
      if (*s < '0' || *s > '9') return bad("stage index");
      const unsigned long long idx = std::strtoull(s, &end, 10);
      if (end == s || *end != ' ' || idx > (std::uint64_t{1} << 32)) return bad("stage index");
      s = end + 1;
      const double a = std::strtod(s, &end);
      if (end == s || *end != ' ') return bad("accept threshold");
      s = end + 1;
      const double b = std::strtod(s, &end);
      if (end == s || *end != '\0') return bad("abstain threshold");
      p.order.push_back(static_cast<std::size_t>(idx));
      p.accept.push_back(a);
      p.abstain_below.push_back(b);
    }
    switch (p.validate(std::numeric_limits<std::size_t>::max())) {
      case errc::ok:
        return p;
      case errc::empty_input:
        return detail::fail(info, errc::corrupt_file, "cascade policy file without a stage");
      default:
        return detail::fail(info, errc::corrupt_file,
                            "cascade policy file: a NaN threshold or a repeated stage");
    }
  }

  /// Writes `to_text()` to `path`, replacing any file there as a whole. Errors: io_error
  /// (details in `*info`: the path). The policy is unchanged; on failure an earlier file
  /// at `path` is intact.
  [[nodiscard]] errc save(std::string_view path, error_info* info = nullptr) const {
    return detail::write_file(path, std::string_view(to_text()), info);
  }

  /// Reads a policy from `path`. Errors: file_not_found, invalid_argument (a directory),
  /// io_error, those of from_text; details (the path first) in `*info`.
  [[nodiscard]] static result<cascade_policy> load(std::string_view path,
                                                   error_info* info = nullptr) {
    return detail::parse_file(path, info, [](std::span<const std::byte> b, error_info* i) {
      return from_text(detail::as_text(b), i);
    });
  }

  /// The format version to_text() writes; from_text() refuses any other
  /// (`unsupported_version`).
  static constexpr std::uint32_t file_version = 1;
};

/// Replays logged scores through `policy`: `scores[r]` is the score the stage at position
/// r produced (only the prefix that ran matters). Appends the decisions to `trace`
/// (cleared first), with `costs[r]` as each stage's cost, and stops at the first accept or
/// abstain. The same scores always give the same trace. Errors: those of
/// policy.validate(stages), size_mismatch (fewer scores or costs than needed to reach a
/// final decision).
[[nodiscard]] inline errc replay_trace(const cascade_policy& policy, std::size_t stages,
                                       std::span<const double> scores,
                                       std::span<const double> costs,
                                       std::vector<cascade_trace_entry>& trace) {
  trace.clear();
  TANDEM_TRY(policy.validate(stages));
  for (std::size_t r = 0; r < policy.order.size(); ++r) {
    if (r >= scores.size() || r >= costs.size()) return errc::size_mismatch;
    const cascade_decision d = policy.decide(r, scores[r]);
    trace.push_back({policy.order[r], scores[r], policy.accept[r], costs[r], d});
    if (d != cascade_decision::escalate) return errc::ok;
  }
  return errc::ok;
}

}  // namespace tandem::inline v0
