// Routing policies: the cost-aware pick and the calibrated two-model threshold.
#include "tandem/router/policy.hpp"

#include <cmath>
#include <vector>

#include "common/catch.hpp"

using tandem::errc;

TEST_CASE("policy: lambda trades predicted quality against cost", "[router][policy]") {
  const std::vector<double> q{0.6, 0.8, 0.85};
  const std::vector<double> c{1, 5, 20};
  CHECK(tandem::pick_model(q, c, 0.0).value() == 2);
  CHECK(tandem::pick_model(q, c, 0.004).value() == 1);  // 0.78 vs 0.775 vs 0.596
  CHECK(tandem::pick_model(q, c, 1.0).value() == 0);
  CHECK(tandem::pick_model(q, c, INFINITY).value() == 0);
  CHECK(tandem::pick_model(q, c, -1).error() == errc::invalid_argument);
  CHECK(tandem::pick_model(std::vector<double>{}, std::vector<double>{}, 0).error() ==
        errc::empty_input);
  CHECK(tandem::pick_model(q, std::vector<double>{1, 2}, 0).error() == errc::size_mismatch);
}

TEST_CASE("policy: the win threshold is calibrated to a share of strong calls",
          "[router][policy]") {
  const std::vector<double> wins{0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4, 0.8, 0.0};
  auto p = tandem::calibrate_win_threshold(wins, 0.3);
  REQUIRE(p);
  int strong = 0;
  for (double w : wins) strong += p->route_strong(w) ? 1 : 0;
  CHECK(strong == 3);
  CHECK(p->threshold == 0.7);
  CHECK_FALSE(tandem::calibrate_win_threshold(wins, 0.0)->route_strong(1e9));
  CHECK(tandem::calibrate_win_threshold(wins, 1.0)->route_strong(-1e9));
  // Ties move together: never above the target share.
  const std::vector<double> tied{0.5, 0.5, 0.5, 0.1};
  auto t = tandem::calibrate_win_threshold(tied, 0.5);
  int n = 0;
  for (double w : tied) n += t->route_strong(w) ? 1 : 0;
  CHECK(n == 0);
  CHECK(tandem::calibrate_win_threshold(wins, 1.5).error() == errc::invalid_argument);
  CHECK(tandem::calibrate_win_threshold(std::vector<double>{}, 0.5).error() == errc::empty_input);
}
