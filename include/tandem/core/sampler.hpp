// tandem: samplers. greedy_sampler, categorical_sampler and sampler_chain, a composable
// chain of steps (penalties, temperature, top-k, top-p, min-p, then greedy or dist) in
// the manner of llama.cpp's, whose exact final distribution is available through
// probabilities() for speculative decoding.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

namespace detail {

/// Draws an index i with probability w[i] / sum(w) given u uniform in [0, 1) and the
/// total `z`; never returns an entry of weight 0.
template <class F = float>
inline std::size_t draw_index(std::span<const float> w, double z, double u) noexcept {
  using fbatch = simd::batch<F>;
  const double target = u * z;
  double cum = 0.0;
  std::size_t last = w.size();
  std::size_t i = 0;
  constexpr std::size_t block = 256;
  // Skip whole blocks with a SIMD sum; walk inside the block that crosses the target.
  while (i + block <= w.size()) {
    fbatch s(0.0f);
    for (std::size_t j = 0; j < block; j += simd_width) s += fbatch::load_unaligned(&w[i + j]);
    const double bs = static_cast<double>(simd::hadd(s));
    if (cum + bs > target) break;
    cum += bs;
    if (bs > 0.0) last = i;  // some positive entry in this block
    i += block;
  }
  for (; i < w.size(); ++i) {
    if (w[i] > 0.0f) {
      last = i;
      cum += static_cast<double>(w[i]);
      if (cum > target) return i;
    }
  }
  // Rounding left the target past the last positive weight: take the last positive one.
  if (last < w.size() && w[last] > 0.0f) return last;
  for (std::size_t j = w.size(); j-- > 0;)
    if (w[j] > 0.0f) return j;
  return 0;
}

/// Draws from softmax(scale * logits) without a buffer: one pass for the max, one for
/// the total, and a partial pass recomputing the exps of the crossing region.
template <class F = float>
inline result<token_id> draw_dense(std::span<const float> logits, float scale, double u) noexcept {
  using fbatch = simd::batch<F>;
  const auto m = checked_max<F>(logits);
  if (!m) return m.error();
  const double z = sum_exp<F>(logits, *m, scale, nullptr);
  const double target = u * static_cast<double>(z);
  alignas(64) float buf[simd_width];
  double cum = 0.0;
  std::size_t last = logits.size();
  const std::size_t n = logits.size();
  for (std::size_t i = 0; i < n; i += simd_width) {
    const std::size_t w = std::min(simd_width, n - i);
    const fbatch v =
        w == simd_width ? fbatch::load_unaligned(&logits[i]) : load_tail<F>(&logits[i], w, -f_inf);
    exp_nonpos((v - fbatch(*m)) * fbatch(scale)).store_aligned(buf);
    for (std::size_t j = 0; j < w; ++j) {
      if (buf[j] > 0.0f) {
        last = i + j;
        cum += static_cast<double>(buf[j]);
        if (cum > target) return static_cast<token_id>(i + j);
      }
    }
  }
  return static_cast<token_id>(last);
}

}  // namespace detail

/// Always picks the most likely token (ties: lowest id). Stateless.
///
/// Name it `greedy_sampler`: `basic_greedy_sampler<>` is its definition, a template only so
/// that its bodies, and the SIMD kernels they call, are compiled in the translation units
/// that use it (README, "Compile cost"); `Unused` is always void.
template <class Unused = void>
class basic_greedy_sampler {
 public:
  /// The argmax of `logits`. Errors: empty_input, non_finite, no_candidates.
  [[nodiscard]] result<token_id> sample(std::span<const float> logits) noexcept {
    const auto i = kernels::argmax(logits);
    if (!i) return i.error();
    return static_cast<token_id>(*i);
  }
  /// No history is kept; always ok.
  errc accept(token_id) noexcept { return errc::ok; }
  /// Nothing to forget.
  void reset() noexcept {}
  /// Writes the one-hot distribution greedy sampling follows. Errors: size_mismatch, then
  /// those of sample (out unspecified).
  [[nodiscard]] errc probabilities(std::span<const float> logits,
                                   std::span<float> out) const noexcept {
    if (out.size() != logits.size()) return errc::size_mismatch;
    const auto i = kernels::argmax(logits);
    if (!i) return i.error();
    std::fill(out.begin(), out.end(), 0.0f);
    out[*i] = 1.0f;
    return errc::ok;
  }
};

