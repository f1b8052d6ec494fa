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
#include <span>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// What a policy plans for the coming round (see DraftPlanningPolicy).
struct draft_plan {
  std::size_t length = 0;  ///< tokens to draft and verify (0: one plain target step)
  /// Also ask the drafter for one token that the target does not verify (the output is
  /// unaffected): with length 0 a shadow probe, judged against the row of the plain step
  /// (one draft call, no dearer target pass); with a length, a shadow token past the draft,
  /// judged against the bonus token's row when the whole draft was accepted (one draft
  /// token more, no dearer target pass): the acceptance at the next position, which no
  /// draft of this length measures. Its verdict comes back in draft_round::verdicts.
  /// speculative_decoder carries a shadow token only without an output constraint.
  bool probe = false;
};

/// What one round did, reported to the draft-length policy (`update`) once per round whose
/// target pass ran. Generic: the drafted tokens, their draft distributions and the target's
/// verdict on each, whether they were verified or only probed. The views point into the
/// decoder's buffers and are valid during the `update` call only.
struct draft_round {
  std::size_t requested = 0;     ///< tokens asked for verification (0: no speculation)
  std::size_t drafted = 0;       ///< tokens the drafter returned for verification
  std::size_t accepted = 0;      ///< leading draft tokens the target accepted
  double draft_seconds = 0.0;    ///< time in the drafter this round (a probe's included)
  double target_seconds = 0.0;   ///< time in the target's batched pass this round
  std::size_t target_batch = 0;  ///< tokens in that pass (drafted + 1)
  /// The round carried the plan's probe: the drafter was asked for one token that the pass
  /// did not verify; with drafted 0 a shadow probe (requested stays 0), else a shadow token
  /// after the draft. False when no probe was planned, when the decoder (or a wrapper
  /// policy) does not carry probes, and when the drafter stopped before the shadow token.
  bool probed = false;
  /// The tokens the drafter proposed this round: the verified draft (`drafted` tokens) and,
  /// when probed, the shadow token after it, or the probe's token (none when the drafter
  /// proposed nothing).
  std::span<const token_id> tokens{};
  /// Their draft distributions q, one row of the vocabulary's size per token; empty when
  /// the drafter gave none (q is then one-hot on each token).
  std::span<const float> probabilities{};
  /// The target's verdict on tokens[i]: the chance min(1, p(x_i) / q(x_i)) that
  /// verification accepts x_i once x_0 .. x_{i-1} were (greedy: 1 when x_i is the target's
  /// choice, else 0), p from the sampler on the target's row; `accepted` says what the
  /// acceptance test drew. One entry per position verification reached (the accepted ones
  /// and the first rejected one; fewer when a stop rule or an error ended the round
  /// first), and one for a probe's token, judged against the plain step's row, or for a
  /// shadow token after a draft that was accepted whole, judged against the bonus's row.
  std::span<const double> verdicts{};
  /// Tokens the output constraint forced ahead of the draft this round: verified in the
  /// same target pass (`target_batch` counts them) but drafted without the drafter, so free
  /// drafts; not counted in requested, drafted, accepted, tokens or verdicts.
  std::size_t forced = 0;
};

/// Chooses draft lengths: `next()` is the length for the coming round (0 means "no
/// speculation": one plain target step); `update(r)` learns from a finished round.
template <class P>
concept DraftLengthPolicy = requires(P& p, const draft_round& r) {
  { p.next() } -> std::convertible_to<std::size_t>;
  p.update(r);
};

/// A DraftLengthPolicy that plans more than a length: `plan()` is the coming round's
/// draft_plan (its length equal to next()), for instance a probe. The decoder asks plan()
/// of a policy that has it, next() of one that does not (see plan_of). cost_model_draft is
/// one.
template <class P>
concept DraftPlanningPolicy = DraftLengthPolicy<P> && requires(P& p) {
  { p.plan() } -> std::convertible_to<draft_plan>;
};

/// The plan of policy `p` for the coming round: `p.plan()` when it has one, else
/// `{p.next(), false}`.
template <DraftLengthPolicy P>
[[nodiscard]] draft_plan plan_of(P& p) {
  if constexpr (DraftPlanningPolicy<P>)
    return p.plan();
  else
    return draft_plan{static_cast<std::size_t>(p.next()), false};
}

/// Always drafts `length` tokens (clamped to max_draft_length by the decoder).
struct fixed_draft {
  std::size_t length = 4;  ///< tokens to draft every round (0: never speculate)
  /// Returns `length`.
  [[nodiscard]] std::size_t next() const noexcept { return length; }
  /// Learns nothing.
  void update(const draft_round&) noexcept {}
};

