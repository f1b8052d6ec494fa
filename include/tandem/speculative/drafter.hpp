// tandem: drafters for speculative decoding. A drafter proposes the next few tokens
// cheaply; the target model verifies them. model_drafter runs a small LanguageModel with
// rewind (a llama.cpp session, the built-in n-gram model, ...); prompt_lookup_drafter
// needs no second model and copies continuations of n-grams seen earlier in the context;
// fallback_drafter chains two drafters (prompt lookup, then the built-in n-gram model).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/constraint.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Longest draft any drafter is asked for; bounds the decoder's per-position statistics.
inline constexpr std::size_t max_draft_length = 64;

/// One drafting request. The decoder owns every buffer; the drafter writes into them.
struct draft_request {
  /// Every token of the sequence so far (the prompt of the current generation, then the
  /// kept tokens); the draft continues it. Only viewed, valid during the call.
  std::span<const token_id> history{};
  /// Draft at most this many tokens (1 to max_draft_length).
  std::size_t max_tokens = 0;
  /// Output: the drafted tokens, at least max_tokens entries.
  std::span<token_id> tokens{};
  /// Output, when non-empty (max_tokens * vocab_size entries): row i is the distribution
  /// q the i-th draft token was drawn from. A drafter without probabilities leaves it
  /// untouched and reports `has_probabilities == false`; verification then treats q as
  /// one-hot on the drafted token.
  std::span<float> probabilities{};
  /// The output constraint, at the position the draft starts from (after the history);
  /// empty: none. A drafter may use it to draft only allowed tokens (model_drafter masks
  /// its model's logits with it); one that advances it must rewind it before returning,
  /// errors included. The decoder checks every drafted token against it anyway and cuts
  /// the draft at the first disallowed one.
  constraint_ref constraint{};
};

/// What a drafter produced.
struct draft_result {
  std::size_t count = 0;           ///< tokens drafted, 0 to max_tokens
  bool has_probabilities = false;  ///< rows [0, count) of probabilities were written
};

/// Proposes continuations of a token sequence. `vocab_size()` must equal the target's.
/// `draft(req)` writes up to `req.max_tokens` tokens and returns how many, or an error
/// (the decoder reports it and stops). The drafter may keep state across calls (a KV
/// cache), resynchronising with `req.history`, which always extends a prefix of what an
/// earlier call saw plus that call's accepted draft tokens.
template <class D>
concept Drafter = requires(D& d, const D& cd, const draft_request& req) {
  { cd.vocab_size() } -> std::convertible_to<std::size_t>;
  { d.draft(req) } -> std::same_as<result<draft_result>>;
};

namespace detail {
/// `t.validate()` when `T` has it (a policy or drafter that checks its settings), else ok.
template <class T>
[[nodiscard]] errc validate_of(const T& t) noexcept {
  if constexpr (requires {
                  { t.validate() } -> std::same_as<errc>;
                })
    return t.validate();
  else
    return errc::ok;
}
}  // namespace detail

/// Samplers whose exact final distribution is available (greedy_sampler,
/// categorical_sampler, sampler_chain): what stochastic verification needs.
template <class S>
concept DistributionSampler = Sampler<S> &&
    requires(S& s, std::span<const float> logits, std::span<float> out) {
  { s.probabilities(logits, out) } -> std::same_as<errc>;
};

/// Options of a model_drafter.
struct model_drafter_options {
  /// Stop drafting when the draft model's top probability (softmax of its logits at
  /// temperature 1, before the sampler's transforms) falls below p_min; 0 never stops.
  /// Must lie in [0, 1].
  float p_min = 0.0f;
  /// 0: p_min tests the top probability over the whole vocabulary. k in [1, 64]: over the
  /// k most likely tokens only, renormalised (llama.cpp's draft sampler keeps the top 10,
  /// so its --spec-draft-p-min P matches p_min = P with p_min_top_k = 10).
  std::size_t p_min_top_k = 0;
};

