// Metrics against hand-computed values, exact tie handling and degenerate inputs.
#include "tandem/confidence/metrics.hpp"

#include <cmath>
#include <vector>

#include "common/catch.hpp"

using tandem::errc;

namespace {
const std::vector<double> scores{0.95, 0.85, 0.75, 0.65, 0.55};
const std::vector<int> labels{1, 1, 0, 1, 0};
}  // namespace

TEST_CASE("metrics: AUROC counts correctly ordered pairs", "[confidence][metrics]") {
  // positives 0.95, 0.85, 0.65 against negatives 0.75, 0.55: 5 of 6 pairs ordered.
  CHECK(*tandem::auroc(scores, labels) == Approx(5.0 / 6.0));
  const std::vector<double> tied{0.9, 0.5, 0.5, 0.1};
  const std::vector<int> tied_labels{1, 1, 0, 0};
  CHECK(*tandem::auroc(tied, tied_labels) == Approx(3.5 / 4.0));  // a tie counts one half
}

TEST_CASE("metrics: AUPRC is average precision over thresholds", "[confidence][metrics]") {
  // precision at each correct item: 1/1, 2/2, 3/4.
  CHECK(*tandem::auprc(scores, labels) == Approx((1.0 + 1.0 + 0.75) / 3.0));
}

TEST_CASE("metrics: PRR matches the hand-computed rejection curve", "[confidence][metrics]") {
  // accuracy of the m most confident: 1, 1, 2/3, 3/4, 3/5; oracle 1, 1, 1, 3/4, 3/5.
  const double auc = (1.0 + 1.0 + 2.0 / 3.0 + 0.75 + 0.6) / 5.0;
  const double oracle = (1.0 + 1.0 + 1.0 + 0.75 + 0.6) / 5.0;
  CHECK(*tandem::prediction_rejection_ratio(scores, labels) ==
        Approx((auc - 0.6) / (oracle - 0.6)));
  // A perfect ranking scores 1, a reversed one is negative.
  const std::vector<double> perfect{0.9, 0.8, 0.7, 0.2, 0.1};
  const std::vector<int> perfect_labels{1, 1, 1, 0, 0};
  CHECK(*tandem::prediction_rejection_ratio(perfect, perfect_labels) == Approx(1.0));
  const std::vector<int> reversed_labels{0, 0, 1, 1, 1};
  CHECK(*tandem::prediction_rejection_ratio(perfect, reversed_labels) < 0.0);
}

TEST_CASE("metrics: Brier is the mean squared error", "[confidence][metrics]") {
  const double expected = (0.05 * 0.05 + 0.15 * 0.15 + 0.75 * 0.75 + 0.35 * 0.35 + 0.55 * 0.55) / 5;
  CHECK(*tandem::brier_score(scores, labels) == Approx(expected));
}

TEST_CASE("metrics: ECE with equal-width and equal-mass bins", "[confidence][metrics]") {
  // 10 equal-width bins: one item per bin.
  CHECK(*tandem::expected_calibration_error(scores, labels, 10) ==
        Approx((0.05 + 0.15 + 0.75 + 0.35 + 0.55) / 5.0));
  // 2 equal-width bins: all in [0.5, 1]: |0.6 - 0.75|.
  CHECK(*tandem::expected_calibration_error(scores, labels, 2) == Approx(0.15));
  // 2 equal-mass bins by rank: {0.55, 0.65, 0.75} and {0.85, 0.95}.
  const double em = (3.0 * std::abs(1.0 / 3.0 - 0.65) + 2.0 * 0.1) / 5.0;
  CHECK(*tandem::expected_calibration_error(scores, labels, 2, tandem::binning::equal_mass) ==
        Approx(em));
  const auto d = tandem::reliability_diagram(scores, labels, 4);
  REQUIRE(d);
  CHECK(d->size() == 4);
  CHECK((*d)[0].count == 0);
  CHECK(std::isnan((*d)[0].accuracy));
  CHECK((*d)[3].count == 3);  // 0.75, 0.85, 0.95
  CHECK((*d)[3].accuracy == Approx(2.0 / 3.0));
}

TEST_CASE("metrics: a score of exactly 1 falls in the last equal-width bin",
          "[confidence][metrics]") {
  const std::vector<double> s{1.0, 0.0};
  const std::vector<int> y{1, 0};
  CHECK(*tandem::expected_calibration_error(s, y, 10) == Approx(0.0));
}

