// tandem: a matrix-factorisation quality predictor in the spirit of RouteLLM's MF router:
// queries are projected to a small latent space, each model has a latent vector, and the
// predicted quality is sigmoid(u_m . (P x) + b_m). Trained by AdaGrad SGD on the
// cross-entropy of every (query, model) outcome, with early stopping on a held-out slice
// of the training rows.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/detail/route.hpp"
#include "tandem/router/featurizer.hpp"

namespace tandem::inline v0 {

/// Settings of the factorisation predictor.
struct factorization_options {
  std::size_t rank = 16;       ///< latent dimension, >= 1
  std::size_t epochs = 30;     ///< passes over the training rows at most, >= 1
  double learning_rate = 0.1;  ///< AdaGrad step, > 0
  double l2 = 1e-6;            ///< weight decay on the projection and model vectors, >= 0
  double holdout = 0.1;        ///< share of rows held out for early stopping, in [0, 0.5)
  std::size_t patience = 3;    ///< epochs without held-out improvement before stopping
};

/// Predicts each model's quality as sigmoid(u_m . (P x) + b_m), P a rank x dims projection.
/// Owns its parameters; deterministic for a given rng seed.
class factorization_predictor {
 public:
  /// Fits on rows `x` with `models` targets each in `y` (row-major, values in [0, 1]).
  /// Errors: empty_input, size_mismatch, invalid_argument (bad options, models or dims 0,
  /// a target outside [0, 1], an index >= dims), non_finite, insufficient_data (fewer than
  /// 2 rows). On error the previous state is kept.
  template <int = 0>
  [[nodiscard]] errc fit(std::span<const sparse_vector> x, std::span<const double> y,
                         std::size_t models, std::size_t dims, const factorization_options& o,
                         rng& g) {
    if (models == 0 || dims == 0 || o.rank == 0 || o.epochs == 0 || !(o.learning_rate > 0) ||
        !(o.l2 >= 0) || !(o.holdout >= 0 && o.holdout < 0.5))
      return errc::invalid_argument;
    if (x.empty()) return errc::empty_input;
    if (y.size() != x.size() * models) return errc::size_mismatch;
    if (x.size() < 2) return errc::insufficient_data;
    TANDEM_TRY(detail::route::check_rows(x, dims));
    for (double t : y)
      if (!(t >= 0.0 && t <= 1.0)) return errc::invalid_argument;
    const std::size_t r = o.rank, n = x.size();
    std::vector<float> p(dims * r), u(models * r), b(models, 0.0f);
    // Small random start (uniform in [-a, a]) so the latent directions differ.
    for (float& v : p) v = static_cast<float>((g.uniform() * 2 - 1) * 0.1);
    for (float& v : u) v = static_cast<float>((g.uniform() * 2 - 1) * 0.1);
    for (std::size_t m = 0; m < models; ++m) {
      double mean = 0;
      for (std::size_t i = 0; i < n; ++i) mean += y[i * models + m];
      mean = std::clamp(mean / static_cast<double>(n), 1e-3, 1 - 1e-3);
      b[m] = static_cast<float>(std::log(mean / (1 - mean)));
    }
    std::vector<float> gp(p.size(), 1e-8f), gu(u.size(), 1e-8f), gb(models, 1e-8f);
    std::vector<std::uint32_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
    const std::size_t n_hold =
        std::min(n - 1, static_cast<std::size_t>(o.holdout * static_cast<double>(n)));
    std::vector<std::uint32_t> hold(order.begin(),
                                    order.begin() + static_cast<std::ptrdiff_t>(n_hold));
    std::vector<std::uint32_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_hold),
                                     order.end());
    std::vector<float> h(r), gh(r);
    std::vector<float> best_p = p, best_u = u, best_b = b;
    double best_loss = 1e300;
    std::size_t stale = 0;
    const auto lr = static_cast<float>(o.learning_rate);
    const auto decay = static_cast<float>(o.l2);
    for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
      for (std::size_t i = train.size(); i > 1; --i) std::swap(train[i - 1], train[g.below(i)]);
      for (std::uint32_t row : train) {
        const sparse_vector& v = x[row];
        project(p, r, v, h);
        std::fill(gh.begin(), gh.end(), 0.0f);
        for (std::size_t m = 0; m < models; ++m) {
          float s = b[m];
          for (std::size_t k = 0; k < r; ++k) s += u[m * r + k] * h[k];
          const auto res = static_cast<float>(detail::route::sigmoid(s) - y[row * models + m]);
          for (std::size_t k = 0; k < r; ++k) {
            gh[k] += res * u[m * r + k];
            const float gr = res * h[k] + decay * u[m * r + k];
            gu[m * r + k] += gr * gr;
            u[m * r + k] -= lr * gr / std::sqrt(gu[m * r + k]);
          }
          gb[m] += res * res;
          b[m] -= lr * res / std::sqrt(gb[m]);
        }
        for (std::size_t j = 0; j < v.nnz(); ++j) {
          float* pj = p.data() + static_cast<std::size_t>(v.index[j]) * r;
          float* gj = gp.data() + static_cast<std::size_t>(v.index[j]) * r;
          for (std::size_t k = 0; k < r; ++k) {
            const float gr = gh[k] * v.value[j] + decay * pj[k];
            gj[k] += gr * gr;
            pj[k] -= lr * gr / std::sqrt(gj[k]);
          }
        }
      }
      if (hold.empty()) {
        best_p = p;
        best_u = u;
        best_b = b;
        continue;
      }
      double loss = 0;
      for (std::uint32_t row : hold) {
        project(p, r, x[row], h);
        for (std::size_t m = 0; m < models; ++m) {
          double s = b[m];
          for (std::size_t k = 0; k < r; ++k) s += u[m * r + k] * h[k];
          const double q = std::clamp(detail::route::sigmoid(s), 1e-12, 1 - 1e-12);
          const double t = y[row * models + m];
          loss -= t * std::log(q) + (1 - t) * std::log(1 - q);
        }
      }
      if (loss < best_loss) {
        best_loss = loss;
        best_p = p;
        best_u = u;
        best_b = b;
        stale = 0;
      } else if (++stale >= o.patience) {
        break;
      }
    }
    return restore(dims, models, r, std::move(best_p), std::move(best_u), std::move(best_b));
  }

  /// Sets the parameters (used by fit and loading). Errors: corrupt_file (sizes that do
  /// not match dims x rank, models x rank, models; a non-finite value), invalid_argument
  /// (a zero size).
  template <int = 0>
  [[nodiscard]] errc restore(std::size_t dims, std::size_t models, std::size_t rank,
                             std::vector<float> p, std::vector<float> u, std::vector<float> b) {
    if (dims == 0 || models == 0 || rank == 0) return errc::invalid_argument;
    if (p.size() != dims * rank || u.size() != models * rank || b.size() != models)
      return errc::corrupt_file;
    for (const auto* vec : {&p, &u, &b})
      for (float v : *vec)
        if (!std::isfinite(v)) return errc::corrupt_file;
    p_ = std::move(p);
    u_ = std::move(u);
    b_ = std::move(b);
    dims_ = dims;
    models_ = models;
    rank_ = rank;
    return errc::ok;
  }

  /// Writes each model's predicted quality for `v` to `out` (size models()). Errors:
  /// size_mismatch, invalid_argument (an index >= dims()). Precondition: fitted().
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& v, std::span<double> out) const {
    TANDEM_ASSERT(fitted(), "factorization_predictor used before fit");
    if (out.size() != models_) return errc::size_mismatch;
    for (std::uint32_t f : v.index)
      if (f >= dims_) return errc::invalid_argument;
    std::vector<float> h(rank_);
    project(p_, rank_, v, h);
    for (std::size_t m = 0; m < models_; ++m) {
      double s = b_[m];
      for (std::size_t k = 0; k < rank_; ++k) s += static_cast<double>(u_[m * rank_ + k]) * h[k];
      out[m] = detail::route::sigmoid(s);
    }
    return errc::ok;
  }

  /// True once fitted or restored.
  [[nodiscard]] bool fitted() const noexcept { return models_ > 0; }
  /// Feature dimension.
  [[nodiscard]] std::size_t dims() const noexcept { return dims_; }
  /// Number of models predicted (0 until fitted).
  [[nodiscard]] std::size_t models() const noexcept { return models_; }
  /// Rank of the factorisation (length of each model vector).
  [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
  ///@{
  /// Parameters, for saving: projection (dims x rank), model vectors (models x rank),
  /// biases (one per model). Views into this predictor, valid while it is unchanged.
  [[nodiscard]] std::span<const float> projection() const noexcept { return p_; }
  [[nodiscard]] std::span<const float> model_vectors() const noexcept { return u_; }
  [[nodiscard]] std::span<const float> biases() const noexcept { return b_; }
  ///@}

 private:
  static void project(std::span<const float> p, std::size_t r, const sparse_vector& v,
                      std::span<float> h) noexcept {
    std::fill(h.begin(), h.end(), 0.0f);
    for (std::size_t j = 0; j < v.nnz(); ++j) {
      const float* pj = p.data() + static_cast<std::size_t>(v.index[j]) * r;
      for (std::size_t k = 0; k < r; ++k) h[k] += pj[k] * v.value[j];
    }
  }

  std::vector<float> p_, u_, b_;
  std::size_t dims_ = 0, models_ = 0, rank_ = 0;
};

}  // namespace tandem::inline v0
