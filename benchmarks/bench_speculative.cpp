// bench_speculative: speculative decoding speedups. One JSON object per case on stdout,
// a human table on stderr. Timings are medians over --reps runs.
//
// 1. Synthetic backends with a cost model (target pass over b tokens costs t0 + t1 (b - 1)
//    microseconds, busy-waited; a draft call costs d microseconds) and a controlled
//    acceptance rate: achieved speedup over target-only beside the prediction from the
//    same cost model and the measured acceptance ("achieved_over_theory"), per policy.
//    Each rep (--synthetic-tokens tokens, default 600) draws its own agreement pattern;
//    the speedup is total CPU time over the reps ("target_only_s" and "speculative_s"
//    are those totals), the theory pools their rounds and
//    acceptance (few rejections make the expected tokens of long drafts overstated, see
//    synthetic_case).
// 2. With --pair NAME:TARGET.gguf:DRAFT.gguf (repeatable; built with llama.cpp): greedy
//    tokens/s of target-only, tandem speculative per policy and llama.cpp's
//    llama-speculative-simple (--llama-bin DIR) with the same models, prompt, token count
//    and draft settings ("tandem_over_llamacpp"); an optional 4th field of --pair sets
//    that pair's draft length (default --draft-max).
//
// Ratios use CPU time (process CPU for tandem, child CPU for llama.cpp's example; one
// compute thread each, -t/-td = --threads; decode only: a 1-token run is subtracted from
// an N-token run), because wall time on a shared machine is inflated unevenly; wall
// figures are printed too. "tandem_over_target" is the median of per-rep ratios against the
// mean speed of the target-only runs made right before and right after each tandem run
// (bracketing cancels a drift of the machine's speed during the rep). The decoders' own clock
// (statistics, the cost model's measurements) is the thread's CPU time too. Policies: fixed (draft
// max), adaptive (+2/-1 up to draft max), p_min (draft max, the draft stops below
// --policy-p-min; compared with llama.cpp's example at the same --spec-draft-p-min; p_min
// is taken over the draft's 10 most likely tokens, renormalised, as the example's draft
// sampler does), cost_model (lengths up to draft max), cost_model_p_min (both), and
// cost_model_lookup / p_min_lookup: the same policies with a fallback_drafter that first
// copies the continuation of the context's last 3 tokens when they occurred earlier
// (prompt lookup, no model) and drafts with the draft model otherwise. A last line per
// case ("NAME/summary") puts the fastest tandem policy whose output equals target-only
// beside the faster of llama.cpp's two settings ("best_tandem_over_best_llamacpp"), and
// the cost model, alone and with lookup, beside target-only and that llama.cpp setting.
// --flash-attn on|off|auto is passed to tandem's sessions and to the example (-fa); on
// CPU, llama.cpp's auto enables it, which makes multi-token passes at long contexts
// several times dearer (a 9-token pass of the 512x8 target at context 200: 38 ms with it,
// 11 ms without). "both" runs every pair with auto, then with off (cases "NAME-fa-off/...").
//
// The table (synthetic part, then the pairs of tools/make-model-pair.sh: close,
// mid and trained at draft max 8, random at draft max 16, flash attention auto and off):
//   bench_speculative --reps 3 --tokens 200 --flash-attn both --models ~/.cache/tandem/models/<key>
// (<key>: the MODEL_DIR line that tools/make-model-pair.sh prints). With --models, a bare
// --pair NAME (close, mid, random, trained) runs only that pair of the folder:
//   bench_speculative --real-only --models ~/.cache/tandem/models/<key> --pair trained
// Folders made before the trained target existed have no "trained" pair.
//
//   bench_speculative [--reps N] [--tokens N] [--synthetic-tokens N (600)]
//                     [--synthetic-only | --real-only] [--models DIR]
//                     [--pair NAME:TARGET:DRAFT[:DRAFT_MAX] | --pair NAME]... [--llama-bin DIR]
//                     [--threads N] [--policies fixed,adaptive,p_min,cost_model,...]
//                     [--draft-max N] [--p-min P] [--policy-p-min P]
//                     [--flash-attn on|off|auto|both]
//                     [--svg DIR] [--cross-pair NAME:TARGET:XDRAFT:DRAFT[:DRAFT_MAX]]...
//                     [--cross-models DIR] [--cross-only]
// 4. Case a, batched (bench_speculative_batched.hpp): for every pair of part 2, N greedy
//    sequences (--batched-n LIST, default 1,4,16; 0: none) through the speculative
//    scheduler and through the plain scheduler, aggregate wall tokens/s
//    ("PAIR/batched/N", "batched_over_plain"; ABBA blocks repeat within a rep until each
//    side ran --batched-min-seconds, default 3); --batched-only runs nothing else:
//   bench_speculative --batched-only --reps 3 --tokens 200 --flash-attn off --models DIR
// 3. Cross-tokenizer pairs (--cross-pair NAME:TARGET:XDRAFT:DRAFT[:DRAFT_MAX], or
//    --cross-models DIR with --models: tools/make-cross-pair.sh's draft over the unigram
//    2000 tokenizer against target-close and target-mid, with the BPE draft as the
//    same-tokenizer reference): acceptance and speedup of text_drafter and of a mapped
//    drafter beside model_drafter with the same-tokenizer draft. --cross-only skips parts
//    1 and 2:
//   bench_speculative --cross-only --reps 3 --tokens 200 --models ~/.cache/tandem/models/<key>
//                     --cross-models ~/.cache/tandem/models/cross-<key>
// --policies A,B,... runs only the named tandem policies of part 2 (e.g. fixed,adaptive,
// p_min,cost_model: the cost model against the policies it must match); each case's JSON has
// the per-rep paired ratios against target-only ("tandem_over_target_reps"); --no-tree
// leaves the token-tree cases out, --batched-n 0 the batched ones. With TANDEM_BENCH_VERBOSE
// set, each linear run prints a line per round (and the cost model's estimates) to stderr.
// --svg DIR writes speedup-against-draft-length and acceptance-by-position charts of the
// synthetic part, per cost-model shape (benchmarks/speculative_charts.hpp).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <time.h>

#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

#include "speculative_charts.hpp"

#ifdef TANDEM_BENCH_HAVE_LLAMA
#include "bench_speculative_batched.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#endif

