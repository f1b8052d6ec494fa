// tandem: the speculative decoder. A drafter proposes a few tokens, the target model
// scores them in one batched pass, and verification keeps exactly what the target alone
// would have produced: the same tokens under greedy decoding, the same distribution
// under sampling (Leviathan et al. 2023 rejection sampling).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/detail/verification.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/draft_length.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// A model the speculative decoder can verify drafts with: a LanguageModel that can
/// rewind (drop rejected drafts) and score (all draft positions in one pass).
template <class M>
concept SpeculativeTarget = LanguageModel<M> && Rewindable<M> && Scoring<M>;

/// Settings of a speculative_decoder.
struct speculative_options {
  /// Seed of the decoder's own rng, used for the acceptance tests and the residual draws
  /// of stochastic verification (the bonus token uses the sampler's rng).
  std::uint64_t seed = 0;
  /// Clock for the statistics' and the policy's times, in seconds from any origin;
  /// nullptr: std::chrono::steady_clock (wall time, right for multi-threaded and GPU
  /// backends). A single-threaded CPU backend on a shared machine can pass a thread-CPU
  /// clock, so that other processes do not distort the cost model's measurements.
  double (*clock)() noexcept = nullptr;
};

/// What the decoder measured, accumulated over generations until reset_stats().
struct speculative_stats {
  std::size_t rounds = 0;        ///< verification rounds (one batched target pass each)
  std::size_t target_calls = 0;  ///< target passes, the prompt's included
  std::size_t draft_calls = 0;   ///< drafter calls
  std::size_t drafted = 0;       ///< draft tokens proposed
  std::size_t accepted = 0;      ///< draft tokens accepted
  std::size_t generated = 0;     ///< tokens kept (accepted drafts, corrections, bonuses)
  double target_seconds = 0.0;   ///< time inside the target's append/score/rewind
  double draft_seconds = 0.0;    ///< time inside the drafter
  ///@{
  /// Per draft position i: how often a draft had a token there, and how often the
  /// target accepted it.
  std::array<std::size_t, max_draft_length> drafted_at{};
  std::array<std::size_t, max_draft_length> accepted_at{};
  ///@}

  /// Accepted over drafted tokens (0 when nothing was drafted).
  [[nodiscard]] double acceptance_rate() const noexcept {
    return drafted == 0 ? 0.0 : static_cast<double>(accepted) / static_cast<double>(drafted);
  }
  /// Mean number of draft tokens accepted per round that drafted.
  [[nodiscard]] double mean_accepted_length() const noexcept {
    return drafting_rounds == 0
               ? 0.0
               : static_cast<double>(accepted) / static_cast<double>(drafting_rounds);
  }
  /// Tokens kept per verification round.
  [[nodiscard]] double tokens_per_round() const noexcept {
    return rounds == 0 ? 0.0 : static_cast<double>(generated) / static_cast<double>(rounds);
  }
  /// Acceptance rate at draft position i (0-based; 0 when never drafted there).
  [[nodiscard]] double acceptance_at(std::size_t i) const noexcept {
    if (i >= max_draft_length || drafted_at[i] == 0) return 0.0;
    return static_cast<double>(accepted_at[i]) / static_cast<double>(drafted_at[i]);
  }
  std::size_t drafting_rounds = 0;  ///< rounds in which the drafter returned tokens
  std::size_t rejections = 0;       ///< rounds whose draft the target rejected at some position
  /// Probes: rounds without a draft whose plan (draft_plan::probe) asked the drafter for one
  /// token, judged by the target's plain step instead of verified (cost_model_draft's
  /// shadow probes). Their draft calls and time are counted in draft_calls and
  /// draft_seconds, not in drafted or accepted.
  std::size_t probes = 0;
  /// Shadow tokens: tokens the drafter proposed past a draft (draft_plan::probe with a
  /// length, cost_model_draft's measure of the next position), never verified, judged
  /// against the bonus token's row when the whole draft was accepted. Counted in
  /// draft_seconds, not in drafted or accepted.
  std::size_t shadow_tokens = 0;
  /// Draft tokens the output constraint forced (its only allowed token, or a forced run)
  /// at the start of a round, drafted without calling the drafter and verified in the
  /// round's pass; not counted in drafted or accepted.
  std::size_t forced_drafts = 0;

  /// Per-token acceptance probability, estimated as accepted / (accepted + rejections)
  /// (the maximum-likelihood estimate of a geometric acceptance process; the a of the
  /// speedup formula). 0 when nothing was drafted.
  [[nodiscard]] double acceptance_estimate() const noexcept {
    return accepted + rejections == 0
               ? 0.0
               : static_cast<double>(accepted) / static_cast<double>(accepted + rejections);
  }
};

