// Replay metrics against hand-computed tables: curves, APGR, CPT, AIQ, references.
#include "tandem/eval/replay.hpp"

#include <cmath>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"

using tandem::curve_point;
using tandem::errc;

namespace {
// Four queries: the weak model solves only q0, the strong one q0, q1, q2.
const std::vector<double> qw{1, 0, 0, 0};
const std::vector<double> qs{1, 1, 1, 0};
const std::vector<double> cw(4, 1.0);
const std::vector<double> cs(4, 20.0);
}  // namespace

TEST_CASE("replay: two-model curve, APGR and CPT match a hand-computed table", "[eval][replay]") {
  // Order by score: q1 (+1), q2 (+1), q3 (0), q0 (0).
  const std::vector<double> score{0.1, 0.9, 0.5, 0.3};
  auto curve = tandem::two_model_curve(score, qw, qs, cw, cs);
  REQUIRE(curve);
  REQUIRE(curve->size() == 5);
  const double share[] = {0, 0.25, 0.5, 0.75, 1};
  const double quality[] = {0.25, 0.5, 0.75, 0.75, 0.75};
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK((*curve)[i].strong_share == Approx(share[i]));
    CHECK((*curve)[i].quality == Approx(quality[i]));
    CHECK((*curve)[i].cost == Approx(1 + 19 * share[i]));
  }
  auto m = tandem::two_model_summary(*curve);
  REQUIRE(m);
  CHECK(m->weak_quality == Approx(0.25));
  CHECK(m->strong_quality == Approx(0.75));
  CHECK(m->auc == Approx(0.625));
  CHECK(m->apgr == Approx(0.75));
  CHECK(m->cpt20 == Approx(0.1));   // 0.35 reached 40% into the first step
  CHECK(m->cpt50 == Approx(0.25));  // 0.5 reached exactly at the first point
  CHECK(m->cpt80 == Approx(0.4));   // 0.65 reached 60% into the second step
  CHECK(tandem::cost_reaching(*curve, 0.75).value() == Approx(1 + 19 * 0.5));
  CHECK_FALSE(tandem::cost_reaching(*curve, 0.8).has_value());
}

TEST_CASE("replay: tied scores move together, so constant scores give APGR 0.5 exactly",
          "[eval][replay]") {
  const std::vector<double> score(4, 0.3);
  auto curve = tandem::two_model_curve(score, qw, qs, cw, cs);
  REQUIRE(curve);
  REQUIRE(curve->size() == 2);
  auto m = tandem::two_model_summary(*curve);
  REQUIRE(m);
  CHECK(m->apgr == Approx(0.5));
  CHECK(m->cpt50 == Approx(0.5));

  // A tie between a winning and a neutral query is the average of both orders.
  const std::vector<double> tied{0, 1, 0.5, 0.5};  // q1 first, then q2 and q3 tied, then q0
  auto c2 = tandem::two_model_curve(tied, qw, qs, cw, cs);
  REQUIRE(c2);
  REQUIRE(c2->size() == 4);
  CHECK((*c2)[2].strong_share == Approx(0.75));
  CHECK((*c2)[2].quality == Approx(0.75));
  auto m2 = tandem::two_model_summary(*c2);
  // Area: 0.25*(0.25+0.5)/2 + 0.5*(0.5+0.75)/2 + 0.25*0.75 = 0.59375.
  CHECK(m2->auc == Approx(0.59375));
}

TEST_CASE("replay: random routing has APGR 0.5 in expectation", "[eval][replay]") {
  tandem::rng g(7);
  const std::size_t n = 200;
  std::vector<double> w(n), s(n), c1(n, 1.0), c2(n, 5.0), score(n);
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = g.uniform() < 0.5 ? 1 : 0;
    s[i] = g.uniform() < 0.8 ? 1 : 0;
  }
  double sum = 0;
  const int trials = 2000;
  for (int t = 0; t < trials; ++t) {
    for (double& x : score) x = g.uniform();
    auto c = tandem::two_model_curve(score, w, s, c1, c2);
    sum += tandem::two_model_summary(*c)->apgr;
  }
  CHECK(sum / trials == Approx(0.5).margin(0.01));
}

TEST_CASE("replay: the oracle sends winners first and beats every other order", "[eval][replay]") {
  std::vector<double> oracle(4);
  for (std::size_t i = 0; i < 4; ++i) oracle[i] = qs[i] - qw[i];
  auto oc = tandem::two_model_curve(oracle, qw, qs, cw, cs);
  auto om = tandem::two_model_summary(*oc);
  REQUIRE(om);
  // The two winners reach the strong quality at share 0.5; then the curve is flat.
  CHECK(om->auc == Approx(0.25 * 0.375 + 0.25 * 0.625 + 0.5 * 0.75));
  CHECK(om->cpt80 == Approx(0.4));
  tandem::rng g(3);
  std::vector<double> score(4);
  for (int t = 0; t < 50; ++t) {
    for (double& x : score) x = g.uniform();
    auto c = tandem::two_model_curve(score, qw, qs, cw, cs);
    CHECK(tandem::two_model_summary(*c)->apgr <= om->apgr + 1e-12);
  }
}

