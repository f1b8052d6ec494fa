// tandem: the verification steps of speculative decoding shared by the linear decoder
// (speculative/decoder.hpp) and the batched one (batch/speculative.hpp); in core/detail
// because a block never includes another block's detail/: the acceptance
// test min(1, p(x) / q(x)) and the draw from the residual norm(max(0, p - q)) (Leviathan
// et al. 2023), which together keep the target's distribution exactly.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0::detail {

/// The chance min(1, p(x) / q(x)) that verification accepts draft token x (q(x) > 0).
[[nodiscard]] inline double acceptance_chance(float px, float qx) noexcept {
  return std::min(1.0, static_cast<double>(px) / static_cast<double>(qx));
}

/// The acceptance test of draft token x with target probability `px` and draft probability
/// `qx`: true when p(x) >= q(x), else with chance p(x) / q(x) (one draw from `r`).
[[nodiscard]] inline bool accept_draft(float px, float qx, rng& r) noexcept {
  return px >= qx || (px > 0.0f && r.uniform() * static_cast<double>(qx) < static_cast<double>(px));
}

/// A draw (one uniform from `r`) from norm(max(0, p - q)), with q one-hot on `x` when
/// empty; from p when that residual is all zero (rounding). `resid` (p.size() floats) is
/// scratch. Errors: `no_candidates` when p is all zero too.
[[nodiscard]] inline result<token_id> residual_draw(std::span<const float> p,
                                                    std::span<const float> q, token_id x,
                                                    std::span<float> resid, rng& r) noexcept {
  const std::size_t v = p.size();
  double z = 0.0;
  for (std::size_t j = 0; j < v; ++j) {
    const float qj = q.empty() ? (j == static_cast<std::size_t>(x) ? 1.0f : 0.0f) : q[j];
    const float d = std::max(0.0f, p[j] - qj);
    resid[j] = d;
    z += static_cast<double>(d);
  }
  const double u = r.uniform();
  if (!(z > 0.0)) {
    double zp = 0.0;
    for (const float pj : p) zp += static_cast<double>(pj);
    if (!(zp > 0.0)) return errc::no_candidates;
    return static_cast<token_id>(draw_index(p, zp, u));
  }
  return static_cast<token_id>(draw_index(std::span<const float>(resid.data(), v), z, u));
}

}  // namespace tandem::inline v0::detail
