// tandem: batched speculative decoding. The continuous-batching scheduler with a draft
// model: every running request drafts, the draft model batched across requests (one draft
// pass per draft position), and one target pass verifies every draft.
/// \file
/// `speculative_scheduler<M, D, S, T>` is a `scheduler<M, S, T>` (batch/scheduler.hpp)
/// whose step() first lets a batch-aware cost model (`batch_cost_model`) choose a draft
/// length per running request, drafts those tokens with the draft model `D` (one batched
/// append per draft position, for all drafting requests), then makes one batched
/// `score` of the target `M` over every request's last kept token and draft, the other
/// requests' decode tokens and the prefill chunks, and verifies each draft as the linear
/// speculative decoder does (greedy: the target's choice; sampling: Leviathan et al.'s
/// rejection sampling, exact in distribution). docs/speculative.md, "Batched speculative
/// decoding", describes it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tandem/batch/scheduler.hpp"
#include "tandem/core/detail/verification.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// Settings of a speculative_scheduler and of its batch_cost_model.
struct speculative_scheduler_options {
  /// Longest draft of one request in one step, in [1, max_draft_length].
  std::size_t max_draft = 8;
  /// Seed of the draft draws and acceptance tests; each request gets its own stream (the
  /// seed and its submission number), so draws never pass between requests. A sampled
  /// request's tokens still depend on the others': its draft lengths do (the shared draft
  /// budget, the pooled acceptance, the batch-cost estimate, the pass's token cap), and
  /// they decide how many draws it consumes. Their distribution is exact whatever the
  /// others do; with fixed_draft and no cap cutting a draft the tokens are the same.
  std::uint64_t seed = 0;
  /// Clock of the cost model's measurements, in seconds from any origin; nullptr:
  /// std::chrono::steady_clock (tests pass a virtual clock).
  double (*clock)() noexcept = nullptr;
  /// Per-position acceptance assumed before any measurement, in (0, 1).
  double prior_acceptance = 0.6;
  /// Pseudo-observations behind the pooled estimate that shrinks each request's own (> 0).
  double prior_weight = 2.0;
  /// Per-observation forgetting of every estimate, in (0, 1].
  double decay = 0.98;
  /// Speculate only when the predicted tokens per second beat plain decoding by this
  /// factor (a margin for the estimates' noise).
  double min_gain = 1.02;
  /// While speculation is off, a quarter of the requests that may draft (at least one,
  /// taking turns) draft one token each after this many steps (a probe, so the estimates
  /// can recover, at a quarter of the price of a draft token for every request: at a batch
  /// where verification is dear, each probe costs about a step); each probe after which
  /// it stays off doubles the wait, up to max_probe_interval.
  std::size_t probe_interval = 16;
  std::size_t max_probe_interval = 512;  ///< the longest wait between probes
  /// A request whose draft sequence missed tokens (its steps without drafts) first catches
  /// up on them in the draft model, a pass dearer than a draft step. The cost model charges
  /// that catch-up to the request's first draft token, spread over this many steps (at
  /// most its remaining tokens) that it can be expected to keep drafting: after a long time
  /// off, speculation turns back on only where it also pays for the catch-up (>= 1).
  std::size_t catch_up_horizon = 8;
  /// Not 0: every request that may draft drafts this many tokens (at most max_draft and its
  /// room) every step, without the cost model (for tests and comparisons).
  std::size_t fixed_draft = 0;
};

/// Counters of a speculative_scheduler since construction (beyond scheduler_stats).
struct speculative_scheduler_stats {
  std::size_t draft_passes = 0;    ///< batched draft appends
  std::size_t target_passes = 0;   ///< batched target scores (steps that verified drafts)
  std::size_t drafted = 0;         ///< draft tokens verified
  std::size_t accepted = 0;        ///< draft tokens accepted
  std::size_t drafting_steps = 0;  ///< steps in which some request drafted
  std::size_t probes = 0;          ///< steps that drafted only because a probe was due
  std::size_t last_planned = 0;    ///< draft tokens the last step planned in total
  double target_seconds = 0.0;     ///< clock time in the target's batched calls
  double draft_seconds = 0.0;      ///< clock time in the draft model's batched appends
  /// Accepted over drafted tokens (0 when nothing was drafted).
  [[nodiscard]] double acceptance_rate() const noexcept {
    return drafted == 0 ? 0.0 : static_cast<double>(accepted) / static_cast<double>(drafted);
  }
};

/// What the cost model knows of one request: decayed counts of drafts tried and accepted
/// at each draft position.
struct draft_acceptance {
  std::array<double, max_draft_length> tried{};     ///< decayed drafts that reached position i
  std::array<double, max_draft_length> accepted{};  ///< of those, decayed accepted ones
};

/// The batch-aware cost model of batched speculative decoding. Estimates online
/// - T(B), the target's cost of one batched pass over B tokens, as cost_model_draft does
///   for its T(b): a shared level times a relative cost per B. The relative cost is a
///   decayed mean per B that was measured lately, linear interpolation between such sizes;
///   below the smallest, the slope of a decayed least-squares line through the
///   measurements (proportional to B until two sizes were measured: a plain step is never
///   taken for dearer than it is), and above the largest half that slope (until two sizes
///   were measured, half the measured size's cost per token): optimistic, so that a larger
///   pass is tried and measured, but not free, so that the first drafts stay short. The
///   level follows drifts common to every size (a growing context, a busier machine), so
///   the plain pass measured many steps ago stays comparable with the drafting passes
///   measured now; every size's weight decays by `decay` per pass, and a size not
///   measured lately (weight under 0.5) is forgotten and guessed again from the sizes in
///   use (a size measured early in a generation, at a short context, otherwise makes
///   the passes around it look cheap for good). A pass counts as at most 1.5 times its
///   estimate (a stall), and only a size measured about twice moves the level, by at most
///   1.25x per pass, at a quarter of the measured ratio;
/// - d, the draft model's cost of one batched draft pass (a decayed mean of the passes
///   of about a token per request), and c, the cost of each further token a first draft
///   pass feeds to catch a draft sequence up on the tokens it missed (a decayed mean of
///   (seconds - d) / further tokens over such passes; before one, d per token of a pass);
/// - per request and draft position i, the chance a_i that draft token i is accepted when
///   tokens 0..i-1 were: the request's decayed counts shrunk towards the pooled counts of
///   every request (themselves shrunk towards prior_acceptance).
/// plan() chooses per-request draft lengths g_r maximising the predicted tokens per
/// second of the step, (sum_r E_r(g_r)) / (T(B0 + sum_r g_r) + K d), with E_r(g) = 1 +
/// sum_{i=1..g} a_0 ... a_{i-1} and K = max_r g_r draft passes, plus, for each request that
/// drafts, its catch-up charge (the scheduler's: c times the tokens its draft sequence
/// missed, over catch_up_horizon): for each K it adds, one at a time, the draft token that
/// raises the rate most while one does (the gains of a request fall with its length, so
/// without charges this is the best allocation for that K); it keeps the best K, and no
/// drafts unless that beats plain decoding by min_gain. As the
/// batch grows and T(B) stops being flat, the marginal token costs more than it brings:
/// drafts shorten and speculation turns itself off. Allocates only at construction.
class batch_cost_model {
 public:
  /// A model for passes of up to `max_batch_tokens` tokens with options `o` (their
  /// ranges: speculative_scheduler::validate; out-of-range values are clamped).
  batch_cost_model(const speculative_scheduler_options& o, std::size_t max_batch_tokens)
      : o_(o),
        sum_(max_batch_tokens + 1),
        weight_(max_batch_tokens + 1),
        table_(max_batch_tokens + 1) {
    o_.max_draft = std::clamp<std::size_t>(o_.max_draft, 1, max_draft_length);
    for (std::size_t i = 0; i < max_draft_length; ++i) pooled_.tried[i] = pooled_.accepted[i] = 0;
  }

