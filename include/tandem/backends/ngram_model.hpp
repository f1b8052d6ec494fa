// tandem: the built-in n-gram language model. Interpolated modified Kneser-Ney (Chen &
// Goodman 1998) of order 1 to 8, trained from token-id sentences, stored in sorted flat
// arrays, saved in a versioned, checksummed binary file, and decoded through sessions that
// satisfy LanguageModel, Rewindable, Scoring and TreeScoring.
//
// Estimate, for an n-gram model of order N over vocabulary V:
//   P_k(w | h) = max(a(hw) - D_k(a(hw)), 0) / a(h.) + gamma(h) P_{k-1}(w | h'),
//   gamma(h)   = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / a(h.),
// where h' drops the oldest token of h, a(h.) sums a(hw) over w, and N_i(h.) counts the
// continuations w with a(hw) = i (3+: >= 3). a is the raw count at order N and, below N,
// the continuation count: the number of distinct tokens seen right before the n-gram,
// plus its occurrences at a sentence start (so n-grams opening with BOS keep raw counts).
// The recursion ends in a uniform distribution over the vocabulary (BOS excluded: it is
// never predicted). A context h never seen with a continuation passes P_{k-1} through.
// Discounts per order, from the count-of-counts n_i of a at that order:
//   Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.
//
// Layout: one sorted array per order (the trie of right extensions laid flat); each
// n-gram below the top order stores its last token, its discounted term, the range of its
// continuations in the next order and its gamma (16 bytes), the top order only the first
// two (8 bytes). A full next-token distribution starts from log(G) + log P_1 for every
// token (G the product of the gammas along the context) and adds the higher-order terms
// only for the continuations of the last token.
//
// File format, version 2: the frame of core/detail/bytes.hpp ("TDMNGRAM", u32 version,
// u64 payload size, payload, u64 FNV-1a-64 of the payload) around, little-endian: u32
// order, u32 vocab, i32 bos, i32 eos (-1: none), f32 gamma of the empty context, u32 0,
// u64 n-gram count per order, f32 D1 D2 D3+ per order; then per order: i32 tokens, f32
// terms, and below the top order u32 continuation offsets (count + 1) and f32 gammas.
// Version 1 files (same payload after a header "TDMNGRAM", u32 1, u32 flags 0, u64 FNV-1a-64
// of the payload) still load.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Largest n-gram order the model supports.
inline constexpr std::size_t ngram_max_order = 8;
/// Largest vocabulary the model (and its file format) accepts: above every tokenizer in
/// use, and a bound on what a hostile file can make the loader allocate.
inline constexpr std::size_t ngram_max_vocab = std::size_t{1} << 21;
/// Version written into n-gram model files; from_bytes() also reads version 1 files.
inline constexpr std::uint32_t ngram_format_version = 2;

/// Settings of an n-gram model, fixed when its builder is created.
struct ngram_options {
  std::size_t order = 3;          ///< n-gram order, in [1, ngram_max_order]
  std::size_t vocab_size = 0;     ///< token ids lie in [0, vocab_size); in [1, ngram_max_vocab]
  std::optional<token_id> bos{};  ///< when set, opens every sentence; never predicted
  std::optional<token_id> eos{};  ///< when set, closes every sentence; predicted like a token
};

/// Log-probability of one sentence and the number of tokens it predicted (EOS included,
/// BOS excluded).
struct ngram_sentence_score {
  double log_prob = 0.0;   ///< natural log
  std::size_t tokens = 0;  ///< tokens predicted (EOS included, BOS excluded)
};

class ngram_builder;
class ngram_session;
class ngram_multi_session;

