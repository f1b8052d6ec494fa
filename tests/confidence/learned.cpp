// Learned evaluator: learns from hashed text and dense features, trains deterministically,
// round-trips through files and rejects corrupt ones.
#include "tandem/confidence/learned.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tandem/core/rng.hpp"

#include "common/catch.hpp"

using tandem::errc;
using tandem::learned_evaluator;
using tandem::learned_example;

namespace {
struct corpus {
  std::vector<std::string> questions, answers;
  std::vector<std::vector<double>> features;
  std::vector<learned_example> examples;
};
// Answers that "show their work" are right; answers that "guess" are wrong.
corpus make_corpus(std::uint64_t seed, std::size_t n) {
  const char* topics[] = {"apples", "trains", "coins", "eggs", "books", "miles"};
  corpus c;
  tandem::rng g(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const bool right = g.below(2) == 1;
    c.questions.push_back("how many " + std::string(topics[g.below(6)]) + " are left");
    c.answers.push_back(right ? "first we compute the total then subtract so the answer is " +
                                    std::to_string(g.below(100))
                              : "i guess the answer is " + std::to_string(g.below(100)));
    c.features.push_back({right ? 1.0 + g.uniform() : g.uniform()});
  }
  for (std::size_t i = 0; i < n; ++i)
    c.examples.push_back(
        {c.questions[i], c.answers[i], c.features[i], c.answers[i].rfind("first", 0) == 0 ? 1 : 0});
  return c;
}
}  // namespace

TEST_CASE("learned: separates right from wrong answers by their words", "[confidence][learned]") {
  corpus c = make_corpus(1, 200);
  for (auto& e : c.examples) e.features = {};
  const auto m = learned_evaluator::train(c.examples);
  REQUIRE(m);
  CHECK(*m->predict("how many coins are left", "first we compute the total then subtract") > 0.8);
  CHECK(*m->predict("how many coins are left", "i guess the answer is 3") < 0.2);
  CHECK(m->nonzero_weights() > 0);
}

TEST_CASE("learned: uses dense white-box features", "[confidence][learned]") {
  // Text carries no signal here; only the feature does.
  std::vector<double> f(100);
  std::vector<learned_example> ex;
  for (std::size_t i = 0; i < f.size(); ++i) {
    f[i] = static_cast<double>(i) / 10.0;
    ex.push_back(
        {"same question", "same answer", std::span<const double>(&f[i], 1), i >= 50 ? 1 : 0});
  }
  const auto m = learned_evaluator::train(ex);
  REQUIRE(m);
  const double hi = 9.0, lo = 1.0;
  CHECK(*m->predict("same question", "same answer", std::span<const double>(&hi, 1)) > 0.9);
  CHECK(*m->predict("same question", "same answer", std::span<const double>(&lo, 1)) < 0.1);
  CHECK(m->predict("same question", "same answer").error() == errc::size_mismatch);
  const double nan = std::nan("");
  CHECK(m->predict("q", "a", std::span<const double>(&nan, 1)).error() == errc::non_finite);
}

TEST_CASE("learned: training is deterministic", "[confidence][learned]") {
  const corpus c = make_corpus(2, 150);
  const auto a = learned_evaluator::train(c.examples);
  const auto b = learned_evaluator::train(c.examples);
  REQUIRE((a && b));
  CHECK(a->serialize() == b->serialize());
}

TEST_CASE("learned: save/load round trip keeps every prediction", "[confidence][learned]") {
  const corpus c = make_corpus(3, 120);
  const auto m = learned_evaluator::train(c.examples);
  REQUIRE(m);
  const std::string path = "tandem_test_learned.bin";
  REQUIRE(m->save(path.c_str()) == errc::ok);
  const auto back = learned_evaluator::load(path.c_str());
  std::remove(path.c_str());
  REQUIRE(back);
  CHECK(back->feature_count() == 1);
  for (std::size_t i = 0; i < c.examples.size(); ++i) {
    const auto& e = c.examples[i];
    CHECK(*back->predict(e.question, e.answer, e.features) ==
          *m->predict(e.question, e.answer, e.features));
  }
}

TEST_CASE("learned: corrupt files are rejected", "[confidence][learned]") {
  const corpus c = make_corpus(4, 60);
  const std::string good = learned_evaluator::train(c.examples)->serialize();
  REQUIRE(learned_evaluator::deserialize(good));
  CHECK(learned_evaluator::deserialize(good.substr(0, 30)).error() == errc::corrupt_file);
  CHECK(learned_evaluator::deserialize("TNDMCAL1").error() == errc::corrupt_file);
  std::string version = good;
  version[8] = 2;
  CHECK(learned_evaluator::deserialize(version).error() == errc::unsupported_version);
  for (std::size_t i = 20; i < good.size(); i += 13) {
    std::string flipped = good;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    CHECK(learned_evaluator::deserialize(flipped).error() == errc::corrupt_file);
  }
  CHECK(learned_evaluator::load("no/such/model.bin").error() == errc::file_not_found);
}

TEST_CASE("learned: bad training sets get named errors", "[confidence][learned]") {
  CHECK(learned_evaluator::train({}).error() == errc::empty_input);
  corpus c = make_corpus(5, 20);
  std::vector<learned_example> one_class;
  for (const auto& e : c.examples)
    if (e.label == 1) one_class.push_back(e);
  CHECK(learned_evaluator::train(one_class).error() == errc::insufficient_data);
  auto mixed = c.examples;
  mixed[0].features = {};
  CHECK(learned_evaluator::train(mixed).error() == errc::size_mismatch);
  auto bad_label = c.examples;
  bad_label[0].label = 3;
  CHECK(learned_evaluator::train(bad_label).error() == errc::invalid_argument);
  tandem::learned_options o;
  o.hash_bits = 0;
  CHECK(learned_evaluator::train(c.examples, o).error() == errc::invalid_argument);
  o.hash_bits = 18;
  o.l2 = -1.0;
  CHECK(learned_evaluator::train(c.examples, o).error() == errc::invalid_argument);
}
