// Benchmark and evaluation of the contrastive block.
//
// 1. Overhead (always): per-token time of a combined model's append against the sum of
//    its parts' appends, in the same run, on the same models: each token goes once to the
//    parts directly (then rewound) and once through the adapter, alternating which goes
//    first; thread CPU time, medians over passes. Also the combination kernel alone
//    ("combine us") and its share of the parts' time. Parts: synthetic LMs with a
//    32000-token vocabulary whose forward pass is a real output-layer matrix-vector
//    product (hidden size 256 for the expert, 64 for the amateur: 8.2M and 2M
//    multiply-adds, a few milliseconds on one core, memory-bound like a real LM head), so
//    the ratio reflects the combination against a forward pass of realistic cost; and,
//    with --kjv, the built-in n-gram models (vocabulary 4000, forward passes of a few
//    microseconds), where the combination is a large share.
// 2. Decoding quality (with --kjv, needs sentencepiece): n-gram models trained on
//    data/kjv/train.txt with the BPE-4000 fixture tokenizer (expert: order 5, amateur:
//    order 2). For each held-out prompt (BOS + the first 4 tokens of a verse), greedy,
//    ancestral sampling, nucleus sampling (top-p 0.95) and greedy contrastive decoding
//    (Li et al. at tau 1 and 0.5, O'Brien & Lewis; papers' alpha and beta) generate up to
//    --tokens tokens (EOS stops). Reported per method, pooled over
//    prompts, on BPE tokens: repeated 4-gram rate (share of 4-grams that already occurred
//    earlier in the same generation), distinct-2 (distinct bigrams over all bigrams), and
//    the expert's perplexity of the generated tokens given their prompt; the held-out
//    verses' own continuations are scored as a reference ("human").
//
// 3. With --gguf EXPERT AMATEUR (needs llama.cpp): the evaluation of 2. on two GGUF models
//    of one vocabulary, prompts from the held-out verses in the models' own tokens. Or
//    with --models DIR [--pair NAME]: a pair of tools/make-model-pair.sh's folder, the
//    expert DIR/target-NAME.gguf, the amateur DIR/draft.gguf; NAME defaults to "trained",
//    the one target that is better than its draft (contrastive decoding needs that).
//
// 4. With --gguf-cross EXPERT AMATEUR BASE_SMALL (needs llama.cpp): the evaluation of 2.
//    with an amateur over ANOTHER tokenizer, presented in the expert's vocabulary through
//    a vocab_map (mapped_model: tokens outside the intersection are spelled for it and
//    masked in its logits), and proxy tuning across the two tokenizers (large = EXPERT,
//    tuned small = AMATEUR mapped, base small = BASE_SMALL over the expert's tokenizer),
//    e.g. with tools/make-model-pair.sh's target-mid and draft and
//    tools/make-cross-pair.sh's draft-unigram:
//      bench_contrastive --gguf-cross M/target-mid.gguf X/draft-unigram.gguf M/draft.gguf
//
// Usage: bench_contrastive [--kjv] [--gguf EXPERT AMATEUR | --models DIR [--pair NAME]]
//                          [--gguf-cross EXPERT AMATEUR BASE_SMALL] [--prompts N]
//                          [--tokens N] [--repeats N]
// One JSON object per case on stdout, a table on stderr.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tandem/contrastive.hpp"
#include "tandem/core/detail/simd.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

#if defined(TANDEM_BENCH_HAVE_LLAMA)
#include "tandem/backends/llama_cpp.hpp"
#endif
#if defined(TANDEM_BENCH_HAVE_SPM)
#include "tandem/backends/ngram_model.hpp"
#include "tandem/backends/sentencepiece.hpp"
#endif

