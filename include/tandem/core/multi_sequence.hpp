// tandem: many sequences in one model. The MultiSequenceModel concept, its optional
// capabilities, and `sequence<M>`, a handle that makes one sequence a LanguageModel.
/// \file
/// One model context (one KV cache) holds up to `max_sequences()` independent token
/// sequences. `append` feeds tokens to several of them in one call, which a batching
/// backend runs as one forward pass; `logits(s)` reads each sequence's next-token logits
/// in place; `fork(s)` makes a new sequence that shares the prefix of `s` without
/// recomputing it. docs/batching.md describes the concept, the handle, the loop adapter
/// (core/sequence_pool.hpp) and the backends.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Identifies one open sequence of a multi-sequence model. Ids are small non-negative
/// integers below `max_sequences()`; a closed id may be handed out again by `open` or
/// `fork`.
using seq_id = std::int32_t;

/// One entry of a batched append: tokens to add to the end of sequence `seq`. The tokens
/// are only read during the call.
struct seq_tokens {
  seq_id seq = -1;                     ///< the sequence to extend
  std::span<const token_id> tokens{};  ///< the tokens, oldest first
};

namespace detail {

/// The sequence slots of a multi-sequence model, shared by every implementation: which
/// ids are open, the first free one, and the named errors for both. `Slot` tells whether
/// it is in use through `bool in_use() const noexcept`.
template <class Slot>
class sequence_table {
 public:
  sequence_table() = default;
  explicit sequence_table(std::size_t n) : slots_(n) {}

  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
  [[nodiscard]] bool is_open(seq_id s) const noexcept {
    return s >= 0 && static_cast<std::size_t>(s) < slots_.size() &&
           slots_[static_cast<std::size_t>(s)].in_use();
  }
  [[nodiscard]] Slot& operator[](std::size_t i) noexcept { return slots_[i]; }
  [[nodiscard]] const Slot& operator[](std::size_t i) const noexcept { return slots_[i]; }
  [[nodiscard]] auto begin() noexcept { return slots_.begin(); }
  [[nodiscard]] auto end() noexcept { return slots_.end(); }

  /// ok when `s` is open; else `invalid_sequence`, recorded in `error` for operation `op`.
  [[nodiscard]] errc require_open(seq_id s, const char* op, error_info& error) const noexcept {
    if (is_open(s)) return errc::ok;
    return fail(&error, errc::invalid_sequence, "%s: sequence %d is not open", op, s);
  }
  /// The id a fork of `s` gets: `s` must be open (`invalid_sequence`) and an id free
  /// (`no_free_sequence`); errors are recorded in `error`.
  [[nodiscard]] result<seq_id> fork_target(seq_id s, error_info& error) const noexcept {
    TANDEM_TRY(require_open(s, "fork", error));
    return find_free("fork", error);
  }
  /// The lowest free id; else `no_free_sequence`, recorded in `error` for operation `op`.
  [[nodiscard]] result<seq_id> find_free(const char* op, error_info& error) const noexcept {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].in_use()) return static_cast<seq_id>(i);
    return fail(&error, errc::no_free_sequence, "%s: all %zu sequences are open", op,
                slots_.size());
  }

 private:
  std::vector<Slot> slots_;
};

}  // namespace detail

/// Up to `max_sequences()` independent token sequences over one model context.
///
/// Contract (every backend, every error case; the conformance suite checks it:
/// testing/conformance.hpp, `check_multi_sequence_model`):
/// - `open()` returns a new, empty sequence. Errors: `no_free_sequence` when
///   max_sequences() are open.
/// - `close(s)` frees `s` and its cache entries; its id may be reused. Errors:
///   `invalid_sequence` when `s` is not open.
/// - `is_open(s)`: whether `s` names an open sequence (any `seq_id` is a valid argument).
/// - `size(s)`: tokens held by `s`; 0 when `s` is not open.
/// - `append(batch)` adds each entry's tokens to the end of its sequence, in one call (a
///   batching backend: one forward pass for the whole batch), and computes the
///   next-token logits of every sequence that received at least one token. An entry
///   with no tokens changes nothing; an empty batch succeeds and changes nothing. It is
///   all-or-nothing: on error no sequence changed (tokens, size() and logits() are as
///   before). Errors: `invalid_sequence` (an entry names a sequence that is not open),
///   `invalid_argument` (a sequence appears in two entries), `invalid_token` (an id
///   outside [0, vocab_size())), `context_overflow` (a sequence would pass its
///   per-sequence context length, or the batch would pass the model's total capacity),
///   `decode_failed` (the backend's forward pass failed: every sequence of the batch is
///   rolled back to its state before the call, the others never changed; `last_error()`
///   names the sequences of the batch). A backend whose rollback itself fails says so
///   in its own documentation and in `last_error()`.
/// - `logits(s)`: the next-token logits of `s`, `vocab_size()` entries read in place (no
///   copy). Valid after an append that gave `s` at least one token, or after `s` was
///   forked from a sequence whose logits were valid; it stays valid, with the same
///   values, until the next call that changes `s` itself (an append that includes it,
///   rewind, close): calls on other sequences leave it alone. An empty span when `s` is
///   not open; unspecified (possibly empty) for a sequence that has never received a
///   token or was just rewound.
/// - `rewind(s, n)` drops the last `n` tokens of `s`. Errors: `invalid_sequence`,
///   `rewind_out_of_range` (n > size(s)), `rewind_failed` (the backend cannot; `s` is
///   unchanged).
/// - `fork(s)` opens a new sequence holding the same tokens as `s` and, when those of
///   `s` are valid, the same logits; a batching backend shares the cached prefix instead
///   of recomputing it. The two evolve independently afterwards. Errors:
///   `invalid_sequence`, `no_free_sequence`, `context_overflow` (the total capacity
///   cannot hold the copy, in a backend that does not share cells).
/// Calls on one sequence never change another: an error leaves every other sequence
/// untouched. One model per thread, like every tandem model.
template <class M>
concept MultiSequenceModel = requires(M& m, const M& cm, seq_id s, std::size_t n,
                                      std::span<const seq_tokens> batch) {
  { cm.vocab_size() } -> std::convertible_to<std::size_t>;
  { cm.max_sequences() } -> std::convertible_to<std::size_t>;
  { m.open() } -> std::same_as<result<seq_id>>;
  { m.close(s) } -> std::same_as<errc>;
  { cm.is_open(s) } -> std::same_as<bool>;
  { cm.size(s) } -> std::convertible_to<std::size_t>;
  { m.append(batch) } -> std::same_as<errc>;
  { cm.logits(s) } -> std::same_as<std::span<const float>>;
  { m.rewind(s, n) } -> std::same_as<errc>;
  { m.fork(s) } -> std::same_as<result<seq_id>>;
};