/// The +2/-1 heuristic: after a round whose whole draft was accepted, draft two more;
/// otherwise one fewer; kept within [min_length, max_length].
///
/// Lengths out of range (see validate(initial, min_length, max_length)) do not abort: the
/// policy is left invalid, validate() returns invalid_argument, next() is 0 and update()
/// learns nothing, and a speculative_decoder refuses it (generate returns invalid_argument
/// before touching the target). create() reports them up front.
class adaptive_draft {
 public:
  /// Checks the lengths: invalid_argument unless 1 <= min_length <= initial <= max_length
  /// <= max_draft_length (the values in `*info` when given); else ok.
  [[nodiscard]] static errc validate(std::size_t initial, std::size_t min_length,
                                     std::size_t max_length, error_info* info = nullptr) noexcept {
    if (min_length >= 1 && min_length <= initial && initial <= max_length &&
        max_length <= max_draft_length)
      return errc::ok;
    return detail::fail(info, errc::invalid_argument,
                        "adaptive_draft: need 1 <= min (%zu) <= initial (%zu) <= max (%zu) <= %zu",
                        min_length, initial, max_length, max_draft_length);
  }

  /// Starts at `initial` within [min_length, max_length]; lengths out of range leave the
  /// policy invalid (see the class comment).
  explicit adaptive_draft(std::size_t initial = 4, std::size_t min_length = 1,
                          std::size_t max_length = 16) noexcept
      : length_(initial), min_(min_length), max_(max_length) {
    if (validate(initial, min_length, max_length) != errc::ok) {
      valid_ = false;
      length_ = 0;
    }
  }

  /// A policy as the constructor makes it, or invalid_argument for lengths out of range
  /// (details in `*info` when given).
  [[nodiscard]] static result<adaptive_draft> create(std::size_t initial = 4,
                                                     std::size_t min_length = 1,
                                                     std::size_t max_length = 16,
                                                     error_info* info = nullptr) noexcept {
    TANDEM_TRY(validate(initial, min_length, max_length, info));
    return adaptive_draft(initial, min_length, max_length);
  }

  /// invalid_argument when the policy was made with lengths out of range, else ok.
  [[nodiscard]] errc validate() const noexcept {
    return valid_ ? errc::ok : errc::invalid_argument;
  }
  /// The current length (starts at `initial`; 0 for an invalid policy).
  [[nodiscard]] std::size_t next() const noexcept { return length_; }
  /// +2 (up to max_length) when the round drafted tokens and the target accepted them
  /// all, else -1 (down to min_length); a round without speculation, or an invalid
  /// policy, changes nothing.
  void update(const draft_round& r) noexcept {
    if (r.requested == 0 || !valid_) return;
    if (r.drafted > 0 && r.accepted == r.drafted)
      length_ = std::min(max_, length_ + 2);
    else
      length_ = std::max(min_, length_ > 0 ? length_ - 1 : 0);
  }

 private:
  std::size_t length_, min_, max_;
  bool valid_ = true;
};

/// Settings of cost_model_draft (their ranges: validate(const cost_model_options&)).
struct cost_model_options {
  std::size_t max_length = 16;    ///< longest draft considered (<= max_draft_length)
  double prior_acceptance = 0.6;  ///< acceptance rate assumed before any measurement
  double prior_weight = 1.0;      ///< pseudo-observations behind the prior
  double decay = 0.98;            ///< per-round forgetting of old observations, in (0, 1]
  /// Estimate the acceptance of each draft position separately (the chance that draft
  /// token i is accepted when tokens 0..i-1 were), shrunk with `position_prior_weight`
  /// pseudo-observations towards the estimate of position i - 1 (position 0 towards the
  /// pooled rate). Captures drafts that fail at a typical depth (a repeating text the
  /// draft gets wrong every k tokens), which one geometric rate does not. false: every
  /// position uses the pooled rate (Leviathan et al.'s model).
  bool per_position = true;
  double position_prior_weight = 2.0;  ///< must be > 0
  /// With per_position: pseudo-rounds behind the model's expected tokens for a length,
  /// against the rounds actually run at that length (see expected_tokens); 0: the model
  /// alone. 1 by default: on a repeating text a round's start depends on the length, and
  /// a length's own rounds are the one measure of that (1-token drafts on a 3-token loop
  /// the draft gets wrong once see acceptance 0.5 where 2-token drafts keep 3 tokens).
  double length_prior_weight = 1.0;  ///< must be >= 0
  /// While speculation is off, probe after this many rounds (so the estimates can
  /// recover): a shadow probe (one draft token judged by the target's plain step, a
  /// draft_plan with `probe`), or a 1-token draft with a decoder that offers none; each probe
  /// after which speculation stays off doubles the wait, up to max_probe_interval.
  std::size_t probe_interval = 16;
  std::size_t max_probe_interval = 512;  ///< must be >= probe_interval
  /// Probes also wait long enough that each costs at most this share of the target-only
  /// time in between: at least d / (probe_budget T(1)) rounds for a shadow probe,
  /// (T(2) - T(1) + d) / (probe_budget T(1)) for a 1-token draft (a probe that is dear
  /// against a plain step waits longer). 0: no such floor.
  double probe_budget = 0.02;
  /// Shadow probes per probe, in consecutive rounds (>= 1): they judge the draft at as many
  /// successive positions of the text, so that a text repeating with a short period (a
  /// looping greedy generation) does not alias with the probe interval and show the same
  /// position every time. Also the number of shadow probes at start-up.
  std::size_t probe_shadows = 4;
  /// Speculate only when the predicted speedup exceeds this (1 plus a margin for the
  /// estimates' noise; §8's rule is min_gain = 1).
  double min_gain = 1.05;
  /// A draft of g tokens carries a shadow token (draft_plan::probe: one draft token more,
  /// judged against the bonus's row, never verified) while the acceptance of position g
  /// rests on fewer than this many decayed observations. Drafts of g tokens never measure
  /// position g, so without it an early figure there (from rounds before a generation
  /// settles, say) would stand until a trial of g + 1 and keep the controller at g.
  /// About one draft token per 20 rounds at the default. 0: never.
  double shadow_weight = 2.0;
};