/// Checks model_drafter options: invalid_argument for p_min outside [0, 1] (or NaN) or
/// p_min_top_k above 64, with the offending value in `*info` when given; else ok.
[[nodiscard]] inline errc validate(const model_drafter_options& o,
                                   error_info* info = nullptr) noexcept {
  if (!(o.p_min >= 0.0f && o.p_min <= 1.0f))
    return detail::fail(info, errc::invalid_argument, "model_drafter: p_min %g outside [0, 1]",
                        static_cast<double>(o.p_min));
  if (o.p_min_top_k > 64)
    return detail::fail(info, errc::invalid_argument, "model_drafter: p_min_top_k %zu above 64",
                        o.p_min_top_k);
  return errc::ok;
}

/// Drafts with a small LanguageModel that can rewind, sampling each draft token with its
/// own sampler (give it the target's settings, so q is the distribution the target's
/// sampling would use on the draft model; probabilities are reported when the sampler
/// offers them). Borrows the model, which must outlive the drafter and be used by nothing
/// else while drafting: the drafter mirrors the model's context (which must be empty at
/// the first draft) and rewinds only what it appended itself. The sampler is owned.
/// Backed by the built-in n-gram model (an ngram_session), this is the n-gram drafter.
///
/// Allocation: the mirror of the context grows with the sequence; `reserve(n)` sizes it,
/// after which drafting allocates nothing (given a non-allocating model and sampler).
///
/// Options out of range (see validate(const model_drafter_options&)) do not abort: the
/// drafter is left invalid, validate() and every draft() return invalid_argument, and a
/// speculative_decoder refuses it before touching the target. create() reports them up
/// front.
template <class M, class S = sampler_chain>
class model_drafter {
  static_assert(LanguageModel<M>, "model_drafter: the draft model must be a LanguageModel");
  static_assert(Rewindable<M>,
                "model_drafter: the draft model must offer rewind(n) to drop rejected drafts");
  static_assert(Sampler<S>, "model_drafter: S must be a Sampler");

 public:
  /// A drafter over `model` (borrowed) sampling with `sampler` (moved in). Options out of
  /// range leave it invalid (see the class comment). Allocates.
  model_drafter(M& model, S sampler, model_drafter_options options = {})
      : model_(&model), sampler_(std::move(sampler)), options_(options) {
    mirror_.reserve(256);
    if (options.p_min_top_k > 0 && tandem::validate(options) == errc::ok)
      top_.resize(kernels::top_k_buffer_size(options.p_min_top_k,
                                             static_cast<std::size_t>(model.vocab_size())));
  }

  /// A drafter as the constructor makes it, or invalid_argument for options out of range
  /// (details in `*info` when given; nothing is made).
  [[nodiscard]] static result<model_drafter> create(M& model, S sampler,
                                                    model_drafter_options options = {},
                                                    error_info* info = nullptr) {
    TANDEM_TRY(tandem::validate(options, info));
    return model_drafter(model, std::move(sampler), options);
  }

  /// invalid_argument when the drafter was made with options out of range, else ok.
  [[nodiscard]] errc validate() const noexcept { return tandem::validate(options_); }

