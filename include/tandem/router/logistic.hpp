// tandem: L2-regularised logistic regression over sparse features (soft labels in [0, 1]),
// fitted by L-BFGS with Eigen, and a k-fold cross-validated choice of the L2 strength.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/logistic.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/detail/route.hpp"
#include "tandem/router/featurizer.hpp"

namespace tandem::inline v0 {

/// Settings of a logistic regression fit.
struct logistic_options {
  double l2 = 1e-4;            ///< L2 penalty on the weights (not the bias), >= 0
  std::size_t max_iter = 300;  ///< L-BFGS iterations at most
  double tol = 1e-7;           ///< stop when the largest gradient entry is below this
};

/// Binary (or soft-label) logistic regression p(y = 1 | x) = sigmoid(w . x + b) over
/// sparse features of a fixed dimension. Minimises the mean cross-entropy plus
/// l2 / 2 * |w|^2. Owns its weights.
class logistic_regression {
 public:
  /// Fits on rows `x` with targets `y` in [0, 1]. When `warm_start` is true and the model
  /// already has weights of this dimension, starts from them (fast regularisation paths).
  /// Errors: empty_input, size_mismatch (|x| != |y|, index/value sizes), invalid_argument
  /// (dims == 0, a target outside [0, 1], l2 < 0 or non-finite, an index >= dims or not
  /// increasing), non_finite (a feature value), insufficient_data (every target equal: no
  /// signal to fit). On error the previous weights are kept.
  /// `rows`, when not empty, restricts the fit to those row indices (each < |x|).
  /// `Vector` is a template parameter only so that the L-BFGS fit is
  /// compiled in the translation units that fit: leave it defaulted.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(std::span<const sparse_vector> x, std::span<const double> y,
                         std::size_t dims, const logistic_options& o, bool warm_start = false,
                         std::span<const std::uint32_t> rows = {}) {
    if (dims == 0 || !(o.l2 >= 0) || !std::isfinite(o.l2)) return errc::invalid_argument;
    if (x.empty()) return errc::empty_input;
    if (x.size() != y.size()) return errc::size_mismatch;
    TANDEM_TRY(detail::route::check_rows(x, dims));
    std::vector<std::uint32_t> all;
    rows = detail::route::rows_or_all(rows, x.size(), all);
    double lo = 1, hi = 0;
    for (std::uint32_t r : rows) {
      if (r >= x.size()) return errc::invalid_argument;
      const double t = y[r];
      if (!(t >= 0.0 && t <= 1.0)) return errc::invalid_argument;
      lo = std::min(lo, t);
      hi = std::max(hi, t);
    }
    if (hi - lo <= 0) return errc::insufficient_data;

    const auto d = static_cast<Eigen::Index>(dims);
    Vector theta = Vector::Zero(d + 1);  // weights, then bias
    if (warm_start && w_.size() == d) {
      theta.head(d) = w_;
      theta(d) = b_;
    } else {
      double mean = 0;
      for (std::uint32_t r : rows) mean += y[r];
      mean = std::clamp(mean / static_cast<double>(rows.size()), 1e-6, 1 - 1e-6);
      theta(d) = std::log(mean / (1 - mean));
    }
    // L-BFGS (8 pairs); stops once a step gains less than 1e-10 relative.
    detail::fit_l2_logistic(
        theta, rows,
        [&](std::uint32_t i, auto&& visit) {
          const sparse_vector& v = x[i];
          for (std::size_t k = 0; k < v.nnz(); ++k) visit(v.index[k], v.value[k]);
        },
        [&](std::uint32_t i) { return y[i]; }, o.l2, {8, o.max_iter, o.tol},
        [](double f_old, double f_new) {
          return (f_old - f_new) / std::max({std::abs(f_old), std::abs(f_new), 1.0}) < 1e-10;
        });
    w_ = theta.head(d);
    b_ = theta(d);
    return errc::ok;
  }

  /// Probability of the positive class for `v`. Precondition: fitted(), indices < dims().
  template <int = 0>
  [[nodiscard]] double predict(const sparse_vector& v) const noexcept {
    TANDEM_ASSERT(fitted(), "logistic_regression::predict before fit");
    double s = b_;
    for (std::size_t k = 0; k < v.nnz(); ++k) {
      TANDEM_ASSERT(v.index[k] < static_cast<std::size_t>(w_.size()), "feature out of range");
      s += w_(v.index[k]) * v.value[k];
    }
    return detail::route::sigmoid(s);
  }

