// tandem: a joint logistic regression for the quality of m models on the same queries, with
// the models anchored to a reference model. Every model's logit is the reference's logit
// plus an L2-penalised offset of its own:
//
//   logit_j(x) = b_j + x . u + x . v_j,    v_ref = 0,
//
// minimising the mean cross-entropy over all (query, model) outcomes plus
// l2 / 2 * (|u|^2 + sum_j |v_j|^2). The shared weights u learn what makes a query hard for
// every model; the penalised offsets v_j learn only what sets model j apart from the
// reference, so the predicted gain p_j - p_ref is neither two independent fits' noise nor
// blind to how hard the query is. On the recorded MMLU outcomes this ordered queries by
// gain better than independent per-model fits (cross-validated APGR 0.694 against 0.682).
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/logistic.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/featurizer.hpp"
#include "tandem/router/logistic.hpp"

namespace tandem::inline v0 {

/// Joint (reference-anchored) logistic regression of m models' quality over sparse
/// features of a fixed dimension; see the file comment for the model. Owns its weights
/// (dims x m doubles: the shared block, then one offset block per model, the reference's
/// block all zero). Copyable; predict() is const and thread-compatible.
class joint_logistic {
 public:
  /// Fits on rows `x` with targets `y` (row-major |x| x `models`, each in [0, 1]),
  /// anchored to model `reference`. When `warm_start` is true and the model already has
  /// weights of this shape, starts from them (fast regularisation paths). `rows`, when not
  /// empty, restricts the fit to those row indices (each < |x|). Errors: empty_input,
  /// size_mismatch (|y| != |x| * models, index/value sizes), invalid_argument (models == 0,
  /// reference >= models, dims == 0, a target outside [0, 1], l2 < 0 or non-finite, an
  /// index >= dims or not increasing, a row index out of range), non_finite (a feature
  /// value), insufficient_data (a model whose targets are all equal on the rows fitted).
  /// On error the previous weights are kept. `Vector` is a template parameter only so that the
  /// L-BFGS fit is compiled in the translation units that fit: leave it defaulted.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(std::span<const sparse_vector> x, std::span<const double> y,
                         std::size_t models, std::size_t reference, std::size_t dims,
                         const logistic_options& o, bool warm_start = false,
                         std::span<const std::uint32_t> rows = {}) {
    if (models == 0 || reference >= models || dims == 0 || !(o.l2 >= 0) || !std::isfinite(o.l2))
      return errc::invalid_argument;
    if (x.empty()) return errc::empty_input;
    if (y.size() != x.size() * models) return errc::size_mismatch;
    TANDEM_TRY(detail::route::check_rows(x, dims));
    std::vector<std::uint32_t> all;
    rows = detail::route::rows_or_all(rows, x.size(), all);
    const std::size_t m = models;
    std::vector<double> lo(m, 1.0), hi(m, 0.0), mean(m, 0.0);
    for (std::uint32_t r : rows) {
      if (r >= x.size()) return errc::invalid_argument;
      for (std::size_t j = 0; j < m; ++j) {
        const double t = y[r * m + j];
        if (!(t >= 0.0 && t <= 1.0)) return errc::invalid_argument;
        lo[j] = std::min(lo[j], t);
        hi[j] = std::max(hi[j], t);
        mean[j] += t;
      }
    }
    for (std::size_t j = 0; j < m; ++j)
      if (hi[j] - lo[j] <= 0) return errc::insufficient_data;

    // Only features that occur in the fitted rows can be non-zero at the optimum (the L2
    // term pulls every other weight to 0), so the fit runs over those columns alone: a
    // hashed space of 2^20 dims then costs no more than the features a table really uses.
    std::vector<std::uint32_t> used;
    for (std::uint32_t r : rows) used.insert(used.end(), x[r].index.begin(), x[r].index.end());
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    // Row i's compact feature indices: cidx[cstart[i] .. cstart[i] + nnz).
    std::vector<std::uint32_t> cidx;
    std::vector<std::size_t> cstart(x.size(), 0);
    for (std::uint32_t r : rows) {
      cstart[r] = cidx.size();
      for (std::uint32_t f : x[r].index)
        cidx.push_back(static_cast<std::uint32_t>(std::lower_bound(used.begin(), used.end(), f) -
                                                  used.begin()));
    }

    const auto full = static_cast<Eigen::Index>(dims);
    const auto d = static_cast<Eigen::Index>(used.size());
    const auto nb = static_cast<Eigen::Index>(m);  // weight blocks: shared + (m - 1) offsets
    // Block of model j's offset (the reference has none): 1 + j, less one past the reference.
    const auto block = [&](std::size_t j) {
      return static_cast<Eigen::Index>(j < reference ? j + 1 : j);
    };
    const Eigen::Index bias0 = d * nb;
    Vector theta = Vector::Zero(d * nb + nb);
    if (warm_start && w_.size() == full * nb && b_.size() == nb && reference_ == reference) {
      for (Eigen::Index bl = 0; bl < nb; ++bl)
        for (Eigen::Index c = 0; c < d; ++c)
          theta(bl * d + c) = w_(bl * full + static_cast<Eigen::Index>(used[c]));
      theta.tail(nb) = b_;
    } else {
      for (std::size_t j = 0; j < m; ++j) {
        const double p = std::clamp(mean[j] / static_cast<double>(rows.size()), 1e-6, 1 - 1e-6);
        theta(bias0 + static_cast<Eigen::Index>(j)) = std::log(p / (1 - p));
      }
    }
    const double inv = 1.0 / (static_cast<double>(rows.size()) * static_cast<double>(m));
    std::vector<double> r(m);
    const auto eval = [&](const Vector& th, Vector& g) {
      g.setZero();
      double f = 0;
      for (std::uint32_t i : rows) {
        const sparse_vector& v = x[i];
        const std::uint32_t* ci = cidx.data() + cstart[i];
        double shared = 0;
        for (std::size_t k = 0; k < v.nnz(); ++k) shared += th(ci[k]) * v.value[k];
        double r_shared = 0;
        for (std::size_t j = 0; j < m; ++j) {
          double z = th(bias0 + static_cast<Eigen::Index>(j)) + shared;
          if (j != reference) {
            const Eigen::Index off = block(j) * d;
            for (std::size_t k = 0; k < v.nnz(); ++k) z += th(off + ci[k]) * v.value[k];
          }
          const double t = y[i * m + j];
          f += detail::log1pexp(z) - t * z;
          r[j] = (detail::sigmoid(z) - t) * inv;
          r_shared += r[j];
          g(bias0 + static_cast<Eigen::Index>(j)) += r[j];
        }
        for (std::size_t k = 0; k < v.nnz(); ++k) g(ci[k]) += r_shared * v.value[k];
        for (std::size_t j = 0; j < m; ++j) {
          if (j == reference) continue;
          const Eigen::Index off = block(j) * d;
          for (std::size_t k = 0; k < v.nnz(); ++k) g(off + ci[k]) += r[j] * v.value[k];
        }
      }
      f *= inv;
      f += 0.5 * o.l2 * th.head(d * nb).squaredNorm();
      g.head(d * nb) += o.l2 * th.head(d * nb);
      return f;
    };
    detail::minimize_lbfgs(theta, eval, {8, o.max_iter, o.tol}, [](double f_old, double f_new) {
      return (f_old - f_new) / std::max({std::abs(f_old), std::abs(f_new), 1.0}) < 1e-10;
    });
    w_ = Eigen::VectorXd::Zero(full * nb);
    for (Eigen::Index bl = 0; bl < nb; ++bl)
      for (Eigen::Index c = 0; c < d; ++c)
        w_(bl * full + static_cast<Eigen::Index>(used[c])) = theta(bl * d + c);
    b_ = theta.tail(nb);
    reference_ = reference;
    dims_ = dims;
    return errc::ok;
  }