  /// The draft model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return static_cast<std::size_t>(model_->vocab_size());
  }
  /// Sizes the context mirror for sequences of up to `tokens` tokens (allocates).
  void reserve(std::size_t tokens) { mirror_.reserve(tokens + max_draft_length); }
  /// The draft model.
  [[nodiscard]] M& model() noexcept { return *model_; }
  /// Changes p_min (must lie in [0, 1]; else invalid_argument, nothing changes).
  errc set_p_min(float p) noexcept {
    if (!(p >= 0.0f && p <= 1.0f)) return errc::invalid_argument;
    options_.p_min = p;
    return errc::ok;
  }

  /// Brings the draft model's context to `req.history` (rewinding its own rejected
  /// drafts, feeding the new tokens in one append), then drafts up to `req.max_tokens`
  /// tokens, feeding each but the last. With `req.constraint`, each token is sampled from
  /// the model's logits masked by it (q is then the masked distribution), the draft stops
  /// where the constraint is complete, and the constraint is left where it was given (the
  /// masked logits use one buffer of the vocabulary's size, allocated at the first
  /// constrained draft). Errors: empty_input (empty history),
  /// invalid_argument (the model's context was changed behind the drafter's back, or
  /// max_tokens outside [1, max_draft_length]), size_mismatch (probabilities of the wrong
  /// size), the model's append/rewind errors, the sampler's errors and invalid_token (the
  /// sampler returned an id outside the vocabulary), the constraint's mask/advance errors
  /// (constraint_violation: the sampler chose a masked token). After an error the drafter forgets
  /// its mirror's unconfirmed tail and resynchronises on the next call (rewinding if it
  /// can); the model may hold extra draft tokens. An invalid drafter (options out of range)
  /// returns invalid_argument and touches nothing.
  [[nodiscard]] result<draft_result> draft(const draft_request& req) {
    TANDEM_TRY(validate());
    if (req.history.empty()) return errc::empty_input;
    if (req.max_tokens == 0 || req.max_tokens > max_draft_length ||
        req.tokens.size() < req.max_tokens)
      return errc::invalid_argument;
    const std::size_t vocab = vocab_size();
    const bool want_q = !req.probabilities.empty();
    if (want_q && req.probabilities.size() != req.max_tokens * vocab) return errc::size_mismatch;
    TANDEM_TRY(sync(req.history));
    const constraint_ref con = req.constraint;
    if (con && masked_.size() != vocab) masked_.resize(vocab);
    // Leaves the constraint where it was given, on every return.
    struct rewinder {
      const constraint_ref& c;
      std::size_t n = 0;
      ~rewinder() {
        if (n > 0) (void)c.rewind(n);
      }
    } advanced{con};

    draft_result r;
    for (std::size_t i = 0; i < req.max_tokens; ++i) {
      std::span<const float> logits = model_->logits();
      if (logits.size() != vocab) return errc::size_mismatch;
      if (con) {
        if (con.is_complete()) break;
        std::copy(logits.begin(), logits.end(), masked_.begin());
        TANDEM_TRY(con.mask(masked_));
        logits = masked_;
      }
      if (options_.p_min > 0.0f) {
        const auto m = kernels::max_logit(logits);
        if (!m) return m.error();
        double z = 0.0;  // top prob = 1 / z
        if (options_.p_min_top_k == 0) {
          z = detail::sum_exp(logits, *m, 1.0f, nullptr);
        } else {
          const result<std::size_t> k = kernels::top_k(logits, options_.p_min_top_k, top_);
          if (!k) return k.error();
          for (std::size_t j = 0; j < *k; ++j)
            z += std::exp(static_cast<double>(top_[j].logit - *m));
        }
        if (1.0 / z < static_cast<double>(options_.p_min)) break;
      }
      const result<token_id> t = sampler_.sample(logits);
      if (!t) return t.error();
      if (*t < 0 || static_cast<std::size_t>(*t) >= vocab) return errc::invalid_token;
      if (con) {
        TANDEM_TRY(con.advance(*t));
        ++advanced.n;
      }
      if constexpr (DistributionSampler<S>) {
        if (want_q)
          TANDEM_TRY(sampler_.probabilities(logits, req.probabilities.subspan(i * vocab, vocab)));
      }
      req.tokens[i] = *t;
      r.count = i + 1;
      if (i + 1 == req.max_tokens) break;
      const errc e = model_->append(std::span<const token_id>(&req.tokens[i], 1));
      if (e != errc::ok) {
        if (i == 0) return e;
        break;  // keep what was drafted; the next call resynchronises
      }
      mirror_.push_back(*t);
    }
    r.has_probabilities = want_q && DistributionSampler<S> && r.count > 0;
    return r;
  }

 private:
  // Makes the model's context equal to `history` with valid logits.
  errc sync(std::span<const token_id> history) {
    if (static_cast<std::size_t>(model_->size()) != mirror_.size()) {
      // An earlier failure left the model and the mirror apart (drop the model's tail back
      // to the confirmed prefix), or the caller rewound the model between generations (its
      // context is then a prefix of the mirror: a model only loses tokens by rewind).
      if (static_cast<std::size_t>(model_->size()) < mirror_.size())
        mirror_.resize(static_cast<std::size_t>(model_->size()));
      else
        TANDEM_TRY(model_->rewind(static_cast<std::size_t>(model_->size()) - mirror_.size()));
      logits_valid_ = false;
    }
    const std::size_t n = std::min(mirror_.size(), history.size());
    std::size_t common = 0;
    while (common < n && mirror_[common] == history[common]) ++common;
    if (common == history.size() && common == mirror_.size() && logits_valid_) return errc::ok;
    // Keep at least one token to feed, so the logits are fresh.
    if (common == history.size()) --common;
    if (const std::size_t drop = mirror_.size() - common; drop > 0) {
      TANDEM_TRY(model_->rewind(drop));
      mirror_.resize(common);
      logits_valid_ = false;
    }
    const std::span<const token_id> rest = history.subspan(common);
    TANDEM_TRY(model_->append(rest));
    mirror_.insert(mirror_.end(), rest.begin(), rest.end());
    logits_valid_ = true;
    return errc::ok;
  }

  M* model_;
  S sampler_;
  model_drafter_options options_;
  std::vector<kernels::candidate> top_;  // kernels::top_k's buffer when p_min_top_k > 0
  std::vector<token_id> mirror_;         // the model's context, as this drafter fed it
  std::vector<float> masked_;            // logits masked by a constraint
  bool logits_valid_ = false;
};