/// Checks cost_model_draft options: invalid_argument unless 1 <= max_length <=
/// max_draft_length, prior_acceptance in (0, 1), prior_weight > 0, position_prior_weight
/// > 0, length_prior_weight >= 0, decay in (0, 1], 1 <= probe_interval <=
/// max_probe_interval, probe_budget >= 0, probe_shadows >= 1, min_gain not NaN and
/// shadow_weight >= 0 (the
/// first offending field in `*info` when given); else ok.
[[nodiscard]] inline errc validate(const cost_model_options& o,
                                   error_info* info = nullptr) noexcept {
  const auto bad = [info](const char* what) {
    return detail::fail(info, errc::invalid_argument, "cost_model_draft: %s", what);
  };
  if (!(o.max_length >= 1 && o.max_length <= max_draft_length))
    return bad("max_length outside [1, max_draft_length]");
  if (!(o.prior_acceptance > 0.0 && o.prior_acceptance < 1.0))
    return bad("prior_acceptance outside (0, 1)");
  if (!(o.prior_weight > 0.0)) return bad("prior_weight not > 0");
  if (!(o.position_prior_weight > 0.0)) return bad("position_prior_weight not > 0");
  if (!(o.length_prior_weight >= 0.0)) return bad("length_prior_weight not >= 0");
  if (!(o.decay > 0.0 && o.decay <= 1.0)) return bad("decay outside (0, 1]");
  if (!(o.probe_interval >= 1 && o.probe_interval <= o.max_probe_interval))
    return bad("need 1 <= probe_interval <= max_probe_interval");
  if (!(o.probe_budget >= 0.0)) return bad("probe_budget not >= 0");
  if (!(o.probe_shadows >= 1)) return bad("probe_shadows not >= 1");
  if (std::isnan(o.min_gain)) return bad("min_gain is NaN");
  if (!(o.shadow_weight >= 0.0)) return bad("shadow_weight not >= 0");
  return errc::ok;
}

