// tandem backends: llama.cpp's GBNF grammar sampler as an output constraint, so that
// existing GBNF grammars constrain generate(), the scheduler and the speculative decoder.
//
// Opt-in: link `tandem::llama_cpp` (CMake package `llama`). Uses llama_sampler_init_grammar,
// llama_sampler_apply, llama_sampler_accept and llama_sampler_reset of the llama.cpp version
// that backends/llama_cpp.hpp is written against.
#pragma once

#include <llama.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/constraint.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// A `Constraint` over llama.cpp's GBNF grammar sampler for one vocabulary: the tokens it
/// allows are those whose text continues a string of the grammar's language (llama.cpp's
/// rules: a token's piece as `llama_token_to_piece` renders it, partial UTF-8 through byte
/// tokens; tokens with an empty piece are never allowed). The vocabulary's end-of-generation
/// tokens (`llama_vocab_is_eog`) are allowed exactly when the text so far is in the
/// language, which is `can_end()`.
///
/// Costs: the allowed set of a position is computed once (one `llama_sampler_apply` over the
/// whole vocabulary, which allocates inside llama.cpp) and cached until the next advance,
/// rewind or reset; `mask`, `allows` and `forced` then read the cache. `advance` is one
/// `llama_sampler_accept`. llama.cpp's grammar cannot step back, so `rewind(n)` rebuilds the
/// sampler from the grammar text (`llama_sampler_reset`: the grammar is parsed again) and
/// replays the kept tokens: O(grammar size + position) per rewind, paid by the speculative
/// decoder's model drafter after every draft. tandem's own compiled constraints
/// (tandem/constrain/) rewind in O(1) and mask without allocating.
///
/// Owns its sampler (freed on destruction); movable, not copyable. Borrows the vocabulary,
/// whose model must outlive it. One per generation; not thread-safe.
class llama_grammar_constraint {
 public:
  /// A constraint for the GBNF grammar `gbnf` starting at rule `root`, over `vocab`.
  /// Errors, with details in `*info` when not null: invalid_argument (a null vocabulary),
  /// parse_error (llama.cpp rejected the grammar, e.g. a syntax error or an undefined or
  /// missing root rule; its log says where). Allocates.
  [[nodiscard]] static result<llama_grammar_constraint> create(const ::llama_vocab* vocab,
                                                               std::string_view gbnf,
                                                               std::string_view root = "root",
                                                               error_info* info = nullptr) {
    if (vocab == nullptr)
      return detail::fail(info, errc::invalid_argument, "llama_grammar: no vocabulary");
    const std::string text(gbnf), start(root);
    ::llama_sampler* s = llama_sampler_init_grammar(vocab, text.c_str(), start.c_str());
    if (s == nullptr)
      return detail::fail(info, errc::parse_error,
                          "llama_grammar: llama.cpp rejected the grammar (root rule '%s'; its "
                          "log says where)",
                          start.c_str());
    return llama_grammar_constraint(vocab, s);
  }

  /// As above, over the vocabulary of `model`.
  [[nodiscard]] static result<llama_grammar_constraint> create(const llama_model_handle& model,
                                                               std::string_view gbnf,
                                                               std::string_view root = "root",
                                                               error_info* info = nullptr) {
    return create(model.vocab(), gbnf, root, info);
  }

  ///@{
  /// Takes over `o`'s sampler and state; `o` is left without a sampler (only destroy or
  /// assign to it).
  llama_grammar_constraint(llama_grammar_constraint&& o) noexcept
      : vocab_(o.vocab_),
        smpl_(std::exchange(o.smpl_, nullptr)),
        n_vocab_(o.n_vocab_),
        eog_(std::move(o.eog_)),
        history_(std::move(o.history_)),
        cand_(std::move(o.cand_)),
        allowed_(std::move(o.allowed_)),
        cached_(o.cached_),
        forced_(o.forced_),
        n_allowed_(o.n_allowed_),
        eog_allowed_(o.eog_allowed_) {}
  llama_grammar_constraint& operator=(llama_grammar_constraint&& o) noexcept {
    if (this != &o) {
      if (smpl_ != nullptr) llama_sampler_free(smpl_);
      vocab_ = o.vocab_;
      smpl_ = std::exchange(o.smpl_, nullptr);
      n_vocab_ = o.n_vocab_;
      eog_ = std::move(o.eog_);
      history_ = std::move(o.history_);
      cand_ = std::move(o.cand_);
      allowed_ = std::move(o.allowed_);
      cached_ = o.cached_;
      forced_ = o.forced_;
      n_allowed_ = o.n_allowed_;
      eog_allowed_ = o.eog_allowed_;
    }
    return *this;
  }
  ///@}
  llama_grammar_constraint(const llama_grammar_constraint&) = delete;
  llama_grammar_constraint& operator=(const llama_grammar_constraint&) = delete;
  ~llama_grammar_constraint() {
    if (smpl_ != nullptr) llama_sampler_free(smpl_);
  }

  /// Reserves the history for `tokens` advanced tokens, so that advancing that far
  /// allocates nothing on tandem's side.
  void reserve(std::size_t tokens) { history_.reserve(tokens); }

  /// The vocabulary size (llama_vocab_n_tokens).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return n_vocab_; }