namespace {

using tandem::errc;
using tandem::token_id;
using clock_type = std::chrono::steady_clock;

// This thread's CPU time in microseconds: on a loaded machine it leaves out the time the
// thread waits for a core, which wall time would add to whichever pass got preempted.
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// A synthetic LM: hidden state h (size d) updated from each token's pseudo-random
// embedding, logits = W h with W a fixed random V x d matrix. Keeps every position's
// hidden state, so it can rewind.
class synthetic_lm {
 public:
  static constexpr std::size_t max_tokens = 1024;
  synthetic_lm(std::size_t vocab, std::size_t d, std::uint32_t seed)
      : v_(vocab), d_(d), w_(vocab * d), hist_((max_tokens + 1) * d, 0.0f), logits_(vocab, 0.0f) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(static_cast<float>(d)));
    for (auto& x : w_) x = nd(gen);
  }
  std::size_t vocab_size() const noexcept { return v_; }
  std::size_t size() const noexcept { return n_; }
  std::span<const float> logits() const noexcept { return logits_; }
  errc append(std::span<const token_id> t) {
    if (t.size() > max_tokens - n_) return errc::context_overflow;
    for (token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= v_) return errc::invalid_token;
    for (token_id x : t) {
      const float* h = hist_.data() + n_ * d_;
      float* next = hist_.data() + (n_ + 1) * d_;
      for (std::size_t j = 0; j < d_; ++j) {
        const std::uint32_t hsh =
            static_cast<std::uint32_t>(x) * 2654435761u ^ static_cast<std::uint32_t>(j) * 40503u;
        const float e = static_cast<float>(hsh % 2001) / 1000.0f - 1.0f;
        next[j] = std::tanh(0.5f * h[j] + e);
      }
      ++n_;
    }
    forward();
    return errc::ok;
  }
  errc rewind(std::size_t n) {
    if (n > n_) return errc::rewind_out_of_range;
    n_ -= n;
    return errc::ok;
  }

 private:
  void forward() {
    namespace simd = tandem::detail::simd;
    using b = simd::batch<float>;
    const std::size_t w = b::size;
    const float* h = hist_.data() + n_ * d_;
    for (std::size_t r = 0; r < v_; ++r) {
      const float* row = w_.data() + r * d_;
      b acc(0.0f);
      std::size_t j = 0;
      for (; j + w <= d_; j += w)
        acc = simd::fma(b::load_unaligned(row + j), b::load_unaligned(h + j), acc);
      float s = simd::hadd(acc);
      for (; j < d_; ++j) s += row[j] * h[j];
      logits_[r] = 4.0f * s;
    }
  }
  std::size_t v_, d_, n_ = 0;
  std::vector<float> w_, hist_, logits_;
};

template <class Adapter>
auto adapter_inputs(Adapter& a) {
  std::array<std::span<const float>, Adapter::part_count> in{};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((in[I] = a.template part<I>().logits()), ...);
  }
  (std::make_index_sequence<Adapter::part_count>{});
  return in;
}

struct overhead_result {
  double parts_us, adapter_us, combine_us;
};

// Per token, feeds the token once to the adapter's parts directly (parts_step, then
// parts_undo rewinds them) and once through the adapter, alternating which goes first, so
// that both paths run on the same models, memory and machine load. Per-pass means per
// token (thread CPU time), medians over passes. The adapter starts empty.
template <class Adapter, class PartsStep, class PartsUndo>
overhead_result measure_overhead(Adapter& adapter, PartsStep&& parts_step, PartsUndo&& parts_undo,
                                 std::span<const token_id> tokens, int repeats) {
  std::vector<double> parts, whole;
  for (int r = 0; r < repeats; ++r) {
    double tp = 0.0, ta = 0.0;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const token_id one[] = {tokens[i]};
      auto run_parts = [&] {
        const double t0 = thread_cpu_us();
        parts_step(tokens[i]);
        tp += thread_cpu_us() - t0;
      };
      auto run_adapter = [&] {
        const double t0 = thread_cpu_us();
        if (adapter.append(one) != errc::ok) std::abort();
        ta += thread_cpu_us() - t0;
      };
      if (i % 2 == 0) {
        run_parts();
        parts_undo();
        run_adapter();
      } else {
        run_adapter();
        if (adapter.rewind(1) != errc::ok) std::abort();
        run_parts();
        parts_undo();
        if (adapter.append(one) != errc::ok) std::abort();  // untimed: back in step
      }
    }
    if (adapter.rewind(adapter.size()) != errc::ok) std::abort();
    parts.push_back(tp / static_cast<double>(tokens.size()));
    whole.push_back(ta / static_cast<double>(tokens.size()));
  }
  // The combination alone, on logits of a non-empty context.
  const token_id one[] = {tokens[0]};
  if (adapter.append(one) != errc::ok) std::abort();
  std::vector<float> out(adapter.vocab_size());
  std::vector<double> comb;
  for (int r = 0; r < 200; ++r) {
    const auto t0 = clock_type::now();
    if (adapter.rule().combine(adapter_inputs(adapter), out) != errc::ok) std::abort();
    comb.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  return {median(parts), median(whole), median(comb)};
}

