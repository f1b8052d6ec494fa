// tandem: a constraint compiled against a vocabulary, and the per-generation state over it.
//
// compiled_constraint is a byte automaton plus a token index: for each automaton state,
// the tokens allowed next, stored as a bit set or a sorted list (whichever is smaller; equal
// sets are stored once). constraint_state follows one generation through it and models
// tandem::Constraint; its mask is a SIMD kernel over the logits.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tandem/constrain/detail/dfa.hpp"
#include "tandem/constrain/vocabulary.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/constraint.hpp"
#include "tandem/core/detail/simd.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Limits for compiling a constraint.
struct constraint_options {
  /// Most states the byte automaton (after minimisation) may have; more is
  /// `constraint_too_large`. Each state costs 1 KiB of transitions plus its token set.
  std::size_t max_states = 16384;
  /// Largest count in a bounded repetition `{n}`, `{n,}`, `{n,m}`; more is
  /// `constraint_too_large`.
  std::size_t max_repeat = 1000;
  /// Most states of the intermediate non-deterministic automaton (nested repetitions
  /// multiply); more is `constraint_too_large`.
  std::size_t max_nfa_states = std::size_t{1} << 20;
};

namespace detail {

/// How one automaton state stores its allowed tokens.
struct token_set_ref {
  std::uint32_t offset = 0;  ///< into the bit pool (in words) or the list pool (in tokens)
  std::uint32_t count = 0;   ///< allowed tokens (end tokens included)
  bool is_bits = false;      ///< a bit set of words_per_set words; else a sorted list
};

/// The immutable tables of a compiled constraint.
struct compiled_data {
  std::shared_ptr<const vocab_data> vocab;
  std::size_t vocab_size = 0;
  std::size_t states = 0;  ///< automaton states; index `states` is "ended" (after an end token)
  std::vector<std::int32_t> next;       ///< states x 256 byte transitions (-1: none)
  std::vector<std::uint8_t> accepting;  ///< states + 1 flags
  std::vector<std::uint8_t> complete;   ///< states + 1 flags: only end tokens allowed
  std::vector<token_id> forced;         ///< states + 1: the single allowed token or no_token
  std::vector<token_set_ref> sets;      ///< states + 1
  std::size_t words_per_set = 0;        ///< ceil(vocab_size / 64)
  std::vector<std::uint64_t> bits;      ///< pool of bit sets
  std::vector<token_id> lists;          ///< pool of sorted lists
  std::size_t max_list = 0;             ///< longest list (a state's scratch size)

  [[nodiscard]] bool allows(std::size_t s, token_id t) const noexcept {
    const token_set_ref& r = sets[s];
    const auto u = static_cast<std::size_t>(t);
    if (r.is_bits) return ((bits[r.offset + u / 64] >> (u % 64)) & 1u) != 0;
    const token_id* b = lists.data() + r.offset;
    return std::binary_search(b, b + r.count, t);
  }
};

// Walks the vocabulary trie from automaton state `s`, calling `on_token(token, next_state)`
// for every token whose bytes all have transitions.
template <class F>
void walk_tokens(const compiled_data& c, std::size_t s, std::vector<std::uint64_t>& stack,
                 F&& on_token) {
  const vocab_data& v = *c.vocab;
  if (v.trie_byte.empty()) return;
  stack.clear();
  stack.push_back(static_cast<std::uint64_t>(s) << 32);  // (state << 32) | node
  while (!stack.empty()) {
    const std::uint64_t top = stack.back();
    stack.pop_back();
    const auto q = static_cast<std::size_t>(top >> 32);
    const auto i = static_cast<std::size_t>(top & 0xffffffffu);
    for (std::size_t ch = i + 1; ch < v.trie_end[i]; ch = v.trie_end[ch]) {
      const std::int32_t q2 = c.next[q * 256 + v.trie_byte[ch]];
      if (q2 < 0) continue;
      for (std::uint32_t k = v.trie_tok[ch]; k < v.trie_tok[ch + 1]; ++k) on_token(v.order[k], q2);
      if (v.trie_end[ch] > ch + 1)
        stack.push_back((static_cast<std::uint64_t>(q2) << 32) | static_cast<std::uint64_t>(ch));
    }
  }
}

}  // namespace detail