  /// Records one target pass over `tokens` tokens that took `seconds` (a pass with a
  /// logits row per token: a plain decode step or a verification; the scheduler leaves
  /// out passes with prefill chunks, whose tokens cost less without rows).
  void observe_target(std::size_t tokens, double seconds) noexcept {
    if (tokens == 0 || tokens >= sum_.size() || !(seconds >= 0.0)) return;
    const double k = o_.decay;
    for (std::size_t b = 1; b < sum_.size(); ++b) {
      sum_[b] *= k;
      weight_[b] *= k;
    }
    for (double* v : {&lw_, &lx_, &ly_, &lxx_, &lxy_}) *v *= k;
    double t = seconds;
    if (known(tokens) && sum_[tokens] > 0.0) {  // (a coarse clock can measure 0)
      const double estimate = level_ * sum_[tokens] / weight_[tokens];
      t = std::min(t, stall_ratio * estimate);
      if (weight_[tokens] >= level_weight)
        level_ *= std::pow(std::clamp(t / estimate, 1.0 / level_step, level_step), level_rate);
    }
    const double u = t / level_;
    sum_[tokens] += u;
    weight_[tokens] += 1.0;
    const auto x = static_cast<double>(tokens);
    lw_ += 1.0;
    lx_ += x;
    ly_ += u;
    lxx_ += x * x;
    lxy_ += x * u;
    dirty_ = true;
  }
  /// Records one draft pass of about a token per request (`tokens` in all) that took
  /// `seconds`.
  void observe_draft(double seconds, std::size_t tokens = 1) noexcept {
    if (!(seconds >= 0.0) || tokens == 0) return;
    dsum_ = dsum_ * o_.decay + seconds;
    dtokens_ = dtokens_ * o_.decay + static_cast<double>(tokens);
    dweight_ = dweight_ * o_.decay + 1.0;
  }
  /// Records a draft pass that fed `further` tokens beyond about one per request (catching
  /// draft sequences up) and took `seconds`; d's share of it is subtracted.
  void observe_catch_up(std::size_t further, double seconds) noexcept {
    if (!(seconds >= 0.0) || further == 0) return;
    const double per = std::max(0.0, seconds - draft_seconds()) / static_cast<double>(further);
    csum_ = csum_ * o_.decay + per;
    cweight_ = cweight_ * o_.decay + 1.0;
  }
  /// Estimated seconds to catch a draft sequence up on `tokens` missed tokens in a draft
  /// pass (0 before any draft pass was measured).
  [[nodiscard]] double catch_up_seconds(std::size_t tokens) const noexcept {
    const double per = cweight_ > 0.0 ? csum_ / cweight_ : dtokens_ > 0.0 ? dsum_ / dtokens_ : 0.0;
    return per * static_cast<double>(tokens);
  }
  /// Records a verified draft of `drafted` tokens of which the first `accepted` were
  /// accepted (the next one rejected when accepted < drafted), in `mine` and the pool.
  /// Every position's counts decay, the ones it did not reach too: a position's evidence
  /// fades unless renewed, so one unlucky round cannot keep a length from being tried
  /// again for good.
  void observe_round(draft_acceptance& mine, std::size_t drafted, std::size_t accepted) noexcept {
    for (draft_acceptance* a : {&mine, &pooled_}) {
      age(*a);
      for (std::size_t i = 0; i < drafted && i <= accepted && i < max_draft_length; ++i) {
        a->tried[i] += 1.0;
        a->accepted[i] += i < accepted ? 1.0 : 0.0;
      }
    }
  }
  /// Decays the counts of a request that did not draft this step (as observe_round does),
  /// so that its estimates drift back towards the pool's while it waits.
  void age(draft_acceptance& a) const noexcept {
    for (std::size_t i = 0; i < max_draft_length; ++i) {
      a.tried[i] *= o_.decay;
      a.accepted[i] *= o_.decay;
    }
  }

  /// Estimated seconds of a target pass over `b` tokens (0 before any measurement).
  [[nodiscard]] double target_seconds(std::size_t b) noexcept {
    if (dirty_) rebuild();
    return level_ * table_[std::min(b, table_.size() - 1)];
  }
  /// Estimated seconds of one draft pass (0 before any measurement).
  [[nodiscard]] double draft_seconds() const noexcept {
    return dweight_ > 0.0 ? dsum_ / dweight_ : 0.0;
  }
  /// The estimated chance that draft position `i` of a request with counts `mine` is
  /// accepted when the positions before it were.
  [[nodiscard]] double acceptance(const draft_acceptance& mine, std::size_t i) const noexcept {
    i = std::min(i, max_draft_length - 1);
    const double w = o_.prior_weight;
    const double pooled = (pooled_.accepted[i] + w * o_.prior_acceptance) / (pooled_.tried[i] + w);
    return (mine.accepted[i] + w * pooled) / (mine.tried[i] + w);
  }
  /// True once a target pass was measured (plan() drafts nothing before).
  [[nodiscard]] bool measured() const noexcept { return lw_ > 0.0; }

