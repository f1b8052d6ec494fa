// Draft and target GGUF models whose vocabularies differ, through the llama.cpp adapter:
// a vocabulary padded with unused [PAD<id>] entries (tandem-make-gguf --pad-vocab) against
// the same vocabulary unpadded, told apart from another tokenizer by token texts; and
// models over two different sentencepiece tokenizers (the BPE 4000 and unigram 2000
// fixtures) drafting through text. Greedy output must equal target-only greedy output.
#include <filesystem>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "gguf_writer.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::token_id;
namespace fs = std::filesystem;
namespace tt = tandem::tools;

const fs::path& scratch() {
  static tandem_test::scratch_dir dir("tandem-spec-cross-test-");
  return dir.path();
}

tandem::llama_model_handle load(const std::string& name, const tt::vocab_spec& vocab,
                                std::uint32_t embd, std::uint64_t seed) {
  tandem::llama_quiet_logs();
  tt::tiny_llama_config cfg;
  cfg.n_embd = embd;
  cfg.n_layer = 2;
  cfg.n_ff = 2 * embd;
  cfg.seed = seed;
  auto m =
      tandem::llama_model_handle::load(tandem_test::write_tiny_gguf(scratch(), name, cfg, vocab));
  REQUIRE(m.has_value());
  return std::move(*m);
}

tandem::llama_session session(const tandem::llama_model_handle& m) {
  tandem::llama_session_options o;
  o.threads = 1;
  o.context_size = 256;
  auto s = tandem::llama_session::create(m, o);
  REQUIRE(s.has_value());
  return std::move(*s);
}

}  // namespace

TEST_CASE(
    "padded GGUF vocabularies: detected by token texts, padding masked, speculative "
    "greedy exact",
    "[speculative][llama_cpp][padded]") {
  tt::vocab_spec plain = tt::builtin_vocab();
  (void)tt::ensure_byte_tokens(plain);
  tt::vocab_spec padded = plain;
  const std::size_t n = plain.entries.size();
  REQUIRE(tt::pad_vocab(padded, n + 40) == 40);
  const auto target_model = load("padded-target.gguf", padded, 96, 11);
  const auto draft_model = load("plain-draft.gguf", plain, 64, 7);
  const tandem::llama_tokenizer tt_tok(target_model), td_tok(draft_model);
  REQUIRE(tt_tok.vocab_size() == n + 40);
  CHECK(tt_tok.is_unused(static_cast<token_id>(n)));
  CHECK(!tt_tok.is_unused(static_cast<token_id>(n - 1)));

  tandem::error_info info;
  auto p = tandem::match_padded_vocabularies(td_tok.vocab_size(), tandem::piece_source_of(td_tok),
                                             tt_tok.vocab_size(), tandem::piece_source_of(tt_tok),
                                             &info);
  REQUIRE(p);
  CHECK(p->shared == n);
  CHECK(p->padded());

  // Another tokenizer of the same size: one piece differs.
  tt::vocab_spec changed = padded;
  changed.entries[300].piece = "\xE2\x96\x81zzqx";
  const auto other_model = load("other.gguf", changed, 64, 3);
  const tandem::llama_tokenizer to_tok(other_model);
  CHECK(tandem::match_padded_vocabularies(tt_tok.vocab_size(), tandem::piece_source_of(tt_tok),
                                          to_tok.vocab_size(), tandem::piece_source_of(to_tok),
                                          &info)
            .error() == errc::vocab_mismatch);
  CHECK(info.context().find("token 300") != std::string::npos);

  std::vector<token_id> prompt{1};
  REQUIRE(tt_tok.encode("the cat and the dog", prompt) == errc::ok);
  tandem::generation_options g;
  g.max_tokens = 32;
  auto ref_session = session(target_model);
  auto ref = tandem::padded_model<tandem::llama_session>::create(ref_session, n, n);
  REQUIRE(ref);
  tandem::greedy_sampler s0;
  completion want;
  REQUIRE(tandem::generate(*ref, s0, prompt, g, want) == errc::ok);
  for (const token_id t : want.tokens) CHECK(t < static_cast<token_id>(n));

  auto target_session = session(target_model);
  auto draft_session = session(draft_model);
  auto target = tandem::padded_model<tandem::llama_session>::create(target_session, n, n);
  REQUIRE(target);
  tandem::model_drafter<tandem::llama_session, tandem::greedy_sampler> drafter(
      draft_session, tandem::greedy_sampler{});
  tandem::speculative_decoder<tandem::padded_model<tandem::llama_session>, decltype(drafter),
                              tandem::fixed_draft>
      dec(*target, drafter, tandem::fixed_draft{4});
  tandem::greedy_sampler s1;
  completion got;
  REQUIRE(dec.generate(s1, prompt, g, got) == errc::ok);
  CHECK(got.tokens == want.tokens);

  // Contrastive decoding across the pair.
  REQUIRE(ref_session.rewind(ref_session.size()) == errc::ok);
  auto amateur = session(draft_model);
  auto cd = tandem::make_contrastive(*ref, amateur);
  REQUIRE(cd);
  tandem::greedy_sampler s2;
  completion c;
  REQUIRE(tandem::generate(*cd, s2, prompt, g, c) == errc::ok);
  CHECK(c.tokens.size() == 32);
}

