// tandem: models combined by logit arithmetic, as LanguageModels themselves. A
// combined_model drives two or more parts (LanguageModels over one vocabulary; wrap a part
// with another tokenizer in mapped_model, see vocab_map.hpp) in lock-step on the same
// tokens and exposes the combination of their next-token logits (combine.hpp): contrastive
// decoding, proxy tuning, weighted log-linear ensembles. It offers rewind when every part
// does and score when every part does, so it works with greedy and sampling decoders, the
// generation loop and the speculative decoder (a small drafter ahead of a contrastive
// target) alike.
//
// Lock-step: every mutating call reaches all parts in order or none of them. When part k
// fails after parts 0..k-1 succeeded, those are rolled back (rewind when they can); if a
// rollback is impossible the combined model reports `errc::out_of_sync`, is marked broken
// (every later mutating call returns out_of_sync), and leaves the parts where they are:
// inspect them through part<i>().
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/contrastive/combine.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// A combination rule over N logit vectors: `validate()` checks its parameters and
/// `combine(inputs, out)` writes the combined logits (errors as the kernels of combine.hpp).
template <class R, std::size_t N>
concept CombinationRule = requires(const R& r, std::span<const std::span<const float>> in,
                                   std::span<float> out) {
  { r.validate() } -> std::same_as<errc>;
  { r.combine(in, out) } -> std::same_as<errc>;
}
&&std::is_nothrow_move_constructible_v<R>;

/// Contrastive decoding over (expert, amateur); see contrastive_scores.
struct contrastive_rule {
  contrastive_options params{};  ///< form, alpha, beta, amateur temperature
  /// validate(params): invalid_argument or invalid_temperature, else ok.
  [[nodiscard]] errc validate() const noexcept { return tandem::validate(params); }
  /// contrastive_scores(in[0] = expert, in[1] = amateur) into `out`; its errors. Exactly
  /// two inputs (TANDEM_ASSERT).
  [[nodiscard]] errc combine(std::span<const std::span<const float>> in,
                             std::span<float> out) const noexcept {
    TANDEM_ASSERT(in.size() == 2, "contrastive_rule combines two models");
    return contrastive_scores(in[0], in[1], params, out);
  }
};

/// Proxy tuning over (large, tuned small, base small); see proxy_tuning_scores.
struct proxy_tuning_rule {
  proxy_tuning_options params{};  ///< the weight of the tuning offset
  /// validate(params): invalid_argument for a non-finite weight, else ok.
  [[nodiscard]] errc validate() const noexcept { return tandem::validate(params); }
  /// proxy_tuning_scores(in[0] = large, in[1] = tuned small, in[2] = base small) into
  /// `out`; its errors. Exactly three inputs (TANDEM_ASSERT).
  [[nodiscard]] errc combine(std::span<const std::span<const float>> in,
                             std::span<float> out) const noexcept {
    TANDEM_ASSERT(in.size() == 3, "proxy_tuning_rule combines three models");
    return proxy_tuning_scores(in[0], in[1], in[2], params, out);
  }
};

/// Weighted log-linear ensemble of N models; see log_linear_scores.
template <std::size_t N>
struct log_linear_rule {
  std::array<float, N> weights{};  ///< one per model, finite and >= 0, at least one > 0
  /// invalid_argument unless every weight is finite and >= 0 and one is > 0, else ok.
  [[nodiscard]] errc validate() const noexcept {
    bool any_positive = false;
    for (const float w : weights) {
      if (!(w >= 0.0f && w <= std::numeric_limits<float>::max())) return errc::invalid_argument;
      any_positive = any_positive || w > 0.0f;
    }
    return any_positive ? errc::ok : errc::invalid_argument;
  }
  /// log_linear_scores(in, weights) into `out`; its errors (size_mismatch when in.size()
  /// != N).
  [[nodiscard]] errc combine(std::span<const std::span<const float>> in,
                             std::span<float> out) const noexcept {
    return log_linear_scores(in, weights, out);
  }
};