  /// Chooses draft lengths for one step (see the class comment): `base_tokens` is the
  /// pass's size without drafts, `decoding` the requests that will each keep at least one
  /// token, `counts[r]` and `caps[r]` the acceptance counts and the longest draft of
  /// candidate r (0: it may not draft); writes each length to `lengths[r]` (same size as
  /// counts and caps) and returns their sum. `extra_tokens` bounds the sum. `charges[r]`
  /// (empty: none) is the seconds charged to the step when candidate r drafts at all (its
  /// share of a catch-up). Allocates nothing.
  std::size_t plan(std::size_t base_tokens, std::size_t decoding,
                   std::span<const draft_acceptance* const> counts,
                   std::span<const std::size_t> caps, std::size_t extra_tokens,
                   std::span<std::size_t> lengths, std::span<const double> charges = {}) noexcept {
    if (charges.size() != counts.size()) charges = {};
    std::fill(lengths.begin(), lengths.end(), std::size_t{0});
    if (!measured() || decoding == 0 || counts.empty()) return 0;
    const double d = draft_seconds();
    const double plain =
        static_cast<double>(decoding) / std::max(target_seconds(base_tokens), 1e-12);
    double best_rate = plain * o_.min_gain;
    std::size_t best_k = 0;
    std::size_t kmax = 0;
    for (const std::size_t c : caps) kmax = std::max(kmax, std::min(c, o_.max_draft));
    for (std::size_t k = 1; k <= kmax; ++k) {
      const double rate = fill(k, base_tokens, decoding, counts, caps, charges, extra_tokens, d,
                               lengths, std::numeric_limits<std::size_t>::max());
      if (rate > best_rate) {
        best_rate = rate;
        best_k = k;
      }
    }
    if (best_k == 0) {
      std::fill(lengths.begin(), lengths.end(), std::size_t{0});
      return 0;
    }
    // Past the largest size measured lately T(B) is a guess: the step drafts the best plan's
    // first tokens (the greedy's order) up to a pass a quarter larger than that size (at
    // least explore_tokens more), so a wrong guess costs a little, and the next step,
    // having measured it, may go a quarter further.
    (void)target_seconds(base_tokens);  // (rebuilds the table and largest_)
    const std::size_t top = std::max(largest_, base_tokens);
    (void)fill(best_k, base_tokens, decoding, counts, caps, charges, extra_tokens, d, lengths,
               top + std::max(explore_tokens, top / 4));
    std::size_t total = 0;
    for (const std::size_t g : lengths) total += g;
    return total;
  }

 private:
  static constexpr double level_rate = 0.25;        // share of a measured drift taken per pass
  static constexpr double level_weight = 2.0;       // decayed samples of a size before it moves it
  static constexpr double level_step = 1.25;        // largest ratio one pass counts as
  static constexpr double stall_ratio = 1.5;        // most a pass counts above its estimate
  static constexpr double known_weight = 0.5;       // decayed samples of a size still trusted
  static constexpr std::size_t explore_tokens = 4;  // least growth past the largest known

  [[nodiscard]] bool known(std::size_t b) const noexcept { return weight_[b] >= known_weight; }

  // The greedy allocation for K = k draft passes (charges as plan()'s), in passes of at
  // most `limit` tokens; returns its predicted rate.
  double fill(std::size_t k, std::size_t base, std::size_t decoding,
              std::span<const draft_acceptance* const> counts, std::span<const std::size_t> caps,
              std::span<const double> charges, std::size_t extra, double d,
              std::span<std::size_t> lengths, std::size_t limit) noexcept {
    std::fill(lengths.begin(), lengths.end(), std::size_t{0});
    auto expected = static_cast<double>(decoding);
    std::size_t b = base, added = 0;
    double passes = static_cast<double>(k) * d;  // draft passes and catch-up charges
    for (;;) {
      if (added == extra || b + 1 > limit) break;
      const double t1 = target_seconds(b + 1);
      double best = expected / (target_seconds(b) + passes), gain = 0.0;
      std::size_t pick = counts.size();
      for (std::size_t r = 0; r < counts.size(); ++r) {
        if (lengths[r] >= std::min({caps[r], k, o_.max_draft})) continue;
        double g = 1.0;  // the chance the request's first lengths[r] + 1 drafts are accepted
        for (std::size_t i = 0; i <= lengths[r]; ++i) g *= acceptance(*counts[r], i);
        const double charge = lengths[r] == 0 && !charges.empty() ? charges[r] : 0.0;
        const double next = (expected + g) / (t1 + passes + charge);
        if (next > best) best = next, gain = g, pick = r;
      }
      if (pick == counts.size()) break;
      if (lengths[pick] == 0 && !charges.empty()) passes += charges[pick];
      ++lengths[pick];
      expected += gain;
      ++b;
      ++added;
    }
    return added == 0 ? 0.0 : expected / std::max(target_seconds(b) + passes, 1e-12);
  }

  // Fills table_ with T(b) for every b (see the class comment).
  void rebuild() noexcept {
    dirty_ = false;
    double slope = 0.0;
    const double den = lw_ * lxx_ - lx_ * lx_;
    const bool line = lw_ > 0.0 && den > 1e-9 * lw_ * lxx_;  // two sizes or more measured
    if (line) slope = std::max(0.0, (lw_ * lxy_ - lx_ * ly_) / den);
    std::size_t prev = 0;  // last measured size (0: none yet)
    for (std::size_t b = 1; b < table_.size(); ++b) {
      if (!known(b)) continue;
      const double t = sum_[b] / weight_[b];
      if (prev == 0) {  // below the smallest size: the line's slope, else proportional
        for (std::size_t j = 0; j < b; ++j)
          table_[j] = slope > 0.0 ? std::max(t - slope * static_cast<double>(b - j), 0.0)
                                  : t * static_cast<double>(j) / static_cast<double>(b);
      } else {
        const double t0 = table_[prev];
        for (std::size_t j = prev + 1; j <= b; ++j)
          table_[j] = t0 + (t - t0) * static_cast<double>(j - prev) / static_cast<double>(b - prev);
      }
      table_[b] = t;  // (the smallest size's own figure too: it was left from the last build)
      prev = b;
    }
    largest_ = prev;
    if (prev == 0) return;
    // Above the largest size, half the line's slope; with one size measured, half of that
    // size's cost per token (the first drafts of a batch then stay short: taken as free,
    // every request drafted max_draft tokens, a pass several times a plain one's).
    const double above = line ? 0.5 * slope : 0.5 * table_[prev] / static_cast<double>(prev);
    for (std::size_t j = prev + 1; j < table_.size(); ++j)
      table_[j] = table_[prev] + above * static_cast<double>(j - prev);
    for (std::size_t j = 1; j < table_.size(); ++j) table_[j] = std::max(table_[j], table_[j - 1]);
  }

  speculative_scheduler_options o_;
  std::vector<double> sum_, weight_, table_;
  double lw_ = 0.0, lx_ = 0.0, ly_ = 0.0, lxx_ = 0.0, lxy_ = 0.0;
  double dsum_ = 0.0, dweight_ = 0.0, dtokens_ = 0.0;
  double csum_ = 0.0, cweight_ = 0.0;
  double level_ = 1.0;  // the shared level: T(b) = level_ x table_[b]
  draft_acceptance pooled_{};
  std::size_t largest_ = 0;  // the largest size measured lately (rebuild)
  bool dirty_ = false;
};

