// Verbalized confidence: stated forms parse, stray numbers do not, and no input breaks it.
#include "tandem/confidence/verbalized.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/rng.hpp"

#include "common/catch.hpp"

using tandem::stated_form;

namespace {
double parsed(std::string_view text) {
  const auto c = tandem::parse_verbalized_confidence(text);
  REQUIRE(c.has_value());
  return c->value;
}
bool none(std::string_view text) { return !tandem::parse_verbalized_confidence(text).has_value(); }
}  // namespace

TEST_CASE("verbalized: stated confidences in their usual forms", "[confidence][verbalized]") {
  CHECK(parsed("Answer: 18\nConfidence: 85%") == Approx(0.85));
  CHECK(parsed("0.85") == Approx(0.85));
  CHECK(parsed("85%") == Approx(0.85));
  CHECK(parsed("I am about 70% sure.") == Approx(0.70));
  CHECK(parsed("I'm 90 percent certain it is Paris") == Approx(0.90));
  CHECK(parsed("**Confidence:** 60%") == Approx(0.60));
  CHECK(parsed("Confidence level: 0.9") == Approx(0.9));
  CHECK(parsed("confidence = 8/10") == Approx(0.8));
  CHECK(parsed("My confidence is 7 out of 10.") == Approx(0.7));
  CHECK(parsed("Probability: 0.35") == Approx(0.35));
  CHECK(parsed("Confidence: 75") == Approx(0.75));  // a bare number above 1 is a percentage
  CHECK(parsed("with 95% confidence") == Approx(0.95));
}

TEST_CASE("verbalized: level words map to fixed probabilities", "[confidence][verbalized]") {
  const tandem::confidence_levels lv;
  CHECK(parsed("Confidence: high") == Approx(lv.high));
  CHECK(parsed("confidence level: medium") == Approx(lv.medium));
  CHECK(parsed("Low confidence.") == Approx(lv.low));
  CHECK(parsed("very high confidence") == Approx(lv.very_high));
  CHECK(parsed("Confidence: very low") == Approx(lv.very_low));
  CHECK(parsed("moderate") == Approx(lv.medium));
  const auto c = tandem::parse_verbalized_confidence("Confidence: high");
  CHECK(c->form == stated_form::level);
  CHECK(c->position == 12);
}

TEST_CASE("verbalized: the last stated confidence wins", "[confidence][verbalized]") {
  CHECK(parsed("Confidence: 85%. On reflection, confidence: 60%") == Approx(0.6));
}

TEST_CASE("verbalized: stray or invalid numbers are not guessed", "[confidence][verbalized]") {
  CHECK(none(""));
  CHECK(none("The answer is 42."));
  CHECK(none("I'm not sure."));
  CHECK(none("I am not 100% sure"));
  CHECK(none("Confidence: 150%"));
  CHECK(none("Confidence: -5%"));
  CHECK(none("Confidence: 3rd attempt"));
  CHECK(none("Confidence: unknown, but the answer is 0.5"));
  CHECK(none("The probability that a die shows 6 is 1/6"));
  CHECK(none("Confidence: 12345678901234567890"));
  CHECK(none("confidence"));
  CHECK(none("high school"));
}

TEST_CASE("verbalized: arbitrary bytes never break the parser", "[confidence][verbalized][fuzz]") {
  const std::vector<std::string> pieces{
      "Confidence", ":", " ",  "85",     "%",  "0.", ".5",      "sure", "very", "high",
      "not",        "/", "10", "out of", "\n", "-",  "percent", "\xff", "\"",   "9999999999999999",
      "1e9"};
  tandem::rng g(42);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const auto parts = g.below(12);
    for (std::uint64_t k = 0; k < parts; ++k) {
      if (g.below(4) == 0)
        s.push_back(static_cast<char>(g.below(256)));
      else
        s += pieces[g.below(pieces.size())];
    }
    const auto c = tandem::parse_verbalized_confidence(s);
    if (c) {
      CHECK(c->value >= 0.0);
      CHECK(c->value <= 1.0);
      CHECK(c->position < s.size());
    }
  }
}