  /// True once fitted or restored.
  [[nodiscard]] bool fitted() const noexcept { return w_.size() > 0; }
  /// Feature dimension (0 before fit).
  [[nodiscard]] std::size_t dims() const noexcept { return static_cast<std::size_t>(w_.size()); }
  /// The weights.
  [[nodiscard]] const Eigen::VectorXd& weights() const noexcept { return w_; }
  /// The bias.
  [[nodiscard]] double bias() const noexcept { return b_; }
  /// Sets the weights and bias (used by loading). Errors: empty_input, non_finite.
  template <int = 0>
  [[nodiscard]] errc restore(Eigen::VectorXd w, double b) {
    if (w.size() == 0) return errc::empty_input;
    if (!w.allFinite() || !std::isfinite(b)) return errc::non_finite;
    w_ = std::move(w);
    b_ = b;
    return errc::ok;
  }

 private:
  Eigen::VectorXd w_;
  double b_ = 0;
};

/// Mean cross-entropy of probabilities `p` against soft targets `y` (probabilities kept
/// within [1e-12, 1 - 1e-12]). Precondition: equal sizes.
template <int = 0>
[[nodiscard]] inline double log_loss(std::span<const double> p,
                                     std::span<const double> y) noexcept {
  TANDEM_ASSERT(p.size() == y.size(), "log_loss: size mismatch");
  if (p.empty()) return 0;
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double q = std::clamp(p[i], 1e-12, 1 - 1e-12);
    s -= y[i] * std::log(q) + (1 - y[i]) * std::log(1 - q);
  }
  return s / static_cast<double>(p.size());
}

/// Assigns each of n rows to one of `folds` folds at random (balanced sizes). Precondition:
/// folds >= 1.
template <int = 0>
[[nodiscard]] inline std::vector<std::uint32_t> random_folds(std::size_t n, std::size_t folds,
                                                             rng& g) {
  TANDEM_ASSERT(folds >= 1, "random_folds: zero folds");
  std::vector<std::uint32_t> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<std::uint32_t>(i % folds);
  for (std::size_t i = n; i > 1; --i) std::swap(f[i - 1], f[g.below(i)]);
  return f;
}

/// Picks the L2 strength from `grid` with the least k-fold cross-validated log loss (grid
/// visited from the strongest penalty down, warm-starting each fold's path), then refits
/// on all rows. Writes the chosen strength to `chosen` when non-null. Errors: those of
/// logistic_regression::fit, invalid_argument (empty grid, folds < 2 or > rows).
/// `Vector` as in logistic_regression::fit: leave it defaulted.
template <class Vector = Eigen::VectorXd>
[[nodiscard]] errc fit_logistic_cv(logistic_regression& model, std::span<const sparse_vector> x,
                                   std::span<const double> y, std::size_t dims,
                                   std::span<const double> grid, std::size_t folds, rng& g,
                                   logistic_options base = {}, double* chosen = nullptr) {
  if (grid.empty() || folds < 2 || folds > x.size()) return errc::invalid_argument;
  if (x.size() != y.size()) return errc::size_mismatch;
  std::vector<double> order(grid.begin(), grid.end());
  std::sort(order.begin(), order.end(), [](double a, double b) { return a > b; });
  const std::vector<std::uint32_t> fold = random_folds(x.size(), folds, g);
  std::vector<double> loss(order.size(), 0.0);
  for (std::size_t f = 0; f < folds; ++f) {
    std::vector<std::uint32_t> train;
    std::vector<double> yv;
    std::vector<std::size_t> val;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (fold[i] == f) {
        val.push_back(i);
        yv.push_back(y[i]);
      } else {
        train.push_back(static_cast<std::uint32_t>(i));
      }
    }
    logistic_regression m;
    std::vector<double> p(val.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      logistic_options o = base;
      o.l2 = order[k];
      const errc e = m.template fit<Vector>(x, y, dims, o, k > 0, train);
      if (e == errc::insufficient_data) {  // a one-class fold: score it as uninformative
        loss[k] += std::log(2.0) * static_cast<double>(val.size());
        continue;
      }
      TANDEM_TRY(e);
      for (std::size_t i = 0; i < val.size(); ++i) p[i] = m.predict(x[val[i]]);
      loss[k] += log_loss(p, yv) * static_cast<double>(val.size());
    }
  }
  const std::size_t best =
      static_cast<std::size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin());
  logistic_options o = base;
  o.l2 = order[best];
  if (chosen != nullptr) *chosen = o.l2;
  return model.template fit<Vector>(x, y, dims, o);
}

}  // namespace tandem::inline v0