void print_overhead(const char* kase, std::size_t vocab, const overhead_result& r) {
  const double ratio = r.adapter_us / r.parts_us - 1.0;
  std::printf(
      "{\"bench\":\"contrastive_overhead\",\"case\":\"%s\",\"vocab\":%zu,\"parts_us_per_token\":%."
      "2f,"
      "\"adapter_us_per_token\":%.2f,\"overhead\":%.4f,\"combine_us\":%.2f,\"combine_share\":%.4f}"
      "\n",
      kase, vocab, r.parts_us, r.adapter_us, ratio, r.combine_us, r.combine_us / r.parts_us);
  std::fprintf(stderr, "%-34s %7zu %12.2f %12.2f %9.2f%% %10.2f %9.2f%%\n", kase, vocab, r.parts_us,
               r.adapter_us, 100.0 * ratio, r.combine_us, 100.0 * r.combine_us / r.parts_us);
}

void overhead_header() {
  std::fprintf(stderr, "%-34s %7s %12s %12s %10s %10s %10s\n", "case", "vocab", "parts us/tok",
               "adapter us", "overhead", "combine us", "comb/parts");
}

void synthetic_overhead(int repeats) {
  constexpr std::size_t vocab = 32000;
  synthetic_lm e(vocab, 256, 1), a(vocab, 64, 2), b(vocab, 64, 3);
  std::vector<token_id> tokens(64);
  std::mt19937 gen(5);
  for (auto& t : tokens) t = static_cast<token_id>(gen() % vocab);
  auto step2 = [&](token_id t) {
    const token_id one[] = {t};
    if (e.append(one) != errc::ok || a.append(one) != errc::ok) std::abort();
  };
  auto undo2 = [&] {
    if (e.rewind(1) != errc::ok || a.rewind(1) != errc::ok) std::abort();
  };
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::contrastive_options p;
    p.form = form;
    auto cd = tandem::make_contrastive(e, a, p);
    cd->reserve(2 * tokens.size());
    const auto r = measure_overhead(*cd, step2, undo2, tokens, repeats);
    if (cd->rewind(cd->size()) != errc::ok) std::abort();
    print_overhead(form == tandem::contrastive_form::li2022 ? "synthetic32k/contrastive_li"
                                                            : "synthetic32k/contrastive_obrien",
                   vocab, r);
  }
  auto step3 = [&](token_id t) {
    const token_id one[] = {t};
    if (e.append(one) != errc::ok || a.append(one) != errc::ok || b.append(one) != errc::ok)
      std::abort();
  };
  auto undo3 = [&] {
    if (e.rewind(1) != errc::ok || a.rewind(1) != errc::ok || b.rewind(1) != errc::ok) std::abort();
  };
  auto pt = tandem::make_proxy_tuning(e, a, b);
  pt->reserve(2 * tokens.size());
  print_overhead("synthetic32k/proxy_tuning", vocab,
                 measure_overhead(*pt, step3, undo3, tokens, repeats));
  if (pt->rewind(pt->size()) != errc::ok) std::abort();
}

struct metrics {
  std::size_t generations = 0, tokens = 0, fourgrams = 0, repeated_fourgrams = 0, bigrams = 0;
  std::set<std::pair<token_id, token_id>> distinct_bigrams;
  double expert_logprob = 0.0;
  void add(std::span<const token_id> gen) {
    ++generations;
    tokens += gen.size();
    std::set<std::array<token_id, 4>> seen;
    for (std::size_t i = 0; i + 4 <= gen.size(); ++i) {
      const std::array<token_id, 4> g{gen[i], gen[i + 1], gen[i + 2], gen[i + 3]};
      ++fourgrams;
      if (!seen.insert(g).second) ++repeated_fourgrams;
    }
    for (std::size_t i = 0; i + 2 <= gen.size(); ++i) {
      ++bigrams;
      distinct_bigrams.insert({gen[i], gen[i + 1]});
    }
  }
  double rep4() const { return fourgrams ? double(repeated_fourgrams) / double(fourgrams) : 0.0; }
  double distinct2() const {
    return bigrams ? double(distinct_bigrams.size()) / double(bigrams) : 0.0;
  }
  double ppl() const { return tokens ? std::exp(-expert_logprob / double(tokens)) : 0.0; }
};