/// A sampler that always picks the most likely token (see basic_greedy_sampler).
using greedy_sampler = basic_greedy_sampler<void>;

/// Draws from softmax(logits / temperature) with its own explicitly seeded rng. Uses no
/// buffers: it never allocates.
///
/// Name it `categorical_sampler`: `basic_categorical_sampler<>` is its definition, a
/// template for the reason basic_greedy_sampler is; `Unused` is always void.
template <class Unused = void>
class basic_categorical_sampler {
 public:
  /// `temperature` must be > 0 and finite; otherwise sample returns invalid_temperature.
  basic_categorical_sampler(float temperature, std::uint64_t seed) noexcept
      : temperature_(temperature), rng_(seed) {}

  /// One draw. Errors: invalid_temperature, empty_input, non_finite, no_candidates; the
  /// rng advances only on success.
  [[nodiscard]] result<token_id> sample(std::span<const float> logits) noexcept {
    if (!valid_temperature()) return errc::invalid_temperature;
    return detail::draw_dense(logits, 1.0f / temperature_, rng_.uniform());
  }
  /// No history is kept; always ok.
  errc accept(token_id) noexcept { return errc::ok; }
  /// Nothing to forget (the rng stream continues; use reseed to restart it).
  void reset() noexcept {}
  /// Restarts the random stream.
  void reseed(std::uint64_t seed) noexcept { rng_.reseed(seed); }
  /// Writes softmax(logits / temperature). Errors: size_mismatch, then those of sample.
  [[nodiscard]] errc probabilities(std::span<const float> logits,
                                   std::span<float> out) const noexcept {
    if (out.size() != logits.size()) return errc::size_mismatch;
    if (!valid_temperature()) return errc::invalid_temperature;
    const auto m = kernels::max_logit(logits);
    if (!m) return m.error();
    const double z = detail::sum_exp(logits, *m, 1.0f / temperature_, out.data());
    const auto inv = static_cast<float>(1.0 / z);
    for (float& v : out) v *= inv;
    return errc::ok;
  }
  /// The temperature given at construction (not validated until use).
  [[nodiscard]] float temperature() const noexcept { return temperature_; }

 private:
  bool valid_temperature() const noexcept {
    return temperature_ > 0.0f && std::isfinite(temperature_);
  }
  float temperature_;
  rng rng_;
};

/// A sampler that draws from softmax(logits / temperature) (see basic_categorical_sampler).
using categorical_sampler = basic_categorical_sampler<void>;

/// The steps a sampler_chain is built from.
namespace sampling {
/// llama.cpp's penalties over the last `last_n` accepted tokens (0 disables): a logit x of
/// a token seen c times becomes (x > 0 ? x / repeat : x * repeat) - c * frequency -
/// presence. Must be the chain's first step.
struct penalties {
  std::size_t last_n = 64;  ///< how many recent accepted tokens count (0 disables)
  float repeat = 1.0f;      ///< repetition penalty, > 0 and finite (1 disables)
  float frequency = 0.0f;   ///< subtracted once per occurrence, finite (0 disables)
  float presence = 0.0f;    ///< subtracted once if the token occurs, finite (0 disables)
};
/// Divides the logits by t (> 0, finite). Several temperature steps multiply.
struct temperature {
  float t = 1.0f;  ///< the temperature, > 0 and finite
};
/// Keeps the k (> 0) best tokens; ties at the boundary go to lower ids.
struct top_k {
  std::size_t k = 40;  ///< how many tokens to keep, > 0
};
/// Keeps the shortest rank-order prefix whose probability reaches p, p in (0, 1].
struct top_p {
  float p = 0.95f;  ///< the probability mass to reach, in (0, 1]
};
/// Keeps tokens with probability >= p * the largest, p in [0, 1].
struct min_p {
  float p = 0.05f;  ///< the fraction of the largest probability to keep, in [0, 1]
};
/// Terminal: the best remaining token (ties: lowest id).
struct greedy {};
/// Terminal: a draw from the remaining tokens' distribution with the chain's rng.
struct dist {};
}  // namespace sampling