/// The cost-model controller. Estimates online
/// - the acceptance: a pooled per-token rate a (decayed counts: accepted tokens over
///   accepted tokens plus rejections, from a prior) and, with `per_position`, a rate a_i
///   per draft position i (shrunk towards a_{i-1}, a_0 towards a);
/// - the cost T(b) of the target's pass over b tokens, which grows with b on real
///   backends (a 9-token pass of a CPU model costs several single passes): a decayed mean
///   per batch size b that was measured, linear interpolation between measured sizes,
///   below them the slope of a decayed least-squares line T(b) = t0 + t1 (b - 1), above
///   them half that slope (optimistic, so that a longer draft is tried and measured), and
///   never below a smaller size's figure; all times a shared level that follows drifts
///   common to every size (a growing context, a busier machine), so a size last measured
///   long ago stays comparable. Robust to stalls (another process on the core inflates a
///   pass several times): a pass counts as at most 1.5 times its estimate, a size drafted
///   neither lately nor often (decayed weight under 0.5) is forgotten and guessed again
///   from the sizes in use, and only a size measured twice moves the level, by at most
///   1.25x a round;
/// - the draft cost d per drafted token (rounds right after a round without drafting are
///   left out: their draft time includes the drafter catching up on the tokens it missed).
/// Acceptance and draft cost forget old observations by `decay` per drafting round, the
/// target's cost per round.
/// For each draft length g it predicts the speedup over target-only decoding,
///   S(g) = E(g) T(1) / (g d + T(g + 1)),   E(g) = 1 + sum_{i=1..g} a_0 a_1 ... a_{i-1},
/// the expected tokens per round over the expected time per round. With one rate a and a
/// batch-independent target cost this is Leviathan et al.'s
/// (1 - a^(g+1)) / ((1 - a)(g c + 1)), c = d / T(1). It drafts the g of largest S(g) when
/// S(g) > min_gain, else nothing. While drafting, every 32 rounds a neighbouring length
/// (g - 1 or g + 1) predicted at least 0.8 S(g) and not drafted lately gets a trial of 3
/// rounds: on a repeating text where a round starts depends on the length, so the
/// acceptance measured at one length misjudges its neighbours (see trial_length); and a
/// draft of g tokens carries a shadow token while position g's acceptance rests on fewer
/// than shadow_weight decayed observations (it keeps that estimate current). While
/// not drafting, it probes after probe_interval rounds with
/// probe_shadows shadow probes in a row (the wait doubling after each probe that leaves
/// speculation off, and never shorter than probe_budget allows, so probes cost a small,
/// then vanishing share).
/// Start-up: the first round drafts nothing (it measures T(1), at no loss against the
/// target alone), the next probe_shadows carry shadow probes (a first acceptance for the
/// price of a draft token each); until a pass over several tokens was measured, T(b) is taken as
/// T(1) (1 + (b - 1) / 2), and when that prior (or a single 2-token pass, perhaps a stall)
/// rules drafting out but the draft would pay with a flat T, a real 1-token draft measures
/// T(2); later, while T(2) rests on fewer than 2 decayed passes and keeps speculation off
/// that way, probes are such 1-token drafts. Against a draft that never agrees,
/// speculation then costs shadow probes only. With a decoder or wrapper that does not carry shadow
/// probes (a requested one that does not arrive), probes and the start-up's second round are
/// 1-token drafts instead. Allocates nothing.
///
/// Options out of range (see validate(const cost_model_options&)) do not abort: the policy
/// is left invalid, validate() returns invalid_argument, next() is 0, update() learns
/// nothing, the estimates are those of the default options, and a speculative_decoder
/// refuses it (generate returns invalid_argument before touching the target). create()
/// reports them up front.
class cost_model_draft {
 public:
  /// A controller with options `o`; options out of range leave it invalid (see the class
  /// comment).
  explicit cost_model_draft(cost_model_options o = {}) noexcept
      : o_(o), interval_(o.probe_interval), until_probe_(o.probe_interval) {
    if (tandem::validate(o) != errc::ok) {
      valid_ = false;
      o_ = cost_model_options{};  // keeps the estimates' arrays in bounds
      interval_ = until_probe_ = o_.probe_interval;
      return;
    }
    choose();
  }

  /// A controller as the constructor makes it, or invalid_argument for options out of
  /// range (details in `*info` when given).
  [[nodiscard]] static result<cost_model_draft> create(cost_model_options o = {},
                                                       error_info* info = nullptr) noexcept {
    TANDEM_TRY(tandem::validate(o, info));
    return cost_model_draft(o);
  }

  /// invalid_argument when the controller was made with options out of range, else ok.
  [[nodiscard]] errc validate() const noexcept {
    return valid_ ? errc::ok : errc::invalid_argument;
  }

  /// The length of best predicted speedup, 0 while speculation cannot pay, 1 for a probe
  /// without shadow probes (see the class comment).
  [[nodiscard]] std::size_t next() const noexcept { return next_; }
  /// The coming round: next() tokens, and a shadow probe (length 0) or a shadow token past
  /// the draft (`probe`).
  [[nodiscard]] draft_plan plan() const noexcept { return {next_, shadow_ || extend_}; }

