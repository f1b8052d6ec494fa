// tandem: k-nearest-neighbour quality predictor over L2-normalised sparse features (cosine
// similarity through an inverted index), with shrinkage toward the training mean and a
// leave-one-out choice of k and of the shrinkage strength.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/router/detail/route.hpp"
#include "tandem/router/featurizer.hpp"

namespace tandem::inline v0 {

/// Settings of the k-NN predictor.
struct knn_options {
  std::size_t k = 32;            ///< neighbours averaged, >= 1
  double prior = 1.0;            ///< pseudo-weight of the training mean, >= 0
  double power = 1.0;            ///< neighbour weight = similarity^power, >= 0
  std::size_t max_terms = 4096;  ///< keep each stored row's largest entries only (>= 1)
};

/// Predicts each target as the similarity-weighted mean over the k most similar training
/// rows, shrunk toward the training mean: (sum_j w_j y_j + prior * mean) / (sum_j w_j +
/// prior), with w_j = s_j^power and s_j the (positive) cosine similarity; a higher power
/// trusts near-duplicates more. Stored rows keep only their
/// `max_terms` largest entries, which drops the common, low-weight features and keeps the
/// index small. Owns a copy of the (pruned) training rows and targets.
class knn_predictor {
 public:
  /// Indexes rows `x` with `targets` targets each in `y` (row-major |x| x targets, values
  /// in [0, 1]). Errors: empty_input, size_mismatch, invalid_argument (targets == 0,
  /// dims == 0, k == 0, max_terms == 0, prior < 0, a target outside [0, 1], an index >=
  /// dims), non_finite. On error the previous state is kept.
  template <int = 0>
  [[nodiscard]] errc fit(std::span<const sparse_vector> x, std::span<const double> y,
                         std::size_t targets, std::size_t dims, const knn_options& o) {
    if (targets == 0 || dims == 0 || o.k == 0 || o.max_terms == 0 || !(o.prior >= 0) ||
        !std::isfinite(o.prior) || !(o.power >= 0) || !std::isfinite(o.power))
      return errc::invalid_argument;
    if (x.empty()) return errc::empty_input;
    if (y.size() != x.size() * targets) return errc::size_mismatch;
    TANDEM_TRY(detail::route::check_rows(x, dims));
    for (double t : y)
      if (!(t >= 0.0 && t <= 1.0)) return errc::invalid_argument;
    std::vector<std::uint64_t> row_off{0};
    std::vector<std::uint32_t> cols;
    std::vector<float> vals;
    std::vector<std::size_t> ord;
    for (const sparse_vector& v : x) {
      ord.resize(v.nnz());
      for (std::size_t i = 0; i < v.nnz(); ++i) ord[i] = i;
      if (ord.size() > o.max_terms) {
        std::nth_element(ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(o.max_terms),
                         ord.end(), [&](std::size_t a, std::size_t b) {
                           return std::abs(v.value[a]) > std::abs(v.value[b]);
                         });
        ord.resize(o.max_terms);
        std::sort(ord.begin(), ord.end());
      }
      for (std::size_t i : ord) {
        cols.push_back(v.index[i]);
        vals.push_back(v.value[i]);
      }
      row_off.push_back(cols.size());
    }
    return restore(dims, targets, o, std::move(row_off), std::move(cols), std::move(vals),
                   std::vector<double>(y.begin(), y.end()));
  }

  /// Rebuilds from stored rows (CSR) and targets; used by fit and by loading. Errors:
  /// invalid_argument, corrupt_file (inconsistent sizes or offsets, an index >= dims, a
  /// target outside [0, 1], a non-finite value).
  template <int = 0>
  [[nodiscard]] errc restore(std::size_t dims, std::size_t targets, const knn_options& o,
                             std::vector<std::uint64_t> row_off, std::vector<std::uint32_t> cols,
                             std::vector<float> vals, std::vector<double> y) {
    if (targets == 0 || dims == 0 || o.k == 0 || o.max_terms == 0 || !(o.prior >= 0) ||
        !std::isfinite(o.prior) || !(o.power >= 0) || !std::isfinite(o.power))
      return errc::invalid_argument;
    if (row_off.size() < 2 || row_off.front() != 0 || row_off.back() != cols.size() ||
        vals.size() != cols.size() || y.size() != (row_off.size() - 1) * targets)
      return errc::corrupt_file;
    for (std::size_t i = 1; i < row_off.size(); ++i)
      if (row_off[i] < row_off[i - 1]) return errc::corrupt_file;
    for (std::size_t i = 0; i < cols.size(); ++i)
      if (cols[i] >= dims || !std::isfinite(vals[i])) return errc::corrupt_file;
    for (double t : y)
      if (!(t >= 0.0 && t <= 1.0)) return errc::corrupt_file;
    const std::size_t n = row_off.size() - 1;
    // Inverted index: for each feature, the rows holding it.
    post_off_.assign(dims + 1, 0);
    for (std::uint32_t c : cols) ++post_off_[c + 1];
    for (std::size_t f = 0; f < dims; ++f) post_off_[f + 1] += post_off_[f];
    post_row_.resize(cols.size());
    post_val_.resize(cols.size());
    std::vector<std::uint64_t> fill(post_off_.begin(), post_off_.end() - 1);
    for (std::size_t r = 0; r < n; ++r)
      for (std::uint64_t k = row_off[r]; k < row_off[r + 1]; ++k) {
        const std::uint64_t at = fill[cols[k]]++;
        post_row_[at] = static_cast<std::uint32_t>(r);
        post_val_[at] = vals[k];
      }
    mean_.assign(targets, 0.0);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t t = 0; t < targets; ++t) mean_[t] += y[r * targets + t];
    for (double& m : mean_) m /= static_cast<double>(n);
    row_off_ = std::move(row_off);
    cols_ = std::move(cols);
    vals_ = std::move(vals);
    y_ = std::move(y);
    n_ = n;
    targets_ = targets;
    dims_ = dims;
    options_ = o;
    return errc::ok;
  }

