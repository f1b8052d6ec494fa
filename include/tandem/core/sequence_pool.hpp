// tandem: sequence_pool, any single-sequence LanguageModel driven as a MultiSequenceModel.
/// \file
/// `sequence_pool` holds one session per open sequence, made by a factory, and loops over
/// them: no batching, but generic code written against MultiSequenceModel (the scheduler,
/// k samples from one prefill) then works with every backend. Batching backends
/// (llama_multi_session, ngram_multi_session) implement the concept natively.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

namespace detail {
template <class T>
struct unwrap_result {
  using type = T;
};
template <class T>
struct unwrap_result<result<T>> {
  using type = T;
};
}  // namespace detail

/// The session type a sequence_pool factory makes: `F()` returns a `Model` or a
/// `result<Model>`.
template <class F>
using factory_model_t = typename detail::unwrap_result<std::invoke_result_t<F&>>::type;

/// A MultiSequenceModel over fresh sessions of any single-sequence LanguageModel.
///
/// Each open sequence is one session made by `Factory` (called with no arguments; it
/// returns a `Model` or a `result<Model>`, each a fresh, empty session of the same
/// model). The pool keeps each sequence's tokens, so it can fork (a fresh session fed the
/// parent's tokens: a recompute, not a shared prefix), rewind models without rewind (a
/// fresh session fed the kept prefix) and roll back a failed batch. `append` loops over
/// the batch's sessions, one append each: no forward pass is shared.
///
/// Errors are those of MultiSequenceModel; an error the session or the factory returns
/// (`decode_failed`, `out_of_memory`, ...) is passed on. A failed batch entry rolls the
/// entries before it back (rewind and a re-append of the last kept token, or a fresh
/// session fed the kept tokens), so the other sequences keep their tokens and logits; if
/// that rollback fails too, the sequence is closed and `last_error()` names it.
///
/// Allocation: open and fork make a session (the factory allocates); each sequence's
/// token list is reserved at open, so appends within that reserve allocate only what
/// the session's own append does. Scoring when Model is Scoring; `context_length()`
/// when Model reports one.
template <class Factory>
requires LanguageModel<factory_model_t<Factory>> &&
    std::is_nothrow_move_constructible_v<factory_model_t<Factory>>
class sequence_pool {
 public:
  /// The single-sequence session type.
  using model_type = factory_model_t<Factory>;

  /// A pool of up to `max_sequences` sequences over sessions made by `factory`. Makes one
  /// session at once to learn the vocabulary size and context length (it serves the
  /// first open). Errors: `invalid_argument` when max_sequences is 0; what the factory
  /// returns. `info` (when not null) receives the details.
  [[nodiscard]] static result<sequence_pool> create(Factory factory, std::size_t max_sequences,
                                                    error_info* info = nullptr) {
    if (max_sequences == 0 || max_sequences > static_cast<std::size_t>(INT32_MAX))
      return detail::fail(info, errc::invalid_argument,
                          "sequence_pool: max_sequences %zu outside [1, 2^31)", max_sequences);
    sequence_pool p(std::move(factory), max_sequences);
    result<model_type> probe = p.make();
    if (!probe) return detail::fail(info, probe.error(), "sequence_pool: the factory failed");
    p.vocab_ = static_cast<std::size_t>(probe->vocab_size());
    p.context_length_ = context_length_of(*probe);
    p.spare_.emplace(std::move(*probe));
    return p;
  }

  /// The sessions' vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// The most sequences open at once.
  [[nodiscard]] std::size_t max_sequences() const noexcept { return slots_.size(); }
  /// The most tokens one sequence holds: the session's context_length().
  [[nodiscard]] std::size_t context_length() const noexcept requires HasContextLength<model_type> {
    return context_length_;
  }
  /// Details of the last failed call (core/error_info.hpp).
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

  /// True when `s` is open.
  [[nodiscard]] bool is_open(seq_id s) const noexcept { return slots_.is_open(s); }
  /// Tokens in `s`; 0 when `s` is not open.
  [[nodiscard]] std::size_t size(seq_id s) const noexcept {
    return is_open(s) ? slot(s).tokens.size() : 0;
  }
  /// The tokens of `s`, oldest first (empty when not open); valid until `s` changes.
  [[nodiscard]] std::span<const token_id> tokens(seq_id s) const noexcept {
    return is_open(s) ? std::span<const token_id>(slot(s).tokens) : std::span<const token_id>();
  }
  /// The logits of `s`'s session (see MultiSequenceModel); empty when not open.
  [[nodiscard]] std::span<const float> logits(seq_id s) const noexcept {
    if (!is_open(s)) return {};
    return slot(s).session->logits();
  }
  /// The session behind `s` (precondition: is_open(s)). Changing it directly breaks the
  /// pool's record of its tokens.
  [[nodiscard]] const model_type& session(seq_id s) const noexcept {
    TANDEM_ASSERT(is_open(s), "sequence_pool::session: sequence not open");
    return *slot(s).session;
  }