/// A trained n-gram model: immutable once built or loaded, shared read-only by any number
/// of sessions and threads. Created by `ngram_builder::build` or `ngram_model::load` /
/// `from_bytes`; copyable and movable.
class ngram_model {
 public:
  /// The n-gram order N.
  [[nodiscard]] std::size_t order() const noexcept { return order_; }
  /// Size of the vocabulary: valid token ids are [0, vocab_size()).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// The sentence-opening token, if the model was trained with one.
  [[nodiscard]] std::optional<token_id> bos() const noexcept {
    return bos_ >= 0 ? std::optional<token_id>(bos_) : std::nullopt;
  }
  /// The sentence-closing token, if the model was trained with one.
  [[nodiscard]] std::optional<token_id> eos() const noexcept {
    return eos_ >= 0 ? std::optional<token_id>(eos_) : std::nullopt;
  }
  /// Number of distinct n-grams of order n stored (1 <= n <= order(), else TANDEM_ASSERT).
  [[nodiscard]] std::size_t ngram_count(std::size_t n) const noexcept {
    TANDEM_ASSERT(n >= 1 && n <= order_, "ngram_count: order out of range");
    return levels_[n - 1].word.size();
  }
  /// Discount D_k applied at order n to n-grams seen k times (k = 3 means 3 or more).
  /// Preconditions (TANDEM_ASSERT): 1 <= n <= order(), 1 <= k <= 3.
  [[nodiscard]] float discount(std::size_t n, std::size_t k) const noexcept {
    TANDEM_ASSERT(n >= 1 && n <= order_ && k >= 1 && k <= 3, "discount: index out of range");
    return discounts_[n - 1][k - 1];
  }
  /// Heap bytes held by the model's tables (derived per-token tables included).
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    std::size_t b = (p1_.capacity() + logp1_.capacity()) * sizeof(float) +
                    uni_index_.capacity() * sizeof(std::int32_t);
    for (const level& l : levels_) {
      b += l.word.capacity() * sizeof(token_id) + l.prob.capacity() * sizeof(float) +
           l.child.capacity() * sizeof(std::uint32_t) + l.backoff.capacity() * sizeof(float);
    }
    return b;
  }

  /// Natural log of P(token | context); only the last order() - 1 tokens of `context`
  /// matter (none of them is added implicitly: pass BOS yourself at a sentence start).
  /// Returns -infinity for BOS, which is never predicted. Errors: `invalid_token` when
  /// `token` or any context token lies outside [0, vocab_size()).
  [[nodiscard]] result<double> log_prob(std::span<const token_id> context,
                                        token_id token) const noexcept {
    if (!valid(token)) return errc::invalid_token;
    for (token_id t : context)
      if (!valid(t)) return errc::invalid_token;
    const std::size_t keep = std::min(context.size(), order_ - 1);
    return std::log(prob(context.subspan(context.size() - keep), token));
  }

  /// Scores one sentence the way the model was trained on it: wraps it in BOS/EOS when the
  /// model has them, and sums the natural-log probabilities of every token after BOS.
  /// Errors: `invalid_token` for an id outside the vocabulary or a BOS inside the sentence;
  /// `empty_input` when nothing is predicted (an empty sentence and no EOS).
  [[nodiscard]] result<ngram_sentence_score> score_sentence(
      std::span<const token_id> sentence) const noexcept {
    for (token_id t : sentence)
      if (!valid(t) || t == bos_) return errc::invalid_token;
    ngram_sentence_score s;
    std::array<token_id, ngram_max_order> window{};
    std::size_t filled = 0;
    const std::size_t cap = order_ - 1;
    auto push = [&](token_id t) {
      if (cap == 0) return;
      if (filled == cap) {
        std::memmove(window.data(), window.data() + 1, (cap - 1) * sizeof(token_id));
        --filled;
      }
      window[filled++] = t;
    };
    auto predict = [&](token_id t) {
      s.log_prob += std::log(prob(std::span<const token_id>(window.data(), filled), t));
      ++s.tokens;
      push(t);
    };
    if (bos_ >= 0) push(bos_);
    for (token_id t : sentence) predict(t);
    if (eos_ >= 0) predict(eos_);
    if (s.tokens == 0) return errc::empty_input;
    return s;
  }

  /// Perplexity exp(-sum log P / tokens) over held-out sentences, each scored by
  /// `score_sentence` (so EOS is counted, BOS is not). `Sentences` is any range whose
  /// elements convert to std::span<const token_id>. Errors: those of `score_sentence`,
  /// except that empty sentences are skipped; `empty_input` when no token was predicted.
  template <class Sentences>
  [[nodiscard]] result<double> perplexity(const Sentences& sentences) const noexcept {
    double total = 0.0;
    std::size_t tokens = 0;
    for (const auto& s : sentences) {
      const auto r = score_sentence(std::span<const token_id>(s));
      if (!r) {
        if (r.error() == errc::empty_input) continue;
        return r.error();
      }
      total += r->log_prob;
      tokens += r->tokens;
    }
    if (tokens == 0) return errc::empty_input;
    return std::exp(-total / static_cast<double>(tokens));
  }

  /// Writes `to_bytes()` to `path`, replacing any file there as a whole (through
  /// "<path>.tmp", so a failure leaves an earlier file intact). Errors: `io_error` (details
  /// in `*info`: the path). The model is unchanged.
  [[nodiscard]] errc save(std::string_view path, error_info* info = nullptr) const {
    return detail::write_file(path, to_bytes(), info);
  }

  /// The model file's bytes (format version ngram_format_version), in a new buffer owned
  /// by the caller.
  [[nodiscard]] std::vector<std::byte> to_bytes() const {
    detail::byte_writer w;
    const std::size_t size = payload_size();
    w.reserve(size + detail::frame_overhead);
    const std::size_t start = detail::begin_frame(w, file_magic, ngram_format_version, size);
    w.u32(static_cast<std::uint32_t>(order_));
    w.u32(static_cast<std::uint32_t>(vocab_));
    w.i32(bos_);
    w.i32(eos_);
    w.f32(root_backoff_);
    w.u32(0);
    for (const level& l : levels_) w.u64(l.word.size());
    for (std::size_t k = 0; k < order_; ++k)
      for (float d : discounts_[k]) w.f32(d);
    for (const level& l : levels_) {
      w.elements(l.word);
      w.elements(l.prob);
      w.elements(l.child);
      w.elements(l.backoff);
    }
    detail::end_frame(w, start);
    return w.take();
  }

  /// Reads a model written by `save`. Errors: `file_not_found` when the file cannot be
  /// opened, `invalid_argument` for a directory, `io_error` when it cannot be read, and
  /// those of `from_bytes`; details (the path first) in `*info`.
  [[nodiscard]] static result<ngram_model> load(std::string_view path, error_info* info = nullptr) {
    return detail::parse_file(
        path, info, [](std::span<const std::byte> b, error_info* i) { return from_bytes(b, i); });
  }

  /// Parses a model from the bytes of a model file (version ngram_format_version or 1);
  /// the caller keeps ownership of `bytes`, the model copies what it needs. Every size is
  /// checked against the bytes present before anything is allocated, and every table is
  /// validated (token ids in range, children sorted and nested, probabilities finite and
  /// summing to 1), so hostile input yields an error, never undefined behaviour. Errors,
  /// with details in `*info` when not null: `corrupt_file` (bad magic, truncation,
  /// trailing bytes, checksum mismatch, out-of-range sizes or values),
  /// `unsupported_version` (another version; the details state it and
  /// ngram_format_version).
  [[nodiscard]] static result<ngram_model> from_bytes(std::span<const std::byte> bytes,
                                                      error_info* info = nullptr) {
    constexpr const char* format = "n-gram model";
    std::uint32_t version = 0;
    detail::byte_reader head(bytes.subspan(std::min<std::size_t>(bytes.size(), 8)));
    if (bytes.size() >= 12 && std::memcmp(bytes.data(), file_magic.data(), 8) == 0 &&
        head.u32(version) && version == 1)
      return from_version1(bytes, info);
    auto payload = detail::unframe(bytes, file_magic, ngram_format_version, format, info);
    if (!payload) return payload.error();
    return from_payload(*payload, info);
  }

 private:
  friend class ngram_builder;
  friend class ngram_session;
  friend class ngram_multi_session;

  // One order's n-grams in lexicographic order, so the continuations of a context form a
  // contiguous run sorted by token: a trie laid out as flat arrays.
  struct level {
    std::vector<token_id> word;        // last token of each n-gram
    std::vector<float> prob;           // max(a - D, 0) / a(context.)
    std::vector<std::uint32_t> child;  // continuations in the next level: [child[i], child[i+1])
    std::vector<float> backoff;        // gamma of this n-gram as a context (1 when it has none)
  };

  // Which context n-gram is used at each order for one prediction.
  struct context_chain {
    std::array<std::uint32_t, ngram_max_order + 1> node{};  // node[m]: index in level m - 2
    std::size_t depth = 1;                                  // highest order with a context
  };

  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::string_view file_magic = "TDMNGRAM";

  ngram_model() = default;

  [[nodiscard]] bool valid(token_id t) const noexcept {
    return t >= 0 && static_cast<std::size_t>(t) < vocab_;
  }
  [[nodiscard]] bool valid_marker(token_id t) const noexcept { return t == -1 || valid(t); }

  // Index in level g.size() - 1 of the n-gram g (1 <= g.size() <= order), or npos.
  [[nodiscard]] std::uint32_t find(std::span<const token_id> g) const noexcept {
    std::int32_t first = uni_index_[static_cast<std::size_t>(g[0])];
    if (first < 0) return npos;
    auto idx = static_cast<std::uint32_t>(first);
    for (std::size_t j = 1; j < g.size(); ++j) {
      const level& parent = levels_[j - 1];
      const token_id* words = levels_[j].word.data();
      const token_id* lo = words + parent.child[idx];
      const token_id* hi = words + parent.child[idx + 1];
      const token_id* it = std::lower_bound(lo, hi, g[j]);
      if (it == hi || *it != g[j]) return npos;
      idx = static_cast<std::uint32_t>(it - words);
    }
    return idx;
  }

  // The longest context of `ctx` (at most order - 1 tokens, all valid) that has
  // continuations, and every shorter one: if a context was never continued, no longer
  // context containing it was either.
  [[nodiscard]] context_chain chain(std::span<const token_id> ctx) const noexcept {
    context_chain c;
    for (std::size_t m = 2; m <= order_ && m - 1 <= ctx.size(); ++m) {
      const std::uint32_t idx = find(ctx.subspan(ctx.size() - (m - 1)));
      if (idx == npos) break;
      const level& l = levels_[m - 2];
      if (l.child[idx] == l.child[idx + 1]) break;
      c.node[m] = idx;
      c.depth = m;
    }
    return c;
  }

  // P(w | ctx) for valid ids; ctx holds at most order - 1 tokens.
  [[nodiscard]] double prob(std::span<const token_id> ctx, token_id w) const noexcept {
    const context_chain c = chain(ctx);
    double p = p1_[static_cast<std::size_t>(w)];
    for (std::size_t m = 2; m <= c.depth; ++m) {
      const level& cl = levels_[m - 2];
      const level& nl = levels_[m - 1];
      const std::uint32_t node = c.node[m];
      const token_id* lo = nl.word.data() + cl.child[node];
      const token_id* hi = nl.word.data() + cl.child[node + 1];
      const token_id* it = std::lower_bound(lo, hi, w);
      const double a =
          (it != hi && *it == w) ? nl.prob[static_cast<std::size_t>(it - nl.word.data())] : 0.0;
      p = static_cast<double>(cl.backoff[node]) * p + a;
    }
    return p;
  }

  // Writes log P(. | ctx) for the whole vocabulary into out (vocab_ entries), using
  // scratch (vocab_ entries) as work space. Every token gets log(G) + log P_1 (G the
  // product of the gammas along the chain); only the continuations of the chain's
  // contexts get the higher-order terms, added in linear space. In a built model these
  // are the continuations of the last token, a superset of every longer context's; the
  // passes below visit every level anyway, so that any model that passed validate()
  // (a file need not keep that nesting) still gives a distribution that sums to 1 and
  // agrees with prob().
  void fill_log_probs(std::span<const token_id> ctx, float* out, float* scratch) const noexcept {
    const context_chain c = chain(ctx);
    float g = 1.0f;
    for (std::size_t m = 2; m <= c.depth; ++m) g *= levels_[m - 2].backoff[c.node[m]];
    const float log_g = std::log(g);
    const float* lp1 = logp1_.data();
    for (std::size_t w = 0; w < vocab_; ++w) out[w] = log_g + lp1[w];
    auto for_each_continuation = [&](auto&& f) {
      for (std::size_t m = 2; m <= c.depth; ++m) {
        const level& cl = levels_[m - 2];
        const token_id* words = levels_[m - 1].word.data();
        const std::uint32_t node = c.node[m];
        for (std::uint32_t i = cl.child[node]; i < cl.child[node + 1]; ++i)
          f(static_cast<std::size_t>(words[i]));
      }
    };
    for_each_continuation([&](std::size_t w) { scratch[w] = g * p1_[w]; });
    float gm = 1.0f;
    for (std::size_t m = c.depth; m >= 2; --m) {
      const level& cl = levels_[m - 2];
      const level& nl = levels_[m - 1];
      const std::uint32_t node = c.node[m];
      for (std::uint32_t i = cl.child[node]; i < cl.child[node + 1]; ++i)
        scratch[static_cast<std::size_t>(nl.word[i])] += gm * nl.prob[i];
      gm *= cl.backoff[node];
    }
    for_each_continuation([&](std::size_t w) { out[w] = std::log(scratch[w]); });
  }

  // Structural checks of loaded tables; true when every invariant the queries rely on
  // holds.
  [[nodiscard]] bool validate() const noexcept {
    constexpr double tolerance = 1e-3;
    const level& l0 = levels_[0];
    if (!(root_backoff_ >= 0.0f && root_backoff_ <= 1.0f)) return false;
    double sum = root_backoff_;
    for (std::size_t i = 0; i < l0.word.size(); ++i) {
      if (!valid(l0.word[i]) || (i > 0 && l0.word[i] <= l0.word[i - 1])) return false;
      if (!(l0.prob[i] >= 0.0f && l0.prob[i] <= 1.0f)) return false;
      if (l0.word[i] == bos_ && l0.prob[i] != 0.0f) return false;
      sum += l0.prob[i];
    }
    if (std::abs(sum - 1.0) > tolerance) return false;
    for (std::size_t k = 0; k + 1 < order_; ++k) {
      const level& cl = levels_[k];
      const level& nl = levels_[k + 1];
      if (cl.child.front() != 0 || cl.child.back() != nl.word.size()) return false;
      for (std::size_t i = 0; i < cl.word.size(); ++i) {
        const std::uint32_t b = cl.child[i], e = cl.child[i + 1];
        if (b > e || e > nl.word.size()) return false;
        if (!(cl.backoff[i] >= 0.0f && cl.backoff[i] <= 1.0f)) return false;
        if (b == e) continue;
        double s = cl.backoff[i];
        for (std::uint32_t j = b; j < e; ++j) {
          const token_id w = nl.word[j];
          if (!valid(w) || w == bos_ || (j > b && w <= nl.word[j - 1])) return false;
          if (!(nl.prob[j] >= 0.0f && nl.prob[j] <= 1.0f)) return false;
          s += nl.prob[j];
        }
        if (std::abs(s - 1.0) > tolerance) return false;
      }
    }
    return true;
  }

  // Builds the per-token tables derived from the unigram level: P_1 for every token,
  // its log, and token -> unigram index.
  void finalize() {
    p1_.assign(vocab_, 0.0f);
    logp1_.assign(vocab_, 0.0f);
    uni_index_.assign(vocab_, -1);
    const level& l0 = levels_[0];
    for (std::size_t i = 0; i < l0.word.size(); ++i)
      uni_index_[static_cast<std::size_t>(l0.word[i])] = static_cast<std::int32_t>(i);
    const double predicted = static_cast<double>(vocab_) - (bos_ >= 0 ? 1.0 : 0.0);
    const double uniform = static_cast<double>(root_backoff_) / predicted;
    for (std::size_t w = 0; w < vocab_; ++w) {
      const std::int32_t i = uni_index_[w];
      double p =
          uniform + (i >= 0 ? static_cast<double>(l0.prob[static_cast<std::size_t>(i)]) : 0.0);
      if (static_cast<token_id>(w) == bos_) p = 0.0;
      p1_[w] = static_cast<float>(p);
      logp1_[w] = static_cast<float>(std::log(p));
    }
  }

  [[nodiscard]] std::size_t payload_size() const noexcept {
    std::size_t n = 6 * 4 + order_ * (8 + 12);
    for (const level& l : levels_)
      n += (l.word.size() + l.prob.size() + l.child.size() + l.backoff.size()) * 4;
    return n;
  }

  // A version 1 file: "TDMNGRAM", u32 1, u32 flags (0), u64 FNV-1a-64 of the payload, then
  // the payload of today's format.
  [[nodiscard]] static result<ngram_model> from_version1(std::span<const std::byte> bytes,
                                                         error_info* info) {
    detail::byte_reader head(bytes.subspan(12));
    std::uint32_t flags = 0;
    std::uint64_t checksum = 0;
    if (!head.u32(flags) || !head.u64(checksum))
      return detail::fail(info, errc::corrupt_file, "n-gram model file truncated in its header");
    if (flags != 0)
      return detail::fail(info, errc::corrupt_file, "n-gram model file: unknown flags %u",
                          static_cast<unsigned>(flags));
    const auto payload = bytes.subspan(24);
    if (detail::fnv1a64(payload) != checksum)
      return detail::fail(info, errc::corrupt_file, "n-gram model file: checksum mismatch");
    return from_payload(payload, info);
  }

  [[nodiscard]] static result<ngram_model> from_payload(std::span<const std::byte> payload,
                                                        error_info* info) {
    auto corrupt = [info](const char* what) {
      return detail::fail(info, errc::corrupt_file, "n-gram model file: %s", what);
    };
    detail::byte_reader in(payload);
    ngram_model m;
    std::uint32_t order = 0, vocab = 0, reserved = 0;
    if (!in.u32(order) || !in.u32(vocab) || !in.i32(m.bos_) || !in.i32(m.eos_) ||
        !in.f32(m.root_backoff_) || !in.u32(reserved))
      return corrupt("truncated");
    if (order < 1 || order > ngram_max_order || vocab < 1 || vocab > ngram_max_vocab ||
        reserved != 0)
      return detail::fail(info, errc::corrupt_file,
                          "n-gram model file: order %u or vocabulary %u out of range",
                          static_cast<unsigned>(order), static_cast<unsigned>(vocab));
    m.order_ = order;
    m.vocab_ = vocab;
    if (!m.valid_marker(m.bos_) || !m.valid_marker(m.eos_) ||
        (m.bos_ >= 0 && (m.bos_ == m.eos_ || vocab < 2)))
      return corrupt("bad BOS or EOS token");
    std::array<std::uint64_t, ngram_max_order> counts{};
    for (std::size_t k = 0; k < order; ++k) {
      if (!in.u64(counts[k]) || counts[k] >= std::numeric_limits<std::uint32_t>::max())
        return corrupt("n-gram count out of range");
    }
    for (std::size_t k = 0; k < order; ++k) {
      for (std::size_t d = 0; d < 3; ++d) {
        float v = 0;
        if (!in.f32(v) || !(v >= 0.0f && v <= 3.0f)) return corrupt("discount out of range");
        m.discounts_[k][d] = v;
      }
    }
    m.levels_.resize(order);
    for (std::size_t k = 0; k < order; ++k) {
      level& l = m.levels_[k];
      if (!in.elements(l.word, counts[k]) || !in.elements(l.prob, counts[k]))
        return corrupt("tables truncated");
      if (k + 1 < order) {
        if (!in.elements(l.child, counts[k] + 1) || !in.elements(l.backoff, counts[k]))
          return corrupt("tables truncated");
      }
    }
    if (!in.at_end()) return corrupt("trailing bytes");
    if (!m.validate()) return corrupt("inconsistent tables");
    m.finalize();
    return m;
  }

  std::size_t order_ = 0;
  std::size_t vocab_ = 0;
  token_id bos_ = -1;
  token_id eos_ = -1;
  float root_backoff_ = 1.0f;
  std::array<std::array<float, 3>, ngram_max_order> discounts_{};
  std::vector<level> levels_;
  // Derived from levels_[0] by finalize(); not stored in files.
  std::vector<float> p1_;
  std::vector<float> logp1_;
  std::vector<std::int32_t> uni_index_;
};

