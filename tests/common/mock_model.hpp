// Test helper: deterministic, table-driven mock models and a mock tokenizer.
//
// The mock model's next-token logits are a pure function of (context length n, last
// token): the favourite token is `script[n]` when n < script.size(), else
// `successor[last]` (by default last + 1 modulo the vocabulary). The favourite gets
// logit 3; token j gets -0.25 * ((j - favourite) mod vocab) otherwise, so the
// distribution is proper, has positive entropy, and greedy decoding follows the table.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem_test {

using tandem::errc;
using tandem::token_id;

inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

/// Behaviour of a mock model.
struct mock_options {
  std::size_t vocab = 16;
  /// Favourite next token after a context of n tokens is script[n] when n < size().
  std::vector<token_id> script{};
  /// Otherwise the favourite after token t is successor[t]; empty means (t + 1) % vocab.
  std::vector<token_id> successor{};
  /// Reported context length; appends beyond it fail with context_overflow.
  std::size_t context_length = unlimited;
  /// The append call with this index (0-based; the prompt is usually call 0) fails with
  /// decode_failed, leaving the context unchanged.
  std::size_t fail_at_append = unlimited;
  /// When the context holds exactly this many tokens, every logit is NaN.
  std::size_t non_finite_at = unlimited;
};

/// How often each entry point of a mock model was used.
struct mock_counters {
  std::size_t append_calls = 0;     ///< calls to append, failed ones included
  std::size_t appended_tokens = 0;  ///< tokens added by successful appends
  std::size_t score_calls = 0;
  std::size_t scored_tokens = 0;
  std::size_t rewind_calls = 0;
  std::size_t rewound_tokens = 0;
};

/// The mock model; `Rewind` selects whether it offers rewind(n). It always offers
/// score(t, rows) and context_length().
template <bool Rewind>
class basic_mock_model {
 public:
  explicit basic_mock_model(mock_options opts = {})
      : opts_(std::move(opts)), logits_(opts_.vocab, 0.0f) {
    context_.reserve(256);
  }

  std::size_t vocab_size() const noexcept { return opts_.vocab; }
  std::size_t size() const noexcept { return context_.size(); }
  std::size_t context_length() const noexcept { return opts_.context_length; }
  std::span<const float> logits() const noexcept { return logits_; }

  errc append(std::span<const token_id> t) {
    const std::size_t call = counters_.append_calls++;
    if (errc e = check(t); e != errc::ok) return e;
    if (call == opts_.fail_at_append) return errc::decode_failed;
    if (t.empty()) return errc::ok;
    context_.insert(context_.end(), t.begin(), t.end());
    counters_.appended_tokens += t.size();
    fill(logits_, context_.size(), context_.back());
    return errc::ok;
  }

  errc score(std::span<const token_id> t, std::span<float> rows) {
    ++counters_.score_calls;
    if (rows.size() != t.size() * opts_.vocab) return errc::size_mismatch;
    if (errc e = check(t); e != errc::ok) return e;
    for (std::size_t i = 0; i < t.size(); ++i) {
      fill(rows.subspan(i * opts_.vocab, opts_.vocab), context_.size() + i + 1, t[i]);
    }
    if (t.empty()) return errc::ok;
    context_.insert(context_.end(), t.begin(), t.end());
    counters_.scored_tokens += t.size();
    fill(logits_, context_.size(), context_.back());
    return errc::ok;
  }

  errc rewind(std::size_t n) requires Rewind {
    ++counters_.rewind_calls;
    if (n > context_.size()) return errc::rewind_out_of_range;
    context_.resize(context_.size() - n);
    counters_.rewound_tokens += n;
    if (!context_.empty()) fill(logits_, context_.size(), context_.back());
    return errc::ok;
  }

  /// The tokens in the context.
  std::span<const token_id> tokens() const noexcept { return context_; }
  const mock_counters& counters() const noexcept { return counters_; }
  void reset_counters() noexcept { counters_ = {}; }
  /// The favourite next token after a context of n tokens ending in `last`.
  token_id favourite(std::size_t n, token_id last) const noexcept {
    if (n < opts_.script.size()) return opts_.script[n];
    if (!opts_.successor.empty()) return opts_.successor[static_cast<std::size_t>(last)];
    return static_cast<token_id>((static_cast<std::size_t>(last) + 1) % opts_.vocab);
  }
  /// The logits this model gives after a context of n tokens ending in `last`.
  void fill(std::span<float> out, std::size_t n, token_id last) const noexcept {
    if (n == opts_.non_finite_at) {
      for (float& x : out) x = std::numeric_limits<float>::quiet_NaN();
      return;
    }
    const auto fav = static_cast<std::size_t>(favourite(n, last));
    for (std::size_t j = 0; j < out.size(); ++j) {
      out[j] = j == fav ? 3.0f : -0.25f * static_cast<float>((j + opts_.vocab - fav) % opts_.vocab);
    }
  }

