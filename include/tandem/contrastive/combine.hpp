// tandem: logit arithmetic kernels. Each combines the next-token logits of two or more
// models over one vocabulary into one logit vector that the samplers accept:
//
// - contrastive decoding, Li et al. 2022: log p_E(x) - log p_A(x) on the plausibility head
//   V_head = {x : p_E(x) >= alpha max p_E}, -inf elsewhere; p_A at temperature tau;
// - contrastive decoding, O'Brien & Lewis 2023: (1 + beta) s_E(x) - beta s_A(x) on
//   {x : s_E(x) >= log(alpha) + max s_E} (raw logits), -inf elsewhere;
// - proxy tuning, Liu et al. 2024: s_large + w (s_tuned - s_base);
// - weighted log-linear ensemble: sum_k w_k s_k (the product of experts prod p_k^w_k up to
//   normalisation).
//
// Masking: -inf means "masked" (probability zero). The support of a combination is the
// intersection of its parts' supports: an entry any contributing part masks is masked in
// the output. So -inf - (-inf) never appears, and the output is always a valid sampler
// input. For contrastive decoding this means a token the amateur masks (for example a
// token with no counterpart under a vocabulary map) is masked too: it could not be fed to
// the amateur in lock-step anyway. The plausibility head is then taken over the tokens
// both models can produce: V_head = {x : p_E(x) >= alpha max_{y : s_A(y) > -inf} p_E(y),
// s_A(x) > -inf}. When the amateur masks nothing (one vocabulary, a smoothed or neural
// amateur) this is exactly the papers' head; otherwise it keeps decoding possible when
// every token the expert favours lacks an amateur counterpart.
//
// Errors shared by every kernel: empty_input (an empty input), size_mismatch (inputs and
// output of different sizes), non_finite (NaN or +inf in an input, or an overflow to
// +inf in the output), no_candidates (an input, or the output, masked everywhere),
// invalid_argument / invalid_temperature (parameters, see each). On error the output's
// contents are unspecified. Kernels never allocate; the output must not overlap an input.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/result.hpp"

// GCC 12's AVX-512 intrinsics warn once inlined here at -O2/-O3 (GCC bug 105593), as in
// core/logits.hpp (xsimd backend only).
#if defined(TANDEM_KERNELS_XSIMD) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TANDEM_COMBINE_POP_DIAGNOSTICS
#endif

