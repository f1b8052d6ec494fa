// Logistic regression over sparse rows, the random folds and the cross-validated choice of
// an L2 strength (checked against an independent computation of the routing score).
#include "tandem/router/logistic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/predictors.hpp"

using tandem::errc;

TEST_CASE("logistic regression: fits soft labels and rejects one-class data",
          "[router][logistic]") {
  std::vector<tandem::sparse_vector> x(2);
  x[0].index = {0};
  x[0].value = {1};
  x[1].index = {1};
  x[1].value = {1};
  tandem::logistic_regression lr;
  const std::vector<double> y{0.8, 0.2};
  tandem::logistic_options o;
  o.l2 = 0;
  REQUIRE(lr.fit(x, y, 2, o) == errc::ok);
  CHECK(lr.predict(x[0]) == Approx(0.8).margin(1e-3));
  CHECK(lr.predict(x[1]) == Approx(0.2).margin(1e-3));
  CHECK(lr.fit(x, std::vector<double>{1, 1}, 2, o) == errc::insufficient_data);
  CHECK(lr.fit(x, std::vector<double>{1, 2}, 2, o) == errc::invalid_argument);
  CHECK(lr.fit(x, y, 1, o) == errc::invalid_argument);  // index 1 outside dims 1
}

TEST_CASE("cross-validation: random folds are balanced, seeded and partition the rows",
          "[router][logistic]") {
  tandem::rng g(3), h(3), other(4);
  const auto f = tandem::random_folds(23, 4, g);
  REQUIRE(f.size() == 23);
  std::vector<int> size(4, 0);
  for (std::uint32_t k : f) {
    REQUIRE(k < 4);
    ++size[k];
  }
  CHECK(*std::max_element(size.begin(), size.end()) - *std::min_element(size.begin(), size.end()) <=
        1);
  CHECK(tandem::random_folds(23, 4, h) == f);
  CHECK(tandem::random_folds(23, 4, other) != f);
}

namespace {
// The routing score of two models' predictions by its pairwise definition: each query
// collects the recorded gain of every query ranked above it, plus half of those ranked
// level with it (itself included), over n^2.
double pairwise_routing_score(std::span<const double> pred, std::span<const double> truth) {
  const std::size_t n = pred.size() / 2;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = pred[2 * i + 1] - pred[2 * i];
    for (std::size_t j = 0; j < n; ++j) {
      const double pj = pred[2 * j + 1] - pred[2 * j];
      const double gj = truth[2 * j + 1] - truth[2 * j];
      if (pj > pi) s += gj;
      if (pj == pi) s += 0.5 * gj;
    }
  }
  return s / (static_cast<double>(n) * static_cast<double>(n));
}
}  // namespace

TEST_CASE("cross-validation: folds partition the rows and the best-scoring L2 is chosen",
          "[router][logistic]") {
  // A tiny two-model table: feature 0 marks queries the weak model fails.
  tandem::rng data(9);
  const std::size_t n = 24;
  std::vector<tandem::sparse_vector> x(n);
  std::vector<double> y;
  for (std::size_t i = 0; i < n; ++i) {
    const bool hard = data.uniform() < 0.5;
    x[i].index = {hard ? 0u : 1u, 2u + static_cast<std::uint32_t>(data.below(3))};
    x[i].value = {0.8f, 0.6f};
    y.push_back(data.uniform() < (hard ? 0.3 : 0.9) ? 1 : 0);
    y.push_back(data.uniform() < 0.9 ? 1 : 0);
  }
  const std::vector<double> grid{1e-3, 1.0, 1e-1, 1e-2};
  std::vector<std::vector<double>> seen(grid.size(), std::vector<double>(2 * n, -1));
  std::vector<int> validated(n, 0);
  std::size_t fold_calls = 0;
  const auto fit_fold = [&](std::span<const std::uint32_t> train,
                            std::span<const std::uint32_t> val, std::span<const double> order,
                            std::vector<std::vector<double>>& pred) -> errc {
    ++fold_calls;
    // The order runs from the strongest penalty down.
    CHECK(std::is_sorted(order.begin(), order.end(), [](double a, double b) { return a > b; }));
    std::set<std::uint32_t> in_train(train.begin(), train.end());
    CHECK(in_train.size() + val.size() == n);
    for (std::uint32_t i : val) {
      CHECK(in_train.count(i) == 0);
      ++validated[i];
    }
    for (std::size_t k = 0; k < order.size(); ++k)
      for (std::size_t j = 0; j < 2; ++j) {
        std::vector<double> yj(n);
        for (std::size_t i = 0; i < n; ++i) yj[i] = y[i * 2 + j];
        tandem::logistic_regression lr;
        tandem::logistic_options o;
        o.l2 = order[k];
        if (lr.fit(x, yj, 5, o, false, train) != errc::ok) return errc::insufficient_data;
        for (std::uint32_t i : val) pred[k][i * 2 + j] = seen[k][i * 2 + j] = lr.predict(x[i]);
      }
    return errc::ok;
  };
  tandem::rng g(1);
  double best = -1;
  std::vector<double> oof;
  REQUIRE(tandem::detail::route::cv_l2_path(n, y, 2, grid, 3, g, fit_fold, best, &oof) == errc::ok);
  CHECK(fold_calls == 3);
  for (int v : validated) CHECK(v == 1);  // every row validated exactly once
  // The chosen strength is the first (strongest) one of the highest pairwise score.
  std::vector<double> order(grid);
  std::sort(order.begin(), order.end(), [](double a, double b) { return a > b; });
  std::size_t arg = 0;
  double top = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const double s = pairwise_routing_score(seen[k], y);
    if (k == 0 || s > top + 1e-12) {
      top = s;
      arg = k;
    }
  }
  CHECK(best == order[arg]);
  CHECK(oof == seen[arg]);
  CHECK(tandem::detail::route::routing_score(seen[arg], y, 2) == Approx(top).margin(1e-12));
  // Bad grids and fold counts are named errors.
  CHECK(tandem::detail::route::cv_l2_path(n, y, 2, std::vector<double>{}, 3, g, fit_fold, best,
                                          nullptr) == errc::invalid_argument);
  CHECK(tandem::detail::route::cv_l2_path(n, y, 2, grid, 1, g, fit_fold, best, nullptr) ==
        errc::invalid_argument);
  CHECK(tandem::detail::route::cv_l2_path(n, y, 2, std::vector<double>{-1.0}, 3, g, fit_fold, best,
                                          nullptr) == errc::invalid_argument);
}