// The prompt of a held-out verse: BOS (when >= 0) and its first 4 tokens.
std::vector<token_id> verse_prompt(const std::vector<token_id>& verse, token_id bos) {
  std::vector<token_id> prompt;
  if (bos >= 0) prompt.push_back(bos);
  prompt.insert(prompt.end(), verse.begin(), verse.begin() + 4);
  return prompt;
}

// Greedy, sampling, nucleus and contrastive decoding of the held-out prompts (BOS + the
// first 4 tokens of each verse), with the metrics of the header comment.
template <class MakeExpert, class MakeAmateur, class ExpertLogprob, class Decode>
void evaluate_quality(const char* prefix, const char* extra_json,
                      const std::vector<std::vector<token_id>>& heldout, token_id bos, token_id eos,
                      std::size_t vocab, std::size_t n_prompts, std::size_t n_tokens,
                      MakeExpert&& make_expert, MakeAmateur&& make_amateur,
                      ExpertLogprob&& expert_logprob, Decode&& decode) {
  // Decoding quality.
  struct method {
    const char* name;
    int kind;  // 0 greedy, 1 sampling, 2 top-p, 3 CD Li, 4 CD O'Brien, 5 human, 6 CD Li tau
               // 0.5
  };
  const method methods[] = {{"greedy", 0},
                            {"sampling", 1},
                            {"top_p_0.95", 2},
                            {"contrastive_li", 3},
                            {"contrastive_li_tau0.5", 6},
                            {"contrastive_obrien", 4},
                            {"human", 5}};
  std::fprintf(stderr, "\n%-20s %6s %8s %8s %10s %11s %9s\n", "method", "gens", "tokens", "rep-4",
               "distinct-2", "expert ppl", "mean len");
  const token_id stop[] = {eos};
  const std::size_t n_stop = eos >= 0 ? 1 : 0;
  tandem::generation_options g;
  g.max_tokens = n_tokens;
  g.stop_tokens = std::span<const token_id>(stop, n_stop);
  g.record_logprobs = false;
  std::string samples;
  for (const method& m : methods) {
    metrics mt;
    for (std::size_t i = 0; i < n_prompts && i < heldout.size(); ++i) {
      const auto& verse = heldout[i];
      if (verse.size() < 6) continue;
      const std::vector<token_id> prompt = verse_prompt(verse, bos);
      std::vector<token_id> gen;
      if (m.kind == 5) {
        gen.assign(verse.begin() + 4, verse.end());
      } else {
        auto e = make_expert();
        auto a = make_amateur();
        tandem::completion out;
        errc r = errc::ok;
        if (m.kind <= 2) {
          tandem::sampling_options sp;
          sp.temperature = m.kind == 0 ? 0.0f : 1.0f;
          sp.top_p = m.kind == 2 ? 0.95f : 1.0f;
          sp.top_k = 0;
          sp.min_p = 0.0f;
          sp.seed = 1000 + i;
          auto s = tandem::make_sampler(sp, vocab);
          r = tandem::generate(e, *s, prompt, g, out);
        } else {
          tandem::contrastive_options p;
          p.form =
              m.kind == 4 ? tandem::contrastive_form::obrien2023 : tandem::contrastive_form::li2022;
          if (m.kind == 6) p.amateur_temperature = 0.5f;
          auto cd = tandem::make_contrastive(e, a, p);
          tandem::greedy_sampler s;
          r = tandem::generate(*cd, s, prompt, g, out);
        }
        if (r != errc::ok) {
          std::fprintf(stderr, "%s: prompt %zu failed: %s\n", m.name, i,
                       std::string(tandem::to_string(r)).c_str());
          continue;
        }
        gen = out.tokens;
      }
      if (i == 0) {
        std::string text;
        if (decode(gen, text) != errc::ok) std::abort();
        samples += std::string(m.name) + ": " + text + "\n";
      }
      mt.add(gen);
      mt.expert_logprob += expert_logprob(prompt, gen);
    }
    const double mean_len = mt.generations ? double(mt.tokens) / double(mt.generations) : 0.0;
    std::printf(
        "{\"bench\":\"contrastive_quality\",\"case\":\"%s/"
        "%s\",%s,\"generations\":%zu,\"tokens\":%zu,\"rep4\":%.4f,\"distinct2\":%.4f,"
        "\"expert_ppl\":%.3f,\"mean_length\":%.2f,\"max_tokens\":%zu}\n",
        prefix, m.name, extra_json, mt.generations, mt.tokens, mt.rep4(), mt.distinct2(), mt.ppl(),
        mean_len, n_tokens);
    std::fprintf(stderr, "%-20s %6zu %8zu %8.4f %10.4f %11.3f %9.2f\n", m.name, mt.generations,
                 mt.tokens, mt.rep4(), mt.distinct2(), mt.ppl(), mean_len);
    std::fflush(stdout);
  }
  std::fprintf(stderr, "\nfirst prompt's continuations:\n%s", samples.c_str());
}