/// A constraint compiled against one vocabulary: a byte automaton and, for each of its
/// states, the set of tokens allowed next. Immutable; copies share the tables (held by a
/// `std::shared_ptr<const ...>`), so one compiled constraint serves any number of
/// `constraint_state`s on any threads. Made by `compile_regex`, `compile_choice`,
/// `compile_json_schema`.
class compiled_constraint {
 public:
  /// The vocabulary size it was compiled for.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return data_->vocab_size; }
  /// Number of automaton states (after minimisation).
  [[nodiscard]] std::size_t state_count() const noexcept { return data_->states; }
  /// Bytes held by the tables (transitions, token sets, per-state flags), without the
  /// vocabulary, which is shared with it.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    const detail::compiled_data& d = *data_;
    return d.next.size() * 4 + d.accepting.size() * 2 + d.forced.size() * 4 +
           d.sets.size() * sizeof(detail::token_set_ref) + d.bits.size() * 8 + d.lists.size() * 4;
  }
  /// The tables (for constraint_state).
  [[nodiscard]] const std::shared_ptr<const detail::compiled_data>& data() const noexcept {
    return data_;
  }

  /// \cond TANDEM_INTERNAL
  explicit compiled_constraint(std::shared_ptr<const detail::compiled_data> d) noexcept
      : data_(std::move(d)) {}
  /// \endcond

 private:
  std::shared_ptr<const detail::compiled_data> data_;
};

namespace detail {

// Stores a token set (given as a bit set over the vocabulary) as state `s`'s set: as a bit
// set when that is smaller than a sorted list, else as the list; an equal set stored
// before is shared. Also fills the state's forced token and complete flag.
struct token_set_builder {
  compiled_data& c;
  std::size_t end_count;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> seen;  // hash -> states
  std::vector<token_id> list;

