// Matrix factorisation: it recovers a planted low-rank structure, its predictions are what
// its stored factors give by an independent computation, and bad input is a named error.
#include "tandem/router/factorization.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"

using tandem::errc;

namespace {
double logistic(double z) { return 1.0 / (1.0 + std::exp(-z)); }
}  // namespace

TEST_CASE("factorization: recovers a planted rank-1 structure", "[router][factorization]") {
  // Queries of 4 kinds (one-hot features); model m succeeds on kind g with probability
  // logistic(a_g * c_m): a rank-1 logit table. Soft targets are the probabilities.
  const double a[4] = {-2.0, -0.5, 0.5, 2.0};
  const double c[3] = {-1.0, 0.2, 1.2};
  tandem::rng g(13);
  std::vector<tandem::sparse_vector> x(400);
  std::vector<double> y;
  for (auto& v : x) {
    const auto kind = static_cast<std::uint32_t>(g.below(4));
    v.index = {kind};
    v.value = {1.0f};
    for (double cm : c) y.push_back(logistic(a[kind] * cm));
  }
  tandem::factorization_options o;
  o.rank = 2;
  o.epochs = 200;
  o.patience = 20;
  tandem::factorization_predictor mf;
  tandem::rng init(1);
  REQUIRE(mf.fit(x, y, 3, 4, o, init) == errc::ok);
  std::vector<double> p(3);
  for (std::uint32_t kind = 0; kind < 4; ++kind) {
    tandem::sparse_vector q;
    q.index = {kind};
    q.value = {1.0f};
    REQUIRE(mf.predict(q, p) == errc::ok);
    for (std::size_t m = 0; m < 3; ++m) {
      CAPTURE(kind, m);
      CHECK(std::abs(p[m] - logistic(a[kind] * c[m])) < 0.05);
    }
  }
}

TEST_CASE("factorization: predictions are sigmoid(u_m . (P x) + b_m) of the stored factors",
          "[router][factorization]") {
  tandem::rng g(3);
  const std::size_t dims = 16, models = 3;
  std::vector<tandem::sparse_vector> x(120);
  std::vector<double> y;
  for (auto& v : x) {
    v.index = {static_cast<std::uint32_t>(g.below(8)), 8u + static_cast<std::uint32_t>(g.below(8))};
    v.value = {0.6f, 0.8f};
    for (std::size_t m = 0; m < models; ++m) y.push_back(g.uniform() < 0.3 + 0.2 * m ? 1 : 0);
  }
  tandem::factorization_options o;
  o.rank = 3;
  tandem::factorization_predictor mf;
  tandem::rng init(2);
  REQUIRE(mf.fit(x, y, models, dims, o, init) == errc::ok);
  REQUIRE(mf.rank() == 3);
  const auto P = mf.projection();     // dims x rank
  const auto U = mf.model_vectors();  // models x rank
  const auto B = mf.biases();
  REQUIRE(P.size() == dims * 3);
  std::vector<double> p(models);
  for (std::size_t i = 0; i < 10; ++i) {
    REQUIRE(mf.predict(x[i], p) == errc::ok);
    for (std::size_t m = 0; m < models; ++m) {
      double z = B[m];
      for (std::size_t k = 0; k < 3; ++k) {
        double h = 0;
        for (std::size_t j = 0; j < x[i].nnz(); ++j)
          h += static_cast<double>(P[x[i].index[j] * 3 + k]) * x[i].value[j];
        z += U[m * 3 + k] * h;
      }
      CHECK(p[m] == Approx(logistic(z)).epsilon(1e-5));
    }
  }
  // Restoring the stored factors gives the same predictions.
  tandem::factorization_predictor back;
  REQUIRE(back.restore(dims, models, 3, {P.begin(), P.end()}, {U.begin(), U.end()},
                       {B.begin(), B.end()}) == errc::ok);
  std::vector<double> q(models);
  REQUIRE(back.predict(x[0], q) == errc::ok);
  REQUIRE(mf.predict(x[0], p) == errc::ok);
  CHECK(q == p);
  CHECK(back.restore(dims, models, 3, {P.begin(), P.end() - 1}, {U.begin(), U.end()},
                     {B.begin(), B.end()}) == errc::corrupt_file);
}

TEST_CASE("factorization: bad input is a named error", "[router][factorization]") {
  std::vector<tandem::sparse_vector> x(2);
  x[0].index = {0};
  x[0].value = {1};
  x[1].index = {1};
  x[1].value = {1};
  tandem::factorization_predictor mf;
  tandem::rng g(1);
  tandem::factorization_options o;
  CHECK(mf.fit(x, std::vector<double>{1, 0}, 1, 2, o, g) == errc::ok);
  CHECK(mf.fit(x, std::vector<double>{1}, 1, 2, o, g) == errc::size_mismatch);
  CHECK(mf.fit(x, std::vector<double>{1, 2}, 1, 2, o, g) == errc::invalid_argument);
  CHECK(mf.fit(x, std::vector<double>{1, 0}, 1, 1, o, g) == errc::invalid_argument);
  o.rank = 0;
  CHECK(mf.fit(x, std::vector<double>{1, 0}, 1, 2, o, g) == errc::invalid_argument);
  CHECK(mf.fit(std::vector<tandem::sparse_vector>(1, x[0]), std::vector<double>{1}, 1, 2, {}, g) ==
        errc::insufficient_data);
}