/// Speculative decoding of `Target` (a SpeculativeTarget) with drafter `D` (a Drafter)
/// and draft-length policy `Policy` (fixed_draft, adaptive_draft, cost_model_draft or a
/// user type). Each round is a short sequence of steps: the policy plans it (plan_of: a
/// length, possibly a probe), the drafter drafts, the target scores the last kept token
/// and the draft in one pass, a probe's token is judged against that pass, verification
/// commits the accepted prefix and one token of the target's, and the policy learns from
/// the round's draft_round (the drafted tokens, their q and the target's verdict on each).
/// The decoder knows nothing of a policy beyond that interface. Borrows the target and the drafter,
/// which must outlive the decoder; owns the policy, its buffers (about (max_draft_length + 1) x 2
/// rows of vocab_size floats, sized at the first generation or by reserve()) and its statistics.
/// One decoder per thread.
///
/// A target without rewind or score does not compile, with a static_assert naming the
/// missing capability.
template <class Target, class D, class Policy = adaptive_draft>
class speculative_decoder {
  static_assert(LanguageModel<Target>,
                "speculative_decoder: the target must be a LanguageModel (vocab_size, size, "
                "append, logits)");
  static_assert(
      Rewindable<Target>,
      "speculative_decoder: the target must offer rewind(n) to drop rejected draft tokens");
  static_assert(Scoring<Target>,
                "speculative_decoder: the target must offer score(tokens, rows) to verify a draft "
                "in one batched pass");
  static_assert(Drafter<D>, "speculative_decoder: D must satisfy Drafter (vocab_size, draft)");
  static_assert(DraftLengthPolicy<Policy>,
                "speculative_decoder: Policy must satisfy DraftLengthPolicy (next, update)");

 public:
  /// A decoder verifying `drafter`'s proposals with `target` (both borrowed).
  speculative_decoder(Target& target, D& drafter, Policy policy = Policy{},
                      speculative_options options = {})
      : target_(&target),
        drafter_(&drafter),
        policy_(std::move(policy)),
        rng_(options.seed),
        clock_(options.clock) {}

  /// Sizes the buffers for the target's vocabulary and sequences of up to `tokens`
  /// tokens (prompt plus generated), so that no generation within these sizes
  /// allocates. Allocates.
  void reserve(std::size_t tokens) {
    size_buffers(static_cast<std::size_t>(target_->vocab_size()));
    history_.reserve(tokens + 1 + max_draft_length);
  }

