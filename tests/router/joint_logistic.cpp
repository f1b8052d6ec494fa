// The joint (reference-anchored) logistic regression.
#include "tandem/router/joint_logistic.hpp"

#include <cmath>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"

using tandem::errc;

TEST_CASE("joint logistic: offsets learn what sets a model apart from its reference",
          "[router][joint]") {
  // Feature 0 marks hard queries (every model fails more often); feature 1 marks queries
  // only model 2 solves. Model 1 behaves like the reference, model 0.
  tandem::rng g(11);
  std::vector<tandem::sparse_vector> x(600);
  std::vector<double> y;
  for (auto& v : x) {
    const bool hard = g.uniform() < 0.5, special = g.uniform() < 0.3;
    v.index = {hard ? 0u : 2u};
    v.value = {1.0f};
    if (special) {
      v.index.push_back(3);
      v.value.push_back(1.0f);
      if (hard) {
        v.index = {0, 1, 3};
        v.value = {1, 1, 1};
      }
    }
    const double base = hard ? 0.2 : 0.9;
    y.push_back(g.uniform() < base ? 1 : 0);
    y.push_back(g.uniform() < base ? 1 : 0);
    y.push_back(g.uniform() < (hard && special ? 0.95 : base) ? 1 : 0);
  }
  tandem::joint_logistic jl;
  tandem::logistic_options o;
  o.l2 = 1e-3;
  REQUIRE(jl.fit(x, y, 3, 0, 4, o) == errc::ok);
  CHECK(jl.reference() == 0);
  CHECK(jl.models() == 3);
  std::vector<double> p(3);
  REQUIRE(jl.predict(x[0], p) == errc::ok);
  tandem::sparse_vector hard_special, easy;
  hard_special.index = {0, 1, 3};
  hard_special.value = {1, 1, 1};
  easy.index = {2};
  easy.value = {1};
  REQUIRE(jl.predict(hard_special, p) == errc::ok);
  CHECK(p[2] - p[0] > 0.4);            // the planted gain of model 2
  CHECK(std::abs(p[1] - p[0]) < 0.1);  // model 1 adds nothing over the reference
  REQUIRE(jl.predict(easy, p) == errc::ok);
  CHECK(p[0] > 0.8);
  CHECK(std::abs(p[2] - p[0]) < 0.1);

  // Bad input is a named error and keeps the fitted weights.
  CHECK(jl.fit(x, y, 3, 3, 4, o) == errc::invalid_argument);  // reference out of range
  CHECK(jl.fit(x, y, 2, 0, 4, o) == errc::size_mismatch);
  std::vector<double> flat(y.size(), 1.0);
  CHECK(jl.fit(x, flat, 3, 0, 4, o) == errc::insufficient_data);
  o.l2 = -1;
  CHECK(jl.fit(x, y, 3, 0, 4, o) == errc::invalid_argument);
  CHECK(jl.fitted());
  std::vector<double> two(2);
  CHECK(jl.predict(easy, two) == errc::size_mismatch);
  tandem::sparse_vector outside;
  outside.index = {4};
  outside.value = {1};
  CHECK(jl.predict(outside, p) == errc::invalid_argument);
}