 private:
  errc check(std::span<const token_id> t) const noexcept {
    for (token_id x : t) {
      if (x < 0 || static_cast<std::size_t>(x) >= opts_.vocab) return errc::invalid_token;
    }
    if (t.size() > opts_.context_length - context_.size()) return errc::context_overflow;
    return errc::ok;
  }

  mock_options opts_;
  std::vector<token_id> context_;
  std::vector<float> logits_;
  mock_counters counters_;
};

using mock_model = basic_mock_model<true>;
using mock_model_no_rewind = basic_mock_model<false>;

static_assert(tandem::LanguageModel<mock_model> && tandem::Rewindable<mock_model> &&
              tandem::Scoring<mock_model> && tandem::HasContextLength<mock_model>);
static_assert(tandem::LanguageModel<mock_model_no_rewind> &&
              !tandem::Rewindable<mock_model_no_rewind> && tandem::Scoring<mock_model_no_rewind>);

/// Deliberate contract breakages of mock_multi_model, to prove the multi-sequence
/// conformance suite fails them.
enum class multi_fault {
  none,
  fork_skips_logits,    // fork copies the tokens but not the logits
  logits_from_batch,    // each sequence's logits are computed from the batch's last token
  partial_batch,        // a batch failing at entry k keeps entries 0..k-1 applied
  close_clears_others,  // close also forgets the next sequence's logits
};

/// Behaviour of a mock_multi_model.
struct mock_multi_options {
  /// The table of every sequence (vocab, script, successor) and the per-sequence
  /// context length; `fail_at_append` makes that batched append call (0-based) fail
  /// with decode_failed, changing nothing.
  mock_options model{};
  std::size_t max_sequences = 4;
  multi_fault fault = multi_fault::none;
};

/// A multi-sequence mock: each sequence predicts exactly as a lone mock_model fed the
/// same tokens. Every buffer is sized at construction (no allocation per call). Counts
/// its batched append calls (each one "forward pass").
class mock_multi_model {
 public:
  explicit mock_multi_model(mock_multi_options opts = {})
      : opts_(std::move(opts)), table_(opts_.model), slots_(opts_.max_sequences) {
    for (slot& s : slots_) {
      s.tokens.reserve(256);
      s.logits.assign(opts_.model.vocab, 0.0f);
    }
  }

  std::size_t vocab_size() const noexcept { return opts_.model.vocab; }
  std::size_t max_sequences() const noexcept { return slots_.size(); }
  std::size_t context_length() const noexcept { return opts_.model.context_length; }
  const tandem::error_info& last_error() const noexcept { return error_; }
  /// Batched append calls so far, failed ones included.
  std::size_t append_calls() const noexcept { return append_calls_; }

  bool is_open(tandem::seq_id s) const noexcept {
    return s >= 0 && static_cast<std::size_t>(s) < slots_.size() && at(s).open;
  }
  std::size_t size(tandem::seq_id s) const noexcept { return is_open(s) ? at(s).tokens.size() : 0; }
  std::span<const float> logits(tandem::seq_id s) const noexcept {
    return is_open(s) ? std::span<const float>(at(s).logits) : std::span<const float>();
  }

  tandem::result<tandem::seq_id> open() {
    const tandem::seq_id s = free_slot();
    if (s < 0) return errc::no_free_sequence;
    at(s).open = true;
    at(s).tokens.clear();
    return s;
  }
  errc close(tandem::seq_id s) {
    if (!is_open(s)) return errc::invalid_sequence;
    at(s).open = false;
    at(s).tokens.clear();
    if (opts_.fault == multi_fault::close_clears_others) {
      for (std::size_t k = 1; k < slots_.size(); ++k) {
        slot& o = slots_[(static_cast<std::size_t>(s) + k) % slots_.size()];
        if (o.open) {
          for (float& x : o.logits) x = 0.0f;
          break;
        }
      }
    }
    return errc::ok;
  }

