// Test helper: two small output constraints that model tandem::Constraint fully, written
// independently of tandem/constrain/ so that generate(), the scheduler and the speculative
// decoder can be tested on their own.
//
// - trie_constraint: the output must be one of a few token sequences (a trie walked by brute
//   force); its end tokens are allowed exactly when the output so far is one of them.
// - token_set_constraint: any number of tokens from a set; may always end, never complete.
//
// Both count the calls of each member, so tests can check how a loop used them. Neither
// allocates after construction.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/constraint.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/types.hpp"

namespace tandem_test {

/// Masks `logits` by brute force with `c.allows` (entries past c's vocabulary disallowed).
template <class C, class Counters>
tandem::errc mask_by(const C& c, std::span<float> logits, Counters& counters) noexcept {
  if (logits.size() < c.vocab_size()) return tandem::errc::size_mismatch;
  ++counters.masks;
  for (std::size_t j = 0; j < logits.size(); ++j)
    if (!c.allows(static_cast<tandem::token_id>(j)))
      logits[j] = -std::numeric_limits<float>::infinity();
  return tandem::errc::ok;
}

/// How often a test constraint was used.
struct constraint_counters {
  std::size_t masks = 0;
  std::size_t advances = 0;
  std::size_t rewinds = 0;
  std::size_t rewound = 0;  ///< tokens dropped by rewinds
};

/// The output must be exactly one of `sequences` (over a vocabulary of `vocab` tokens).
class trie_constraint {
 public:
  trie_constraint(std::size_t vocab, std::vector<std::vector<tandem::token_id>> sequences,
                  std::vector<tandem::token_id> end_tokens = {})
      : vocab_(vocab), seqs_(std::move(sequences)), ends_(std::move(end_tokens)) {
    std::size_t longest = 0;
    for (const auto& s : seqs_) longest = std::max(longest, s.size());
    history_.reserve(longest + 1);
  }

  std::size_t vocab_size() const noexcept { return vocab_; }

  bool allows(tandem::token_id t) const noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= vocab_) return false;
    if (is_end(t)) return can_end();
    return std::any_of(seqs_.begin(), seqs_.end(),
                       [&](const auto& s) { return extends(s) && s[history_.size()] == t; });
  }

  tandem::errc mask(std::span<float> logits) noexcept { return mask_by(*this, logits, counters_); }

  tandem::errc advance(tandem::token_id t) noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= vocab_) return tandem::errc::invalid_token;
    if (!allows(t)) return tandem::errc::constraint_violation;
    ++counters_.advances;
    history_.push_back(t);
    return tandem::errc::ok;
  }

  tandem::errc rewind(std::size_t n) noexcept {
    if (n > history_.size()) return tandem::errc::rewind_out_of_range;
    ++counters_.rewinds;
    counters_.rewound += n;
    history_.resize(history_.size() - n);
    return tandem::errc::ok;
  }

  tandem::token_id forced() const noexcept {
    tandem::token_id only = tandem::no_token;
    for (std::size_t j = 0; j < vocab_; ++j) {
      if (!allows(static_cast<tandem::token_id>(j))) continue;
      if (only != tandem::no_token) return tandem::no_token;
      only = static_cast<tandem::token_id>(j);
    }
    return only;
  }

  bool can_end() const noexcept {
    return std::any_of(seqs_.begin(), seqs_.end(), [&](const auto& s) {
      return s.size() == history_.size() && std::equal(s.begin(), s.end(), history_.begin());
    });
  }

  bool is_complete() const noexcept {
    return can_end() &&
           std::none_of(seqs_.begin(), seqs_.end(), [&](const auto& s) { return extends(s); });
  }

  std::size_t position() const noexcept { return history_.size(); }
  void reset() noexcept { history_.clear(); }

  std::span<const tandem::token_id> history() const noexcept { return history_; }
  const constraint_counters& counters() const noexcept { return counters_; }

 private:
  // `s` is longer than the history and starts with it.
  bool extends(const std::vector<tandem::token_id>& s) const noexcept {
    return s.size() > history_.size() && std::equal(history_.begin(), history_.end(), s.begin());
  }
  bool is_end(tandem::token_id t) const noexcept {
    return std::find(ends_.begin(), ends_.end(), t) != ends_.end();
  }

  std::size_t vocab_;
  std::vector<std::vector<tandem::token_id>> seqs_;
  std::vector<tandem::token_id> ends_;
  std::vector<tandem::token_id> history_;
  constraint_counters counters_{};
};

/// Any number of tokens from `allowed`; the output may always end and is never complete.
class token_set_constraint {
 public:
  token_set_constraint(std::size_t vocab, std::vector<tandem::token_id> allowed)
      : vocab_(vocab), allowed_(vocab, false) {
    for (const tandem::token_id t : allowed) allowed_[static_cast<std::size_t>(t)] = true;
  }

  std::size_t vocab_size() const noexcept { return vocab_; }
  bool allows(tandem::token_id t) const noexcept {
    return t >= 0 && static_cast<std::size_t>(t) < vocab_ && allowed_[static_cast<std::size_t>(t)];
  }
  tandem::errc mask(std::span<float> logits) noexcept { return mask_by(*this, logits, counters_); }
  tandem::errc advance(tandem::token_id t) noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= vocab_) return tandem::errc::invalid_token;
    if (!allows(t)) return tandem::errc::constraint_violation;
    ++counters_.advances;
    ++position_;
    return tandem::errc::ok;
  }
  tandem::errc rewind(std::size_t n) noexcept {
    if (n > position_) return tandem::errc::rewind_out_of_range;
    ++counters_.rewinds;
    counters_.rewound += n;
    position_ -= n;
    return tandem::errc::ok;
  }
  tandem::token_id forced() const noexcept {
    if (std::count(allowed_.begin(), allowed_.end(), true) != 1) return tandem::no_token;
    return static_cast<tandem::token_id>(std::find(allowed_.begin(), allowed_.end(), true) -
                                         allowed_.begin());
  }
  bool can_end() const noexcept { return true; }
  bool is_complete() const noexcept { return false; }
  std::size_t position() const noexcept { return position_; }
  void reset() noexcept { position_ = 0; }

  const constraint_counters& counters() const noexcept { return counters_; }

 private:
  std::size_t vocab_;
  std::vector<bool> allowed_;
  std::size_t position_ = 0;
  constraint_counters counters_{};
};

static_assert(tandem::Constraint<trie_constraint>);
static_assert(tandem::Constraint<token_set_constraint>);

}  // namespace tandem_test