  /// Folds the round's acceptance and timings into the estimates and chooses the next
  /// length; a shadow probe's verdict counts as a fractional observation at position 0.
  /// An invalid controller learns nothing. Allocates nothing.
  void update(const draft_round& r) noexcept {
    if (!valid_) return;
    if (shadow_ && !r.probed) shadow_ok_ = false;  // not carried: probe with real drafts
    if (probing_ && (r.requested > 0 || r.probed)) {
      probing_ = false;
      probed_ = true;  // choose() doubles the wait if speculation stays off
    }
    const bool shadow_probe = r.probed && r.drafted == 0;
    if (shadow_probe && !r.verdicts.empty()) learn_shadow(r.verdicts[0], r.draft_seconds);
    if (shadow_probe) ++shadows_seen_;
    if (rounds_ > 0 && (r.requested > 0 || shadows_seen_ >= o_.probe_shadows)) started_ = true;
    // Acceptance and draft cost forget per drafting round (rounds without a draft say
    // nothing new about them); the target's cost per round.
    const double k = o_.decay;
    sw_ *= k;
    sb_ *= k;
    sbb_ *= k;
    st_ *= k;
    sbt_ *= k;
    for (std::size_t i = 0; i <= o_.max_length; ++i) {
      tw_[i] *= k;
      tsum_[i] *= k;
    }
    // Acceptance: each accepted token is a success at its position; a round that stopped
    // before the end of its draft adds one failure, at the first rejected position.
    if (r.drafted > 0) {
      forget_acceptance(k);
      for (std::size_t i = 0; i <= o_.max_length; ++i) {
        kept_[i] *= k;
        runs_[i] *= k;
      }
      if (r.requested <= o_.max_length) {
        kept_[r.requested] += static_cast<double>(r.accepted + 1);
        runs_[r.requested] += 1.0;
      }
      acc_ += static_cast<double>(r.accepted);
      const std::size_t ok = std::min(r.accepted, o_.max_length);
      for (std::size_t i = 0; i < ok; ++i) succ_[i] += 1.0;
      if (r.accepted < r.drafted) {
        rej_ += 1.0;
        if (r.accepted < o_.max_length) fail_[r.accepted] += 1.0;
      }
      // A shadow token after a draft accepted whole: a fractional observation at the
      // position after the draft.
      if (r.probed && r.accepted == r.drafted && r.verdicts.size() > r.drafted &&
          r.drafted < o_.max_length)
        observe_verdict(r.drafted, r.verdicts[r.drafted]);
      // The drafter's tokens this round, a shadow token included.
      const auto tokens = static_cast<double>(r.drafted + (r.probed ? 1 : 0));
      if (r.draft_seconds > 0.0) {
        raw_dsec_ = raw_dsec_ * k + r.draft_seconds;
        raw_dtok_ = raw_dtok_ * k + tokens;
        if (prev_requested_ > 0) {
          dsec_ = dsec_ * k + r.draft_seconds;
          dtok_ = dtok_ * k + tokens;
        }
      }
    }
    if (r.target_batch > 0 && r.target_seconds > 0.0) {
      const std::size_t b = std::min(r.target_batch, o_.max_length + 1);
      // A stall (another process on the core, a page fault) inflates a pass several times.
      // One stalled sample must not decide: a size the controller then stops drafting is
      // never measured again, and interpolation spreads it to the sizes around it (on a
      // loaded machine this left the controller at 1-token drafts or off for the rest of a
      // generation). So a pass over b > 1 tokens counts as at most stall_ratio times its
      // current estimate and never more than b single passes; a real rise still comes
      // through, by up to stall_ratio per round.
      double t = r.target_seconds;
      if (r.target_batch > 1 && seen(0))
        t = std::min({t, static_cast<double>(r.target_batch) * level_ * tsum_[0] / tw_[0],
                      stall_ratio * target_cost(b)});
      // The level follows drifts shared by all batch sizes (a longer context, a busier
      // machine), so sizes measured long ago stay comparable with fresh ones; the table
      // and the line hold times divided by the level at their measurement.
      // Only a size measured at least twice (decayed) says what is typical of it, and one
      // round moves the level by at most level_step: a size's first samples, or a stall in
      // its mean, are no drift (read as one, the next normal pass would lower every
      // estimate, T(1) included, and make every draft look worse).
      if (tw_[b - 1] >= level_weight) {
        const double ratio = t / (level_ * tsum_[b - 1] / tw_[b - 1]);
        level_ *= std::pow(std::clamp(ratio, 1.0 / level_step, level_step), level_rate);
      }
      if (b == 2) ++pair_passes_;
      const double u = t / level_;
      tw_[b - 1] += 1.0;
      tsum_[b - 1] += u;
      const auto x = static_cast<double>(r.target_batch - 1);
      sw_ += 1.0;
      sb_ += x;
      sbb_ += x * x;
      st_ += u;
      sbt_ += x * u;
    }
    prev_requested_ = r.requested;
    ++rounds_;
    choose();
  }

