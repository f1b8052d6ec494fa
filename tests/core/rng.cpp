#include "tandem/core/rng.hpp"

#include <array>

#include "common/catch.hpp"

TEST_CASE("rng: equal seeds give equal streams, different seeds differ", "[core][rng]") {
  tandem::rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a(), y = b(), z = c();
    CHECK(x == y);
    differs = differs || (x != z);
  }
  CHECK(differs);
}

TEST_CASE("rng: uniform() lies in the unit interval and below(n) is uniform", "[core][rng]") {
  tandem::rng r(7);
  std::array<int, 6> counts{};
  constexpr int n = 60000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    ++counts[r.below(6)];
  }
  // Chi-square with 5 degrees of freedom; 20.5 is the 0.999 quantile.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / 6.0) * (c - n / 6.0) / (n / 6.0);
  CHECK(chi2 < 20.5);
}
