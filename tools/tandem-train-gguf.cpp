// tandem-train-gguf: trains a small llama-architecture GGUF model on a text corpus (one
// document a line) with llama.cpp's training API (llama_opt_init / llama_opt_epoch), from
// a seeded random-weight model written by gguf_writer.hpp, and saves the trained model.
//
//   tandem-train-gguf --spm VOCAB.model --train train.txt --heldout heldout.txt --out model.gguf
//                     [--n-embd 64] [--n-layer 2] [--n-head 4] [--n-head-kv 2] [--n-ff 256]
//                     [--ctx 128] [--lr 3e-3] [--max-steps 1500] [--max-seconds 240]
//                     [--seed 1] [--threads 2] [--eval-lines 300] [--min-gain X]
//
// The corpus is tokenized with the model's own vocabulary (tandem::llama_tokenizer): each
// line becomes BOS, its tokens, EOS, and the lines are concatenated. One optimizer step
// (AdamW) sees one window of --ctx tokens at a random offset; training stops after
// --max-steps steps (rounded up to a multiple of 16, the steps per round) or
// --max-seconds of wall time, whichever comes first. The learning
// rate decays linearly to a tenth of --lr over --max-steps. Held-out perplexity (every
// token after BOS, EOS included, the first --eval-lines lines) is measured through
// tandem::llama_session before and after training and printed as one JSON line on stdout.
// With --min-gain X the exit status is 3 unless perplexity fell by a factor of at least X.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ggml-opt.h>
#include <llama.h>

#include "gguf_writer.hpp"
#include "model_eval.hpp"
#include "tandem/core/rng.hpp"