  /// Current pooled acceptance-rate estimate.
  [[nodiscard]] double acceptance() const noexcept {
    const double w = o_.prior_weight;
    return (acc_ + w * o_.prior_acceptance) / (acc_ + rej_ + w);
  }
  /// Estimated chance that draft position i (0-based) is accepted when the positions
  /// before it were: with per_position, position i's counts shrunk towards the estimate
  /// of position i - 1 (position 0 towards the pooled rate), so a position seldom tried
  /// is expected to behave like the one before it; else, or beyond max_length, the pooled
  /// rate.
  [[nodiscard]] double acceptance_at(std::size_t i) const noexcept {
    double a = acceptance();
    if (!o_.per_position) return a;
    const double w = o_.position_prior_weight;
    const std::size_t n = std::min(i + 1, o_.max_length);
    for (std::size_t j = 0; j < n; ++j) a = (succ_[j] + w * a) / (succ_[j] + fail_[j] + w);
    return a;
  }
  /// Expected tokens kept by a round drafting g tokens. The model's figure, 1 + the sum
  /// over i = 1..g of the chance that the first i draft tokens are all accepted; with
  /// per_position and length_prior_weight > 0, blended with the mean tokens kept by the
  /// rounds that drafted g (their decayed count against length_prior_weight), which
  /// catches what no per-position rate does (drafts that succeed or fail depending on
  /// where in a repeating text the round starts, which the length itself decides).
  [[nodiscard]] double expected_tokens(std::size_t g) const noexcept {
    const double e = model_tokens(g);
    if (!o_.per_position || g > o_.max_length || !(o_.length_prior_weight > 0.0)) return e;
    const double w = o_.length_prior_weight;
    return (kept_[g] + w * e) / (runs_[g] + w);
  }
  /// The model's expected tokens for a round drafting g tokens (see expected_tokens).
  [[nodiscard]] double model_tokens(std::size_t g) const noexcept {
    const double pooled = acceptance();
    const double w = o_.position_prior_weight;
    double e = 1.0, run = 1.0, a = pooled;
    for (std::size_t i = 0; i < g; ++i) {
      if (o_.per_position && i < o_.max_length)
        a = (succ_[i] + w * a) / (succ_[i] + fail_[i] + w);
      else if (!o_.per_position)
        a = pooled;
      run *= std::min(a, 1.0 - 1e-9);
      e += run;
    }
    return e;
  }
  /// Estimated target seconds for a pass over `b` >= 1 tokens (0 before any measurement).
  [[nodiscard]] double target_cost(std::size_t b) const noexcept {
    return level_ * relative_target_cost(b);
  }
  /// Estimated draft seconds per drafted token (0 before any measurement; until a round
  /// that follows a drafting round was measured, the catch-up rounds' figure, an upper
  /// bound).
  [[nodiscard]] double draft_cost() const noexcept {
    if (dtok_ > 0.0) return dsec_ / dtok_;
    return raw_dtok_ > 0.0 ? raw_dsec_ / raw_dtok_ : 0.0;
  }
  /// Predicted speedup over target-only decoding of drafting g tokens (1 for g = 0).
  [[nodiscard]] double predicted_speedup(std::size_t g) const noexcept {
    if (g == 0) return 1.0;
    const double tokens = expected_tokens(g);
    const double t1 = target_cost(1);
    if (t1 <= 0.0) return tokens;  // nothing measured yet: assume free drafts
    return tokens * t1 / (static_cast<double>(g) * draft_cost() + target_cost(g + 1));
  }
  /// The largest predicted speedup over the lengths considered (for statistics).
  [[nodiscard]] double best_predicted_speedup() const noexcept { return best_; }

 private:
  static constexpr double level_rate = 0.25;   // share of a measured drift taken per round
  static constexpr double level_weight = 2.0;  // decayed samples of a size before it moves it
  static constexpr double level_step = 1.25;   // largest ratio one round's sample counts as
  static constexpr double stall_ratio = 1.5;   // most a pass counts above its estimate
  // Decayed 2-token passes below which a probe re-measures the 2-token cost when it is
  // what keeps speculation off (see choose).
  static constexpr double min_pair_weight = 2.0;
  // Decayed weight below which a measured size > 1 is forgotten (see known): one pass,
  // after 35 rounds at decay 0.98.
  static constexpr double known_weight = 0.5;
  // Trials of a neighbouring length (see trial_length).
  static constexpr std::size_t trial_interval = 32, trial_rounds = 3;
  static constexpr double trial_margin = 0.8;
  static constexpr double trial_rounds_d = static_cast<double>(trial_rounds);

  // Rounds a probe must wait so that it costs at most probe_budget of the plain steps in
  // between (capped at max_probe_interval; 0 without a budget or measurements).
  [[nodiscard]] std::size_t budget_wait() const noexcept {
    const double t1 = target_cost(1);
    if (!(o_.probe_budget > 0.0) || !(t1 > 0.0)) return 0;
    const double cost = shadow_ok_ ? static_cast<double>(o_.probe_shadows) * draft_cost()
                                   : std::max(0.0, target_cost(2) - t1) + draft_cost();
    const double w = std::ceil(cost / (o_.probe_budget * t1));
    return w >= static_cast<double>(o_.max_probe_interval) ? o_.max_probe_interval
                                                           : static_cast<std::size_t>(w);
  }

  [[nodiscard]] bool seen(std::size_t i) const noexcept { return tw_[i] > 1e-3; }
  // Whether the pass over i + 1 tokens counts as measured for the estimates: T(1) once
  // seen; a larger size while its decayed weight is at least known_weight, so that a size
  // measured a few times long ago (perhaps in a stall) falls back to the optimistic
  // interpolation and extrapolation from the sizes in use, and gets drafted and measured
  // again when that says it could pay (else one unlucky sample rules a length out for good).
  [[nodiscard]] bool known(std::size_t i) const noexcept {
    return i == 0 ? seen(0) : tw_[i] >= known_weight;
  }

