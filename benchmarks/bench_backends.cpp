// Benchmark of tandem's real backends:
//   llama_generate   tokens/s of tandem's generation loop (core/generate.hpp, greedy_sampler,
//                    tandem::llama_session) against a plain llama.h greedy loop
//                    (llama_decode + argmax over llama_get_logits_ith) on the same model in
//                    the same run, alternating repeats; "ratio" = tandem / plain (goal >= 0.98).
//                    Measured without and with per-token log-probs/entropies.
//   ngram_build      build time of the built-in Kneser-Ney model (backends/ngram_model.hpp)
//                    on the corpus, tokenized with the model's vocabulary
//   ngram_generate   tokens/s of greedy generation with it through generate()
//   acceptance       (with --draft) greedy acceptance of the draft against --model
//   ngram_vs_irstlm  (with --irstlm-jsonl) the lines benchmarks/ngram_vs_irstlm.sh printed,
//                    carried over (held-out perplexity of tandem's n-gram model vs IRSTLM)
//
// Usage: bench_backends --model M.gguf [--draft D.gguf] [--train train.txt]
//          [--heldout heldout.txt] [--tokens 128] [--prompt-tokens 16] [--repeats 7]
//          [--threads 1] [--ngram-order 4] [--irstlm-jsonl FILE]
// Models: tools/make-model-pair.sh prints the cached pair's paths. One JSON object per
// case on stdout, a table on stderr; timings are medians over the repeats.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <llama.h>

#include "model_eval.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using tandem::token_id;
namespace tt = tandem::tools;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

[[noreturn]] void die(const char* what, tandem::errc e) {
  std::fprintf(stderr, "bench_backends: %s: %s\n", what, tandem::to_string(e).data());
  std::exit(1);
}

struct options {
  const char* model = nullptr;
  const char* draft = nullptr;
  std::string train = TANDEM_DATA_DIR "/kjv/train.txt";
  std::string heldout = TANDEM_DATA_DIR "/kjv/heldout.txt";
  const char* irstlm = nullptr;
  std::size_t tokens = 128, prompt_tokens = 16, repeats = 7, ngram_order = 4;
  int threads = 1;
};

