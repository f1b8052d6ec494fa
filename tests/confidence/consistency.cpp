// Consistency estimators: majority vote with pluggable extractors, lexical similarity and
// the graph measures on matrices whose spectra are known.
#include "tandem/confidence/consistency.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "tandem/core/completion.hpp"

#include "common/catch.hpp"

using tandem::errc;

TEST_CASE("consistency: majority share through the normaliser", "[confidence][consistency]") {
  const std::vector<std::string> answers{"18", " 18.", "Twenty", "18", ""};
  const auto v = tandem::majority_vote(answers, tandem::normalize_answer);
  REQUIRE(v);
  CHECK(v->answer == "18");
  CHECK(v->count == 3);
  CHECK(v->distinct == 2);
  CHECK(v->share == Approx(0.6));  // the empty answer counts in the denominator
  CHECK(tandem::majority_vote(std::vector<std::string>{}, tandem::normalize_answer).error() ==
        errc::empty_input);
}

TEST_CASE("consistency: a user extractor decides what counts as the same answer",
          "[confidence][consistency]") {
  const std::vector<std::string> answers{"So she makes $18.\n#### 18", "The total is 18.00 dollars",
                                         "#### 1,000", "I think 20"};
  const auto v = tandem::majority_vote(answers, tandem::extract_last_number);
  REQUIRE(v);
  CHECK(v->answer == "18");
  CHECK(v->count == 2);
  CHECK(tandem::extract_last_number("#### 1,000.50 then 7") == "1000.5");
  CHECK(tandem::extract_last_number("a loss of -4") == "-4");
  CHECK(tandem::extract_last_number("no digits").empty());
  auto first_word = [](std::string_view s) { return std::string(s.substr(0, s.find(' '))); };
  const std::vector<std::string> words{"yes indeed", "yes", "no way"};
  CHECK(tandem::majority_vote(words, first_word)->answer == "yes");
}

TEST_CASE("consistency: ROUGE-L and Jaccard on hand-checked pairs", "[confidence][consistency]") {
  CHECK(tandem::rouge_l("The cat sat", "the cat sat.") == Approx(1.0));
  CHECK(tandem::rouge_l("a b c d", "a c") == Approx(2.0 / 3.0));  // P = 1, R = 1/2
  CHECK(tandem::rouge_l("a b", "c d") == Approx(0.0));
  CHECK(tandem::rouge_l("", "") == Approx(1.0));
  CHECK(tandem::rouge_l("a", "") == Approx(0.0));
  CHECK(tandem::jaccard("a b c", "b c d") == Approx(0.5));
  CHECK(tandem::jaccard("a a b", "b a") == Approx(1.0));
}

TEST_CASE("consistency: graph measures order agreement correctly", "[confidence][consistency]") {
  const Eigen::MatrixXd same = Eigen::MatrixXd::Ones(4, 4);
  const Eigen::MatrixXd distinct = Eigen::MatrixXd::Identity(4, 4);
  Eigen::MatrixXd two = Eigen::MatrixXd::Identity(4, 4);
  two(0, 1) = two(1, 0) = two(2, 3) = two(3, 2) = 1.0;

  const auto a = tandem::graph_uncertainty(same);
  const auto b = tandem::graph_uncertainty(two);
  const auto c = tandem::graph_uncertainty(distinct);
  REQUIRE((a && b && c));
  CHECK(a->semantic_sets == 1);
  CHECK(b->semantic_sets == 2);
  CHECK(c->semantic_sets == 4);
  CHECK(a->degree == Approx(0.0).margin(1e-12));
  CHECK(b->degree == Approx(0.5));
  CHECK(c->degree == Approx(0.75));
  // Laplacian spectra: {0,1,1,1}, {0,0,1,1}, {0,0,0,0}.
  CHECK(a->eigenvalues == Approx(1.0));
  CHECK(b->eigenvalues == Approx(2.0));
  CHECK(c->eigenvalues == Approx(4.0));
  CHECK(a->eccentricity == Approx(0.0).margin(1e-9));
  CHECK(c->eccentricity == Approx(std::sqrt(3.0)));
  CHECK(a->eccentricity < b->eccentricity);
  CHECK(a->answer_degree[0] == Approx(1.0));
  CHECK(c->answer_degree[0] == Approx(0.25));
}

TEST_CASE("consistency: bad similarity matrices get named errors", "[confidence][consistency]") {
  CHECK(tandem::graph_uncertainty(Eigen::MatrixXd(0, 0)).error() == errc::empty_input);
  CHECK(tandem::graph_uncertainty(Eigen::MatrixXd::Ones(2, 3)).error() == errc::size_mismatch);
  Eigen::MatrixXd w = Eigen::MatrixXd::Identity(2, 2);
  w(0, 1) = 0.5;
  CHECK(tandem::graph_uncertainty(w).error() == errc::invalid_argument);  // asymmetric
  w(1, 0) = 1.5;
  w(0, 1) = 1.5;
  CHECK(tandem::graph_uncertainty(w).error() == errc::invalid_argument);
  w(0, 1) = w(1, 0) = std::nan("");
  CHECK(tandem::graph_uncertainty(w).error() == errc::non_finite);
}

TEST_CASE("consistency: agreeing samples score as more consistent", "[confidence][consistency]") {
  const std::vector<std::string> agree{"the lord is my shepherd", "the lord is my shepherd",
                                       "the lord is my shepherd i shall not want"};
  const std::vector<std::string> disagree{"the lord is my shepherd", "and it came to pass",
                                          "in the beginning god created"};
  const auto a = tandem::score_consistency(agree, tandem::normalize_answer);
  const auto d = tandem::score_consistency(disagree, tandem::normalize_answer);
  REQUIRE((a && d));
  CHECK(a->vote.share == Approx(2.0 / 3.0));
  CHECK(d->vote.share == Approx(1.0 / 3.0));
  CHECK(a->mean_similarity > d->mean_similarity);
  CHECK(a->graph.semantic_sets < d->graph.semantic_sets);
  CHECK(a->graph.degree < d->graph.degree);
  CHECK(a->graph.eigenvalues < d->graph.eigenvalues);
  const std::vector<std::string> one{"x"};
  CHECK(tandem::score_consistency(one, tandem::normalize_answer)->mean_similarity == 1.0);
}

namespace {
// Answers "A" for even seeds and "B" for odd ones; fails on seed 13.
struct seeded_generator {
  tandem::result<tandem::completion> generate(const tandem::generate_request& r) {
    if (r.sampling.seed == 13) return errc::decode_failed;
    tandem::completion c;
    c.text = r.sampling.seed % 2 == 0 ? "A" : "B";
    return c;
  }
};
}  // namespace

TEST_CASE("consistency: k samples come from consecutive seeds", "[confidence][consistency]") {
  seeded_generator g;
  tandem::generate_request req;
  req.sampling.temperature = 1.0f;
  req.sampling.seed = 4;
  std::vector<std::string> out;
  REQUIRE(tandem::sample_answers(g, req, 5, out) == errc::ok);
  CHECK(out == std::vector<std::string>{"A", "B", "A", "B", "A"});
  CHECK(tandem::majority_vote(out, tandem::normalize_answer)->share == Approx(0.6));
  req.sampling.seed = 10;
  CHECK(tandem::sample_answers(g, req, 5, out) == errc::decode_failed);
  CHECK(out.size() == 3);
  req.sampling.temperature = 0.0f;
  CHECK(tandem::sample_answers(g, req, 5, out) == errc::invalid_temperature);
  req.sampling.temperature = 1.0f;
  CHECK(tandem::sample_answers(g, req, 0, out) == errc::invalid_argument);
}
