// tandem: draft-length control for speculative decoding. A policy says how many tokens
// to draft next and learns from each verification round: fixed_draft, adaptive_draft
// (+2 when every draft token was accepted, -1 otherwise) and cost_model_draft (online
// estimates of the acceptance rate and the cost ratio; drafts the length of best
// predicted speedup, or nothing when speculation cannot pay).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>

#include "tandem/core/config.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// What one verification round measured, reported to the draft-length policy.
struct draft_round {
  std::size_t requested = 0;     ///< draft length asked for (0: no speculation)
  std::size_t drafted = 0;       ///< tokens the drafter returned
  std::size_t accepted = 0;      ///< leading draft tokens the target accepted
  double draft_seconds = 0.0;    ///< time in the drafter this round
  double target_seconds = 0.0;   ///< time in the target's batched pass this round
  std::size_t target_batch = 0;  ///< tokens in that pass (drafted + 1)
};

/// Chooses draft lengths: `next()` is the length for the coming round (0 means "no
/// speculation": one plain target step); `update(r)` learns from a finished round.
template <class P>
concept DraftLengthPolicy = requires(P& p, const P& cp, const draft_round& r) {
  { p.next() } -> std::convertible_to<std::size_t>;
  p.update(r);
};

/// Always drafts `length` tokens (clamped to max_draft_length by the decoder).
struct fixed_draft {
  std::size_t length = 4;
  [[nodiscard]] std::size_t next() const noexcept { return length; }
  void update(const draft_round&) noexcept {}
};

/// The +2/-1 heuristic: after a round whose whole draft was accepted, draft two more;
/// otherwise one fewer; kept within [min_length, max_length].
class adaptive_draft {
 public:
  /// Preconditions (TANDEM_ASSERT): 1 <= min_length <= initial <= max_length <=
  /// max_draft_length.
  explicit adaptive_draft(std::size_t initial = 4, std::size_t min_length = 1,
                          std::size_t max_length = 16) noexcept
      : length_(initial), min_(min_length), max_(max_length) {
    TANDEM_ASSERT(min_length >= 1 && min_length <= initial && initial <= max_length &&
                      max_length <= max_draft_length,
                  "adaptive_draft: need 1 <= min <= initial <= max <= max_draft_length");
  }
  [[nodiscard]] std::size_t next() const noexcept { return length_; }
  void update(const draft_round& r) noexcept {
    if (r.requested == 0) return;
    if (r.drafted > 0 && r.accepted == r.drafted)
      length_ = std::min(max_, length_ + 2);
    else
      length_ = std::max(min_, length_ > 0 ? length_ - 1 : 0);
  }

 private:
  std::size_t length_, min_, max_;
};

/// Settings of cost_model_draft.
struct cost_model_options {
  std::size_t max_length = 16;    ///< longest draft considered (<= max_draft_length)
  double prior_acceptance = 0.6;  ///< acceptance rate assumed before any measurement
  double prior_weight = 1.0;      ///< pseudo-observations behind the prior
  double decay = 0.98;            ///< per-round forgetting of old observations, in (0, 1]
  /// While speculation is off, draft 1 token after this many rounds (a probe, so the
  /// estimates can recover); each probe that is rejected doubles the wait, up to
  /// max_probe_interval.
  std::size_t probe_interval = 16;
  std::size_t max_probe_interval = 512;  ///< >= probe_interval
  double min_gain = 1.0;                 ///< speculate only when the predicted speedup exceeds this
};

/// The cost-model controller. Estimates online the per-token acceptance rate a (decayed
/// counts: accepted tokens over accepted tokens plus rejections, from a prior), the cost
/// of the target's pass as a linear function of its batch size, T(b) = t0 + t1 (b - 1)
/// (decayed least squares; t1 = 0 until two batch sizes were seen), and the draft cost
/// per token d. For each draft length g it predicts the speedup over target-only
/// decoding,
///   S(g) = (1 - a^(g+1)) / (1 - a) * T(1) / (g d + T(g + 1)),
/// which for a batch-independent target cost is Leviathan et al.'s
/// (1 - a^(g+1)) / ((1 - a)(g c + 1)) with c = d / T(1), and drafts the g of largest S(g)
/// when S(g) > min_gain, else nothing (probing with one token after probe_interval
/// rounds, the wait doubling after each rejected probe). Allocates nothing.
class cost_model_draft {
 public:
  /// Preconditions (TANDEM_ASSERT): 1 <= max_length <= max_draft_length, prior in
  /// (0, 1), prior_weight > 0, decay in (0, 1], probe_interval >= 1.
  explicit cost_model_draft(cost_model_options o = {}) noexcept
      : o_(o), interval_(o.probe_interval), until_probe_(o.probe_interval) {
    TANDEM_ASSERT(o.max_length >= 1 && o.max_length <= max_draft_length,
                  "cost_model_draft: max_length outside [1, max_draft_length]");
    TANDEM_ASSERT(o.prior_acceptance > 0.0 && o.prior_acceptance < 1.0 && o.prior_weight > 0.0 &&
                      o.decay > 0.0 && o.decay <= 1.0 && o.probe_interval >= 1 &&
                      o.max_probe_interval >= o.probe_interval,
                  "cost_model_draft: options out of range");
    choose();
  }