  /// Opens an empty sequence (a fresh session). Errors: `no_free_sequence`; what the
  /// factory returns (nothing opened).
  [[nodiscard]] result<seq_id> open() {
    const result<seq_id> s_free = slots_.find_free("open", error_);
    if (!s_free) return s_free.error();
    const seq_id s = *s_free;
    result<model_type> m = take_fresh();
    if (!m) return detail::fail(&error_, m.error(), "open: the factory failed");
    entry& e = slot(s);
    e.session.emplace(std::move(*m));
    e.tokens.clear();
    e.tokens.reserve(token_reserve());
    return s;
  }

  /// Closes `s`, destroying its session. Errors: `invalid_sequence`.
  [[nodiscard]] errc close(seq_id s) {
    TANDEM_TRY(slots_.require_open(s, "close", error_));
    slot(s).session.reset();
    slot(s).tokens.clear();
    return errc::ok;
  }

  /// Appends each entry's tokens to its sequence's session, one after another. Errors
  /// and state left: MultiSequenceModel's (all-or-nothing; see the class comment for the
  /// rollback).
  [[nodiscard]] errc append(std::span<const seq_tokens> batch) {
    TANDEM_TRY(validate(batch));
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const seq_tokens& b = batch[i];
      if (b.tokens.empty()) continue;
      entry& e = slot(b.seq);
      if (const errc r = e.session->append(b.tokens); r != errc::ok) {
        const std::size_t closed = roll_back(batch.first(i));
        return detail::fail(&error_, r,
                            "append: sequence %d failed (%s); the %zu entries before it rolled "
                            "back, %zu of them closed as they could not be restored",
                            b.seq, to_string(r).data(), i, closed);
      }
      e.tokens.insert(e.tokens.end(), b.tokens.begin(), b.tokens.end());
    }
    return errc::ok;
  }

  /// Appends `t` to `s` and writes the logits after every prefix of `t` into `rows`
  /// (the session's score). Errors: those of a one-entry append and `size_mismatch`.
  [[nodiscard]] errc score(seq_id s, std::span<const token_id> t,
                           std::span<float> rows) requires Scoring<model_type> {
    const seq_tokens one{s, t};
    TANDEM_TRY(validate(std::span<const seq_tokens>(&one, 1)));
    if (rows.size() != t.size() * vocab_)
      return detail::fail(&error_, errc::size_mismatch, "score: %zu rows for %zu tokens",
                          rows.size(), t.size());
    if (t.empty()) return errc::ok;
    entry& e = slot(s);
    if (const errc r = e.session->score(t, rows); r != errc::ok)
      return detail::fail(&error_, r, "score: sequence %d failed", s);
    e.tokens.insert(e.tokens.end(), t.begin(), t.end());
    return errc::ok;
  }

  /// Appends every entry, the last `scored[i]` tokens of entry i through the session's
  /// score (rows into `rows`, entries in order), the tokens before them through its
  /// append: one entry after another (MultiSequenceBatchScoring). Errors and state left:
  /// append's (all-or-nothing, rolled back as append does), `size_mismatch`.
  [[nodiscard]] errc score(std::span<const seq_tokens> batch, std::span<const std::size_t> scored,
                           std::span<float> rows) requires Scoring<model_type> {
    TANDEM_TRY(validate(batch));
    TANDEM_TRY(detail::check_score_rows(batch, scored, vocab_, rows.size(), &error_));
    std::size_t at = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const seq_tokens& b = batch[i];
      const std::size_t head = b.tokens.size() - scored[i];
      const seq_tokens first{b.seq, b.tokens.first(head)};
      entry& e = slot(b.seq);
      errc r = head == 0 ? errc::ok : e.session->append(first.tokens);
      const bool head_done = head > 0 && r == errc::ok;
      if (head_done) e.tokens.insert(e.tokens.end(), first.tokens.begin(), first.tokens.end());
      if (r == errc::ok && scored[i] > 0)
        r = e.session->score(b.tokens.subspan(head), rows.subspan(at, scored[i] * vocab_));
      if (r != errc::ok) {
        std::size_t closed = roll_back(batch.first(i));
        if (head_done) closed += roll_back(std::span<const seq_tokens>(&first, 1));
        return detail::fail(&error_, r,
                            "score: sequence %d failed (%s); the %zu entries before it rolled "
                            "back, %zu of them closed as they could not be restored",
                            b.seq, to_string(r).data(), i, closed);
      }
      e.tokens.insert(e.tokens.end(), b.tokens.begin() + static_cast<std::ptrdiff_t>(head),
                      b.tokens.end());
      at += scored[i] * vocab_;
    }
    return errc::ok;
  }

  /// Drops the last `n` tokens of `s`: the session's rewind when it has one and it
  /// succeeds, else a fresh session fed the kept tokens. Errors: `invalid_sequence`,
  /// `rewind_out_of_range`, what the factory or the re-append returns (then `s` is as
  /// before).
  [[nodiscard]] errc rewind(seq_id s, std::size_t n) {
    TANDEM_TRY(slots_.require_open(s, "rewind", error_));
    entry& e = slot(s);
    if (n > e.tokens.size())
      return detail::fail(&error_, errc::rewind_out_of_range, "rewind: %zu tokens of %zu", n,
                          e.tokens.size());
    const std::size_t keep = e.tokens.size() - n;
    if constexpr (Rewindable<model_type>) {
      if (e.session->rewind(n) == errc::ok) {
        e.tokens.resize(keep);
        return errc::ok;
      }
    }
    result<model_type> m = rebuild(std::span<const token_id>(e.tokens).first(keep));
    if (!m) return detail::fail(&error_, m.error(), "rewind: rebuilding sequence %d failed", s);
    e.session.emplace(std::move(*m));
    e.tokens.resize(keep);
    return errc::ok;
  }

  /// Opens a new sequence holding the tokens of `s`: a fresh session fed them (a
  /// recompute; its logits equal those of `s` when those are valid). Errors:
  /// `invalid_sequence`, `no_free_sequence`, what the factory or the append returns
  /// (nothing opened).
  [[nodiscard]] result<seq_id> fork(seq_id s) {
    const result<seq_id> child_free = slots_.fork_target(s, error_);
    if (!child_free) return child_free.error();
    const seq_id child = *child_free;
    result<model_type> m = rebuild(slot(s).tokens);
    if (!m) return detail::fail(&error_, m.error(), "fork: feeding sequence %d's tokens failed", s);
    entry& c = slot(child);
    c.session.emplace(std::move(*m));
    c.tokens.reserve(token_reserve());
    c.tokens.assign(slot(s).tokens.begin(), slot(s).tokens.end());
    return child;
  }

 private:
  struct entry {
    std::optional<model_type> session;
    [[nodiscard]] bool in_use() const noexcept { return session.has_value(); }
    std::vector<token_id> tokens;
  };

  sequence_pool(Factory factory, std::size_t max_sequences)
      : factory_(std::move(factory)), slots_(max_sequences) {}

  entry& slot(seq_id s) noexcept { return slots_[static_cast<std::size_t>(s)]; }
  const entry& slot(seq_id s) const noexcept { return slots_[static_cast<std::size_t>(s)]; }

  result<model_type> make() {
    if constexpr (std::same_as<std::invoke_result_t<Factory&>, model_type>)
      return result<model_type>(std::in_place, factory_());
    else
      return factory_();
  }
  result<model_type> take_fresh() {
    if (spare_.has_value()) {
      result<model_type> m(std::in_place, std::move(*spare_));
      spare_.reset();
      return m;
    }
    return make();
  }
  // A fresh session fed `t`.
  result<model_type> rebuild(std::span<const token_id> t) {
    result<model_type> m = take_fresh();
    if (!m || t.empty()) return m;
    if (const errc r = m->append(t); r != errc::ok) return r;
    return m;
  }

  std::size_t token_reserve() const noexcept {
    return context_length_ < 4096 ? context_length_ : 4096;
  }

  errc validate(std::span<const seq_tokens> batch) {
    return detail::validate_batch(
        batch, vocab_, context_length_, [this](seq_id s) { return is_open(s); },
        [this](seq_id s) { return slot(s).tokens.size(); }, &error_);
  }

  // Restores the sequences of `done` (entries already appended) to their tokens and
  // logits before the call; closes any that cannot be restored and counts them.
  std::size_t roll_back(std::span<const seq_tokens> done) {
    std::size_t closed = 0;
    for (const seq_tokens& b : done) {
      if (b.tokens.empty()) continue;
      entry& e = slot(b.seq);
      const std::size_t keep = e.tokens.size() - b.tokens.size();
      bool restored = false;
      if constexpr (Rewindable<model_type>) {
        // Rewind one token further and re-append it, so the logits are recomputed too.
        const std::size_t back = b.tokens.size() + (keep > 0 ? 1 : 0);
        restored = e.session->rewind(back) == errc::ok &&
                   (keep == 0 || e.session->append(std::span<const token_id>(
                                     e.tokens.data() + keep - 1, 1)) == errc::ok);
      }
      if (!restored) {
        result<model_type> m = rebuild(std::span<const token_id>(e.tokens).first(keep));
        if (m) {
          e.session.emplace(std::move(*m));
          restored = true;
        }
      }
      if (restored) {
        e.tokens.resize(keep);
      } else {
        e.session.reset();
        e.tokens.clear();
        ++closed;
      }
    }
    return closed;
  }

  Factory factory_;
  detail::sequence_table<entry> slots_;
  std::optional<model_type> spare_;
  std::size_t vocab_ = 0;
  std::size_t context_length_ = static_cast<std::size_t>(-1);
  error_info error_;
};

}  // namespace tandem::inline v0