namespace tandem::inline v0 {

/// Which published form of contrastive decoding to compute.
enum class contrastive_form : unsigned char {
  li2022,      ///< log p_E - log p_A(tau) on V_head (Li et al. 2022)
  obrien2023,  ///< (1 + beta) s_E - beta s_A on the alpha mask in logit space (O'Brien & Lewis
               ///< 2023)
};

/// Parameters of contrastive decoding; the defaults are the papers'.
struct contrastive_options {
  contrastive_form form = contrastive_form::li2022;  ///< which paper's formula
  /// Plausibility threshold, in (0, 1]: tokens with p_E(x) < alpha max p_E are masked.
  /// Both papers use 0.1.
  float alpha = 0.1f;
  /// O'Brien & Lewis only: contrast strength, finite and >= 0 (0 gives the expert's own
  /// logits on the mask). The paper's default is 0.5.
  float beta = 0.5f;
  /// Li et al. only: the amateur's temperature tau, finite and > 0 (1 leaves the amateur
  /// as it is; the paper tunes it, 0.5 to 1.5).
  float amateur_temperature = 1.0f;
};

/// Parameters of proxy tuning.
struct proxy_tuning_options {
  /// Weight w of the tuning offset s_tuned - s_base; finite. Liu et al. use 1.
  float weight = 1.0f;
};

/// Checks contrastive parameters: invalid_argument for alpha outside (0, 1] or a negative
/// or non-finite beta, invalid_temperature for tau <= 0 or non-finite, else ok. Only the
/// fields the chosen form reads are checked besides alpha.
[[nodiscard]] constexpr errc validate(const contrastive_options& p) noexcept {
  if (!(p.alpha > 0.0f && p.alpha <= 1.0f)) return errc::invalid_argument;
  if (p.form == contrastive_form::obrien2023) {
    if (!(p.beta >= 0.0f && p.beta <= std::numeric_limits<float>::max()))
      return errc::invalid_argument;
  } else if (p.form == contrastive_form::li2022) {
    if (!(p.amateur_temperature > 0.0f &&
          p.amateur_temperature <= std::numeric_limits<float>::max()))
      return errc::invalid_temperature;
  } else {
    return errc::invalid_argument;
  }
  return errc::ok;
}

/// Checks proxy-tuning parameters: invalid_argument for a non-finite weight, else ok.
[[nodiscard]] constexpr errc validate(const proxy_tuning_options& p) noexcept {
  const float lim = std::numeric_limits<float>::max();
  return p.weight >= -lim && p.weight <= lim ? errc::ok : errc::invalid_argument;
}

namespace detail {

/// Shared tail of the kernels: tracks whether some output entry is finite and whether
/// one overflowed to +inf or NaN.
struct output_check {
  fmask any_finite = fmask(false);
  fmask bad = fmask(false);
  void add(fbatch v) noexcept {
    any_finite = any_finite | (v > fbatch(-f_inf));
    bad = bad | simd::isnan(v) | (v == fbatch(f_inf));
  }
  [[nodiscard]] errc result() const noexcept {
    if (simd::any(bad)) return errc::non_finite;
    if (!simd::any(any_finite)) return errc::no_candidates;
    return errc::ok;
  }
};

/// Runs `f(batch_index, width)` over [0, n) in SIMD steps; the tail is handled by `f`
/// with loads through load_tail and stores through a bounce buffer.
template <class Body>
inline void for_each_batch(std::size_t n, float* out, output_check& chk, Body&& body) noexcept {
  const std::size_t nv = n - n % simd_width;
  std::size_t i = 0;
  for (; i < nv; i += simd_width) {
    const fbatch v = body(i, simd_width);
    v.store_unaligned(out + i);
    chk.add(v);
  }
  if (i < n) {
    alignas(64) float buf[simd_width];
    const fbatch v = body(i, n - i);
    v.store_aligned(buf);
    for (std::size_t j = 0; j < n - i; ++j) out[i + j] = buf[j];
    // Lanes past the end are computed from -inf fills; they must not count.
    for (std::size_t j = n - i; j < simd_width; ++j) buf[j] = -f_inf;
    chk.add(fbatch::load_aligned(buf));
  }
}

/// Largest e[i] over the entries where a[i] is not masked (-inf when there is none).
/// Inputs already validated, of equal sizes.
inline float max_where_unmasked(const float* e, const float* a, std::size_t n) noexcept {
  const fbatch ninf(-f_inf);
  fbatch m(-f_inf);
  const std::size_t nv = n - n % simd_width;
  std::size_t i = 0;
  for (; i < nv; i += simd_width) {
    const fbatch va = fbatch::load_unaligned(a + i);
    m = simd::max(m, detail::simd::select(va != ninf, fbatch::load_unaligned(e + i), ninf));
  }
  float r = hmax(m);
  for (; i < n; ++i)
    if (a[i] != -f_inf && e[i] > r) r = e[i];
  return r;
}

/// Loads simd_width floats at p + i, or the `w` < simd_width that remain padded with -inf.
inline fbatch load_at(const float* p, std::size_t i, std::size_t w) noexcept {
  return w == simd_width ? fbatch::load_unaligned(p + i) : load_tail(p + i, w, -f_inf);
}

}  // namespace detail

/// Contrastive scores of `expert` and `amateur` logits (one vocabulary) into `out`, in the
/// form `p.form` selects (see the header comment); entries outside the plausibility head,
/// or masked by either model, are -inf. Li et al.'s values are exact log-probability
/// differences (both models normalised, the amateur at temperature tau). Errors: those of
/// validate(p), then the shared ones: empty_input, size_mismatch (inputs and output of
/// different sizes), non_finite (NaN or +inf in an input, or an overflow in the output),
/// no_candidates (an input or the output masked everywhere). On error the output's
/// contents are unspecified. Never allocates; `out` must not overlap an input.
[[nodiscard]] inline errc contrastive_scores(std::span<const float> expert,
                                             std::span<const float> amateur,
                                             const contrastive_options& p,
                                             std::span<float> out) noexcept {
  using detail::fbatch;
  TANDEM_TRY(validate(p));
  if (expert.empty() || amateur.empty()) return errc::empty_input;
  if (expert.size() != amateur.size() || out.size() != expert.size()) return errc::size_mismatch;
  const auto me = detail::checked_max(expert);
  if (!me) return me.error();
  const auto ma = detail::checked_max(amateur);
  if (!ma) return ma.error();
  // The head is taken over the tokens both models can produce (see the header comment).
  const float me_common = detail::max_where_unmasked(expert.data(), amateur.data(), expert.size());
  if (me_common == -detail::f_inf) return errc::no_candidates;
  const float thr = me_common + std::log(p.alpha);
  const fbatch vthr(thr), ninf(-detail::f_inf);
  const float* e = expert.data();
  const float* a = amateur.data();
  detail::output_check chk;
  if (p.form == contrastive_form::li2022) {
    const float inv_tau = 1.0f / p.amateur_temperature;
    const double ze = detail::sum_exp(expert, *me, 1.0f, nullptr);
    const double za = detail::sum_exp(amateur, *ma, inv_tau, nullptr);
    // log p_E(x) - log p_A(x) = (e - lse_E) - (a / tau - lse_A)
    //                        = e - a / tau + (lse_A - lse_E), with lse_A = m_A/tau + log za.
    const auto shift = static_cast<float>(static_cast<double>(*ma) * inv_tau + std::log(za) -
                                          (static_cast<double>(*me) + std::log(ze)));
    const fbatch vs(shift), vi(inv_tau);
    detail::for_each_batch(out.size(), out.data(), chk, [&](std::size_t i, std::size_t w) {
      const fbatch ve = detail::load_at(e, i, w), va = detail::load_at(a, i, w);
      const auto keep = (ve >= vthr) & (va != ninf);
      return detail::simd::select(keep, ve - va * vi + vs, ninf);
    });
  } else {
    const fbatch b1(1.0f + p.beta), b(p.beta);
    detail::for_each_batch(out.size(), out.data(), chk, [&](std::size_t i, std::size_t w) {
      const fbatch ve = detail::load_at(e, i, w), va = detail::load_at(a, i, w);
      const auto keep = (ve >= vthr) & (va != ninf);
      return detail::simd::select(keep, b1 * ve - b * va, ninf);
    });
  }
  return chk.result();
}

/// Proxy-tuning logits s_large + w (s_tuned - s_base) into `out`; an entry masked by any of
/// the three is masked. Errors: those of validate(p), then the shared ones (as
/// contrastive_scores).
[[nodiscard]] inline errc proxy_tuning_scores(std::span<const float> large,
                                              std::span<const float> tuned,
                                              std::span<const float> base,
                                              const proxy_tuning_options& p,
                                              std::span<float> out) noexcept {
  using detail::fbatch;
  TANDEM_TRY(validate(p));
  if (large.empty() || tuned.empty() || base.empty()) return errc::empty_input;
  if (tuned.size() != large.size() || base.size() != large.size() || out.size() != large.size())
    return errc::size_mismatch;
  for (const auto s : {large, tuned, base}) {
    const auto m = detail::checked_max(s);
    if (!m) return m.error();
  }
  const fbatch vw(p.weight), ninf(-detail::f_inf);
  detail::output_check chk;
  detail::for_each_batch(out.size(), out.data(), chk, [&](std::size_t i, std::size_t w) {
    const fbatch l = detail::load_at(large.data(), i, w), t = detail::load_at(tuned.data(), i, w),
                 b = detail::load_at(base.data(), i, w);
    const auto masked = (l == ninf) | (t == ninf) | (b == ninf);
    return detail::simd::select(masked, ninf, detail::simd::fma(vw, t - b, l));
  });
  return chk.result();
}

/// Weighted log-linear combination sum_k weights[k] * parts[k] into `out`. Weights must be
/// finite and >= 0 with at least one > 0 (else invalid_argument; size_mismatch when
/// weights.size() != parts.size()); a part with weight 0 is ignored entirely (its masks
/// included). An entry masked by any part with a positive weight is masked. Errors:
/// besides those, the shared ones (as contrastive_scores; empty_input also for no parts).
[[nodiscard]] inline errc log_linear_scores(std::span<const std::span<const float>> parts,
                                            std::span<const float> weights,
                                            std::span<float> out) noexcept {
  using detail::fbatch;
  if (parts.empty()) return errc::empty_input;
  if (weights.size() != parts.size()) return errc::size_mismatch;
  bool any_positive = false;
  for (const float w : weights) {
    if (!(w >= 0.0f && w <= std::numeric_limits<float>::max())) return errc::invalid_argument;
    any_positive = any_positive || w > 0.0f;
  }
  if (!any_positive) return errc::invalid_argument;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (parts[k].empty()) return errc::empty_input;
    if (parts[k].size() != out.size()) return errc::size_mismatch;
    if (weights[k] == 0.0f) continue;
    const auto m = detail::checked_max(parts[k]);
    if (!m) return m.error();
  }
  const fbatch ninf(-detail::f_inf);
  detail::output_check chk;
  detail::for_each_batch(out.size(), out.data(), chk, [&](std::size_t i, std::size_t w) {
    fbatch acc(0.0f);
    auto masked = fbatch(0.0f) != fbatch(0.0f);  // all false
    for (std::size_t k = 0; k < parts.size(); ++k) {
      if (weights[k] == 0.0f) continue;
      const fbatch v = detail::load_at(parts[k].data(), i, w);
      masked = masked | (v == ninf);
      acc = detail::simd::fma(fbatch(weights[k]), v, acc);
    }
    return detail::simd::select(masked, ninf, acc);
  });
  return chk.result();
}

}  // namespace tandem::inline v0

#ifdef TANDEM_COMBINE_POP_DIAGNOSTICS
#pragma GCC diagnostic pop
#undef TANDEM_COMBINE_POP_DIAGNOSTICS
#endif