  [[nodiscard]] std::size_t next() const noexcept { return next_; }

  void update(const draft_round& r) noexcept {
    if (probing_ && r.requested > 0) {
      probing_ = false;
      if (r.drafted > 0 && r.accepted == 0)
        interval_ = std::min(interval_ * 2, o_.max_probe_interval);
      until_probe_ = interval_;
    }
    // Acceptance: each accepted token is a success; a round that stopped before the end
    // of its draft adds one failure.
    if (r.drafted > 0) {
      acc_ = acc_ * o_.decay + static_cast<double>(r.accepted);
      rej_ = rej_ * o_.decay + (r.accepted < r.drafted ? 1.0 : 0.0);
      if (r.draft_seconds > 0.0) {
        dsec_ = dsec_ * o_.decay + r.draft_seconds;
        dtok_ = dtok_ * o_.decay + static_cast<double>(r.drafted);
      }
    }
    if (r.target_batch > 0 && r.target_seconds > 0.0) {
      const double b = static_cast<double>(r.target_batch - 1);
      sw_ = sw_ * o_.decay + 1.0;
      sb_ = sb_ * o_.decay + b;
      sbb_ = sbb_ * o_.decay + b * b;
      st_ = st_ * o_.decay + r.target_seconds;
      sbt_ = sbt_ * o_.decay + b * r.target_seconds;
    }
    ++rounds_;
    choose();
  }

  /// Current acceptance-rate estimate.
  [[nodiscard]] double acceptance() const noexcept {
    const double w = o_.prior_weight;
    return (acc_ + w * o_.prior_acceptance) / (acc_ + rej_ + w);
  }
  /// Estimated target seconds for a pass over `b` >= 1 tokens (0 before any measurement).
  [[nodiscard]] double target_cost(std::size_t b) const noexcept {
    if (sw_ <= 0.0) return 0.0;
    const double var = sw_ * sbb_ - sb_ * sb_;
    double t1 = 0.0;
    if (var > 1e-9 * sw_ * sw_) t1 = std::max(0.0, (sw_ * sbt_ - sb_ * st_) / var);
    const double t0 = std::max(0.0, (st_ - t1 * sb_) / sw_);
    return t0 + t1 * static_cast<double>(b - 1);
  }
  /// Estimated draft seconds per drafted token (0 before any measurement).
  [[nodiscard]] double draft_cost() const noexcept { return dtok_ > 0.0 ? dsec_ / dtok_ : 0.0; }
  /// Predicted speedup over target-only decoding of drafting g tokens (1 for g = 0).
  [[nodiscard]] double predicted_speedup(std::size_t g) const noexcept {
    if (g == 0) return 1.0;
    const double a = std::min(acceptance(), 1.0 - 1e-9);
    const double tokens = (1.0 - std::pow(a, static_cast<double>(g + 1))) / (1.0 - a);
    const double t1 = target_cost(1);
    if (t1 <= 0.0) return tokens;  // nothing measured yet: assume free drafts
    return tokens * t1 / (static_cast<double>(g) * draft_cost() + target_cost(g + 1));
  }
  /// The largest predicted speedup over the lengths considered (for statistics).
  [[nodiscard]] double best_predicted_speedup() const noexcept { return best_; }

 private:
  void choose() noexcept {
    if (sw_ <= 0.0) {  // no target cost measured yet: a moderate first draft
      next_ = std::min<std::size_t>(4, o_.max_length);
      return;
    }
    std::size_t best_g = 0;
    double best = 1.0;
    for (std::size_t g = 1; g <= o_.max_length; ++g) {
      const double s = predicted_speedup(g);
      if (s > best) {
        best = s;
        best_g = g;
      }
    }
    best_ = best;
    if (best_g == 0 || best <= o_.min_gain) {
      if (until_probe_ == 0) {
        next_ = 1;
        probing_ = true;
      } else {
        --until_probe_;
        next_ = 0;
      }
    } else {
      interval_ = until_probe_ = o_.probe_interval;
      next_ = best_g;
    }
  }

  cost_model_options o_;
  double acc_ = 0.0, rej_ = 0.0, dsec_ = 0.0, dtok_ = 0.0;
  double sw_ = 0.0, sb_ = 0.0, sbb_ = 0.0, st_ = 0.0, sbt_ = 0.0;
  std::size_t interval_, until_probe_, rounds_ = 0, next_ = 0;
  bool probing_ = false;
  double best_ = 1.0;
};

static_assert(DraftLengthPolicy<fixed_draft>);
static_assert(DraftLengthPolicy<adaptive_draft>);
static_assert(DraftLengthPolicy<cost_model_draft>);

}  // namespace tandem::inline v0