namespace {

using tandem::errc;
using tandem::token_id;
using clock_type = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Process CPU seconds. Synthetic costs are busy loops of process CPU time and the
// synthetic part is timed in CPU time, so other processes loading the machine do not
// distort its ratios (a wall-clock spin that is preempted ends late).
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// CPU seconds used by waited-for children.
double children_cpu() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

void spin(double micros) {
  const double end = cpu_now() + micros * 1e-6;
  while (cpu_now() < end) {
  }
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Whether a synthetic draft agrees with the target at position n: a hash of n and `seed`
// below `agree` (each rep draws a fresh pattern with its own seed).
bool synthetic_agrees(std::size_t n, std::uint64_t seed, double agree) {
  return static_cast<double>(mix(n ^ 0xabcdefULL ^ (seed * 0x9e3779b97f4a7c15ULL)) >> 11) *
             0x1.0p-53 <
         agree;
}

// A model whose favourite after n tokens is a hash of n; a draft flavour agrees with the
// target's favourite at position n with probability `agree` (synthetic_agrees).
class synthetic_model {
 public:
  synthetic_model(std::size_t vocab, bool draft, double agree, double t0, double t1,
                  std::uint64_t seed = 0)
      : vocab_(vocab),
        draft_(draft),
        agree_(agree),
        t0_(t0),
        t1_(t1),
        seed_(seed),
        logits_(vocab, 0.0f) {
    ctx_.reserve(1 << 16);
  }
  std::size_t vocab_size() const noexcept { return vocab_; }
  std::size_t size() const noexcept { return ctx_.size(); }
  std::span<const float> logits() const noexcept { return logits_; }
  errc append(std::span<const token_id> t) {
    spin(t0_ + t1_ * static_cast<double>(t.size() - 1));
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size());
    return errc::ok;
  }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    spin(t0_ + t1_ * static_cast<double>(t.size() - 1));
    for (std::size_t i = 0; i < t.size(); ++i)
      fill(rows.subspan(i * vocab_, vocab_), ctx_.size() + i + 1);
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size());
    return errc::ok;
  }
  errc rewind(std::size_t n) {
    ctx_.resize(ctx_.size() - n);
    return errc::ok;
  }

 private:
  void fill(std::span<float> out, std::size_t n) const {
    std::fill(out.begin(), out.end(), 0.0f);
    std::size_t fav = mix(n) % vocab_;
    if (draft_ && !synthetic_agrees(n, seed_, agree_)) fav = (fav + 1) % vocab_;
    out[fav] = 3.0f;
  }
  std::size_t vocab_;
  bool draft_;
  double agree_, t0_, t1_;
  std::uint64_t seed_;
  std::vector<token_id> ctx_;
  std::vector<float> logits_;
};

// Records the draft length of every round and counts shadow probes, then defers to P.
template <class P>
struct logged {
  P p;
  std::vector<std::size_t>* lengths;
  std::size_t* shadows;
  std::size_t next() { return p.next(); }
  void update(const tandem::draft_round& r) {
    lengths->push_back(r.drafted);
    if (r.probed && !r.tokens.empty()) ++*shadows;
    p.update(r);
  }
  tandem::draft_plan plan() requires tandem::DraftPlanningPolicy<P> { return p.plan(); }
};

tandem::sampler_chain greedy_chain() {
  tandem::sampler_chain c(0);
  (void)c.add(tandem::sampling::greedy{});
  return c;
}

struct options {
  int reps = 5;
  std::size_t tokens = 200;
  // --synthetic-tokens N: tokens per rep of the synthetic cases (parts 1 and the synthetic
  // trees). At a = 0.9 one rep of 200 tokens holds about 17 rejections, too few for a
  // theory whose expected tokens for long drafts, about 1 / (1 - a), move 6% per 1% of a.
  std::size_t synthetic_tokens = 600;
  bool synthetic_only = false;
  bool real_only = false;  // --real-only: skip the synthetic part
  std::vector<std::string> pairs;
  std::string llama_bin = "/root/.cache/tandem/llama-cpp-nlc3.22.1-v2/prefix/bin";
  int threads = 1;
  std::size_t draft_max = 8;
  float p_min = 0.0f;
  // --models DIR: the pairs of tools/make-model-pair.sh (close, mid and trained at draft
  // max 8, random at 16).
  std::string models;
  int flash_attn = -1;        // -1 auto, 0 off, 1 on: tandem's sessions and llama.cpp's -fa
  float policy_p_min = 0.2f;  // the p_min policy's threshold (fixed draft max, stop below)
  // --svg DIR: the synthetic cases' figures, collected for the charts.
  std::vector<tandem_bench::speculative_case>* charts = nullptr;
  // --cross-pair NAME:TARGET:XDRAFT:DRAFT[:DRAFT_MAX]: cross-tokenizer cases; --cross-models
  // DIR (tools/make-cross-pair.sh's CROSS_DIR, with --models) adds cross-close and
  // cross-mid; --cross-only runs nothing else.
  std::vector<std::string> cross_pairs;
  std::string cross_models;
  bool cross_only = false;
  // --policies A,B,...: run only these tandem policies of part 2 (all when empty).
  std::string policies;
  bool tree_only = false;  // --tree-only: only the token-tree cases (bench_speculative_tree.hpp)
  bool no_tree = false;    // --no-tree: no token-tree cases (a policy comparison alone)
};

// The decoders' clock for statistics and the cost model: this thread's CPU time, the same
// clock the ratios use (one compute thread; other processes then do not distort it).
double thread_cpu() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
tandem::speculative_options cpu_clock_options() {
  tandem::speculative_options so;
  so.clock = thread_cpu;
  return so;
}

// ---- Part 1: synthetic ---------------------------------------------------------------