/// Options of a prompt_lookup_drafter.
struct prompt_lookup_options {
  std::size_t min_ngram = 1;  ///< shortest suffix looked up (>= 1)
  std::size_t max_ngram = 4;  ///< longest suffix looked up (>= min_ngram)
};

/// Checks prompt_lookup_drafter options: invalid_argument unless 1 <= min_ngram <=
/// max_ngram (the values in `*info` when given); else ok.
[[nodiscard]] inline errc validate(const prompt_lookup_options& o,
                                   error_info* info = nullptr) noexcept {
  if (o.min_ngram >= 1 && o.min_ngram <= o.max_ngram) return errc::ok;
  return detail::fail(info, errc::invalid_argument,
                      "prompt_lookup_drafter: need 1 <= min_ngram (%zu) <= max_ngram (%zu)",
                      o.min_ngram, o.max_ngram);
}

/// Drafts without a second model: finds the most recent earlier occurrence of the
/// longest suffix of the history (max_ngram down to min_ngram tokens) and proposes the
/// tokens that followed it. Gives no probabilities (q is one-hot). Stateless between
/// calls; allocates nothing. Cost per call: O(history length x max_ngram). Options out of
/// range (see validate(const prompt_lookup_options&)) do not abort: the drafter is left
/// invalid, validate() and every draft() return invalid_argument, and a
/// speculative_decoder refuses it before touching the target; create() reports them up
/// front.
class prompt_lookup_drafter {
 public:
  /// A drafter for a vocabulary of `vocab_size` tokens; options out of range leave it
  /// invalid (see the class comment).
  explicit prompt_lookup_drafter(std::size_t vocab_size,
                                 prompt_lookup_options options = {}) noexcept
      : vocab_(vocab_size), options_(options) {}