  void store(std::size_t s, const std::vector<std::uint64_t>& bits, std::size_t count) {
    const std::size_t words = c.words_per_set;
    const bool as_bits = count * 32 > words * 64;  // list bytes > bit-set bytes
    list.clear();
    if (!as_bits)
      for (std::size_t w = 0; w < words; ++w)
        for (std::uint64_t m = bits[w]; m != 0; m &= m - 1)
          list.push_back(
              static_cast<token_id>(w * 64 + static_cast<std::size_t>(std::countr_zero(m))));
    c.forced[s] = count == 1 ? list[0] : no_token;
    c.complete[s] = c.accepting[s] != 0 && count == end_count ? 1 : 0;
    std::uint64_t h = 1469598103934665603ULL ^ count;
    for (std::size_t w = 0; w < words; ++w) h = (h ^ bits[w]) * 1099511628211ULL;
    auto& bucket = seen[h];
    for (const std::uint32_t other : bucket) {
      const token_set_ref& r = c.sets[other];
      if (r.is_bits != as_bits || r.count != count) continue;
      const bool same =
          as_bits ? std::equal(bits.begin(), bits.begin() + static_cast<std::ptrdiff_t>(words),
                               c.bits.begin() + r.offset)
                  : std::equal(list.begin(), list.end(), c.lists.begin() + r.offset);
      if (same) {
        c.sets[s] = r;
        return;
      }
    }
    token_set_ref r;
    r.count = static_cast<std::uint32_t>(count);
    r.is_bits = as_bits;
    if (as_bits) {
      r.offset = static_cast<std::uint32_t>(c.bits.size());
      c.bits.insert(c.bits.end(), bits.begin(), bits.begin() + static_cast<std::ptrdiff_t>(words));
    } else {
      r.offset = static_cast<std::uint32_t>(c.lists.size());
      c.lists.insert(c.lists.end(), list.begin(), list.end());
      c.max_list = std::max(c.max_list, list.size());
    }
    c.sets[s] = r;
    bucket.push_back(static_cast<std::uint32_t>(s));
  }
};

/// Builds the token index of a trimmed, minimised byte automaton over `vocab`.
///
/// For each state it walks the vocabulary's byte trie through the automaton once (pruned
/// where a byte has no transition), collecting the tokens whose bytes all pass, and adds
/// the vocabulary's end tokens to the accepting states. A token that leads to a state from
/// which no token sequence reaches a match is then dropped (a second walk, only for the
/// states that have such tokens), so an allowed token never leads to a dead end.
/// Errors: `invalid_argument` when no token sequence of this vocabulary reaches a match
/// from the start. Cost: one trie walk per state (up to the whole trie for permissive
/// states, e.g. inside a string); memory as in `compiled_constraint::memory_bytes()`.
inline result<compiled_constraint> build_index(byte_dfa&& dfa, const token_vocabulary& vocab,
                                               error_info* info) {
  auto c = std::make_shared<compiled_data>();
  c->vocab = vocab.data();
  c->vocab_size = vocab.size();
  c->states = dfa.size();
  c->next = std::move(dfa.next);
  c->accepting = std::move(dfa.accepting);
  c->accepting.push_back(1);  // the ended state
  c->words_per_set = (c->vocab_size + 63) / 64;
  const std::size_t n = c->states;
  c->sets.assign(n + 1, {});
  c->forced.assign(n + 1, no_token);
  c->complete.assign(n + 1, 0);
  const std::span<const token_id> ends = vocab.end_tokens();
  token_set_builder builder{*c, ends.size(), {}, {}};
  std::vector<std::uint64_t> bits(c->words_per_set, 0), stack;
  std::size_t count = 0;
  const auto add = [&](token_id t) {
    const auto u = static_cast<std::size_t>(t);
    const std::uint64_t bit = std::uint64_t{1} << (u % 64);
    if ((bits[u / 64] & bit) == 0) {
      bits[u / 64] |= bit;
      ++count;
    }
  };
  const auto begin_state = [&](std::size_t s) {
    std::fill(bits.begin(), bits.end(), 0);
    count = 0;
    if (c->accepting[s] != 0)
      for (const token_id t : ends) add(t);
  };

  // Pass 1: every state's tokens, and the states each state reaches by a token.
  std::vector<std::vector<std::int32_t>> succ(n);
  {
    std::vector<std::uint32_t> stamp(n, std::numeric_limits<std::uint32_t>::max());
    for (std::size_t s = 0; s < n; ++s) {
      begin_state(s);
      walk_tokens(*c, s, stack, [&](token_id t, std::int32_t q) {
        add(t);
        if (stamp[static_cast<std::size_t>(q)] != s) {
          stamp[static_cast<std::size_t>(q)] = static_cast<std::uint32_t>(s);
          succ[s].push_back(q);
        }
      });
      builder.store(s, bits, count);
    }
  }
  // Live states: an accepting state is reachable by tokens.
  std::vector<std::vector<std::int32_t>> pred(n);
  for (std::size_t s = 0; s < n; ++s)
    for (const std::int32_t q : succ[s])
      pred[static_cast<std::size_t>(q)].push_back(static_cast<std::int32_t>(s));
  const std::vector<std::uint8_t> live = co_reachable(pred, c->accepting);
  if (n == 0 || live[0] == 0)
    return detail::fail(info, errc::invalid_argument,
                        "no sequence of this vocabulary's tokens matches the constraint");

  // Pass 2, for states with tokens into dead states: drop those tokens. Dead states are
  // never reached through allowed tokens; they keep an empty set.
  for (std::size_t s = 0; s < n; ++s) {
    const auto dead = [&](std::int32_t q) { return live[static_cast<std::size_t>(q)] == 0; };
    if (live[s] != 0 && std::none_of(succ[s].begin(), succ[s].end(), dead)) continue;
    begin_state(s);
    if (live[s] != 0)
      walk_tokens(*c, s, stack, [&](token_id t, std::int32_t q) {
        if (!dead(q)) add(t);
      });
    else
      count = 0, std::fill(bits.begin(), bits.end(), 0);
    builder.store(s, bits, count);
  }
  std::fill(bits.begin(), bits.end(), 0);
  builder.store(n, bits, 0);
  c->complete[n] = 1;
  return compiled_constraint(std::move(c));
}

/// Checks the size limit, trims and minimises `dfa`, then builds its token index.
/// Errors: `constraint_too_large` (more than `max_states` states after minimisation),
/// `invalid_argument` (the automaton matches nothing, or nothing the vocabulary can spell).
inline result<compiled_constraint> compile_dfa(byte_dfa&& dfa, const token_vocabulary& vocab,
                                               const constraint_options& options,
                                               error_info* info) {
  if (!trim(dfa))
    return detail::fail(info, errc::invalid_argument, "the constraint matches no text at all");
  minimize(dfa);
  if (dfa.size() > options.max_states)
    return detail::fail(info, errc::constraint_too_large,
                        "%zu automaton states after minimisation (max_states %zu)", dfa.size(),
                        options.max_states);
  return build_index(std::move(dfa), vocab, info);
}

// The mask kernel: keeps logits whose bit is set, writes -Inf over the others.
inline void apply_bits(const std::uint64_t* bits, std::size_t words,
                       std::span<float> logits) noexcept {
  using fbatch = simd::batch<float>;
  using ibatch = simd::batch<std::int32_t>;
  constexpr std::size_t lanes = fbatch::size;
  static_assert(lanes <= 32 && 64 % lanes == 0);
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  alignas(64) static constexpr std::int32_t lane_bit[32] = {
      1 << 0,  1 << 1,  1 << 2,  1 << 3,
      1 << 4,  1 << 5,  1 << 6,  1 << 7,
      1 << 8,  1 << 9,  1 << 10, 1 << 11,
      1 << 12, 1 << 13, 1 << 14, 1 << 15,
      1 << 16, 1 << 17, 1 << 18, 1 << 19,
      1 << 20, 1 << 21, 1 << 22, 1 << 23,
      1 << 24, 1 << 25, 1 << 26, 1 << 27,
      1 << 28, 1 << 29, 1 << 30, std::numeric_limits<std::int32_t>::min()};
  const ibatch lane_bits = ibatch::load_aligned(lane_bit);
  const ibatch zero(0);
  const fbatch minus_inf(ninf);
  const ibatch minus_inf_bits = simd::to_bits(minus_inf);
  float* p = logits.data();
  const std::size_t full = std::min(words, logits.size() / 64);
  for (std::size_t w = 0; w < full; ++w, p += 64) {
    const std::uint64_t m = bits[w];
    if (m == ~std::uint64_t{0}) continue;
    if (m == 0) {
      for (std::size_t k = 0; k < 64; k += lanes) minus_inf.store_unaligned(p + k);
      continue;
    }
    for (std::size_t k = 0; k < 64; k += lanes) {
      const auto sub = static_cast<std::uint32_t>(m >> k) &
                       static_cast<std::uint32_t>((std::uint64_t{1} << lanes) - 1);
      const ibatch keep = ibatch(static_cast<std::int32_t>(sub)) & lane_bits;
      const ibatch x = simd::to_bits(fbatch::load_unaligned(p + k));
      simd::from_bits(simd::select(keep != zero, x, minus_inf_bits)).store_unaligned(p + k);
    }
  }
  // The rest: a partial word, then padding past the vocabulary.
  for (std::size_t i = full * 64; i < logits.size(); ++i) {
    const std::size_t w = i / 64;
    if (w >= words || ((bits[w] >> (i % 64)) & 1u) == 0) logits[i] = ninf;
  }
}

inline void fill_minus_inf(std::span<float> logits) noexcept {
  using fbatch = simd::batch<float>;
  constexpr std::size_t lanes = fbatch::size;
  const fbatch minus_inf(-std::numeric_limits<float>::infinity());
  std::size_t i = 0;
  for (; i + lanes <= logits.size(); i += lanes) minus_inf.store_unaligned(logits.data() + i);
  for (; i < logits.size(); ++i) logits[i] = -std::numeric_limits<float>::infinity();
}

}  // namespace detail

