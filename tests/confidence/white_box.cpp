// White-box estimators on hand-built completion records.
#include "tandem/confidence/white_box.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "tandem/core/completion.hpp"

#include "common/catch.hpp"

using tandem::errc;

namespace {
tandem::completion record(std::vector<float> probs, std::vector<float> entropies = {}) {
  tandem::completion c;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    c.tokens.push_back(static_cast<tandem::token_id>(i));
    c.logprobs.push_back(std::log(probs[i]));
  }
  c.entropies = std::move(entropies);
  return c;
}
}  // namespace

TEST_CASE("white-box: estimators of a hand-built record", "[confidence][white_box]") {
  const auto c = record({0.5f, 0.25f, 1.0f}, {0.1f, 0.7f, 0.4f});
  const auto s = tandem::score_white_box(c, 0.5);
  REQUIRE(s);
  CHECK(s->sequence_probability == Approx(0.125));
  CHECK(s->mean_logprob == Approx(std::log(0.125) / 3.0));
  CHECK(s->perplexity == Approx(2.0));
  CHECK(s->min_token_probability == Approx(0.25));
  CHECK(s->quantile_probability == Approx(0.5));  // median token probability
  REQUIRE(s->has_entropy);
  CHECK(s->mean_entropy == Approx(0.4));
  CHECK(s->max_entropy == Approx(0.7));
  CHECK(std::isnan(s->mean_margin));
  CHECK(tandem::confidence_of(*s, tandem::white_box_estimator::perplexity) == Approx(-2.0));
  CHECK(tandem::confidence_of(*s, tandem::white_box_estimator::max_entropy) == Approx(-0.7));
}

TEST_CASE("white-box: token quantiles interpolate between order statistics",
          "[confidence][white_box]") {
  const std::vector<float> lp{std::log(0.2f), std::log(0.4f), std::log(0.6f), std::log(0.8f),
                              std::log(1.0f)};
  std::vector<double> scratch;
  CHECK(*tandem::token_quantile_probability(lp, 0.0, scratch) == Approx(0.2));
  CHECK(*tandem::token_quantile_probability(lp, 0.1, scratch) == Approx(0.28));
  CHECK(*tandem::token_quantile_probability(lp, 1.0, scratch) == Approx(1.0));
  CHECK(tandem::token_quantile_probability(lp, 1.5, scratch).error() == errc::invalid_argument);
}

TEST_CASE("white-box: a quantile score does not punish length as the product does",
          "[confidence][white_box]") {
  const auto short_answer = record({0.9f, 0.9f});
  const auto long_answer = record(std::vector<float>(40, 0.9f));
  const auto a = tandem::score_white_box(short_answer, 0.1);
  const auto b = tandem::score_white_box(long_answer, 0.1);
  CHECK(b->sequence_probability < 0.05 * a->sequence_probability);
  CHECK(b->quantile_probability == Approx(a->quantile_probability));
}

TEST_CASE("white-box: top-1/top-2 margin of a distribution", "[confidence][white_box]") {
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits{std::log(0.2f), std::log(0.5f), std::log(0.3f)};
  CHECK(*tandem::top2_margin(logits) == Approx(0.2));
  const std::vector<float> single{ninf, 3.0f, ninf};
  CHECK(*tandem::top2_margin(single) == Approx(1.0));
  const std::vector<float> masked{ninf, ninf};
  CHECK(tandem::top2_margin(masked).error() == errc::no_candidates);
  const std::vector<float> nan{0.0f, std::nanf("")};
  CHECK(tandem::top2_margin(nan).error() == errc::non_finite);
  const auto c = record({0.5f, 0.5f});
  const std::vector<double> margins{0.4, 0.1};
  const auto s = tandem::score_white_box(c, 0.1, margins);
  CHECK(s->mean_margin == Approx(0.25));
  CHECK(s->min_margin == Approx(0.1));
}

TEST_CASE("white-box: bad records get named errors", "[confidence][white_box]") {
  CHECK(tandem::score_white_box(tandem::completion{}).error() == errc::empty_input);
  auto unknown = record({0.5f});
  unknown.logprobs[0] = std::nanf("");
  CHECK(tandem::score_white_box(unknown).error() == errc::not_found);
  auto missing = record({0.5f});
  missing.logprobs.clear();
  CHECK(tandem::score_white_box(missing).error() == errc::not_found);
  auto positive = record({0.5f});
  positive.logprobs[0] = 0.5f;
  CHECK(tandem::score_white_box(positive).error() == errc::invalid_argument);
  auto mismatch = record({0.5f, 0.5f}, {0.1f});
  CHECK(tandem::score_white_box(mismatch).error() == errc::size_mismatch);
  auto negative_entropy = record({0.5f}, {-1.0f});
  CHECK(tandem::score_white_box(negative_entropy).error() == errc::invalid_argument);
  const std::vector<double> bad_margin{1.5};
  CHECK(tandem::score_white_box(record({0.5f}), 0.1, bad_margin).error() == errc::invalid_argument);
  // A token of probability 0 is valid: the sequence probability is 0, perplexity infinite.
  auto zero = record({0.5f});
  zero.logprobs[0] = -std::numeric_limits<float>::infinity();
  const auto s = tandem::score_white_box(zero);
  REQUIRE(s);
  CHECK(s->sequence_probability == 0.0);
  CHECK(std::isinf(s->perplexity));
}