  errc append(std::span<const tandem::seq_tokens> batch) {
    const std::size_t call = append_calls_++;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errc e = check(batch, i); e != errc::ok) {
        if (opts_.fault == multi_fault::partial_batch) apply(batch.first(i));
        return tandem::detail::fail(&error_, e, "entry %zu (sequence %d)", i, batch[i].seq);
      }
    }
    if (call == opts_.model.fail_at_append)
      return tandem::detail::fail(&error_, errc::decode_failed, "injected failure of call %zu",
                                  call);
    apply(batch);
    return errc::ok;
  }

  errc score(tandem::seq_id s, std::span<const token_id> t, std::span<float> rows) {
    const tandem::seq_tokens one{s, t};
    if (errc e = check(std::span<const tandem::seq_tokens>(&one, 1), 0); e != errc::ok) return e;
    if (rows.size() != t.size() * vocab_size()) return errc::size_mismatch;
    slot& e = at(s);
    for (std::size_t i = 0; i < t.size(); ++i)
      table_.fill(rows.subspan(i * vocab_size(), vocab_size()), e.tokens.size() + i + 1, t[i]);
    apply(std::span<const tandem::seq_tokens>(&one, 1));
    return errc::ok;
  }

  /// Batched score (MultiSequenceBatchScoring): every entry checked first, then each one
  /// scored in turn (rows for its last scored[i] tokens). Counts as one append call.
  errc score(std::span<const tandem::seq_tokens> batch, std::span<const std::size_t> scored,
             std::span<float> rows) {
    const std::size_t call = append_calls_++;
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (errc e = check(batch, i); e != errc::ok) return e;
    TANDEM_TRY(tandem::detail::check_score_rows(batch, scored, vocab_size(), rows.size(), &error_));
    if (call == opts_.model.fail_at_append)
      return tandem::detail::fail(&error_, errc::decode_failed, "injected failure of call %zu",
                                  call);
    std::size_t row = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const tandem::seq_tokens& b = batch[i];
      slot& e = at(b.seq);
      const std::size_t head = b.tokens.size() - scored[i];
      for (std::size_t j = head; j < b.tokens.size(); ++j, ++row)
        table_.fill(rows.subspan(row * vocab_size(), vocab_size()), e.tokens.size() + j + 1,
                    b.tokens[j]);
    }
    apply(batch);
    return errc::ok;
  }

  errc rewind(tandem::seq_id s, std::size_t n) {
    if (!is_open(s)) return errc::invalid_sequence;
    if (n > at(s).tokens.size()) return errc::rewind_out_of_range;
    at(s).tokens.resize(at(s).tokens.size() - n);
    return errc::ok;
  }

  tandem::result<tandem::seq_id> fork(tandem::seq_id s) {
    if (!is_open(s)) return errc::invalid_sequence;
    const tandem::seq_id c = free_slot();
    if (c < 0) return errc::no_free_sequence;
    at(c).open = true;
    at(c).tokens = at(s).tokens;
    if (opts_.fault != multi_fault::fork_skips_logits) at(c).logits = at(s).logits;
    return c;
  }

 private:
  struct slot {
    bool open = false;
    std::vector<token_id> tokens;
    std::vector<float> logits;
  };
  slot& at(tandem::seq_id s) noexcept { return slots_[static_cast<std::size_t>(s)]; }
  const slot& at(tandem::seq_id s) const noexcept { return slots_[static_cast<std::size_t>(s)]; }
  tandem::seq_id free_slot() const noexcept {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].open) return static_cast<tandem::seq_id>(i);
    return -1;
  }
  errc check(std::span<const tandem::seq_tokens> batch, std::size_t i) const noexcept {
    const tandem::seq_tokens& b = batch[i];
    if (!is_open(b.seq)) return errc::invalid_sequence;
    for (std::size_t j = 0; j < i; ++j)
      if (batch[j].seq == b.seq) return errc::invalid_argument;
    for (token_id x : b.tokens)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab_size()) return errc::invalid_token;
    if (b.tokens.size() > context_length() - at(b.seq).tokens.size()) return errc::context_overflow;
    return errc::ok;
  }
  void apply(std::span<const tandem::seq_tokens> batch) {
    token_id batch_last = -1;
    for (const tandem::seq_tokens& b : batch)
      if (!b.tokens.empty()) batch_last = b.tokens.back();
    for (const tandem::seq_tokens& b : batch) {
      if (b.tokens.empty()) continue;
      slot& e = at(b.seq);
      e.tokens.insert(e.tokens.end(), b.tokens.begin(), b.tokens.end());
      const token_id last =
          opts_.fault == multi_fault::logits_from_batch ? batch_last : e.tokens.back();
      table_.fill(e.logits, e.tokens.size(), last);
    }
  }

  mock_multi_options opts_;
  basic_mock_model<true> table_;
  std::vector<slot> slots_;
  std::size_t append_calls_ = 0;
  tandem::error_info error_;
};