/// Optional capability: `score(s, t, rows)` appends `t` to sequence `s` and writes, for
/// every position i of `t`, the next-token logits after `t[0..i]` into
/// `rows[i * vocab_size(), ...)`, in one forward pass; logits(s) then equals the last
/// row. Errors: those of a one-entry append, and `size_mismatch` when `rows.size()` is
/// not `t.size() * vocab_size()`; on error `s` is as before.
template <class M>
concept MultiSequenceScoring = MultiSequenceModel<M> &&
    requires(M& m, seq_id s, std::span<const token_id> t, std::span<float> rows) {
  { m.score(s, t, rows) } -> std::same_as<errc>;
};

/// Optional capability: batched scoring, the target pass of batched speculative decoding
/// (batch/speculative.hpp). `score(batch, scored, rows)` appends every entry of `batch` as
/// `append(batch)` does, in one call (a batching backend: one forward pass), and writes,
/// for the last `scored[i]` tokens of entry i, the next-token logits after each of them
/// into `rows`: entries in order, `vocab_size()` floats per row. `scored[i] ==
/// batch[i].tokens.size()` gives rows for every token, equal to a per-sequence
/// `score(s, t, rows)` of that entry. logits(s) is then as after append (the entry's last
/// row when it has one). All-or-nothing like append: on error no sequence changed (rows
/// unspecified). Errors: append's, and `size_mismatch` when `scored.size() !=
/// batch.size()`, some `scored[i]` exceeds its entry's tokens, or `rows.size()` is not
/// `sum(scored) * vocab_size()`.
template <class M>
concept MultiSequenceBatchScoring = MultiSequenceModel<M> &&
    requires(M& m, std::span<const seq_tokens> batch, std::span<const std::size_t> scored,
             std::span<float> rows) {
  { m.score(batch, scored, rows) } -> std::same_as<errc>;
};

/// Optional capabilities, detected: `context_length()`, the most tokens one sequence can
/// hold (detect it with HasContextLength from core/concepts.hpp, the same name as for one
/// sequence), and those below.
///
/// `total_capacity()`, the most tokens all sequences together can
/// hold in the shared cache (a forked prefix counts once where the backend shares it),
/// and `used_capacity()`, how many they hold now.
template <class M>
concept HasTotalCapacity = requires(const M& cm) {
  { cm.total_capacity() } -> std::convertible_to<std::size_t>;
  { cm.used_capacity() } -> std::convertible_to<std::size_t>;
};

/// Optional capability: `last_error()`, the details of the object's last failed call
/// (core/error_info.hpp).
template <class M>
concept HasLastError = requires(const M& cm) {
  { cm.last_error() } -> std::convertible_to<const error_info&>;
};