/// The plain llama.h loop: decode the prompt, then argmax / decode until `n` tokens are
/// chosen (the last one is not decoded, as in generate()). Returns the tokens chosen.
std::size_t plain_greedy(llama_context* ctx, const llama_vocab* vocab,
                         std::vector<llama_token>& prompt, std::size_t n,
                         std::vector<llama_token>& out) {
  llama_memory_clear(llama_get_memory(ctx), true);
  out.clear();
  if (llama_decode(ctx, llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()))) !=
      0)
    return 0;
  const int32_t nv = llama_vocab_n_tokens(vocab);
  for (std::size_t i = 0; i < n; ++i) {
    const float* l = llama_get_logits_ith(ctx, -1);
    llama_token best = 0;
    for (int32_t j = 1; j < nv; ++j)
      if (l[j] > l[best]) best = j;
    out.push_back(best);
    if (i + 1 == n) break;
    if (llama_decode(ctx, llama_batch_get_one(&best, 1)) != 0) break;
  }
  return out.size();
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (v == nullptr) {
      std::fprintf(stderr, "bench_backends: %s needs a value\n", a);
      return 2;
    }
    ++i;
    auto count = [&](std::size_t& dst) {
      char* end = nullptr;
      const unsigned long long x = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0' || x == 0) {
        std::fprintf(stderr, "bench_backends: %s needs a positive integer\n", a);
        std::exit(2);
      }
      dst = static_cast<std::size_t>(x);
    };
    std::size_t t = 0;
    if (std::strcmp(a, "--model") == 0)
      o.model = v;
    else if (std::strcmp(a, "--draft") == 0)
      o.draft = v;
    else if (std::strcmp(a, "--train") == 0)
      o.train = v;
    else if (std::strcmp(a, "--heldout") == 0)
      o.heldout = v;
    else if (std::strcmp(a, "--irstlm-jsonl") == 0)
      o.irstlm = v;
    else if (std::strcmp(a, "--tokens") == 0)
      count(o.tokens);
    else if (std::strcmp(a, "--prompt-tokens") == 0)
      count(o.prompt_tokens);
    else if (std::strcmp(a, "--repeats") == 0)
      count(o.repeats);
    else if (std::strcmp(a, "--ngram-order") == 0)
      count(o.ngram_order);
    else if (std::strcmp(a, "--threads") == 0) {
      count(t);
      o.threads = static_cast<int>(t);
    } else {
      std::fprintf(stderr, "bench_backends: unknown flag '%s'\n", a);
      return 2;
    }
  }
  if (o.model == nullptr) {
    std::fputs(
        "usage: bench_backends --model M.gguf [--draft D.gguf] [--train FILE]\n"
        "         [--heldout FILE] [--tokens N] [--prompt-tokens N] [--repeats N]\n"
        "         [--threads N] [--ngram-order N] [--irstlm-jsonl FILE]\n",
        stderr);
    return 2;
  }
  tandem::llama_quiet_logs();
  auto model = tandem::llama_model_handle::load(o.model);
  if (!model) die("loading the model", model.error());
  const tandem::llama_tokenizer tok(*model);
  auto heldout = tt::read_lines(o.heldout.c_str(), 64);
  if (!heldout) die("reading the held-out lines", heldout.error());
  std::vector<token_id> prompt;
  if (auto b = tok.bos(); b) prompt.push_back(*b);
  if (const auto e = tok.encode((*heldout)[0], prompt); e != tandem::errc::ok)
    die("tokenizing the prompt", e);
  if (prompt.size() > o.prompt_tokens) prompt.resize(o.prompt_tokens);
  const auto n_ctx = static_cast<std::uint32_t>(prompt.size() + o.tokens + 16);
  std::fprintf(stderr, "%-16s %-26s %14s %14s %8s\n", "case", "detail", "tandem", "baseline",
               "ratio");

  // ---- (a) tandem's generation loop vs a plain llama.h loop ----------------------------
  {
    tandem::llama_session_options so;
    so.context_size = n_ctx;
    so.threads = o.threads;
    auto session = tandem::llama_session::create(*model, so);
    if (!session) die("creating the session", session.error());
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = so.batch_size;
    cp.n_ubatch = so.batch_size;
    cp.n_seq_max = 1;
    cp.n_threads = o.threads;
    cp.n_threads_batch = o.threads;
    cp.no_perf = true;
    llama_context* ctx = llama_init_from_model(model->get(), cp);
    if (ctx == nullptr) die("creating the plain context", tandem::errc::out_of_memory);
    std::vector<llama_token> plain_prompt(prompt.begin(), prompt.end()), plain_out;
    plain_out.reserve(o.tokens);
    tandem::greedy_sampler greedy;
    tandem::completion out;
    for (const bool logprobs : {false, true}) {
      tandem::generation_options go;
      go.max_tokens = o.tokens;
      go.record_logprobs = logprobs;
      std::vector<double> t_tandem, t_plain;
      bool same = true;
      for (std::size_t r = 0; r < o.repeats + 1; ++r) {  // the first round warms up
        session->clear();
        auto t0 = clock_type::now();
        if (const auto e = tandem::generate(*session, greedy, prompt, go, out);
            e != tandem::errc::ok)
          die("generate", e);
        const double a = seconds_since(t0);
        t0 = clock_type::now();
        const std::size_t got =
            plain_greedy(ctx, model->vocab(), plain_prompt, o.tokens, plain_out);
        const double b = seconds_since(t0);
        if (got != o.tokens || out.tokens.size() != o.tokens)
          die("generation", tandem::errc::decode_failed);
        same = same && std::equal(out.tokens.begin(), out.tokens.end(), plain_out.begin());
        if (r == 0) continue;
        t_tandem.push_back(a);
        t_plain.push_back(b);
      }
      const double tps_t = static_cast<double>(o.tokens) / median(t_tandem);
      const double tps_p = static_cast<double>(o.tokens) / median(t_plain);
      std::printf(
          "{\"bench\":\"bench_backends\",\"case\":\"llama_generate\",\"record_logprobs\":%s,"
          "\"model\":\"%s\",\"n_vocab\":%zu,\"prompt_tokens\":%zu,\"tokens\":%zu,\"threads\":%d,"
          "\"repeats\":%zu,\"tandem_tokens_per_s\":%.2f,\"llama_tokens_per_s\":%.2f,"
          "\"ratio\":%.4f,\"same_tokens\":%s}\n",
          logprobs ? "true" : "false", o.model, model->vocab_size(), prompt.size(), o.tokens,
          o.threads, o.repeats, tps_t, tps_p, tps_t / tps_p, same ? "true" : "false");
      std::fprintf(stderr, "%-16s %-26s %10.1f t/s %10.1f t/s %8.3f%s\n", "llama_generate",
                   logprobs ? "greedy, with logprobs" : "greedy", tps_t, tps_p, tps_t / tps_p,
                   same ? "" : "  (tokens differ!)");
    }
    llama_free(ctx);
  }

  // ---- (b) the n-gram model: build time and generation speed -----------------------------
  {
    auto lines = tt::read_lines(o.train.c_str());
    if (!lines) die("reading the corpus", lines.error());
    std::vector<std::vector<token_id>> sentences;
    sentences.reserve(lines->size());
    std::size_t n_tokens = 0;
    for (const auto& line : *lines) {
      sentences.emplace_back();
      if (const auto e = tok.encode(line, sentences.back()); e != tandem::errc::ok)
        die("tokenizing the corpus", e);
      n_tokens += sentences.back().size();
    }
    tandem::ngram_options np;
    np.order = o.ngram_order;
    np.vocab_size = model->vocab_size();
    if (auto b = tok.bos(); b) np.bos = *b;
    if (auto e = tok.eos(); e) np.eos = *e;
    std::vector<double> t_build;
    std::optional<tandem::ngram_model> ng;
    const std::size_t build_reps = std::max<std::size_t>(1, std::min<std::size_t>(o.repeats, 3));
    for (std::size_t r = 0; r < build_reps; ++r) {
      const auto t0 = clock_type::now();
      auto builder = tandem::ngram_builder::create(np);
      if (!builder) die("ngram_builder", builder.error());
      for (const auto& s : sentences)
        if (const auto e = builder->add_sentence(s); e != tandem::errc::ok) die("add_sentence", e);
      auto built = builder->build();
      if (!built) die("ngram build", built.error());
      t_build.push_back(seconds_since(t0));
      ng.emplace(std::move(*built));
    }
    const double build_s = median(t_build);
    std::printf(
        "{\"bench\":\"bench_backends\",\"case\":\"ngram_build\",\"order\":%zu,\"vocab\":%zu,"
        "\"sentences\":%zu,\"tokens\":%zu,\"repeats\":%zu,\"build_s\":%.4f,"
        "\"tokens_per_s\":%.0f,\"memory_mb\":%.2f}\n",
        o.ngram_order, np.vocab_size, sentences.size(), n_tokens, build_reps, build_s,
        static_cast<double>(n_tokens) / build_s, static_cast<double>(ng->memory_bytes()) / 1e6);
    std::fprintf(stderr, "%-16s %-26s %12.3f s %14s %8s\n", "ngram_build",
                 ("KJV train, order " + std::to_string(o.ngram_order)).c_str(), build_s, "", "");

    tandem::ngram_session session(*ng, prompt.size() + o.tokens + 16);
    tandem::greedy_sampler greedy;
    tandem::completion out;
    tandem::generation_options go;
    go.max_tokens = o.tokens;
    go.record_logprobs = false;
    std::vector<double> t_gen;
    for (std::size_t r = 0; r < o.repeats + 1; ++r) {
      session.reset();
      const auto t0 = clock_type::now();
      if (const auto e = tandem::generate(session, greedy, prompt, go, out); e != tandem::errc::ok)
        die("ngram generate", e);
      if (r > 0)
        t_gen.push_back(seconds_since(t0) /
                        static_cast<double>(std::max<std::size_t>(1, out.tokens.size())));
    }
    const double tps = 1.0 / median(t_gen);
    std::printf(
        "{\"bench\":\"bench_backends\",\"case\":\"ngram_generate\",\"order\":%zu,\"vocab\":%zu,"
        "\"tokens\":%zu,\"repeats\":%zu,\"tokens_per_s\":%.1f}\n",
        o.ngram_order, np.vocab_size, out.tokens.size(), o.repeats, tps);
    std::fprintf(stderr, "%-16s %-26s %10.1f t/s %14s %8s\n", "ngram_generate", "greedy", tps, "",
                 "");
  }

  // ---- (c) acceptance of a draft against the model ---------------------------------------
  if (o.draft != nullptr) {
    auto d = tandem::llama_model_handle::load(o.draft);
    if (!d) die("loading the draft", d.error());
    auto a = tt::greedy_acceptance(*d, *model, *heldout, 16, 32, o.threads);
    if (!a) die("greedy acceptance", a.error());
    std::printf(
        "{\"bench\":\"bench_backends\",\"case\":\"acceptance\",\"model\":\"%s\",\"draft\":\"%s\","
        "\"prompts\":%zu,\"positions\":%zu,\"acceptance\":%.4f}\n",
        o.model, o.draft, heldout->size(), a->positions, a->rate);
    std::fprintf(stderr, "%-16s %-26s %14.4f %14s %8s\n", "acceptance", "greedy, 64 prompts",
                 a->rate, "", "");
  }

  // ---- (d) n-gram vs IRSTLM, from benchmarks/ngram_vs_irstlm.sh ---------------------------
  if (o.irstlm != nullptr) {
    auto lines = tt::read_lines(o.irstlm);
    if (!lines) die("reading the IRSTLM comparison", lines.error());
    for (const auto& l : *lines) {
      if (l.empty() || l.front() != '{') continue;
      std::printf(
          "{\"bench\":\"bench_backends\",\"case\":\"ngram_vs_irstlm\",\"bench_ngram\":%s}\n",
          l.c_str());
      std::fprintf(stderr, "%-16s %s\n", "ngram_vs_irstlm", l.c_str());
    }
  }
  return 0;
}
