// Vocabulary maps between the two fixture sentencepiece tokenizers trained on the KJV
// corpus (BPE, 4000 pieces; unigram, 2000 pieces), and contrastive decoding across them:
// an n-gram expert over the BPE vocabulary against an n-gram amateur over the unigram
// vocabulary, presented in BPE ids through mapped_model.
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/backends/sentencepiece.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::errc;
using tandem::sentencepiece_tokenizer;
using tandem::token_id;

struct fixtures {
  sentencepiece_tokenizer bpe = *sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_BPE4000);
  sentencepiece_tokenizer uni = *sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_UNIGRAM2000);
  tandem::vocab_map map = *tandem::vocab_map::build(
      bpe.vocab_size(), tandem::piece_source_of(bpe), tandem::piece_style::sentencepiece,
      uni.vocab_size(), tandem::piece_source_of(uni), tandem::piece_style::sentencepiece);
};

const fixtures& fx() {
  static const fixtures f;
  return f;
}

std::vector<std::string> heldout_lines(std::size_t n) {
  std::ifstream in(TANDEM_FIXTURE_KJV_HELDOUT);
  std::vector<std::string> out;
  std::string line;
  while (out.size() < n && std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("vocab map (sentencepiece): BPE 4000 and unigram 2000 map by piece text",
          "[contrastive][vocab_map][spm]") {
  const auto& f = fx();
  REQUIRE(f.map.from_size() == 4000);
  REQUIRE(f.map.to_size() == 2000);
  const auto fwd = f.map.coverage();
  const auto back = f.map.reversed().coverage();
  WARN("BPE4000 -> unigram2000: " << fwd.mapped << " of " << fwd.from_size << " mapped ("
                                  << fwd.fraction() << "), text " << fwd.mapped_text << ", byte "
                                  << fwd.mapped_byte << ", special " << fwd.mapped_special
                                  << ", round trips " << fwd.round_trips);
  WARN("unigram2000 -> BPE4000: " << back.mapped << " of " << back.from_size << " mapped ("
                                  << back.fraction() << "), round trips " << back.round_trips);
  // Every byte token and the shared specials match; the smaller vocabulary is covered far
  // better than the larger one.
  CHECK(fwd.mapped_byte == 256);
  CHECK(back.mapped_byte == 256);
  CHECK(fwd.mapped_special >= 3);  // <unk>, <s>, </s>
  CHECK(back.fraction() > fwd.fraction());
  CHECK(back.fraction() > 0.5);
  // Round trips: every mapped token comes back to itself (both vocabularies hold each
  // text once).
  CHECK(fwd.round_trips == fwd.mapped);
  CHECK(back.round_trips == back.mapped);
  // Every mapped pair spells the same text.
  std::string a, b;
  for (token_id id = 0; id < 4000; ++id) {
    const auto m = f.map.map_token(id);
    if (!m) continue;
    a.clear();
    b.clear();
    REQUIRE(f.bpe.piece(id, a) == errc::ok);
    REQUIRE(f.uni.piece(*m, b) == errc::ok);
    CHECK(a == b);
  }
}

TEST_CASE("vocab map (sentencepiece): a mapped token sequence decodes to the same text",
          "[contrastive][vocab_map][spm]") {
  const auto& f = fx();
  std::size_t fully_mapped = 0;
  for (const auto& line : heldout_lines(200)) {
    std::vector<token_id> ids;
    REQUIRE(f.uni.encode(line, ids) == errc::ok);
    std::vector<token_id> mapped(ids.size());
    const auto rev = f.map.reversed();
    if (rev.map_tokens(ids, mapped) != errc::ok) continue;
    ++fully_mapped;
    std::string x, y;
    REQUIRE(f.uni.decode(ids, x) == errc::ok);
    REQUIRE(f.bpe.decode(mapped, y) == errc::ok);
    CHECK(x == y);
  }
  WARN("held-out lines whose unigram tokens all map to BPE tokens: " << fully_mapped << " of 200");
  CHECK(fully_mapped > 100);
}

TEST_CASE("contrastive across tokenizers: an n-gram expert against a mapped n-gram amateur",
          "[contrastive][vocab_map][spm]") {
  const auto& f = fx();
  // Train both on the same short slice of the corpus, each with its own tokenizer.
  std::ifstream in(TANDEM_DATA_DIR "/kjv/train.txt");
  std::string line;
  tandem::ngram_options pe{4, f.bpe.vocab_size(), f.bpe.bos_id(), f.bpe.eos_id()};
  tandem::ngram_options pa{2, f.uni.vocab_size(), f.uni.bos_id(), f.uni.eos_id()};
  auto be = tandem::ngram_builder::create(pe);
  auto ba = tandem::ngram_builder::create(pa);
  REQUIRE(be);
  REQUIRE(ba);
  for (int n = 0; n < 3000 && std::getline(in, line); ++n) {
    std::vector<token_id> x, y;
    REQUIRE(f.bpe.encode(line, x) == errc::ok);
    REQUIRE(f.uni.encode(line, y) == errc::ok);
    REQUIRE(be->add_sentence(x) == errc::ok);
    REQUIRE(ba->add_sentence(y) == errc::ok);
  }
  const auto me = be->build();
  const auto ma = ba->build();
  REQUIRE(me);
  REQUIRE(ma);
  tandem::ngram_session expert(*me), amateur_inner(*ma);
  auto amateur = tandem::mapped_model<tandem::ngram_session>::create(amateur_inner, f.map);
  REQUIRE(amateur);
  auto cd = tandem::make_contrastive(expert, *amateur);
  REQUIRE(cd);
  const token_id prompt[] = {f.bpe.bos_id()};
  tandem::greedy_sampler s;
  tandem::completion out;
  tandem::generation_options g;
  g.max_tokens = 40;
  REQUIRE(tandem::generate(*cd, s, prompt, g, out) == errc::ok);
  CHECK(out.tokens.size() == 40);
  for (const token_id t : out.tokens) CHECK(f.map.map_token(t).has_value());
  CHECK(expert.size() == amateur_inner.size());
  std::string text;
  REQUIRE(f.bpe.decode(out.tokens, text) == errc::ok);
  WARN("contrastive (BPE expert, mapped unigram amateur): " << text);
}

TEST_CASE(
    "speculative contrastive on KJV n-gram models: a drafter leaves the greedy output unchanged",
    "[contrastive][speculative][spm]") {
  const auto& f = fx();
  std::ifstream in(TANDEM_DATA_DIR "/kjv/train.txt");
  std::string line;
  const std::size_t v = f.bpe.vocab_size();
  auto b5 = tandem::ngram_builder::create({5, v, f.bpe.bos_id(), f.bpe.eos_id()});
  auto b2 = tandem::ngram_builder::create({2, v, f.bpe.bos_id(), f.bpe.eos_id()});
  auto b3 = tandem::ngram_builder::create({3, v, f.bpe.bos_id(), f.bpe.eos_id()});
  for (int n = 0; n < 4000 && std::getline(in, line); ++n) {
    std::vector<token_id> x;
    REQUIRE(f.bpe.encode(line, x) == errc::ok);
    REQUIRE(b5->add_sentence(x) == errc::ok);
    REQUIRE(b2->add_sentence(x) == errc::ok);
    REQUIRE(b3->add_sentence(x) == errc::ok);
  }
  const auto m5 = *b5->build();
  const auto m2 = *b2->build();
  const auto m3 = *b3->build();
  std::vector<token_id> prompt{f.bpe.bos_id()};
  REQUIRE(f.bpe.encode("And the LORD said", prompt) == errc::ok);
  tandem::generation_options g;
  g.max_tokens = 48;
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::contrastive_options p;
    p.form = form;
    tandem::ngram_session e1(m5), a1(m2);
    auto plain = tandem::make_contrastive(e1, a1, p);
    REQUIRE(plain);
    tandem::greedy_sampler s1;
    tandem::completion ref;
    REQUIRE(tandem::generate(*plain, s1, prompt, g, ref) == errc::ok);

    tandem::ngram_session e2(m5), a2(m2), d(m3);
    auto target = tandem::make_contrastive(e2, a2, p);
    REQUIRE(target);
    tandem::model_drafter<tandem::ngram_session, tandem::greedy_sampler> drafter(
        d, tandem::greedy_sampler{});
    using target_t = tandem::contrastive_model<tandem::ngram_session, tandem::ngram_session>;
    tandem::speculative_decoder<target_t, decltype(drafter), tandem::fixed_draft> dec(
        *target, drafter, tandem::fixed_draft{4});
    tandem::greedy_sampler s2;
    tandem::completion out;
    REQUIRE(dec.generate(s2, prompt, g, out) == errc::ok);
    CHECK(out.tokens == ref.tokens);
    WARN("speculative contrastive ("
         << (form == tandem::contrastive_form::li2022 ? "Li" : "O'Brien")
         << "), order-3 drafter: acceptance " << dec.stats().acceptance_rate()
         << ", tokens per round " << dec.stats().tokens_per_round());
  }
}

namespace {

// An order-4 n-gram target over the BPE vocabulary and an order-3 draft over the unigram
// one, trained on the same slice of the corpus.
struct ngram_pair {
  tandem::ngram_model target, draft;
};

const ngram_pair& trained_pair() {
  static const ngram_pair p = [] {
    const auto& f = fx();
    std::ifstream in(TANDEM_DATA_DIR "/kjv/train.txt");
    std::string line;
    auto bt =
        tandem::ngram_builder::create({4, f.bpe.vocab_size(), f.bpe.bos_id(), f.bpe.eos_id()});
    auto bd =
        tandem::ngram_builder::create({3, f.uni.vocab_size(), f.uni.bos_id(), f.uni.eos_id()});
    for (int n = 0; n < 3000 && std::getline(in, line); ++n) {
      std::vector<token_id> x, y;
      (void)f.bpe.encode(line, x);
      (void)f.uni.encode(line, y);
      (void)bt->add_sentence(x);
      (void)bd->add_sentence(y);
    }
    return ngram_pair{*bt->build(), *bd->build()};
  }();
  return p;
}

}  // namespace

TEST_CASE(
    "speculative across tokenizers: a mapped unigram drafter leaves a BPE target's greedy output "
    "unchanged",
    "[contrastive][vocab_map][speculative][spm]") {
  const auto& f = fx();
  const auto& mt = trained_pair().target;
  const auto& md = trained_pair().draft;
  std::vector<token_id> prompt{f.bpe.bos_id()};
  REQUIRE(f.bpe.encode("And God said", prompt) == errc::ok);
  tandem::generation_options g;
  g.max_tokens = 40;

  tandem::ngram_session alone(mt);
  tandem::greedy_sampler s1;
  tandem::completion ref;
  REQUIRE(tandem::generate(alone, s1, prompt, g, ref) == errc::ok);

  tandem::ngram_session target(mt), draft_inner(md);
  auto draft = tandem::mapped_model<tandem::ngram_session>::create(draft_inner, f.map);
  REQUIRE(draft);
  using draft_t = tandem::mapped_model<tandem::ngram_session>;
  tandem::model_drafter<draft_t, tandem::greedy_sampler> drafter(*draft, tandem::greedy_sampler{});
  tandem::speculative_decoder<tandem::ngram_session, decltype(drafter), tandem::fixed_draft> dec(
      target, drafter, tandem::fixed_draft{3});
  tandem::greedy_sampler s2;
  tandem::completion out;
  REQUIRE(dec.generate(s2, prompt, g, out) == errc::ok);
  CHECK(out.tokens == ref.tokens);
  CHECK(dec.stats().accepted > 0);
  WARN("unigram-2000 drafter for a BPE-4000 target through the vocab map: acceptance "
       << dec.stats().acceptance_rate());
}

TEST_CASE(
    "speculative across tokenizers: long runs that leave the vocabulary intersection keep "
    "greedy output unchanged, with a mapped and with a text drafter",
    "[contrastive][vocab_map][speculative][spm]") {
  const auto& f = fx();
  const auto& p = trained_pair();
  tandem::generation_options g;
  g.max_tokens = 48;
  std::size_t outside = 0, mapped_accepted = 0, text_accepted = 0, drafted_m = 0, drafted_t = 0;
  const auto lines = heldout_lines(24);
  for (const std::string& line : lines) {
    // The first half of a held-out line is the prompt.
    std::vector<token_id> prompt{f.bpe.bos_id()};
    REQUIRE(f.bpe.encode(std::string_view(line).substr(0, line.size() / 2), prompt) == errc::ok);
    tandem::ngram_session alone(p.target);
    tandem::greedy_sampler s0;
    tandem::completion ref;
    REQUIRE(tandem::generate(alone, s0, prompt, g, ref) == errc::ok);
    for (const token_id t : ref.tokens) outside += f.map.map_token(t).has_value() ? 0 : 1;

    tandem::ngram_session t1(p.target), d1(p.draft);
    using mapped = tandem::mapped_model<tandem::ngram_session>;
    auto md = mapped::create(d1, f.map);
    REQUIRE(md);
    tandem::model_drafter<mapped, tandem::greedy_sampler> drafter(*md, tandem::greedy_sampler{});
    tandem::speculative_decoder<tandem::ngram_session, decltype(drafter), tandem::fixed_draft> dec(
        t1, drafter, tandem::fixed_draft{3});
    tandem::greedy_sampler s1;
    tandem::completion out;
    REQUIRE(dec.generate(s1, prompt, g, out) == errc::ok);
    CHECK(out.tokens == ref.tokens);
    mapped_accepted += dec.stats().accepted;
    drafted_m += dec.stats().drafted;

    tandem::ngram_session t2(p.target), d2(p.draft);
    const token_id bos[] = {f.uni.bos_id()};
    using text_t = tandem::text_drafter<tandem::ngram_session, tandem::greedy_sampler,
                                        sentencepiece_tokenizer, sentencepiece_tokenizer>;
    auto td = text_t::create(d2, {}, f.uni, f.bpe, bos);
    REQUIRE(td);
    tandem::speculative_decoder<tandem::ngram_session, text_t, tandem::fixed_draft> dec2(
        t2, *td, tandem::fixed_draft{3});
    tandem::greedy_sampler s2;
    tandem::completion out2;
    REQUIRE(dec2.generate(s2, prompt, g, out2) == errc::ok);
    CHECK(out2.tokens == ref.tokens);
    text_accepted += dec2.stats().accepted;
    drafted_t += dec2.stats().drafted;
  }
  CHECK(outside >= 20);  // the runs leave the intersection many times
  CHECK(mapped_accepted > 0);
  CHECK(text_accepted > 0);
  WARN("BPE target tokens outside the intersection: "
       << outside << " of " << lines.size() * g.max_tokens << "; accepted/drafted, mapped drafter "
       << mapped_accepted << "/" << drafted_m << ", text drafter " << text_accepted << "/"
       << drafted_t);
}