template <class Policy>
void synthetic_case(const options& o, const char* shape, const char* policy_name,
                    Policy make_policy(), double agree, double t0, double t1, double d) {
  const std::size_t vocab = 64;
  const std::vector<token_id> prompt = {1, 2, 3, 4};
  tandem::generation_options g;
  g.max_tokens = o.synthetic_tokens;
  g.record_logprobs = false;
  std::vector<double> base_s, spec_s;
  double acc = 0.0, tpr = 0.0;
  tandem::speculative_stats last_stats;  // the last rep's, for --svg
  // Pooled over the reps (each with its own agreement pattern): draft lengths, shadow
  // probes, accepted tokens and rejections, CPU seconds of both sides.
  std::vector<std::size_t> lengths;
  lengths.reserve(static_cast<std::size_t>(o.reps) * (o.synthetic_tokens + 8));
  std::size_t shadows = 0, accepted = 0, rejections = 0;
  double base_total = 0.0, spec_total = 0.0;
  for (int rep = 0; rep < o.reps; ++rep) {
    {
      synthetic_model target(vocab, false, 1.0, t0, t1);
      auto s = greedy_chain();
      tandem::completion c;
      const double t = cpu_now();
      (void)tandem::generate(target, s, prompt, g, c);
      base_s.push_back(cpu_now() - t);
    }
    synthetic_model target(vocab, false, 1.0, t0, t1);
    synthetic_model draft(vocab, true, agree, d, 0.0, static_cast<std::uint64_t>(rep));
    tandem::model_drafter drafter(draft, greedy_chain());
    tandem::speculative_decoder dec(
        target, drafter, logged<Policy>{make_policy(), &lengths, &shadows}, cpu_clock_options());
    auto s = greedy_chain();
    tandem::completion c;
    const double t = cpu_now();
    (void)dec.generate(s, prompt, g, c);
    spec_s.push_back(cpu_now() - t);
    base_total += base_s.back();
    spec_total += spec_s.back();
    const auto& st = dec.stats();
    accepted += st.accepted;
    rejections += st.rejections;
    acc = st.acceptance_rate();
    tpr = st.tokens_per_round();
    last_stats = st;
  }
  // Prediction from the cost model and the measured acceptance: expected tokens per unit
  // of modelled time over the rounds actually run (g draft calls and one target pass of
  // g + 1 tokens each, one draft call per shadow probe), against one token per t0 for
  // target-only decoding. The acceptance and the rounds are pooled over the reps: with
  // long drafts the expected tokens, about 1 / (1 - a), are so convex in a that a plug-in
  // estimate from one rep's rejections (about 17 at a = 0.9 and 200 tokens) overstates
  // them by about 1 / rejections on average (adaptive_draft, up to 16 tokens: 5%).
  const double a =
      accepted + rejections == 0
          ? 0.0
          : std::min(static_cast<double>(accepted) / static_cast<double>(accepted + rejections),
                     1.0 - 1e-9);
  double tok = 0.0, time = static_cast<double>(shadows) * d;
  for (std::size_t gl : lengths) {
    tok += (1.0 - std::pow(a, static_cast<double>(gl + 1))) / (1.0 - a);
    time += static_cast<double>(gl) * d + t0 + t1 * static_cast<double>(gl);
  }
  const double th = time > 0.0 ? tok * t0 / time : 1.0;
  const double speedup = spec_total > 0.0 ? base_total / spec_total : 0.0;
  std::printf(
      "{\"bench\":\"speculative\",\"case\":\"synthetic%s/a=%.2f/"
      "%s\",\"shape\":\"%s\",\"policy\":\"%s\",\"agree\":%.2f,"
      "\"t0_us\":%.0f,\"t1_us\":%.0f,\"draft_us\":%.0f,\"tokens\":%zu,\"acceptance\":%.4f,"
      "\"tokens_per_round\":%.3f,\"target_only_s\":%.6f,\"speculative_s\":%.6f,\"speedup\":%.3f,"
      "\"theory_speedup\":%.3f,\"achieved_over_theory\":%.3f}\n",
      std::strcmp(shape, "flat") == 0 ? "" : "-steep", agree, policy_name, shape, policy_name,
      agree, t0, t1, d, o.synthetic_tokens, acc, tpr, base_total, spec_total, speedup, th,
      speedup / th);
  std::fprintf(stderr,
               "synthetic %-5s a=%.2f %-12s accept %.3f  speedup %6.3f  theory %6.3f  ratio %.3f\n",
               shape, agree, policy_name, acc, speedup, th, speedup / th);
  std::fflush(stdout);
  if (o.charts != nullptr)
    o.charts->push_back(tandem_bench::make_speculative_case(
        shape, policy_name, std::strncmp(policy_name, "fixed", 5) == 0, agree, speedup, th,
        last_stats));
}

tandem::fixed_draft fixed2() { return {2}; }
tandem::fixed_draft fixed4() { return {4}; }
tandem::fixed_draft fixed8() { return {8}; }
tandem::adaptive_draft adaptive() { return tandem::adaptive_draft(4, 1, 16); }
tandem::cost_model_draft cost_model() { return tandem::cost_model_draft{}; }

void synthetic(const options& o) {
  // Target: 2 ms per pass plus 0.1 ms ("flat") or 1 ms ("steep", as a CPU target whose
  // 9-token pass costs 5 single passes) per extra token; draft: 0.2 ms per call.
  const double t0 = 2000, d = 200;
  for (const auto& [shape, t1] : {std::pair{"flat", 100.0}, std::pair{"steep", 1000.0}})
    for (double agree : {0.9, 0.6, 0.0}) {
      synthetic_case(o, shape, "fixed2", fixed2, agree, t0, t1, d);
      synthetic_case(o, shape, "fixed4", fixed4, agree, t0, t1, d);
      synthetic_case(o, shape, "fixed8", fixed8, agree, t0, t1, d);
      synthetic_case(o, shape, "adaptive", adaptive, agree, t0, t1, d);
      synthetic_case(o, shape, "cost_model", cost_model, agree, t0, t1, d);
    }
}

// ---- Part 2: real models -------------------------------------------------------------

#ifdef TANDEM_BENCH_HAVE_LLAMA
const char* bench_prompt = "In the beginning God created the heaven and the earth.";

// Throughput of one run: wall-clock and CPU-time tokens per second. The CPU figure
// (process or child CPU time, one compute thread) is what the ratios use: the machine
// may be loaded by other work, which inflates wall time unevenly.
struct speed {
  double wall_tps = -1.0;
  double cpu_tps = -1.0;
};

// Acceptance (percent) that the last llama-speculative-simple run reported.
double accept_pct = -1.0;

// One llama-speculative-simple run: its reported decode speed (wall), and its child CPU
// time. Returns the generated token count in `n`.
speed llamacpp_run(const options& o, const std::string& target, const std::string& draft,
                   std::size_t n_max, float p_min, std::size_t n_predict, double& cpu, int& n) {
  char cmd[4096];
  const char* fa = o.flash_attn < 0 ? "auto" : o.flash_attn == 0 ? "off" : "on";
  std::snprintf(cmd, sizeof cmd,
                "%s/llama-speculative-simple -m %s -md %s --spec-type draft-simple "
                "--spec-draft-n-max %zu --spec-draft-n-min 0 --spec-draft-p-min %g -p \"%s\" "
                "-n %zu -c 2048 -t %d -td %d -fa %s --temp 0 -s 1 --ignore-eos 2>&1",
                o.llama_bin.c_str(), target.c_str(), draft.c_str(), n_max,
                static_cast<double>(p_min), bench_prompt, n_predict, o.threads, o.threads, fa);
  const double c0 = children_cpu();
  FILE* f = popen(cmd, "r");
  speed r;
  if (!f) return r;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    if (const char* q = std::strstr(line, "accept    = "))
      (void)std::sscanf(q, "accept    = %lf%%", &accept_pct);
    const char* p = std::strstr(line, "decoded");
    if (!p) continue;
    double secs = 0, tps = 0;
    if (std::sscanf(p, "decoded %d tokens in %lf seconds, speed: %lf t/s", &n, &secs, &tps) == 3)
      r.wall_tps = tps;
  }
  pclose(f);
  cpu = children_cpu() - c0;
  return r;
}