  /// The `k` most similar stored rows to `v` (positive similarity only), best first, as
  /// (similarity, row) pairs in `out`; row `exclude` is skipped (leave-one-out). Errors:
  /// invalid_argument (an index of v >= dims()). Precondition: fitted().
  template <int = 0>
  [[nodiscard]] errc neighbours(
      const sparse_vector& v, std::size_t k, std::vector<std::pair<float, std::uint32_t>>& out,
      std::size_t exclude = std::numeric_limits<std::size_t>::max()) const {
    TANDEM_ASSERT(fitted(), "knn_predictor used before fit");
    out.clear();
    std::vector<float> acc(n_, 0.0f);
    std::vector<std::uint8_t> seen(n_, 0);
    std::vector<std::uint32_t> touched;
    for (std::size_t i = 0; i < v.nnz(); ++i) {
      const std::uint32_t f = v.index[i];
      if (f >= dims_) return errc::invalid_argument;
      const float q = v.value[i];
      for (std::uint64_t p = post_off_[f]; p < post_off_[f + 1]; ++p) {
        const std::uint32_t r = post_row_[p];
        if (seen[r] == 0) {
          seen[r] = 1;
          touched.push_back(r);
        }
        acc[r] += q * post_val_[p];
      }
    }
    for (std::uint32_t r : touched)
      if (r != exclude && acc[r] > 0.0f) out.emplace_back(acc[r], r);
    const auto better = [](const std::pair<float, std::uint32_t>& a,
                           const std::pair<float, std::uint32_t>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    if (out.size() > k) {
      std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(),
                       better);
      out.resize(k);
    }
    std::sort(out.begin(), out.end(), better);
    return errc::ok;
  }

  /// Writes the predicted targets for `v` to `out` (size targets()). Errors:
  /// size_mismatch, invalid_argument (an index of v >= dims()). Precondition: fitted().
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& v, std::span<double> out) const {
    if (out.size() != targets_) return errc::size_mismatch;
    std::vector<std::pair<float, std::uint32_t>> nb;
    TANDEM_TRY(neighbours(v, options_.k, nb));
    blend(nb, options_.k, options_.prior, options_.power, out);
    return errc::ok;
  }

  /// Combines the first `k` of `nb` with shrinkage `prior` and weight exponent `power`
  /// into `out` (no checks).
  void blend(std::span<const std::pair<float, std::uint32_t>> nb, std::size_t k, double prior,
             double power, std::span<double> out) const noexcept {
    double wsum = prior;
    for (std::size_t t = 0; t < targets_; ++t) out[t] = prior * mean_[t];
    for (std::size_t j = 0; j < std::min(k, nb.size()); ++j) {
      const double w =
          power == 1.0 ? nb[j].first : std::pow(static_cast<double>(nb[j].first), power);
      wsum += w;
      for (std::size_t t = 0; t < targets_; ++t) out[t] += w * y_[nb[j].second * targets_ + t];
    }
    for (std::size_t t = 0; t < targets_; ++t) out[t] = wsum > 0 ? out[t] / wsum : mean_[t];
  }

  /// True once fitted or restored.
  [[nodiscard]] bool fitted() const noexcept { return n_ > 0; }
  /// Number of stored rows.
  [[nodiscard]] std::size_t rows() const noexcept { return n_; }
  /// Number of targets per row.
  [[nodiscard]] std::size_t targets() const noexcept { return targets_; }
  /// Feature dimension.
  [[nodiscard]] std::size_t dims() const noexcept { return dims_; }
  /// The options in use.
  [[nodiscard]] const knn_options& options() const noexcept { return options_; }
  /// Sets k, the shrinkage and the weight exponent (e.g. after cross-validation).
  /// Precondition: k >= 1, prior >= 0, power >= 0.
  void tune(std::size_t k, double prior, double power) noexcept {
    TANDEM_ASSERT(k >= 1 && prior >= 0 && power >= 0, "knn_predictor::tune: bad arguments");
    options_.k = k;
    options_.prior = prior;
    options_.power = power;
  }
  ///@{
  /// Stored rows (CSR offsets, columns, values) and targets, for saving. Views into this
  /// predictor, valid while it is unchanged.
  [[nodiscard]] std::span<const std::uint64_t> row_offsets() const noexcept { return row_off_; }
  [[nodiscard]] std::span<const std::uint32_t> columns() const noexcept { return cols_; }
  [[nodiscard]] std::span<const float> values() const noexcept { return vals_; }
  [[nodiscard]] std::span<const double> stored_targets() const noexcept { return y_; }
  ///@}
  /// The stored row r as a sparse vector. Precondition: r < rows().
  [[nodiscard]] sparse_vector row(std::size_t r) const {
    TANDEM_ASSERT(r < n_, "knn_predictor::row out of range");
    sparse_vector v;
    v.index.assign(cols_.begin() + static_cast<std::ptrdiff_t>(row_off_[r]),
                   cols_.begin() + static_cast<std::ptrdiff_t>(row_off_[r + 1]));
    v.value.assign(vals_.begin() + static_cast<std::ptrdiff_t>(row_off_[r]),
                   vals_.begin() + static_cast<std::ptrdiff_t>(row_off_[r + 1]));
    return v;
  }

 private:
  std::vector<std::uint64_t> row_off_;
  std::vector<std::uint32_t> cols_;
  std::vector<float> vals_;
  std::vector<double> y_;
  std::vector<double> mean_;
  std::vector<std::uint64_t> post_off_;
  std::vector<std::uint32_t> post_row_;
  std::vector<float> post_val_;
  std::size_t n_ = 0, targets_ = 0, dims_ = 0;
  knn_options options_{};
};