/// A chain of sampling steps applied in the order added, ending in `greedy` or `dist`.
///
/// Temperature is folded into the probabilities of later steps rather than applied to
/// every logit (top-k and greedy are unaffected by it). The chain owns its buffers: after
/// `reserve(vocab_size)` neither `sample` nor `probabilities` allocates for logits of at
/// most that size. Not thread-safe; one chain per thread.
///
/// Name it `sampler_chain`: `basic_sampler_chain<>` is its definition, a template only so
/// that its bodies are compiled in the translation units that use a chain (README,
/// "Compile cost"); `Unused` is always void.
template <class Unused = void>
class basic_sampler_chain {
 public:
  /// The most steps one chain holds (add returns capacity_exceeded beyond it).
  static constexpr std::size_t max_steps = 16;

  /// An empty chain whose `dist` step draws from an rng seeded with `seed`.
  explicit basic_sampler_chain(std::uint64_t seed) noexcept : rng_(seed) {}

  ///@{
  /// Appends a step. Errors (chain unchanged): invalid_argument for a parameter out of its
  /// domain, a step after the terminal one, or penalties that are not the first step;
  /// invalid_temperature for temperature <= 0 or non-finite; capacity_exceeded beyond
  /// max_steps. Adding penalties allocates the history ring.
  [[nodiscard]] errc add(const sampling::penalties& s) {
    if (!(s.repeat > 0.0f) || !std::isfinite(s.repeat) || !std::isfinite(s.frequency) ||
        !std::isfinite(s.presence))
      return errc::invalid_argument;
    if (count_ != 0) return errc::invalid_argument;
    TANDEM_TRY(push(step{kind::penalties, 0.0f, 0}));
    pen_ = s;
    history_.assign(s.last_n, 0);
    hist_size_ = hist_head_ = 0;
    return errc::ok;
  }
  [[nodiscard]] errc add(const sampling::temperature& s) noexcept {
    if (!(s.t > 0.0f) || !std::isfinite(s.t)) return errc::invalid_temperature;
    return push(step{kind::temperature, s.t, 0});
  }
  [[nodiscard]] errc add(const sampling::top_k& s) noexcept {
    if (s.k == 0) return errc::invalid_argument;
    return push(step{kind::top_k, 0.0f, s.k});
  }
  [[nodiscard]] errc add(const sampling::top_p& s) noexcept {
    if (!(s.p > 0.0f && s.p <= 1.0f)) return errc::invalid_argument;
    return push(step{kind::top_p, s.p, 0});
  }
  [[nodiscard]] errc add(const sampling::min_p& s) noexcept {
    if (!(s.p >= 0.0f && s.p <= 1.0f)) return errc::invalid_argument;
    return push(step{kind::min_p, s.p, 0});
  }
  [[nodiscard]] errc add(const sampling::greedy&) noexcept {
    return push(step{kind::greedy, 0.0f, 0});
  }
  [[nodiscard]] errc add(const sampling::dist&) noexcept { return push(step{kind::dist, 0.0f, 0}); }
  ///@}

