// bench_speculative, case a (issue 16): batched speculative decoding against batched plain
// decoding. For a model pair and N sequences, the same N greedy requests (the bench prompt
// cut by 0..7 tokens, so the sequences differ) run through a speculative_scheduler (the
// target and the draft each a llama_multi_session, the draft lengths from its
// batch-aware cost model) and through a plain scheduler over the same target context.
// Aggregate tokens per second in wall time (both models run in this process). An untimed
// pair of runs warms both contexts first; each rep then runs the sides in the order ABBA
// (BAAB in odd reps), the block repeated until each side ran for at least
// min_side_seconds (3: a run at N = 1 is about a second). Every run is paired with the
// run next to it of the other side (AB and BA, as many of each), and "batched_over_plain"
// is the median of those pairs' ratios: a slowdown of the machine that hits one run moves
// one pair, where the sum of a rep's runs carried it into the rep's ratio (a rep's ratios
// moved from 0.87 to 1.06 within one process at N = 4 on the random pair, drafting in 2%
// of the steps). "batched_over_plain_reps" keeps each rep's ratio of its sides' summed
// times; the tokens/s fields are medians over the reps. One JSON line per case:
//   {"case":"PAIR/batched/N","n_seq":N,"tokens":T,"plain_tps":..,"speculative_tps":..,
//    "batched_over_plain":..,"acceptance":..,"drafted_per_step":..,"drafting_steps":..,
//    "draft_time_share":..,"batched_over_plain_reps":[..],"batched_over_plain_pairs":[..],
//    "blocks_per_rep":..,"same_output":true}
// ("drafting_steps": the share of steps that drafted; "draft_time_share": the draft
// model's share of the two models' time).
// "same_output": every sequence's speculative tokens equal its plain ones (greedy).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/batch/scheduler.hpp"
#include "tandem/batch/speculative.hpp"
#include "tandem/core/sampler.hpp"