/// Fits `model` on (x, y) and picks k, the shrinkage and the weight exponent from the
/// grids by leave-one-out predictions over the training rows (each row's neighbours
/// exclude itself), scored by detail::route::routing_score (how well they order queries by each
/// pair's gain) for two or more targets, or by squared error for one target. Writes the
/// leave-one-out predictions under the chosen setting (row-major, like y) to `loo` when
/// non-null. Errors: those of knn_predictor::fit, invalid_argument (an empty grid, a k of
/// 0, a negative prior or power).
template <int = 0>
[[nodiscard]] inline errc fit_knn_loo(knn_predictor& model, std::span<const sparse_vector> x,
                                      std::span<const double> y, std::size_t targets,
                                      std::size_t dims, std::span<const std::size_t> k_grid,
                                      std::span<const double> prior_grid,
                                      std::span<const double> power_grid, knn_options base = {},
                                      std::vector<double>* loo = nullptr) {
  if (k_grid.empty() || prior_grid.empty() || power_grid.empty()) return errc::invalid_argument;
  for (std::size_t k : k_grid)
    if (k == 0) return errc::invalid_argument;
  for (double p : prior_grid)
    if (!(p >= 0) || !std::isfinite(p)) return errc::invalid_argument;
  for (double p : power_grid)
    if (!(p >= 0) || !std::isfinite(p)) return errc::invalid_argument;
  TANDEM_TRY(model.fit(x, y, targets, dims, base));
  const std::size_t kmax = *std::max_element(k_grid.begin(), k_grid.end());
  const std::size_t n = model.rows();
  std::vector<std::vector<std::pair<float, std::uint32_t>>> nbs(n);
  for (std::size_t i = 0; i < n; ++i)  // the full row, as predict() sees a new query
    TANDEM_TRY(model.neighbours(x[i], kmax, nbs[i], i));
  std::vector<double> pred(n * targets);
  const auto predict_all = [&](std::size_t k, double prior, double power) {
    for (std::size_t i = 0; i < n; ++i)
      model.blend(nbs[i], k, prior, power, std::span<double>(pred.data() + i * targets, targets));
  };
  double best_score = 0;
  std::size_t best_k = k_grid[0];
  double best_prior = prior_grid[0], best_power = power_grid[0];
  bool first = true;
  for (std::size_t k : k_grid)
    for (double prior : prior_grid)
      for (double power : power_grid) {
        predict_all(k, prior, power);
        double score = 0;
        if (targets >= 2) {
          score = detail::route::routing_score(pred, y, targets);
        } else {
          for (std::size_t i = 0; i < n; ++i) score -= (pred[i] - y[i]) * (pred[i] - y[i]);
        }
        if (first || score > best_score) {
          first = false;
          best_score = score;
          best_k = k;
          best_prior = prior;
          best_power = power;
        }
      }
  model.tune(best_k, best_prior, best_power);
  if (loo != nullptr) {
    predict_all(best_k, best_prior, best_power);
    *loo = pred;
  }
  return errc::ok;
}

}  // namespace tandem::inline v0
