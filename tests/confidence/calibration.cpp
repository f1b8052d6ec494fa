// Calibrators: hand-checked fits, monotone isotonic output, lower ECE on miscalibrated
// synthetic data, save/load round trips and rejection of corrupt files.
#include "tandem/confidence/calibration.hpp"

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "tandem/confidence/metrics.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/rng.hpp"

#include "common/catch.hpp"
#include "common/format_fixtures.hpp"
#include "common/scratch_dir.hpp"

using tandem::calibration_method;
using tandem::calibrator;
using tandem::errc;

namespace {
struct dataset {
  std::vector<double> scores;
  std::vector<int> labels;
};
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
// Overconfident scores: the true probability is p, the reported score sigmoid(3 logit p).
dataset overconfident(std::uint64_t seed, std::size_t n) {
  tandem::rng g(seed);
  dataset d;
  for (std::size_t i = 0; i < n; ++i) {
    const double p = 0.02 + 0.96 * g.uniform();
    d.labels.push_back(g.uniform() < p ? 1 : 0);
    d.scores.push_back(sigmoid(3.0 * std::log(p / (1.0 - p))));
  }
  return d;
}
std::vector<double> apply_all(const calibrator& c, const std::vector<double>& s) {
  std::vector<double> out(s.size());
  REQUIRE(c.apply(s, out) == errc::ok);
  return out;
}
constexpr calibration_method all_methods[] = {
    calibration_method::temperature, calibration_method::platt, calibration_method::isotonic,
    calibration_method::histogram};
}  // namespace

TEST_CASE("calibration: each method lowers ECE on overconfident data",
          "[confidence][calibration]") {
  const dataset train = overconfident(1, 4000), test = overconfident(2, 4000);
  const double raw = *tandem::expected_calibration_error(test.scores, test.labels, 10);
  REQUIRE(raw > 0.08);
  for (const auto m : all_methods) {
    CAPTURE(tandem::to_string(m));
    const auto c = calibrator::fit(m, train.scores, train.labels);
    REQUIRE(c);
    const auto cal = apply_all(*c, test.scores);
    const double after = *tandem::expected_calibration_error(cal, test.labels, 10);
    CHECK(after < 0.5 * raw);
    CHECK(after < 0.04);
  }
}

TEST_CASE("calibration: temperature scaling recovers the overconfidence factor",
          "[confidence][calibration]") {
  const dataset d = overconfident(3, 8000);
  const auto c = calibrator::fit(calibration_method::temperature, d.scores, d.labels);
  REQUIRE(c);
  CHECK(c->temperature() == Approx(3.0).epsilon(0.1));
  CHECK(*c->apply(1.0) == 1.0);  // the ends of the probability scale stay put
  CHECK(*c->apply(0.5) == Approx(0.5));
}

TEST_CASE("calibration: isotonic regression pools adjacent violators",
          "[confidence][calibration]") {
  const std::vector<double> s{1, 2, 3, 4};
  const std::vector<int> y{1, 0, 1, 1};
  tandem::calibration_options o;
  o.scale = tandem::score_scale::logit;
  const auto c = calibrator::fit(calibration_method::isotonic, s, y, o);
  REQUIRE(c);
  CHECK(*c->apply(1.0) == Approx(0.5));
  CHECK(*c->apply(2.0) == Approx(0.5));
  CHECK(*c->apply(2.5) == Approx(0.75));
  CHECK(*c->apply(3.0) == Approx(1.0));
  CHECK(*c->apply(-10.0) == Approx(0.5));
  CHECK(*c->apply(10.0) == Approx(1.0));
}