/// N >= 2 LanguageModels over one vocabulary, advanced in lock-step, whose next-token
/// logits are `Rule`'s combination of theirs. Itself a LanguageModel; Rewindable when every
/// part is, Scoring when every part is; context_length() is the smallest of the parts'.
///
/// Lock-step: every mutating call reaches all parts in order or none of them. When part k
/// fails after parts 0..k-1 succeeded, those are rolled back (rewound when they can); when
/// a rollback is impossible the call returns `out_of_sync`, the object is marked broken
/// (every later mutating call returns `out_of_sync`) and the parts are left where they
/// are: inspect them through part<I>().
///
/// Ownership: the parts are owned by the caller and must outlive this object (and stay in
/// place); only this object may advance them while it is in use. The combined model owns
/// its buffers: logits (twice, so that a failed call leaves logits() as it was), the token
/// history appended through it, and per-part rows for score(). After reserve() no call
/// allocates. Move-only; not thread-safe.
template <class Rule, LanguageModel... Parts>
requires(sizeof...(Parts) >= 2 && CombinationRule<Rule, sizeof...(Parts)>) class combined_model {
 public:
  /// The number of combined models.
  static constexpr std::size_t part_count = sizeof...(Parts);

  /// Combines `parts` with `rule`. Errors: those of rule.validate() (invalid_argument,
  /// invalid_temperature), vocab_mismatch (the parts' vocabulary sizes differ: wrap a part
  /// in mapped_model), empty_input (vocabulary of size 0), out_of_sync (the parts hold
  /// contexts of different sizes), out_of_memory; when the parts already hold a context,
  /// the errors of combining their current logits. Size 0: logits() is all -inf until the
  /// first append. The parts are not modified.
  [[nodiscard]] static result<combined_model> create(Rule rule, Parts&... parts) {
    return create(nullptr, std::move(rule), parts...);
  }

  /// As above, with the details of a failure in `*info` (when not null): for
  /// `vocab_mismatch`, which part and both vocabulary sizes; for `out_of_sync`, which part
  /// and both context sizes. (`info` comes first: a parameter pack must be last.)
  [[nodiscard]] static result<combined_model> create(error_info* info, Rule rule, Parts&... parts) {
    if (const errc e = rule.validate(); e != errc::ok)
      return detail::fail(info, e, "combined model: the combination rule's options are invalid");
    const std::size_t v = static_cast<std::size_t>(std::get<0>(std::tie(parts...)).vocab_size());
    if (v == 0)
      return detail::fail(info, errc::empty_input,
                          "combined model: part 0 has an empty vocabulary");
    std::size_t i = 0, bad = 0, got = 0;
    if ((((static_cast<std::size_t>(parts.vocab_size()) != v)
              ? (bad = i, got = static_cast<std::size_t>(parts.vocab_size()), true)
              : (++i, false)) ||
         ...))
      return detail::fail(info, errc::vocab_mismatch,
                          "combined model: part %zu has vocabulary %zu, part 0 has %zu", bad, got,
                          v);
    const std::size_t n = static_cast<std::size_t>(std::get<0>(std::tie(parts...)).size());
    i = 0;
    if ((((static_cast<std::size_t>(parts.size()) != n)
              ? (bad = i, got = static_cast<std::size_t>(parts.size()), true)
              : (++i, false)) ||
         ...))
      return detail::fail(info, errc::out_of_sync,
                          "combined model: part %zu holds %zu tokens, part 0 holds %zu", bad, got,
                          n);
    combined_model m(std::move(rule), v, parts...);
    if (n > 0) {
      TANDEM_TRY(m.combine_current(m.logits_));
    }
    return m;
  }

  ///@{
  /// Moves the rule, the references to the parts and the buffers; a moved-from object may
  /// only be destroyed or assigned to.
  combined_model(combined_model&&) noexcept = default;
  combined_model& operator=(combined_model&&) noexcept = default;
  ///@}
  combined_model(const combined_model&) = delete;
  combined_model& operator=(const combined_model&) = delete;
  ~combined_model() = default;

  /// The shared vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// Tokens in the context (every part holds the same number).
  [[nodiscard]] std::size_t size() const noexcept {
    return static_cast<std::size_t>(std::get<0>(parts_)->size());
  }
  /// The smallest context length of the parts (SIZE_MAX when none reports one).
  [[nodiscard]] std::size_t context_length() const noexcept {
    std::size_t c = std::numeric_limits<std::size_t>::max();
    std::apply([&](const auto*... p) { ((c = std::min(c, context_length_of(*p))), ...); }, parts_);
    return c;
  }
  /// The combined next-token logits (vocab_size() entries; -inf = masked). Valid after a
  /// successful append or score, until the next mutating call.
  [[nodiscard]] std::span<const float> logits() const noexcept { return logits_; }
  /// The tokens appended through this object and not rewound, oldest first (a context the
  /// parts held before create() is not included).
  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return history_; }
  /// True once a rollback failed (see the class comment); every mutating call then
  /// returns out_of_sync.
  [[nodiscard]] bool broken() const noexcept { return broken_; }
  /// Part I, as passed to create().
  template <std::size_t I>
  [[nodiscard]] auto& part() const noexcept {
    return *std::get<I>(parts_);
  }
  ///@{
  /// The combination rule (its parameters may be changed between calls; an invalid change
  /// makes the next append fail with the rule's error, leaving the state as before).
  [[nodiscard]] Rule& rule() noexcept { return rule_; }
  [[nodiscard]] const Rule& rule() const noexcept { return rule_; }
  ///@}

  /// Reserves room for `tokens` tokens of history and for score() calls of up to
  /// `score_tokens` tokens, so that later calls within those bounds never allocate.
  void reserve(std::size_t tokens, std::size_t score_tokens = 0) {
    history_.reserve(tokens);
    for (auto& r : rows_) r.reserve(score_tokens * vocab_);
  }

  /// Appends `t` to every part, then combines their logits. Errors, leaving every part and
  /// this object as before the call: empty_input, invalid_token (an id outside the
  /// vocabulary, checked before any part is touched), a part's append error, the rule's
  /// errors (non_finite, no_candidates, ...); out_of_sync when a rollback was impossible
  /// (a part cannot rewind), after which the parts' positions may differ.
  [[nodiscard]] errc append(std::span<const token_id> t) {
    TANDEM_TRY(check(t));
    std::size_t done = 0;
    errc e = errc::ok;
    visit([&](auto& m, std::size_t) {
      if (ok(e)) {
        e = m.append(t);
        if (ok(e)) ++done;
      }
    });
    if (!ok(e)) return roll_back(done, t.size(), e);
    e = combine_current(staging_);
    if (!ok(e)) return roll_back(part_count, t.size(), e);
    std::swap(logits_, staging_);
    history_.insert(history_.end(), t.begin(), t.end());
    return errc::ok;
  }

  /// Drops the last `n` tokens from every part. Errors: out_of_sync (broken),
  /// rewind_out_of_range (n > size(); nothing changes), a part's rewind error: the parts
  /// already rewound are then restored by appending the dropped tokens again (possible
  /// when they were appended through this object), else out_of_sync. logits() is
  /// unspecified after a successful rewind, until the next append.
  [[nodiscard]] errc rewind(std::size_t n) requires(Rewindable<Parts>&&...) {
    if (broken_) return errc::out_of_sync;
    if (n > size()) return errc::rewind_out_of_range;
    std::size_t done = 0;
    errc e = errc::ok;
    visit([&](auto& m, std::size_t) {
      if (ok(e)) {
        e = m.rewind(n);
        if (ok(e)) ++done;
      }
    });
    if (!ok(e)) {
      if (done == 0) return e;
      if (n > history_.size()) return mark_broken();
      const std::span<const token_id> tail(history_.data() + history_.size() - n, n);
      bool restored = true;
      visit([&](auto& m, std::size_t k) {
        if (k < done && restored) restored = ok(m.append(tail));
      });
      return restored ? e : mark_broken();
    }
    history_.resize(history_.size() - std::min(n, history_.size()));
    return errc::ok;
  }

  /// Appends `t` and writes into rows[i * vocab_size(), ...) the combined logits after
  /// t[0..i], for every i, from one score() call per part; logits() then equals the last
  /// row. Errors, leaving everything as before: those of append, size_mismatch
  /// (rows.size() != t.size() * vocab_size()), a part's score error; out_of_sync as for
  /// append.
  [[nodiscard]] errc score(std::span<const token_id> t,
                           std::span<float> rows) requires(Scoring<Parts>&&...) {
    TANDEM_TRY(check(t));
    const std::size_t v = vocab_;
    if (rows.size() != t.size() * v) return errc::size_mismatch;
    for (auto& r : rows_)
      if (r.size() < rows.size()) r.resize(rows.size());
    std::size_t done = 0;
    errc e = errc::ok;
    visit([&](auto& m, std::size_t k) {
      if (ok(e)) {
        e = m.score(t, std::span<float>(rows_[k].data(), rows.size()));
        if (ok(e)) ++done;
      }
    });
    if (!ok(e)) return roll_back(done, t.size(), e);
    std::array<std::span<const float>, part_count> in{};
    for (std::size_t i = 0; i < t.size() && ok(e); ++i) {
      for (std::size_t k = 0; k < part_count; ++k)
        in[k] = std::span<const float>(rows_[k].data() + i * v, v);
      e = rule_.combine(in, rows.subspan(i * v, v));
    }
    if (!ok(e)) return roll_back(part_count, t.size(), e);
    std::memcpy(logits_.data(), rows.data() + (t.size() - 1) * v, v * sizeof(float));
    history_.insert(history_.end(), t.begin(), t.end());
    return errc::ok;
  }

 private:
  combined_model(Rule rule, std::size_t v, Parts&... parts)
      : rule_(std::move(rule)),
        parts_(&parts...),
        vocab_(v),
        logits_(v, -std::numeric_limits<float>::infinity()),
        staging_(v, 0.0f) {}

  template <class F>
  void visit(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(*std::get<I>(parts_), I), ...); }
    (std::index_sequence_for<Parts...>{});
  }

  errc check(std::span<const token_id> t) const noexcept {
    if (broken_) return errc::out_of_sync;
    if (t.empty()) return errc::empty_input;
    for (const token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab_) return errc::invalid_token;
    return errc::ok;
  }

  errc mark_broken() noexcept {
    broken_ = true;
    return errc::out_of_sync;
  }

  // Rewinds the first `count` parts by `n` tokens; returns `e` when all of them could,
  // out_of_sync (and marks this object broken) otherwise.
  errc roll_back(std::size_t count, std::size_t n, errc e) {
    bool fine = true;
    visit([&](auto& m, std::size_t k) {
      if (k >= count || !fine) return;
      if constexpr (Rewindable<std::remove_reference_t<decltype(m)>>) {
        fine = ok(m.rewind(n));
      } else {
        fine = false;
      }
    });
    return fine ? e : mark_broken();
  }

  errc combine_current(std::vector<float>& out) const {
    std::array<std::span<const float>, part_count> in{};
    std::size_t k = 0;
    std::apply([&](const auto*... p) { ((in[k++] = p->logits()), ...); }, parts_);
    for (const auto& s : in)
      if (s.size() != vocab_) return errc::size_mismatch;
    return rule_.combine(in, out);
  }

  Rule rule_;
  std::tuple<Parts*...> parts_;
  std::size_t vocab_;
  std::vector<float> logits_;
  std::vector<float> staging_;
  std::vector<token_id> history_;
  std::array<std::vector<float>, part_count> rows_{};
  bool broken_ = false;
};