  /// Sizes the buffers for logits of up to `vocab_size` entries (allocates).
  void reserve(std::size_t vocab_size) {
    if (cand_.size() < vocab_size) cand_.resize(vocab_size);
    if (exps_.size() < vocab_size) exps_.resize(vocab_size);
    if (has_penalties() && work_.size() < vocab_size) {
      work_.resize(vocab_size);
      counts_.resize(vocab_size, 0);
    }
  }

  /// Picks a token: runs the steps, then the terminal one. Errors: invalid_argument (no
  /// terminal step), empty_input, non_finite, no_candidates, invalid_token (a history id
  /// outside the vocabulary). The rng advances only when `dist` draws. Allocates only when
  /// `logits` is larger than the reserved size.
  [[nodiscard]] result<token_id> sample(std::span<const float> logits) {
    TANDEM_TRY(run(logits));
    if (terminal_ == kind::greedy) {
      if (dense_) {
        const auto i = kernels::argmax(src_);
        if (!i) return i.error();
        return static_cast<token_id>(*i);
      }
      return best_candidate();
    }
    if (dense_) {
      const auto m = kernels::max_logit(src_);
      if (!m) return m.error();
      const double u = rng_.uniform();
      const double z = detail::sum_exp(src_, *m, scale_, exps_.data());
      return static_cast<token_id>(
          detail::draw_index(std::span<const float>(exps_.data(), src_.size()), z, u));
    }
    const double u = rng_.uniform();
    const std::span<const kernels::candidate> c(cand_.data(), ncand_);
    const double z = detail::candidate_exps(c, max_, scale_, exps_.data());
    return c[detail::draw_index(std::span<const float>(exps_.data(), ncand_), z, u)].id;
  }

  /// Writes the final distribution over the whole vocabulary that the terminal step
  /// samples from: one-hot for greedy, else the normalised probabilities of the kept set
  /// (zeros elsewhere). The rng does not advance. Errors: size_mismatch (out must have
  /// logits.size() entries), then those of sample; out is unspecified on error.
  [[nodiscard]] errc probabilities(std::span<const float> logits, std::span<float> out) {
    if (out.size() != logits.size()) return errc::size_mismatch;
    TANDEM_TRY(run(logits));
    if (terminal_ == kind::greedy) {
      std::fill(out.begin(), out.end(), 0.0f);
      if (dense_) {
        const auto i = kernels::argmax(src_);
        if (!i) return i.error();
        out[*i] = 1.0f;
      } else {
        const auto t = best_candidate();
        if (!t) return t.error();
        out[static_cast<std::size_t>(*t)] = 1.0f;
      }
      return errc::ok;
    }
    if (dense_) {
      const auto m = kernels::max_logit(src_);
      if (!m) return m.error();
      const double z = detail::sum_exp(src_, *m, scale_, out.data());
      const auto inv = static_cast<float>(1.0 / z);
      for (float& v : out) v *= inv;
      return errc::ok;
    }
    std::fill(out.begin(), out.end(), 0.0f);
    const std::span<const kernels::candidate> c(cand_.data(), ncand_);
    const double z = detail::candidate_exps(c, max_, scale_, exps_.data());
    for (std::size_t i = 0; i < ncand_; ++i)
      out[static_cast<std::size_t>(c[i].id)] = static_cast<float>(exps_[i] / z);
    return errc::ok;
  }

  /// Records a token that became part of the context (for penalties; a no-op without
  /// them). Errors: invalid_token for a negative id, or an id >= the reserved vocabulary
  /// size when one was reserved; the history is then unchanged.
  errc accept(token_id t) noexcept {
    if (t < 0 || (!cand_.empty() && static_cast<std::size_t>(t) >= cand_.size()))
      return errc::invalid_token;
    if (history_.empty()) return errc::ok;
    history_[hist_head_] = t;
    hist_head_ = (hist_head_ + 1) % history_.size();
    hist_size_ = std::min(hist_size_ + 1, history_.size());
    return errc::ok;
  }

  /// Forgets the accepted history (the rng stream continues).
  void reset() noexcept { hist_size_ = hist_head_ = 0; }