/// Collects training sentences and estimates an ngram_model from them. Memory: 4 bytes
/// per stored token (BOS/EOS included); `build` adds about 10 bytes per stored token and
/// 4 per n-gram of working space to the model it creates, and sorts once (O(T log T) for
/// T stored tokens).
class ngram_builder {
 public:
  /// A builder for `params`. Errors: `invalid_argument` when order is outside
  /// [1, ngram_max_order], vocab_size outside [1, ngram_max_vocab], BOS equals EOS, or BOS
  /// is set with a vocabulary of one token; `invalid_token` when BOS or EOS lies outside
  /// the vocabulary.
  [[nodiscard]] static result<ngram_builder> create(const ngram_options& params) noexcept {
    if (params.order < 1 || params.order > ngram_max_order) return errc::invalid_argument;
    if (params.vocab_size < 1 || params.vocab_size > ngram_max_vocab) return errc::invalid_argument;
    auto in_vocab = [&](std::optional<token_id> t) {
      return !t || (*t >= 0 && static_cast<std::size_t>(*t) < params.vocab_size);
    };
    if (!in_vocab(params.bos) || !in_vocab(params.eos)) return errc::invalid_token;
    if (params.bos && params.eos && *params.bos == *params.eos) return errc::invalid_argument;
    if (params.bos && params.vocab_size < 2) return errc::invalid_argument;
    ngram_builder b;
    b.params_ = params;
    b.starts_.push_back(0);
    return b;
  }

