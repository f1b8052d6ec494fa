// bench_batch: many sequences in one llama.cpp model (issue 15). One JSON object per case
// on stdout, a human table on stderr. Every case uses the same GGUF, --threads and flash
// attention setting (--flash-attn, for tandem's contexts and llama.cpp's -fa alike; default
// auto, the default of llama_session_options and of llama.cpp's tools, which is on for the
// CPU backend; every JSON line carries it as "flash_attn"); timings are wall clock.
//
//   bench_batch --model FILE.gguf --llama-bin DIR [--threads N] [--quick] [--seed N]
//               [--reps N] [--n-seq N,N,...] [--step-ratio R] [--requests N] [--cases LIST]
//               [--kv per_sequence|unified] [--flash-attn auto|on|off]
//
// --kv: the KV layout of the llama_multi_session in generate/N, poisson and shared_prefix
// (default per_sequence, llama_multi_session's default), and the matching llama.cpp flag
// (-kvu for unified only); every JSON line carries it as "kv".
// a. "generate/N", N = 1, 2, 4, 8, 16, 32 (--n-seq): N requests of 32 prompt tokens, 64
//    generated, greedy, through the scheduler over one llama_multi_session; "tandem_tps"
//    counts the tokens generated after the prefill step over those steps' time, the figure
//    llama-batched-bench reports as S_TG ("llamacpp_tps": DIR/llama-batched-bench -npl N,
//    -fa as --flash-attn, -kvu when --kv unified, same context, batch, threads and n_seq_max), and
//    "separate_tps" the same for N llama_sessions stepped round-robin (greedy, one token
//    each per round; each session sized for one sequence). Per N the three take turns
//    --reps times (one llama-batched-bench process, which warms up, then one tandem run
//    and one separate run over contexts made once and warmed by one uncounted run each),
//    and each figure is the median of its runs, so a loaded machine weighs on all alike;
//    "llamacpp_over_separate" is llama.cpp's own factor, "model_share" the share of
//    tandem's step time spent in the model's appends.
// b. "poisson": a seeded Poisson stream of requests (prompts 16-512 tokens, outputs 16-128)
//    through the scheduler with a batch-token cap that chunks long prompts, and a prefill
//    policy (--step-ratio R, default 1.75; <= 1: none) that sets max_prefill_tokens before
//    each step from the step times measured in this run, so a step with a prompt chunk
//    costs at most R times a pure decode step; throughput, time to first token (mean,
//    p95), time between tokens (median, p95, and p95 of the gaps that ended in a step
//    which also prefilled a prompt), the measured per-token costs and step-cost ratios,
//    beside llama-parallel where it runs ("llamaparallel_differs" says what is not like
//    for like). --requests N: the stream's length (default 64); it stops after 300 s.
// c. "shared_prefix": 16 requests over a common 256-token system prompt, without and with
//    the scheduler's shared prefix (add_prefix, timed as part of the run): prompt tokens
//    computed and time to first token.
// d. "memory": 16 sequences in one context (unified KV whatever --kv says: the layout for
//    memory, where forks share cells; sized for 16 x 96 tokens, llama_multi_session's
//    default batch size) against 16 contexts (sized for 96 each), each filled with 96
//    tokens, before the other cases; "memory/shared_prompt": 16 sequences over a common
//    256-token prompt, held once and forked in the one context, copied into each separate
//    one. Growth of the resident set (/proc/self/statm), and llama.cpp's KV, compute and
//    output buffer sizes (from its log).
// Progress lines go to stderr with the seconds since the start; every llama.cpp tool runs
// under `timeout 300`.
// --quick: tiny sizes (N up to 4, few tokens, few requests, one rep) to check that every
// case runs. --cases: a comma list of memory, generate, poisson, shared_prefix.
//
// The model: a random-weight 512x8 llama GGUF with the KJV BPE vocabulary (4000):
//   cmake --build build --target tandem-make-gguf tandem_spm_fixture_models bench_batch
// and (one command line)
//   build/tools/tandem-make-gguf --out bench512x8.gguf
//     --spm build/fixtures/kjv_bpe4000.model --n-embd 512 --n-layer 8 --n-head 8
//     --n-head-kv 4 --n-ff 1024 --n-ctx-train 32768 --seed 1
//   bench_batch --model bench512x8.gguf --llama-bin <llama.cpp prefix>/bin --threads 2
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/batch.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string model;
  std::string llama_bin = "/root/.cache/tandem/llama-cpp-nlc3.22.1-v2/prefix/bin";
  int threads = 2;
  bool quick = false;
  std::uint64_t seed = 1;
  std::size_t reps = 3;            // runs per side of generate/N (median); --quick: 1
  std::vector<std::size_t> n_seq;  // generate/N's N; empty: the defaults
  std::string cases = "memory,generate,poisson,shared_prefix";
  double step_ratio = 1.75;  // poisson's prefill policy; <= 1: max_batch_tokens only
  std::size_t requests = 0;  // poisson's requests; 0: 64 (--quick: 6)
  tandem::kv_layout kv = tandem::kv_layout::per_sequence;  // --kv
  // --flash-attn: -1 auto (llama.cpp's and llama_session_options' default: on where the
  // backend has it, as on CPU), 0 off, 1 on; the same for tandem's contexts and llama.cpp's
  // tools.
  std::int32_t flash_attn = -1;
  clock_type::time_point start = clock_type::now();
  bool runs(const char* name) const {
    const std::string n(name);
    for (std::size_t at = 0; at <= cases.size();) {
      const std::size_t end = std::min(cases.find(',', at), cases.size());
      if (cases.compare(at, end - at, n) == 0) return true;
      at = end + 1;
    }
    return false;
  }
};

