// write_your_backend: a complete custom tandem::LanguageModel, checked by the concept and
// by tandem's conformance suite, driven by tandem::generate, and verified by speculative
// decoding.
//
// Any type with four members is a LanguageModel: vocab_size(), size(), append(tokens) and
// logits(). Two optional members unlock more of tandem: rewind(n) (Rewindable) and
// score(tokens, rows) (Scoring); with both, the model can be the target (or, with rewind,
// the drafter) of speculative decoding. context_length() (HasContextLength) lets the
// generation loop stop cleanly at a full context. No base class, no virtual functions.
// The concepts check the members' signatures; the conformance suite
// (<tandem/testing/conformance.hpp>) checks their behaviour: batched and step-by-step
// logits agree, errors change nothing, rewind restores, and so on.
//
// The model below is a byte-level bigram model, P(next byte | previous byte), counted
// from the KJV corpus bundled with tandem. It stands in for your engine: keep the
// member functions, replace their bodies with your engine's calls.
//
//   write_your_backend [--data DIR] [--prompt TEXT] [--tokens N]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/drafter.hpp"
#include "tandem/testing/conformance.hpp"

using tandem::errc;
using tandem::token_id;

// ---- The backend ------------------------------------------------------------------------
class bigram_model {
 public:
  static constexpr std::size_t vocab = 256, max_tokens = 4096;

  explicit bigram_model(std::string_view text) : logp_(vocab * vocab) {
    std::vector<double> n(vocab * vocab, 1.0);  // add-one smoothing
    for (std::size_t i = 1; i < text.size(); ++i)
      n[static_cast<unsigned char>(text[i - 1]) * vocab + static_cast<unsigned char>(text[i])] += 1;
    for (std::size_t a = 0; a < vocab; ++a) {
      double total = 0;
      for (std::size_t b = 0; b < vocab; ++b) total += n[a * vocab + b];
      for (std::size_t b = 0; b < vocab; ++b)
        logp_[a * vocab + b] = static_cast<float>(std::log(n[a * vocab + b] / total));
    }
    history_.reserve(max_tokens);  // sized once: append never allocates
  }

  // Required (tandem::LanguageModel).
  std::size_t vocab_size() const noexcept { return vocab; }
  std::size_t size() const noexcept { return history_.size(); }
  errc append(std::span<const token_id> t) noexcept {
    if (t.empty()) return errc::empty_input;
    for (token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= vocab) return errc::invalid_token;
    if (t.size() > max_tokens - history_.size()) return errc::context_overflow;
    history_.insert(history_.end(), t.begin(), t.end());  // on error, nothing changed
    return errc::ok;
  }
  std::span<const float> logits() const noexcept {
    return row(history_.empty() ? 0 : history_.back());
  }

  // Optional: rewind (tandem::Rewindable), score (tandem::Scoring), context_length.
  errc rewind(std::size_t n) noexcept {
    if (n > history_.size()) return errc::rewind_out_of_range;
    history_.resize(history_.size() - n);
    return errc::ok;
  }
  errc score(std::span<const token_id> t, std::span<float> rows) noexcept {
    if (rows.size() != t.size() * vocab) return errc::size_mismatch;
    if (errc e = append(t); e != errc::ok) return e;
    for (std::size_t i = 0; i < t.size(); ++i)
      std::memcpy(rows.data() + i * vocab, row(t[i]).data(), vocab * sizeof(float));
    return errc::ok;
  }
  std::size_t context_length() const noexcept { return max_tokens; }

 private:
  std::span<const float> row(token_id prev) const noexcept {
    return std::span<const float>(logp_).subspan(static_cast<std::size_t>(prev) * vocab, vocab);
  }
  std::vector<float> logp_;  // log P(b | a) at [a * vocab + b]
  std::vector<token_id> history_;
};

static_assert(tandem::LanguageModel<bigram_model>);
static_assert(tandem::Rewindable<bigram_model> && tandem::Scoring<bigram_model>);
static_assert(tandem::SpeculativeTarget<bigram_model>);
static_assert(tandem::HasContextLength<bigram_model>);

// A byte tokenizer to go with it (tandem::Tokenizer): token id = byte value.
struct byte_tokenizer {
  std::size_t vocab_size() const noexcept { return 256; }
  errc encode(std::string_view text, std::vector<token_id>& ids) const {
    for (char c : text) ids.push_back(static_cast<unsigned char>(c));
    return errc::ok;
  }
  errc decode(std::span<const token_id> ids, std::string& out) const {
    for (token_id id : ids)
      if (id < 0 || id > 255) return errc::invalid_token;
    for (token_id id : ids) out += static_cast<char>(id);
    return errc::ok;
  }
  errc piece(token_id id, std::string& out) const {
    if (id < 0 || id > 255) return errc::invalid_token;
    out += static_cast<char>(id);
    return errc::ok;
  }
};
static_assert(tandem::Tokenizer<byte_tokenizer>);