/// A continuous-batching scheduler with batched speculative decoding: target `M` (a
/// MultiSequenceModel with MultiSequenceBatchScoring), draft `D` (a MultiSequenceModel of
/// the same vocabulary), per-request samplers `S` (a DistributionSampler: the acceptance
/// test needs its probabilities) and tokenizer `T` (or detail::no_tokenizer).
///
/// Requests, prefixes, streaming, stop rules, deadlines, cancel, take, priorities and the
/// batch caps are the scheduler's (batch/scheduler.hpp): same calls, same errors. Per
/// step(): requests whose budget or deadline ran out finish, waiting ones get a sequence;
/// the cost model chooses a draft length per decoding request (batch_cost_model, with
/// probes while speculation is off and short trials of a longer draft where a request's
/// next position was not drafted lately; drafts never take the tokens the step's prefill
/// chunks need under max_batch_tokens); the
/// draft model drafts them, one batched append per draft position (each request's draft
/// sequence first catches up with the tokens it has not seen); one batched target score
/// feeds every request's last kept token and draft, the other decode tokens and the
/// prefill chunks, with rows for the drafts; each draft is verified and its accepted
/// prefix plus one token of the target's is kept, the rest rewound on both models;
/// requests without a draft sample from their logits as in the scheduler.
///
/// Exactness: a greedy request's tokens are those of the plain scheduler and of a lone
/// generate() (bit for bit when the backend's batched rows equal its lone logits); a
/// sampling request's tokens follow the same distribution (the draft token is drawn from
/// q, the request's sampler's probabilities on the draft logits, accepted with
/// min(1, p/q), else replaced by a draw from norm(max(0, p - q))). A request with an
/// output constraint never drafts: it decodes as in the plain scheduler (masked
/// sampling, forced runs), so constraints keep their exact semantics.
///
/// Draft sequences mirror the target's: a request whose prompt starts with a registered
/// prefix forks the draft's copy of that prefix too (add_prefix prefills both models).
/// A draft sequence is opened when its request first drafts and closed when it
/// finishes (at cancel and take; a request that finished inside a step closes its draft
/// sequence at the next step). When the draft model has no free sequence, the request
/// does not draft this step. A draft pass is one batched append for every drafting
/// request: when it fails, all of them stop drafting there (the drafts drawn before it
/// are still verified); a draft sequence the backend closed or left changed (it could not
/// undo a partial write) is closed and rebuilt when its request next drafts. Draft
/// failures never fail a step.
///
/// Allocation: as the scheduler's, plus per slot the rows of its draft distributions
/// (max_draft x vocab floats) and its history, and the target rows of a step's drafts,
/// all grown to their largest size during warm-up; a warm step() allocates nothing when
/// the sampler, the tokenizer's piece and the callback do not.
///
/// It derives from the scheduler, whose other calls (state, peek, active, stats, options,
/// set_max_prefill_tokens, last_error) it offers unchanged; submit, cancel, take,
/// add_prefix, remove_prefix and step hide the scheduler's: call them on this type
/// (through a `scheduler&`, step() decodes without drafts and draft sequences lag behind
/// until the next speculative step catches them up).
///
/// Both models (and the tokenizer) must outlive the scheduler. Not copyable or movable;
/// one per thread.
template <class M, class D, class S, class T = detail::no_tokenizer>
class speculative_scheduler : public scheduler<M, S, T> {
  static_assert(MultiSequenceModel<D>,
                "speculative_scheduler: the draft must be a MultiSequenceModel");
  static_assert(DistributionSampler<S>,
                "speculative_scheduler: the sampler must offer probabilities(logits, out) "
                "(DistributionSampler) for the acceptance test");
  static_assert(MultiSequenceBatchScoring<M>,
                "speculative_scheduler: the target must offer score(batch, scored, rows) "
                "(MultiSequenceBatchScoring) to verify every draft in one pass");
  using base = scheduler<M, S, T>;
  using slot = typename base::slot;
  static constexpr bool has_tok = !std::is_same_v<T, detail::no_tokenizer>;

 public:
  /// Checks the options: invalid_argument unless 1 <= max_draft <= max_draft_length,
  /// prior_acceptance in (0, 1), prior_weight > 0, decay in (0, 1], 1 <= probe_interval
  /// <= max_probe_interval, min_gain not NaN and catch_up_horizon >= 1 (the first offending
  /// field in `*info`).
  [[nodiscard]] static errc validate(const speculative_scheduler_options& o,
                                     error_info* info = nullptr) noexcept {
    if (o.max_draft < 1 || o.max_draft > max_draft_length)
      return detail::fail(info, errc::invalid_argument, "max_draft %zu outside [1, %zu]",
                          o.max_draft, max_draft_length);
    if (!(o.prior_acceptance > 0.0 && o.prior_acceptance < 1.0))
      return detail::fail(info, errc::invalid_argument, "prior_acceptance outside (0, 1)");
    if (!(o.prior_weight > 0.0))
      return detail::fail(info, errc::invalid_argument, "prior_weight <= 0");
    if (!(o.decay > 0.0 && o.decay <= 1.0))
      return detail::fail(info, errc::invalid_argument, "decay outside (0, 1]");
    if (o.probe_interval < 1 || o.probe_interval > o.max_probe_interval)
      return detail::fail(info, errc::invalid_argument, "probe_interval outside [1, max]");
    if (o.min_gain != o.min_gain) return detail::fail(info, errc::invalid_argument, "min_gain NaN");
    if (o.catch_up_horizon < 1)
      return detail::fail(info, errc::invalid_argument, "catch_up_horizon < 1");
    return errc::ok;
  }

  /// A speculative scheduler over `target` with `draft` (token level). Preconditions
  /// (TANDEM_ASSERT): the scheduler's, validate(spec) ok, and equal vocabulary sizes.
  speculative_scheduler(M& target, D& draft, const scheduler_options& opts = {},
                        const speculative_scheduler_options& spec = {}) requires(!has_tok)
      : base(target, nullptr, opts),
        draft_(&draft),
        spec_(spec),
        cost_(spec, opts.max_batch_tokens) {
    init();
  }
  /// As above, rendering text with `tokenizer` (which must outlive the scheduler).
  speculative_scheduler(M& target, D& draft, const T& tokenizer, const scheduler_options& opts = {},
                        const speculative_scheduler_options& spec = {}) requires has_tok
      : base(target, &tokenizer, opts),
        draft_(&draft),
        spec_(spec),
        cost_(spec, opts.max_batch_tokens) {
    init();
  }
  speculative_scheduler(const speculative_scheduler&) = delete;
  speculative_scheduler& operator=(const speculative_scheduler&) = delete;

  /// Closes the draft sequences it holds (the base closes the target's).
  ~speculative_scheduler() {
    for (extra& x : extra_) close_draft(x);
    for (seq_id& p : draft_prefix_)
      if (p >= 0) (void)draft_->close(p);
  }

  /// As scheduler::add_prefix; the draft model gets a prefilled copy too (when that
  /// fails, the prefix is still registered and requests' draft sequences compute it).
  [[nodiscard]] result<prefix_id> add_prefix(std::span<const token_id> tokens) {
    const result<prefix_id> id = base::add_prefix(tokens);
    if (!id) return id;
    seq_id& d = draft_prefix_[*id];
    const result<seq_id> s = draft_->open();
    if (!s) return id;
    const seq_tokens all{*s, tokens};
    if (draft_->append(std::span<const seq_tokens>(&all, 1)) != errc::ok) {
      (void)draft_->close(*s);
      return id;
    }
    d = *s;
    return id;
  }

