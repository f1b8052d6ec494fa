// Test helpers for cross-tokenizer drafting: a vocabulary of pieces with a greedy
// longest-match Tokenizer (optionally adding a sentencepiece-style leading space), and a
// model over such a vocabulary whose logits follow one cyclic "truth" text: a piece that
// continues the truth at the current text position scores its length, others a small
// pseudo-random value. Two models over different vocabularies with the same truth agree
// on the text and disagree on the tokens.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/decoder.hpp"

namespace tandem_test {

/// Pieces of a vocabulary; id 0 is the control token `<s>` (empty text), ids from
/// `pads_from` on are padding (special, never encoded).
struct piece_vocab {
  std::vector<std::string> pieces;
  bool leading_space = false;  // encode adds " " before the text, decode drops it
  std::size_t pads_from = static_cast<std::size_t>(-1);

  std::size_t vocab_size() const noexcept { return pieces.size(); }
  bool special(tandem::token_id id) const noexcept {
    return id == 0 || static_cast<std::size_t>(id) >= pads_from;
  }

  tandem::errc encode(std::string_view text, std::vector<tandem::token_id>& ids) const {
    std::string t = leading_space ? " " + std::string(text) : std::string(text);
    std::vector<tandem::token_id> out;
    for (std::size_t p = 0; p < t.size();) {
      std::size_t best_len = 0;
      tandem::token_id best = -1;
      for (std::size_t j = 1; j < std::min(pieces.size(), pads_from); ++j)
        if (pieces[j].size() > best_len && t.compare(p, pieces[j].size(), pieces[j]) == 0) {
          best_len = pieces[j].size();
          best = static_cast<tandem::token_id>(j);
        }
      if (best < 0) return tandem::errc::invalid_argument;
      out.push_back(best);
      p += best_len;
    }
    ids.insert(ids.end(), out.begin(), out.end());
    return tandem::errc::ok;
  }
  tandem::errc piece(tandem::token_id id, std::string& out) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces.size()) return tandem::errc::invalid_token;
    if (!special(id)) out += pieces[static_cast<std::size_t>(id)];
    return tandem::errc::ok;
  }
  tandem::errc decode(std::span<const tandem::token_id> ids, std::string& out) const {
    std::string t;
    for (const tandem::token_id id : ids) TANDEM_TRY(piece(id, t));
    if (leading_space && !t.empty() && t[0] == ' ') t.erase(0, 1);
    out += t;
    return tandem::errc::ok;
  }
  /// A piece source for vocab_map::build (piece_style::plain).
  auto source() const {
    return [this](tandem::token_id id) -> tandem::result<tandem::token_piece> {
      if (id < 0 || static_cast<std::size_t>(id) >= pieces.size())
        return tandem::errc::invalid_token;
      return tandem::token_piece{
          pieces[static_cast<std::size_t>(id)],
          special(id) ? tandem::piece_kind::special : tandem::piece_kind::text};
    };
  }
};
static_assert(tandem::Tokenizer<piece_vocab>);

/// A Rewindable, Scoring model over a piece_vocab that follows `truth` (cyclic). The text
/// position counts the pieces' bytes, a leading space of the vocabulary included. `<s>`
/// is never predicted; padding gets only the noise.
class truth_model {
 public:
  truth_model(const piece_vocab& v, std::string truth, std::uint64_t seed, float noise = 1.0f)
      : v_(&v), truth_(std::move(truth)), seed_(seed), noise_(noise), logits_(v.vocab_size()) {
    ctx_.reserve(4096);
    pos_.reserve(4096);
  }
  std::size_t vocab_size() const noexcept { return v_->vocab_size(); }
  std::size_t size() const noexcept { return ctx_.size(); }
  std::span<const float> logits() const noexcept { return logits_; }
  std::span<const tandem::token_id> tokens() const noexcept { return ctx_; }