static_assert(tandem::MultiSequenceModel<mock_multi_model> &&
              tandem::MultiSequenceScoring<mock_multi_model> &&
              tandem::MultiSequenceBatchScoring<mock_multi_model> &&
              tandem::HasContextLength<mock_multi_model> && tandem::HasLastError<mock_multi_model>);

/// Pieces of the default mock vocabulary (16 tokens). Token 0 is the end-of-sequence
/// token with empty text; 6+7 spell "é" and 8+9 spell U+1F600 in two halves each;
/// 12+13 and 4+5 spell "STOP" across two tokens.
inline constexpr std::string_view mock_pieces[] = {
    "",  // 0: eos
    "a",        "b",     " ",  "S",  "TOP", "\xC3",     "\xA9", "\xF0\x9F",
    "\x98\x80", "hello", "\n", "ST", "OP",  "\xC3\xA9", ".",
};
inline constexpr token_id mock_eos = 0;

/// A tokenizer mapping token i to the fixed string mock_pieces[i]. encode() matches the
/// longest piece greedily (never the empty eos piece) and fails with invalid_argument
/// on text it cannot spell.
class mock_tokenizer {
 public:
  std::size_t vocab_size() const noexcept { return std::size(mock_pieces); }

  errc encode(std::string_view text, std::vector<token_id>& ids) const {
    const std::size_t before = ids.size();
    while (!text.empty()) {
      token_id best = -1;
      std::size_t best_len = 0;
      for (std::size_t i = 1; i < std::size(mock_pieces); ++i) {
        const std::string_view p = mock_pieces[i];
        if (p.size() > best_len && text.starts_with(p)) {
          best = static_cast<token_id>(i);
          best_len = p.size();
        }
      }
      if (best < 0) {
        ids.resize(before);
        return errc::invalid_argument;
      }
      ids.push_back(best);
      text.remove_prefix(best_len);
    }
    return errc::ok;
  }

  errc decode(std::span<const token_id> t, std::string& out) const {
    for (token_id x : t) {
      if (!valid(x)) return errc::invalid_token;
    }
    for (token_id x : t) out.append(mock_pieces[static_cast<std::size_t>(x)]);
    return errc::ok;
  }

  errc piece(token_id id, std::string& out) const {
    if (!valid(id)) return errc::invalid_token;
    out.append(mock_pieces[static_cast<std::size_t>(id)]);
    return errc::ok;
  }

 private:
  bool valid(token_id x) const noexcept {
    return x >= 0 && static_cast<std::size_t>(x) < std::size(mock_pieces);
  }
};

static_assert(tandem::Tokenizer<mock_tokenizer>);

/// A greedy sampler for tests that counts accept() calls. Returns non_finite on NaN or
/// +Inf logits and no_candidates when every logit is -Inf.
struct counting_greedy_sampler {
  std::size_t accepted = 0;
  std::size_t resets = 0;
  std::vector<token_id> history{};

  tandem::result<token_id> sample(std::span<const float> logits) {
    if (logits.empty()) return errc::empty_input;
    std::size_t best = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<float>::infinity()) {
        return errc::non_finite;
      }
      if (logits[i] > logits[best]) best = i;
    }
    if (logits[best] == -std::numeric_limits<float>::infinity()) return errc::no_candidates;
    return static_cast<token_id>(best);
  }
  void accept(token_id t) {
    ++accepted;
    if (history.size() < history.capacity()) history.push_back(t);
  }
  void reset() {
    ++resets;
    history.clear();
  }
};

static_assert(tandem::Sampler<counting_greedy_sampler>);

}  // namespace tandem_test