  /// As scheduler::remove_prefix; closes the draft's copy too.
  [[nodiscard]] errc remove_prefix(prefix_id id) {
    TANDEM_TRY(base::remove_prefix(id));
    if (draft_prefix_[id] >= 0) (void)draft_->close(draft_prefix_[id]);
    draft_prefix_[id] = -1;
    return errc::ok;
  }

  /// As scheduler::submit; also resets the request's acceptance estimates.
  [[nodiscard]] result<request_id> submit(batch_request<S> req) {
    const result<request_id> id = base::submit(std::move(req));
    if (!id) return id;
    const auto i = static_cast<std::size_t>(*id & 0xffffffffu);
    extra& x = extra_[i];
    close_draft(x);
    x.counts = draft_acceptance{};
    x.trial = 0;
    x.gen.reseed(spec_.seed ^ (0x9e3779b97f4a7c15ULL * (this->slots_[i].order + 1)));
    return id;
  }

  /// As scheduler::cancel; closes the request's draft sequence too.
  [[nodiscard]] errc cancel(request_id id) {
    TANDEM_TRY(base::cancel(id));
    close_draft(extra_[static_cast<std::size_t>(id & 0xffffffffu)]);
    return errc::ok;
  }

  /// As scheduler::take; closes the request's draft sequence if it is still open.
  [[nodiscard]] errc take(request_id id, completion& out) {
    TANDEM_TRY(base::take(id, out));
    close_draft(extra_[static_cast<std::size_t>(id & 0xffffffffu)]);
    return errc::ok;
  }

  /// One step (see the class comment). Errors and state left: scheduler::step's (a failed
  /// target pass finishes the requests of the batch with its error). A target pass with
  /// drafts that fails (e.g. a shared cache too full for them) is retried once without
  /// them, as the plain scheduler's append; draft failures only stop the affected requests
  /// from drafting this step.
  [[nodiscard]] errc step() {
    for (std::size_t i = 0; i < extra_.size(); ++i)
      if (!base::is_active(this->slots_[i].state)) close_draft(extra_[i]);
    this->begin_step();
    const std::size_t planned = plan();
    spec_stats_.last_planned = planned;
    if (planned > 0) {
      ++spec_stats_.drafting_steps;
      draft_all();
    }
    this->build_batch([this](slot& s, std::uint32_t i) {
      const extra& x = extra_[i];
      if (x.length > 0) return std::span<const token_id>(x.verify.data(), x.length + 1);
      return base::pending_tokens(s);
    });
    if (!this->batch_.empty()) {
      ++this->stats_.forward_passes;
      if (errc e = target_pass(); e != errc::ok) {
        // The drafts may be what the model could not hold (a shared cache that is full):
        // the pass changed nothing, so the step goes on without them, as the plain one.
        if (!drop_drafts()) return this->fail_batch(e);
        if (e = this->model_->append(this->batch_); e != errc::ok) return this->fail_batch(e);
      }
    }
    const std::size_t accepted = spec_stats_.accepted;
    verify_all();
    accepted_last_step_ = spec_stats_.accepted > accepted;
    this->commit_batch();
    this->sample_ready();
    return errc::ok;
  }

  /// Counters of the speculation since construction.
  [[nodiscard]] const speculative_scheduler_stats& speculative_stats() const noexcept {
    return spec_stats_;
  }
  /// The cost model (its estimates, for statistics and tests).
  [[nodiscard]] batch_cost_model& cost_model() noexcept { return cost_; }
  /// The draft model.
  [[nodiscard]] D& draft_model() const noexcept { return *draft_; }

 private:
  // What a slot needs beyond the scheduler's.
  struct extra {
    seq_id dseq = -1;              // its draft sequence (-1: none)
    std::size_t dsize = 0;         // tokens of the history in it
    std::vector<token_id> verify;  // the last kept token and the draft
    std::vector<float> q;          // the draft distributions, one row per draft token
    std::size_t length = 0;        // draft tokens this step (0: none)
    std::size_t cap = 0;           // longest draft allowed this step
    std::size_t rows_at = 0;       // its first row in rows_
    draft_acceptance counts{};
    rng gen{0};
    std::size_t trial = 0;         // steps left in its trial of a longer draft (see trials)
    std::size_t trial_length = 0;  // the length of that trial
    std::size_t trial_ran = 0;     // steps that trial has run
    bool last_full = false;        // its last draft was accepted whole
  };

  void init() {
    TANDEM_ASSERT(validate(spec_) == errc::ok, "speculative_scheduler: options out of range");
    TANDEM_ASSERT(static_cast<std::size_t>(draft_->vocab_size()) ==
                      static_cast<std::size_t>(this->model_->vocab_size()),
                  "speculative_scheduler: the draft and target vocabularies differ");
    vocab_ = static_cast<std::size_t>(this->model_->vocab_size());
    const std::size_t n = this->slots_.size();
    extra_.resize(n);
    for (extra& x : extra_) x.verify.resize(spec_.max_draft + 1);
    draft_prefix_.assign(this->prefixes_.size(), -1);
    counts_.resize(n);
    caps_.resize(n);
    charges_.resize(n);
    missed_.resize(n);
    order_by_missed_.reserve(n);
    lengths_.resize(n);
    cand_.reserve(n);
    dbatch_.reserve(n);
    scored_.reserve(n);
    seq_slot_.assign(static_cast<std::size_t>(this->model_->max_sequences()), -1);
    p_.resize(vocab_);
    resid_.resize(vocab_);
    probe_wait_ = spec_.probe_interval;
  }