  /// Reserves room for `tokens` training tokens (BOS/EOS included).
  void reserve(std::size_t tokens) { tokens_.reserve(tokens); }

  /// Adds one training sentence, wrapped in BOS/EOS when they are set (an empty sentence
  /// then still teaches "BOS EOS"; without them it adds nothing). Errors, leaving the
  /// builder unchanged: `invalid_token` for an id outside the vocabulary or equal to BOS;
  /// `capacity_exceeded` past 2^32 - 2 stored tokens.
  [[nodiscard]] errc add_sentence(std::span<const token_id> sentence) {
    const token_id bos = params_.bos.value_or(-1);
    for (token_id t : sentence) {
      if (t < 0 || static_cast<std::size_t>(t) >= params_.vocab_size || t == bos)
        return errc::invalid_token;
    }
    const std::size_t add = sentence.size() + (params_.bos ? 1 : 0) + (params_.eos ? 1 : 0);
    if (add == 0) return errc::ok;
    if (add > max_tokens - tokens_.size()) return errc::capacity_exceeded;
    if (params_.bos) tokens_.push_back(*params_.bos);
    tokens_.insert(tokens_.end(), sentence.begin(), sentence.end());
    if (params_.eos) tokens_.push_back(*params_.eos);
    starts_.push_back(static_cast<std::uint32_t>(tokens_.size()));
    return errc::ok;
  }