const char* kv_name(tandem::kv_layout l) {
  return l == tandem::kv_layout::unified ? "unified" : "per_sequence";
}
// llama.cpp tools' flag for the layout: -kvu for unified, nothing for one stream per sequence.
const char* kv_flag(tandem::kv_layout l) { return l == tandem::kv_layout::unified ? " -kvu" : ""; }

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// A progress line on stderr, with the seconds since the run started.
void progress(const options& o, const char* what, std::size_t n = 0) {
  std::fprintf(stderr, "[%7.1f s] %s", seconds_since(o.start), what);
  if (n > 0) std::fprintf(stderr, " %zu", n);
  std::fprintf(stderr, "\n");
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// Seeded prompt tokens, away from the first ids (control tokens in most vocabularies).
std::vector<token_id> random_tokens(std::mt19937_64& rng, std::size_t n, std::size_t vocab) {
  std::uniform_int_distribution<token_id> d(16, static_cast<token_id>(vocab) - 1);
  std::vector<token_id> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// The --flash-attn value as llama.cpp's tools spell it.
const char* fa_name(std::int32_t fa) { return fa < 0 ? "auto" : fa == 0 ? "off" : "on"; }

tandem::llama_session_options session_options(const options& o, std::size_t ctx,
                                              std::size_t batch) {
  tandem::llama_session_options s;
  s.context_size = static_cast<std::uint32_t>(ctx);
  s.batch_size = static_cast<std::uint32_t>(batch);
  s.threads = o.threads;
  s.flash_attention = o.flash_attn;
  return s;
}

using batch_scheduler = tandem::scheduler<tandem::llama_multi_session, tandem::greedy_sampler>;

// A llama_multi_session that sums the time spent in its appends (batch building,
// llama_decode, logits copies): the model's part of a scheduler step, the rest being the
// scheduler's own work (batch planning, sampling over the vocabulary, stop rules,
// bookkeeping). generate/N reports the model's share of the steps' time.
class timed_multi_session : public tandem::llama_multi_session {
 public:
  explicit timed_multi_session(tandem::llama_multi_session&& m)
      : tandem::llama_multi_session(std::move(m)) {}
  [[nodiscard]] errc append(std::span<const tandem::seq_tokens> batch) noexcept {
    const auto t0 = clock_type::now();
    const errc r = tandem::llama_multi_session::append(batch);
    append_seconds += seconds_since(t0);
    return r;
  }
  double append_seconds = 0;
};

// Runs `cmd` (killed after 300 s, so a hung tool cannot hold the run) and returns its
// output lines (stdout; stderr too with `with_stderr`).
std::vector<std::string> run_lines(const std::string& cmd, bool with_stderr = false) {
  std::vector<std::string> lines;
  FILE* f = popen(("timeout 300 " + cmd + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!f) return lines;
  char line[8192];
  while (std::fgets(line, sizeof line, f)) lines.emplace_back(line);
  pclose(f);
  return lines;
}

// A numeric field of a flat JSON line ("key": value), or -1.
double json_number(const std::string& line, const char* key) {
  const std::string k = std::string("\"") + key + "\":";
  const std::size_t at = line.find(k);
  if (at == std::string::npos) return -1.0;
  return std::atof(line.c_str() + at + k.size());
}

// ---- a. generate/N -----------------------------------------------------------------------

struct gen_sizes {
  std::vector<std::size_t> n_seq;
  std::size_t prompt = 32, gen = 64;
  std::size_t ctx() const { return std::max<std::size_t>(256, n_seq.back() * (prompt + gen)); }
  std::size_t batch() const { return std::max<std::size_t>(64, n_seq.back() * prompt); }
};

// The median of `v` (-1 when empty).
double median(std::vector<double> v) { return v.empty() ? -1.0 : percentile(std::move(v), 0.5); }

// llama-batched-bench's S_TG for n sequences: one run in a process of its own (one context
// with n_seq_max = n and the layout of --kv, as tandem's, warmed up by the tool); -1 when
// it reported nothing.
double llamacpp_batched(const options& o, const gen_sizes& z, std::size_t n) {
  // A run of one sequence follows the wanted one: llama.cpp's logger prints from a worker
  // thread that may drop the last lines at exit on a loaded machine, and the results are
  // logged lines.
  char cmd[4096];
  std::snprintf(cmd, sizeof cmd,
                "%s/llama-batched-bench -m %s -c %zu -b %zu -ub %zu -npp %zu -ntg %zu -npl %zu,1 "
                "-t %d%s -fa %s --output-format jsonl",
                o.llama_bin.c_str(), o.model.c_str(), z.ctx(), z.batch(), z.batch(), z.prompt,
                z.gen, n, o.threads, kv_flag(o.kv), fa_name(o.flash_attn));
  // Two retries of a run that reported nothing (a transient failure on a busy machine).
  for (int attempt = 0; attempt < 3; ++attempt)
    for (const std::string& l : run_lines(cmd)) {
      // With n == 1 the first line is the wanted run's, the second the extra one's.
      const double pl = json_number(l, "pl"), s = json_number(l, "speed_tg");
      if (pl == static_cast<double>(n) && s > 0) return s;
    }
  return -1.0;
}

// n requests through the scheduler over one llama_multi_session (context and batch as
// llama-batched-bench's, n_seq_max = n), reused by every run(); each run's figure is the
// tokens generated after the first (prefill) step over the time of those steps.
struct tandem_generator {
  std::optional<timed_multi_session> ms;
  std::optional<tandem::scheduler<timed_multi_session, tandem::greedy_sampler>> sch;
  std::vector<std::vector<token_id>> prompts;
  std::size_t gen = 0;
  double model_share = -1.0;  // the last run's share of step time spent in the model's appends

  tandem_generator(const options& o, const tandem::llama_model_handle& model, const gen_sizes& z,
                   std::size_t n)
      : gen(z.gen) {
    tandem::llama_multi_session_options mo;
    mo.session = session_options(o, z.ctx(), z.batch());
    mo.max_sequences = static_cast<std::uint32_t>(n);
    mo.layout = o.kv;
    auto m = tandem::llama_multi_session::create(model, mo);
    if (!m) return;
    ms.emplace(std::move(*m));
    sch.emplace(*ms, tandem::scheduler_options{
                         .max_requests = n, .max_batch_tokens = z.batch(), .max_prefixes = 1});
    std::mt19937_64 rng(o.seed + n);
    for (std::size_t i = 0; i < n; ++i)
      prompts.push_back(random_tokens(rng, z.prompt, ms->vocab_size()));
  }

  double run() {
    if (!sch) return -1.0;
    tandem::generation_options go;
    go.max_tokens = gen;
    go.record_logprobs = false;
    std::vector<tandem::request_id> ids;
    for (const auto& p : prompts) {
      auto id = sch->submit({p, tandem::greedy_sampler{}, go});
      if (!id) return -1.0;
      ids.push_back(*id);
    }
    if (sch->step() != errc::ok) return -1.0;
    const std::size_t after_prefill = sch->stats().generated_tokens;
    const double append0 = ms->append_seconds;
    const auto t0 = clock_type::now();
    while (sch->active() > 0)
      if (sch->step() != errc::ok) return -1.0;
    const double secs = seconds_since(t0);
    model_share = secs > 0 ? (ms->append_seconds - append0) / secs : -1.0;
    const std::size_t generated = sch->stats().generated_tokens - after_prefill;
    tandem::completion c;
    for (const auto id : ids) (void)sch->take(id, c);
    return secs > 0 ? static_cast<double>(generated) / secs : -1.0;
  }
};

// N separate llama_sessions (each sized for one sequence, as one user of one session
// would), created once; each run clears them, feeds their prompts and times greedy
// decoding, one token each per round.
struct separate_generator {
  std::vector<tandem::llama_session> sessions;
  std::vector<std::vector<token_id>> prompts;
  std::size_t gen = 0;

  separate_generator(const options& o, const tandem::llama_model_handle& model, const gen_sizes& z,
                     std::size_t n)
      : gen(z.gen) {
    std::mt19937_64 rng(o.seed + n);
    for (std::size_t i = 0; i < n; ++i) {
      auto s = tandem::llama_session::create(
          model, session_options(o, std::max<std::size_t>(256, z.prompt + z.gen), z.prompt));
      if (!s) {
        sessions.clear();
        return;
      }
      prompts.push_back(random_tokens(rng, z.prompt, s->vocab_size()));
      sessions.push_back(std::move(*s));
    }
  }

  double run() {
    if (sessions.empty()) return -1.0;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      sessions[i].clear();
      if (sessions[i].append(prompts[i]) != errc::ok) return -1.0;
    }
    tandem::greedy_sampler g;
    const auto t0 = clock_type::now();
    std::size_t generated = 0;
    for (std::size_t round = 1; round < gen; ++round)
      for (auto& s : sessions) {
        const auto t = g.sample(s.logits());
        if (!t) return -1.0;
        const token_id tok = *t;
        if (s.append(std::span<const token_id>(&tok, 1)) != errc::ok) return -1.0;
        ++generated;
      }
    const double secs = seconds_since(t0);
    return secs > 0 ? static_cast<double>(generated) / secs : -1.0;
  }
};

void case_generate(const options& o, const tandem::llama_model_handle& model) {
  gen_sizes z;
  z.n_seq = o.n_seq;
  if (z.n_seq.empty())
    z.n_seq =
        o.quick ? std::vector<std::size_t>{1, 2, 4} : std::vector<std::size_t>{1, 2, 4, 8, 16, 32};
  if (o.quick) z.prompt = 8, z.gen = 8;
  std::fprintf(stderr, "%-14s %10s %12s %10s %12s %10s %10s %10s\n", "case", "tandem t/s",
               "llama.cpp t/s", "ratio", "separate t/s", "ratio", "llama/sep", "model");
  for (const std::size_t n : z.n_seq) {
    // Per N, the three take turns --reps times, so a loaded machine weighs on all alike:
    // one llama-batched-bench process, one tandem run, one run of the separate sessions.
    progress(o, "generate: llama-batched-bench, tandem and separate sessions, n_seq", n);
    tandem_generator tg(o, model, z, n);
    separate_generator sg(o, model, z, n);
    std::vector<double> lr, tr, sr, share;
    (void)tg.run();  // warm-up runs, not counted (llama-batched-bench warms up too)
    (void)sg.run();
    for (std::size_t r = 0; r < o.reps; ++r) {
      if (const double x = llamacpp_batched(o, z, n); x > 0) lr.push_back(x);
      tr.push_back(tg.run());
      share.push_back(tg.model_share);
      sr.push_back(sg.run());
    }
    const double l = median(lr), t = median(tr), s = median(sr), model_share = median(share);
    const double over_l = l > 0 && t > 0 ? t / l : 0.0, over_s = s > 0 && t > 0 ? t / s : 0.0,
                 l_over_s = s > 0 && l > 0 ? l / s : 0.0;
    std::printf(
        "{\"case\":\"generate/%zu\",\"n_seq\":%zu,\"prompt_tokens\":%zu,\"gen_tokens\":%zu,"
        "\"threads\":%d,\"flash_attn\":\"%s\",\"kv\":\"%s\",\"ctx\":%zu,\"batch\":%zu,\"reps\":%"
        "zu,"
        "\"tandem_tps\":%.2f,\"llamacpp_tps\":%.2f,\"tandem_over_llamacpp\":%.3f,"
        "\"separate_tps\":%.2f,\"over_separate\":%.3f,\"llamacpp_over_separate\":%.3f,"
        "\"model_share\":%.4f}\n",
        n, n, z.prompt, z.gen, o.threads, fa_name(o.flash_attn), kv_name(o.kv), z.ctx(), z.batch(),
        o.reps, t, l, over_l, s, over_s, l_over_s, model_share);
    std::fflush(stdout);
    std::fprintf(stderr, "generate/%-5zu %10.1f %12.1f %9.2fx %12.1f %9.2fx %9.2fx %10.4f\n", n, t,
                 l, over_l, s, over_s, l_over_s, model_share);
  }
}

// ---- b. Poisson stream -------------------------------------------------------------------

// Per-request timing, filled by its streaming callback.
struct request_clock {
  clock_type::time_point arrival{};
  clock_type::time_point last{};
  bool any = false;
  double ttft = 0.0;
  const bool* prefill_step = nullptr;  // whether the step running now prefills a prompt
  std::vector<double>* gaps = nullptr;
  std::vector<double>* gaps_prefill = nullptr;
  tandem::control operator()(const tandem::token_event&) {
    const auto now = clock_type::now();
    if (!any) {
      ttft = std::chrono::duration<double>(now - arrival).count();
      any = true;
    } else {
      const double g = std::chrono::duration<double>(now - last).count();
      gaps->push_back(g);
      if (*prefill_step) gaps_prefill->push_back(g);
    }
    last = now;
    return tandem::control::proceed;
  }
};

// llama-parallel's "Total ..." lines: prompt tokens, generated tokens and speeds.
struct parallel_result {
  double prompt_tokens = -1, gen_tokens = -1, gen_tps = -1, total_tps = -1, wall = -1;
};

parallel_result llamacpp_parallel(const options& o, std::size_t n_parallel, std::size_t n_req,
                                  std::size_t n_predict) {
  char cmd[4096];
  std::snprintf(cmd, sizeof cmd,
                "%s/llama-parallel -m %s -c %zu -np %zu -ns %zu -n %zu -t %d%s -fa %s "
                "-s %llu --temp 0",
                o.llama_bin.c_str(), o.model.c_str(), n_parallel * 2048, n_parallel, n_req,
                n_predict, o.threads, kv_flag(o.kv), fa_name(o.flash_attn),
                static_cast<unsigned long long>(o.seed));
  parallel_result r;
  const auto t0 = clock_type::now();
  for (const std::string& l : run_lines(cmd, true)) {
    if (const char* p = std::strstr(l.c_str(), "Total prompt tokens:"))
      (void)std::sscanf(p, "Total prompt tokens: %lf", &r.prompt_tokens);
    if (const char* p = std::strstr(l.c_str(), "Total gen tokens:"))
      (void)std::sscanf(p, "Total gen tokens: %lf, speed: %lf", &r.gen_tokens, &r.gen_tps);
    if (const char* p = std::strstr(l.c_str(), "Total speed (AVG):"))
      (void)std::sscanf(p, "Total speed (AVG): speed: %lf", &r.total_tps);
  }
  r.wall = seconds_since(t0);
  return r;
}

// The policy that picks each step's max_prefill_tokens from step times measured in this
// run: a step that feeds prompt tokens beside d decode tokens should cost at most `ratio`
// times a pure decode step of d tokens. A pure decode step's time is not proportional to
// d (its fixed cost, the pass over the weights, weighs most at small d), so it is measured
// per d: t_d, the exponential moving average (alpha 0.2) of the pure decode steps with d
// decoding requests. c_p is the extra time per prompt token of recent mixed steps (their
// time less t_d, over their prompt tokens; same average). The cap is
// (ratio - 1) * t_d / c_p, at least 1 (so prefill progresses), at most what
// max_batch_tokens leaves. While t_d is not measured yet, and every `probe_every`-th step
// with decoding requests, the cap is 0 (a pure decode step that measures t_d); before c_p
// is measured the cap is (ratio - 1) * d (a prompt token taken to cost a decode token).
struct prefill_governor {
  double ratio = 1.75;
  std::size_t probe_every = 16;
  std::vector<double> pure_step;        // t_d by d, seconds; 0: not measured yet
  double per_decode = 0;                // t_d / d of the latest pure steps, for the report
  double per_prefill = 0;               // c_p, seconds per prompt token; 0: not measured
  std::size_t decode_steps = 0;         // steps with decode tokens seen
  std::vector<double> mixed_over_pure;  // each mixed step's time over t_d then

  double pure(std::size_t d) const { return d < pure_step.size() ? pure_step[d] : 0.0; }
  std::size_t cap(std::size_t decoding, std::size_t max_batch) const {
    if (decoding == 0 || decoding >= max_batch) return max_batch;
    if (pure(decoding) == 0 || decode_steps % probe_every == probe_every - 1) return 0;
    const double k = per_prefill > 0 ? (ratio - 1.0) * pure(decoding) / per_prefill
                                     : (ratio - 1.0) * static_cast<double>(decoding);
    return static_cast<std::size_t>(
        std::clamp(std::floor(k), 1.0, static_cast<double>(max_batch - decoding)));
  }
  void observe(double secs, std::size_t decoded, std::size_t prefilled) {
    constexpr double a = 0.2;
    const auto ema = [](double& x, double v) { x = x == 0 ? v : (1 - a) * x + a * v; };
    if (decoded == 0) return;
    ++decode_steps;
    if (prefilled == 0) {
      if (pure_step.size() <= decoded) pure_step.resize(decoded + 1, 0.0);
      ema(pure_step[decoded], secs);
      ema(per_decode, secs / static_cast<double>(decoded));
    } else if (pure(decoded) > 0) {
      mixed_over_pure.push_back(secs / pure(decoded));
      ema(per_prefill, std::max(0.0, secs - pure(decoded)) / static_cast<double>(prefilled));
    }
  }
};

void case_poisson(const options& o, const tandem::llama_model_handle& model) {
  const std::size_t n_req = o.requests > 0 ? o.requests
                            : o.quick      ? 6
                                           : 64,
                    n_seq = o.quick ? 4 : 16;
  const std::size_t p_min = 16, p_max = o.quick ? 64 : 512, g_min = o.quick ? 4 : 16,
                    g_max = o.quick ? 8 : 128, long_prompt = p_max / 2;
  const double rate = o.quick ? 20.0 : 4.0;  // requests per second
  const std::size_t cap = o.quick ? 16 : 128;
  tandem::llama_multi_session_options mo;
  mo.session = session_options(o, n_seq * (p_max + g_max), cap);
  mo.max_sequences = static_cast<std::uint32_t>(n_seq);
  mo.layout = o.kv;
  auto ms = tandem::llama_multi_session::create(model, mo);
  if (!ms) {
    std::printf("{\"case\":\"poisson\",\"skipped\":\"llama_multi_session::create failed\"}\n");
    return;
  }
  std::mt19937_64 rng(o.seed);
  std::exponential_distribution<double> gap(rate);
  std::uniform_int_distribution<std::size_t> plen(p_min, p_max), glen(g_min, g_max);
  std::vector<std::vector<token_id>> prompts(n_req);
  std::vector<std::size_t> outs(n_req);
  std::vector<double> at(n_req);
  double t = 0;
  for (std::size_t i = 0; i < n_req; ++i) {
    t += gap(rng);
    at[i] = t;
    prompts[i] = random_tokens(rng, plen(rng), ms->vocab_size());
    outs[i] = glen(rng);
  }
  batch_scheduler sch(*ms, {.max_requests = n_req, .max_batch_tokens = cap, .max_prefixes = 1});
  prefill_governor gov;
  gov.ratio = o.step_ratio;
  std::size_t mixed_steps = 0, pure_steps = 0;
  bool prefill_step = false;
  std::vector<double> gaps, gaps_prefill;
  std::vector<request_clock> clocks(n_req);
  std::vector<tandem::request_id> ids(n_req);
  std::size_t next = 0, done = 0, generated = 0;
  tandem::completion c;
  const auto t0 = clock_type::now();
  // The stream stops early (and says so) after this long: a bound on the run's wall time
  // on a machine too loaded to keep up with the arrivals.
  const double time_limit_s = 300.0;
  bool truncated = false;
  while (done < n_req) {
    const double now = seconds_since(t0);
    if (now > time_limit_s) {
      truncated = true;
      break;
    }
    for (; next < n_req && at[next] <= now; ++next) {
      request_clock& rc = clocks[next];
      rc.arrival = t0 + std::chrono::duration_cast<clock_type::duration>(
                            std::chrono::duration<double>(at[next]));
      rc.prefill_step = &prefill_step;
      rc.gaps = &gaps;
      rc.gaps_prefill = &gaps_prefill;
      tandem::generation_options go;
      go.max_tokens = outs[next];
      go.record_logprobs = false;
      auto id =
          sch.submit({prompts[next], tandem::greedy_sampler{}, go, 0, tandem::token_callback(rc)});
      if (!id) {
        std::printf("{\"case\":\"poisson\",\"skipped\":\"submit failed\"}\n");
        return;
      }
      ids[next] = *id;
    }
    if (sch.active() == 0 && next < n_req) {
      std::this_thread::sleep_for(std::chrono::duration<double>(at[next] - now));
      continue;
    }
    // Whether this step prefills (any request still feeding its prompt), and how many
    // requests decode in it.
    prefill_step = false;
    std::size_t decoding = 0;
    for (std::size_t i = 0; i < next; ++i) {
      const auto st = sch.state(ids[i]);
      prefill_step = prefill_step || st == tandem::request_state::prefilling ||
                     st == tandem::request_state::waiting;
      decoding += st == tandem::request_state::decoding;
    }
    if (o.step_ratio > 1.0) sch.set_max_prefill_tokens(gov.cap(decoding, cap));
    const std::size_t decoded0 = sch.stats().decode_tokens, prefilled0 = sch.stats().prefill_tokens;
    const auto s0 = clock_type::now();
    if (sch.step() != errc::ok) {
      std::printf("{\"case\":\"poisson\",\"skipped\":\"step failed\"}\n");
      return;
    }
    const std::size_t decoded = sch.stats().decode_tokens - decoded0,
                      prefilled = sch.stats().prefill_tokens - prefilled0;
    gov.observe(seconds_since(s0), decoded, prefilled);
    mixed_steps += decoded > 0 && prefilled > 0;
    pure_steps += decoded > 0 && prefilled == 0;
    for (std::size_t i = 0; i < next; ++i)
      if (sch.state(ids[i]) == tandem::request_state::finished && sch.take(ids[i], c) == errc::ok) {
        generated += c.tokens.size();
        ++done;
      }
  }
  const double wall = seconds_since(t0);
  std::vector<double> ttft;
  for (const auto& rc : clocks)
    if (rc.any) ttft.push_back(rc.ttft);  // a truncated stream leaves some unserved
  std::size_t n_long = 0;
  for (const auto& p : prompts) n_long += p.size() >= long_prompt;
  const double tbt_med = percentile(gaps, 0.5), tbt_p95 = percentile(gaps, 0.95),
               tbt_p95_pf = percentile(gaps_prefill, 0.95);
  progress(o, "poisson: llama-parallel");
  const parallel_result lp = llamacpp_parallel(o, n_seq, n_req, g_max);
  const double thr = wall > 0 ? static_cast<double>(generated) / wall : 0.0;
  std::printf(
      "{\"case\":\"poisson\",\"seed\":%llu,\"requests\":%zu,\"finished\":%zu,\"truncated\":%s,"
      "\"rate_per_s\":%.2f,"
      "\"prompt_tokens\":[%zu,%zu],\"gen_tokens\":[%zu,%zu],\"long_prompts\":%zu,"
      "\"max_sequences\":%zu,\"max_batch_tokens\":%zu,\"threads\":%d,\"flash_attn\":\"%s\","
      "\"kv\":\"%s\","
      "\"prefill_policy\":\"%s\",\"step_ratio\":%.2f,\"decode_token_ms\":%.3f,"
      "\"prefill_token_ms\":%.3f,\"prefill_over_decode_token_cost\":%.3f,\"pure_steps\":%zu,"
      "\"mixed_steps\":%zu,\"mixed_over_pure_median\":%.3f,\"mixed_over_pure_p95\":%.3f,"
      "\"wall_s\":%.3f,\"generated\":%zu,\"throughput_tps\":%.2f,\"ttft_mean_ms\":%.2f,"
      "\"ttft_p95_ms\":%.2f,\"tbt_median_ms\":%.3f,\"tbt_p95_ms\":%.3f,\"tbt_gaps\":%zu,"
      "\"tbt_gaps_during_prefill\":%zu,\"tbt_p95_during_prefill_ms\":%.3f,"
      "\"tbt_p95_over_median\":%.3f,\"tbt_p95_le_2x_median\":%s,"
      "\"tbt_p95_during_prefill_le_2x_median\":%s,\"prefill_tokens\":%zu,"
      "\"llamaparallel_gen_tps\":%.2f,\"llamaparallel_total_tps\":%.2f,"
      "\"llamaparallel_prompt_tokens\":%.0f,\"llamaparallel_gen_tokens\":%.0f,"
      "\"llamaparallel_wall_s\":%.3f,\"llamaparallel_differs\":\"llama-parallel -np %zu -ns %zu "
      "-n %zu%s --temp 0: its own built-in prompts after a shared system prompt, all requests "
      "queued at once (no Poisson arrivals), up to %zu tokens each or end of sequence, "
      "its own batch size and no cap on prompt tokens per step; wall time includes model "
      "load\"}\n",
      static_cast<unsigned long long>(o.seed), n_req, done, truncated ? "true" : "false", rate,
      p_min, p_max, g_min, g_max, n_long, n_seq, cap, o.threads, fa_name(o.flash_attn),
      kv_name(o.kv),
      o.step_ratio > 1.0 ? "max_prefill_tokens from measured step costs" : "max_batch_tokens only",
      o.step_ratio, 1e3 * gov.per_decode, 1e3 * gov.per_prefill,
      gov.per_decode > 0 ? gov.per_prefill / gov.per_decode : 0.0, pure_steps, mixed_steps,
      median(gov.mixed_over_pure), percentile(gov.mixed_over_pure, 0.95), wall, generated, thr,
      1e3 * mean(ttft), 1e3 * percentile(ttft, 0.95), 1e3 * tbt_med, 1e3 * tbt_p95, gaps.size(),
      gaps_prefill.size(), 1e3 * tbt_p95_pf, tbt_med > 0 ? tbt_p95 / tbt_med : 0.0,
      tbt_p95 <= 2 * tbt_med ? "true" : "false",
      !gaps_prefill.empty() && tbt_p95_pf <= 2 * tbt_med ? "true" : "false",
      sch.stats().prefill_tokens, lp.gen_tps, lp.total_tps, lp.prompt_tokens, lp.gen_tokens,
      lp.wall, n_seq, n_req, g_max, kv_flag(o.kv), g_max);
  std::fflush(stdout);
  std::fprintf(stderr,
               "poisson        %zu requests, %.1f t/s, ttft mean %.1f ms p95 %.1f ms, tbt median "
               "%.2f ms p95 %.2f ms (%.2fx; during prefill %.2f ms); prompt/decode token cost "
               "%.2f, mixed/pure step p95 %.2f; llama-parallel gen %.1f t/s\n",
               n_req, thr, 1e3 * mean(ttft), 1e3 * percentile(ttft, 0.95), 1e3 * tbt_med,
               1e3 * tbt_p95, tbt_med > 0 ? tbt_p95 / tbt_med : 0.0, 1e3 * tbt_p95_pf,
               gov.per_decode > 0 ? gov.per_prefill / gov.per_decode : 0.0,
               percentile(gov.mixed_over_pure, 0.95), lp.gen_tps);
}

// ---- c. shared system prompt -------------------------------------------------------------

struct prefix_run {
  std::size_t computed = 0;
  double ttft_mean = 0, ttft_max = 0, wall = 0;
  bool ok = false;
};

prefix_run run_prefix(const options& o, const tandem::llama_model_handle& model, bool share,
                      const std::vector<token_id>& system,
                      const std::vector<std::vector<token_id>>& prompts, std::size_t gen,
                      std::size_t cap) {
  prefix_run r;
  const std::size_t n = prompts.size();
  tandem::llama_multi_session_options mo;
  mo.session = session_options(o, (n + 1) * (prompts[0].size() + gen), cap);
  mo.max_sequences = static_cast<std::uint32_t>(n + 1);
  mo.layout = o.kv;
  auto ms = tandem::llama_multi_session::create(model, mo);
  if (!ms) return r;
  batch_scheduler sch(*ms, {.max_requests = n, .max_batch_tokens = cap, .max_prefixes = 1});
  bool prefill_step = false;
  std::vector<double> gaps, gaps_prefill;
  std::vector<request_clock> clocks(n);
  const auto t0 = clock_type::now();
  if (share && !sch.add_prefix(system)) return r;
  for (std::size_t i = 0; i < n; ++i) {
    clocks[i].arrival = t0;
    clocks[i].prefill_step = &prefill_step;
    clocks[i].gaps = &gaps;
    clocks[i].gaps_prefill = &gaps_prefill;
    tandem::generation_options go;
    go.max_tokens = gen;
    go.record_logprobs = false;
    if (!sch.submit(
            {prompts[i], tandem::greedy_sampler{}, go, 0, tandem::token_callback(clocks[i])}))
      return r;
  }
  while (sch.active() > 0)
    if (sch.step() != errc::ok) return r;
  r.wall = seconds_since(t0);
  std::vector<double> ttft;
  for (const auto& c : clocks) ttft.push_back(c.ttft);
  r.ttft_mean = mean(ttft);
  r.ttft_max = percentile(ttft, 1.0);
  r.computed = sch.stats().prefill_tokens + sch.stats().prefix_tokens;
  r.ok = true;
  return r;
}

void case_shared_prefix(const options& o, const tandem::llama_model_handle& model) {
  const std::size_t n = o.quick ? 4 : 16, sys = o.quick ? 32 : 256, own = o.quick ? 4 : 16,
                    gen = o.quick ? 4 : 16, cap = o.quick ? 64 : 512;
  std::mt19937_64 rng(o.seed + 1000);
  const auto system = random_tokens(rng, sys, model.vocab_size());
  std::vector<std::vector<token_id>> prompts(n, system);
  for (auto& p : prompts) {
    const auto tail = random_tokens(rng, own, model.vocab_size());
    p.insert(p.end(), tail.begin(), tail.end());
  }
  const prefix_run u = run_prefix(o, model, false, system, prompts, gen, cap);
  const prefix_run s = run_prefix(o, model, true, system, prompts, gen, cap);
  if (!u.ok || !s.ok) {
    std::printf("{\"case\":\"shared_prefix\",\"skipped\":\"a run failed\"}\n");
    return;
  }
  const double ratio = static_cast<double>(s.computed) / static_cast<double>(u.computed);
  std::printf(
      "{\"case\":\"shared_prefix\",\"requests\":%zu,\"system_tokens\":%zu,\"own_tokens\":%zu,"
      "\"gen_tokens\":%zu,\"max_batch_tokens\":%zu,\"threads\":%d,\"flash_attn\":\"%s\","
      "\"kv\":\"%s\","
      "\"unshared_prefill_tokens\":%zu,\"shared_prefill_tokens\":%zu,\"prefill_ratio\":%.4f,"
      "\"prefill_ratio_le_1_8\":%s,\"unshared_ttft_mean_ms\":%.2f,\"unshared_ttft_max_ms\":%.2f,"
      "\"shared_ttft_mean_ms\":%.2f,\"shared_ttft_max_ms\":%.2f,\"unshared_wall_s\":%.3f,"
      "\"shared_wall_s\":%.3f}\n",
      n, sys, own, gen, cap, o.threads, fa_name(o.flash_attn), kv_name(o.kv), u.computed,
      s.computed, ratio, ratio <= 0.125 ? "true" : "false", 1e3 * u.ttft_mean, 1e3 * u.ttft_max,
      1e3 * s.ttft_mean, 1e3 * s.ttft_max, u.wall, s.wall);
  std::fflush(stdout);
  std::fprintf(stderr,
               "shared_prefix  prefill %zu -> %zu tokens (%.3fx), ttft mean %.1f -> %.1f ms\n",
               u.computed, s.computed, ratio, 1e3 * u.ttft_mean, 1e3 * s.ttft_mean);
}

// ---- d. memory ---------------------------------------------------------------------------

// Resident set size in bytes (/proc/self/statm's second field).
double rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1.0;
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return got == 2 ? static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE))
                  : -1.0;
}