// llama-speculative-simple's throughput for o.tokens tokens; its CPU figure is the CPU
// time of that run minus a run of 1 token (model load, prompt), over the difference in
// tokens.
speed llamacpp_speculative(const options& o, const std::string& target, const std::string& draft,
                           std::size_t n_max, float p_min) {
  double cpu_full = 0, cpu_one = 0;
  int n_full = 0, n_one = 0;
  // One retry of a run that reported nothing (a transient failure on a busy machine).
  if (llamacpp_run(o, target, draft, n_max, p_min, 1, cpu_one, n_one).wall_tps < 0)
    (void)llamacpp_run(o, target, draft, n_max, p_min, 1, cpu_one, n_one);
  speed r = llamacpp_run(o, target, draft, n_max, p_min, o.tokens, cpu_full, n_full);
  if (r.wall_tps < 0) r = llamacpp_run(o, target, draft, n_max, p_min, o.tokens, cpu_full, n_full);
  if (n_full > n_one && cpu_full > cpu_one)
    r.cpu_tps = static_cast<double>(n_full - n_one) / (cpu_full - cpu_one);
  return r;
}

// One timed generation: CPU and wall seconds of the call, tokens produced.
struct run_result {
  double cpu = 0.0, wall = 0.0;
  std::size_t n = 0;
};

// Decode throughput without prompt processing: the difference between a run of
// o.tokens tokens and a run of 1 token, over the difference in tokens.
speed decode_speed(const run_result& full, const run_result& one) {
  speed r;
  if (full.n <= one.n) return r;
  const auto dn = static_cast<double>(full.n - one.n);
  if (full.cpu > one.cpu) r.cpu_tps = dn / (full.cpu - one.cpu);
  if (full.wall > one.wall) r.wall_tps = dn / (full.wall - one.wall);
  return r;
}

tandem::llama_session_options session_options(const options& o) {
  tandem::llama_session_options so;
  so.threads = o.threads;
  so.context_size = 2048;
  so.flash_attention = o.flash_attn;
  return so;
}

// Runs `decode(g, c)`, a greedy generation of up to `max_tokens` tokens into `c`, timed
// in process CPU time; the tokens go to `*tokens` when not null.
template <class Decode>
run_result timed_greedy(std::size_t max_tokens, std::vector<token_id>* tokens, Decode&& decode) {
  tandem::generation_options g;
  g.max_tokens = max_tokens;
  g.record_logprobs = false;
  tandem::completion c;
  const double c0 = cpu_now();
  if (decode(g, c) != errc::ok) return {};
  const double cpu = cpu_now() - c0;
  if (tokens) *tokens = c.tokens;
  return {cpu, c.seconds, c.tokens.size()};
}

// Target-only greedy decoding through tandem::generate.
run_result target_only(const options& o, const tandem::llama_model_handle& tm,
                       std::span<const token_id> prompt, std::size_t max_tokens,
                       std::vector<token_id>* tokens) {
  auto target = tandem::llama_session::create(tm, session_options(o));
  if (!target) return {};
  auto s = greedy_chain();
  return timed_greedy(max_tokens, tokens, [&](const auto& g, auto& c) {
    return tandem::generate(*target, s, prompt, g, c);
  });
}

// Target-only decode throughput (decode_speed of an o.tokens-token run and a 1-token run).
speed target_only_speed(const options& o, const tandem::llama_model_handle& tm,
                        std::span<const token_id> prompt) {
  return decode_speed(target_only(o, tm, prompt, o.tokens, nullptr),
                      target_only(o, tm, prompt, 1, nullptr));
}

// A draft-length policy that prints each round (length, acceptance, times) and, for the
// cost model, its estimates after it to stderr, then defers to P (TANDEM_BENCH_VERBOSE).
template <class P>
struct linear_traced {
  P p;
  [[nodiscard]] std::size_t next() { return p.next(); }
  [[nodiscard]] tandem::draft_plan plan() { return tandem::plan_of(p); }
  [[nodiscard]] errc validate() const noexcept { return tandem::detail::validate_of(p); }
  void update(const tandem::draft_round& r) {
    p.update(r);
    std::fprintf(stderr, "  round: req %2zu acc %2zu%s target %zu %.2f ms draft %.2f ms",
                 r.requested, r.accepted, r.probed ? " (probe)" : "", r.target_batch,
                 r.target_seconds * 1e3, r.draft_seconds * 1e3);
    if constexpr (requires { p.target_cost(1); })
      std::fprintf(stderr,
                   " | T(1..4) %.2f %.2f %.2f %.2f d %.2f a_i %.2f %.2f %.2f E(1..3) %.2f %.2f "
                   "%.2f S(1..3) %.2f %.2f %.2f next %zu",
                   p.target_cost(1) * 1e3, p.target_cost(2) * 1e3, p.target_cost(3) * 1e3,
                   p.target_cost(4) * 1e3, p.draft_cost() * 1e3, p.acceptance_at(0),
                   p.acceptance_at(1), p.acceptance_at(2), p.expected_tokens(1),
                   p.expected_tokens(2), p.expected_tokens(3), p.predicted_speedup(1),
                   p.predicted_speedup(2), p.predicted_speedup(3), p.next());
    std::fprintf(stderr, "\n");
  }
};

// One greedy generation of `target` with `drafter` and `policy`, timed in process CPU time.
template <class Drafter, class Policy>
run_result timed_speculative(tandem::llama_session& target, Drafter& drafter, Policy policy,
                             std::span<const token_id> prompt, std::size_t max_tokens,
                             tandem::speculative_stats* stats, std::vector<token_id>* tokens) {
  tandem::speculative_decoder dec(target, drafter, std::move(policy), cpu_clock_options());
  auto s = greedy_chain();
  const run_result r = timed_greedy(
      max_tokens, tokens, [&](const auto& g, auto& c) { return dec.generate(s, prompt, g, c); });
  if (stats) *stats = dec.stats();
  if (std::getenv("TANDEM_BENCH_VERBOSE"))
    std::fprintf(stderr,
                 "  wall %.4f s: target %.4f s (%zu calls), draft %.4f s (%zu calls), cpu %.4f s\n",
                 r.wall, dec.stats().target_seconds, dec.stats().target_calls,
                 dec.stats().draft_seconds, dec.stats().draft_calls, r.cpu);
  return r;
}

