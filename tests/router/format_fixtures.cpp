// Generator of the committed format fixtures in tests/data/formats/: a saved router for
// each predictor kind and a saved learned evaluator, each beside a ".expected" file of
// probe inputs and the predictions the saving code made for them (hex floats, exact).
// The tests in tests/router/router.cpp and tests/confidence/learned.cpp load these files
// and check that today's code still reads them with the same predictions (or refuses them
// with unsupported_version naming both versions).
//
// The committed files were made by the router format version 2 and the learned evaluator
// format version 1 (commit "tests: format fixtures ..."). To remake them (only when a
// format changes on purpose, and keeping the old ones as fixtures of the old version):
//   test_router "[.fixtures]"
// which writes into TANDEM_FORMATS_DIR (tests/data/formats).
#include <cstdio>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "tandem/confidence/learned.hpp"
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

const char* const probes[] = {"which is true about topology", "a recipe for bread soup",
                              "the sheaf of a manifold", "nothing in common here", ""};

void write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
  REQUIRE(std::fclose(f) == 0);
}

std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

}  // namespace

TEST_CASE("fixtures: write a saved router of each kind and a learned evaluator", "[.fixtures]") {
  const std::string dir = TANDEM_FORMATS_DIR;
  std::vector<std::string> prompts;
  std::vector<double> quality;
  make_router_table(prompts, quality);
  const std::vector<std::string> models{"weak", "strong"};
  const std::pair<tandem::router_predictor, const char*> kinds[] = {
      {tandem::router_predictor::logistic, "logistic"},
      {tandem::router_predictor::knn, "knn"},
      {tandem::router_predictor::factorization, "factorization"},
      {tandem::router_predictor::ensemble, "ensemble"},
      {tandem::router_predictor::joint, "joint"}};
  for (const auto& [kind, name] : kinds) {
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
    tandem::router r;
    REQUIRE(r.fit(prompts, quality, models, o) == tandem::errc::ok);
    const std::string base = dir + "/router_v2_" + name;
    REQUIRE(r.save((base + ".bin").c_str()) == tandem::errc::ok);
    std::string expected;
    std::vector<double> q(2);
    for (const char* p : probes) {
      REQUIRE(r.predict(p, q) == tandem::errc::ok);
      expected += std::string(p) + "\t" + hex(q[0]) + " " + hex(q[1]) + "\n";
    }
    write_text(base + ".expected", expected);
  }

  // The learned evaluator: right answers "show their work", one dense feature.
  tandem::rng g(7);
  std::vector<std::string> qs, as;
  std::vector<double> fs(80);
  std::vector<tandem::learned_example> ex;
  for (std::size_t i = 0; i < 80; ++i) {
    const bool right = g.below(2) == 1;
    qs.push_back(std::string("how many ") + (i % 2 ? "coins" : "eggs") + " are left");
    as.push_back(right ? "first we add then subtract so " + std::to_string(g.below(50))
                       : "i guess " + std::to_string(g.below(50)));
    fs[i] = right ? 1.0 + g.uniform() : g.uniform();
  }
  for (std::size_t i = 0; i < 80; ++i)
    ex.push_back({qs[i], as[i], std::span<const double>(&fs[i], 1), as[i][0] == 'f' ? 1 : 0});
  tandem::learned_options lo;
  lo.hash_bits = 12;
  const auto m = tandem::learned_evaluator::train(ex, lo);
  REQUIRE(m);
  REQUIRE(m->save((dir + "/learned_v1.bin").c_str()) == tandem::errc::ok);
  const std::pair<const char*, const char*> pairs[] = {
      {"how many coins are left", "first we add then subtract so 7"},
      {"how many eggs are left", "i guess 12"},
      {"an unseen question", "an unseen answer"}};
  std::string expected;
  for (const auto& [q, a] : pairs)
    for (double f : {0.25, 1.5}) {
      auto p = m->predict(q, a, std::span<const double>(&f, 1));
      REQUIRE(p);
      expected += std::string(q) + "\t" + a + "\t" + hex(f) + "\t" + hex(*p) + "\n";
    }
  write_text(dir + "/learned_v1.expected", expected);
}