#if defined(TANDEM_BENCH_HAVE_SPM)

std::vector<std::vector<token_id>> encode_file(const tandem::sentencepiece_tokenizer& tok,
                                               const char* path, std::size_t limit) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::vector<token_id>> out;
  while (out.size() < limit && std::getline(in, line)) {
    std::vector<token_id> ids;
    if (tok.encode(line, ids) != errc::ok) std::abort();
    if (!ids.empty()) out.push_back(std::move(ids));
  }
  return out;
}

// log p_expert of `gen` after `prompt`, summed.
double expert_logprob(const tandem::ngram_model& m, std::span<const token_id> prompt,
                      std::span<const token_id> gen) {
  std::vector<token_id> ctx(prompt.begin(), prompt.end());
  double s = 0.0;
  for (token_id t : gen) {
    s += *m.log_prob(ctx, t);
    ctx.push_back(t);
  }
  return s;
}

int kjv(std::size_t n_prompts, std::size_t n_tokens, int repeats) {
  auto tok = tandem::sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_BPE4000);
  if (!tok) return 1;
  const std::size_t vocab = tok->vocab_size();
  const token_id bos = tok->bos_id(), eos = tok->eos_id();
  const auto t0 = clock_type::now();
  const auto train = encode_file(*tok, TANDEM_DATA_DIR "/kjv/train.txt", std::size_t(-1));
  const auto heldout = encode_file(*tok, TANDEM_DATA_DIR "/kjv/heldout.txt", std::size_t(-1));
  auto build = [&](std::size_t order) {
    auto b = tandem::ngram_builder::create({order, vocab, bos, eos});
    for (const auto& s : train)
      if (b->add_sentence(s) != errc::ok) std::abort();
    return *b->build();
  };
  const auto expert_model = build(5);
  const auto amateur_model = build(2);
  std::fprintf(stderr, "trained expert (order 5) and amateur (order 2) on %zu verses in %.1f s\n",
               train.size(), std::chrono::duration<double>(clock_type::now() - t0).count());

  // Overhead with n-gram parts.
  overhead_header();
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::ngram_session e(expert_model), a(amateur_model);
    tandem::contrastive_options p;
    p.form = form;
    auto cd = tandem::make_contrastive(e, a, p);
    std::vector<token_id> tokens(heldout[0].begin(), heldout[0].end());
    for (std::size_t i = 1; tokens.size() < 64; ++i)
      tokens.insert(tokens.end(), heldout[i].begin(), heldout[i].end());
    tokens.resize(64);
    cd->reserve(2 * tokens.size());
    auto step = [&](token_id t) {
      const token_id one[] = {t};
      if (e.append(one) != errc::ok || a.append(one) != errc::ok) std::abort();
    };
    auto undo = [&] {
      if (e.rewind(1) != errc::ok || a.rewind(1) != errc::ok) std::abort();
    };
    print_overhead(form == tandem::contrastive_form::li2022 ? "ngram4000/contrastive_li"
                                                            : "ngram4000/contrastive_obrien",
                   vocab, measure_overhead(*cd, step, undo, tokens, repeats));
  }

  evaluate_quality(
      "kjv_ngram", "\"expert\":\"ngram order 5\",\"amateur\":\"ngram order 2\"", heldout, bos, eos,
      vocab, n_prompts, n_tokens, [&] { return tandem::ngram_session(expert_model); },
      [&] { return tandem::ngram_session(amateur_model); },
      [&](std::span<const token_id> prompt, std::span<const token_id> gen) {
        return expert_logprob(expert_model, prompt, gen);
      },
      [&](std::span<const token_id> ids, std::string& text) { return tok->decode(ids, text); });
  return 0;
}
#endif