  /// Whether `t` may come next (false outside the vocabulary).
  [[nodiscard]] bool allows(token_id t) const noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= n_vocab_) return false;
    refresh();
    return allowed_[static_cast<std::size_t>(t)] != 0;
  }

  /// Sets the logits of disallowed tokens (and entries past the vocabulary) to -Inf.
  /// Errors: size_mismatch (fewer logits than tokens; untouched).
  [[nodiscard]] errc mask(std::span<float> logits) noexcept {
    if (logits.size() < n_vocab_) return errc::size_mismatch;
    refresh();
    constexpr float ninf = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < n_vocab_; ++i)
      if (allowed_[i] == 0) logits[i] = ninf;
    for (std::size_t i = n_vocab_; i < logits.size(); ++i) logits[i] = ninf;
    return errc::ok;
  }

  /// Accepts `t` into the grammar. Errors (state unchanged): invalid_token (outside the
  /// vocabulary), constraint_violation (the grammar does not allow it here; llama.cpp would
  /// abort on it, so it is checked first).
  [[nodiscard]] errc advance(token_id t) noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= n_vocab_) return errc::invalid_token;
    if (!allows(t)) return errc::constraint_violation;
    llama_sampler_accept(smpl_, static_cast<llama_token>(t));
    history_.push_back(t);
    cached_ = false;
    return errc::ok;
  }

  /// Drops the last `n` tokens: resets the grammar and replays the others (see the class
  /// comment for the cost). Errors: rewind_out_of_range (n past the start; unchanged).
  [[nodiscard]] errc rewind(std::size_t n) noexcept {
    if (n > history_.size()) return errc::rewind_out_of_range;
    if (n == 0) return errc::ok;
    history_.resize(history_.size() - n);
    llama_sampler_reset(smpl_);
    for (const token_id t : history_) llama_sampler_accept(smpl_, static_cast<llama_token>(t));
    cached_ = false;
    return errc::ok;
  }

  /// The only token allowed next (an end-of-generation token included), or no_token.
  [[nodiscard]] token_id forced() const noexcept {
    refresh();
    return forced_;
  }
  /// The text so far is in the grammar's language: an end-of-generation token is allowed.
  [[nodiscard]] bool can_end() const noexcept {
    refresh();
    return eog_allowed_ > 0;
  }
  /// Only end-of-generation tokens are allowed: the output must stop.
  [[nodiscard]] bool is_complete() const noexcept {
    refresh();
    return eog_allowed_ > 0 && n_allowed_ == eog_allowed_;
  }
  /// Tokens advanced since the start.
  [[nodiscard]] std::size_t position() const noexcept { return history_.size(); }
  /// Back to the start of the grammar.
  void reset() noexcept {
    history_.clear();
    llama_sampler_reset(smpl_);
    cached_ = false;
  }

 private:
  llama_grammar_constraint(const ::llama_vocab* vocab, ::llama_sampler* s)
      : vocab_(vocab),
        smpl_(s),
        n_vocab_(static_cast<std::size_t>(llama_vocab_n_tokens(vocab))),
        cand_(n_vocab_),
        allowed_(n_vocab_, 0) {
    for (std::size_t i = 0; i < n_vocab_; ++i)
      if (llama_vocab_is_eog(vocab, static_cast<llama_token>(i)))
        eog_.push_back(static_cast<token_id>(i));
    history_.reserve(256);
  }

  // Computes the allowed set of the current position once.
  void refresh() const noexcept {
    if (cached_) return;
    for (std::size_t i = 0; i < n_vocab_; ++i)
      cand_[i] = llama_token_data{static_cast<llama_token>(i), 0.0f, 0.0f};
    llama_token_data_array arr{cand_.data(), n_vocab_, -1, false};
    llama_sampler_apply(smpl_, &arr);
    n_allowed_ = 0;
    forced_ = no_token;
    for (std::size_t i = 0; i < n_vocab_; ++i) allowed_[i] = 0;
    for (std::size_t i = 0; i < arr.size; ++i) {
      if (std::isinf(arr.data[i].logit) && arr.data[i].logit < 0.0f) continue;
      const auto id = static_cast<std::size_t>(arr.data[i].id);
      if (id >= n_vocab_ || allowed_[id] != 0) continue;
      allowed_[id] = 1;
      ++n_allowed_;
      forced_ = static_cast<token_id>(id);
    }
    if (n_allowed_ != 1) forced_ = no_token;
    eog_allowed_ = 0;
    for (const token_id e : eog_) eog_allowed_ += allowed_[static_cast<std::size_t>(e)];
    cached_ = true;
  }

  const ::llama_vocab* vocab_;
  ::llama_sampler* smpl_;
  std::size_t n_vocab_;
  std::vector<token_id> eog_;      // the vocabulary's end-of-generation tokens
  std::vector<token_id> history_;  // the tokens advanced, replayed by rewind
  // The allowed set of the current position (computed on demand: the const queries fill it).
  mutable std::vector<llama_token_data> cand_;
  mutable std::vector<unsigned char> allowed_;
  mutable bool cached_ = false;
  mutable token_id forced_ = no_token;
  mutable std::size_t n_allowed_ = 0;
  mutable std::size_t eog_allowed_ = 0;
};

static_assert(Constraint<llama_grammar_constraint>);

}  // namespace tandem::inline v0