  /// Adds every sentence of `sentences` (any range whose elements convert to
  /// std::span<const token_id>) with `add_sentence`, stopping at the first error, which it
  /// returns; the sentences before it stay added.
  template <class Sentences>
  [[nodiscard]] errc add_sentences(const Sentences& sentences) {
    for (const auto& s : sentences) TANDEM_TRY(add_sentence(std::span<const token_id>(s)));
    return errc::ok;
  }

  /// Training tokens stored so far, BOS/EOS included.
  [[nodiscard]] std::size_t token_count() const noexcept { return tokens_.size(); }
  /// Non-empty sentences stored so far.
  [[nodiscard]] std::size_t sentence_count() const noexcept { return starts_.size() - 1; }
  /// The parameters the builder was created with.
  [[nodiscard]] const ngram_options& options() const noexcept { return params_; }

  /// Estimates the model from the sentences added so far; the builder is unchanged and
  /// may take more sentences and build again. Discounts come from the count-of-counts at
  /// each order; where that estimate is undefined (a zero count-of-count) or falls
  /// outside (0, k], D_k takes the fallback 0.5 k. Errors: `insufficient_data` when no
  /// token besides BOS was added.
  [[nodiscard]] result<ngram_model> build() const {
    const std::size_t n_order = params_.order;
    const std::size_t total = tokens_.size();
    const token_id bos = params_.bos.value_or(-1);
    if (total == 0) return errc::insufficient_data;
    const token_id* tok = tokens_.data();

    // Tokens left in the sentence from each position, capped at the order.
    std::vector<std::uint8_t> rem(total);
    for (std::size_t s = 0; s + 1 < starts_.size(); ++s) {
      const std::size_t end = starts_[s + 1];
      for (std::size_t i = starts_[s]; i < end; ++i)
        rem[i] = static_cast<std::uint8_t>(std::min(n_order, end - i));
    }

    // Every position, sorted by the n-gram (up to N tokens, cut at the sentence end)
    // that starts there; a shorter n-gram sorts before its extensions. The k-grams then
    // form contiguous runs in lexicographic order for every k at once.
    std::vector<std::uint32_t> sa(total);
    std::iota(sa.begin(), sa.end(), std::uint32_t{0});
    std::sort(sa.begin(), sa.end(), [&](std::uint32_t a, std::uint32_t b) {
      const std::size_t n = std::min(rem[a], rem[b]);
      for (std::size_t j = 0; j < n; ++j) {
        if (tok[a + j] != tok[b + j]) return tok[a + j] < tok[b + j];
      }
      return rem[a] < rem[b];
    });
    // lcp[j]: tokens shared by the n-grams at sa[j - 1] and sa[j]. A new k-gram starts at
    // j for every k in (lcp[j], rem[sa[j]]].
    std::vector<std::uint8_t> lcp(total, 0);
    for (std::size_t j = 1; j < total; ++j) {
      const std::uint32_t a = sa[j - 1], b = sa[j];
      const std::size_t n = std::min(rem[a], rem[b]);
      std::size_t l = 0;
      while (l < n && tok[a + l] == tok[b + l]) ++l;
      lcp[j] = static_cast<std::uint8_t>(l);
    }

    ngram_model m;
    m.order_ = n_order;
    m.vocab_ = params_.vocab_size;
    m.bos_ = bos;
    m.eos_ = params_.eos.value_or(-1);
    m.levels_.resize(n_order);

    std::array<std::size_t, ngram_max_order> sizes{};
    for (std::size_t j = 0; j < total; ++j) {
      for (std::size_t k = lcp[j]; k < rem[sa[j]]; ++k) ++sizes[k];
    }
    for (std::size_t k = 0; k < n_order; ++k) {
      ngram_model::level& l = m.levels_[k];
      l.word.resize(sizes[k]);
      if (k + 1 < n_order) l.child.resize(sizes[k] + 1);
    }
    // counts[k]: a of each n-gram of order k + 1 (raw at the top order).
    std::vector<std::vector<std::uint32_t>> counts(n_order);
    for (std::size_t k = 0; k < n_order; ++k) counts[k].assign(sizes[k], 0);

    std::array<std::size_t, ngram_max_order + 1> fill{};
    for (std::size_t j = 0; j < total; ++j) {
      const std::uint32_t p = sa[j];
      const std::size_t r = rem[p];
      for (std::size_t k = lcp[j]; k < r; ++k) {
        const std::size_t idx = fill[k]++;
        ngram_model::level& l = m.levels_[k];
        l.word[idx] = tok[p + k];
        if (k + 1 < n_order) l.child[idx] = static_cast<std::uint32_t>(fill[k + 1]);
      }
      if (r == n_order) ++counts[n_order - 1][fill[n_order - 1] - 1];
    }
    for (std::size_t k = 0; k + 1 < n_order; ++k)
      m.levels_[k].child[sizes[k]] = static_cast<std::uint32_t>(sizes[k + 1]);

    // Continuation counts below the top order: one per distinct (k+1)-gram "v g" for its
    // suffix g, plus one per occurrence of g at a sentence start.
    {
      std::vector<std::uint32_t> group(total);
      for (std::size_t k = 0; k + 1 < n_order; ++k) {
        std::uint32_t g = 0;
        bool any = false;
        for (std::size_t j = 0; j < total; ++j) {
          const std::uint32_t p = sa[j];
          if (rem[p] <= k) continue;
          if (lcp[j] <= k && any) ++g;
          any = true;
          group[p] = g;
        }
        std::vector<std::uint32_t>& a = counts[k];
        for (std::size_t j = 0; j < total; ++j) {
          const std::uint32_t p = sa[j];
          if (rem[p] > k + 1 && lcp[j] <= k + 1) ++a[group[p + 1]];
        }
        for (std::size_t s = 0; s + 1 < starts_.size(); ++s) {
          const std::uint32_t p = starts_[s];
          if (rem[p] > k) ++a[group[p]];
        }
      }
    }
    sa = {};
    rem = {};
    lcp = {};

    // Discounts from count-of-counts (BOS, never predicted, left out).
    for (std::size_t k = 0; k < n_order; ++k) {
      std::array<std::uint64_t, 5> n{};
      const ngram_model::level& l = m.levels_[k];
      for (std::size_t i = 0; i < l.word.size(); ++i) {
        if (k == 0 && l.word[i] == bos) continue;
        const std::uint32_t c = counts[k][i];
        if (c <= 4) ++n[c];
      }
      m.discounts_[k] = estimate_discounts(n);
    }

    // Probabilities, order by order; each order's counts are freed once used, and the
    // float tables are allocated only now, so the peak stays near the final model's size.
    // Level 1: interpolated with the uniform distribution.
    {
      ngram_model::level& l = m.levels_[0];
      l.prob.resize(l.word.size());
      const auto& d = m.discounts_[0];
      double sum = 0.0, mass = 0.0;
      for (std::size_t i = 0; i < l.word.size(); ++i) {
        if (l.word[i] == bos) continue;
        sum += counts[0][i];
        mass += d[std::min<std::uint32_t>(counts[0][i], 3) - 1];
      }
      if (sum == 0.0) return errc::insufficient_data;
      for (std::size_t i = 0; i < l.word.size(); ++i) {
        const std::uint32_t c = counts[0][i];
        const double kept = static_cast<double>(c) - d[std::min<std::uint32_t>(c, 3) - 1];
        l.prob[i] = l.word[i] == bos ? 0.0f : static_cast<float>(kept / sum);
      }
      m.root_backoff_ = static_cast<float>(mass / sum);
      counts[0] = {};
    }
    // Higher levels: each context's continuations, normalised by their total count.
    for (std::size_t k = 1; k < n_order; ++k) {
      ngram_model::level& cl = m.levels_[k - 1];
      ngram_model::level& nl = m.levels_[k];
      const auto& d = m.discounts_[k];
      const std::vector<std::uint32_t>& a = counts[k];
      nl.prob.resize(nl.word.size());
      cl.backoff.resize(cl.word.size());
      for (std::size_t i = 0; i < cl.word.size(); ++i) {
        const std::uint32_t b = cl.child[i], e = cl.child[i + 1];
        if (b == e) {
          cl.backoff[i] = 1.0f;
          continue;
        }
        double sum = 0.0, mass = 0.0;
        for (std::uint32_t j = b; j < e; ++j) {
          sum += a[j];
          mass += d[std::min<std::uint32_t>(a[j], 3) - 1];
        }
        for (std::uint32_t j = b; j < e; ++j) {
          const double kept = static_cast<double>(a[j]) - d[std::min<std::uint32_t>(a[j], 3) - 1];
          nl.prob[j] = static_cast<float>(kept / sum);
        }
        cl.backoff[i] = static_cast<float>(mass / sum);
      }
      counts[k] = {};
    }
    m.finalize();
    return m;
  }