  /// A drafter as the constructor makes it, or invalid_argument for options out of range
  /// (details in `*info` when given).
  [[nodiscard]] static result<prompt_lookup_drafter> create(std::size_t vocab_size,
                                                            prompt_lookup_options options = {},
                                                            error_info* info = nullptr) noexcept {
    TANDEM_TRY(tandem::validate(options, info));
    return prompt_lookup_drafter(vocab_size, options);
  }

  /// invalid_argument when the drafter was made with options out of range, else ok.
  [[nodiscard]] errc validate() const noexcept { return tandem::validate(options_); }

  /// The vocabulary size given at construction (the drafter never reads token values).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }

  /// Drafts up to req.max_tokens tokens copied from the history (possibly none).
  /// Errors: empty_input (empty history), invalid_argument (max_tokens outside
  /// [1, max_draft_length] or a too small token span, or an invalid drafter).
  [[nodiscard]] result<draft_result> draft(const draft_request& req) const noexcept {
    TANDEM_TRY(validate());
    const std::span<const token_id> h = req.history;
    if (h.empty()) return errc::empty_input;
    if (req.max_tokens == 0 || req.max_tokens > max_draft_length ||
        req.tokens.size() < req.max_tokens)
      return errc::invalid_argument;
    const std::size_t hn = h.size();
    for (std::size_t n = std::min(options_.max_ngram, hn - 1); n >= options_.min_ngram; --n) {
      const std::span<const token_id> key = h.subspan(hn - n);
      // Most recent match first: start positions s with s + n < hn.
      for (std::size_t s = hn - n; s-- > 0;) {
        if (!std::equal(key.begin(), key.end(), h.begin() + static_cast<std::ptrdiff_t>(s)))
          continue;
        const std::size_t from = s + n;
        const std::size_t count = std::min(req.max_tokens, hn - from);
        std::copy_n(h.begin() + static_cast<std::ptrdiff_t>(from), count, req.tokens.begin());
        return draft_result{count, false};
      }
    }
    return draft_result{};
  }

 private:
  std::size_t vocab_;
  prompt_lookup_options options_;
};

/// Drafts with `First` and, when it proposes nothing, with `Second`: e.g. prompt lookup
/// backed by the built-in n-gram model (a model_drafter over an ngram_session). Borrows
/// both, which must have the same vocabulary size and outlive it. Errors: those of the
/// drafter that ran, and vocab_mismatch when the two vocabulary sizes differ.
template <class First, class Second>
class fallback_drafter {
  static_assert(Drafter<First> && Drafter<Second>, "fallback_drafter: both must satisfy Drafter");

 public:
  /// Refers to `first` and `second` (borrowed; they must outlive this drafter).
  fallback_drafter(First& first, Second& second) noexcept : first_(&first), second_(&second) {}

  /// The vocabulary size of `First`.
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return static_cast<std::size_t>(first_->vocab_size());
  }

  /// The first error of `First`'s and `Second`'s validate() (for those that have one;
  /// invalid_argument: made with options out of range), else ok.
  [[nodiscard]] errc validate() const noexcept {
    TANDEM_TRY(detail::validate_of(*first_));
    return detail::validate_of(*second_);
  }

  /// Drafts with `First`; when it succeeds with no token, drafts with `Second`. Errors:
  /// vocab_mismatch (the two vocabulary sizes differ; nothing drafted), else the error of
  /// `First` (Second is then not tried) or of `Second`.
  [[nodiscard]] result<draft_result> draft(const draft_request& req) {
    if (static_cast<std::size_t>(first_->vocab_size()) !=
        static_cast<std::size_t>(second_->vocab_size()))
      return errc::vocab_mismatch;
    const result<draft_result> r = first_->draft(req);
    if (!r || r->count > 0) return r;
    return second_->draft(req);
  }

 private:
  First* first_;
  Second* second_;
};

static_assert(Drafter<prompt_lookup_drafter>);

}  // namespace tandem::inline v0