/// The state of one generation under a compiled constraint; models `tandem::Constraint`.
///
/// Holds a share of the compiled tables (so they live at least as long as it) and the stack
/// of automaton states visited, one per advanced token, for `rewind`. Allocates only at
/// construction (the history for `reserve_tokens` tokens and a scratch buffer for the mask)
/// and when more tokens than reserved are advanced. Not thread-safe: one per generation.
class constraint_state {
 public:
  /// A state at the start of `compiled`, reserving history for `reserve_tokens` tokens.
  explicit constraint_state(const compiled_constraint& compiled, std::size_t reserve_tokens = 1024)
      : c_(compiled.data()) {
    history_.reserve(reserve_tokens + 1);
    history_.push_back(0);
    scratch_.resize(c_->max_list);
  }

  /// The vocabulary size the constraint was compiled for.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return c_->vocab_size; }

  /// Whether token `t` may come next; false for ids outside the vocabulary.
  [[nodiscard]] bool allows(token_id t) const noexcept {
    if (t < 0 || static_cast<std::size_t>(t) >= c_->vocab_size) return false;
    return c_->allows(current(), t);
  }

  /// Writes -Inf over every logit of a token not allowed next and over entries past
  /// `vocab_size()`; allowed entries are unchanged. Errors: `size_mismatch` (`logits`
  /// shorter than `vocab_size()`; untouched). No allocation.
  [[nodiscard]] errc mask(std::span<float> logits) noexcept {
    if (logits.size() < c_->vocab_size) return errc::size_mismatch;
    const detail::token_set_ref& r = c_->sets[current()];
    if (r.is_bits) {
      detail::apply_bits(c_->bits.data() + r.offset, c_->words_per_set, logits);
      return errc::ok;
    }
    // A short list: keep the allowed values, fill everything, put them back.
    const token_id* list = c_->lists.data() + r.offset;
    for (std::uint32_t k = 0; k < r.count; ++k)
      scratch_[k] = logits[static_cast<std::size_t>(list[k])];
    detail::fill_minus_inf(logits);
    for (std::uint32_t k = 0; k < r.count; ++k)
      logits[static_cast<std::size_t>(list[k])] = scratch_[k];
    return errc::ok;
  }