template <class Policy>
run_result tandem_speculative(const options& o, const tandem::llama_model_handle& tm,
                              const tandem::llama_model_handle& dm,
                              std::span<const token_id> prompt, Policy policy, float p_min,
                              std::size_t max_tokens, tandem::speculative_stats* stats,
                              std::vector<token_id>* tokens, bool lookup = false,
                              std::uint32_t tree_leaves = 0) {
  tandem::llama_session_options so = session_options(o);
  so.tree_leaves = tree_leaves;  // > 0: sessions as the tree decoder's (for comparisons)
  auto target = tandem::llama_session::create(tm, so);
  auto draft = tandem::llama_session::create(dm, so);
  if (!target || !draft) return {};
  // p_min over the draft's 10 most likely tokens, as llama.cpp's draft sampler (top-k 10).
  tandem::model_drafter model(*draft, greedy_chain(), {p_min, 10});
  // With lookup: a continuation of the context's last 3 tokens seen earlier in it first
  // (prompt lookup), the draft model when there is none.
  tandem::prompt_lookup_drafter cache(model.vocab_size(), {3, 4});
  tandem::fallback_drafter both(cache, model);
  const auto run = [&](auto& drafter) {
    if (std::getenv("TANDEM_BENCH_VERBOSE") && max_tokens > 1)
      return timed_speculative(*target, drafter, linear_traced<Policy>{std::move(policy)}, prompt,
                               max_tokens, stats, tokens);
    return timed_speculative(*target, drafter, std::move(policy), prompt, max_tokens, stats,
                             tokens);
  };
  return lookup ? run(both) : run(model);
}

speed median_speed(const std::vector<speed>& v) {
  std::vector<double> w, c;
  for (const speed& s : v) {
    w.push_back(s.wall_tps);
    c.push_back(s.cpu_tps);
  }
  return {median(w), median(c)};
}

