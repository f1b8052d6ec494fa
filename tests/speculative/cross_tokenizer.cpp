// Speculative decoding between a draft and a target with different tokenizers, on mock
// vocabularies that overlap partially: a mapped drafter (vocab_map) that follows the
// target past tokens outside the intersection, and the text-level drafter (text_drafter)
// that drafts in its own tokens and re-tokenizes for the target. Greedy output equals
// target-only greedy; sampling keeps the target's distribution.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "speculative/text_mocks.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::piece_vocab;
using tandem_test::truth_model;

// A long text of words drawn by a fixed LCG.
std::string make_truth(std::size_t chars) {
  const char* words[] = {"the ", "and ", "of ", "lord ", "god ", "said ", "unto ", "sheep "};
  std::string t;
  std::uint64_t x = 12345;
  while (t.size() < chars) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t += words[(x >> 33) % 8];
  }
  return t;
}

piece_vocab letters_plus(std::vector<std::string> extra, bool leading_space = false) {
  piece_vocab v;
  v.leading_space = leading_space;
  v.pieces.push_back("<s>");
  for (char c : std::string(" abdefghiklnoprstuy")) v.pieces.push_back(std::string(1, c));
  for (auto& e : extra) v.pieces.push_back(std::move(e));
  return v;
}

std::vector<token_id> target_only(const piece_vocab& v, const std::string& truth, std::size_t n) {
  truth_model m(v, truth, 1);
  tandem::greedy_sampler s;
  return tandem_test::generate_tokens(m, s, n);
}

}  // namespace

TEST_CASE(
    "cross-tokenizer: a mapped drafter follows the target past tokens outside the "
    "intersection and drafts again",
    "[speculative][cross_tokenizer]") {
  const std::string truth = make_truth(20000);
  const piece_vocab a = letters_plus({"the", " and", "of ", "lord", " god", "said", " unto"});
  const piece_vocab b = letters_plus({"the", "and", " of", "lord", "god ", "sa", "unto", "sheep"});
  auto map = tandem::vocab_map::build(a.vocab_size(), a.source(), tandem::piece_style::plain,
                                      b.vocab_size(), b.source(), tandem::piece_style::plain);
  REQUIRE(map);
  const std::size_t n = 600;
  const auto ref = target_only(a, truth, n);
  const auto outside = static_cast<std::size_t>(std::count_if(
      ref.begin(), ref.end(), [&](token_id t) { return !map->map_token(t).has_value(); }));
  CHECK(outside >= 50);  // the run leaves the intersection many times

  using mapped = tandem::mapped_model<truth_model>;
  const std::vector<token_id> prompt{0};
  tandem::generation_options g;
  g.max_tokens = n;
  for (const auto policy : {tandem::unmapped_token::spell, tandem::unmapped_token::fail}) {
    truth_model target(a, truth, 1), inner(b, truth, 2);
    auto draft = mapped::create(inner, *map, tandem::mapped_model_options{policy});
    REQUIRE(draft);
    tandem::model_drafter<mapped, tandem::greedy_sampler> drafter(*draft, tandem::greedy_sampler{});
    tandem::speculative_decoder<truth_model, decltype(drafter), tandem::fixed_draft> dec(
        target, drafter, tandem::fixed_draft{4});
    tandem::greedy_sampler s;
    tandem::completion out;
    const errc e = dec.generate(s, prompt, g, out);
    if (policy == tandem::unmapped_token::fail) {
      CHECK(e == errc::vocab_mismatch);  // the old behaviour: stops at the first such token
      continue;
    }
    REQUIRE(e == errc::ok);
    CHECK(out.tokens == ref);
    // Drafting resumed after each excursion: most kept tokens came from accepted drafts.
    CHECK(dec.stats().accepted > n / 3);
    CHECK(dec.stats().rounds < n * 2 / 3);
  }
}