  tandem::errc append(std::span<const tandem::token_id> t) {
    if (t.empty()) return tandem::errc::empty_input;
    for (const tandem::token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab_size()) return tandem::errc::invalid_token;
    for (const tandem::token_id x : t) push(x);
    fill(logits_);
    return tandem::errc::ok;
  }
  tandem::errc score(std::span<const tandem::token_id> t, std::span<float> rows) {
    const std::size_t n = vocab_size();
    if (rows.size() != t.size() * n) return tandem::errc::size_mismatch;
    if (t.empty()) return tandem::errc::empty_input;
    for (const tandem::token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= n) return tandem::errc::invalid_token;
    for (std::size_t i = 0; i < t.size(); ++i) {
      push(t[i]);
      fill(rows.subspan(i * n, n));
    }
    fill(logits_);
    return tandem::errc::ok;
  }
  tandem::errc rewind(std::size_t n) {
    if (n > ctx_.size()) return tandem::errc::rewind_out_of_range;
    ctx_.resize(ctx_.size() - n);
    pos_.resize(pos_.size() - n);
    return tandem::errc::ok;
  }
  /// The logits after the current context, written to `out`.
  void fill(std::span<float> out) const noexcept {
    const std::size_t at = pos_.empty() ? 0 : pos_.back();
    const std::size_t n = truth_.size();
    for (std::size_t j = 0; j < out.size(); ++j) {
      std::uint64_t h = seed_ * 0x9E3779B97F4A7C15ull ^ (at * 0xC2B2AE3D27D4EB4Full) ^ j;
      h ^= h >> 31;
      h *= 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
      float x = noise_ * static_cast<float>(h >> 40) / static_cast<float>(1u << 24);
      const std::string& p = v_->pieces[j];
      if (j == 0) {
        out[j] = -std::numeric_limits<float>::infinity();
        continue;
      }
      if (v_->special(static_cast<tandem::token_id>(j))) {
        out[j] = x;
        continue;
      }
      bool match = true;
      for (std::size_t k = 0; k < p.size() && match; ++k) match = truth_[(at + k) % n] == p[k];
      if (match) x += 2.0f * static_cast<float>(p.size());
      out[j] = x;
    }
  }

 private:
  void push(tandem::token_id x) {
    ctx_.push_back(x);
    const std::size_t before = pos_.empty() ? 0 : pos_.back();
    pos_.push_back(before + (v_->special(x) ? 0 : v_->pieces[static_cast<std::size_t>(x)].size()));
  }

  const piece_vocab* v_;
  std::string truth_;
  std::uint64_t seed_;
  float noise_;
  std::vector<float> logits_;
  std::vector<tandem::token_id> ctx_;
  std::vector<std::size_t> pos_;  // text position after each token
};
static_assert(tandem::Rewindable<truth_model> && tandem::Scoring<truth_model>);

/// The first `n` tokens `generate` makes with `m` and `s` after the prompt {0} (`<s>`).
template <class M, class S>
std::vector<tandem::token_id> generate_tokens(M& m, S& s, std::size_t n) {
  tandem::completion c;
  tandem::generation_options g;
  g.max_tokens = n;
  const std::vector<tandem::token_id> prompt{0};
  REQUIRE(tandem::generate(m, s, prompt, g, c) == tandem::errc::ok);
  return c.tokens;
}

/// The same with a speculative decoder over `target` and `drafter` (fixed draft length 3),
/// greedy; `stats` receives the decoder's statistics when not null.
template <class T, class D>
std::vector<tandem::token_id> speculative_tokens(T& target, D& drafter, std::size_t n,
                                                 tandem::speculative_stats* stats = nullptr) {
  tandem::speculative_decoder<T, D, tandem::fixed_draft> dec(target, drafter,
                                                             tandem::fixed_draft{3});
  tandem::greedy_sampler s;
  tandem::completion c;
  tandem::generation_options g;
  g.max_tokens = n;
  const std::vector<tandem::token_id> prompt{0};
  REQUIRE(dec.generate(s, prompt, g, c) == tandem::errc::ok);
  if (stats) *stats = dec.stats();
  return c.tokens;
}

}  // namespace tandem_test