void real_pair(const options& base_options, const std::string& spec) {
  const auto a = spec.find(':');
  const auto b = spec.find(':', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    std::fprintf(stderr, "bench_speculative: --pair needs NAME:TARGET:DRAFT\n");
    return;
  }
  const auto c = spec.find(':', b + 1);
  const std::string name = spec.substr(0, a), tpath = spec.substr(a + 1, b - a - 1),
                    dpath =
                        spec.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1);
  options o = base_options;
  if (c != std::string::npos)
    o.draft_max = static_cast<std::size_t>(std::atol(spec.c_str() + c + 1));
  auto tm = tandem::llama_model_handle::load(tpath);
  auto dm = tandem::llama_model_handle::load(dpath);
  if (!tm || !dm) {
    std::fprintf(stderr, "bench_speculative: cannot load %s or %s\n", tpath.c_str(), dpath.c_str());
    return;
  }
  tandem::llama_tokenizer tok(*tm, {true});  // BOS, as llama.cpp's example adds
  std::vector<token_id> prompt;
  if (tok.encode(bench_prompt, prompt) != errc::ok) return;

  std::vector<speed> base_runs;
  std::vector<token_id> ref_tokens;
  for (int rep = 0; rep < o.reps; ++rep) {
    const run_result full = target_only(o, *tm, prompt, o.tokens, &ref_tokens);
    const run_result one = target_only(o, *tm, prompt, 1, nullptr);
    base_runs.push_back(decode_speed(full, one));
  }
  // llama.cpp's example at the run's p_min, and at the p_min policy's threshold: each
  // tandem policy is compared with the example at the same draft max and p_min.
  struct llama_ref {
    speed s;
    double accept = -1.0;
    float p_min = 0.0f;
  };
  const auto llama_at = [&](float p_min) {
    std::vector<speed> runs;
    for (int rep = 0; rep < o.reps; ++rep)
      runs.push_back(llamacpp_speculative(o, tpath, dpath, o.draft_max, p_min));
    return llama_ref{median_speed(runs), accept_pct, p_min};
  };
  const speed base = median_speed(base_runs);
  const llama_ref llama_plain = llama_at(o.p_min);
  const llama_ref llama_pmin = o.policy_p_min == o.p_min ? llama_plain : llama_at(o.policy_p_min);

  // Per case: the best tandem policy against the better of llama.cpp's two settings.
  struct best_run {
    const char* policy = "";
    double cpu_tps = 0.0, over_target = 0.0;
  };
  best_run best, cost, cost_lookup;
  auto report = [&](const char* policy, auto make, const llama_ref& ref, bool lookup = false) {
    if (!o.policies.empty() &&
        o.policies.find("," + std::string(policy) + ",") == std::string::npos)
      return;
    const speed llama = ref.s;
    const double llama_accept = ref.accept;
    std::vector<speed> runs;
    std::vector<double> paired;
    tandem::speculative_stats st;
    std::vector<token_id> toks;
    speed before = target_only_speed(o, *tm, prompt);
    for (int rep = 0; rep < o.reps; ++rep) {
      const run_result full =
          tandem_speculative(o, *tm, *dm, prompt, make(), ref.p_min, o.tokens, &st, &toks, lookup);
      const run_result one =
          tandem_speculative(o, *tm, *dm, prompt, make(), ref.p_min, 1, nullptr, nullptr, lookup);
      runs.push_back(decode_speed(full, one));
      // Target-only runs right before and after it: the speedup over target-only is the
      // median of these paired ratios, which drifts of a shared machine's speed affect
      // less (the mean of the two cancels a steady drift).
      const speed after = target_only_speed(o, *tm, prompt);
      if (before.cpu_tps > 0 && after.cpu_tps > 0 && runs.back().cpu_tps > 0)
        paired.push_back(runs.back().cpu_tps / (0.5 * (before.cpu_tps + after.cpu_tps)));
      before = after;
    }
    const speed m = median_speed(runs);
    const double over_target = paired.empty() ? m.cpu_tps / base.cpu_tps : median(paired);
    // The per-rep paired ratios, in rep order (a policy that settles low in one run shows
    // there, where the median hides it).
    std::string reps_json = "[";
    for (std::size_t i = 0; i < paired.size(); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.3f", i > 0 ? "," : "", paired[i]);
      reps_json += buf;
    }
    reps_json += "]";
    const bool same = toks == ref_tokens;
    if (same && m.cpu_tps > best.cpu_tps) best = {policy, m.cpu_tps, over_target};
    if (std::strcmp(policy, "cost_model") == 0) cost = {policy, m.cpu_tps, over_target};
    if (std::strcmp(policy, "cost_model_lookup") == 0)
      cost_lookup = {policy, m.cpu_tps, over_target};
    const double over_llama = llama.cpu_tps > 0 ? m.cpu_tps / llama.cpu_tps : 0.0;
    std::printf(
        "{\"bench\":\"speculative\",\"case\":\"%s%s/%s\",\"pair\":\"%s\",\"policy\":\"%s\","
        "\"tokens\":%zu,\"draft_max\":%zu,\"p_min\":%g,\"threads\":%d,\"flash_attn\":%d,"
        "\"acceptance\":%.4f,"
        "\"tokens_per_round\":%.3f,\"target_only_cpu_tps\":%.2f,\"tandem_cpu_tps\":%.2f,"
        "\"llamacpp_spec_cpu_tps\":%.2f,\"target_only_wall_tps\":%.2f,\"tandem_wall_tps\":%.2f,"
        "\"llamacpp_spec_wall_tps\":%.2f,\"tandem_over_target\":%.3f,"
        "\"tandem_over_target_reps\":%s,"
        "\"llamacpp_over_target\":%.3f,\"tandem_over_llamacpp\":%.3f,"
        "\"tandem_over_llamacpp_wall\":%.3f,\"llamacpp_acceptance\":%.4f,\"output_equals_target\":%"
        "s}\n",
        name.c_str(),
        o.flash_attn == 0   ? "-fa-off"
        : o.flash_attn == 1 ? "-fa-on"
                            : "",
        policy, name.c_str(), policy, o.tokens, o.draft_max, static_cast<double>(ref.p_min),
        o.threads, o.flash_attn, st.acceptance_rate(), st.tokens_per_round(), base.cpu_tps,
        m.cpu_tps, llama.cpu_tps, base.wall_tps, m.wall_tps, llama.wall_tps, over_target,
        reps_json.c_str(), llama.cpu_tps / base.cpu_tps, over_llama,
        llama.wall_tps > 0 ? m.wall_tps / llama.wall_tps : 0.0, llama_accept / 100.0,
        same ? "true" : "false");
    std::fprintf(stderr,
                 "%-10s %-10s accept %.3f | CPU t/s: target %7.1f tandem %7.1f (%.2fx %s) "
                 "llama.cpp %7.1f (%.2fx) tandem/llama %.2f | wall tandem/llama %.2f%s\n",
                 name.c_str(), policy, st.acceptance_rate(), base.cpu_tps, m.cpu_tps, over_target,
                 reps_json.c_str(), llama.cpu_tps, llama.cpu_tps / base.cpu_tps, over_llama,
                 llama.wall_tps > 0 ? m.wall_tps / llama.wall_tps : 0.0,
                 same ? "" : "  OUTPUT DIFFERS");
    std::fflush(stdout);
  };
  const std::size_t n = o.draft_max;
  report(
      "fixed", [n] { return tandem::fixed_draft{n}; }, llama_plain);
  report(
      "adaptive", [n] { return tandem::adaptive_draft(std::min<std::size_t>(4, n), 1, n); },
      llama_plain);
  report(
      "p_min", [n] { return tandem::fixed_draft{n}; }, llama_pmin);
  const auto cost_model = [n] {
    tandem::cost_model_options c;
    c.max_length = n;
    return tandem::cost_model_draft(c);
  };
  report("cost_model", cost_model, llama_plain);
  report("cost_model_p_min", cost_model, llama_pmin);
  report("cost_model_lookup", cost_model, llama_plain, true);
  report(
      "p_min_lookup", [n] { return tandem::fixed_draft{n}; }, llama_pmin, true);

  const llama_ref& lbest = llama_pmin.s.cpu_tps > llama_plain.s.cpu_tps ? llama_pmin : llama_plain;
  const char* fa = o.flash_attn == 0 ? "-fa-off" : o.flash_attn == 1 ? "-fa-on" : "";
  std::printf(
      "{\"bench\":\"speculative\",\"case\":\"%s%s/summary\",\"pair\":\"%s\",\"flash_attn\":%d,"
      "\"draft_max\":%zu,\"best_tandem_policy\":\"%s\",\"best_tandem_over_target\":%.3f,"
      "\"best_llamacpp_p_min\":%g,\"best_llamacpp_over_target\":%.3f,"
      "\"best_tandem_over_best_llamacpp\":%.3f,\"cost_model_over_target\":%.3f,"
      "\"cost_model_over_best_llamacpp\":%.3f,\"cost_model_lookup_over_target\":%.3f,"
      "\"cost_model_lookup_over_best_llamacpp\":%.3f}\n",
      name.c_str(), fa, name.c_str(), o.flash_attn, o.draft_max, best.policy, best.over_target,
      static_cast<double>(lbest.p_min), lbest.s.cpu_tps / base.cpu_tps,
      lbest.s.cpu_tps > 0 ? best.cpu_tps / lbest.s.cpu_tps : 0.0, cost.over_target,
      lbest.s.cpu_tps > 0 ? cost.cpu_tps / lbest.s.cpu_tps : 0.0, cost_lookup.over_target,
      lbest.s.cpu_tps > 0 ? cost_lookup.cpu_tps / lbest.s.cpu_tps : 0.0);
  std::fprintf(stderr,
               "%-10s summary: best tandem %s %.2fx target, %.2fx llama.cpp's best (p_min %g, "
               "%.2fx target); cost model %.2fx target; cost model with lookup %.2fx target, "
               "%.2fx llama.cpp's best\n",
               name.c_str(), best.policy, best.over_target,
               lbest.s.cpu_tps > 0 ? best.cpu_tps / lbest.s.cpu_tps : 0.0,
               static_cast<double>(lbest.p_min), lbest.s.cpu_tps / base.cpu_tps, cost.over_target,
               cost_lookup.over_target,
               lbest.s.cpu_tps > 0 ? cost_lookup.cpu_tps / lbest.s.cpu_tps : 0.0);
  std::fflush(stdout);
}

// ---- Cross-tokenizer pairs ------------------------------------------------------------
// A target, a draft over another tokenizer (XDRAFT) and a draft over the target's own
// tokenizer (DRAFT, the same-tokenizer reference): greedy decoding at a fixed draft length
// with (1) DRAFT through model_drafter ("same_tokenizer"), (2) XDRAFT through text_drafter
// (drafts in its own tokens, re-tokenized for the target: "text_drafter") and (3) XDRAFT
// through a vocab_map and mapped_model ("mapped_drafter"). Each line carries acceptance,
// tokens per round and CPU tokens/s against target-only (paired ratios, as above); the
// summary line puts the cross-tokenizer drafters beside the reference.

enum class cross_kind { same_tokenizer, text_drafter, mapped_drafter };

const char* cross_name(cross_kind k) {
  switch (k) {
    case cross_kind::same_tokenizer:
      return "same_tokenizer";
    case cross_kind::text_drafter:
      return "text_drafter";
    case cross_kind::mapped_drafter:
      return "mapped_drafter";
  }
  return "";
}