  double now() const noexcept {
    if (spec_.clock != nullptr) return spec_.clock();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void close_draft(extra& x) noexcept {
    if (x.dseq >= 0) (void)draft_->close(x.dseq);
    x.dseq = -1;
    x.dsize = 0;
    x.length = 0;
  }

  // The history of slot `s` (prompt, then kept tokens), token j.
  static token_id history_at(const slot& s, std::size_t j) noexcept {
    return j < s.prompt.size() ? s.prompt[j] : s.out.tokens[j - s.prompt.size()];
  }
  static std::size_t history_size(const slot& s) noexcept {
    return s.prompt.size() + s.out.tokens.size();
  }
  // The kept tokens beyond one (two after a fully accepted draft: its last token and the
  // bonus, as in a draft step) that slot s's next first draft pass would feed its draft
  // sequence to catch it up (the prompt is fed once, alone, whenever it first drafts).
  static std::size_t missed_tokens(const slot& s, const extra& x) noexcept {
    const std::size_t seen = x.dseq >= 0 ? std::max(x.dsize, s.prompt.size()) : s.prompt.size();
    const std::size_t fed = history_size(s) - std::min(seen, history_size(s));
    return fed > 2 ? fed - 1 : 0;
  }

  // Chooses this step's draft lengths (extra::length) with the cost model; a probe when
  // due. Returns the planned total.
  std::size_t plan() {
    std::size_t decode_tokens = 0, prefill_tokens = 0, decoding = 0;
    cand_.clear();
    for (const std::uint32_t i : this->order_) {
      slot& s = this->slots_[i];
      extra& x = extra_[i];
      x.length = 0;
      if (s.state == request_state::prefilling) {
        prefill_tokens += s.prompt.size() - s.fed;
        continue;
      }
      if (s.state != request_state::decoding || !s.has_pending) continue;
      ++decoding;
      const std::size_t pending = s.out.tokens.size() - s.pending_from;
      decode_tokens += pending;
      if (pending != 1 || s.options.constraint) continue;
      const std::size_t room = std::min(
          context_length_of(*this->model_) - this->model_->size(s.seq),
          context_length_of(*draft_) - std::min(context_length_of(*draft_), history_size(s)));
      const std::size_t left =
          s.options.max_tokens - std::min(s.options.max_tokens, s.out.tokens.size());
      const std::size_t cap =
          std::min({spec_.max_draft, room > 1 ? room - 1 : 0, left > 1 ? left - 1 : 0});
      if (cap == 0) continue;
      x.cap = cap;
      cand_.push_back(i);
    }
    const std::size_t cap_tokens = this->opts_.max_batch_tokens;
    if (decode_tokens >= cap_tokens || cand_.empty()) return 0;
    const std::size_t prefill = std::min(
        prefill_tokens, decode_tokens > 0 ? this->opts_.max_prefill_tokens : prefill_tokens);
    const std::size_t extra_tokens =
        cap_tokens - decode_tokens - std::min(prefill, cap_tokens - decode_tokens);
    if (extra_tokens == 0) return 0;
    const std::size_t n = cand_.size();
    for (std::size_t r = 0; r < n; ++r) {
      counts_[r] = &extra_[cand_[r]].counts;
      caps_[r] = extra_[cand_[r]].cap;
    }
    const std::size_t base_tokens = decode_tokens + std::min(prefill, cap_tokens - decode_tokens);
    if (spec_.fixed_draft > 0) {
      std::size_t total = 0;
      for (std::size_t r = 0; r < n; ++r) {
        extra_[cand_[r]].length = std::min({spec_.fixed_draft, caps_[r], extra_tokens - total});
        total += extra_[cand_[r]].length;
      }
      return total;
    }
    for (std::size_t r = 0; r < n; ++r) {
      // The catch-up its first draft pass would pay, spread over the steps it can be
      // expected to keep drafting (see catch_up_horizon).
      const slot& s = this->slots_[cand_[r]];
      const std::size_t missed = missed_tokens(s, extra_[cand_[r]]);
      missed_[r] = missed;
      const std::size_t left =
          s.options.max_tokens - std::min(s.options.max_tokens, s.out.tokens.size());
      charges_[r] =
          missed == 0
              ? 0.0
              : cost_.catch_up_seconds(missed) /
                    static_cast<double>(std::clamp<std::size_t>(left, 1, spec_.catch_up_horizon));
    }
    std::size_t total = cost_.plan(
        base_tokens, decoding, std::span<const draft_acceptance* const>(counts_.data(), n),
        std::span<const std::size_t>(caps_.data(), n), extra_tokens,
        std::span<std::size_t>(lengths_.data(), n), std::span<const double>(charges_.data(), n));
    bool probe = false;
    if (total == 0 && cost_.measured()) {
      if (++off_steps_ >= probe_wait_) {  // a probe: one draft token for a quarter
        off_steps_ = 0;
        probe_wait_ = std::min(probe_wait_ * 2, spec_.max_probe_interval);
        ++spec_stats_.probes;
        total = probe_requests(n, std::min((n + 3) / 4, extra_tokens), base_tokens);
        probe = true;
      }
    } else if (total > 0) {
      // The probes' wait starts over once drafts are accepted again, not on a turn-on
      // alone (an optimistic guess of a forgotten pass size can draft against a useless
      // draft now and then).
      off_steps_ = 0;
      if (accepted_last_step_) probe_wait_ = spec_.probe_interval;
    }
    if (cost_.measured()) total += trials(n, extra_tokens - total, total > 0 && !probe, probe);
    for (std::size_t r = 0; r < n; ++r) {
      extra& x = extra_[cand_[r]];
      x.length = lengths_[r];
      if (x.length == 0) cost_.age(x.counts);
    }
    return total;
  }

  // A probe's requests: up to m candidates (at least one) with lengths_ 1, those whose
  // draft sequences missed the fewest tokens first (taking turns among equals), while their
  // summed catch-up is estimated under a plain step of `base` tokens: a probe that rotated
  // over every request would catch each up on four waits' worth of tokens. Returns how many.
  std::size_t probe_requests(std::size_t n, std::size_t m, std::size_t base) {
    order_by_missed_.clear();
    for (std::size_t j = 0; j < n; ++j) order_by_missed_.push_back(j);
    const auto turn = [&](std::size_t r) { return (r + n - probe_from_ % n) % n; };
    std::sort(order_by_missed_.begin(), order_by_missed_.end(), [&](std::size_t a, std::size_t b) {
      return missed_[a] != missed_[b] ? missed_[a] < missed_[b] : turn(a) < turn(b);
    });  // (std::sort: stable_sort may allocate)
    const double step = cost_.target_seconds(base);
    double spent = 0.0;
    std::size_t taken = 0;
    for (const std::size_t r : order_by_missed_) {
      if (taken == m) break;
      spent += cost_.catch_up_seconds(missed_[r]);
      if (taken > 0 && spent > step) break;
      lengths_[r] = 1;
      ++taken;
    }
    probe_from_ += taken;
    return taken;
  }

  // Trials of longer drafts (returns the tokens added, at most `room`). Where a round
  // starts in a repeating text depends on the draft length (on a 3-token loop the draft
  // gets wrong once, 1-token drafts alternate between a right and a wrong position,
  // 2-token drafts lock onto the right ones and keep 3 tokens a step), so the acceptance
  // of a position a request has not drafted lately, shrunk towards the pool and the
  // prior, can keep it at a length that is not its best, or keep speculation off, for
  // good (the mid pair at N = 4: 1-token drafts at acceptance 0.5, 1.08x, where 2-token
  // drafts gave 1.4x). So a request whose next position (position 1 when it drafts
  // nothing) was not drafted lately (decayed tries under 1) and whose first draft token
  // is accepted at all (estimate at least trial_acceptance: not against a useless draft)
  // drafts to that position for trial_steps steps: up to a quarter of the drafting or
  // waiting requests (at least one, taking turns) every trial_interval steps that draft,
  // and the requests of a probe; their own counts then decide.
  std::size_t trials(std::size_t n, std::size_t room, bool drafting, bool probe) noexcept {
    std::size_t added = 0;
    for (std::size_t r = 0; r < n; ++r) {  // trials under way
      extra& x = extra_[cand_[r]];
      if (x.trial == 0) continue;
      // In its first trial_steps steps, a step whose draft was accepted whole does not
      // count (a trial runs 3 to 5 steps): a draft that locks onto a loop gets the rounds
      // to show it instead of a few shrunk towards the pool.
      if (!x.last_full || x.trial_ran >= trial_steps) --x.trial;
      ++x.trial_ran;
      const std::size_t want = std::min(x.trial_length, caps_[r]);
      if (lengths_[r] < want) {
        const std::size_t more = std::min(want - lengths_[r], room - added);
        lengths_[r] += more;
        added += more;
      }
    }
    const auto start = [&](std::size_t r) {
      extra& x = extra_[cand_[r]];
      const std::size_t g = std::max<std::size_t>(lengths_[r], 1);
      if (x.trial > 0 || g >= std::min(caps_[r], spec_.max_draft) ||
          g + 1 - lengths_[r] > room - added || x.counts.tried[g] >= 1.0 ||
          cost_.acceptance(x.counts, 0) < trial_acceptance)
        return false;
      x.trial_length = g + 1;
      x.trial = trial_steps - 1;
      x.trial_ran = 1;
      added += g + 1 - lengths_[r];
      lengths_[r] = g + 1;
      return true;
    };
    if (probe) {
      for (std::size_t r = 0; r < n; ++r)
        if (lengths_[r] > 0) (void)start(r);
      return added;
    }
    if (!drafting || ++since_trial_ < trial_interval) return added;
    since_trial_ = 0;
    std::size_t m = (n + 3) / 4;
    for (std::size_t j = 0; j < n && m > 0; ++j) {
      const std::size_t r = (trial_from_ + j) % n;
      if (start(r)) {
        --m;
        trial_from_ = r + 1;
      }
    }
    return added;
  }

  // Gives slot i a draft sequence holding a prefix of its history (a fork of the draft's
  // copy of its prefix when there is one). False when the draft model has none free.
  bool ensure_draft(std::uint32_t i) {
    extra& x = extra_[i];
    if (x.dseq >= 0) return true;
    const slot& s = this->slots_[i];
    const auto* p = this->best_prefix(s.prompt);
    const seq_id dp =
        p == nullptr ? -1 : draft_prefix_[static_cast<std::size_t>(p - this->prefixes_.data())];
    const result<seq_id> r = dp >= 0 ? draft_->fork(dp) : draft_->open();
    if (!r) return false;
    x.dseq = *r;
    x.dsize = dp >= 0 ? p->tokens.size() : 0;
    if (x.q.size() < spec_.max_draft * vocab_) x.q.resize(spec_.max_draft * vocab_);
    return true;
  }

  // Drafts every planned token: pass k feeds each drafting request's next tokens (pass 0:
  // all of its history its draft sequence lacks; then its previous draft token) and draws
  // draft token k from the sampler's probabilities on the draft logits.
  void draft_all() {
    std::size_t passes = 0;
    for (const std::uint32_t i : cand_) {
      extra& x = extra_[i];
      if (x.length == 0) continue;
      if (!ensure_draft(i)) {
        x.length = 0;
        continue;
      }
      passes = std::max(passes, x.length);
      slot& s = this->slots_[i];
      // The history is contiguous only in two parts (prompt, kept tokens): a draft sequence
      // that lacks part of the prompt gets it here, alone, once per request.
      if (x.dsize < s.prompt.size()) {
        const seq_tokens head{x.dseq, std::span<const token_id>(s.prompt).subspan(x.dsize)};
        const double t0 = now();
        const errc e = draft_->append(std::span<const seq_tokens>(&head, 1));
        spec_stats_.draft_seconds += now() - t0;
        if (e != errc::ok) {
          close_draft(x);
          continue;
        }
        x.dsize = s.prompt.size();
      }
    }
    for (std::size_t k = 0; k < passes; ++k) {
      dbatch_.clear();
      for (const std::uint32_t i : cand_) {
        extra& x = extra_[i];
        if (x.length <= k || x.dseq < 0) continue;
        const slot& s = this->slots_[i];
        if (k == 0) {
          const std::size_t from = x.dsize - s.prompt.size();
          dbatch_.push_back({x.dseq, std::span<const token_id>(s.out.tokens).subspan(from)});
        } else {
          dbatch_.push_back({x.dseq, std::span<const token_id>(&x.verify[k], 1)});
        }
      }
      if (dbatch_.empty()) break;
      const double t0 = now();
      const errc e = draft_->append(dbatch_);
      const double dt = now() - t0;
      spec_stats_.draft_seconds += dt;
      ++spec_stats_.draft_passes;
      // d is the cost of a pass of about a token per request (a first pass after a draft
      // fully accepted feeds 2: its last draft token and the bonus); a first pass that
      // catches draft sequences up on tokens they missed (after steps without drafts, as
      // before a probe) measures the catch-up's cost per further token instead.
      if (e == errc::ok) {
        bool in_step = true;
        std::size_t fed = 0, further = 0;
        for (const seq_tokens& b : dbatch_) {
          in_step = in_step && b.tokens.size() <= 2;
          fed += b.tokens.size();
          further += b.tokens.size() - 1;
        }
        if (in_step) {
          cost_.observe_draft(dt, fed);
        } else {
          cost_.observe_catch_up(further, dt);
        }
      }
      for (const std::uint32_t i : cand_) {
        extra& x = extra_[i];
        if (x.length <= k || x.dseq < 0) continue;
        if (e != errc::ok) {  // stop drafting here (the pass was one call for all of them)
          // A sequence the backend closed, or left other than all-or-nothing (it could
          // not undo a partial write), is dropped; the next draft rebuilds it.
          if (!draft_->is_open(x.dseq) || draft_->size(x.dseq) != x.dsize) close_draft(x);
          x.length = k;
          continue;
        }
        x.dsize += dbatch_entry_size(x.dseq);
        if (!draw(this->slots_[i], x, k)) x.length = k;
      }
    }
    for (const std::uint32_t i : cand_) extra_[i].verify[0] = this->slots_[i].out.tokens.back();
  }

  std::size_t dbatch_entry_size(seq_id d) const noexcept {
    for (const seq_tokens& b : dbatch_)
      if (b.seq == d) return b.tokens.size();
    return 0;
  }

  // Draft token k of slot `s`: q = the sampler's probabilities on the draft logits, a draw
  // from q into verify[k + 1]. False when the sampler fails (the request drafts k tokens).
  bool draw(slot& s, extra& x, std::size_t k) {
    const std::span<const float> logits = draft_->logits(x.dseq);
    if (logits.size() != vocab_) return false;
    const std::span<float> q(x.q.data() + k * vocab_, vocab_);
    if (s.sampler->probabilities(logits, q) != errc::ok) return false;
    double z = 0.0;
    for (const float v : q) z += static_cast<double>(v);
    if (!(z > 0.0)) return false;
    x.verify[k + 1] = static_cast<token_id>(detail::draw_index(q, z, x.gen.uniform()));
    return true;
  }

  // The target pass: one batched score with rows for every drafting request's entry.
  errc target_pass() {
    scored_.clear();
    std::size_t rows = 0;
    for (const std::uint32_t i : this->order_) {
      const slot& s = this->slots_[i];
      if (s.seq >= 0 && static_cast<std::size_t>(s.seq) < seq_slot_.size())
        seq_slot_[static_cast<std::size_t>(s.seq)] = static_cast<std::int32_t>(i);
    }
    std::size_t tokens = 0, single = 0;  // single: tokens of entries without rows but one
    for (const seq_tokens& b : this->batch_) {
      tokens += b.tokens.size();
      const std::int32_t i = seq_slot_[static_cast<std::size_t>(b.seq)];
      extra& x = extra_[static_cast<std::size_t>(i)];
      const bool drafting = x.length > 0 && this->slots_[static_cast<std::size_t>(i)].state ==
                                                request_state::decoding;
      x.length = drafting ? b.tokens.size() - 1 : 0;  // the cap may have cut the draft
      x.rows_at = rows;
      const std::size_t n = drafting ? b.tokens.size() : 0;
      if (!drafting && b.tokens.size() > 1) single += b.tokens.size();
      scored_.push_back(n);
      rows += n;
    }
    if (rows_.size() < rows * vocab_) rows_.resize(rows * vocab_);
    const double t0 = now();
    const errc e =
        this->model_->score(this->batch_, scored_, std::span<float>(rows_.data(), rows * vocab_));
    const double dt = now() - t0;
    spec_stats_.target_seconds += dt;
    // A pass with prefill chunks (tokens without logits rows, cheaper) is not the kind
    // of pass the cost model compares: it is left out.
    if (e == errc::ok && single == 0) cost_.observe_target(tokens, dt);
    if (rows > 0) ++spec_stats_.target_passes;
    return e;
  }

  // After a failed target pass: forgets this step's drafts (closing the draft sequences
  // that hold draft tokens) and rebuilds the batch without them. False when there were
  // none.
  bool drop_drafts() {
    bool any = false;
    for (const std::uint32_t i : cand_) {
      extra& x = extra_[i];
      if (x.length == 0) continue;
      any = true;
      if (x.dsize > history_size(this->slots_[i])) close_draft(x);
      x.length = 0;
    }
    if (!any) return false;
    for (const std::uint32_t i : this->order_) this->slots_[i].chunk = 0;
    this->build_batch([](slot& s, std::uint32_t) { return base::pending_tokens(s); });
    return true;
  }

  // Verifies every draft of the pass and keeps its tokens; the slots it handled get chunk 0
  // so that commit_batch leaves them alone.
  void verify_all() {
    for (const std::uint32_t i : cand_) {
      extra& x = extra_[i];
      slot& s = this->slots_[i];
      if (x.length == 0 || s.chunk == 0 || s.state != request_state::decoding) {
        if (x.dseq >= 0 && x.dsize > history_size(s)) close_draft(x);  // drafted, never verified
        x.length = 0;
        continue;
      }
      this->stats_.decode_tokens += s.chunk;
      s.chunk = 0;
      s.has_pending = false;
      verify(s, x);
      x.length = 0;
    }
  }

  // Verifies slot s's draft against its rows (see the class comment), keeps the accepted
  // prefix and one token of the target's, and rewinds both models past what was kept.
  void verify(slot& s, extra& x) {
    const std::size_t n = x.length;
    const std::size_t held = history_size(s);  // the history before this step's drafts
    std::size_t m = 0;
    token_id next = -1;
    std::span<const float> dist{};
    spec_stats_.drafted += n;
    for (; m < n; ++m) {
      dist = row(x, m);
      if (const errc e = s.sampler->probabilities(dist, p_); e != errc::ok)
        return this->finish(s, finish_reason::error, e);
      const token_id t = x.verify[m + 1];
      const float qx = x.q[m * vocab_ + static_cast<std::size_t>(t)];
      if (!detail::accept_draft(p_[static_cast<std::size_t>(t)], qx, x.gen)) {
        const result<token_id> r = detail::residual_draw(
            p_, std::span<const float>(x.q.data() + m * vocab_, vocab_), t, resid_, x.gen);
        if (!r) return this->finish(s, finish_reason::error, r.error());
        next = *r;
        break;
      }
      ++spec_stats_.accepted;
      if (!keep(s, t, dist)) return cost_.observe_round(x.counts, n, m + 1);
    }
    cost_.observe_round(x.counts, n, m);
    x.last_full = next < 0;
    if (next < 0) {  // the whole draft accepted: a bonus token from the target
      dist = row(x, n);
      const result<token_id> r = s.sampler->sample(dist);
      if (!r) return this->finish(s, finish_reason::error, r.error());
      next = *r;
    } else {
      dist = row(x, m);
    }
    if (!keep(s, next, dist)) return;
    // The target holds the history, the previous pending token and all n drafts; the
    // accepted m stay.
    if (n > m) {
      if (const errc e = this->model_->rewind(s.seq, n - m); e != errc::ok)
        return this->finish(s, finish_reason::error, e);
    }
    s.pending_from = s.out.tokens.size() - 1;
    s.has_pending = true;
    s.ready = false;
    // The draft holds the history and drafts 0..n-2; keep those accepted.
    const std::size_t valid = held + std::min(m, n - 1);
    if (x.dseq >= 0 && x.dsize > valid) {
      if (draft_->rewind(x.dseq, x.dsize - valid) == errc::ok)
        x.dsize = valid;
      else
        close_draft(x);
    }
  }

  // Keeps token t chosen from `dist` unless the budget or deadline ended the request
  // first; false when the request finished.
  bool keep(slot& s, token_id t, std::span<const float> dist) {
    if (const finish_reason f = s.emitter->budget_finish(); f != finish_reason::none) {
      this->finish(s, f, errc::ok);
      return false;
    }
    return this->keep_token(s, t, dist);
  }

  std::span<const float> row(const extra& x, std::size_t j) const noexcept {
    return std::span<const float>(rows_.data() + (x.rows_at + j) * vocab_, vocab_);
  }

  D* draft_;
  speculative_scheduler_options spec_;
  batch_cost_model cost_;
  speculative_scheduler_stats spec_stats_{};
  std::size_t vocab_ = 0;
  std::vector<extra> extra_;
  std::vector<seq_id> draft_prefix_;
  std::vector<const draft_acceptance*> counts_;
  std::vector<std::size_t> caps_, lengths_, scored_;
  std::vector<double> charges_;                        // per candidate: its catch-up charge (plan)
  std::vector<std::size_t> missed_, order_by_missed_;  // per candidate: missed tokens; probes
  std::vector<std::uint32_t> cand_;
  std::vector<seq_tokens> dbatch_;
  std::vector<std::int32_t> seq_slot_;
  std::vector<float> rows_, p_, resid_;
  static constexpr std::size_t trial_interval = 8, trial_steps = 3;  // see trials()
  static constexpr double trial_acceptance = 0.25;
  std::size_t since_trial_ = 0;
  std::size_t trial_from_ = 0;  // where the next trial's requests start (they take turns)
  std::size_t off_steps_ = 0;
  std::size_t probe_wait_ = 16;
  bool accepted_last_step_ = false;  // the last step's verification accepted a draft token
  std::size_t probe_from_ = 0;       // where the next probe's requests start (they take turns)
};

}  // namespace tandem::inline v0