TEST_CASE("calibration: isotonic output is monotone", "[confidence][calibration]") {
  tandem::rng g(7);
  std::vector<double> s;
  std::vector<int> y;
  for (int i = 0; i < 500; ++i) {
    const double x = g.uniform();
    s.push_back(std::round(x * 50.0) / 50.0);  // many ties
    y.push_back(g.uniform() < 0.3 + 0.4 * std::sin(6.0 * x) * std::sin(6.0 * x) ? 1 : 0);
  }
  const auto c = calibrator::fit(calibration_method::isotonic, s, y);
  REQUIRE(c);
  double prev = -1.0;
  for (int i = 0; i <= 1000; ++i) {
    const double p = *c->apply(i / 1000.0);
    CHECK(p >= prev);
    CHECK(p >= 0.0);
    CHECK(p <= 1.0);
    prev = p;
  }
}

TEST_CASE("calibration: Platt scaling stays finite on separable data",
          "[confidence][calibration]") {
  const std::vector<double> s{-3, -2, -1, 1, 2, 3};
  const std::vector<int> y{0, 0, 0, 1, 1, 1};
  tandem::calibration_options o;
  o.scale = tandem::score_scale::logit;
  const auto c = calibrator::fit(calibration_method::platt, s, y, o);
  REQUIRE(c);
  CHECK(std::isfinite(c->platt_a()));
  CHECK(c->platt_a() > 0.0);
  CHECK(*c->apply(3.0) > 0.7);
  CHECK(*c->apply(3.0) < 1.0);  // smoothed targets keep it off exactly 1
  CHECK(*c->apply(-3.0) < 0.3);
}

TEST_CASE("calibration: histogram binning returns each bin's accuracy",
          "[confidence][calibration]") {
  const std::vector<double> s{0.1, 0.2, 0.3, 0.7, 0.8, 0.9};
  const std::vector<int> y{0, 0, 1, 1, 1, 0};
  tandem::calibration_options o;
  o.bins = 2;
  const auto c = calibrator::fit(calibration_method::histogram, s, y, o);
  REQUIRE(c);
  CHECK(*c->apply(0.0) == Approx(1.0 / 3.0));
  CHECK(*c->apply(0.3) == Approx(1.0 / 3.0));
  CHECK(*c->apply(0.75) == Approx(2.0 / 3.0));
}

TEST_CASE("calibration: bad inputs get named errors", "[confidence][calibration]") {
  const std::vector<double> s{0.2, 0.8};
  const std::vector<int> one_class{1, 1}, y{0, 1};
  for (const auto m : all_methods) {
    CHECK(calibrator::fit(m, s, one_class).error() == errc::insufficient_data);
    CHECK(calibrator::fit(m, {}, {}).error() == errc::empty_input);
  }
  const std::vector<double> outside{0.2, 1.2};
  CHECK(calibrator::fit(calibration_method::platt, outside, y).error() == errc::invalid_argument);
  tandem::calibration_options zero_bins;
  zero_bins.bins = 0;
  CHECK(calibrator::fit(calibration_method::histogram, s, y, zero_bins).error() ==
        errc::invalid_argument);
  const std::vector<double> ends{0.0, 1.0};
  CHECK(calibrator::fit(calibration_method::temperature, ends, y).error() ==
        errc::insufficient_data);
  const auto c = calibrator::fit(calibration_method::platt, s, y);
  REQUIRE(c);
  CHECK(c->apply(std::nan("")).error() == errc::non_finite);
  CHECK(c->apply(1.5).error() == errc::invalid_argument);
  std::vector<double> out(1);
  CHECK(c->apply(s, out) == errc::size_mismatch);
}

TEST_CASE("calibration: save/load round trips every method", "[confidence][calibration]") {
  const dataset d = overconfident(5, 500);
  const tandem_test::scratch_dir dir("tandem-calibration-");
  const std::string path = (dir.path() / "calibrator.bin").string();
  for (const auto m : all_methods) {
    CAPTURE(tandem::to_string(m));
    const auto c = calibrator::fit(m, d.scores, d.labels);
    REQUIRE(c);
    REQUIRE(c->save(path) == errc::ok);
    const auto back = calibrator::load(path);
    REQUIRE(back);
    CHECK(back->method() == m);
    CHECK(apply_all(*back, d.scores) == apply_all(*c, d.scores));
  }
  tandem::error_info info;
  CHECK(calibrator::load("no/such/file.bin", &info).error() == errc::file_not_found);
  CHECK(info.context().find("no/such/file.bin") != std::string_view::npos);
  CHECK(calibrator::load(dir.path().string(), &info).error() == errc::invalid_argument);
}