  /// Appends token `t`. Errors: `invalid_token` (outside the vocabulary),
  /// `constraint_violation` (not allowed here); the state is then unchanged. Allocates only
  /// past the reserved history.
  [[nodiscard]] errc advance(token_id t) {
    if (t < 0 || static_cast<std::size_t>(t) >= c_->vocab_size) return errc::invalid_token;
    const std::size_t s = current();
    if (!c_->allows(s, t)) return errc::constraint_violation;
    std::int32_t q = static_cast<std::int32_t>(c_->states);
    if (c_->vocab->is_end[static_cast<std::size_t>(t)] == 0) {
      q = static_cast<std::int32_t>(s);
      for (const char ch : c_->vocab->token(static_cast<std::size_t>(t)))
        q = c_->next[static_cast<std::size_t>(q) * 256 + static_cast<unsigned char>(ch)];
    }
    history_.push_back(q);
    return errc::ok;
  }

  /// Drops the last `n` advanced tokens. Errors: `rewind_out_of_range` (more than
  /// `position()`; state unchanged).
  [[nodiscard]] errc rewind(std::size_t n) noexcept {
    if (n > position()) return errc::rewind_out_of_range;
    history_.resize(history_.size() - n);
    return errc::ok;
  }

  /// The only token allowed next, or `no_token` when none or several are.
  [[nodiscard]] token_id forced() const noexcept { return c_->forced[current()]; }
  /// True when the text so far is a complete match (the end tokens are allowed). After an
  /// end token it stays true while nothing, end tokens included, is allowed any more.
  [[nodiscard]] bool can_end() const noexcept { return c_->accepting[current()] != 0; }
  /// True when the text is a complete match and no token other than an end token may
  /// follow (also after an end token).
  [[nodiscard]] bool is_complete() const noexcept { return c_->complete[current()] != 0; }
  /// Tokens advanced since the start.
  [[nodiscard]] std::size_t position() const noexcept { return history_.size() - 1; }
  /// Back to the start (position 0). Keeps the reserved history.
  void reset() noexcept { history_.resize(1); }

  /// The compiled constraint's automaton state now (the "ended" state after an end token
  /// is `state_count()`); for tests and diagnostics.
  [[nodiscard]] std::size_t automaton_state() const noexcept { return current(); }

 private:
  [[nodiscard]] std::size_t current() const noexcept {
    return static_cast<std::size_t>(history_.back());
  }

  std::shared_ptr<const detail::compiled_data> c_;
  std::vector<std::int32_t> history_;
  std::vector<float> scratch_;
};

static_assert(Constraint<constraint_state>);

}  // namespace tandem::inline v0