  // Decays the pooled and per-position acceptance counts by k (once per observed round).
  void forget_acceptance(double k) noexcept {
    acc_ *= k;
    rej_ *= k;
    for (std::size_t i = 0; i < o_.max_length; ++i) {
      succ_[i] *= k;
      fail_[i] *= k;
    }
  }

  // A fractional observation at draft position i (< max_length): the verdict, the chance
  // that verification accepts (or would accept) the token there, counts as that share of a
  // success and the rest of a failure, pooled and at position i.
  void observe_verdict(std::size_t i, double verdict) noexcept {
    const double a = std::clamp(verdict, 0.0, 1.0);
    acc_ += a;
    rej_ += 1.0 - a;
    succ_[i] += a;
    fail_[i] += 1.0 - a;
  }

  // Asks for a probe in the coming round: a shadow probe, or a 1-token draft when the
  // decoder does not carry shadow probes.
  void request_probe() noexcept {
    shadow_ = shadow_ok_;
    next_ = shadow_ok_ ? 0 : 1;
  }

  // A shadow probe: position 0's acceptance (`verdict`, a fractional observation, decayed
  // like a drafting round) and the draft's cost (the catch-up included, as after a plain
  // round).
  void learn_shadow(double verdict, double draft_seconds) noexcept {
    const double k = o_.decay;
    forget_acceptance(k);
    observe_verdict(0, verdict);
    if (draft_seconds > 0.0) {
      raw_dsec_ = raw_dsec_ * k + draft_seconds;
      raw_dtok_ = raw_dtok_ * k + 1.0;
    }
  }

  // The target cost of a pass over b tokens in units of the current level: never below
  // a smaller size's measured cost (a pass over more tokens does not cost less; two
  // noisy samples can say so, and a long draft would then look cheaper than a short one).
  [[nodiscard]] double relative_target_cost(std::size_t b) const noexcept {
    if (sw_ <= 0.0 || b == 0) return 0.0;
    const std::size_t n = o_.max_length + 1;
    const std::size_t i = b - 1;
    const auto mean = [&](std::size_t j) { return tsum_[j] / tw_[j]; };
    // Nearest measured size below, and the dearest measured size below.
    std::size_t lo = n;
    double floor = 0.0;
    for (std::size_t j = std::min(i, n); j-- > 0;)
      if (known(j)) {
        if (lo == n) lo = j;
        floor = std::max(floor, mean(j));
      }
    if (i < n && known(i)) return std::max(floor, mean(i));
    if (!(sb_ > 0.0) && seen(0))  // single passes only: T(1) (1 + (b - 1) / 2), a prior
      return tsum_[0] / tw_[0] * (1.0 + 0.5 * static_cast<double>(i));
    std::size_t hi = n;  // nearest measured size above
    for (std::size_t j = i + 1; j < n; ++j)
      if (known(j)) {
        hi = j;
        break;
      }
    if (lo < n && hi < n)
      return std::max(floor, mean(lo) + (mean(hi) - mean(lo)) * static_cast<double>(i - lo) /
                                            static_cast<double>(hi - lo));
    const double t1 = slope();
    // Above the largest measured size, half the slope: an optimistic guess (a pass often
    // jumps from one token to two and then grows slowly, so the first step overstates
    // the slope), so that a longer draft is tried and measured when it could pay instead
    // of being ruled out for good; a size measured lately is known (see known()).
    if (lo < n) return std::max(floor, mean(lo) + 0.5 * t1 * static_cast<double>(i - lo));
    if (hi < n) return std::max(0.0, mean(hi) - t1 * static_cast<double>(hi - i));
    const double t0 = std::max(0.0, (st_ - t1 * sb_) / sw_);  // the line alone
    return t0 + t1 * static_cast<double>(i);
  }
  // Slope of the least-squares line of target seconds against batch size (0 until two
  // sizes were measured; never negative).
  [[nodiscard]] double slope() const noexcept {
    const double var = sw_ * sbb_ - sb_ * sb_;
    if (!(var > 1e-9 * sw_ * sw_)) return 0.0;
    return std::max(0.0, (sw_ * sbt_ - sb_ * st_) / var);
  }