/// Contrastive decoding (Li et al. 2022 or O'Brien & Lewis 2023) of an expert and an
/// amateur as one LanguageModel.
template <LanguageModel Expert, LanguageModel Amateur>
using contrastive_model = combined_model<contrastive_rule, Expert, Amateur>;

/// Proxy tuning (Liu et al. 2024) of a large model by a tuned/base pair of small ones.
template <LanguageModel Large, LanguageModel Tuned, LanguageModel Base>
using proxy_tuned_model = combined_model<proxy_tuning_rule, Large, Tuned, Base>;

/// Weighted log-linear ensemble of N >= 2 models.
template <LanguageModel... Models>
using log_linear_ensemble = combined_model<log_linear_rule<sizeof...(Models)>, Models...>;

/// Contrastive decoding of `expert` against `amateur` (not owned; see combined_model).
/// Errors: those of combined_model::create, e.g. invalid_argument for alpha outside
/// (0, 1] or a negative beta, invalid_temperature for tau <= 0, vocab_mismatch (both
/// vocabulary sizes in `*info` when not null).
template <LanguageModel Expert, LanguageModel Amateur>
[[nodiscard]] result<contrastive_model<Expert, Amateur>> make_contrastive(
    Expert& expert, Amateur& amateur, const contrastive_options& params = {},
    error_info* info = nullptr) {
  const auto ev = static_cast<std::size_t>(expert.vocab_size());
  const auto av = static_cast<std::size_t>(amateur.vocab_size());
  if (ev != av)
    return detail::fail(info, errc::vocab_mismatch,
                        "expert vocabulary %zu, amateur vocabulary %zu (map one with mapped_model)",
                        ev, av);
  auto made = contrastive_model<Expert, Amateur>::create(contrastive_rule{params}, expert, amateur);
  if (!made) return detail::fail(info, made.error());
  return made;
}