run_result cross_speculative(const options& o, const tandem::llama_model_handle& tm,
                             const tandem::llama_model_handle& dm, cross_kind kind,
                             std::span<const token_id> prompt, std::size_t max_tokens,
                             tandem::speculative_stats* stats, std::vector<token_id>* tokens) {
  auto target = tandem::llama_session::create(tm, session_options(o));
  auto draft = tandem::llama_session::create(dm, session_options(o));
  if (!target || !draft) return {};
  const tandem::llama_tokenizer ttok(tm), dtok(dm);
  switch (kind) {
    case cross_kind::same_tokenizer: {
      tandem::model_drafter d(*draft, greedy_chain());
      return timed_speculative(*target, d, tandem::fixed_draft{o.draft_max}, prompt, max_tokens,
                               stats, tokens);
    }
    case cross_kind::text_drafter: {
      const auto bos = dtok.bos();
      std::vector<token_id> prefix;
      if (bos) prefix.push_back(*bos);
      using text_t = tandem::text_drafter<tandem::llama_session, tandem::sampler_chain,
                                          tandem::llama_tokenizer, tandem::llama_tokenizer>;
      auto d = text_t::create(*draft, greedy_chain(), dtok, ttok, prefix);
      if (!d) return {};
      return timed_speculative(*target, *d, tandem::fixed_draft{o.draft_max}, prompt, max_tokens,
                               stats, tokens);
    }
    case cross_kind::mapped_drafter: {
      auto map = tandem::vocab_map::build(
          ttok.vocab_size(), tandem::piece_source_of(ttok), tandem::piece_style::sentencepiece,
          dtok.vocab_size(), tandem::piece_source_of(dtok), tandem::piece_style::sentencepiece);
      if (!map) return {};
      using mapped = tandem::mapped_model<tandem::llama_session>;
      auto m = mapped::create(*draft, *map);
      if (!m) return {};
      tandem::model_drafter<mapped, tandem::sampler_chain> d(*m, greedy_chain());
      return timed_speculative(*target, d, tandem::fixed_draft{o.draft_max}, prompt, max_tokens,
                               stats, tokens);
    }
  }
  return {};
}

void cross_pair(const options& base_options, const std::string& spec) {
  std::vector<std::string> f;
  for (std::size_t at = 0;;) {
    const auto next = spec.find(':', at);
    f.push_back(spec.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) break;
    at = next + 1;
  }
  if (f.size() < 4) {
    std::fprintf(stderr, "bench_speculative: --cross-pair needs NAME:TARGET:XDRAFT:DRAFT\n");
    return;
  }
  options o = base_options;
  if (f.size() > 4) o.draft_max = static_cast<std::size_t>(std::atol(f[4].c_str()));
  auto tm = tandem::llama_model_handle::load(f[1]);
  auto xm = tandem::llama_model_handle::load(f[2]);
  auto dm = tandem::llama_model_handle::load(f[3]);
  if (!tm || !xm || !dm) {
    std::fprintf(stderr, "bench_speculative: cannot load %s, %s or %s\n", f[1].c_str(),
                 f[2].c_str(), f[3].c_str());
    return;
  }
  tandem::llama_tokenizer tok(*tm, {true});
  std::vector<token_id> prompt;
  if (tok.encode(bench_prompt, prompt) != errc::ok) return;
  std::vector<token_id> ref_tokens;
  (void)target_only(o, *tm, prompt, o.tokens, &ref_tokens);
  double over[3] = {}, accept[3] = {};
  for (const cross_kind k :
       {cross_kind::same_tokenizer, cross_kind::text_drafter, cross_kind::mapped_drafter}) {
    const tandem::llama_model_handle& d = k == cross_kind::same_tokenizer ? *dm : *xm;
    std::vector<speed> runs, bases;
    std::vector<double> paired;
    tandem::speculative_stats st;
    std::vector<token_id> toks;
    for (int rep = 0; rep < o.reps; ++rep) {
      runs.push_back(decode_speed(cross_speculative(o, *tm, d, k, prompt, o.tokens, &st, &toks),
                                  cross_speculative(o, *tm, d, k, prompt, 1, nullptr, nullptr)));
      bases.push_back(target_only_speed(o, *tm, prompt));
      if (bases.back().cpu_tps > 0 && runs.back().cpu_tps > 0)
        paired.push_back(runs.back().cpu_tps / bases.back().cpu_tps);
    }
    const speed m = median_speed(runs), base = median_speed(bases);
    const auto i = static_cast<std::size_t>(k);
    over[i] = paired.empty() ? 0.0 : median(paired);
    accept[i] = st.acceptance_rate();
    const bool same = toks == ref_tokens;
    std::printf(
        "{\"bench\":\"speculative\",\"case\":\"%s/%s\",\"pair\":\"%s\",\"drafter\":\"%s\","
        "\"tokenizers\":\"%s\",\"tokens\":%zu,\"draft_max\":%zu,\"threads\":%d,"
        "\"flash_attn\":%d,\"acceptance\":%.4f,\"tokens_per_round\":%.3f,"
        "\"target_only_cpu_tps\":%.2f,\"tandem_cpu_tps\":%.2f,\"target_only_wall_tps\":%.2f,"
        "\"tandem_wall_tps\":%.2f,\"tandem_over_target\":%.3f,\"output_equals_target\":%s}\n",
        f[0].c_str(), cross_name(k), f[0].c_str(), cross_name(k),
        k == cross_kind::same_tokenizer ? "same" : "cross", o.tokens, o.draft_max, o.threads,
        o.flash_attn, st.acceptance_rate(), st.tokens_per_round(), base.cpu_tps, m.cpu_tps,
        base.wall_tps, m.wall_tps, over[i], same ? "true" : "false");
    std::fprintf(stderr, "%-12s %-15s accept %.3f | tokens/round %.2f | CPU %.2fx target%s\n",
                 f[0].c_str(), cross_name(k), st.acceptance_rate(), st.tokens_per_round(), over[i],
                 same ? "" : "  OUTPUT DIFFERS");
    std::fflush(stdout);
  }
  std::printf(
      "{\"bench\":\"speculative\",\"case\":\"%s/summary\",\"pair\":\"%s\",\"draft_max\":%zu,"
      "\"same_tokenizer_acceptance\":%.4f,\"text_drafter_acceptance\":%.4f,"
      "\"mapped_drafter_acceptance\":%.4f,\"same_tokenizer_over_target\":%.3f,"
      "\"text_drafter_over_target\":%.3f,\"mapped_drafter_over_target\":%.3f,"
      "\"text_drafter_over_same_tokenizer\":%.3f}\n",
      f[0].c_str(), f[0].c_str(), o.draft_max, accept[0], accept[1], accept[2], over[0], over[1],
      over[2], over[0] > 0 ? over[1] / over[0] : 0.0);
  std::fflush(stdout);
}
#endif

}  // namespace