// llama.cpp's own accounting of the buffers a context allocates, read from the lines its
// log prints while the context is made ("... KV buffer size = X MiB", compute, output).
struct buffer_tally {
  double kv = 0, compute = 0, output = 0;  // bytes
  double total() const { return kv + compute + output; }
  static void log(ggml_log_level, const char* text, void* self) {
    auto& t = *static_cast<buffer_tally*>(self);
    const char* at = std::strstr(text, " buffer size =");
    double mib = 0;
    if (at == nullptr || std::sscanf(at, " buffer size = %lf", &mib) != 1) return;
    const double bytes = mib * 1048576.0;
    if (std::strstr(text, "KV buffer") != nullptr)
      t.kv += bytes;
    else if (std::strstr(text, "compute buffer") != nullptr)
      t.compute += bytes;
    else if (std::strstr(text, "output buffer") != nullptr)
      t.output += bytes;
  }
};

// One side of a memory setup: its resident-set growth, llama.cpp's buffers and the sizes
// of its (first) context.
struct memory_side {
  double rss = -1.0;
  buffer_tally buffers;
  std::uint32_t n_ctx = 0, n_batch = 0;
};

// What a memory setup holds: every sequence starts with `prefix` (maybe empty) and goes on
// with its own tokens.
struct memory_load {
  std::vector<token_id> prefix;
  std::vector<std::vector<token_id>> own;
  std::size_t per_sequence() const { return prefix.size() + own[0].size(); }
  std::size_t cells() const { return prefix.size() + own.size() * own[0].size(); }
};