  void choose() noexcept {
    if (rounds_ == 0) {  // calibration: one plain target step measures T(1)
      next_ = 0;
      return;
    }
    shadow_ = extend_ = false;
    if (!started_) {  // a first acceptance: a shadow probe, else a one-token draft
      request_probe();
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
    // Whether a 1-token draft would pay with a flat T (T(2) = T(1)).
    const auto flat_pays = [this] {
      const double t1 = target_cost(1);
      return seen(0) && expected_tokens(1) * t1 / (draft_cost() + t1) > o_.min_gain;
    };
    if ((best_g == 0 || best <= o_.min_gain) && pair_passes_ < 2 && flat_pays()) {
      // Fewer than two 2-token passes ever measured (none: the prior T(b) decided; one:
      // perhaps a stall): when the draft would pay with a flat T, a real 1-token draft
      // measures T(2) instead of trusting them.
      next_ = 1;
      return;
    }
    if (best_g == 0 || best <= o_.min_gain) {
      if (!off_) {  // speculation turns off: the first wait
        off_ = true;
        until_probe_ = std::max(interval_, budget_wait());
        burst_ = 0;
      } else if (probed_ && burst_ == 0) {  // the probe left speculation off: wait longer
        interval_ = std::min(interval_ * 2, o_.max_probe_interval);
        until_probe_ = std::max(interval_, budget_wait());
      }
      probed_ = false;
      if (burst_ > 0 && shadow_ok_) {  // the probe's next shadow probe
        --burst_;
        shadow_ = true;
        next_ = 0;
        probing_ = true;
      } else if (until_probe_ == 0) {
        if (tw_[1] < min_pair_weight && flat_pays()) {
          // T(2) rests on fewer than min_pair_weight passes (perhaps a stall) and is what
          // keeps speculation off: shadow probes never measure it, so this probe is a real
          // 1-token draft (on the probes' schedule, so it costs what they do).
          burst_ = 0;
          next_ = 1;
        } else {
          burst_ = shadow_ok_ ? o_.probe_shadows - 1 : 0;
          request_probe();
        }
        probing_ = true;
      } else {
        --until_probe_;
        next_ = 0;
      }
    } else {
      interval_ = o_.probe_interval;
      off_ = probed_ = false;
      burst_ = 0;
      next_ = trial_length(best_g, best);
      // Drafts of next_ tokens never measure position next_: a shadow token does, while
      // its estimate rests on few observations.
      extend_ = next_ < o_.max_length && succ_[next_] + fail_[next_] < o_.shadow_weight;
    }
  }

  // The length to draft while speculation is on: best_g, except for a short trial of a
  // neighbouring length every trial_interval rounds. Where a round starts in a repeating
  // text depends on the length drafted (1-token drafts alternate between a position the
  // draft gets right and one it gets wrong; 2-token drafts can lock onto the right ones),
  // so the acceptance measured at one length misjudges its neighbours and a length never
  // drafted is never measured: the trial gives a neighbour its own figures (expected_tokens
  // per length), in trial_rounds consecutive rounds (locking takes a round or two). Only a
  // neighbour predicted at least trial_margin of the best and not drafted lately is tried,
  // so a trial costs at most about trial_rounds (1 - trial_margin) / trial_interval.
  [[nodiscard]] std::size_t trial_length(std::size_t best_g, double best) noexcept {
    if (trial_left_ > 0 && trial_g_ != best_g) {
      --trial_left_;
      return trial_g_;
    }
    trial_left_ = 0;
    if (++since_trial_ < trial_interval) return best_g;
    since_trial_ = 0;
    std::size_t g = 0;
    double s = trial_margin * best;
    for (const std::size_t c : {best_g - 1, best_g + 1})
      if (c >= 1 && c <= o_.max_length && runs_[c] < trial_rounds_d && predicted_speedup(c) > s) {
        g = c;
        s = predicted_speedup(c);
      }
    if (g == 0) return best_g;
    trial_g_ = g;
    trial_left_ = trial_rounds - 1;
    return g;
  }

  cost_model_options o_;
  double acc_ = 0.0, rej_ = 0.0, dsec_ = 0.0, dtok_ = 0.0, raw_dsec_ = 0.0, raw_dtok_ = 0.0;
  double sw_ = 0.0, sb_ = 0.0, sbb_ = 0.0, st_ = 0.0, sbt_ = 0.0;
  std::array<double, max_draft_length + 1> succ_{}, fail_{}, tw_{}, tsum_{}, kept_{}, runs_{};
  double level_ = 1.0;
  std::size_t interval_, until_probe_, rounds_ = 0, next_ = 0, prev_requested_ = 0;
  bool probing_ = false, probed_ = false, off_ = false;
  bool shadow_ = false, shadow_ok_ = true;  // a shadow probe asked for; the decoder carries them
  bool extend_ = false;                     // a shadow token past the draft asked for
  bool started_ = false;                    // the start-up's acceptance probe was made
  std::size_t burst_ = 0;                   // shadow probes left in the current probe
  std::size_t shadows_seen_ = 0;
  std::size_t since_trial_ = 0, trial_g_ = 0, trial_left_ = 0;  // see trial_length
  std::size_t pair_passes_ = 0;  // 2-token passes measured (not decayed)
  double best_ = 1.0;
  bool valid_ = true;  // made with options in range
};

static_assert(DraftLengthPolicy<fixed_draft>);
static_assert(DraftLengthPolicy<adaptive_draft>);
static_assert(DraftLengthPolicy<cost_model_draft>);
static_assert(DraftPlanningPolicy<cost_model_draft>);

}  // namespace tandem::inline v0