#ifdef TANDEM_FIXTURE_SPM_BPE4000
TEST_CASE(
    "GGUF models over different sentencepiece tokenizers: a text drafter keeps greedy "
    "output identical",
    "[speculative][llama_cpp][cross_tokenizer]") {
  auto bpe = tt::read_sentencepiece_model(TANDEM_FIXTURE_SPM_BPE4000);
  auto uni = tt::read_sentencepiece_model(TANDEM_FIXTURE_SPM_UNIGRAM2000);
  REQUIRE(bpe);
  REQUIRE(uni);
  const auto target_model = load("bpe-target.gguf", *bpe, 96, 11);
  const auto draft_model = load("unigram-draft.gguf", *uni, 64, 7);
  const tandem::llama_tokenizer tt_tok(target_model), td_tok(draft_model);
  tandem::error_info info;
  CHECK(tandem::match_padded_vocabularies(td_tok.vocab_size(), tandem::piece_source_of(td_tok),
                                          tt_tok.vocab_size(), tandem::piece_source_of(tt_tok),
                                          &info)
            .error() == errc::vocab_mismatch);
  for (const char* text : {"And God said, Let there be light", "In the beginning"}) {
    std::vector<token_id> prompt{*tt_tok.bos()};
    REQUIRE(tt_tok.encode(text, prompt) == errc::ok);
    tandem::generation_options g;
    g.max_tokens = 40;
    auto ref = session(target_model);
    tandem::greedy_sampler s0;
    completion want;
    REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);

    auto target = session(target_model);
    auto draft = session(draft_model);
    const token_id bos[] = {*td_tok.bos()};
    using text_t = tandem::text_drafter<tandem::llama_session, tandem::greedy_sampler,
                                        tandem::llama_tokenizer, tandem::llama_tokenizer>;
    auto drafter = text_t::create(draft, {}, td_tok, tt_tok, bos);
    REQUIRE(drafter);
    tandem::speculative_decoder<tandem::llama_session, text_t, tandem::fixed_draft> dec(
        target, *drafter, tandem::fixed_draft{4});
    tandem::greedy_sampler s1;
    completion got;
    REQUIRE(dec.generate(s1, prompt, g, got) == errc::ok);
    CHECK(got.tokens == want.tokens);
    CHECK(dec.stats().drafted > 0);
    // The draft model's context holds the accepted text, re-tokenized.
    std::string prompt_text;
    REQUIRE(tt_tok.decode(std::span<const token_id>(prompt).subspan(1), prompt_text) == errc::ok);
    CHECK(drafter->text().substr(0, prompt_text.size()) == prompt_text);
  }
}
#endif