// One context for all the sequences, sized for the cells they fill together, with batch
// size `batch` (n_batch = n_ubatch) and the default max_outputs (one row per sequence): a
// prefix is appended once to a sequence of its own, which each sequence forks (sharing
// its cells, as the scheduler's add_prefix does), then every sequence's own tokens go in
// one append. Kept alive in `keep`.
memory_side one_context(const options& o, const tandem::llama_model_handle& model,
                        const memory_load& l, std::size_t batch,
                        std::vector<tandem::llama_multi_session>& keep) {
  memory_side m;
  const double r0 = rss_bytes();
  tandem::llama_multi_session_options mo;
  mo.session = session_options(o, l.cells(), batch);
  mo.max_sequences = static_cast<std::uint32_t>(l.own.size() + (l.prefix.empty() ? 0 : 1));
  // Unified: the layout for memory (cells as the sequences fill them, forks share the
  // prefix's cells); one stream per sequence rounds each to 256 cells and copies forks.
  mo.layout = tandem::kv_layout::unified;
  llama_log_set(buffer_tally::log, &m.buffers);
  auto ms = tandem::llama_multi_session::create(model, mo);
  tandem::llama_quiet_logs();
  if (!ms) return m;
  m.n_ctx = llama_n_ctx(ms->get());
  m.n_batch = llama_n_batch(ms->get());
  std::optional<tandem::seq_id> root;
  if (!l.prefix.empty()) {
    const auto r = ms->open();
    if (!r) return m;
    const tandem::seq_tokens entry{*r, l.prefix};
    if (ms->append(std::span<const tandem::seq_tokens>(&entry, 1)) != errc::ok) return m;
    root = *r;
  }
  std::vector<tandem::seq_tokens> entries;
  for (const auto& t : l.own) {
    const auto s = root ? ms->fork(*root) : ms->open();
    if (!s) return m;
    entries.push_back({*s, t});
  }
  if (ms->append(entries) == errc::ok) m.rss = rss_bytes() - r0;
  keep.push_back(std::move(*ms));
  return m;
}