TEST_CASE("calibration: corrupt files are rejected with named errors and details",
          "[confidence][calibration]") {
  const dataset d = overconfident(6, 300);
  const std::vector<std::byte> good =
      calibrator::fit(calibration_method::isotonic, d.scores, d.labels)->to_bytes();
  using bytes = std::vector<std::byte>;
  REQUIRE(calibrator::from_bytes(good));
  tandem::error_info info;
  CHECK(calibrator::from_bytes(bytes{}, &info).error() == errc::corrupt_file);
  CHECK(info.code == errc::corrupt_file);
  CHECK(info.context().find("calibrator") != std::string_view::npos);
  CHECK(calibrator::from_bytes(bytes(good.begin(), good.end() - 1)).error() == errc::corrupt_file);
  bytes longer = good;
  longer.push_back(std::byte{'x'});
  CHECK(calibrator::from_bytes(longer).error() == errc::corrupt_file);
  bytes bad_magic = good;
  bad_magic[0] = std::byte{'X'};
  CHECK(calibrator::from_bytes(bad_magic).error() == errc::corrupt_file);
  bytes bad_version = good;
  bad_version[8] = std::byte{9};
  CHECK(calibrator::from_bytes(bad_version, &info).error() == errc::unsupported_version);
  CHECK(info.context().find("version 9") != std::string_view::npos);
  CHECK(info.context().find("reads version 1") != std::string_view::npos);
  for (std::size_t i = 20; i < good.size(); i += 7) {  // every payload and checksum byte region
    bytes flipped = good;
    flipped[i] ^= std::byte{0x40};
    CHECK(calibrator::from_bytes(flipped).error() == errc::corrupt_file);
  }
  // An error found in a file's contents names the file.
  const tandem_test::scratch_dir dir("tandem-calibration-");
  const std::string path = (dir.path() / "damaged.bin").string();
  REQUIRE(tandem::detail::write_file(path, std::span<const std::byte>(bad_magic)) == errc::ok);
  CHECK(calibrator::load(path, &info).error() == errc::corrupt_file);
  CHECK(info.context().find(path + ": not a calibrator file") == 0);
}

TEST_CASE("calibration: files written before the bytes layer load and calibrate identically",
          "[confidence][calibration]") {
  for (const auto m : all_methods) {
    const std::string name = "calibrator_" + std::string(tandem::to_string(m));
    CAPTURE(name);
    const auto c = calibrator::load(tandem_test::format_fixture(name + ".v1.bin"));
    REQUIRE(c);
    CHECK(c->method() == m);
    const auto expected = tandem_test::format_fixture_lines(name + ".expected");
    REQUIRE(expected.size() == 21);
    for (const auto& line : expected) {
      REQUIRE(line.size() == 2);
      const auto p = c->apply(tandem_test::hex_double(line[0]));
      REQUIRE(p);
      CHECK(*p == tandem_test::hex_double(line[1]));
    }
  }
}

TEST_CASE("calibration: a file of another format version is refused, naming both versions",
          "[confidence][calibration]") {
  auto bytes = tandem_test::format_fixture_bytes("calibrator_platt.v1.bin");
  REQUIRE(bytes.size() > 12);
  bytes[8] = std::byte{2};  // the u32 version after the 8-byte magic
  tandem::error_info info;
  CHECK(calibrator::from_bytes(bytes, &info).error() == errc::unsupported_version);
  CHECK(info.context().find("version 2") != std::string_view::npos);
  CHECK(info.context().find("reads version " + std::to_string(calibrator::file_version)) !=
        std::string_view::npos);
}