  /// Restarts the rng stream as if constructed with `seed`.
  void reseed(std::uint64_t seed) noexcept { rng_.reseed(seed); }

  /// Number of steps added, terminal included.
  [[nodiscard]] std::size_t size() const noexcept { return count_; }

 private:
  enum class kind : std::uint8_t {
    none,
    penalties,
    temperature,
    top_k,
    top_p,
    min_p,
    greedy,
    dist
  };
  struct step {
    kind k;
    float f;
    std::size_t n;
  };

  errc push(step s) noexcept {
    if (terminal_ != kind::none) return errc::invalid_argument;
    if (count_ == max_steps) return errc::capacity_exceeded;
    steps_[count_++] = s;
    if (s.k == kind::greedy || s.k == kind::dist) terminal_ = s.k;
    return errc::ok;
  }
  bool has_penalties() const noexcept { return count_ > 0 && steps_[0].k == kind::penalties; }

  result<token_id> best_candidate() const noexcept {
    const kernels::candidate* b = cand_.data();
    const kernels::candidate* best =
        std::min_element(b, b + ncand_, kernels::ranks_before);  // first in rank order
    return best->id;
  }

  float candidates_max() const noexcept {
    float m = -detail::f_inf;
    for (std::size_t i = 0; i < ncand_; ++i) m = std::max(m, cand_[i].logit);
    return m;
  }

  // The first n entries of cand_, unsorted, are the candidates a dense kernel kept.
  void take_unsorted(std::size_t n) noexcept {
    ncand_ = n;
    dense_ = false;
    sorted_ = false;
    max_ = candidates_max();
  }

  void sort_candidates() noexcept {
    if (!sorted_) std::sort(cand_.data(), cand_.data() + ncand_, kernels::ranks_before);
    sorted_ = true;
  }

  /// Runs the non-terminal steps: leaves either the dense view src_ (dense_: the logits,
  /// or their penalised copy in work_) or the kept candidates cand_[0, ncand_) with their
  /// maximum max_; scale_ is the product of 1/t of the temperature steps. Dense kernels
  /// validate the logits (non_finite, no_candidates) in their first pass.
  errc run(std::span<const float> logits) {
    if (terminal_ == kind::none) return errc::invalid_argument;
    if (logits.empty()) return errc::empty_input;
    reserve(logits.size());
    const std::size_t n = logits.size();
    src_ = logits;
    dense_ = true;
    sorted_ = false;
    ncand_ = 0;
    scale_ = 1.0f;
    for (std::size_t si = 0; si < count_; ++si) {
      const step& s = steps_[si];
      switch (s.k) {
        case kind::penalties: {
          if (hist_size_ == 0) break;
          std::copy(logits.begin(), logits.end(), work_.begin());
          const std::span<float> w(work_.data(), n);
          // The ring's first hist_size_ slots hold the history once it has wrapped or not.
          TANDEM_TRY(kernels::apply_penalties(
              w, std::span<const token_id>(history_.data(), hist_size_), pen_.repeat,
              pen_.frequency, pen_.presence, std::span<std::uint32_t>(counts_.data(), n)));
          src_ = w;
          break;
        }
        case kind::temperature:
          scale_ /= s.f;
          break;
        case kind::top_k: {
          if (dense_) {
            const auto r = kernels::top_k(src_, s.n, std::span<kernels::candidate>(cand_));
            if (!r) return r.error();
            ncand_ = *r;
            dense_ = false;
            sorted_ = true;
            max_ = cand_[0].logit;
          } else if (ncand_ > s.n) {
            kernels::candidate* b = cand_.data();
            std::partial_sort(b, b + s.n, b + ncand_, kernels::ranks_before);
            ncand_ = s.n;
            sorted_ = true;
          }
          break;
        }
        case kind::top_p: {
          if (dense_) {
            const auto r = kernels::top_p(src_, s.f, std::span<kernels::candidate>(cand_),
                                          std::span<float>(exps_.data(), n), scale_);
            if (!r) return r.error();
            take_unsorted(*r);
          } else {
            sort_candidates();
            const std::span<const kernels::candidate> c(cand_.data(), ncand_);
            const double z = detail::candidate_exps(c, max_, scale_, exps_.data());
            const double target = static_cast<double>(s.f) * z;
            double cum = 0.0;
            std::size_t keep = ncand_;
            for (std::size_t i = 0; i < ncand_; ++i) {
              cum += static_cast<double>(exps_[i]);
              if (cum >= target) {
                keep = i + 1;
                break;
              }
            }
            ncand_ = keep;
          }
          break;
        }
        case kind::min_p: {
          if (s.f == 0.0f) break;
          if (dense_) {
            const auto r = kernels::min_p(src_, s.f, std::span<kernels::candidate>(cand_), scale_);
            if (!r) return r.error();
            take_unsorted(*r);
          } else {
            const float lp = std::log(s.f);
            std::size_t j = 0;
            for (std::size_t i = 0; i < ncand_; ++i)
              if ((cand_[i].logit - max_) * scale_ >= lp) cand_[j++] = cand_[i];
            ncand_ = j;
          }
          break;
        }
        case kind::greedy:
        case kind::dist:
        case kind::none:
          break;
      }
    }
    return errc::ok;
  }