TEST_CASE(
    "cross-tokenizer: a mapped model spells a token outside the intersection and "
    "rewinds by presented tokens",
    "[speculative][cross_tokenizer]") {
  const piece_vocab a = letters_plus({"said", "<x>"});
  const piece_vocab b = letters_plus({"sa"});
  auto map = tandem::vocab_map::build(a.vocab_size(), a.source(), tandem::piece_style::plain,
                                      b.vocab_size(), b.source(), tandem::piece_style::plain);
  REQUIRE(map);
  const auto said = static_cast<token_id>(a.vocab_size() - 2);
  const auto sa = static_cast<token_id>(b.vocab_size() - 1);
  std::vector<token_id> ids;
  REQUIRE(b.encode("id", ids) == errc::ok);
  const std::vector<token_id> expect{sa, ids[0], ids[1]};
  const auto sp = map->spelling(said);
  CHECK(std::vector<token_id>(sp.begin(), sp.end()) == expect);
  truth_model inner(b, "said said ", 1);
  auto mm = tandem::mapped_model<truth_model>::create(inner, *map);
  REQUIRE(mm);
  const token_id x[] = {0, said};
  REQUIRE(mm->append(x) == errc::ok);
  CHECK(mm->size() == 2);
  CHECK(inner.size() == 4);
  REQUIRE(mm->rewind(1) == errc::ok);
  CHECK(inner.size() == 1);
  CHECK(mm->rewind(5) == errc::rewind_out_of_range);
}

namespace {

// Runs a text drafter for target vocabulary `a` with a draft over `b`; returns the decoder's
// output and acceptance.
struct text_run {
  std::vector<token_id> tokens;
  double acceptance = 0.0;
  std::size_t unaligned = 0;
};

text_run run_text_drafter(const piece_vocab& a, const piece_vocab& b, const std::string& truth,
                          std::size_t n, std::size_t lookback) {
  truth_model target(a, truth, 1);
  truth_model inner(b, b.leading_space ? " " + truth : truth, 2);
  const token_id bos[] = {0};
  tandem::text_drafter_options o;
  o.lookback = lookback;
  auto drafter =
      tandem::text_drafter<truth_model, tandem::greedy_sampler, piece_vocab, piece_vocab>::create(
          inner, {}, b, a, bos, o);
  REQUIRE(drafter);
  tandem::speculative_decoder<truth_model, std::remove_reference_t<decltype(*drafter)>,
                              tandem::fixed_draft>
      dec(target, *drafter, tandem::fixed_draft{4});
  tandem::greedy_sampler s;
  tandem::completion out;
  tandem::generation_options g;
  g.max_tokens = n;
  const std::vector<token_id> prompt{0};
  REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
  return {out.tokens, dec.stats().acceptance_rate(), drafter->unaligned_rounds()};
}

}  // namespace

TEST_CASE("cross-tokenizer: the text drafter keeps greedy output identical to target-only",
          "[speculative][cross_tokenizer]") {
  const std::string truth = make_truth(20000);
  const piece_vocab a = letters_plus({"the", " and", "of ", "lord", " god", "said", " unto"});
  const std::size_t n = 500;
  const auto ref = target_only(a, truth, n);
  for (const bool lead : {false, true}) {
    for (const std::size_t lookback : {std::size_t{1}, std::size_t{4}}) {
      CAPTURE(lead, lookback);
      const piece_vocab b =
          letters_plus({"the ", "and", " of", "lord ", "god", "sa", "id ", "unto", "sheep"}, lead);
      const auto r = run_text_drafter(a, b, truth, n, lookback);
      CHECK(r.tokens == ref);
      CHECK(r.acceptance > 0.5);  // the draft model follows the same text
      WARN("text drafter, draft leading space " << lead << ", lookback " << lookback
                                                << ": acceptance " << r.acceptance
                                                << ", unaligned rounds " << r.unaligned);
    }
  }
}

TEST_CASE("cross-tokenizer: the text drafter's mapping beats a one-token-per-token map",
          "[speculative][cross_tokenizer]") {
  // The draft's pieces overlap none of the target's multi-letter pieces: a token-to-token
  // map proposes letters only, the text drafter proposes the target's own words.
  const std::string truth = make_truth(20000);
  const piece_vocab a = letters_plus({"the ", "and ", "of ", "lord ", "god ", "said ", "unto "});
  const piece_vocab b = letters_plus({"th", "e ", "an", "d ", "o", "f ", "lo", "rd ", "go"});
  const auto r = run_text_drafter(a, b, truth, 300, 4);
  CHECK(r.tokens == target_only(a, truth, 300));
  CHECK(r.acceptance > 0.5);
}