#if defined(TANDEM_BENCH_HAVE_LLAMA)
// The held-out verses in the model's tokens, up to `n`.
std::vector<std::vector<token_id>> heldout_tokens(const tandem::llama_tokenizer& tok,
                                                  std::size_t n) {
  std::vector<std::vector<token_id>> heldout;
  std::ifstream in(TANDEM_DATA_DIR "/kjv/heldout.txt");
  std::string line;
  while (heldout.size() < n && std::getline(in, line)) {
    std::vector<token_id> ids;
    if (tok.encode(line, ids) != errc::ok) std::abort();
    if (!ids.empty()) heldout.push_back(std::move(ids));
  }
  return heldout;
}

tandem::llama_session bench_session(const tandem::llama_model_handle& h) {
  tandem::llama_session_options so;
  so.context_size = 512;
  so.threads = 1;
  auto r = tandem::llama_session::create(h, so);
  if (!r) std::abort();
  return std::move(*r);
}

// log p of `gen` after `prompt` under the model of `scorer` (rewound first), summed.
double session_logprob(tandem::llama_session& scorer, std::span<const token_id> prompt,
                       std::span<const token_id> gen) {
  double lp = 0.0;
  if (scorer.size() > 0 && scorer.rewind(scorer.size()) != errc::ok) std::abort();
  if (scorer.append(prompt) != errc::ok) std::abort();
  for (token_id t : gen) {
    lp += tandem::kernels::token_stats(scorer.logits(), t)->logprob;
    const token_id one[] = {t};
    if (scorer.append(one) != errc::ok) std::abort();
  }
  return lp;
}

// The same evaluation on two GGUF models sharing one vocabulary (expert = the larger).
int gguf(const char* expert_path, const char* amateur_path, std::size_t n_prompts,
         std::size_t n_tokens) {
  tandem::llama_quiet_logs();
  auto he = tandem::llama_model_handle::load(expert_path);
  auto ha = tandem::llama_model_handle::load(amateur_path);
  if (!he || !ha) {
    std::fprintf(stderr, "cannot load the GGUF models\n");
    return 1;
  }
  if (he->vocab_size() != ha->vocab_size()) {
    std::fprintf(stderr, "vocab_mismatch: %zu vs %zu\n", he->vocab_size(), ha->vocab_size());
    return 1;
  }
  const tandem::llama_tokenizer tok(*he);
  const token_id bos = tok.adds_bos() && tok.bos() ? *tok.bos() : -1;
  const token_id eos = tok.eos() ? *tok.eos() : -1;
  const auto heldout = heldout_tokens(tok, n_prompts);
  auto scorer = bench_session(*he);
  const std::string extra =
      std::string("\"expert\":\"") + expert_path + "\",\"amateur\":\"" + amateur_path + "\"";
  evaluate_quality(
      "kjv_gguf", extra.c_str(), heldout, bos, eos, he->vocab_size(), n_prompts, n_tokens,
      [&] { return bench_session(*he); }, [&] { return bench_session(*ha); },
      [&](std::span<const token_id> prompt, std::span<const token_id> gen) {
        return session_logprob(scorer, prompt, gen);
      },
      [&](std::span<const token_id> ids, std::string& text) { return tok.decode(ids, text); });
  return 0;
}