TEST_CASE("replay: AIQ is the area under the non-decreasing convex hull", "[eval][aiq]") {
  const std::vector<curve_point> pts{{1, 0.5, 0}, {2, 0.9, 0}, {3, 0.7, 0}, {4, 1.0, 0}};
  auto hull = tandem::nondecreasing_hull(pts);
  REQUIRE(hull);
  REQUIRE(hull->size() == 3);  // (3, 0.7) lies under the chord from (2, 0.9) to (4, 1.0)
  CHECK(tandem::aiq(pts, 1, 4).value() == Approx((0.7 + 1.9) / 3));

  // Past its peak the hull stays flat: spending more never has to lower quality.
  const std::vector<curve_point> peak{{1, 0.5, 0}, {2, 0.9, 0}, {4, 0.6, 0}};
  CHECK(tandem::aiq(peak, 1, 4).value() == Approx((0.7 + 2 * 0.9) / 3));
  // A single point covering the start is flat across the range.
  const std::vector<curve_point> one{{1, 0.4, 0}};
  CHECK(tandem::aiq(one, 1, 3).value() == Approx(0.4));

  CHECK(tandem::aiq(pts, 2, 2).error() == errc::invalid_argument);
  CHECK(tandem::aiq(pts, 0.5, 4).error() == errc::invalid_argument);  // starts right of 0.5
  CHECK(tandem::aiq(std::vector<curve_point>{}, 0, 1).error() == errc::empty_input);
}

TEST_CASE("replay: the lambda sweep over three models runs from cheapest to best predicted",
          "[eval][lambda]") {
  // Two queries x three models (costs 1, 2, 4).
  const std::vector<double> q{0, 1, 1,  //
                              0, 0, 1};
  const std::vector<double> c{1, 2, 4,  //
                              1, 2, 4};
  auto curve = tandem::lambda_sweep_curve({q, q, c, 3}, 2);  // oracle: predicted = truth
  REQUIRE(curve);
  REQUIRE(curve->size() == 3);
  // lambda = inf: both on model 0. Query 0 moves to model 1 at lambda 1, query 1 to
  // model 2 at lambda 1/3.
  CHECK(curve->front().cost == Approx(1));
  CHECK(curve->front().quality == Approx(0));
  CHECK((*curve)[1].cost == Approx(1.5));
  CHECK((*curve)[1].quality == Approx(0.5));
  CHECK(curve->back().cost == Approx(3));
  CHECK(curve->back().quality == Approx(1));
  CHECK(curve->back().strong_share == Approx(0.5));
  for (std::size_t i = 1; i < curve->size(); ++i) CHECK((*curve)[i].cost >= (*curve)[i - 1].cost);
  CHECK(tandem::single_model_point(q, c, 3, 2)->quality == Approx(1));
  CHECK(tandem::single_model_point(q, c, 3, 2)->cost == Approx(4));
  // The oracle reaches the best single model's quality at 3 instead of 4.
  CHECK(tandem::cost_reaching(*curve, 1.0).value() == Approx(3));
}

TEST_CASE("replay: bad inputs are named errors", "[eval][replay]") {
  const std::vector<double> score{0.1, 0.2, 0.3, 0.4};
  const std::vector<double> short_score{0.1, 0.2};
  const std::vector<double> nan_score{0.1, std::nan(""), 0.3, 0.4};
  const std::vector<double> bad_q{1, 0, 2, 0};
  const std::vector<double> empty;
  CHECK(tandem::two_model_curve(empty, empty, empty, empty, empty).error() == errc::empty_input);
  CHECK(tandem::two_model_curve(short_score, qw, qs, cw, cs).error() == errc::size_mismatch);
  CHECK(tandem::two_model_curve(nan_score, qw, qs, cw, cs).error() == errc::non_finite);
  CHECK(tandem::two_model_curve(score, bad_q, qs, cw, cs).error() == errc::invalid_argument);
  // Equal weak and strong quality leave no gap to recover.
  auto flat = tandem::two_model_curve(score, qw, qw, cw, cs);
  CHECK(tandem::two_model_summary(*flat).error() == errc::insufficient_data);
  const std::vector<double> q3{0, 1, 1};
  const std::vector<double> c3{1, 2, 4};
  CHECK(tandem::lambda_sweep_curve({q3, q3, c3, 3}, 3).error() == errc::invalid_argument);
  CHECK(tandem::lambda_sweep_curve({q3, q3, c3, 2}, 0).error() == errc::size_mismatch);
  const std::vector<double> neg{1, -2, 4};
  CHECK(tandem::lambda_sweep_curve({q3, q3, neg, 3}, 0).error() == errc::invalid_argument);
}