// One llama_session per sequence, each sized for its own sequence (prefix included) with
// llama_session's default batch size (llama.cpp caps n_batch at the requested context),
// each fed its whole sequence. Kept alive in `keep`.
memory_side separate_contexts(const options& o, const tandem::llama_model_handle& model,
                              const memory_load& l, std::vector<tandem::llama_session>& keep) {
  memory_side m;
  const tandem::llama_session_options defaults;
  const std::size_t first = keep.size();
  const double r0 = rss_bytes();
  llama_log_set(buffer_tally::log, &m.buffers);
  for (std::size_t i = 0; i < l.own.size(); ++i) {
    auto s = tandem::llama_session::create(
        model, session_options(o, l.per_sequence(), defaults.batch_size));
    if (!s) break;
    keep.push_back(std::move(*s));
  }
  tandem::llama_quiet_logs();
  if (keep.size() - first != l.own.size()) return m;
  for (std::size_t i = 0; i < l.own.size(); ++i) {
    tandem::llama_session& s = keep[first + i];
    if ((!l.prefix.empty() && s.append(l.prefix) != errc::ok) || s.append(l.own[i]) != errc::ok)
      return m;
  }
  m.rss = rss_bytes() - r0;
  m.n_ctx = llama_n_ctx(keep[first].get());
  m.n_batch = llama_n_batch(keep[first].get());
  return m;
}