namespace tandem_bench {

/// Settings of case a.
struct batched_options {
  int reps = 3;
  std::size_t tokens = 200;  ///< tokens per sequence
  int threads = 1;
  int flash_attn = -1;
  std::vector<std::size_t> n_seq{1, 4, 16};
  double min_side_seconds = 3.0;  ///< each side's least time in a rep (ABBA blocks repeat)
};

namespace batched_detail {

inline double wall_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// The median; for an even count, the mean of the two middle values.
inline double true_median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

struct run_out {
  double seconds = 0.0;
  std::vector<std::vector<tandem::token_id>> tokens;
  double acceptance = 0.0;
  double drafted_per_step = 0.0;
  double drafting_steps = 0.0;  // share of the steps that drafted
  double draft_share = 0.0;     // draft seconds over draft plus target seconds
};

// Submits one greedy request per prompt, steps until all finish, takes the outputs.
template <class Sch>
bool run_all(Sch& sch, const std::vector<std::vector<tandem::token_id>>& prompts,
             std::size_t tokens, run_out& out) {
  std::vector<tandem::request_id> ids;
  tandem::generation_options g;
  g.max_tokens = tokens;
  const double t0 = wall_now();
  for (const auto& p : prompts) {
    const auto id = sch.submit({p, tandem::greedy_sampler{}, g});
    if (!id) return false;
    ids.push_back(*id);
  }
  // TANDEM_BENCH_VERBOSE=1: one stderr line per speculative step (planned draft tokens,
  // wall and draft milliseconds, accepted of drafted, probes so far).
  static const bool verbose = std::getenv("TANDEM_BENCH_VERBOSE") != nullptr;
  std::size_t step = 0;
  while (sch.active() > 0) {
    if constexpr (requires { sch.speculative_stats(); }) {
      if (verbose) {
        const auto before = sch.speculative_stats();
        const double s0 = wall_now();
        if (sch.step() != tandem::errc::ok) return false;
        const auto& st = sch.speculative_stats();
        std::fprintf(stderr, "  step %4zu planned %3zu  %7.2f ms  draft %6.2f ms  %zu/%zu%s\n",
                     step++, st.last_planned, 1e3 * (wall_now() - s0),
                     1e3 * (st.draft_seconds - before.draft_seconds), st.accepted - before.accepted,
                     st.drafted - before.drafted, st.probes > before.probes ? "  probe" : "");
        continue;
      }
    }
    if (sch.step() != tandem::errc::ok) return false;
  }
  out.seconds = wall_now() - t0;
  out.tokens.clear();
  tandem::completion c;
  for (const auto id : ids) {
    if (sch.take(id, c) != tandem::errc::ok) return false;
    out.tokens.push_back(c.tokens);
  }
  return true;
}

}  // namespace batched_detail

/// Runs case a for `pair` (NAME:TARGET.gguf:DRAFT.gguf[:DRAFT_MAX], as bench_speculative's
/// --pair; DRAFT_MAX is ignored: the cost model chooses) with prompt text `prompt_text`
/// (BOS added): prints one JSON line per N to stdout and a table row to stderr. False when
/// a model or context cannot be made or a run fails (the reason on stderr).
inline bool batched_pair(const std::string& pair, const char* prompt_text,
                         const batched_options& o) {
  using namespace batched_detail;
  const auto a = pair.find(':');
  const auto b = a == std::string::npos ? a : pair.find(':', a + 1);
  if (b == std::string::npos) {
    std::fprintf(stderr, "bench_speculative: batched: --pair needs NAME:TARGET:DRAFT\n");
    return false;
  }
  const auto c = pair.find(':', b + 1);
  const std::string name = pair.substr(0, a), target_path = pair.substr(a + 1, b - a - 1),
                    draft_path = pair.substr(b + 1, c == std::string::npos ? c : c - b - 1);
  auto tm = tandem::llama_model_handle::load(target_path);
  auto dm = tandem::llama_model_handle::load(draft_path);
  if (!tm || !dm) {
    std::fprintf(stderr, "bench_speculative: batched: cannot load %s or %s\n", target_path.c_str(),
                 draft_path.c_str());
    return false;
  }
  tandem::llama_tokenizer tok(*tm, {true});
  std::vector<tandem::token_id> prompt;
  if (tok.encode(prompt_text, prompt) != tandem::errc::ok || prompt.empty()) return false;
  for (const std::size_t n : o.n_seq) {
    std::vector<std::vector<tandem::token_id>> prompts;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t cut = std::min(i % 8, prompt.size() - 1);
      prompts.emplace_back(prompt.begin(), prompt.end() - static_cast<std::ptrdiff_t>(cut));
    }
    tandem::llama_multi_session_options mo;
    mo.max_sequences = static_cast<std::uint32_t>(n);
    mo.session.threads = o.threads;
    mo.session.flash_attention = o.flash_attn;
    mo.session.context_size = static_cast<std::uint32_t>(n * (prompt.size() + o.tokens + 64) + 256);
    // One step carries up to max_batch_tokens (512) tokens and, verifying drafts, a logits
    // row for most of them: size the context's ubatch and rows for that, or a step splits.
    mo.session.batch_size = 512;
    mo.max_outputs = 512;
    // Unified KV, as when this case's figures were measured: with one stream per sequence
    // llama.cpp splits a verification of unequal draft lengths into several passes.
    mo.layout = tandem::kv_layout::unified;
    tandem::error_info info;
    auto target = tandem::llama_multi_session::create(*tm, mo, &info);
    auto draft = tandem::llama_multi_session::create(*dm, mo, &info);
    if (!target || !draft) {
      std::fprintf(stderr, "bench_speculative: batched: no context for N=%zu: %s\n", n, info.text);
      return false;
    }
    const tandem::scheduler_options so{.max_requests = n, .max_batch_tokens = 512};
    std::vector<double> plain_tps, spec_tps, ratios, pairs, acceptance, per_step, drafting,
        draft_share;
    bool same = true;
    run_out plain, spec;
    const auto run_side = [&](bool spec_side, run_out& out) {
      if (spec_side) {
        tandem::speculative_scheduler<tandem::llama_multi_session, tandem::llama_multi_session,
                                      tandem::greedy_sampler>
            sch(*target, *draft, so);
        if (!run_all(sch, prompts, o.tokens, out)) {
          std::fprintf(stderr, "bench_speculative: batched: speculative run failed: %s\n",
                       sch.last_error().text);
          return false;
        }
        const auto& st = sch.speculative_stats();
        out.acceptance = st.acceptance_rate();
        const auto steps = static_cast<double>(std::max<std::size_t>(sch.stats().steps, 1));
        out.drafted_per_step = static_cast<double>(st.drafted) / steps;
        out.drafting_steps = static_cast<double>(st.drafting_steps) / steps;
        out.draft_share = st.draft_seconds / std::max(st.draft_seconds + st.target_seconds, 1e-12);
        return true;
      }
      tandem::scheduler<tandem::llama_multi_session, tandem::greedy_sampler> sch(*target, so);
      if (!run_all(sch, prompts, o.tokens, out)) {
        std::fprintf(stderr, "bench_speculative: batched: plain run failed: %s\n",
                     sch.last_error().text);
        return false;
      }
      return true;
    };
    // Warm-up: the first decodes of a context (graph and buffer allocation, first touch of
    // the draft model's pages) would fall on the side that runs first.
    if (!run_side(false, plain) || !run_side(true, spec)) return false;
    int blocks = 0;
    for (int rep = 0; rep < o.reps; ++rep) {
      double plain_s = 0.0, spec_s = 0.0;
      std::size_t produced = 0, spec_produced = 0;
      blocks = 0;
      while (blocks == 0 || std::min(plain_s, spec_s) < o.min_side_seconds) {
        ++blocks;
        double pair_tps[2] = {0.0, 0.0};  // this pair's plain and speculative tokens/s
        for (int k = 0; k < 4; ++k) {
          const bool spec_side = (k == 0 || k == 3) == (rep % 2 == 0);  // ABBA, then BAAB
          run_out& out = spec_side ? spec : plain;
          if (!run_side(spec_side, out)) return false;
          (spec_side ? spec_s : plain_s) += out.seconds;
          std::size_t run_tokens = 0;
          for (const auto& t : out.tokens) run_tokens += t.size();
          (spec_side ? spec_produced : produced) += run_tokens;
          pair_tps[spec_side ? 1 : 0] = static_cast<double>(run_tokens) / out.seconds;
          if (k % 2 == 1) pairs.push_back(pair_tps[1] / pair_tps[0]);
          if (spec_side) {
            acceptance.push_back(spec.acceptance);
            per_step.push_back(spec.drafted_per_step);
            drafting.push_back(spec.drafting_steps);
            draft_share.push_back(spec.draft_share);
          }
        }
        for (std::size_t i = 0; i < n; ++i) same = same && plain.tokens[i] == spec.tokens[i];
      }
      plain_tps.push_back(static_cast<double>(produced) / plain_s);
      spec_tps.push_back(static_cast<double>(spec_produced) / spec_s);
      ratios.push_back(spec_tps.back() / plain_tps.back());
    }
    const double p = median_of(plain_tps), s = median_of(spec_tps), r = true_median(pairs);
    const auto list = [](const std::vector<double>& v) {
      std::string l;
      char buf[32];
      for (const double x : v) {
        std::snprintf(buf, sizeof buf, "%s%.3f", l.empty() ? "" : ",", x);
        l += buf;
      }
      return l;
    };
    const std::string reps = list(ratios), pair_list = list(pairs);
    std::printf(
        "{\"case\":\"%s/batched/%zu\",\"n_seq\":%zu,\"tokens\":%zu,\"plain_tps\":%.2f,"
        "\"speculative_tps\":%.2f,\"batched_over_plain\":%.3f,\"acceptance\":%.3f,"
        "\"drafted_per_step\":%.2f,\"drafting_steps\":%.3f,\"draft_time_share\":%.3f,"
        "\"batched_over_plain_reps\":[%s],\"batched_over_plain_pairs\":[%s],"
        "\"blocks_per_rep\":%d,\"same_output\":%s}\n",
        name.c_str(), n, n, o.tokens, p, s, r, median_of(acceptance), median_of(per_step),
        median_of(drafting), median_of(draft_share), reps.c_str(), pair_list.c_str(), blocks,
        same ? "true" : "false");
    std::fflush(stdout);
    std::fprintf(stderr, "%-8s N=%-3zu plain %8.1f tok/s  speculative %8.1f tok/s  x%.3f%s\n",
                 name.c_str(), n, p, s, r, same ? "" : "  (outputs differ)");
  }
  return true;
}

}  // namespace tandem_bench