/// Proxy tuning: logits s_large + w (s_tuned - s_base). Models not owned. Errors: those of
/// combined_model::create (invalid_argument for a non-finite weight, vocab_mismatch with
/// the three vocabulary sizes in `*info` when not null, ...).
template <LanguageModel Large, LanguageModel Tuned, LanguageModel Base>
[[nodiscard]] result<proxy_tuned_model<Large, Tuned, Base>> make_proxy_tuning(
    Large& large, Tuned& tuned, Base& base, const proxy_tuning_options& params = {},
    error_info* info = nullptr) {
  const auto lv = static_cast<std::size_t>(large.vocab_size());
  const auto tv = static_cast<std::size_t>(tuned.vocab_size());
  const auto bv = static_cast<std::size_t>(base.vocab_size());
  if (lv != tv || lv != bv)
    return detail::fail(info, errc::vocab_mismatch,
                        "large vocabulary %zu, tuned vocabulary %zu, base vocabulary %zu", lv, tv,
                        bv);
  return proxy_tuned_model<Large, Tuned, Base>::create(proxy_tuning_rule{params}, large, tuned,
                                                       base);
}

/// Weighted log-linear ensemble sum_k w_k s_k of `models` (not owned). Errors: those of
/// combined_model::create (invalid_argument for a negative or non-finite weight or all
/// weights zero, vocab_mismatch, ...).
template <LanguageModel... Models>
[[nodiscard]] result<log_linear_ensemble<Models...>> make_log_linear_ensemble(
    const std::array<float, sizeof...(Models)>& weights, Models&... models) {
  return log_linear_ensemble<Models...>::create(log_linear_rule<sizeof...(Models)>{weights},
                                                models...);
}

/// As above, with the details of a failure in `*info` (when not null; see
/// combined_model::create). `info` comes first: a parameter pack must be last.
template <LanguageModel... Models>
[[nodiscard]] result<log_linear_ensemble<Models...>> make_log_linear_ensemble(
    error_info* info, const std::array<float, sizeof...(Models)>& weights, Models&... models) {
  return log_linear_ensemble<Models...>::create(info, log_linear_rule<sizeof...(Models)>{weights},
                                                models...);
}

}  // namespace tandem::inline v0
