// k nearest neighbours: neighbours and predictions against a brute-force computation over
// every stored row, the leave-one-out exclusion, and restore's checks.
#include "tandem/router/knn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"

using tandem::errc;

namespace {

// A random unit-length sparse row over `dims` features with `nnz` distinct entries.
tandem::sparse_vector random_row(tandem::rng& g, std::uint32_t dims, std::size_t nnz) {
  std::vector<std::uint32_t> idx;
  while (idx.size() < nnz) {
    const auto f = static_cast<std::uint32_t>(g.below(dims));
    if (std::find(idx.begin(), idx.end(), f) == idx.end()) idx.push_back(f);
  }
  std::sort(idx.begin(), idx.end());
  tandem::sparse_vector v;
  double norm = 0;
  for (std::uint32_t f : idx) {
    v.index.push_back(f);
    v.value.push_back(static_cast<float>(g.uniform() + 0.1));
    norm += static_cast<double>(v.value.back()) * v.value.back();
  }
  for (float& x : v.value) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

// Brute force: cosine similarity with every row (by a dense dot product), positive ones
// only, best first (ties: lower row), the first k.
std::vector<std::pair<double, std::uint32_t>> brute_neighbours(
    const std::vector<tandem::sparse_vector>& rows, const tandem::sparse_vector& q,
    std::uint32_t dims, std::size_t k, std::size_t exclude = ~std::size_t{0}) {
  std::vector<double> dq(dims, 0.0);
  for (std::size_t i = 0; i < q.nnz(); ++i) dq[q.index[i]] = q.value[i];
  std::vector<std::pair<double, std::uint32_t>> all;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (r == exclude) continue;
    double s = 0;
    for (std::size_t i = 0; i < rows[r].nnz(); ++i) s += dq[rows[r].index[i]] * rows[r].value[i];
    if (s > 0) all.emplace_back(s, static_cast<std::uint32_t>(r));
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

}  // namespace

TEST_CASE("knn: neighbours and predictions match a brute-force computation", "[router][knn]") {
  tandem::rng g(21);
  const std::uint32_t dims = 40;
  const std::size_t n = 80, targets = 2;
  std::vector<tandem::sparse_vector> rows;
  std::vector<double> y;
  for (std::size_t i = 0; i < n; ++i) {
    rows.push_back(random_row(g, dims, 6));
    y.push_back(g.uniform());
    y.push_back(g.below(2) == 1 ? 1.0 : 0.0);
  }
  tandem::knn_options o;
  o.k = 7;
  o.prior = 0.5;
  o.power = 2.0;
  tandem::knn_predictor knn;
  REQUIRE(knn.fit(rows, y, targets, dims, o) == errc::ok);
  CHECK(knn.rows() == n);
  std::vector<double> mean(targets, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < targets; ++t) mean[t] += y[i * targets + t] / n;

  for (int trial = 0; trial < 25; ++trial) {
    const tandem::sparse_vector q = random_row(g, dims, 5);
    const auto want = brute_neighbours(rows, q, dims, o.k);
    std::vector<std::pair<float, std::uint32_t>> got;
    REQUIRE(knn.neighbours(q, o.k, got) == errc::ok);
    REQUIRE(got.size() == want.size());
    for (std::size_t j = 0; j < got.size(); ++j) {
      CHECK(got[j].second == want[j].second);
      CHECK(got[j].first == Approx(want[j].first).epsilon(1e-5));
    }
    // (sum_j s_j^power y_j + prior * mean) / (sum_j s_j^power + prior)
    std::vector<double> expect(targets), out(targets);
    for (std::size_t t = 0; t < targets; ++t) {
      double num = o.prior * mean[t], den = o.prior;
      for (const auto& [s, r] : want) {
        num += std::pow(s, o.power) * y[r * targets + t];
        den += std::pow(s, o.power);
      }
      expect[t] = num / den;
    }
    REQUIRE(knn.predict(q, out) == errc::ok);
    for (std::size_t t = 0; t < targets; ++t) CHECK(out[t] == Approx(expect[t]).epsilon(1e-5));
  }

  // Leave-one-out: a stored row's neighbours exclude itself when asked to.
  std::vector<std::pair<float, std::uint32_t>> got;
  REQUIRE(knn.neighbours(rows[3], o.k, got, 3) == errc::ok);
  const auto want = brute_neighbours(rows, rows[3], dims, o.k, 3);
  REQUIRE(got.size() == want.size());
  for (std::size_t j = 0; j < got.size(); ++j) CHECK(got[j].second == want[j].second);
  REQUIRE(knn.neighbours(rows[3], 1, got) == errc::ok);
  CHECK(got[0].second == 3);  // itself, similarity 1

  tandem::sparse_vector outside;
  outside.index = {dims};
  outside.value = {1};
  std::vector<double> out(targets), wrong(3);
  CHECK(knn.predict(outside, out) == errc::invalid_argument);
  CHECK(knn.predict(rows[0], wrong) == errc::size_mismatch);
}

TEST_CASE("knn: leave-one-out picks the setting of least brute-force leave-one-out error",
          "[router][knn]") {
  tandem::rng g(5);
  const std::uint32_t dims = 30;
  const std::size_t n = 60;
  std::vector<tandem::sparse_vector> rows;
  std::vector<double> y;
  for (std::size_t i = 0; i < n; ++i) {
    rows.push_back(random_row(g, dims, 4));
    // A target that depends on the row's first feature, so neighbours carry signal.
    y.push_back(rows.back().index[0] < 10 ? 0.9 * g.uniform() : 0.3 + 0.7 * g.uniform());
  }
  const std::vector<std::size_t> ks{1, 5, 40};
  const std::vector<double> priors{0.1, 2.0}, powers{1.0, 3.0};
  tandem::knn_predictor knn;
  std::vector<double> loo;
  REQUIRE(tandem::fit_knn_loo(knn, rows, y, 1, dims, ks, priors, powers, {}, &loo) == errc::ok);
  double mean = 0;
  for (double t : y) mean += t / n;
  // Brute force: each row predicted from its k most similar other rows.
  double best = 0;
  std::size_t best_k = 0;
  double best_prior = 0, best_power = 0;
  std::vector<double> best_pred;
  for (std::size_t k : ks)
    for (double prior : priors)
      for (double power : powers) {
        std::vector<double> pred(n);
        double err = 0;
        for (std::size_t i = 0; i < n; ++i) {
          double num = prior * mean, den = prior;
          for (const auto& [s, r] : brute_neighbours(rows, rows[i], dims, k, i)) {
            num += std::pow(s, power) * y[r];
            den += std::pow(s, power);
          }
          pred[i] = num / den;
          err += (pred[i] - y[i]) * (pred[i] - y[i]);
        }
        if (best_pred.empty() || -err > best) {
          best = -err;
          best_k = k;
          best_prior = prior;
          best_power = power;
          best_pred = pred;
        }
      }
  CHECK(knn.options().k == best_k);
  CHECK(knn.options().prior == best_prior);
  CHECK(knn.options().power == best_power);
  REQUIRE(loo.size() == n);
  for (std::size_t i = 0; i < n; ++i) CHECK(loo[i] == Approx(best_pred[i]).epsilon(1e-5));
}

TEST_CASE("knn: restore refuses inconsistent rows", "[router][knn]") {
  tandem::knn_predictor knn;
  const tandem::knn_options o{};
  CHECK(knn.restore(4, 1, o, {0, 2}, {0, 1}, {0.5f, 0.5f}, {0.5}) == errc::ok);
  CHECK(knn.restore(4, 1, o, {0, 3}, {0, 1}, {0.5f, 0.5f}, {0.5}) == errc::corrupt_file);
  CHECK(knn.restore(4, 1, o, {0, 2}, {0, 9}, {0.5f, 0.5f}, {0.5}) == errc::corrupt_file);
  CHECK(knn.restore(4, 1, o, {0, 2}, {0, 1}, {0.5f, 0.5f}, {1.5}) == errc::corrupt_file);
  CHECK(knn.restore(4, 0, o, {0, 2}, {0, 1}, {0.5f, 0.5f}, {0.5}) == errc::invalid_argument);
}
