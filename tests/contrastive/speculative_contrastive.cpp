// Speculative contrastive decoding: a small drafter ahead of a contrastive target gives
// token for token the target's own greedy output.
#include <cstddef>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "contrastive/hash_model.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::hash_model;

tandem_test::hash_options opts(std::uint64_t seed) {
  tandem_test::hash_options o;
  o.seed = seed;
  o.vocab = 48;
  return o;
}

}  // namespace

TEST_CASE(
    "speculative contrastive: the drafted output equals the contrastive model's greedy output",
    "[contrastive][speculative]") {
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::contrastive_options p;
    p.form = form;
    const token_id prompt[] = {3, 1, 4};
    tandem::generation_options g;
    g.max_tokens = 60;

    hash_model e1(opts(1)), a1(opts(2));
    auto plain = tandem::make_contrastive(e1, a1, p);
    REQUIRE(plain);
    tandem::greedy_sampler s1;
    tandem::completion ref;
    REQUIRE(tandem::generate(*plain, s1, prompt, g, ref) == errc::ok);

    // The drafter is the expert's own seed: it agrees often but not always.
    hash_model e2(opts(1)), a2(opts(2)), draft_model(opts(1));
    auto target = tandem::make_contrastive(e2, a2, p);
    REQUIRE(target);
    tandem::model_drafter<hash_model, tandem::greedy_sampler> drafter(draft_model,
                                                                      tandem::greedy_sampler{});
    tandem::greedy_sampler s2;
    tandem::completion out;
    using target_t = tandem::contrastive_model<hash_model, hash_model>;
    tandem::speculative_decoder<target_t, decltype(drafter), tandem::fixed_draft> dec(
        *target, drafter, tandem::fixed_draft{4});
    REQUIRE(dec.generate(s2, prompt, g, out) == errc::ok);
    CHECK(out.tokens == ref.tokens);
    CHECK(dec.stats().accepted > 0);                    // the drafter helped
    CHECK(dec.stats().accepted < dec.stats().drafted);  // and was corrected
    CHECK(e2.size() == a2.size());
  }
}