  /// Generates tokens after `prompt` as generate(target, sampler, prompt, opts, out,
  /// on_token) would, with the same stop rules, streaming events, cancellation and
  /// completion record, but in speculative rounds: the drafter proposes g tokens (g from
  /// the policy, bounded by the token budget and the context's room), the target scores
  /// the last kept token and the draft in one pass, and verification keeps the accepted
  /// prefix plus one token from the target (a correction, or a bonus after a fully
  /// accepted draft). With a greedy `sampler` the tokens equal target-only greedy
  /// decoding exactly when the target's batched rows equal its one-token rows (mocks,
  /// n-gram models; on llama.cpp they differ by rounding, docs/backends.md, so a near-tie
  /// can flip and the output part from there); otherwise each token is distributed exactly as under
  /// target-only sampling with `sampler` (accept x with min(1, p(x)/q(x)), else draw from
  /// norm(max(0, p - q)); p from sampler.probabilities, which sees every kept token, q
  /// from the drafter, one-hot when it gives none). When a DraftPlanningPolicy (such as
  /// cost_model_draft) plans a probe for a round without a draft, the drafter proposes one
  /// token, the target takes its plain step, and the policy is told the chance that
  /// verification would have accepted that token; the output is unaffected. The policy's
  /// update() sees every round whose target pass ran, failed ones included. The deadline
  /// is checked before each token; tokens of a round already verified are still kept one by one, so
  /// a stop rule can end the generation mid-round. `out.logprobs`/`entropies` come from the
  /// target's logits, as in generate().
  ///
  /// With an output constraint (`opts.constraint`; at position 0 for generate()), the output
  /// is exactly the constrained target's: every target row is masked by the constraint at
  /// its position (stop tokens allowed exactly where it can end) before verification, so
  /// greedy output equals constrained target-only generate() and sampled tokens follow the
  /// constrained target distribution. A round first drafts the run of tokens the constraint
  /// forces (up to the context's room, the token budget and max_draft_length, whatever the
  /// policy's length) without calling the drafter (`stats().forced_drafts`); the drafter then
  /// drafts up to the policy's length more, given the constraint in `draft_request` (a
  /// model_drafter masks its model's logits with it); the decoder cuts the draft at its first
  /// token the constraint disallows. The policy sees only the drafter's tokens
  /// (draft_round::forced counts the free ones). The constraint advances with every kept
  /// token, `out.forced_tokens` counts those it forced, and the generation ends with finish
  /// `constraint_complete` when it is complete.
  ///
  /// Returns `errc::ok` for every finish. Errors, also stored in `out.error` with
  /// `out.finish == finish_reason::error`:
  /// - before the target is touched: `context_not_empty` (the target already holds tokens:
  ///   rewind it, or call continue_generation()), those of generate() (`empty_input`,
  ///   `invalid_token`, `invalid_argument`, `context_overflow`), `vocab_mismatch`
  ///   when the drafter's vocabulary size differs from the target's, and
  ///   `invalid_argument` for a policy or drafter made with options out of range (its
  ///   `validate()`, for those that have one);
  /// - mid-run: the target's append/score/rewind errors (`decode_failed`,
  ///   `rewind_failed`, ...), the drafter's errors, `invalid_token` (a draft token
  ///   outside the vocabulary), `invalid_argument` (a drafter returning more tokens than
  ///   asked, or q(x) = 0 for its own token x), the sampler's errors, the constraint's
  ///   errors. Tokens kept so far stay in `out`. A constraint not at position 0 (generate())
  ///   is `invalid_argument`, one of a larger vocabulary `vocab_mismatch`, before the target
  ///   is touched.
  ///
  /// State left: the target holds its previous content, the prompt and the kept tokens
  /// except the very last of them (the last prompt token when none was kept), unless a
  /// rewind failed (`rewind_failed` is returned and the target also holds the rejected
  /// draft tokens it could not drop; its `size()` says how many). The drafter's state is
  /// its own (a model_drafter resynchronises at its next call). The sampler has accepted
  /// every kept token. `out` is owned by the caller; the statistics are updated.
  template <DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc generate(S& sampler, std::span<const token_id> prompt,
                              const generation_options& opts, completion& out,
                              OnToken&& on_token = {}) {
    return run(detail::no_tokenizer{}, sampler, prompt, opts, out, on_token,
               detail::context_use::fresh);
  }

  /// As above, also rendering text with `tokenizer` and honouring `opts.stop_strings`,
  /// exactly as the tokenizer overload of generate() (same streaming and stop-string
  /// rules; additional error `vocab_mismatch` for a tokenizer of another vocabulary size).
  template <Tokenizer T, DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc generate(const T& tokenizer, S& sampler, std::span<const token_id> prompt,
                              const generation_options& opts, completion& out,
                              OnToken&& on_token = {}) {
    return run(tokenizer, sampler, prompt, opts, out, on_token, detail::context_use::fresh);
  }

  ///@{
  /// As generate(), but continues the context the target already holds (core's
  /// continue_generation()): `prompt` is fed after it, so the output depends on everything
  /// fed before. Errors and state left as generate(), without `context_not_empty`.
  template <DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc continue_generation(S& sampler, std::span<const token_id> prompt,
                                         const generation_options& opts, completion& out,
                                         OnToken&& on_token = {}) {
    return run(detail::no_tokenizer{}, sampler, prompt, opts, out, on_token,
               detail::context_use::extend);
  }
  template <Tokenizer T, DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc continue_generation(const T& tokenizer, S& sampler,
                                         std::span<const token_id> prompt,
                                         const generation_options& opts, completion& out,
                                         OnToken&& on_token = {}) {
    return run(tokenizer, sampler, prompt, opts, out, on_token, detail::context_use::extend);
  }
  ///@}

