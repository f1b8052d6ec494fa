// contrastive_story: continues a story prompt with greedy decoding and with contrastive
// decoding, and measures how much each repeats itself.
//
// Both models are tandem's built-in Kneser-Ney n-gram models, trained at startup on the
// bundled KJV verses over the project's BPE tokenizer (4,000 pieces, trained by the build
// from the same corpus): the expert has a high order (5), the amateur a low one (2).
// Greedy decoding of the expert alone tends to fall into a loop; contrastive decoding
// (Li et al. 2022) picks, among the tokens the expert finds plausible (p >= alpha max p),
// the one the expert prefers most over the amateur, which favours what the expert knows
// and the amateur does not. With --form obrien the O'Brien & Lewis 2023 form
// (1 + beta) s_E - beta s_A is used instead. A third row shows proxy tuning (Liu et al.
// 2024): the expert steered by the difference between a small model trained on the Psalms
// only ("tuned") and the same small model trained on everything ("base").
//
// For each continuation it prints the text, its repeated-4-gram rate (share of its token
// 4-grams that already occurred earlier in it), distinct-2 (distinct token bigrams over
// all bigrams) and the expert's perplexity of it (lower = more like the corpus).
//
//   contrastive_story [--prompt TEXT]... [--tokens N] [--alpha X] [--beta X] [--tau X]
//                     [--form li|obrien] [--expert-order N] [--amateur-order N]
//                     [--proxy-weight X] [--verses N] [--data DIR] [--tokenizer FILE]
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/backends/ngram_model.hpp"
#include "tandem/backends/sentencepiece.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::errc;
using tandem::token_id;

struct args {
  std::vector<std::string> prompts;
  std::string data = TANDEM_EXAMPLE_DATA_DIR, tokenizer = TANDEM_EXAMPLE_TOKENIZER;
  std::size_t tokens = 64, expert_order = 5, amateur_order = 2, verses = 0;
  tandem::contrastive_options cd{};
  float proxy_weight = 1.0f;
};

int usage(const char* why) {
  std::fprintf(stderr, "contrastive_story: %s\n", why);
  std::fprintf(stderr,
               "usage: contrastive_story [--prompt TEXT]... [--tokens N] [--alpha X] [--beta X]\n"
               "         [--tau X] [--form li|obrien] [--expert-order N] [--amateur-order N]\n"
               "         [--proxy-weight X] [--verses N] [--data DIR] [--tokenizer FILE]\n");
  return 2;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0' && std::isfinite(out);
}

// Repetition statistics of one continuation, on its BPE tokens.
struct repetition {
  double rep4 = 0.0;       // share of 4-grams seen earlier in the same continuation
  double distinct2 = 0.0;  // distinct bigrams / bigrams
};

repetition measure(std::span<const token_id> t) {
  repetition r;
  std::set<std::array<token_id, 4>> seen4;
  std::size_t n4 = 0, rep = 0;
  for (std::size_t i = 0; i + 4 <= t.size(); ++i, ++n4)
    if (!seen4.insert({t[i], t[i + 1], t[i + 2], t[i + 3]}).second) ++rep;
  std::set<std::pair<token_id, token_id>> seen2;
  for (std::size_t i = 0; i + 2 <= t.size(); ++i) seen2.insert({t[i], t[i + 1]});
  r.rep4 = n4 ? static_cast<double>(rep) / static_cast<double>(n4) : 0.0;
  r.distinct2 =
      t.size() >= 2 ? static_cast<double>(seen2.size()) / static_cast<double>(t.size() - 1) : 0.0;
  return r;
}