  /// Writes each model's probability of success on `v` to `out`. Errors: size_mismatch
  /// (out.size() != models()), invalid_argument (an index >= dims()). Precondition:
  /// fitted().
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& v, std::span<double> out) const noexcept {
    TANDEM_ASSERT(fitted(), "joint_logistic::predict before fit");
    const std::size_t m = models();
    if (out.size() != m) return errc::size_mismatch;
    for (std::uint32_t f : v.index)
      if (f >= dims_) return errc::invalid_argument;
    const auto d = static_cast<Eigen::Index>(dims_);
    double shared = 0;
    for (std::size_t k = 0; k < v.nnz(); ++k) shared += w_(v.index[k]) * v.value[k];
    for (std::size_t j = 0; j < m; ++j) {
      double z = b_(static_cast<Eigen::Index>(j)) + shared;
      if (j != reference_) {
        const Eigen::Index off = static_cast<Eigen::Index>(j < reference_ ? j + 1 : j) * d;
        for (std::size_t k = 0; k < v.nnz(); ++k) z += w_(off + v.index[k]) * v.value[k];
      }
      out[j] = detail::sigmoid(z);
    }
    return errc::ok;
  }

  /// True once fitted or restored.
  [[nodiscard]] bool fitted() const noexcept { return b_.size() > 0; }
  /// Number of models (0 before fit).
  [[nodiscard]] std::size_t models() const noexcept { return static_cast<std::size_t>(b_.size()); }
  /// Feature dimension (0 before fit).
  [[nodiscard]] std::size_t dims() const noexcept { return dims_; }
  /// The reference model's index.
  [[nodiscard]] std::size_t reference() const noexcept { return reference_; }
  /// The weights: the shared block, then the offset blocks of the non-reference models in
  /// model order, each dims() long.
  [[nodiscard]] const Eigen::VectorXd& weights() const noexcept { return w_; }
  /// The per-model biases.
  [[nodiscard]] const Eigen::VectorXd& biases() const noexcept { return b_; }

  /// Sets the parameters (used by loading). Errors: invalid_argument (no models, a
  /// reference >= models, dims == 0, weights not dims x models long), non_finite.
  template <int = 0>
  [[nodiscard]] errc restore(std::size_t dims, std::size_t reference, Eigen::VectorXd w,
                             Eigen::VectorXd b) {
    if (b.size() == 0 || dims == 0 || reference >= static_cast<std::size_t>(b.size()))
      return errc::invalid_argument;
    if (static_cast<std::size_t>(w.size()) != dims * static_cast<std::size_t>(b.size()))
      return errc::invalid_argument;
    if (!w.allFinite() || !b.allFinite()) return errc::non_finite;
    dims_ = dims;
    reference_ = reference;
    w_ = std::move(w);
    b_ = std::move(b);
    return errc::ok;
  }

 private:
  Eigen::VectorXd w_, b_;
  std::size_t dims_ = 0;
  std::size_t reference_ = 0;
};

}  // namespace tandem::inline v0
