// tandem (private): numerically stable logistic-loss pieces, the L-BFGS minimiser, and the
// one L2-regularised logistic regression over sparse rows that the confidence block's
// learned evaluator and the router block's logistic predictors both fit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/sigmoid.hpp"

namespace tandem::inline v0::detail {

/// Settings of `minimize_lbfgs`.
struct lbfgs_options {
  std::size_t history = 10;          ///< correction pairs kept (> 0)
  std::size_t max_iterations = 300;  ///< iterations at most
  double tolerance = 1e-7;           ///< stop when the gradient's max-norm falls below
};

/// Minimises a smooth function by L-BFGS with a backtracking (Armijo) line search, starting
/// from `x` and leaving the minimiser found there. `eval(x, g)` returns f(x) and writes the
/// gradient into `g` (sized like x). Stops when the gradient's max-norm falls below the
/// tolerance, after max_iterations, when the line search finds no sufficient decrease, or
/// when `converged(f_old, f_new)` is true after an accepted step. A direction that is not
/// one of descent restarts from steepest descent. Allocates only while it runs. `Vector`
/// is Eigen::VectorXd; a template parameter so that the body is compiled only in the
/// translation units that call it (README, "Compile cost").
template <class Vector, class F, class Converged>
void minimize_lbfgs(Vector& x, F& eval, const lbfgs_options& o, Converged converged) {
  TANDEM_ASSERT(o.history > 0, "minimize_lbfgs: history must be > 0");
  const Eigen::Index n = x.size();
  Vector g(n), x_new(n), g_new(n), dir(n);
  double f = eval(x, g);
  std::vector<Vector> s_hist, y_hist;
  std::vector<double> rho;
  std::vector<double> alpha(o.history);
  for (std::size_t it = 0; it < o.max_iterations; ++it) {
    if (g.template lpNorm<Eigen::Infinity>() < o.tolerance) break;
    // Two-loop recursion for the quasi-Newton direction.
    dir = -g;
    const std::size_t h = s_hist.size();
    for (std::size_t k = h; k-- > 0;) {
      alpha[k] = rho[k] * s_hist[k].dot(dir);
      dir -= alpha[k] * y_hist[k];
    }
    if (h > 0) dir *= s_hist[h - 1].dot(y_hist[h - 1]) / y_hist[h - 1].squaredNorm();
    for (std::size_t k = 0; k < h; ++k) {
      const double beta = rho[k] * y_hist[k].dot(dir);
      dir += s_hist[k] * (alpha[k] - beta);
    }
    double slope = g.dot(dir);
    if (!(slope < 0.0)) {  // not a descent direction: restart from steepest descent
      s_hist.clear();
      y_hist.clear();
      rho.clear();
      dir = -g;
      slope = -g.squaredNorm();
    }
    double step = h == 0 ? std::min(1.0, 1.0 / std::sqrt(g.squaredNorm())) : 1.0;
    double f_new = f;
    bool moved = false;
    for (int ls = 0; ls < 40; ++ls) {
      x_new = x + step * dir;
      f_new = eval(x_new, g_new);
      if (f_new <= f + 1e-4 * step * slope) {
        moved = true;
        break;
      }
      step *= 0.5;
    }
    if (!moved) break;
    Vector s = x_new - x, y = g_new - g;
    const double sy = s.dot(y);
    if (sy > 1e-12) {
      if (s_hist.size() == o.history) {
        s_hist.erase(s_hist.begin());
        y_hist.erase(y_hist.begin());
        rho.erase(rho.begin());
      }
      s_hist.push_back(std::move(s));
      y_hist.push_back(std::move(y));
      rho.push_back(1.0 / sy);
    }
    const double f_old = f;
    x.swap(x_new);
    g.swap(g_new);
    f = f_new;
    if (converged(f_old, f_new)) break;
  }
}

/// Fits an L2-regularised logistic regression with soft targets by L-BFGS: minimises
/// mean over `rows` of [log(1 + e^z_i) - y_i z_i] + l2 / 2 * |w|^2 over theta = (w, b),
/// the bias last and unpenalised, where z_i = b + sum of w[index] * value over row i's
/// entries. `for_each_entry(i, visit)` calls visit(index, value) for every entry of row i
/// (each index < theta.size() - 1); `target(i)` is row i's target in [0, 1]. Starts from
/// `theta` and leaves the minimiser there; `o` and `converged` as for minimize_lbfgs.
/// Precondition: `rows` not empty, theta.size() >= 1. `Vector` is Eigen::VectorXd (a
/// template parameter, as for minimize_lbfgs).
template <class Vector, class ForEachEntry, class Target, class Converged>
void fit_l2_logistic(Vector& theta, std::span<const std::uint32_t> rows,
                     ForEachEntry&& for_each_entry, Target&& target, double l2,
                     const lbfgs_options& o, Converged converged) {
  TANDEM_ASSERT(!rows.empty() && theta.size() >= 1, "fit_l2_logistic: no rows or no bias");
  const Eigen::Index d = theta.size() - 1;
  const double inv_n = 1.0 / static_cast<double>(rows.size());
  const auto eval = [&](const Vector& th, Vector& g) {
    g.setZero();
    double f = 0;
    for (const std::uint32_t i : rows) {
      double s = th(d);
      for_each_entry(i, [&](std::uint32_t c, double v) { s += th(c) * v; });
      const double y = target(i);
      f += log1pexp(s) - y * s;
      const double r = (sigmoid(s) - y) * inv_n;
      for_each_entry(i, [&](std::uint32_t c, double v) { g(c) += r * v; });
      g(d) += r;
    }
    f *= inv_n;
    f += 0.5 * l2 * th.head(d).squaredNorm();
    g.head(d) += l2 * th.head(d);
    return f;
  };
  minimize_lbfgs(theta, eval, o, converged);
}

}  // namespace tandem::inline v0::detail