 private:
  static constexpr std::size_t max_tokens = std::numeric_limits<std::uint32_t>::max() - 1;

  ngram_builder() = default;

  // Chen & Goodman's estimates from n[1..4]; 0.5 k where undefined or outside (0, k].
  static std::array<float, 3> estimate_discounts(const std::array<std::uint64_t, 5>& n) noexcept {
    std::array<double, 3> d{0.5, 1.0, 1.5};
    const auto n1 = static_cast<double>(n[1]), n2 = static_cast<double>(n[2]),
               n3 = static_cast<double>(n[3]), n4 = static_cast<double>(n[4]);
    if (n1 > 0.0 && n2 > 0.0) {
      const double y = n1 / (n1 + 2.0 * n2);
      const std::array<double, 3> est{1.0 - 2.0 * y * n2 / n1, 2.0 - 3.0 * y * n3 / n2,
                                      n3 > 0.0 ? 3.0 - 4.0 * y * n4 / n3 : -1.0};
      for (std::size_t k = 0; k < 3; ++k) {
        if (est[k] > 0.0 && est[k] <= static_cast<double>(k + 1)) d[k] = est[k];
      }
    }
    return {static_cast<float>(d[0]), static_cast<float>(d[1]), static_cast<float>(d[2])};
  }

  ngram_options params_{};
  std::vector<token_id> tokens_;
  std::vector<std::uint32_t> starts_;  // sentence k spans [starts_[k], starts_[k + 1])
};

/// A decoding session over an ngram_model: one growing token sequence and its next-token
/// log-probabilities (softmax(logits()) is the model's distribution). Satisfies
/// LanguageModel, Rewindable, Scoring and TreeScoring. The model must outlive the session and is
/// only read; the session owns its buffers, sized at construction, so appending, scoring and
/// rewinding allocate nothing. Cost per prediction: O(vocab) plus O(continuations of the
/// last token). One session per thread; sessions over one model are independent.
class ngram_session {
 public:
  /// Default bound on the tokens a session holds.
  static constexpr std::size_t default_context_length = 8192;

  /// A session with an empty context over `model` (which must stay alive and in place),
  /// holding at most `context_length` tokens. logits() starts as the distribution after
  /// an empty context (P_1).
  explicit ngram_session(const ngram_model& model,
                         std::size_t context_length = default_context_length)
      : model_(&model),
        context_length_(context_length),
        logits_(model.vocab_size()),
        scratch_(model.vocab_size()) {
    TANDEM_ASSERT(context_length <= history_.max_size(), "ngram_session: context_length too large");
    history_.reserve(context_length);
    refresh();
  }

