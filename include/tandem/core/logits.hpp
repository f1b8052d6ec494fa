// tandem: SIMD kernels over next-token logits: validation, max/argmax, log-sum-exp,
// (log-)softmax, entropy, temperature, penalties, top-k/top-p/min-p selection and
// distances between the distributions of two logit vectors. They are written once
// against the SIMD layer of core/detail/simd.hpp: GCC/Clang vector extensions by default,
// xsimd with TANDEM_KERNELS_XSIMD.
//
// Conventions shared by every kernel here:
// - Logits are raw scores; a distribution is softmax(scale * logits).
// - `-inf` means "masked": such an entry has probability zero and is never selected.
// - NaN or `+inf` anywhere gives `errc::non_finite`; all entries `-inf` gives
//   `errc::no_candidates`; an empty span gives `errc::empty_input`. The check runs inside
//   the pass that finds the maximum, so it costs no extra pass.
// - Kernels never allocate. Outputs go to caller-owned spans; on error an output span's
//   contents are unspecified unless a function says otherwise.
// - Token order ties: when two entries have equal logits, the lower token id ranks first.
//   top-k keeps exactly k tokens under this order; argmax returns the lowest index.
// - exp is a vectorised polynomial: Cody-Waite reduction by ln2 to |r| <= ln2/2,
//   exp(r) ~ 1 + r + r^2 q(r) with q of degree 5 fitted for minimax relative error
//   (tools/fit_exp_polynomial.py; 1.1e-9 in exact arithmetic with float coefficients),
//   2^n built in the exponent bits: relative error below 1.5e-7 (about one ulp; measured
//   1.2e-7) against std::exp (tests/core/simd.cpp). `detail::exp` covers all floats: results below
//   FLT_MIN (x < -87.33) are flushed to 0, exp(-inf) = 0, exp(x > 88.72) = +inf,
//   exp(NaN) = NaN. The kernels only need x <= 0 (after subtracting the maximum) and use
//   the shorter `detail::exp_nonpos`.
// - Sums over the vocabulary add float partial sums of 1024 terms in double, so their
//   relative error stays near float precision for any vocabulary size.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/simd.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

// GCC 12's AVX-512 intrinsics (_mm512_max_ps, ...) start from `__m512 __Y = __Y;` and
// warn once inlined into this code at -O2/-O3 (GCC bug 105593, fixed in GCC 13); only
// the xsimd backend uses them.
#if defined(TANDEM_KERNELS_XSIMD) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TANDEM_LOGITS_POP_DIAGNOSTICS
#endif

