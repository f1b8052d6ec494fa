// The router's format fixtures in tests/data/formats/: a saved router for each predictor
// kind, each beside a ".expected" file of probe prompts and the predictions the saving code
// made for them (hex floats, exact); the hidden test that writes them, and the tests that
// today's code refuses the old version by name and still fits the same routers. (The
// learned evaluator's fixture is made and checked in tests/confidence/learned.cpp.)
//
// The committed files were made by router format version 2 (commit "tests: format
// fixtures ..."), before the router moved to the common frame (version 3). To add
// fixtures of a new version (keep the old ones):
//   test_router "[.fixtures]"
// which writes router_v<version>_<kind>.* into TANDEM_FORMATS_DIR (tests/data/formats).
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "common/fixture_files.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/router.hpp"

namespace {

// A tiny outcome table with a planted signal (hard topics fail on the weak model).
void make_router_table(std::vector<std::string>& prompts, std::vector<double>& quality) {
  static const char* const hard[] = {"topology", "manifold", "homotopy", "sheaf"};
  static const char* const easy[] = {"cooking", "recipe", "bread", "soup"};
  static const char* const filler[] = {"which", "of", "the", "is", "true", "about"};
  tandem::rng g(2024);
  for (int i = 0; i < 60; ++i) {
    const bool is_hard = g.uniform() < 0.4;
    std::string p;
    for (int w = 0; w < 6; ++w) {
      if (!p.empty()) p += ' ';
      p += w % 3 == 0 ? (is_hard ? hard : easy)[g.below(4)] : filler[g.below(6)];
    }
    prompts.push_back(p);
    quality.push_back(g.uniform() < (is_hard ? 0.2 : 0.9) ? 1 : 0);
    quality.push_back(g.uniform() < (is_hard ? 0.9 : 0.95) ? 1 : 0);
  }
}

// The options every fixture router was fitted with.
tandem::router_options fixture_options(tandem::router_predictor kind) {
  tandem::router_options o;
  o.predictor = kind;
  o.ngrams.dims_log2 = 8;
  o.knn_ngrams.dims_log2 = 8;
  o.joint_ngrams.dims_log2 = 8;
  o.joint_ngrams.min_df = 1;
  o.k_grid = {4, 16};
  o.l2_grid = {1e-2, 1e-3};
  o.joint_l2_grid = {1e-2, 1e-3};
  o.factorization.rank = 4;
  o.folds = 3;
  return o;
}

const std::pair<tandem::router_predictor, const char*> kinds[] = {
    {tandem::router_predictor::logistic, "logistic"},
    {tandem::router_predictor::knn, "knn"},
    {tandem::router_predictor::factorization, "factorization"},
    {tandem::router_predictor::ensemble, "ensemble"},
    {tandem::router_predictor::joint, "joint"}};

const char* const probes[] = {"which is true about topology", "a recipe for bread soup",
                              "the sheaf of a manifold", "nothing in common here", ""};

using tandem_test::expected_lines;
using tandem_test::hex;
using tandem_test::write_text;

}  // namespace

TEST_CASE("fixtures: write a saved router of each kind", "[.fixtures]") {
  const std::string dir = TANDEM_FORMATS_DIR;
  std::vector<std::string> prompts;
  std::vector<double> quality;
  make_router_table(prompts, quality);
  const std::vector<std::string> models{"weak", "strong"};
  for (const auto& [kind, name] : kinds) {
    tandem::router r;
    REQUIRE(r.fit(prompts, quality, models, fixture_options(kind)) == tandem::errc::ok);
    const std::string base =
        dir + "/router_v" + std::to_string(tandem::router_format_version) + "_" + name;
    REQUIRE(r.save(base + ".bin") == tandem::errc::ok);
    std::string expected;
    std::vector<double> q(2);
    for (const char* p : probes) {
      REQUIRE(r.predict(p, q) == tandem::errc::ok);
      expected += std::string(p) + "\t" + hex(q[0]) + " " + hex(q[1]) + "\n";
    }
    write_text(base + ".expected", expected);
  }
}

TEST_CASE("fixtures: version 2 router files are refused with both versions named", "[router][io]") {
  for (const auto& [kind, name] : kinds) {
    CAPTURE(name);
    const std::string path = std::string(TANDEM_FORMATS_DIR) + "/router_v2_" + name + ".bin";
    tandem::error_info info;
    auto r = tandem::router::load(path, &info);
    REQUIRE_FALSE(r);
    CHECK(r.error() == tandem::errc::unsupported_version);
    CHECK(info.code == tandem::errc::unsupported_version);
    const std::string text(info.context());
    CHECK(text.find("version 2") != std::string::npos);
    CHECK(text.find("version " + std::to_string(tandem::router_format_version)) !=
          std::string::npos);
  }
}

TEST_CASE("fixtures: a router fitted as the version 2 fixtures were predicts what they saved",
          "[router][io]") {
  // Fitting is deterministic, so today's code fitted on the generator's table must give
  // the predictions the version 2 code wrote beside each fixture, bit for bit; and a
  // to_bytes / from_bytes round trip keeps them.
  std::vector<std::string> prompts;
  std::vector<double> quality;
  make_router_table(prompts, quality);
  const std::vector<std::string> models{"weak", "strong"};
  for (const auto& [kind, name] : kinds) {
    CAPTURE(name);
    tandem::router r;
    REQUIRE(r.fit(prompts, quality, models, fixture_options(kind)) == tandem::errc::ok);
    auto bytes = r.to_bytes();
    REQUIRE(bytes);
    auto back = tandem::router::from_bytes(*bytes);
    REQUIRE(back);
    const auto lines =
        expected_lines(std::string(TANDEM_FORMATS_DIR) + "/router_v2_" + name + ".expected");
    REQUIRE(lines.size() == std::size(probes));
    std::vector<double> q(2), b(2);
    for (const auto& fields : lines) {
      REQUIRE(fields.size() == 2);
      REQUIRE(r.predict(fields[0], q) == tandem::errc::ok);
      REQUIRE(back->predict(fields[0], b) == tandem::errc::ok);
      CHECK(hex(q[0]) + " " + hex(q[1]) == fields[1]);
      CHECK(b == q);
    }
  }
}