  /// The model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return model_->vocab_size(); }
  /// Tokens in the context.
  [[nodiscard]] std::size_t size() const noexcept { return history_.size(); }
  /// Most tokens the context can hold.
  [[nodiscard]] std::size_t context_length() const noexcept { return context_length_; }
  /// The context's tokens, oldest first; valid until the next mutating call.
  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return history_; }
  /// The model the session reads.
  [[nodiscard]] const ngram_model& model() const noexcept { return *model_; }

  /// Natural-log probabilities of the next token (vocab_size() entries; BOS is -inf).
  /// Valid until the next mutating call.
  [[nodiscard]] std::span<const float> logits() const noexcept { return logits_; }

  /// Appends `t` and computes the logits after its last token. Errors, leaving the
  /// session unchanged: `empty_input` for an empty span, `invalid_token` for an id outside
  /// the vocabulary, `context_overflow` past context_length().
  [[nodiscard]] errc append(std::span<const token_id> t) noexcept {
    pending_ = false;
    TANDEM_TRY(check(t));
    history_.insert(history_.end(), t.begin(), t.end());
    refresh();
    return errc::ok;
  }

  /// Drops the last `n` tokens and recomputes the logits for the shorter context.
  /// Errors: `rewind_out_of_range` when n > size() (nothing changes).
  [[nodiscard]] errc rewind(std::size_t n) noexcept {
    pending_ = false;
    if (n > history_.size()) return errc::rewind_out_of_range;
    history_.resize(history_.size() - n);
    refresh();
    return errc::ok;
  }

  /// Appends `t` and writes into rows[i * vocab_size(), (i + 1) * vocab_size()) the
  /// logits after t[0..i], for every i; logits() then equals the last row. Errors, leaving
  /// the session unchanged: those of `append`, and `size_mismatch` when rows.size() !=
  /// t.size() * vocab_size().
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) noexcept {
    pending_ = false;
    TANDEM_TRY(check(t));
    const std::size_t v = vocab_size();
    if (rows.size() / v != t.size() || rows.size() % v != 0) return errc::size_mismatch;
    for (std::size_t i = 0; i < t.size(); ++i) {
      history_.push_back(t[i]);
      model_->fill_log_probs(context(), rows.data() + i * v, scratch_.data());
    }
    std::copy_n(rows.data() + (t.size() - 1) * v, v, logits_.data());
    return errc::ok;
  }

  /// TreeScoring (core/concepts.hpp): writes into rows[i * V, (i + 1) * V) the logits after
  /// the held tokens followed by the path from a root to node i (parents[i] == -1: a root,
  /// else 0 <= parents[i] < i), and keeps the tree pending for commit_tree(); the held
  /// tokens and logits() are unchanged. A pending tree is dropped first. Errors, leaving
  /// the session unchanged (no tree pending): size_mismatch (parents or rows of the wrong
  /// size), empty_input, invalid_argument (a parent out of order), invalid_token,
  /// context_overflow (size() + tokens.size() > context_length()). Allocates only when the
  /// tree is larger than every earlier one.
  [[nodiscard]] errc score_tree(std::span<const token_id> tokens,
                                std::span<const std::int32_t> parents, std::span<float> rows) {
    pending_ = false;
    const std::size_t v = vocab_size(), n = tokens.size();
    TANDEM_TRY(detail::check_tree_input(n, parents, rows.size(), v));
    TANDEM_TRY(check(tokens));
    // The context of node i: the held tokens' tail, then the path root..i, cut to the
    // model's order - 1 tokens.
    const std::size_t keep = model_->order() - 1;
    std::array<token_id, ngram_max_order> ctx{};
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t m = 0;
      for (std::int32_t j = static_cast<std::int32_t>(i); j >= 0 && m < keep; j = parents[j])
        ctx[keep - 1 - m++] = tokens[static_cast<std::size_t>(j)];
      for (std::size_t h = history_.size(); h > 0 && m < keep; --h)
        ctx[keep - 1 - m++] = history_[h - 1];
      model_->fill_log_probs(std::span<const token_id>(ctx.data() + keep - m, m),
                             rows.data() + i * v, scratch_.data());
    }
    pending_tokens_.assign(tokens.begin(), tokens.end());
    pending_parents_.assign(parents.begin(), parents.end());
    pending_ = true;
    return errc::ok;
  }

  /// TreeScoring: appends the tokens of `path`, a chain of the pending tree's nodes (a
  /// root first, each next one a child of the one before; empty keeps none), and drops
  /// the tree; logits() then equals the row of path.back(). Errors: invalid_argument (no
  /// tree pending, or `path` not such a chain; the tree stays pending, nothing changes).
  [[nodiscard]] errc commit_tree(std::span<const std::int32_t> path) noexcept {
    if (!pending_ || !detail::is_tree_chain(pending_parents_, path)) return errc::invalid_argument;
    pending_ = false;
    if (path.empty()) return errc::ok;
    for (const std::int32_t i : path)
      history_.push_back(pending_tokens_[static_cast<std::size_t>(i)]);
    refresh();
    return errc::ok;
  }

  /// Empties the context (capacity kept); logits() becomes P_1 again. Drops a pending
  /// tree.
  void reset() noexcept {
    pending_ = false;
    history_.clear();
    refresh();
  }

 private:
  [[nodiscard]] errc check(std::span<const token_id> t) const noexcept {
    if (t.empty()) return errc::empty_input;
    for (token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab_size()) return errc::invalid_token;
    if (t.size() > context_length_ - history_.size()) return errc::context_overflow;
    return errc::ok;
  }
  [[nodiscard]] std::span<const token_id> context() const noexcept {
    const std::size_t keep = std::min(history_.size(), model_->order() - 1);
    return std::span<const token_id>(history_).subspan(history_.size() - keep);
  }
  void refresh() noexcept { model_->fill_log_probs(context(), logits_.data(), scratch_.data()); }

  const ngram_model* model_;
  std::size_t context_length_;
  std::vector<token_id> history_;
  std::vector<float> logits_;
  std::vector<float> scratch_;
  std::vector<token_id> pending_tokens_;  // the pending tree (score_tree), when pending_
  std::vector<std::int32_t> pending_parents_;
  bool pending_ = false;
};

/// Many sequences over one ngram_model: a MultiSequenceModel (with score and a
/// per-sequence context length) whose every sequence predicts exactly as a lone
/// ngram_session fed the same tokens. An n-gram model has no cache to share, so `append`
/// computes each sequence's logits in turn and `fork` copies the parent's tokens and
/// logits (no recompute). A fresh sequence's logits are P_1, as a fresh session's.
///
/// Errors are MultiSequenceModel's (no `decode_failed`: nothing fails after the checks),
/// each with details in `last_error()`; an error changes no sequence. Allocation: every
/// buffer (tokens and logits of each slot) is sized at construction; open, close, append,
/// score, rewind and fork allocate nothing. The model must outlive the session.
class ngram_multi_session {
 public:
  /// Room for `max_sequences` sequences of at most `context_length` tokens each over
  /// `model` (which must stay alive and in place). Precondition (TANDEM_ASSERT):
  /// max_sequences in [1, 2^31).
  explicit ngram_multi_session(const ngram_model& model, std::size_t max_sequences,
                               std::size_t context_length = ngram_session::default_context_length)
      : model_(&model),
        context_length_(context_length),
        slots_(max_sequences),
        scratch_(model.vocab_size()) {
    TANDEM_ASSERT(max_sequences >= 1 && max_sequences <= static_cast<std::size_t>(INT32_MAX),
                  "ngram_multi_session: max_sequences out of range");
    for (slot& s : slots_) {
      s.history.reserve(context_length);
      s.logits.resize(model.vocab_size());
    }
  }

  /// The model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return model_->vocab_size(); }
  /// The most sequences open at once.
  [[nodiscard]] std::size_t max_sequences() const noexcept { return slots_.size(); }
  /// The most tokens one sequence holds.
  [[nodiscard]] std::size_t context_length() const noexcept { return context_length_; }
  /// The model the session reads.
  [[nodiscard]] const ngram_model& model() const noexcept { return *model_; }
  /// Details of the last failed call.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

  /// True when `s` is open.
  [[nodiscard]] bool is_open(seq_id s) const noexcept { return slots_.is_open(s); }
  /// Tokens in `s`; 0 when not open.
  [[nodiscard]] std::size_t size(seq_id s) const noexcept {
    return is_open(s) ? at(s).history.size() : 0;
  }
  /// The tokens of `s`, oldest first (empty when not open); valid until `s` changes.
  [[nodiscard]] std::span<const token_id> tokens(seq_id s) const noexcept {
    return is_open(s) ? std::span<const token_id>(at(s).history) : std::span<const token_id>();
  }
  /// Natural-log probabilities of the next token of `s` (empty when not open).
  [[nodiscard]] std::span<const float> logits(seq_id s) const noexcept {
    return is_open(s) ? std::span<const float>(at(s).logits) : std::span<const float>();
  }

