// tandem-eval-gguf: measures a llama GGUF model through tandem::llama_session: its
// held-out perplexity and, with --draft, the greedy acceptance rate of the draft against
// it (the fraction of positions where the draft's argmax equals the model's, along the
// model's own greedy continuation of held-out prompts).
//
//   tandem-eval-gguf --model target.gguf --heldout heldout.txt [--draft draft.gguf]
//                    [--lines 200] [--prompts 40] [--prompt-tokens 16] [--n-new 32]
//                    [--threads 2]
//
// Perplexity covers the first --lines held-out lines (BOS, tokens, EOS; every token after
// BOS predicted); acceptance uses the first --prompts lines, cut to --prompt-tokens
// tokens, each continued for --n-new tokens. Prints one JSON line on stdout.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model_eval.hpp"

int main(int argc, char** argv) {
  namespace tt = tandem::tools;
  const char* model = nullptr;
  const char* draft = nullptr;
  const char* heldout = nullptr;
  std::size_t lines = 200, prompts = 40, prompt_tokens = 16, n_new = 32;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "tandem-eval-gguf: %s needs a value\n", a);
      return 2;
    }
    const char* v = argv[++i];
    auto count = [&](std::size_t& dst) {
      char* end = nullptr;
      const unsigned long long x = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0' || x == 0) {
        std::fprintf(stderr, "tandem-eval-gguf: %s needs a positive integer\n", a);
        std::exit(2);
      }
      dst = static_cast<std::size_t>(x);
    };
    std::size_t t = 0;
    if (std::strcmp(a, "--model") == 0)
      model = v;
    else if (std::strcmp(a, "--draft") == 0)
      draft = v;
    else if (std::strcmp(a, "--heldout") == 0)
      heldout = v;
    else if (std::strcmp(a, "--lines") == 0)
      count(lines);
    else if (std::strcmp(a, "--prompts") == 0)
      count(prompts);
    else if (std::strcmp(a, "--prompt-tokens") == 0)
      count(prompt_tokens);
    else if (std::strcmp(a, "--n-new") == 0)
      count(n_new);
    else if (std::strcmp(a, "--threads") == 0) {
      count(t);
      threads = static_cast<int>(t);
    } else {
      std::fprintf(stderr, "tandem-eval-gguf: unknown flag '%s'\n", a);
      return 2;
    }
  }
  if (model == nullptr || heldout == nullptr) {
    std::fputs(
        "usage: tandem-eval-gguf --model FILE.gguf --heldout FILE [--draft FILE.gguf]\n"
        "         [--lines N] [--prompts N] [--prompt-tokens N] [--n-new N] [--threads N]\n",
        stderr);
    return 2;
  }
  tandem::llama_quiet_logs();
  const auto fail = [](const char* what, tandem::errc e) {
    std::fprintf(stderr, "tandem-eval-gguf: %s: %s\n", what, tandem::to_string(e).data());
    return 1;
  };
  auto text = tt::read_lines(heldout, std::max(lines, prompts));
  if (!text) return fail("reading the held-out lines", text.error());
  auto m = tandem::llama_model_handle::load(model);
  if (!m) return fail("loading the model", m.error());
  const std::vector<std::string> ppl_lines(
      text->begin(), text->begin() + static_cast<std::ptrdiff_t>(std::min(lines, text->size())));
  auto p = tt::heldout_perplexity(*m, ppl_lines, threads);
  if (!p) return fail("perplexity", p.error());
  std::printf(
      "{\"tool\":\"tandem-eval-gguf\",\"model\":\"%s\",\"perplexity\":%.3f,\"ppl_tokens\":%zu",
      model, p->perplexity, p->tokens);
  if (draft != nullptr) {
    auto d = tandem::llama_model_handle::load(draft);
    if (!d) return fail("loading the draft", d.error());
    const std::vector<std::string> ps(
        text->begin(),
        text->begin() + static_cast<std::ptrdiff_t>(std::min(prompts, text->size())));
    auto a = tt::greedy_acceptance(*d, *m, ps, prompt_tokens, n_new, threads);
    if (!a) return fail("greedy acceptance", a.error());
    std::printf(
        ",\"draft\":\"%s\",\"acceptance\":%.4f,\"positions\":%zu,\"max_abs_logit_diff\":%.3g",
        draft, a->rate, a->positions, a->max_abs_logit_diff);
  }
  std::printf("}\n");
  return 0;
}