  /// Measurements since construction or the last reset_stats().
  [[nodiscard]] const speculative_stats& stats() const noexcept { return stats_; }
  /// Forgets the measurements.
  void reset_stats() noexcept { stats_ = {}; }
  ///@{
  /// The draft-length policy (its learned state persists across generations).
  [[nodiscard]] Policy& policy() noexcept { return policy_; }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }
  ///@}
  /// Restarts the verification rng as if constructed with `seed`.
  void reseed(std::uint64_t seed) noexcept { rng_.reseed(seed); }
  /// The details of the last failed generate() (code ok after a successful one): for
  /// `vocab_mismatch`, which vocabulary (drafter's or tokenizer's) and both sizes.
  [[nodiscard]] const error_info& last_error() const noexcept { return last_error_; }
  ///@{
  /// The target (borrowed at construction).
  [[nodiscard]] Target& target() noexcept { return *target_; }
  [[nodiscard]] const Target& target() const noexcept { return *target_; }
  ///@}

 private:
  [[nodiscard]] double now() const noexcept {
    if (clock_ != nullptr) return clock_();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  [[nodiscard]] double since(double t) const noexcept { return now() - t; }

  void size_buffers(std::size_t vocab) {
    if (vocab_ == vocab) return;
    vocab_ = vocab;
    rows_.assign((max_draft_length + 1) * vocab, 0.0f);
    q_.assign(max_draft_length * vocab, 0.0f);
    p_.assign(vocab, 0.0f);
    resid_.assign(vocab, 0.0f);
    masked_.assign(vocab, 0.0f);
  }

  // One generation: validation, the prompt, then rounds of plan, draft, target pass,
  // judge, commit and learn until a finish or an error.
  template <class T, class S, class F>
  errc run(const T& tok, S& sampler, std::span<const token_id> prompt,
           const generation_options& opts, completion& out, F& on_token, detail::context_use use) {
    last_error_.clear();
    if (use == detail::context_use::fresh && target_->size() != 0) {
      detail::token_emitter<T, F> em(tok, opts, out, on_token);
      return em.fail(detail::fail(&last_error_, errc::context_not_empty,
                                  "the target already holds %zu tokens: rewind it, or call "
                                  "continue_generation()",
                                  static_cast<std::size_t>(target_->size())));
    }
    con_ = opts.constraint;
    stops_ = opts.stop_tokens;
    const errc e = run_rounds(tok, sampler, prompt, opts, out, on_token, use);
    con_ = {};
    stops_ = {};
    if (e != errc::ok && !last_error_) last_error_.code = e;
    return e;
  }

  template <class T, class S, class F>
  errc run_rounds(const T& tok, S& sampler, std::span<const token_id> prompt,
                  const generation_options& opts, completion& out, F& on_token,
                  detail::context_use use) {
    Target& target = *target_;
    detail::token_emitter<T, F> em(tok, opts, out, on_token);
    const auto vocab = static_cast<std::size_t>(target.vocab_size());
    const std::size_t ctx = context_length_of(target);
    const auto used = static_cast<std::size_t>(target.size());
    if constexpr (!std::is_same_v<T, detail::no_tokenizer>) {
      if (const auto tv = static_cast<std::size_t>(tok.vocab_size()); tv != vocab)
        return em.fail(detail::fail(&last_error_, errc::vocab_mismatch,
                                    "tokenizer vocabulary %zu, target vocabulary %zu", tv, vocab));
    }
    if (errc e = em.begin(vocab, prompt, used, ctx); e != errc::ok) return em.fail(e);
    if (const auto dv = static_cast<std::size_t>(drafter_->vocab_size()); dv != vocab)
      return em.fail(detail::fail(&last_error_, errc::vocab_mismatch,
                                  "draft vocabulary %zu, target vocabulary %zu", dv, vocab));
    if (errc e = detail::validate_of(policy_); e != errc::ok) return em.fail(e);
    if (errc e = detail::validate_of(*drafter_); e != errc::ok) return em.fail(e);
    if (errc e = detail::check_constraint(con_, vocab, use == detail::context_use::fresh);
        e != errc::ok)
      return em.fail(detail::fail(&last_error_, e,
                                  "the constraint is at position %zu (generate() needs 0) or "
                                  "of vocabulary %zu (target %zu)",
                                  con_.position(), con_.vocab_size(), vocab));
    if (errc e = start_step(prompt, opts, used); e != errc::ok) return em.fail(e);

    errc err = errc::ok;
    for (;;) {
      if (const finish_reason f = room_finish(em, ctx); f != finish_reason::none) {
        out.finish = f;
        break;
      }
      if (con_ && con_.is_complete()) {
        out.finish = finish_reason::constraint_complete;
        break;
      }
      draft_round round{};
      const std::size_t cap = draft_cap(ctx, opts.max_tokens - out.tokens.size());
      const draft_plan plan = plan_step(cap);
      if (err = draft_step(plan, cap, em, round); err != errc::ok) break;
      if (err = target_step(round, out); err != errc::ok || out.finish != finish_reason::none)
        break;
      err = judge_step(sampler, round);
      if (err == errc::ok) err = commit_step(em, sampler, round, out);
      policy_.update(round);
      if (err != errc::ok || out.finish != finish_reason::none) break;
      if (errc e = trim(); e != errc::ok) return em.end(e);  // no second try
    }
    if (errc e = trim(); e != errc::ok && err == errc::ok) err = e;
    return em.end(err);
  }

  // Sizes the buffers, starts the history with the prompt and feeds the target all of it
  // but its last token (each round feeds the last kept token together with the draft).
  errc start_step(std::span<const token_id> prompt, const generation_options& opts,
                  std::size_t used) {
    size_buffers(static_cast<std::size_t>(target_->vocab_size()));
    base_used_ = used;
    history_.clear();
    history_.reserve(prompt.size() + std::min(opts.max_tokens, generate_reserve_limit) + 1 +
                     max_draft_length);
    history_.insert(history_.end(), prompt.begin(), prompt.end());
    if (prompt.size() <= 1) return errc::ok;
    const double t0 = now();
    const errc e = target_->append(prompt.first(prompt.size() - 1));
    stats_.target_seconds += since(t0);
    ++stats_.target_calls;
    return e;
  }

  // Why no further round can start (the token budget, the deadline, a full context), or
  // finish_reason::none.
  template <class Em>
  [[nodiscard]] finish_reason room_finish(const Em& em, std::size_t ctx) const {
    if (const finish_reason f = em.budget_finish(); f != finish_reason::none) return f;
    if (static_cast<std::size_t>(target_->size()) >= ctx) return finish_reason::context_full;
    return finish_reason::none;
  }

  // The longest draft this round can verify: max_draft_length, the context's room and the
  // token budget (`remaining` >= 1 tokens).
  [[nodiscard]] std::size_t draft_cap(std::size_t ctx, std::size_t remaining) const noexcept {
    const auto held = static_cast<std::size_t>(target_->size());
    return std::min({max_draft_length, ctx - held - 1, remaining - 1});
  }

  // The policy's plan, its length bounded by `cap`. Its probe: a shadow probe in a round
  // without a draft; a shadow token past a draft only without a constraint (the token after
  // a draft the constraint may cut has no row to be judged against) and while the buffers
  // have room for it.
  draft_plan plan_step(std::size_t cap) {
    const draft_plan p = plan_of(policy_);
    const std::size_t g = std::min(p.length, cap);
    return draft_plan{g, p.probe && (g == 0 || (!con_ && g < max_draft_length))};
  }

  // Drafts the run of tokens the constraint forces (at most `cap`) into draft_, advancing
  // the constraint along it; returns its length. Stops at a stop token (which ends the
  // generation) and where the constraint is complete.
  template <class Em>
  result<std::size_t> forced_step(std::size_t cap, const Em& em) {
    std::size_t n = 0;
    if (!con_) return n;
    while (n < cap && !con_.is_complete()) {
      const token_id t = detail::forced_token(con_, stops_);
      if (t == no_token || em.is_stop_token(t) || !em.in_vocab(t)) break;
      if (errc e = con_.advance(t); e != errc::ok) {
        (void)con_.rewind(n);
        return e;
      }
      draft_[n++] = t;
    }
    return n;
  }

  // Cuts the drafter's `count` tokens (after the forced run of nf_) at the first one the
  // constraint disallows (a stop token is allowed where it can end, and ends the draft),
  // then rewinds the constraint to the kept position. Returns the tokens kept; cut_ says
  // whether a disallowed token was cut (verification then rejects it: see commit_step).
  template <class Em>
  std::size_t constrain_draft(std::size_t count, const Em& em) {
    std::size_t ok = 0, advanced = nf_;
    for (; ok < count; ++ok) {
      const token_id t = draft_[nf_ + ok];
      if (em.is_stop_token(t)) {
        if (con_.can_end())
          ++ok;
        else
          cut_ = true;
        break;
      }
      if (!con_.allows(t) || con_.advance(t) != errc::ok) {
        cut_ = true;
        break;
      }
      ++advanced;
    }
    (void)con_.rewind(advanced);
    return ok;
  }

  // With a constraint, first the run of tokens it forces (free drafts, at most `cap`), into
  // draft_ [0, nf_). Then asks the drafter for the plan's tokens (the probe's one token,
  // when planned and nothing was forced; at most `cap` in all, and a shadow token after
  // them when planned) into draft_ and q_ after them, and records its tokens in `round`. Errors:
  // the drafter's, invalid_argument (more tokens than asked), invalid_token (a token outside the
  // vocabulary), the constraint's.
  template <class Em>
  errc draft_step(const draft_plan& plan, std::size_t cap, const Em& em, draft_round& round) {
    drafted_ = 0;
    has_q_ = false;
    cut_ = false;
    const result<std::size_t> nf = forced_step(cap, em);
    if (!nf) return nf.error();
    nf_ = *nf;
    round.forced = nf_;
    shadow_ = 0;
    const bool probe = plan.probe && nf_ == 0 && plan.length == 0;
    const bool done = con_ && con_.is_complete();  // the forced run completed it
    const std::size_t verify = probe ? 0 : done ? 0 : std::min(plan.length, cap - nf_);
    // A shadow token past the draft (plan_step allows one only without a constraint).
    const std::size_t extra = plan.probe && verify > 0 && nf_ == 0 ? 1 : 0;
    const std::size_t ask = probe ? 1 : verify + extra;
    round.requested = verify;
    drafted_ = nf_;
    if (ask == 0) {
      if (con_) (void)con_.rewind(nf_);
      return errc::ok;
    }
    // The drafter continues the history and the forced run (history_ has room for it).
    history_.insert(history_.end(), draft_.begin(),
                    draft_.begin() + static_cast<std::ptrdiff_t>(nf_));
    const draft_request req{history_, ask, std::span<token_id>(draft_.data() + nf_, ask),
                            std::span<float>(q_.data() + nf_ * vocab_, ask * vocab_), con_};
    const double t0 = now();
    const result<draft_result> r = drafter_->draft(req);
    round.draft_seconds = since(t0);
    stats_.draft_seconds += round.draft_seconds;
    ++stats_.draft_calls;
    history_.resize(history_.size() - nf_);
    std::size_t count = r ? r->count : 0;
    if (r && count <= ask &&
        std::all_of(draft_.begin() + static_cast<std::ptrdiff_t>(nf_),
                    draft_.begin() + static_cast<std::ptrdiff_t>(nf_ + count),
                    [&](token_id t) { return em.in_vocab(t); }) &&
        con_ && !probe)
      count = constrain_draft(count, em);  // rewinds the constraint
    else if (con_)
      (void)con_.rewind(nf_);
    if (!r) return r.error();
    if (r->count > ask) return errc::invalid_argument;
    if (!std::all_of(draft_.begin() + static_cast<std::ptrdiff_t>(nf_),
                     draft_.begin() + static_cast<std::ptrdiff_t>(nf_ + count),
                     [&](token_id t) { return em.in_vocab(t); }))
      return errc::invalid_token;
    // Every token asked for came: the last is the shadow token, not verified (a drafter
    // that stopped early proposed only tokens to verify).
    if (extra > 0 && count == ask) shadow_ = 1;
    const std::size_t verified = probe ? 0 : count - shadow_;
    drafted_ = nf_ + count;
    has_q_ = r->has_probabilities && (count > 0 || cut_);
    round.drafted = verified;
    round.probed = probe || shadow_ > 0;
    round.tokens = std::span<const token_id>(draft_.data() + nf_, count);
    if (has_q_)
      round.probabilities = std::span<const float>(q_.data() + nf_ * vocab_, count * vocab_);
    if (probe) ++stats_.probes;
    stats_.shadow_tokens += shadow_;
    return errc::ok;
  }

  // One batched target pass over the last kept token and the draft to verify: rows_ holds
  // its rows. A model that does not report its context length and overflows on a plain
  // step ends the generation with context_full. Errors: the target's.
  errc target_step(draft_round& round, completion& out) {
    const std::size_t n = nf_ + round.drafted;
    batch_[0] = history_.back();
    std::copy_n(draft_.begin(), n, batch_.begin() + 1);
    const double t0 = now();
    const errc e = target_->score(std::span<const token_id>(batch_.data(), n + 1),
                                  std::span<float>(rows_.data(), (n + 1) * vocab_));
    round.target_seconds = since(t0);
    round.target_batch = n + 1;
    stats_.target_seconds += round.target_seconds;
    ++stats_.target_calls;
    if (e == errc::context_overflow && n == 0) {
      out.finish = finish_reason::context_full;
      return errc::ok;
    }
    if (e != errc::ok) return e;
    ++stats_.rounds;
    stats_.forced_drafts += nf_;
    if (round.drafted > 0) {
      ++stats_.drafting_rounds;
      stats_.drafted += round.drafted;
      for (std::size_t i = 0; i < round.drafted; ++i) ++stats_.drafted_at[i];
    }
    return errc::ok;
  }

  // A probe's verdict: how likely verification would have accepted its token, judged
  // against the plain step's row. Errors: the sampler's.
  template <class S>
  errc judge_step(S& sampler, draft_round& round) {
    if (!round.probed || round.drafted > 0 || drafted_ == 0) return errc::ok;
    const std::span<float> p(p_.data(), vocab_);
    const result<std::span<const float>> d = dist_row(0);
    if (!d) return d.error();
    TANDEM_TRY(sampler.probabilities(*d, p));
    const float qx = q_at(0);
    verdicts_[0] = qx > 0.0f ? verdict(p[static_cast<std::size_t>(draft_[0])], qx) : 0.0;
    round.verdicts = std::span<const double>(verdicts_.data(), 1);
    return errc::ok;
  }

  // Verifies the draft and keeps tokens one by one, so the sampler sees every kept token
  // before the next position's distribution is computed: the accepted prefix, then a
  // correction drawn from the residual or, after a fully accepted draft, a bonus token.
  // A stop rule may end the generation mid-round (out.finish). Errors: the sampler's,
  // invalid_argument (q(x) = 0 for the drafter's own token x), invalid_token (a token
  // outside the vocabulary), no_candidates, those of keeping a token.
  // With a constraint, each position's row is masked by it first (dist_row); forced
  // positions (before nf_) have a one-hot q and only the drafter's positions count in the
  // statistics and the round.
  template <class Em, class S>
  errc commit_step(Em& em, S& sampler, draft_round& round, completion& out) {
    const std::size_t n = nf_ + round.drafted;
    const std::span<float> p(p_.data(), vocab_);
    std::size_t k = 0;
    token_id next = -1;
    std::span<const float> dist{};
    for (; k < n; ++k) {
      const token_id x = draft_[k];
      const result<std::span<const float>> d = dist_row(k);
      if (!d) return d.error();
      dist = *d;
      TANDEM_TRY(sampler.probabilities(dist, p));
      const float qx = q_at(k);
      const float px = p[static_cast<std::size_t>(x)];
      if (!(qx > 0.0f)) return errc::invalid_argument;
      const bool drafted = k >= nf_;  // by the drafter, not forced
      const std::size_t j = k - nf_;  // its index in the drafter's tokens
      if (drafted) {
        verdicts_[j] = verdict(px, qx);
        round.verdicts = std::span<const double>(verdicts_.data(), j + 1);
      }
      if (!detail::accept_draft(px, qx, rng_)) {
        if (drafted) ++stats_.rejections;
        const result<token_id> r = residual_draw(p, q_row(k), x);
        if (!r) return r.error();
        next = *r;
        break;
      }
      if (drafted) {
        ++stats_.accepted;
        ++stats_.accepted_at[j];
        ++round.accepted;
      }
      TANDEM_TRY(keep(em, sampler, x, dist, out));
      if (out.finish != finish_reason::none) return errc::ok;
    }
    if (next < 0) {  // every draft token accepted: a bonus token from the target
      const result<std::span<const float>> d = dist_row(n);
      if (!d) return d.error();
      dist = *d;
      if (shadow_ > 0) {
        // The shadow token past the draft, judged against the bonus token's row: the chance
        // that verification would have accepted it had the draft been one token longer.
        TANDEM_TRY(sampler.probabilities(dist, p));
        const std::size_t j = n - nf_;
        const float qx = q_at(n);
        verdicts_[j] = qx > 0.0f ? verdict(p[static_cast<std::size_t>(draft_[n])], qx) : 0.0;
        round.verdicts = std::span<const double>(verdicts_.data(), j + 1);
      }
      if (cut_ && has_q_) {
        // The drafter proposed a token here that the constraint disallows (cut from the
        // draft): under the masked target p(x) = 0, so verification rejects it for sure and
        // the token comes from the residual norm(max(0, p - q)), not from p, or the output
        // would lean towards the tokens the drafter left out.
        TANDEM_TRY(sampler.probabilities(dist, p));
        const result<token_id> r = residual_draw(p, q_row(n), draft_[n]);
        if (!r) return r.error();
        next = *r;
      } else {
        const result<token_id> r = sampler.sample(dist);
        if (!r) return r.error();
        next = *r;
      }
    }
    if (!em.in_vocab(next)) return errc::invalid_token;
    return keep(em, sampler, next, dist, out);
  }

  // Row i of the target's last pass, masked by the constraint at its current position into
  // masked_ when there is one. Errors: the constraint's mask.
  result<std::span<const float>> dist_row(std::size_t i) {
    if (!con_) return row(i);
    TANDEM_TRY(detail::constrain_logits(con_, row(i), masked_, stops_));
    return std::span<const float>(masked_);
  }

  // Keeps token `t` chosen from `dist` (a row, masked when constrained), unless the budget,
  // the deadline or a stop token ends the generation first (out.finish); keeping it may end
  // it too, and so may a constraint it completes. The constraint advances with it.
  // Errors: the emitter's, the constraint's advance.
  template <class Em, class S>
  errc keep(Em& em, S& sampler, token_id t, std::span<const float> dist, completion& out) {
    if (const finish_reason f = em.budget_finish(); f != finish_reason::none) {
      out.finish = f;
      return errc::ok;
    }
    if (em.is_stop_token(t)) {
      out.finish = finish_reason::stop_token;
      return errc::ok;
    }
    const bool forced = con_ && detail::forced_token(con_, stops_) == t;
    if (con_) TANDEM_TRY(con_.advance(t));
    const auto k = em.keep(t, dist, sampler);
    if (k.error != errc::ok) {
      if (con_) (void)con_.rewind(1);
      return k.error;
    }
    history_.push_back(t);
    ++stats_.generated;
    if (forced) ++out.forced_tokens;
    out.finish = k.finish;
    if (out.finish == finish_reason::none && con_ && con_.is_complete())
      out.finish = finish_reason::constraint_complete;
    return errc::ok;
  }

  // Row i of the target's last pass.
  [[nodiscard]] std::span<const float> row(std::size_t i) const noexcept {
    return std::span<const float>(rows_.data() + i * vocab_, vocab_);
  }
  // q(x) of draft token i: from the drafter's row, or 1 (one-hot) when it gave none or the
  // token was forced.
  [[nodiscard]] float q_at(std::size_t i) const noexcept {
    return has_q_ && i >= nf_ ? q_[i * vocab_ + static_cast<std::size_t>(draft_[i])] : 1.0f;
  }
  // The drafter's row q of draft token i; empty (one-hot) when it gave none or the token was
  // forced.
  [[nodiscard]] std::span<const float> q_row(std::size_t i) const noexcept {
    if (!has_q_ || i < nf_) return {};
    return std::span<const float>(q_.data() + i * vocab_, vocab_);
  }
  // The chance min(1, p(x) / q(x)) that verification accepts x (q(x) > 0).
  [[nodiscard]] static double verdict(float px, float qx) noexcept {
    return detail::acceptance_chance(px, qx);
  }

  // Rewinds the target to the history minus its last token.
  errc trim() {
    const auto held = static_cast<std::size_t>(target_->size());
    const std::size_t want = base_used_ + history_.size() - 1;
    if (held <= want) return errc::ok;
    const double t0 = now();
    const errc e = target_->rewind(held - want);
    stats_.target_seconds += since(t0);
    return e;
  }

  // A draw from the residual norm(max(0, p - q)) (detail::residual_draw).
  result<token_id> residual_draw(std::span<const float> p, std::span<const float> q, token_id x) {
    return detail::residual_draw(p, q, x, resid_, rng_);
  }

  Target* target_;
  D* drafter_;
  Policy policy_;
  rng rng_;
  double (*clock_)() noexcept;
  speculative_stats stats_{};
  std::size_t vocab_ = 0;
  std::size_t base_used_ = 0;
  std::vector<float> rows_, q_, p_, resid_, masked_;
  std::vector<token_id> history_;
  std::array<token_id, max_draft_length> draft_{};
  std::array<token_id, max_draft_length + 1> batch_{};
  std::array<double, max_draft_length> verdicts_{};
  std::size_t drafted_ = 0;  // tokens in draft_ this round (forced, probe and shadow included)
  std::size_t shadow_ = 0;   // 1: draft_[nf_ + round.drafted] is a shadow token, not verified
  std::size_t nf_ = 0;       // leading tokens of draft_ the constraint forced this round
  constraint_ref con_{};     // the output constraint of the generation in progress
  std::span<const token_id> stops_{};  // its stop tokens
  bool has_q_ = false;                 // q_ holds the drafter's distributions for them
  bool cut_ = false;  // the constraint cut a disallowed drafter token at draft_[nf_ + drafted]
  error_info last_error_{};  // details of the last failed generate()
};

/// One speculative generation with a decoder built for the call (its buffers allocate;
/// keep a speculative_decoder to generate repeatedly without allocating, and to read
/// its statistics). Same behaviour, errors and state as speculative_decoder::generate.
template <class Target, class D, DistributionSampler S, TokenCallback OnToken = no_callback,
          class Policy = adaptive_draft>
[[nodiscard]] errc generate_speculative(Target& target, D& drafter, S& sampler,
                                        std::span<const token_id> prompt,
                                        const generation_options& opts, completion& out,
                                        OnToken&& on_token = {}, Policy policy = Policy{},
                                        speculative_options options = {}) {
  speculative_decoder<Target, D, Policy> dec(target, drafter, std::move(policy), options);
  return dec.generate(sampler, prompt, opts, out, on_token);
}

}  // namespace tandem::inline v0
