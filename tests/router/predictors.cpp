// The router's quality predictors as their own types: each fits, predicts and writes /
// reads its own part of a router file, and the variant's kinds match router_predictor.
#include "tandem/router/predictors.hpp"

#include <string>
#include <variant>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/rng.hpp"

using tandem::errc;

namespace {
// One planted signal: feature 0 marks the queries the first model fails, feature 1 those
// it solves; the second model solves 90% of all.
struct rows_fixture {
  std::vector<tandem::sparse_vector> x;
  std::vector<double> y;
  rows_fixture() {
    tandem::rng g(17);
    for (int i = 0; i < 90; ++i) {
      const bool hard = g.below(2) == 1;
      tandem::sparse_vector v;
      v.index = {hard ? 0u : 1u, 2u + static_cast<std::uint32_t>(g.below(6))};
      v.value = {0.8f, 0.6f};
      x.push_back(v);
      y.push_back(hard ? 0 : 1);
      y.push_back(g.uniform() < 0.9 ? 1 : 0);
    }
  }
  tandem::router_rows rows() const { return {x, 8, x, 8, y, 2}; }
};

template <class P>
void check_round_trip(const rows_fixture& f) {
  tandem::router_options o;
  o.folds = 3;
  o.k_grid = {4, 16};
  o.factorization.rank = 2;
  P p;
  tandem::rng g(0);
  REQUIRE(p.fit(f.rows(), o, g) == errc::ok);
  std::vector<double> hard(2), easy(2);
  REQUIRE(p.predict(f.x[0], f.x[0], hard) == errc::ok);
  tandem::sparse_vector h, e;
  h.index = {0};
  h.value = {1};
  e.index = {1};
  e.value = {1};
  REQUIRE(p.predict(h, h, hard) == errc::ok);
  REQUIRE(p.predict(e, e, easy) == errc::ok);
  CHECK(hard[1] - hard[0] > easy[1] - easy[0] + 0.2);  // the planted gain

  tandem::detail::byte_writer w;
  p.write(w);
  tandem::detail::byte_reader r(w.bytes());
  P back;
  REQUIRE(back.read(r, {2, 8, 8}, nullptr) == errc::ok);
  CHECK(r.at_end());
  std::vector<double> again(2);
  REQUIRE(back.predict(h, h, again) == errc::ok);
  REQUIRE(p.predict(h, h, hard) == errc::ok);
  CHECK(again == hard);

  // Any truncation is corrupt_file, with details.
  const auto& bytes = w.bytes();
  tandem::detail::byte_reader cut(std::span<const std::byte>(bytes).first(bytes.size() - 1));
  tandem::error_info info;
  P broken;
  CHECK(broken.read(cut, {2, 8, 8}, &info) == errc::corrupt_file);
  CHECK(info.code == errc::corrupt_file);
  CHECK(std::string(info.context()).find("router file") != std::string::npos);
}
}  // namespace

TEST_CASE("predictors: each kind fits, predicts and round-trips its own part",
          "[router][predictor]") {
  const rows_fixture f;
  check_round_trip<tandem::logistic_quality_predictor>(f);
  check_round_trip<tandem::knn_quality_predictor>(f);
  check_round_trip<tandem::factorization_quality_predictor>(f);
  check_round_trip<tandem::ensemble_quality_predictor>(f);
  check_round_trip<tandem::joint_quality_predictor>(f);
}

TEST_CASE("predictors: emplace_predictor makes the kind it is asked for", "[router][predictor]") {
  tandem::quality_predictor p;
  for (auto kind : {tandem::router_predictor::logistic, tandem::router_predictor::knn,
                    tandem::router_predictor::factorization, tandem::router_predictor::ensemble,
                    tandem::router_predictor::joint}) {
    REQUIRE(tandem::emplace_predictor(p, kind));
    CHECK(std::visit([](const auto& q) { return q.kind; }, p) == kind);
  }
  CHECK_FALSE(tandem::emplace_predictor(p, static_cast<tandem::router_predictor>(9)));
  CHECK(std::holds_alternative<tandem::joint_quality_predictor>(p));  // unchanged
}