  std::array<step, max_steps> steps_{};
  std::size_t count_ = 0;
  kind terminal_ = kind::none;
  sampling::penalties pen_{};
  std::vector<token_id> history_;  // ring of the last pen_.last_n accepted tokens
  std::size_t hist_size_ = 0, hist_head_ = 0;
  std::vector<kernels::candidate> cand_;
  std::vector<float> exps_;
  std::vector<float> work_;
  std::vector<std::uint32_t> counts_;
  rng rng_;
  // Per-call state of run().
  std::span<const float> src_{};
  bool dense_ = true, sorted_ = false;
  std::size_t ncand_ = 0;
  float scale_ = 1.0f, max_ = 0.0f;
};

/// A chain of sampling steps (see basic_sampler_chain).
using sampler_chain = basic_sampler_chain<void>;

static_assert(Sampler<greedy_sampler>);
static_assert(Sampler<categorical_sampler>);
static_assert(Sampler<sampler_chain>);

/// Builds the chain a text-level request asks for: temperature 0 gives greedy; otherwise
/// temperature, top_k (if > 0), top_p (if < 1), min_p (if > 0), then dist seeded with
/// p.seed. Buffers are reserved for `vocab_size`. Errors: invalid_temperature (negative or
/// non-finite temperature), invalid_argument (top_p outside (0, 1], min_p outside [0, 1],
/// vocab_size 0). A template (`Unused` is always void) for the reason basic_sampler_chain is.
template <class Unused = void>
[[nodiscard]] result<basic_sampler_chain<Unused>> make_sampler(const sampling_options& p,
                                                               std::size_t vocab_size) {
  if (vocab_size == 0) return errc::invalid_argument;
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) return errc::invalid_temperature;
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return errc::invalid_argument;
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return errc::invalid_argument;
  basic_sampler_chain<Unused> c(p.seed);
  if (p.temperature == 0.0f) {
    TANDEM_TRY(c.add(sampling::greedy{}));
  } else {
    TANDEM_TRY(c.add(sampling::temperature{p.temperature}));
    if (p.top_k > 0) TANDEM_TRY(c.add(sampling::top_k{p.top_k}));
    if (p.top_p < 1.0f) TANDEM_TRY(c.add(sampling::top_p{p.top_p}));
    if (p.min_p > 0.0f) TANDEM_TRY(c.add(sampling::min_p{p.min_p}));
    TANDEM_TRY(c.add(sampling::dist{}));
  }
  c.reserve(vocab_size);
  return c;
}

}  // namespace tandem::inline v0