#include "bench_speculative_tree.hpp"  // the token-tree cases, over the helpers above

int main(int argc, char** argv) {
  options o;
  std::string svg_dir;  // --svg DIR: speedup and acceptance charts of the synthetic part
  std::vector<tandem_bench::speculative_case> chart_cases;
  // Case a (bench_speculative_batched.hpp): --batched-n LIST (default 1,4,16; "0": off),
  // --batched-only (nothing else); runs over the same pairs as part 2.
  std::string batched_n = "1,4,16";
  bool batched_only = false;
  double batched_min_seconds = 3.0;  // --batched-min-seconds: each side's least time per rep
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--reps" && v)
      o.reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--tokens" && v)
      o.tokens = static_cast<std::size_t>(std::atol(argv[++i]));
    else if (a == "--synthetic-tokens" && v)
      o.synthetic_tokens = static_cast<std::size_t>(std::atol(argv[++i]));
    else if (a == "--synthetic-only")
      o.synthetic_only = true;
    else if (a == "--real-only")
      o.real_only = true;
    else if (a == "--pair" && v)
      o.pairs.emplace_back(argv[++i]);
    else if (a == "--llama-bin" && v)
      o.llama_bin = argv[++i];
    else if (a == "--threads" && v)
      o.threads = std::atoi(argv[++i]);
    else if (a == "--draft-max" && v)
      o.draft_max = static_cast<std::size_t>(std::atol(argv[++i]));
    else if (a == "--p-min" && v)
      o.p_min = static_cast<float>(std::atof(argv[++i]));
    else if (a == "--policy-p-min" && v)
      o.policy_p_min = static_cast<float>(std::atof(argv[++i]));
    else if (a == "--flash-attn" && v)
      o.flash_attn = std::strcmp(argv[++i], "both") == 0 ? 2
                     : std::strcmp(argv[i], "on") == 0   ? 1
                     : std::strcmp(argv[i], "off") == 0  ? 0
                                                         : -1;
    else if (a == "--models" && v)
      o.models = argv[++i];
    else if (a == "--policies" && v)
      o.policies = "," + std::string(argv[++i]) + ",";
    else if (a == "--svg" && v)
      svg_dir = argv[++i];
    else if (a == "--cross-pair" && v)
      o.cross_pairs.emplace_back(argv[++i]);
    else if (a == "--cross-models" && v)
      o.cross_models = argv[++i];
    else if (a == "--cross-only")
      o.cross_only = true;
    else if (a == "--tree-only")
      o.tree_only = true;
    else if (a == "--no-tree")
      o.no_tree = true;
    else if (a == "--batched-n" && v)
      batched_n = argv[++i];
    else if (a == "--batched-min-seconds" && v)
      batched_min_seconds = std::max(0.0, std::atof(argv[++i]));
    else if (a == "--batched-only")
      batched_only = o.real_only = true;
    else {
      std::fprintf(stderr, "bench_speculative: unknown or incomplete flag %s\n", a.c_str());
      return 2;
    }
  }
  if (!o.cross_models.empty()) {
    if (o.models.empty()) {
      std::fprintf(stderr, "bench_speculative: --cross-models needs --models\n");
      return 2;
    }
    const std::string m = o.models + "/", x = o.cross_models + "/draft-unigram.gguf:";
    o.cross_pairs.push_back("cross-close:" + m + "target-close.gguf:" + x + m + "draft.gguf:8");
    o.cross_pairs.push_back("cross-mid:" + m + "target-mid.gguf:" + x + m + "draft.gguf:8");
  }
  if (!o.models.empty() && !o.cross_only) {
    // Bare --pair NAMEs pick pairs of the folder; none: all of them.
    std::vector<std::string> names;
    std::erase_if(o.pairs, [&](const std::string& p) {
      if (p.find(':') != std::string::npos) return false;
      names.push_back(p);
      return true;
    });
    const std::string m = o.models + "/", d = m + "draft.gguf";
    auto exists = [](const std::string& path) {
      std::FILE* f = std::fopen(path.c_str(), "rb");
      if (f != nullptr) std::fclose(f);
      return f != nullptr;
    };
    if (names.empty()) {
      names = {"close", "mid", "random"};
      if (exists(m + "target-trained.gguf")) names.emplace_back("trained");  // newer folders
    }
    for (const std::string& name : names) {
      const std::string target = m + "target-" + name + ".gguf";
      if (!exists(target)) {
        std::fprintf(stderr, "bench_speculative: %s not found\n", target.c_str());
        return 2;
      }
      o.pairs.push_back(name + ":" + target + ":" + d + (name == "random" ? ":16" : ":8"));
    }
  }
  if (!svg_dir.empty()) o.charts = &chart_cases;
  if (!o.real_only && !o.cross_only && !o.tree_only) synthetic(o);
  if (!o.real_only && !o.cross_only) synthetic_trees(o);
  if (!svg_dir.empty() && !o.real_only &&
      !tandem_bench::write_speculative_charts(svg_dir, chart_cases))
    return 1;
  if (o.synthetic_only) return 0;
#ifdef TANDEM_BENCH_HAVE_LLAMA
  tandem::llama_quiet_logs();
  const std::vector<std::string> batched_pairs = o.pairs;
  if (batched_only) {
    o.pairs.clear();  // part 2 skipped; case a below keeps its own list
    o.cross_pairs.clear();
  }
  if (o.flash_attn == 2) {  // --flash-attn both: every pair with auto, then with off
    for (const int fa : {-1, 0}) {
      options f = o;
      f.flash_attn = fa;
      for (const auto& p : o.pairs) real_pair(f, p);
    }
  } else {
    for (const auto& p : o.pairs)
      if (!o.tree_only) real_pair(o, p);
  }
  if (!o.cross_only && !o.no_tree)
    for (const auto& p : o.pairs) tree_pair(o, p);
  for (const auto& p : o.cross_pairs) cross_pair(o, p);
  tandem_bench::batched_options bo{
      o.reps, o.tokens, o.threads, o.flash_attn == 2 ? 0 : o.flash_attn, {}, batched_min_seconds};
  for (const char* c = batched_n.c_str(); *c != '\0';) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(c, &end, 10);
    if (end == c) break;
    if (n > 0) bo.n_seq.push_back(n);
    c = *end == ',' ? end + 1 : end;
  }
  for (const auto& p : batched_pairs) tandem_bench::batched_pair(p, bench_prompt, bo);
#else
  if (!o.pairs.empty())
    std::fprintf(stderr, "bench_speculative: built without llama.cpp; --pair ignored\n");
#endif
  return 0;
}