namespace tandem::inline v0 {
/// Vectorised kernels over one row of logits: max, log-softmax, softmax, top-k,
/// per-token statistics and the masks behind the samplers. Inputs are spans the caller
/// owns; outputs go to caller-sized spans; nothing allocates.
namespace kernels {

/// One selected token: its (unscaled) logit and its id.
struct candidate {
  float logit;  ///< the token's logit, before any temperature
  token_id id;  ///< the token
};

/// The type of ranks_before: a function object, so the standard algorithms that take it
/// inline the comparison (a function pointer costs an indirect call per comparison).
struct ranks_before_fn {
  /// True when a ranks before b: higher logit first, then lower token id.
  [[nodiscard]] constexpr bool operator()(const candidate& a, const candidate& b) const noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
/// Rank order of candidates: higher logit first, then lower token id. Call it as a
/// function, or pass it to std::sort and the like.
inline constexpr ranks_before_fn ranks_before{};

/// Log-probability of the chosen token and the entropy of the distribution, in nats.
struct token_logprob_entropy {
  float logprob;  ///< log p(chosen token), nats
  float entropy;  ///< entropy of the whole distribution, nats
};

}  // namespace kernels

namespace detail {

using fbatch = simd::batch<float>;
using fmask = simd::batch_bool<float>;
using ibatch = simd::batch<std::int32_t>;
inline constexpr std::size_t simd_width = fbatch::size;
inline constexpr float f_inf = std::numeric_limits<float>::infinity();

/// 1.5 * 2^23: adding it to |y| < 2^22 rounds y to an integer n, left in the low
/// mantissa bits as 0x4B400000 + n.
inline constexpr float round_magic = 12582912.0f;
inline constexpr std::int32_t round_magic_bits = 0x4B400000;

/// e^(xc - fn ln2) for an integer-valued fn and |xc - fn ln2| <= ln2 / 2: the Cody-Waite
/// reduction r = xc - fn ln2 (ln2 split into a high part exact in 9 bits and a low part)
/// and exp(r) = 1 + r + r^2 q(r), q of degree 5 with minimax relative error
/// (coefficients from tools/fit_exp_polynomial.py). Shared by `exp` and `exp_nonpos`.
template <class B>
inline B exp_reduced(B fn, B xc) noexcept {
  B r = simd::fma(fn, B(-0.693359375f), xc);
  r = simd::fma(fn, B(2.12194440e-4f), r);
  B q(1.9790318038e-4f);
  q = simd::fma(q, r, B(1.3944648672e-3f));
  q = simd::fma(q, r, B(8.3334967494e-3f));
  q = simd::fma(q, r, B(4.1666295379e-2f));
  q = simd::fma(q, r, B(1.6666665673e-1f));
  q = simd::fma(q, r, B(5.0e-1f));
  return simd::fma(q * r, r, r + B(1.0f));
}

/// Vectorised exp; see the header comment for its accuracy.
template <class B>
inline B exp(B x) noexcept {
  const B magic(round_magic);
  const B xc = simd::min(simd::max(x, B(-88.0f)), B(88.72283f));
  const B t = simd::fma(xc, B(1.44269504088896341f), magic);
  const B p = detail::exp_reduced(t - magic, xc);
  // 2^n built in the exponent field; n in [-127, 128]: split into two factors so that
  // n = 128 does not overflow the field.
  using I = decltype(simd::to_bits(t));
  const I n = simd::to_bits(t) - I(round_magic_bits);
  const I n1 = n >> 1;
  const I n2 = n - n1;
  B y = p * simd::from_bits((n1 + I(127)) << 23) * simd::from_bits((n2 + I(127)) << 23);
  y = simd::select(x < B(-87.33654f), B(0.0f), y);
  y = simd::select(x > B(88.72283f), B(f_inf), y);
  return simd::select(simd::isnan(x), x, y);
}

/// exp for arguments x <= 0 (or -inf), the only ones the kernels need after subtracting
/// the maximum: same polynomial as `exp`, fewer instructions. The low bits of the rounded
/// t give 2^n directly. Relative error below 1.5e-7 for x in [-87.33, 0]; 0 below; x > 0
/// or NaN are outside its domain (unspecified results).
template <class B>
inline B exp_nonpos(B x) noexcept {
  const B magic(round_magic);
  const B xc = simd::max(x, B(-87.33654f));
  const B t = simd::fma(xc, B(1.44269504088896341f), magic);
  const B p = detail::exp_reduced(t - magic, xc);
  // The low bits of t hold n (two's complement); n + 127 in [1, 127] lands in the
  // exponent field once shifted, and the shift discards the bits of `magic`.
  using I = decltype(simd::to_bits(t));
  const B scale = simd::from_bits((simd::to_bits(t) + I(127)) << 23);
  return simd::select(x < B(-87.33654f), B(0.0f), p * scale);
}

/// Scalar exp with exactly the vector kernel's results.
template <class F = float>
inline float exp1(float x) noexcept {
  using fbatch = simd::batch<F>;
  alignas(64) float buf[simd_width];
  detail::exp(fbatch(x)).store_aligned(buf);
  return buf[0];
}

/// Loads `count < simd_width` floats and fills the remaining lanes with `fill`.
template <class F = float>
inline simd::batch<F> load_tail(const float* p, std::size_t count, float fill) noexcept {
  using fbatch = simd::batch<F>;
  alignas(64) float buf[simd_width];
  for (std::size_t i = 0; i < simd_width; ++i) buf[i] = i < count ? p[i] : fill;
  return fbatch::load_aligned(buf);
}

template <class B>
inline float hmax(B v) noexcept {
  alignas(64) float buf[simd_width];
  v.store_aligned(buf);
  float m = buf[0];
  for (std::size_t i = 1; i < simd_width; ++i) m = buf[i] > m ? buf[i] : m;
  return m;
}

/// Maximum of `x` with validation in the same pass: empty_input, non_finite (NaN/+inf),
/// no_candidates (all -inf).
template <class F = float>
inline result<float> checked_max(std::span<const float> x) noexcept {
  using fbatch = simd::batch<F>;
  using fmask = simd::batch_bool<F>;
  if (x.empty()) return errc::empty_input;
  const float* p = x.data();
  const std::size_t n = x.size(), nv = n - n % simd_width;
  fbatch m0(-f_inf), m1(-f_inf);
  fmask bad(false);
  std::size_t i = 0;
  for (; i + 2 * simd_width <= nv; i += 2 * simd_width) {
    const fbatch a = fbatch::load_unaligned(p + i), b = fbatch::load_unaligned(p + i + simd_width);
    m0 = simd::max(m0, a);
    m1 = simd::max(m1, b);
    bad = bad | simd::isnan(a) | simd::isnan(b);
  }
  for (; i < nv; i += simd_width) {
    const fbatch a = fbatch::load_unaligned(p + i);
    m0 = simd::max(m0, a);
    bad = bad | simd::isnan(a);
  }
  if (i < n) {
    const fbatch a = load_tail<F>(p + i, n - i, -f_inf);
    m0 = simd::max(m0, a);
    bad = bad | simd::isnan(a);
  }
  // NaN lanes are caught by isnan (xsimd 8.1's `a != a` is an ordered compare on AVX-512
  // and misses them); +inf shows up as the maximum.
  if (simd::any(bad)) return errc::non_finite;
  const float m = hmax(simd::max(m0, m1));
  if (m == f_inf) return errc::non_finite;
  if (m == -f_inf) return errc::no_candidates;
  return m;
}

/// Elements per float partial sum; partial sums are added in double, so a sum over a
/// whole vocabulary keeps about float precision instead of losing digits with its length.
inline constexpr std::size_t sum_block = 1024;

/// Sum of exp(scale * (x - m)) over `x` (accumulated as described at sum_block);
/// optionally stores each term into `out`.
template <class F = float>
inline double sum_exp(std::span<const float> x, float m, float scale, float* out) noexcept {
  using fbatch = simd::batch<F>;
  const float* p = x.data();
  const std::size_t n = x.size(), nv = n - n % simd_width;
  const fbatch vm(m), vs(scale);
  double total = 0.0;
  std::size_t i = 0;
  while (i + 2 * simd_width <= nv) {
    fbatch s0(0.0f), s1(0.0f);
    const std::size_t end = std::min(nv - (nv - i) % (2 * simd_width), i + sum_block);
    for (; i < end; i += 2 * simd_width) {
      const fbatch e0 = exp_nonpos((fbatch::load_unaligned(p + i) - vm) * vs);
      const fbatch e1 = exp_nonpos((fbatch::load_unaligned(p + i + simd_width) - vm) * vs);
      if (out) {
        e0.store_unaligned(out + i);
        e1.store_unaligned(out + i + simd_width);
      }
      s0 += e0;
      s1 += e1;
    }
    total += static_cast<double>(simd::hadd(s0 + s1));
  }
  fbatch s0(0.0f);
  for (; i < nv; i += simd_width) {
    const fbatch e0 = exp_nonpos((fbatch::load_unaligned(p + i) - vm) * vs);
    if (out) e0.store_unaligned(out + i);
    s0 += e0;
  }
  if (i < n) {
    alignas(64) float buf[simd_width];
    const fbatch e0 = exp_nonpos((load_tail<F>(p + i, n - i, -f_inf) - vm) * vs);
    e0.store_aligned(buf);
    if (out) std::memcpy(out + i, buf, (n - i) * sizeof(float));
    s0 += e0;
  }
  return total + static_cast<double>(simd::hadd(s0));
}

/// Sums of exp(d) and of exp(d) * d where d = scale * (x - m); masked entries add 0.
template <class F = float>
inline void sum_exp_and_weighted(std::span<const float> x, float m, float scale, double& z,
                                 double& s) noexcept {
  using fbatch = simd::batch<F>;
  const float* p = x.data();
  const std::size_t n = x.size(), nv = n - n % simd_width;
  const fbatch vm(m), vs(scale), zero(0.0f);
  fbatch z0(0.0f), s0(0.0f);
  z = s = 0.0;
  auto step = [&](fbatch v) {
    const fbatch d = (v - vm) * vs;
    const fbatch e = exp_nonpos(d);
    z0 += e;
    s0 += simd::select(e > zero, e * d, zero);
  };
  std::size_t i = 0;
  while (i < nv) {
    const std::size_t end = std::min(nv, i + sum_block);
    for (; i < end; i += simd_width) step(fbatch::load_unaligned(p + i));
    z += static_cast<double>(simd::hadd(z0));
    s += static_cast<double>(simd::hadd(s0));
    z0 = s0 = zero;
  }
  if (i < n) step(load_tail<F>(p + i, n - i, -f_inf));
  z += static_cast<double>(simd::hadd(z0));
  s += static_cast<double>(simd::hadd(s0));
}

/// First index whose value equals `m` (which must occur in `x`).
template <class F = float>
inline std::size_t first_equal(std::span<const float> x, float m) noexcept {
  using fbatch = simd::batch<F>;
  const float* p = x.data();
  const std::size_t n = x.size(), nv = n - n % simd_width;
  const fbatch vm(m);
  std::size_t i = 0;
  for (; i < nv; i += simd_width) {
    if (simd::any(fbatch::load_unaligned(p + i) == vm)) break;
  }
  for (; i < n; ++i)
    if (p[i] == m) return i;
  return n;
}

/// Candidates are gathered in rank order; compacts `buf[0, count)` to its best `k`.
inline void keep_best(kernels::candidate* buf, std::size_t count, std::size_t k) noexcept {
  if (count > k) std::nth_element(buf, buf + (k - 1), buf + count, kernels::ranks_before);
}

/// Exps of the candidates' logits: out[i] = exp(scale * (c[i].logit - m)).
template <class F = float>
inline double candidate_exps(std::span<const kernels::candidate> c, float m, float scale,
                             float* out) noexcept {
  using fbatch = simd::batch<F>;
  alignas(64) float buf[simd_width];
  double z = 0.0;
  fbatch acc(0.0f);
  std::size_t since_flush = 0;
  for (std::size_t i = 0; i < c.size(); i += simd_width) {
    const std::size_t w = std::min(simd_width, c.size() - i);
    for (std::size_t j = 0; j < simd_width; ++j) buf[j] = j < w ? c[i + j].logit : -f_inf;
    const fbatch e = exp_nonpos((fbatch::load_aligned(buf) - fbatch(m)) * fbatch(scale));
    if (out) {
      e.store_aligned(buf);
      std::memcpy(out + i, buf, w * sizeof(float));
    }
    acc += e;
    if (++since_flush * simd_width >= sum_block) {
      z += static_cast<double>(simd::hadd(acc));
      acc = fbatch(0.0f);
      since_flush = 0;
    }
  }
  return z + static_cast<double>(simd::hadd(acc));
}

/// size_mismatch unless in and out have equal sizes; asserts they are the same memory or
/// disjoint.
inline errc same_or_disjoint(std::span<const float> in, std::span<float> out) noexcept {
  if (in.size() != out.size()) return errc::size_mismatch;
  const float* a = in.data();
  const float* b = out.data();
  const bool disjoint = a + in.size() <= b || b + out.size() <= a;
  TANDEM_ASSERT(a == b || disjoint, "in and out must be the same memory or not overlap");
  return errc::ok;
}

/// The maxima and softmax normalisers of two logit vectors of one size.
struct softmax_pair {
  float ma, mb;   ///< max_logit of a and of b
  double za, zb;  ///< sum of exp(x - max) over a and over b
};

/// softmax_pair of `a` and `b`. Errors: size_mismatch, then those of max_logit for either
/// input.
template <class F = float>
[[nodiscard]] inline result<softmax_pair> softmax_pair_norms(std::span<const float> a,
                                                             std::span<const float> b) noexcept {
  if (a.size() != b.size()) return errc::size_mismatch;
  const auto ma = checked_max<F>(a);
  if (!ma) return ma.error();
  const auto mb = checked_max<F>(b);
  if (!mb) return mb.error();
  return softmax_pair{*ma, *mb, sum_exp<F>(a, *ma, 1.0f, nullptr),
                      sum_exp<F>(b, *mb, 1.0f, nullptr)};
}

/// Appends to out[count, ...) every token of x[0, n) that `keep(v)` accepts, as a
/// candidate, in id order. `any_keep(batch)` must be true when some lane of the batch may
/// be kept (it skips whole batches). Returns false when out fills up first.
template <class Keep, class AnyKeep, class F = float>
[[nodiscard]] inline bool collect_if(const float* x, std::size_t n,
                                     std::span<kernels::candidate> out, std::size_t& count,
                                     Keep keep, AnyKeep any_keep) noexcept {
  using fbatch = simd::batch<F>;
  using kernels::candidate;
  auto take = [&](std::size_t base, std::size_t w) {
    for (std::size_t j = 0; j < w; ++j) {
      const float v = x[base + j];
      if (!keep(v)) continue;
      if (count == out.size()) return false;
      out[count++] = candidate{v, static_cast<token_id>(base + j)};
    }
    return true;
  };
  const std::size_t nv = n - n % simd_width;
  std::size_t i = 0;
  for (; i < nv; i += simd_width) {
    const fbatch v = fbatch::load_unaligned(x + i);
    if (!any_keep(v)) continue;
    if (count + simd_width <= out.size()) {
      // Branch-free: write every lane, advance past the kept ones only.
      for (std::size_t j = 0; j < simd_width; ++j) {
        const float vj = x[i + j];
        out[count] = candidate{vj, static_cast<token_id>(i + j)};
        count += static_cast<std::size_t>(keep(vj));
      }
    } else if (!take(i, simd_width)) {
      return false;
    }
  }
  return i >= n || take(i, n - i);
}

/// Calls `step(va, vb)` on aligned pairs of batches of `a` and `b` (equal sizes), the
/// last pair padded with -inf, which every softmax-pair kernel treats as "no mass".
template <class Step, class F = float>
inline void for_each_batch_pair(std::span<const float> a, std::span<const float> b,
                                Step step) noexcept {
  using fbatch = simd::batch<F>;
  const std::size_t n = a.size(), nv = n - n % simd_width;
  std::size_t i = 0;
  for (; i < nv; i += simd_width)
    step(fbatch::load_unaligned(a.data() + i), fbatch::load_unaligned(b.data() + i));
  if (i < n)
    step(load_tail<F>(a.data() + i, n - i, -f_inf), load_tail<F>(b.data() + i, n - i, -f_inf));
}

}  // namespace detail

namespace kernels {

/// Largest logit. Errors: empty_input, non_finite (NaN or +inf anywhere), no_candidates
/// (every entry -inf).
template <class F = float>
[[nodiscard]] inline result<float> max_logit(std::span<const float> logits) noexcept {
  return detail::checked_max<F>(logits);
}

/// Index of the largest logit; ties go to the lowest index. Errors as max_logit.
template <class F = float>
[[nodiscard]] inline result<std::size_t> argmax(std::span<const float> logits) noexcept {
  const auto m = detail::checked_max<F>(logits);
  if (!m) return m.error();
  return detail::first_equal<F>(logits, *m);
}

/// log(sum(exp(logits))), computed stably. Errors as max_logit.
template <class F = float>
[[nodiscard]] inline result<float> logsumexp(std::span<const float> logits) noexcept {
  const auto m = detail::checked_max<F>(logits);
  if (!m) return m.error();
  return static_cast<float>(*m + std::log(detail::sum_exp<F>(logits, *m, 1.0f, nullptr)));
}

/// out = log_softmax(in). `in` and `out` may be the same memory (in place) or must not
/// overlap. Errors: size_mismatch (out untouched), then those of max_logit (out untouched).
/// Masked (-inf) entries stay -inf.
template <class F = float>
[[nodiscard]] inline errc log_softmax(std::span<const float> in, std::span<float> out) noexcept {
  TANDEM_TRY(detail::same_or_disjoint(in, out));
  using fbatch = detail::simd::batch<F>;
  const auto m = detail::checked_max<F>(in);
  if (!m) return m.error();
  const float lse = static_cast<float>(*m + std::log(detail::sum_exp<F>(in, *m, 1.0f, nullptr)));
  const float* p = in.data();
  float* o = out.data();
  const std::size_t n = in.size(), nv = n - n % detail::simd_width;
  const fbatch vl(lse);
  std::size_t i = 0;
  for (; i < nv; i += detail::simd_width)
    (fbatch::load_unaligned(p + i) - vl).store_unaligned(o + i);
  for (; i < n; ++i) o[i] = p[i] - lse;
  return errc::ok;
}

/// out = softmax(in), summing to 1 up to rounding. In place allowed as for log_softmax.
/// Errors: size_mismatch (out untouched), then those of max_logit (out untouched).
template <class F = float>
[[nodiscard]] inline errc softmax(std::span<const float> in, std::span<float> out) noexcept {
  TANDEM_TRY(detail::same_or_disjoint(in, out));
  using fbatch = detail::simd::batch<F>;
  const auto m = detail::checked_max<F>(in);
  if (!m) return m.error();
  const float inv_z = static_cast<float>(1.0 / detail::sum_exp<F>(in, *m, 1.0f, out.data()));
  const fbatch inv(inv_z);
  float* o = out.data();
  const std::size_t n = out.size(), nv = n - n % detail::simd_width;
  std::size_t i = 0;
  for (; i < nv; i += detail::simd_width)
    (fbatch::load_unaligned(o + i) * inv).store_unaligned(o + i);
  for (; i < n; ++i) o[i] *= inv_z;
  return errc::ok;
}

/// Entropy (nats) of softmax(logits); masked entries contribute 0. Errors as max_logit.
template <class F = float>
[[nodiscard]] inline result<float> entropy(std::span<const float> logits) noexcept {
  const auto m = detail::checked_max<F>(logits);
  if (!m) return m.error();
  double z = 0, s = 0;
  detail::sum_exp_and_weighted<F>(logits, *m, 1.0f, z, s);
  return static_cast<float>(std::max(0.0, std::log(z) - s / z));
}

/// log p(chosen) and the entropy of softmax(logits), in one pass after the max.
/// logprob is -inf when the chosen token is masked. Errors: invalid_token (chosen outside
/// [0, logits.size())), then those of max_logit.
template <class F = float>
[[nodiscard]] inline result<token_logprob_entropy> token_stats(std::span<const float> logits,
                                                               token_id chosen) noexcept {
  if (logits.empty()) return errc::empty_input;
  if (chosen < 0 || static_cast<std::size_t>(chosen) >= logits.size()) return errc::invalid_token;
  const auto m = detail::checked_max<F>(logits);
  if (!m) return m.error();
  double z = 0, s = 0;
  detail::sum_exp_and_weighted<F>(logits, *m, 1.0f, z, s);
  const double lz = std::log(z);
  return token_logprob_entropy{
      static_cast<float>(static_cast<double>(logits[static_cast<std::size_t>(chosen)] - *m) - lz),
      static_cast<float>(std::max(0.0, lz - s / z))};
}

/// Divides every logit by `t` (masked entries stay masked). Errors: invalid_temperature
/// (t <= 0 or non-finite), then those of max_logit; on error the logits are unchanged.
template <class F = float>
[[nodiscard]] inline errc apply_temperature(std::span<float> logits, float t) noexcept {
  using fbatch = detail::simd::batch<F>;
  if (!(t > 0.0f) || !std::isfinite(t)) return errc::invalid_temperature;
  const auto m = detail::checked_max<F>(logits);
  if (!m) return m.error();
  float* p = logits.data();
  const std::size_t n = logits.size(), nv = n - n % detail::simd_width;
  const fbatch vt(t);
  std::size_t i = 0;
  for (; i < nv; i += detail::simd_width)
    (fbatch::load_unaligned(p + i) / vt).store_unaligned(p + i);
  for (; i < n; ++i) p[i] /= t;
  return errc::ok;
}

/// Repetition, frequency and presence penalties with llama.cpp's semantics, for every
/// distinct token of `history` (c = its count there): the logit x becomes
/// (x > 0 ? x / repeat : x * repeat) - c * frequency - presence. `counts` is scratch of
/// logits.size() zeros, left zero on return. Errors (logits unchanged): size_mismatch
/// (counts), invalid_argument (repeat <= 0 or any parameter non-finite), invalid_token (an
/// id of history outside [0, logits.size())).
[[nodiscard]] inline errc apply_penalties(std::span<float> logits,
                                          std::span<const token_id> history, float repeat,
                                          float frequency, float presence,
                                          std::span<std::uint32_t> counts) noexcept {
  if (counts.size() != logits.size()) return errc::size_mismatch;
  if (!(repeat > 0.0f) || !std::isfinite(repeat) || !std::isfinite(frequency) ||
      !std::isfinite(presence))
    return errc::invalid_argument;
  for (const token_id t : history)
    if (t < 0 || static_cast<std::size_t>(t) >= logits.size()) return errc::invalid_token;
  for (const token_id t : history) ++counts[static_cast<std::size_t>(t)];
  for (const token_id t : history) {
    const auto i = static_cast<std::size_t>(t);
    const std::uint32_t c = counts[i];
    if (c == 0) continue;  // already applied
    float& x = logits[i];
    x = x > 0.0f ? x / repeat : x * repeat;
    x -= static_cast<float>(c) * frequency + presence;
    counts[i] = 0;
  }
  return errc::ok;
}

/// Buffer size that top_k needs for `k` of `vocab_size` tokens (a few slots beyond k make
/// the threshold scan compact rarely).
[[nodiscard]] constexpr std::size_t top_k_buffer_size(std::size_t k,
                                                      std::size_t vocab_size) noexcept {
  return std::min(vocab_size, std::max(2 * k, k + 64));
}

/// The k best tokens by (logit desc, id asc), written to out[0, r) in that order, where
/// r = min(k, number of unmasked tokens) is returned. Exactly k tokens are kept when k
/// unmasked tokens exist: ties at the boundary go to lower ids. Cost: one SIMD pass that
/// collects entries above a running k-th-best threshold, plus a partial selection; never a
/// full sort. Errors: invalid_argument (k == 0), capacity_exceeded (out.size() <
/// top_k_buffer_size(k, logits.size())), then those of max_logit.
template <class F = float>
[[nodiscard]] inline result<std::size_t> top_k(std::span<const float> logits, std::size_t k,
                                               std::span<candidate> out) noexcept {
  using fbatch = detail::simd::batch<F>;
  if (logits.empty()) return errc::empty_input;
  if (k == 0) return errc::invalid_argument;
  const std::size_t n = logits.size();
  const std::size_t cap = top_k_buffer_size(k, n);
  if (out.size() < cap) return errc::capacity_exceeded;
  candidate* buf = out.data();
  const float* p = logits.data();
  std::size_t count = 0;
  float thr = -detail::f_inf;
  const std::size_t nv = n - n % detail::simd_width;
  fbatch vthr(thr);
  bool nan_seen = false;
  // Entries at or below the threshold can never enter: equal ones have higher ids. `bits`
  // holds the lanes from `base` that are not known to be at or below it (above it, or NaN);
  // only those are looked at, in id order.
  auto take = [&](std::size_t base, std::uint32_t bits) {
    for (; bits != 0; bits &= bits - 1) {
      const std::size_t j = base + static_cast<std::size_t>(std::countr_zero(bits));
      const float x = p[j];
      if (std::isnan(x)) nan_seen = true;
      if (!(x > thr)) continue;
      if (count == cap) {
        detail::keep_best(buf, count, k);
        count = k;
        thr = buf[k - 1].logit;
        vthr = fbatch(thr);
        if (!(x > thr)) continue;
      }
      buf[count++] = candidate{x, static_cast<token_id>(j)};
    }
  };
  // The vector test is `v <= thr`: an ordered compare, false for NaN, so NaN lanes take
  // the scalar path and are seen there; +inf is collected and seen at the end.
  std::size_t i = 0;
  constexpr std::size_t w = detail::simd_width;
  constexpr std::uint32_t lanes = (std::uint32_t{1} << w) - 1;
  static_assert(2 * w <= 32, "two registers' lanes must fit a 32-bit mask");
  for (; i + 2 * w <= nv; i += 2 * w) {
    const fbatch a = fbatch::load_unaligned(p + i), b = fbatch::load_unaligned(p + i + w);
    const auto la = a <= vthr, lb = b <= vthr;
    if (!detail::simd::all(la & lb))
      take(i, ~(detail::simd::bitmask(la) | detail::simd::bitmask(lb) << w) & (lanes | lanes << w));
  }
  for (; i < nv; i += w) {
    const auto la = fbatch::load_unaligned(p + i) <= vthr;
    if (!detail::simd::all(la)) take(i, ~detail::simd::bitmask(la) & lanes);
  }
  if (i < n) take(i, (std::uint32_t{1} << (n - i)) - 1);
  if (nan_seen) return errc::non_finite;
  if (count == 0) return errc::no_candidates;
  const std::size_t r = std::min(k, count);
  if (count > r)
    std::partial_sort(buf, buf + r, buf + count, ranks_before);
  else
    std::sort(buf, buf + r, ranks_before);
  if (buf[0].logit == detail::f_inf) return errc::non_finite;
  return r;
}

/// Nucleus (top-p) selection over softmax(scale * logits): the shortest prefix of the
/// tokens in rank order (logit desc, id asc) whose probability mass reaches p (the token
/// that crosses p is kept); p >= 1 keeps every unmasked token. The kept tokens go to
/// out[0, r), r is returned, in an unspecified order (rank order when the set has at most
/// 64 tokens; sort with ranks_before where order matters).
///
/// No full sort: one top-64 scan (which also validates) and one pass for the total mass
/// settle peaked distributions; otherwise exps are cached in `scratch` and a bisection on
/// the logit threshold narrows the boundary to a bracket of at most ~2048 tokens, the only
/// ones sorted. `scratch` needs logits.size() floats (left unspecified). Errors:
/// invalid_argument (p not in (0, 1], scale <= 0 or non-finite), size_mismatch (scratch),
/// capacity_exceeded (out.size() < top_k_buffer_size(64, n), or more kept tokens than
/// out.size(); out.size() >= logits.size() always suffices), then those of max_logit.
template <class F = float>
[[nodiscard]] inline result<std::size_t> top_p(std::span<const float> logits, float p,
                                               std::span<candidate> out, std::span<float> scratch,
                                               float scale = 1.0f) noexcept {
  using fbatch = detail::simd::batch<F>;
  if (!(p > 0.0f && p <= 1.0f)) return errc::invalid_argument;
  if (!(scale > 0.0f) || !std::isfinite(scale)) return errc::invalid_argument;
  if (logits.empty()) return errc::empty_input;
  const std::size_t n = logits.size();
  if (scratch.size() != n) return errc::size_mismatch;
  constexpr std::size_t k0 = 64;
  // Step 1: the top 64 (validating the input and finding the maximum on the way).
  const auto r0 = top_k<F>(logits, k0, out);
  if (!r0) return r0.error();
  const float m = out[0].logit;
  const float* x = logits.data();
  const std::size_t nv = n - n % detail::simd_width;
  // Collects every unmasked token with x >= lo into out; false when out is too small.
  auto collect_from = [&](float lo, std::size_t& count) {
    const fbatch vlo(lo), ninf(-detail::f_inf);
    count = 0;
    return detail::collect_if(
        x, n, out, count, [lo](float v) { return v >= lo && v != -detail::f_inf; },
        [&](const fbatch& v) { return detail::simd::any((v >= vlo) & (v != ninf)); });
  };
  if (p >= 1.0f) {
    if (*r0 < k0) return *r0;  // fewer than 64 unmasked tokens: all of them
    std::size_t count = 0;
    if (!collect_from(-detail::f_inf, count)) return errc::capacity_exceeded;
    return count;
  }
  // Step 2: the total mass; the top 64 may already reach p.
  const double z = detail::sum_exp<F>(logits, m, scale, nullptr);
  const double target = static_cast<double>(p) * z;
  {
    alignas(64) float e64[k0];
    detail::candidate_exps<F>(std::span<const candidate>(out.data(), *r0), m, scale, e64);
    double cum = 0.0;
    for (std::size_t i = 0; i < *r0; ++i) {
      cum += static_cast<double>(e64[i]);
      if (cum >= target) return i + 1;
    }
    if (*r0 < k0) return *r0;  // every unmasked token; rounding kept cum below target
  }
  // Step 3: bisection on the threshold tau over cached exps: mass(tau) = sum of exps of
  // tokens with x >= tau. Invariant: mass(lo) >= target (lo = -inf: everything) and
  // mass(hi) < target.
  const double total = detail::sum_exp<F>(logits, m, scale, scratch.data());
  const float* e = scratch.data();
  auto mass = [&](float tau, std::size_t& cnt) {
    const fbatch vt(tau), zero(0.0f), one(1.0f);
    fbatch c(0.0f);
    double ss = 0.0;
    std::size_t i = 0;
    while (i < nv) {
      fbatch sb(0.0f);
      const std::size_t end = std::min(nv, i + detail::sum_block);
      for (; i < end; i += detail::simd_width) {
        const auto keep = fbatch::load_unaligned(x + i) >= vt;
        sb += detail::simd::select(keep, fbatch::load_unaligned(e + i), zero);
        c += detail::simd::select(keep, one, zero);
      }
      ss += static_cast<double>(detail::simd::hadd(sb));
    }
    cnt = static_cast<std::size_t>(detail::simd::hadd(c));
    for (; i < n; ++i)
      if (x[i] >= tau) {
        ss += static_cast<double>(e[i]);
        ++cnt;
      }
    return ss;
  };
  const double target2 = static_cast<double>(p) * total;  // same as target up to rounding
  float lo = -detail::f_inf, hi = out[k0 - 1].logit;      // mass(64th best) < target
  std::size_t cnt_lo = n, cnt_hi = 0;
  double mass_hi = mass(hi, cnt_hi);
  if (!(mass_hi < target2)) {  // rounding between the two passes: widen to the maximum
    hi = std::nextafter(m, detail::f_inf);
    mass_hi = 0.0;
    cnt_hi = 0;
  }
  float probe = m + std::log(1e-12f) / scale;
  constexpr std::size_t bracket_goal = 2048;
  for (int iter = 0; iter < 64 && cnt_lo - cnt_hi > bracket_goal; ++iter) {
    float mid = probe;
    if (!(mid > lo && mid < hi)) {
      if (lo == -detail::f_inf) break;
      mid = lo + (hi - lo) * 0.5f;
      if (!(mid > lo && mid < hi)) break;  // adjacent floats: the bracket is all ties
    }
    probe = -detail::f_inf;
    std::size_t cnt = 0;
    const double sm = mass(mid, cnt);
    if (sm >= target2) {
      lo = mid;
      cnt_lo = cnt;
    } else {
      hi = mid;
      cnt_hi = cnt;
      mass_hi = sm;
    }
  }
  // Step 4: collect x >= lo; tokens with x >= hi are kept whole, the bracket [lo, hi) is
  // sorted and cut where the mass reaches p.
  std::size_t count = 0;
  if (!collect_from(lo, count)) return errc::capacity_exceeded;
  candidate* b = out.data();
  const auto top = static_cast<std::size_t>(
      std::partition(b, b + count, [hi](const candidate& c) { return c.logit >= hi; }) - b);
  std::sort(b + top, b + count, ranks_before);
  double cum = mass_hi;
  if (cum >= target2) return top;
  for (std::size_t i = top; i < count; ++i) {
    cum += static_cast<double>(e[static_cast<std::size_t>(b[i].id)]);
    if (cum >= target2) return i + 1;
  }
  return count;  // rounding: the whole bracket
}

/// min-p selection over softmax(scale * logits): keeps tokens whose probability is at
/// least p times the largest, i.e. scale * (x - max) >= log(p). Written to out[0, r) in
/// id order; r is returned. Errors: invalid_argument (p not in [0, 1], scale <= 0 or
/// non-finite), capacity_exceeded (more than out.size() tokens kept; out.size() >=
/// logits.size() always suffices), then those of max_logit.
template <class F = float>
[[nodiscard]] inline result<std::size_t> min_p(std::span<const float> logits, float p,
                                               std::span<candidate> out,
                                               float scale = 1.0f) noexcept {
  using fbatch = detail::simd::batch<F>;
  if (!(p >= 0.0f && p <= 1.0f)) return errc::invalid_argument;
  if (!(scale > 0.0f) || !std::isfinite(scale)) return errc::invalid_argument;
  const auto mr = detail::checked_max<F>(logits);
  if (!mr) return mr.error();
  const float m = *mr;
  const float lp = std::log(p);
  const float* x = logits.data();
  const std::size_t n = logits.size();
  const fbatch vm(m), vs(scale), vlp(lp), ninf(-detail::f_inf);
  std::size_t count = 0;
  const bool fits = detail::collect_if(
      x, n, out, count,
      [m, scale, lp](float v) { return v != -detail::f_inf && (v - m) * scale >= lp; },
      [&](const fbatch& v) { return detail::simd::any(((v - vm) * vs >= vlp) & (v != ninf)); });
  if (!fits) return errc::capacity_exceeded;
  return count;
}

/// Total-variation distance 0.5 * sum |p - q| between p = softmax(a) and q = softmax(b).
/// Errors: size_mismatch, then those of max_logit for either input.
template <class F = float>
[[nodiscard]] inline result<float> total_variation(std::span<const float> a,
                                                   std::span<const float> b) noexcept {
  using fbatch = detail::simd::batch<F>;
  const auto norms = detail::softmax_pair_norms<F>(a, b);
  if (!norms) return norms.error();
  const auto [ma, mb, za, zb] = *norms;
  const fbatch vma(ma), vmb(mb), ia(static_cast<float>(1.0 / za)), ib(static_cast<float>(1.0 / zb));
  fbatch s(0.0f);
  auto step = [&](fbatch va, fbatch vb) {
    s += detail::simd::abs(detail::exp_nonpos(va - vma) * ia - detail::exp_nonpos(vb - vmb) * ib);
  };
  detail::for_each_batch_pair(a, b, step);
  return std::min(1.0f, 0.5f * detail::simd::hadd(s));
}

/// Kullback-Leibler divergence KL(p || q), in nats, for p = softmax(a), q = softmax(b).
/// +inf when p puts mass where q is masked. Errors: size_mismatch, then those of
/// max_logit for either input.
template <class F = float>
[[nodiscard]] inline result<float> kl_divergence(std::span<const float> a,
                                                 std::span<const float> b) noexcept {
  using fbatch = detail::simd::batch<F>;
  const auto norms = detail::softmax_pair_norms<F>(a, b);
  if (!norms) return norms.error();
  const auto [ma, mb, za, zb] = *norms;
  const fbatch vma(ma), vmb(mb), zero(0.0f);
  fbatch s(0.0f);
  auto step = [&](fbatch va, fbatch vb) {
    const fbatch da = va - vma;
    const fbatch ea = detail::exp_nonpos(da);
    s += detail::simd::select(ea > zero, ea * (da - (vb - vmb)), zero);
  };
  detail::for_each_batch_pair(a, b, step);
  const double kl = static_cast<double>(detail::simd::hadd(s)) / za + std::log(zb) - std::log(za);
  return static_cast<float>(std::max(0.0, kl));
}

}  // namespace kernels
}  // namespace tandem::inline v0

#ifdef TANDEM_LOGITS_POP_DIAGNOSTICS
#pragma GCC diagnostic pop
#undef TANDEM_LOGITS_POP_DIAGNOSTICS
#endif