// ---- Using it ---------------------------------------------------------------------------
namespace {

int fail(const char* what, errc e) {
  std::fprintf(stderr, "write_your_backend: %s: %s\n", what, tandem::to_string(e).data());
  return 1;
}

int usage() {
  std::fprintf(stderr, "usage: write_your_backend [--data DIR] [--prompt TEXT] [--tokens N]\n");
  return 2;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = TANDEM_EXAMPLE_DATA_DIR, prompt = "And God said, ";
  std::size_t n_tokens = 80;
  if (argc % 2 == 0) return usage();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--data")
      data = argv[i + 1];
    else if (flag == "--prompt")
      prompt = argv[i + 1];
    else if (flag == "--tokens")
      n_tokens = static_cast<std::size_t>(std::strtoul(argv[i + 1], nullptr, 10));
    else
      return usage();
  }
  const std::string corpus = read_file(data + "/kjv/train.txt");
  if (corpus.empty()) return fail("cannot read <data>/kjv/train.txt (set --data)", errc::io_error);

  // 0. Check the backend's behaviour against tandem's contract (docs/backends.md, "Checking
  //    your backend"): the suite makes fresh sessions with the lambda and compares them.
  // [conformance]
  const bigram_model empty_model(corpus);
  tandem::conformance_options checks;
  checks.tolerance = tandem::conformance_tolerance::exact();  // a table: the same floats
  tandem::conformance_report report =
      tandem::check_language_model([&] { return empty_model; }, checks);
  report.append(tandem::check_tokenizer(byte_tokenizer{}, {"And God said, ", "caf\xc3\xa9"}));
  if (report.print(stdout) != errc::ok || !report.passed()) {
    std::fprintf(stderr, "write_your_backend: the backend does not conform\n");
    return 1;
  }
  // [conformance end]

  byte_tokenizer tok;
  std::vector<token_id> ids;
  if (errc e = tok.encode(prompt, ids); e != errc::ok) return fail("encode", e);
  const token_id newline[] = {'\n'};
  tandem::generation_options opts;
  opts.max_tokens = n_tokens;
  opts.stop_tokens = newline;  // one verse a line: stop at the end of the line

  // 1. Plain generation, greedy then sampled (seeded: the same text every run).
  bigram_model model(corpus);
  tandem::greedy_sampler greedy;
  tandem::completion greedy_out, sampled_out;
  if (errc e = tandem::generate(model, tok, greedy, ids, opts, greedy_out); e != errc::ok)
    return fail("generate", e);
  std::printf("greedy : %s%s  [%zu tokens, finish=%s]\n", prompt.c_str(), greedy_out.text.c_str(),
              greedy_out.tokens.size(), tandem::to_string(greedy_out.finish).data());

  bigram_model model2(corpus);
  tandem::categorical_sampler sampler(0.8f, /*seed=*/7);
  if (errc e = tandem::generate(model2, tok, sampler, ids, opts, sampled_out); e != errc::ok)
    return fail("generate", e);
  std::printf("sampled: %s%s  [%zu tokens, finish=%s]\n", prompt.c_str(), sampled_out.text.c_str(),
              sampled_out.tokens.size(), tandem::to_string(sampled_out.finish).data());

  // 2. Speculative decoding: the same backend is the target (it has rewind and score) and,
  //    counted from the first tenth of the corpus only, the drafter.
  bigram_model target(corpus), draft_model(std::string_view(corpus).substr(0, corpus.size() / 10));
  tandem::model_drafter drafter(draft_model, tandem::greedy_sampler{});
  tandem::speculative_decoder decoder(target, drafter);
  tandem::greedy_sampler verify;
  tandem::completion spec_out;
  if (errc e = decoder.generate(tok, verify, ids, opts, spec_out); e != errc::ok)
    return fail("speculative generate", e);
  const tandem::speculative_stats& st = decoder.stats();
  std::printf("speculative: %s%s\n", prompt.c_str(), spec_out.text.c_str());
  std::printf(
      "speculative: identical to greedy: %s, acceptance %.3f, %zu target calls for %zu "
      "tokens\n",
      spec_out.tokens == greedy_out.tokens ? "yes" : "NO", st.acceptance_rate(), st.target_calls,
      spec_out.tokens.size());
  return spec_out.tokens == greedy_out.tokens ? 0 : 1;
}