double ratio_of(double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; }

// One JSON line and one table line for a memory setup: one context against separate
// contexts (and, when `same` is given, the one context with the separate ones' n_batch).
void print_memory(const char* name, const options& o, const memory_load& l, const char* method,
                  const memory_side& one, const memory_side& many, const memory_side* same) {
  const double mib = 1048576.0;
  const double r = ratio_of(one.rss, many.rss),
               rb = ratio_of(one.buffers.total(), many.buffers.total());
  std::printf(
      "{\"case\":\"%s\",\"kv\":\"unified\",\"n_seq\":%zu,\"shared_prefix_tokens\":%zu,\"own_"
      "tokens\":%zu,"
      "\"threads\":%d,\"flash_attn\":\"%s\",\"method\":\"%s; one context: n_ctx %u, n_batch = "
      "n_ubatch %u (llama_multi_session's default, scheduler_options' default "
      "max_batch_tokens), n_outputs_max = n_seq_max, unified KV; %zu separate contexts: n_ctx "
      "%u, n_batch %u each, over one shared llama_model; resident: growth of /proc/self/statm's "
      "resident pages from creating and filling each setup in turn, every setup kept alive; "
      "buffers: llama.cpp's KV, compute and output buffer sizes from its log\","
      "\"one_context_n_ctx\":%u,\"one_context_n_batch\":%u,\"separate_n_ctx\":%u,"
      "\"separate_n_batch\":%u,\"one_context_bytes\":%.0f,\"separate_contexts_bytes\":%.0f,"
      "\"one_over_separate\":%.3f,\"le_0_3\":%s,\"one_context_kv_mib\":%.2f,"
      "\"one_context_compute_mib\":%.2f,\"one_context_output_mib\":%.2f,"
      "\"separate_kv_mib\":%.2f,\"separate_compute_mib\":%.2f,\"separate_output_mib\":%.2f,"
      "\"buffers_one_over_separate\":%.3f",
      name, l.own.size(), l.prefix.size(), l.own[0].size(), o.threads, fa_name(o.flash_attn),
      method, one.n_ctx, one.n_batch, l.own.size(), many.n_ctx, many.n_batch, one.n_ctx,
      one.n_batch, many.n_ctx, many.n_batch, one.rss, many.rss, r,
      r > 0 && r <= 0.3 ? "true" : "false", one.buffers.kv / mib, one.buffers.compute / mib,
      one.buffers.output / mib, many.buffers.kv / mib, many.buffers.compute / mib,
      many.buffers.output / mib, rb);
  if (same != nullptr)
    std::printf(
        ",\"same_batch_n_batch\":%u,\"same_batch_bytes\":%.0f,\"same_batch_over_separate\":%.3f,"
        "\"same_batch_compute_mib\":%.2f,\"same_batch_buffers_over_separate\":%.3f",
        same->n_batch, same->rss, ratio_of(same->rss, many.rss), same->buffers.compute / mib,
        ratio_of(same->buffers.total(), many.buffers.total()));
  std::printf("}\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "%-14s resident: one context %.1f MiB, %zu contexts %.1f MiB (%.3fx); llama.cpp "
               "buffers (KV + compute + output): %.1f + %.1f + %.1f MiB vs %.1f + %.1f + %.1f "
               "MiB (%.3fx)\n",
               name, one.rss / mib, l.own.size(), many.rss / mib, r, one.buffers.kv / mib,
               one.buffers.compute / mib, one.buffers.output / mib, many.buffers.kv / mib,
               many.buffers.compute / mib, many.buffers.output / mib, rb);
}