// A llama session over another tokenizer, presented in the expert's vocabulary through a
// vocab_map (tokens outside the intersection spelled, their logits -inf). Owns the
// session (on the heap, so the wrapper's reference survives moves).
struct cross_part {
  std::unique_ptr<tandem::llama_session> session;
  std::unique_ptr<tandem::mapped_model<tandem::llama_session>> mapped;
  cross_part(const tandem::llama_model_handle& h, const tandem::vocab_map& map)
      : session(std::make_unique<tandem::llama_session>(bench_session(h))),
        mapped(std::make_unique<tandem::mapped_model<tandem::llama_session>>(
            *tandem::mapped_model<tandem::llama_session>::create(*session, map))) {}
  std::size_t vocab_size() const noexcept { return mapped->vocab_size(); }
  std::size_t size() const noexcept { return mapped->size(); }
  std::span<const float> logits() const noexcept { return mapped->logits(); }
  errc append(std::span<const token_id> t) { return mapped->append(t); }
  errc rewind(std::size_t n) { return mapped->rewind(n); }
};

// Contrastive decoding and proxy tuning across two tokenizers: the expert (a GGUF over
// one tokenizer), an amateur over another tokenizer (mapped into the expert's
// vocabulary), and for proxy tuning a base small model over the expert's tokenizer:
// large = expert, tuned small = the cross-tokenizer model, base small = that one.
int gguf_cross(const char* expert_path, const char* cross_path, const char* base_small_path,
               std::size_t n_prompts, std::size_t n_tokens) {
  tandem::llama_quiet_logs();
  auto he = tandem::llama_model_handle::load(expert_path);
  auto hx = tandem::llama_model_handle::load(cross_path);
  auto hb = tandem::llama_model_handle::load(base_small_path);
  if (!he || !hx || !hb) {
    std::fprintf(stderr, "cannot load the GGUF models\n");
    return 1;
  }
  const tandem::llama_tokenizer tok(*he), xtok(*hx);
  auto map = tandem::vocab_map::build(
      tok.vocab_size(), tandem::piece_source_of(tok), tandem::piece_style::sentencepiece,
      xtok.vocab_size(), tandem::piece_source_of(xtok), tandem::piece_style::sentencepiece);
  if (!map) return 1;
  const auto cov = map->coverage();
  std::fprintf(stderr, "vocab map: %zu of %zu expert tokens have a counterpart among %zu\n",
               cov.mapped, cov.from_size, cov.to_size);
  const token_id bos = tok.adds_bos() && tok.bos() ? *tok.bos() : -1;
  const token_id eos = tok.eos() ? *tok.eos() : -1;
  const auto heldout = heldout_tokens(tok, n_prompts);
  auto scorer = bench_session(*he);
  const auto logprob = [&](std::span<const token_id> prompt, std::span<const token_id> gen) {
    return session_logprob(scorer, prompt, gen);
  };
  char extra[1024];
  std::snprintf(extra, sizeof extra,
                "\"expert\":\"%s\",\"amateur\":\"%s\",\"tokenizers\":\"cross\","
                "\"mapped_fraction\":%.4f",
                expert_path, cross_path, cov.fraction());
  evaluate_quality(
      "kjv_gguf_cross", extra, heldout, bos, eos, he->vocab_size(), n_prompts, n_tokens,
      [&] { return bench_session(*he); }, [&] { return cross_part(*hx, *map); }, logprob,
      [&](std::span<const token_id> ids, std::string& text) { return tok.decode(ids, text); });

  // Proxy tuning: greedy over the same prompts.
  metrics mt;
  const token_id stop[] = {eos};
  tandem::generation_options g;
  g.max_tokens = n_tokens;
  g.stop_tokens = std::span<const token_id>(stop, eos >= 0 ? 1 : 0);
  g.record_logprobs = false;
  for (std::size_t i = 0; i < n_prompts && i < heldout.size(); ++i) {
    if (heldout[i].size() < 6) continue;
    const std::vector<token_id> prompt = verse_prompt(heldout[i], bos);
    auto large = bench_session(*he);
    cross_part tuned(*hx, *map);
    auto base = bench_session(*hb);
    auto pt = tandem::make_proxy_tuning(large, tuned, base);
    if (!pt) return 1;
    tandem::greedy_sampler s;
    tandem::completion out;
    if (const errc r = tandem::generate(*pt, s, prompt, g, out); r != errc::ok) {
      std::fprintf(stderr, "proxy tuning: prompt %zu failed: %s\n", i,
                   std::string(tandem::to_string(r)).c_str());
      continue;
    }
    mt.add(out.tokens);
    mt.expert_logprob += logprob(prompt, out.tokens);
  }
  const double mean_len = mt.generations ? double(mt.tokens) / double(mt.generations) : 0.0;
  std::printf(
      "{\"bench\":\"contrastive_quality\",\"case\":\"kjv_gguf_cross/proxy_tuning\",%s,"
      "\"base_small\":\"%s\",\"generations\":%zu,\"tokens\":%zu,\"rep4\":%.4f,"
      "\"distinct2\":%.4f,\"expert_ppl\":%.3f,\"mean_length\":%.2f,\"max_tokens\":%zu}\n",
      extra, base_small_path, mt.generations, mt.tokens, mt.rep4(), mt.distinct2(), mt.ppl(),
      mean_len, n_tokens);
  std::fprintf(stderr, "%-20s %6zu %8zu %8.4f %10.4f %11.3f %9.2f\n", "proxy_tuning_cross",
               mt.generations, mt.tokens, mt.rep4(), mt.distinct2(), mt.ppl(), mean_len);
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  bool kjv_mode = false;
  const char* gguf_expert = nullptr;
  const char* gguf_amateur = nullptr;
  const char* cross[3] = {nullptr, nullptr, nullptr};  // --gguf-cross EXPERT AMATEUR BASE
  std::string models_dir, pair_name = "trained";
  std::size_t prompts = 100, tokens = 128;
  int repeats = 15;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--kjv"))
      kjv_mode = true;
    else if (!std::strcmp(argv[i], "--prompts") && i + 1 < argc)
      prompts = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc)
      tokens = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--gguf") && i + 2 < argc) {
      gguf_expert = argv[++i];
      gguf_amateur = argv[++i];
    } else if (!std::strcmp(argv[i], "--gguf-cross") && i + 3 < argc) {
      cross[0] = argv[++i];
      cross[1] = argv[++i];
      cross[2] = argv[++i];
    } else if (!std::strcmp(argv[i], "--models") && i + 1 < argc)
      models_dir = argv[++i];
    else if (!std::strcmp(argv[i], "--pair") && i + 1 < argc)
      pair_name = argv[++i];
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc)
      repeats = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--kjv] [--gguf EXPERT AMATEUR | --models DIR [--pair NAME]] "
                   "[--gguf-cross EXPERT AMATEUR BASE_SMALL] [--prompts N] [--tokens N] "
                   "[--repeats N]\n",
                   argv[0]);
      return 2;
    }
  }
  if (cross[0] != nullptr) {
#if defined(TANDEM_BENCH_HAVE_LLAMA)
    return gguf_cross(cross[0], cross[1], cross[2], prompts, tokens);
#else
    std::fprintf(stderr, "--gguf-cross needs llama.cpp (tandem::llama_cpp); not built in\n");
    return 1;
#endif
  }
  std::string models_expert, models_amateur;
  if (!models_dir.empty()) {
    models_expert = models_dir + "/target-" + pair_name + ".gguf";
    models_amateur = models_dir + "/draft.gguf";
    gguf_expert = models_expert.c_str();
    gguf_amateur = models_amateur.c_str();
  }
  if (gguf_expert != nullptr) {
#if defined(TANDEM_BENCH_HAVE_LLAMA)
    return gguf(gguf_expert, gguf_amateur, prompts, tokens);
#else
    std::fprintf(stderr, "--gguf needs llama.cpp (tandem::llama_cpp); not built in\n");
    return 1;
#endif
  }
  overhead_header();
  synthetic_overhead(repeats);
  if (kjv_mode) {
#if defined(TANDEM_BENCH_HAVE_SPM)
    return kjv(prompts, tokens, repeats);
#else
    std::fprintf(stderr, "--kjv needs sentencepiece (tandem::sentencepiece); not built in\n");
    return 1;
#endif
  }
  return 0;
}