TEST_CASE("cross-tokenizer: text drafts keep the target's sampling distribution",
          "[speculative][cross_tokenizer][sampling]") {
  // Target vocabulary {a, b, ab, ba}; the draft's {a, b, bb, aa} with a leading space. The
  // joint distribution of the first two sampled tokens must be the target's own.
  piece_vocab a;
  a.pieces = {"<s>", "a", "b", "ab", "ba"};
  piece_vocab b;
  b.pieces = {"<s>", "a", "b", "bb", "aa", " "};
  b.leading_space = true;
  const std::string truth = "abbababbbaabab";
  const float noise = 6.0f;
  const std::size_t vocab = 5, runs = 12000;
  truth_model ref(a, truth, 1, noise);
  const std::vector<token_id> prompt{0};
  REQUIRE(ref.append(prompt) == errc::ok);
  std::vector<float> p1(vocab), p2(vocab);
  auto softmax = [](std::span<const float> l, std::vector<float>& p) {
    const float m = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (std::size_t i = 0; i < l.size(); ++i) z += std::exp(static_cast<double>(l[i] - m));
    for (std::size_t i = 0; i < l.size(); ++i)
      p[i] = static_cast<float>(std::exp(static_cast<double>(l[i] - m)) / z);
  };
  softmax(ref.logits(), p1);
  std::vector<double> expected(vocab * vocab, 0.0);
  for (token_id x = 1; x < 5; ++x) {
    REQUIRE(ref.append(std::vector<token_id>{x}) == errc::ok);
    softmax(ref.logits(), p2);
    for (std::size_t y = 1; y < vocab; ++y)
      expected[static_cast<std::size_t>(x) * vocab + y] =
          static_cast<double>(p1[static_cast<std::size_t>(x)] * p2[y]) * runs;
    REQUIRE(ref.rewind(1) == errc::ok);
  }
  std::vector<double> seen(vocab * vocab, 0.0);
  tandem::generation_options g;
  g.max_tokens = 2;
  for (std::size_t i = 0; i < runs; ++i) {
    truth_model target(a, truth, 1, noise), inner(b, " " + truth, 2, noise);
    const token_id bos[] = {0};
    auto drafter = tandem::text_drafter<truth_model, tandem::categorical_sampler, piece_vocab,
                                        piece_vocab>::create(inner, {1.0f, 77 + i}, b, a, bos);
    REQUIRE(drafter);
    tandem::speculative_decoder<truth_model, std::remove_reference_t<decltype(*drafter)>,
                                tandem::fixed_draft>
        dec(target, *drafter, tandem::fixed_draft{3}, tandem::speculative_options{1000 + i});
    tandem::categorical_sampler s(1.0f, 7 * i + 1);
    tandem::completion c;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    REQUIRE(c.tokens.size() == 2);
    seen[static_cast<std::size_t>(c.tokens[0]) * vocab + static_cast<std::size_t>(c.tokens[1])] +=
        1;
  }
  double chi = 0;
  for (std::size_t i = 0; i < seen.size(); ++i)
    if (expected[i] > 0) chi += (seen[i] - expected[i]) * (seen[i] - expected[i]) / expected[i];
  // 15 degrees of freedom: P(chi-square > 37.70) = 0.001.
  CHECK(chi < 37.70);
}

TEST_CASE("cross-tokenizer: the text drafter rejects bad options and mismatched tokenizers",
          "[speculative][cross_tokenizer]") {
  const piece_vocab a = letters_plus({"the", "and"});
  const piece_vocab b = letters_plus({"th"});
  truth_model inner(b, "the ", 1);
  using drafter_t =
      tandem::text_drafter<truth_model, tandem::greedy_sampler, piece_vocab, piece_vocab>;
  tandem::error_info info;
  tandem::text_drafter_options o;
  o.lookback = 0;
  CHECK(drafter_t::create(inner, {}, b, a, {}, o, &info).error() == errc::invalid_argument);
  CHECK(info.context() == "text_drafter: lookback 0 outside [1, 64]");
  CHECK(drafter_t::create(inner, {}, a, a, {}, {}, &info).error() == errc::vocab_mismatch);
  piece_vocab odd = letters_plus({});
  odd.pieces[1] = "x";  // " " is gone: "a" still spells back, but a leading space cannot
  odd.leading_space = true;
  truth_model odd_inner(odd, "a", 1);
  CHECK(drafter_t::create(odd_inner, {}, odd, a, {}, {}, &info).error() == errc::invalid_argument);
}