// Two setups, each one context against separate contexts over the one shared llama_model
// (its weights count on neither side), each side sized as its user would size it and with
// the same options otherwise (threads, flash attention):
// - "memory", like for like: 16 sequences of 96 tokens; the one context for all 16 x 96
//   tokens, each separate context for one sequence's 96 (llama.cpp pads n_ctx to a
//   multiple of 256 cells). A third setup, same_batch, is the one context with the
//   separate contexts' n_batch, so that both sides compute as many tokens per pass.
// - "memory/shared_prompt", what the users run: 16 NPCs over a common 256-token
//   system prompt and 96 tokens of their own; the one context holds the prompt once and
//   forks it, each separate context holds its own copy (sized 256 + 96).
// Measured two ways: the growth of the resident set (/proc/self/statm) from creating and
// filling each setup in turn, every setup kept alive until the end (so none reuses pages
// another freed), and llama.cpp's buffer sizes (KV cache, compute, output) from its log.
void case_memory(const options& o, const tandem::llama_model_handle& model) {
  const std::size_t n = o.quick ? 4 : 16, fill = o.quick ? 16 : 96, sys = o.quick ? 32 : 256;
  std::mt19937_64 rng(o.seed + 2000);
  memory_load plain, shared;
  for (std::size_t i = 0; i < n; ++i)
    plain.own.push_back(random_tokens(rng, fill, model.vocab_size()));
  shared.prefix = random_tokens(rng, sys, model.vocab_size());
  shared.own = plain.own;
  const std::size_t batch = tandem::llama_multi_session_options{}.session.batch_size;
  std::vector<tandem::llama_multi_session> keep;
  std::vector<tandem::llama_session> keep_sessions;
  const memory_side one = one_context(o, model, plain, batch, keep);
  const memory_side many = separate_contexts(o, model, plain, keep_sessions);
  const memory_side same =
      many.n_batch > 0 ? one_context(o, model, plain, many.n_batch, keep) : memory_side{};
  progress(o, "memory: shared system prompt");
  const memory_side one_shared = one_context(o, model, shared, batch, keep);
  const memory_side many_shared = separate_contexts(o, model, shared, keep_sessions);
  print_memory("memory", o, plain,
               "like for like: every sequence's tokens its own, in one context or one context "
               "each",
               one, many, &same);
  print_memory("memory/shared_prompt", o, shared,
               "a common system prompt: held once and forked (cells shared) in the one context, "
               "a copy in each separate context",
               one_shared, many_shared, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--model" && v)
      o.model = argv[++i];
    else if (a == "--llama-bin" && v)
      o.llama_bin = argv[++i];
    else if (a == "--threads" && v)
      o.threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--seed" && v)
      o.seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--reps" && v)
      o.reps = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i]))), reps_given = true;
    else if (a == "--cases" && v)
      o.cases = argv[++i];
    else if (a == "--step-ratio" && v)
      o.step_ratio = std::atof(argv[++i]);
    else if (a == "--kv" && v &&
             (std::strcmp(v, "unified") == 0 || std::strcmp(v, "per_sequence") == 0))
      o.kv = std::strcmp(argv[++i], "unified") == 0 ? tandem::kv_layout::unified
                                                    : tandem::kv_layout::per_sequence;
    else if (a == "--flash-attn" && v &&
             (std::strcmp(v, "auto") == 0 || std::strcmp(v, "on") == 0 ||
              std::strcmp(v, "off") == 0)) {
      const std::string f = argv[++i];
      o.flash_attn = f == "auto" ? -1 : f == "on" ? 1 : 0;
    } else if (a == "--requests" && v)
      o.requests = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    else if (a == "--n-seq" && v) {
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        const unsigned long n = std::strtoul(p, &end, 10);
        if (end == p || n == 0) break;
        o.n_seq.push_back(n);
        p = *end == ',' ? end + 1 : end;
      }
    } else if (a == "--quick")
      o.quick = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_batch --model FILE.gguf --llama-bin DIR [--threads N] [--quick] "
                   "[--seed N] [--reps N] [--n-seq N,N,...] [--step-ratio R] [--requests N] "
                   "[--cases memory,generate,poisson,shared_prefix] [--kv per_sequence|unified] "
                   "[--flash-attn auto|on|off]\n");
      return 2;
    }
  }
  if (o.quick && !reps_given) o.reps = 1;
  if (o.model.empty()) {
    std::fprintf(stderr, "bench_batch: --model FILE.gguf is required\n");
    return 2;
  }
  tandem::llama_quiet_logs();
  tandem::error_info info;
  auto model = tandem::llama_model_handle::load(o.model, {}, &info);
  if (!model) {
    const std::string_view why = info.context();
    std::fprintf(stderr, "bench_batch: %.*s\n", static_cast<int>(why.size()), why.data());
    return 1;
  }
  // Memory first: later cases leave freed pages the setups could reuse.
  if (o.runs("memory")) progress(o, "memory"), case_memory(o, *model);
  if (o.runs("generate")) case_generate(o, *model);
  if (o.runs("poisson")) progress(o, "poisson"), case_poisson(o, *model);
  if (o.runs("shared_prefix")) progress(o, "shared_prefix"), case_shared_prefix(o, *model);
  progress(o, "done");
  return 0;
}