  /// Opens an empty sequence (logits P_1). Errors: `no_free_sequence`.
  [[nodiscard]] result<seq_id> open() noexcept {
    const result<seq_id> s_free = slots_.find_free("open", error_);
    if (!s_free) return s_free.error();
    const seq_id s = *s_free;
    slot& e = at(s);
    e.open = true;
    e.history.clear();
    refresh(e);
    return s;
  }

  /// Closes `s`. Errors: `invalid_sequence`.
  [[nodiscard]] errc close(seq_id s) noexcept {
    TANDEM_TRY(slots_.require_open(s, "close", error_));
    at(s).open = false;
    at(s).history.clear();
    return errc::ok;
  }

  /// Appends each entry's tokens to its sequence and computes its logits. Errors (no
  /// sequence changed): MultiSequenceModel's, without decode_failed.
  [[nodiscard]] errc append(std::span<const seq_tokens> batch) noexcept {
    TANDEM_TRY(validate(batch));
    for (const seq_tokens& b : batch) {
      if (b.tokens.empty()) continue;
      slot& e = at(b.seq);
      e.history.insert(e.history.end(), b.tokens.begin(), b.tokens.end());
      refresh(e);
    }
    return errc::ok;
  }

  /// Appends `t` to `s` and writes the logits after every prefix of `t` into `rows`.
  /// Errors (nothing changed): those of a one-entry append, `size_mismatch`.
  [[nodiscard]] errc score(seq_id s, std::span<const token_id> t, std::span<float> rows) noexcept {
    const seq_tokens one{s, t};
    TANDEM_TRY(validate(std::span<const seq_tokens>(&one, 1)));
    const std::size_t v = vocab_size();
    if (rows.size() != t.size() * v)
      return detail::fail(&error_, errc::size_mismatch, "score: %zu floats for %zu tokens",
                          rows.size(), t.size());
    if (t.empty()) return errc::ok;
    slot& e = at(s);
    for (std::size_t i = 0; i < t.size(); ++i) {
      e.history.push_back(t[i]);
      model_->fill_log_probs(context(e), rows.data() + i * v, scratch_.data());
    }
    std::copy_n(rows.data() + (t.size() - 1) * v, v, e.logits.data());
    return errc::ok;
  }

  /// Appends every entry and writes the logits after each of the last `scored[i]` tokens
  /// of entry i into `rows` (MultiSequenceBatchScoring). Errors (nothing changed): those of
  /// append, `size_mismatch`.
  [[nodiscard]] errc score(std::span<const seq_tokens> batch, std::span<const std::size_t> scored,
                           std::span<float> rows) noexcept {
    TANDEM_TRY(validate(batch));
    const std::size_t v = vocab_size();
    TANDEM_TRY(detail::check_score_rows(batch, scored, v, rows.size(), &error_));
    float* row = rows.data();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const seq_tokens& b = batch[i];
      if (b.tokens.empty()) continue;
      slot& e = at(b.seq);
      const std::size_t head = b.tokens.size() - scored[i];
      e.history.insert(e.history.end(), b.tokens.begin(), b.tokens.begin() + head);
      for (std::size_t j = head; j < b.tokens.size(); ++j, row += v) {
        e.history.push_back(b.tokens[j]);
        model_->fill_log_probs(context(e), row, scratch_.data());
      }
      if (scored[i] > 0)
        std::copy_n(row - v, v, e.logits.data());
      else
        refresh(e);
    }
    return errc::ok;
  }

  /// Drops the last `n` tokens of `s` and recomputes its logits. Errors:
  /// `invalid_sequence`, `rewind_out_of_range` (nothing changed).
  [[nodiscard]] errc rewind(seq_id s, std::size_t n) noexcept {
    TANDEM_TRY(slots_.require_open(s, "rewind", error_));
    slot& e = at(s);
    if (n > e.history.size())
      return detail::fail(&error_, errc::rewind_out_of_range, "rewind: %zu tokens of %zu", n,
                          e.history.size());
    e.history.resize(e.history.size() - n);
    refresh(e);
    return errc::ok;
  }

  /// Opens a copy of `s` (tokens and logits). Errors: `invalid_sequence`,
  /// `no_free_sequence` (nothing opened).
  [[nodiscard]] result<seq_id> fork(seq_id s) noexcept {
    const result<seq_id> c_free = slots_.fork_target(s, error_);
    if (!c_free) return c_free.error();
    const seq_id c = *c_free;
    slot& child = at(c);
    const slot& parent = at(s);
    child.open = true;
    child.history.assign(parent.history.begin(), parent.history.end());
    std::copy(parent.logits.begin(), parent.logits.end(), child.logits.begin());
    return c;
  }

 private:
  struct slot {
    bool open = false;
    [[nodiscard]] bool in_use() const noexcept { return open; }
    std::vector<token_id> history;
    std::vector<float> logits;
  };

  slot& at(seq_id s) noexcept { return slots_[static_cast<std::size_t>(s)]; }
  const slot& at(seq_id s) const noexcept { return slots_[static_cast<std::size_t>(s)]; }

  [[nodiscard]] errc validate(std::span<const seq_tokens> batch) noexcept {
    return detail::validate_batch(
        batch, vocab_size(), context_length_, [this](seq_id s) { return is_open(s); },
        [this](seq_id s) { return at(s).history.size(); }, &error_);
  }

  [[nodiscard]] std::span<const token_id> context(const slot& e) const noexcept {
    const std::size_t keep = std::min(e.history.size(), model_->order() - 1);
    return std::span<const token_id>(e.history).subspan(e.history.size() - keep);
  }
  void refresh(slot& e) noexcept {
    model_->fill_log_probs(context(e), e.logits.data(), scratch_.data());
  }

  const ngram_model* model_;
  std::size_t context_length_;
  detail::sequence_table<slot> slots_;
  std::vector<float> scratch_;
  error_info error_;
};

static_assert(LanguageModel<ngram_session> && Rewindable<ngram_session> && Scoring<ngram_session> &&
              TreeScoring<ngram_session>);
static_assert(MultiSequenceModel<ngram_multi_session> &&
              MultiSequenceScoring<ngram_multi_session> &&
              MultiSequenceBatchScoring<ngram_multi_session> &&
              HasContextLength<ngram_multi_session>);
static_assert(LanguageModel<sequence<ngram_multi_session>> &&
              Rewindable<sequence<ngram_multi_session>> && Scoring<sequence<ngram_multi_session>>);

}  // namespace tandem::inline v0