// The expert's perplexity of `gen` after `prompt` (natural-log probabilities).
double expert_perplexity(const tandem::ngram_model& m, std::span<const token_id> prompt,
                         std::span<const token_id> gen) {
  if (gen.empty()) return 0.0;
  std::vector<token_id> ctx(prompt.begin(), prompt.end());
  double lp = 0.0;
  for (token_id t : gen) {
    lp += m.log_prob(ctx, t).value_or(-50.0);
    ctx.push_back(t);
  }
  return std::exp(-lp / static_cast<double>(gen.size()));
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage("every flag takes a value");
    const char* v = argv[++i];
    double x = 0.0;
    if (flag == "--prompt")
      a.prompts.emplace_back(v);
    else if (flag == "--data")
      a.data = v;
    else if (flag == "--tokenizer")
      a.tokenizer = v;
    else if (flag == "--form" && std::string_view(v) == "li")
      a.cd.form = tandem::contrastive_form::li2022;
    else if (flag == "--form" && std::string_view(v) == "obrien")
      a.cd.form = tandem::contrastive_form::obrien2023;
    else if (!parse_number(v, x))
      return usage("unknown flag, or a numeric flag with a non-numeric value");
    else if (flag == "--alpha")
      a.cd.alpha = static_cast<float>(x);
    else if (flag == "--beta")
      a.cd.beta = static_cast<float>(x);
    else if (flag == "--tau")
      a.cd.amateur_temperature = static_cast<float>(x);
    else if (flag == "--proxy-weight")
      a.proxy_weight = static_cast<float>(x);
    else if (flag == "--tokens" && x >= 1 && x <= 4096)
      a.tokens = static_cast<std::size_t>(x);
    else if (flag == "--expert-order" && x >= 1 && x <= tandem::ngram_max_order)
      a.expert_order = static_cast<std::size_t>(x);
    else if (flag == "--amateur-order" && x >= 1 && x <= tandem::ngram_max_order)
      a.amateur_order = static_cast<std::size_t>(x);
    else if (flag == "--verses" && x >= 0)
      a.verses = static_cast<std::size_t>(x);
    else
      return usage("unknown flag or bad value");
  }
  // The library checks the parameters (and make_contrastive would refuse bad ones too).
  if (tandem::validate(a.cd) != errc::ok)
    return usage("--alpha must be in (0, 1], --beta >= 0, --tau > 0");
  if (tandem::validate(tandem::proxy_tuning_options{a.proxy_weight}) != errc::ok)
    return usage("--proxy-weight must be finite");
  if (a.prompts.empty())
    a.prompts = {"And the LORD said unto Moses,", "In the beginning was the Word,",
                 "And it came to pass, when the king heard"};

  const auto t0 = std::chrono::steady_clock::now();
  auto tok = tandem::sentencepiece_tokenizer::load(a.tokenizer);
  if (!tok) {
    std::fprintf(stderr, "contrastive_story: cannot load tokenizer %s: %s\n", a.tokenizer.c_str(),
                 tandem::to_string(tok.error()).data());
    return 1;
  }
  const token_id bos = tok->bos_id(), eos = tok->eos_id();
  const std::size_t vocab = tok->vocab_size();

  // The corpus, one verse a line, in BPE tokens, in the Bible's order. The Psalms (lines
  // 12,547 to 14,761 of train.txt) also train the proxy-tuning "tuned" model.
  std::vector<std::vector<token_id>> verses, psalms;
  {
    std::ifstream in(a.data + "/kjv/train.txt");
    if (!in) return usage("cannot read <data>/kjv/train.txt (set --data)");
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line) && (a.verses == 0 || verses.size() < a.verses)) {
      std::vector<token_id> ids;
      if (tok->encode(line, ids) != errc::ok) return usage("cannot tokenize the corpus");
      if (n >= 12546 && n < 14761) psalms.push_back(ids);
      ++n;
      verses.push_back(std::move(ids));
    }
  }
  const auto build =
      [&](std::size_t order,
          const std::vector<std::vector<token_id>>& s) -> tandem::result<tandem::ngram_model> {
    auto b = tandem::ngram_builder::create({order, vocab, bos, eos});
    if (!b) return b.error();
    if (errc e = b->add_sentences(s); e != errc::ok) return e;
    return b->build();
  };
  auto expert = build(a.expert_order, verses);
  auto amateur = build(a.amateur_order, verses);
  auto base = build(3, verses);
  auto tuned = build(3, psalms.empty() ? verses : psalms);
  if (!expert || !amateur || !base || !tuned) return usage("training the n-gram models failed");
  std::printf(
      "models: n-gram expert (order %zu) and amateur (order %zu) on %zu KJV verses, BPE "
      "vocabulary %zu; proxy tuning: order-3 tuned on %zu Psalms verses vs base on all; "
      "trained in %.2f s\n",
      a.expert_order, a.amateur_order, verses.size(), vocab, psalms.size(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (a.cd.form == tandem::contrastive_form::li2022)
    std::printf("contrastive: Li et al. 2022, alpha %.3g, amateur temperature %.3g\n", a.cd.alpha,
                a.cd.amateur_temperature);
  else
    std::printf("contrastive: O'Brien & Lewis 2023, alpha %.3g, beta %.3g\n", a.cd.alpha,
                a.cd.beta);
  std::printf("decoding: greedy, up to %zu tokens, stops at the end of a verse\n\n", a.tokens);

  const token_id stops[] = {eos};
  tandem::generation_options opts;
  opts.max_tokens = a.tokens;
  opts.stop_tokens = stops;
  opts.record_logprobs = false;
  tandem::greedy_sampler greedy;
  tandem::completion out;

  struct total {
    std::size_t n = 0;
    double rep4 = 0, distinct2 = 0, ppl = 0;
  } totals[3];
  const char* const names[3] = {"greedy", "contrastive", "proxy-tuned"};

  for (const std::string& p : a.prompts) {
    std::vector<token_id> prompt{bos};
    if (tok->encode(p, prompt) != errc::ok || prompt.size() < 2)
      return usage("cannot tokenize a prompt (empty?)");
    std::printf("prompt: \"%s\"\n", p.c_str());
    for (int method = 0; method < 3; ++method) {
      // Fresh sessions per run: each holds one growing context over its (shared) model.
      tandem::ngram_session e(*expert), am(*amateur), tu(*tuned), ba(*base);
      errc r = errc::ok;
      if (method == 0) {
        r = tandem::generate(e, *tok, greedy, prompt, opts, out);
      } else if (method == 1) {
        auto cd = tandem::make_contrastive(e, am, a.cd);
        if (!cd) {
          std::fprintf(stderr, "contrastive_story: bad contrastive settings: %s\n",
                       tandem::to_string(cd.error()).data());
          return 2;
        }
        cd->reserve(prompt.size() + a.tokens);
        r = tandem::generate(*cd, *tok, greedy, prompt, opts, out);
      } else {
        auto pt = tandem::make_proxy_tuning(e, tu, ba, {a.proxy_weight});
        if (!pt) {
          std::fprintf(stderr, "contrastive_story: bad proxy-tuning weight: %s\n",
                       tandem::to_string(pt.error()).data());
          return 2;
        }
        pt->reserve(prompt.size() + a.tokens);
        r = tandem::generate(*pt, *tok, greedy, prompt, opts, out);
      }
      if (r != errc::ok) {
        std::fprintf(stderr, "contrastive_story: %s decoding failed: %s\n", names[method],
                     tandem::to_string(r).data());
        return 1;
      }
      const repetition rep = measure(out.tokens);
      const double ppl = expert_perplexity(*expert, prompt, out.tokens);
      std::printf("  %-11s rep-4 %.3f  distinct-2 %.3f  expert ppl %6.1f  tokens %2zu  |%s\n",
                  names[method], rep.rep4, rep.distinct2, ppl, out.tokens.size(), out.text.c_str());
      totals[method].n += 1;
      totals[method].rep4 += rep.rep4;
      totals[method].distinct2 += rep.distinct2;
      totals[method].ppl += ppl;
    }
    std::printf("\n");
  }
  std::printf("mean over %zu prompts:\n", a.prompts.size());
  for (int method = 0; method < 3; ++method) {
    const double n = static_cast<double>(totals[method].n);
    std::printf("  %-11s rep-4 %.3f  distinct-2 %.3f  expert ppl %6.1f\n", names[method],
                totals[method].rep4 / n, totals[method].distinct2 / n, totals[method].ppl / n);
  }
  std::printf("total time: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
