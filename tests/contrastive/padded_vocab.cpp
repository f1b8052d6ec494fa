// Tests of padded vocabularies: two vocabularies of the same tokenizer that differ only by
// padding entries (as Qwen2.5 0.5B's 151,936 and 7B's 152,064 logits) are told apart from
// really different tokenizers by their token texts; padded_model masks the padding, and
// the pair then works for speculative and contrastive decoding.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "speculative/text_mocks.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::piece_vocab;
using tandem_test::truth_model;

piece_vocab base() {
  piece_vocab v;
  v.pieces = {"<s>", " ", "a", "b", "d", "e", "h", "n", "o", "t", "the", " and", "of"};
  return v;
}

piece_vocab padded(std::size_t extra) {
  piece_vocab v = base();
  v.pads_from = v.pieces.size();
  for (std::size_t i = 0; i < extra; ++i)
    v.pieces.push_back("[PAD" + std::to_string(v.pieces.size()) + "]");
  return v;
}

const std::string truth = "the and of the and the of and and the of the ";

using tandem_test::generate_tokens;
using tandem_test::speculative_tokens;

}  // namespace

TEST_CASE("padded vocabularies: padding is told apart from a different tokenizer by token texts",
          "[contrastive][padded]") {
  const piece_vocab a = base(), b = padded(5);
  auto p =
      tandem::match_padded_vocabularies(a.vocab_size(), a.source(), b.vocab_size(), b.source());
  REQUIRE(p);
  CHECK(p->shared == a.vocab_size());
  CHECK(p->padded());
  auto q =
      tandem::match_padded_vocabularies(b.vocab_size(), b.source(), a.vocab_size(), a.source());
  REQUIRE(q);
  CHECK(q->shared == a.vocab_size());
  CHECK(q->a_size == b.vocab_size());
  auto same =
      tandem::match_padded_vocabularies(a.vocab_size(), a.source(), a.vocab_size(), a.source());
  REQUIRE(same);
  CHECK(!same->padded());

  tandem::error_info info;
  piece_vocab other = padded(5);
  other.pieces[10] = "tha";  // same size, one token differs: another tokenizer
  CHECK(tandem::match_padded_vocabularies(other.vocab_size(), other.source(), b.vocab_size(),
                                          b.source(), &info)
            .error() == errc::vocab_mismatch);
  CHECK(info.context() ==
        "different tokenizers: token 10 is \"tha\" in vocabulary a (18 tokens) and \"the\" in "
        "vocabulary b (18 tokens)");
  piece_vocab grown = base();
  grown.pieces.push_back("and");  // a real extra token, not padding
  CHECK(tandem::match_padded_vocabularies(a.vocab_size(), a.source(), grown.vocab_size(),
                                          grown.source(), &info)
            .error() == errc::vocab_mismatch);
  CHECK(info.context() ==
        "different tokenizers: vocabulary b has 14 tokens, the other 13, and its token 13 "
        "(\"and\") is not padding");
}

TEST_CASE(
    "padded vocabularies: padding is never sampled and the pair decodes speculatively "
    "and contrastively",
    "[contrastive][padded][speculative]") {
  const piece_vocab small = base(), big = padded(6);
  const std::size_t n = small.vocab_size();
  const float noise = 12.0f;  // padding competes with the text
  {
    truth_model raw(big, truth, 1, noise);
    tandem::categorical_sampler s(1.0f, 5);
    const auto out = generate_tokens(raw, s, 300);
    CHECK(std::any_of(out.begin(), out.end(), [&](token_id t) { return t >= token_id(n); }));
  }
  truth_model big_alone(big, truth, 1, noise);
  auto masked_alone = tandem::padded_model<truth_model>::create(big_alone, n, n);
  REQUIRE(masked_alone);
  tandem::categorical_sampler s1(1.0f, 5);
  const auto sampled = generate_tokens(*masked_alone, s1, 300);
  CHECK(std::none_of(sampled.begin(), sampled.end(), [&](token_id t) { return t >= token_id(n); }));
  REQUIRE(big_alone.rewind(big_alone.size()) == errc::ok);
  tandem::greedy_sampler g0;
  const auto ref = generate_tokens(*masked_alone, g0, 200);

  // Target masked down to the shared vocabulary, draft as it is.
  {
    truth_model target(big, truth, 1, noise), draft(small, truth, 2, noise);
    auto t = tandem::padded_model<truth_model>::create(target, n, n);
    REQUIRE(t);
    tandem::model_drafter<truth_model, tandem::greedy_sampler> d(draft, tandem::greedy_sampler{});
    tandem::speculative_stats st;
    CHECK(speculative_tokens(*t, d, 200, &st) == ref);
    CHECK(st.accepted > 0);
  }
  // Draft padded up to the target's size, the target masked in place.
  {
    truth_model target(big, truth, 1, noise), draft(small, truth, 2, noise);
    auto t = tandem::padded_model<truth_model>::create(target, big.vocab_size(), n);
    auto dp = tandem::padded_model<truth_model>::create(draft, big.vocab_size(), n);
    REQUIRE(t);
    REQUIRE(dp);
    using draft_t = tandem::padded_model<truth_model>;
    tandem::model_drafter<draft_t, tandem::greedy_sampler> d(*dp, tandem::greedy_sampler{});
    CHECK(speculative_tokens(*t, d, 200) == ref);
  }
  // Contrastive decoding: the big model as expert, the small one as amateur.
  {
    truth_model expert(big, truth, 1, noise), amateur(small, truth, 2, noise);
    auto e = tandem::padded_model<truth_model>::create(expert, n, n);
    REQUIRE(e);
    auto cd = tandem::make_contrastive(*e, amateur);
    REQUIRE(cd);
    tandem::greedy_sampler g;
    const auto out = generate_tokens(*cd, g, 100);
    CHECK(out.size() == 100);
    CHECK(std::none_of(out.begin(), out.end(), [&](token_id t) { return t >= token_id(n); }));
  }
  tandem::error_info info;
  truth_model m(small, truth, 1);
  CHECK(tandem::padded_model<truth_model>::create(m, 4, 5, &info).error() ==
        errc::invalid_argument);
  CHECK(info.context() == "padded_model: shared 5 must lie in [1, min(4, 13)]");
}