namespace detail {

/// Checks a batch before any sequence changes, in MultiSequenceModel's order of errors:
/// invalid_sequence, invalid_argument (a sequence twice), invalid_token, context_overflow
/// (size(s) + tokens > context_length). `is_open(s)` and `size(s)` query the model; the
/// details go to `*info`. Shared by the backends.
template <class IsOpen, class Size>
[[nodiscard]] errc validate_batch(std::span<const seq_tokens> batch, std::size_t vocab,
                                  std::size_t context_length, IsOpen is_open, Size size,
                                  error_info* info) noexcept {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const seq_tokens& b = batch[i];
    if (!is_open(b.seq))
      return fail(info, errc::invalid_sequence, "append: sequence %d is not open", b.seq);
    for (std::size_t j = 0; j < i; ++j)
      if (batch[j].seq == b.seq)
        return fail(info, errc::invalid_argument, "append: sequence %d appears twice", b.seq);
    for (const token_id t : b.tokens)
      if (t < 0 || static_cast<std::size_t>(t) >= vocab)
        return fail(info, errc::invalid_token, "append: token %d in sequence %d", t, b.seq);
    const std::size_t held = size(b.seq);
    if (b.tokens.size() > context_length - held)
      return fail(info, errc::context_overflow, "append: sequence %d: %zu + %zu tokens > %zu",
                  b.seq, held, b.tokens.size(), context_length);
  }
  return errc::ok;
}

/// Checks the row counts of a batched score (MultiSequenceBatchScoring) after
/// validate_batch: `size_mismatch` (details to `*info`) unless `scored` has one count per
/// entry, none above its entry's tokens, and `rows` holds sum(scored) rows of `vocab`.
[[nodiscard]] inline errc check_score_rows(std::span<const seq_tokens> batch,
                                           std::span<const std::size_t> scored, std::size_t vocab,
                                           std::size_t rows, error_info* info) noexcept {
  if (scored.size() != batch.size())
    return fail(info, errc::size_mismatch, "score: %zu row counts for %zu entries", scored.size(),
                batch.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (scored[i] > batch[i].tokens.size())
      return fail(info, errc::size_mismatch, "score: %zu rows for %zu tokens of sequence %d",
                  scored[i], batch[i].tokens.size(), batch[i].seq);
    n += scored[i];
  }
  if (rows != n * vocab)
    return fail(info, errc::size_mismatch, "score: %zu floats for %zu rows of %zu", rows, n, vocab);
  return errc::ok;
}

}  // namespace detail

/// One sequence of a multi-sequence model as a LanguageModel: a non-owning handle
/// {model, seq_id} whose calls forward to the model with its id, so every block written
/// against LanguageModel (generate(), the speculative decoder, contrastive models) runs
/// on a sequence unchanged. It models Rewindable always (rewind may still fail with
/// `rewind_failed`), Scoring when M is MultiSequenceScoring, HasContextLength when M
/// reports a per-sequence context length, and forwards `last_error()` when M has it.
///
/// The handle neither opens nor closes its sequence: the model and the sequence must
/// outlive its use. A handle is two words, copyable; copies name the same sequence.
/// Each call's errors are those of the model call it makes (a closed sequence gives
/// `invalid_sequence`).
template <MultiSequenceModel M>
class sequence {
 public:
  /// A handle to sequence `id` of `model` (which must stay alive and in place).
  sequence(M& model, seq_id id) noexcept : model_(&model), id_(id) {}

  /// The sequence's id in its model.
  [[nodiscard]] seq_id id() const noexcept { return id_; }
  /// The model the handle reads and writes.
  [[nodiscard]] M& model() const noexcept { return *model_; }

  /// The model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return static_cast<std::size_t>(model_->vocab_size());
  }
  /// Tokens in this sequence (0 once closed).
  [[nodiscard]] std::size_t size() const noexcept {
    return static_cast<std::size_t>(model_->size(id_));
  }
  /// Next-token logits of this sequence, read in place (see MultiSequenceModel).
  [[nodiscard]] std::span<const float> logits() const noexcept { return model_->logits(id_); }

  /// Appends `t` to this sequence: a one-entry batched append. Errors and state left:
  /// those of the model's append.
  [[nodiscard]] errc append(std::span<const token_id> t) {
    const seq_tokens one{id_, t};
    return model_->append(std::span<const seq_tokens>(&one, 1));
  }
  /// Drops the last `n` tokens of this sequence (the model's rewind(id, n)).
  [[nodiscard]] errc rewind(std::size_t n) { return model_->rewind(id_, n); }
  /// Appends `t` and writes the logits after every prefix into `rows` (the model's
  /// score(id, t, rows)); offered when the model is MultiSequenceScoring.
  [[nodiscard]] errc score(std::span<const token_id> t,
                           std::span<float> rows) requires MultiSequenceScoring<M> {
    return model_->score(id_, t, rows);
  }
  /// The most tokens this sequence can hold; offered when the model reports it.
  [[nodiscard]] std::size_t context_length() const noexcept requires HasContextLength<M> {
    return static_cast<std::size_t>(model_->context_length());
  }
  /// The model's last_error(); offered when the model has one.
  [[nodiscard]] const error_info& last_error() const noexcept requires HasLastError<M> {
    return model_->last_error();
  }

 private:
  M* model_;
  seq_id id_;
};

/// True when `a` and `b` name the same sequence of the same model.
template <MultiSequenceModel M>
[[nodiscard]] bool operator==(const sequence<M>& a, const sequence<M>& b) noexcept {
  return &a.model() == &b.model() && a.id() == b.id();
}

}  // namespace tandem::inline v0
