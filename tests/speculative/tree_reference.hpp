// Test helper shared by the tree tests (tree.cpp) and the tree-verifier fuzzer: a brute-force
// reference that enumerates every outcome of one node's multi-draft verification (the
// children's draws without replacement from q, each acceptance test, the final residual
// draw) with its exact probability, through the library's own accept_chance and
// reject_child, and so gives the exact distribution of the token the node emits. Exactness
// of the verifier means that distribution equals the target's p.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "tandem/speculative/tree.hpp"

namespace tandem_test {

/// Adds `weight` times the node's final draw (from the residual `p`, normalised) to `out`.
inline void add_final_draw(std::vector<double>& out, const std::vector<double>& p, double weight) {
  double z = 0.0;
  for (double x : p) z += x;
  if (!(z > 0.0)) return;
  for (std::size_t j = 0; j < p.size(); ++j) out[j] += weight * p[j] / z;
}

/// The exact distribution of the token one node emits when its `k` children are drawn
/// from `q` without replacement (as the drafter's sample_children does: while q has mass
/// left) and verified by recursive rejection sampling without replacement.
inline void sampled_outcomes(std::vector<double>& out, std::vector<double> p, std::vector<double> q,
                             std::size_t k, double weight) {
  double zq = 0.0;
  for (double x : q) zq += x;
  if (k == 0 || !(zq > 0.0)) {
    add_final_draw(out, p, weight);
    return;
  }
  for (std::size_t x = 0; x < q.size(); ++x) {
    if (!(q[x] > 0.0)) continue;
    const double drawn = weight * q[x] / zq;
    const auto tok = static_cast<tandem::token_id>(x);
    const double a = tandem::detail::accept_chance(p, q, tok);
    out[x] += drawn * a;
    if (a >= 1.0) continue;
    std::vector<double> p2 = p, q2 = q;
    tandem::detail::reject_child(p2, q2, tok);
    sampled_outcomes(out, std::move(p2), std::move(q2), k - 1, drawn * (1.0 - a));
  }
}

/// The exact distribution of the token one node emits when its children are the fixed
/// tokens `children` (verified in order with one-hot q).
inline std::vector<double> fixed_outcomes(std::vector<double> p,
                                          std::span<const tandem::token_id> children) {
  std::vector<double> out(p.size(), 0.0);
  double weight = 1.0;
  for (const tandem::token_id x : children) {
    const double a = tandem::detail::accept_chance(p, {}, x);
    out[static_cast<std::size_t>(x)] += weight * a;
    weight *= 1.0 - a;
    if (!(weight > 0.0)) return out;
    tandem::detail::reject_child(p, {}, x);
  }
  add_final_draw(out, p, weight);
  return out;
}

/// Largest absolute difference of two distributions of equal size.
inline double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace tandem_test