TEST_CASE("metrics: risk-coverage averages over tied orders", "[confidence][metrics]") {
  const std::vector<double> s{0.9, 0.5, 0.5};
  const std::vector<int> y{1, 1, 0};
  const auto rc = tandem::risk_coverage_curve(s, y);
  REQUIRE(rc);
  REQUIRE(rc->risk.size() == 3);
  CHECK(rc->coverage[1] == Approx(2.0 / 3.0));
  CHECK(rc->risk[0] == Approx(0.0));
  CHECK(rc->risk[1] == Approx(0.25));  // half the time the wrong tied item is kept
  CHECK(rc->risk[2] == Approx(1.0 / 3.0));
  CHECK(rc->area == Approx((0.0 + 0.25 + 1.0 / 3.0) / 3.0));
}

TEST_CASE("metrics: results do not depend on the order of tied items", "[confidence][metrics]") {
  const std::vector<double> a{0.7, 0.7, 0.7, 0.2, 0.9};
  const std::vector<int> ya{1, 0, 0, 1, 1};
  const std::vector<double> b{0.9, 0.7, 0.2, 0.7, 0.7};
  const std::vector<int> yb{1, 0, 1, 0, 1};
  CHECK(*tandem::auroc(a, ya) == Approx(*tandem::auroc(b, yb)));
  CHECK(*tandem::auprc(a, ya) == Approx(*tandem::auprc(b, yb)));
  CHECK(*tandem::prediction_rejection_ratio(a, ya) ==
        Approx(*tandem::prediction_rejection_ratio(b, yb)));
  CHECK(tandem::risk_coverage_curve(a, ya)->area ==
        Approx(tandem::risk_coverage_curve(b, yb)->area));
  CHECK(*tandem::expected_calibration_error(a, ya, 3, tandem::binning::equal_mass) ==
        Approx(*tandem::expected_calibration_error(b, yb, 3, tandem::binning::equal_mass)));
}

TEST_CASE("metrics: all-tied scores rank no better than chance", "[confidence][metrics]") {
  const std::vector<double> s(6, 0.4);
  const std::vector<int> y{1, 0, 1, 0, 0, 1};
  CHECK(*tandem::auroc(s, y) == Approx(0.5));
  CHECK(*tandem::prediction_rejection_ratio(s, y) == Approx(0.0).margin(1e-12));
  CHECK(*tandem::auprc(s, y) == Approx(0.5));
  CHECK(tandem::risk_coverage_curve(s, y)->area == Approx(0.5));
}

TEST_CASE("metrics: degenerate inputs get named errors", "[confidence][metrics]") {
  const std::vector<double> none;
  const std::vector<int> no_labels;
  CHECK(tandem::auroc(none, no_labels).error() == errc::empty_input);
  CHECK(tandem::brier_score(none, no_labels).error() == errc::empty_input);
  CHECK(tandem::expected_calibration_error(none, no_labels).error() == errc::empty_input);
  CHECK(tandem::risk_coverage_curve(none, no_labels).error() == errc::empty_input);

  const std::vector<double> s{0.2, 0.8};
  const std::vector<int> ones{1, 1}, zeros{0, 0};
  CHECK(tandem::auroc(s, ones).error() == errc::insufficient_data);
  CHECK(tandem::prediction_rejection_ratio(s, zeros).error() == errc::insufficient_data);
  CHECK(tandem::auprc(s, zeros).error() == errc::insufficient_data);
  CHECK(*tandem::auprc(s, ones) == Approx(1.0));
  CHECK(tandem::brier_score(s, ones));  // one class is fine where no ranking is needed

  const std::vector<int> three{1, 0, 1};
  CHECK(tandem::auroc(s, three).error() == errc::size_mismatch);
  const std::vector<int> bad_label{1, 2};
  CHECK(tandem::auroc(s, bad_label).error() == errc::invalid_argument);
  const std::vector<double> nan{0.2, std::nan("")};
  const std::vector<int> y{1, 0};
  CHECK(tandem::auroc(nan, y).error() == errc::non_finite);
  const std::vector<double> outside{0.2, 1.5};
  CHECK(tandem::brier_score(outside, y).error() == errc::invalid_argument);
  CHECK(tandem::expected_calibration_error(outside, y).error() == errc::invalid_argument);
  CHECK(tandem::expected_calibration_error(s, y, 0).error() == errc::invalid_argument);
  CHECK(*tandem::auroc(outside, y) == Approx(0.0));  // ranking metrics take any real score
}