namespace {

namespace tt = tandem::tools;

struct options {
  const char* spm = nullptr;
  const char* train = nullptr;
  const char* heldout = nullptr;
  const char* out = nullptr;
  tt::tiny_llama_config model;
  std::uint32_t ctx = 128;
  float lr = 3e-3f;
  std::uint64_t max_steps = 1500;
  double max_seconds = 240.0;
  int threads = 2;
  std::size_t eval_lines = 300;
  double min_gain = 0.0;
};

struct lr_state {
  float lr0 = 0.0f;
  std::uint64_t step = 0;
  std::uint64_t max_steps = 1;
};

ggml_opt_optimizer_params lr_schedule(void* ud) {
  const auto* s = static_cast<const lr_state*>(ud);
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  const double frac =
      std::min(1.0, static_cast<double>(s->step) / static_cast<double>(s->max_steps));
  p.adamw.alpha = static_cast<float>(s->lr0 * (1.0 - 0.9 * frac));
  p.adamw.wd = 0.0f;
  return p;
}

[[noreturn]] void die(const char* what, tandem::errc e) {
  std::fprintf(stderr, "tandem-train-gguf: %s: %s\n", what, tandem::to_string(e).data());
  std::exit(1);
}

void usage() {
  std::fputs(
      "usage: tandem-train-gguf --spm VOCAB.model --train FILE --heldout FILE --out FILE.gguf\n"
      "         [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--ctx N]\n"
      "         [--lr X] [--max-steps N] [--max-seconds S] [--seed N] [--threads N]\n"
      "         [--eval-lines N] [--min-gain X]\n",
      stderr);
}

bool parse_args(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    char* end = nullptr;
    auto num = [&]() {
      const double x = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(x >= 0)) {
        std::fprintf(stderr, "tandem-train-gguf: %s needs a non-negative number\n", a);
        std::exit(2);
      }
      return x;
    };
    if (std::strcmp(a, "--spm") == 0)
      o.spm = v;
    else if (std::strcmp(a, "--train") == 0)
      o.train = v;
    else if (std::strcmp(a, "--heldout") == 0)
      o.heldout = v;
    else if (std::strcmp(a, "--out") == 0)
      o.out = v;
    else if (std::strcmp(a, "--n-embd") == 0)
      o.model.n_embd = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--n-layer") == 0)
      o.model.n_layer = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--n-head") == 0)
      o.model.n_head = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--n-head-kv") == 0)
      o.model.n_head_kv = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--n-ff") == 0)
      o.model.n_ff = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--ctx") == 0)
      o.ctx = static_cast<std::uint32_t>(num());
    else if (std::strcmp(a, "--lr") == 0)
      o.lr = static_cast<float>(num());
    else if (std::strcmp(a, "--max-steps") == 0)
      o.max_steps = static_cast<std::uint64_t>(num());
    else if (std::strcmp(a, "--max-seconds") == 0)
      o.max_seconds = num();
    else if (std::strcmp(a, "--seed") == 0)
      o.model.seed = static_cast<std::uint64_t>(num());
    else if (std::strcmp(a, "--threads") == 0)
      o.threads = static_cast<int>(num());
    else if (std::strcmp(a, "--min-gain") == 0)
      o.min_gain = num();
    else if (std::strcmp(a, "--eval-lines") == 0)
      o.eval_lines = static_cast<std::size_t>(num());
    else {
      std::fprintf(stderr, "tandem-train-gguf: unknown flag '%s'\n", a);
      return false;
    }
  }
  return o.spm && o.train && o.heldout && o.out && o.ctx >= 8 && o.threads > 0 && o.max_steps > 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  o.model.n_ff = 256;
  o.model.logit_scale = 1.0f;
  if (!parse_args(argc, argv, o)) {
    usage();
    return 2;
  }
  o.model.n_ctx_train = std::max<std::uint32_t>(512, o.ctx);
  o.model.name = "tandem-kjv-draft";
  tandem::llama_quiet_logs();

  // 1. The random-weight starting point, written next to the output.
  auto vocab = tt::read_sentencepiece_model(o.spm);
  if (!vocab) die("reading the vocabulary", vocab.error());
  tt::ensure_byte_tokens(*vocab);
  const std::string init_path = std::string(o.out) + ".init.gguf";
  if (const auto e = tt::write_tiny_llama(init_path.c_str(), o.model, *vocab);
      e != tandem::errc::ok)
    die("writing the initial model", e);

  auto heldout = tt::read_lines(o.heldout, o.eval_lines);
  if (!heldout) die("reading the held-out lines", heldout.error());
  auto train_lines = tt::read_lines(o.train);
  if (!train_lines) die("reading the training corpus", train_lines.error());

  double ppl_before = 0.0;
  std::vector<tandem::token_id> tokens;
  {
    auto m = tandem::llama_model_handle::load(init_path);
    if (!m) die("loading the initial model", m.error());
    auto p = tt::heldout_perplexity(*m, *heldout, o.threads);
    if (!p) die("perplexity before training", p.error());
    ppl_before = p->perplexity;
    const tandem::llama_tokenizer tok(*m);
    for (const auto& line : *train_lines)
      if (const auto e = tt::encode_line(tok, line, tokens); e != tandem::errc::ok)
        die("tokenizing the corpus", e);
  }
  std::fprintf(stderr, "tandem-train-gguf: %zu training tokens, held-out perplexity %.2f before\n",
               tokens.size(), ppl_before);
  if (tokens.size() < 2 * std::size_t{o.ctx} + 2)
    die("training corpus", tandem::errc::insufficient_data);

  // 2. Training: llama.cpp needs writable weights (no mmap) and an F32 KV cache.
  llama_model_params mp = llama_model_default_params();
  mp.load_mode = LLAMA_LOAD_MODE_NONE;
  llama_model* model = llama_model_load_from_file(init_path.c_str(), mp);
  if (model == nullptr) die("loading the model for training", tandem::errc::corrupt_file);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = o.ctx;
  cp.n_batch = o.ctx;
  cp.n_ubatch = o.ctx;
  cp.n_threads = o.threads;
  cp.n_threads_batch = o.threads;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("creating the training context", tandem::errc::out_of_memory);

  lr_state lr{o.lr, 0, o.max_steps};
  llama_opt_params op{};
  op.n_ctx_train = 0;
  op.param_filter = llama_opt_param_filter_all;
  op.param_filter_ud = nullptr;
  op.get_opt_pars = lr_schedule;
  op.get_opt_pars_ud = &lr;
  op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  llama_opt_init(ctx, model, op);

  // Rounds of `round` windows each: one dataset per round, one optimizer step per window.
  // llama.cpp may round the context up; a window is exactly one context.
  const std::int64_t n = llama_n_ctx(ctx);
  constexpr std::int64_t round = 16;
  ggml_opt_dataset_t ds = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, n, n, round, 1);
  auto* data = static_cast<std::int32_t*>(ggml_opt_dataset_data(ds)->data);
  auto* labels = static_cast<std::int32_t*>(ggml_opt_dataset_labels(ds)->data);
  ggml_opt_result_t res = ggml_opt_result_init();
  tandem::rng gen(o.model.seed ^ 0x9E3779B97F4A7C15ull);
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0.0;
  while (lr.step < o.max_steps && seconds < o.max_seconds) {
    for (std::int64_t k = 0; k < round; ++k) {
      const auto start =
          static_cast<std::size_t>(gen.uniform() * static_cast<double>(tokens.size() - n - 1));
      std::memcpy(data + k * n, tokens.data() + start, sizeof(std::int32_t) * n);
      std::memcpy(labels + k * n, tokens.data() + start + 1, sizeof(std::int32_t) * n);
    }
    ggml_opt_result_reset(res);
    llama_opt_epoch(ctx, ds, res, nullptr, round, nullptr, nullptr);
    lr.step += round;
    double loss = 0.0, unc = 0.0;
    ggml_opt_result_loss(res, &loss, &unc);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (lr.step % 160 == 0)
      std::fprintf(stderr, "step %llu  loss %.3f  %.0f s\n",
                   static_cast<unsigned long long>(lr.step), loss, seconds);
  }
  ggml_opt_result_free(res);
  ggml_opt_dataset_free(ds);
  llama_model_save_to_file(model, o.out);
  llama_free(ctx);
  llama_model_free(model);
  std::remove(init_path.c_str());

  // 3. Held-out perplexity of the saved model.
  auto m = tandem::llama_model_handle::load(o.out);
  if (!m) die("loading the trained model", m.error());
  auto p = tt::heldout_perplexity(*m, *heldout, o.threads);
  if (!p) die("perplexity after training", p.error());
  std::printf(
      "{\"tool\":\"tandem-train-gguf\",\"out\":\"%s\",\"n_embd\":%u,\"n_layer\":%u,\"n_head\":%u,"
      "\"n_head_kv\":%u,\"n_ff\":%u,\"n_vocab\":%zu,\"ctx\":%u,\"steps\":%llu,\"seconds\":%.1f,"
      "\"train_tokens\":%zu,\"heldout_tokens\":%zu,\"ppl_before\":%.3f,\"ppl_after\":%.3f}\n",
      o.out, o.model.n_embd, o.model.n_layer, o.model.n_head, o.model.n_head_kv, o.model.n_ff,
      vocab->entries.size(), o.ctx, static_cast<unsigned long long>(lr.step), seconds,
      tokens.size(), p->tokens, ppl_before, p->perplexity);
  if (o.min_gain > 0.0 && !(ppl_before / p->perplexity >= o.min_gain)) {
    std::fprintf(stderr, "tandem-train-gguf: perplexity fell by %.2fx, less than --min-gain %.2f\n",
                 ppl_before / p->perplexity, o.min_gain);
    return 3;
  }
  return 0;
}
