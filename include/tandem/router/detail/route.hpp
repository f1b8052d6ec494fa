// tandem (private): what the router predictors share besides the Eigen fits: row checks,
// the contrast error and the routing score used to choose hyper-parameters. No Eigen, so
// that the predictors that do not fit by L-BFGS (knn, factorization) compile without it.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/sigmoid.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/router/featurizer.hpp"

namespace tandem::inline v0 {

namespace detail::route {
using detail::log1pexp;
using detail::sigmoid;
template <int = 0>
inline errc check_rows(std::span<const sparse_vector> x, std::size_t dims) noexcept {
  for (const sparse_vector& v : x) {
    if (v.index.size() != v.value.size()) return errc::size_mismatch;
    for (std::size_t i = 0; i < v.nnz(); ++i) {
      if (v.index[i] >= dims || (i > 0 && v.index[i] <= v.index[i - 1]))
        return errc::invalid_argument;
      if (!std::isfinite(v.value[i])) return errc::non_finite;
    }
  }
  return errc::ok;
}
/// `rows`, or every index of `n` rows (written to `all`) when `rows` is empty.
inline std::span<const std::uint32_t> rows_or_all(std::span<const std::uint32_t> rows,
                                                  std::size_t n, std::vector<std::uint32_t>& all) {
  if (!rows.empty()) return rows;
  all.resize(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = static_cast<std::uint32_t>(i);
  return all;
}
/// Squared error of the within-query contrasts of m predictions against m outcomes: both
/// rows are centred on their own mean first, because a policy choosing among models is
/// blind to a shift shared by every model on a query. With m == 1, the plain squared error.
inline double contrast_sq_error(const double* pred, const double* truth, std::size_t m) noexcept {
  if (m == 1) return (pred[0] - truth[0]) * (pred[0] - truth[0]);
  double mp = 0, mt = 0;
  for (std::size_t j = 0; j < m; ++j) {
    mp += pred[j];
    mt += truth[j];
  }
  mp /= static_cast<double>(m);
  mt /= static_cast<double>(m);
  double e = 0;
  for (std::size_t j = 0; j < m; ++j) {
    const double d = (pred[j] - mp) - (truth[j] - mt);
    e += d * d;
  }
  return e;
}
/// How well predictions order the queries for routing, higher is better: for each pair
/// of models (a, b), queries are taken in order of decreasing predicted gain p_b - p_a
/// (equal predictions as one group) and the area under the running sum of the recorded
/// gain y_b - y_a is taken over the share of queries taken; the mean over pairs is
/// returned. For two models this is APGR up to a positive factor (APGR's normaliser,
/// the total gain, does not depend on the predictions), so choosing hyper-parameters by it
/// chooses them for the routing curve, not for calibration. 0 when m < 2 or n == 0.
template <int = 0>
inline double routing_score(std::span<const double> pred, std::span<const double> truth,
                            std::size_t m) {
  const std::size_t n = m == 0 ? 0 : pred.size() / m;
  if (m < 2 || n == 0) return 0;
  std::vector<std::pair<double, double>> d(n);  // (predicted gain, recorded gain)
  double total = 0;
  std::size_t pairs = 0;
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = a + 1; b < m; ++b) {
      for (std::size_t i = 0; i < n; ++i)
        d[i] = {pred[i * m + b] - pred[i * m + a], truth[i * m + b] - truth[i * m + a]};
      std::sort(d.begin(), d.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      double cum = 0, area = 0;
      for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        double g = 0;
        for (; j < n && d[j].first == d[i].first; ++j) g += d[j].second;
        // Trapezoid over the group: the running sum rises linearly across a tie.
        area += static_cast<double>(j - i) * (cum + 0.5 * g);
        cum += g;
        i = j;
      }
      total += area / (static_cast<double>(n) * static_cast<double>(n));
      ++pairs;
    }
  return total / static_cast<double>(pairs);
}
}  // namespace detail::route

}  // namespace tandem::inline v0
