// bench_speculative_tree_llama.hpp: llama.cpp's own tree speculation, for the "PAIR/tree"
// case of bench_speculative ("tree_over_llamacpp": tandem's tree decoder on llama_session
// targets against llama-speculative at its best tree setting).
//
// llama-speculative (llama.cpp's examples/speculative) drafts a tree: up to -np branches
// (--parallel), a branch splits where a draft candidate other than the first has
// probability above --spec-draft-p-split, and the target verifies all branches in one
// llama_decode with per-token sequence ids (the same tree attention as
// llama_session::score_tree). -np 1 is a linear draft. This header runs it on a pair,
// sweeps -np and --spec-draft-p-split, and returns the best setting's decode speed.
//
// Measured as bench_speculative measures llama-speculative-simple: the CPU time of the
// child process (one compute thread, -t/-td) for a run of `tokens` tokens minus a run of
// 1 token (model load, prompt), over the difference in tokens; greedy (--temp 0, -s 1,
// --ignore-eos), the same prompt, -c 2048, the same -fa. What differs from tandem's side:
// the example samples through common_sampler (n_probs 128: it sorts candidates every
// step), splits its context into -np streams (no unified cache), and reports wall speed
// of its own loop; the CPU figure includes all of that, as tandem's includes its sampler.
//
// Entry points: llamacpp_tree_best(options, &sweep) for the best setting (and every
// setting's result), llamacpp_tree_measure(options, setting) for one, and
// tree_session_options(...) for the llama_session options tandem's sessions need.
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"

namespace tandem_bench {

/// What llamacpp_tree_best runs: the pair, the run shape and the settings to sweep.
struct llamacpp_tree_options {
  std::string llama_bin;  ///< folder holding llama-speculative
  std::string target;     ///< target GGUF
  std::string draft;      ///< draft GGUF
  std::string prompt = "In the beginning God created the heaven and the earth.";
  std::size_t tokens = 200;         ///< tokens per timed run (a 1-token run is subtracted)
  std::size_t draft_max = 8;        ///< --spec-draft-n-max: depth of a branch
  int threads = 1;                  ///< -t and -td
  const char* flash_attn = "auto";  ///< -fa: on, off or auto
  std::vector<int> n_parallel = {1, 2, 4, 8};      ///< -np values (1: linear draft)
  std::vector<double> p_split = {0.05, 0.1, 0.2};  ///< --spec-draft-p-split values
};

/// One llama-speculative setting.
struct llamacpp_tree_setting {
  int n_parallel = 1;    ///< -np: most branches
  double p_split = 0.1;  ///< --spec-draft-p-split: a branch splits above this probability
};

/// The speed of one setting: decode tokens/s by child CPU time (what ratios use) and by
/// the example's own wall-clock figure, and its acceptance; -1 where a run failed.
struct llamacpp_tree_speed {
  llamacpp_tree_setting setting{};
  double cpu_tps = -1.0;     ///< (tokens - 1-token run's) / (CPU s - 1-token run's CPU s)
  double wall_tps = -1.0;    ///< "decoded N tokens in S seconds, speed: X t/s" of the long run
  double accept_pct = -1.0;  ///< "accept = X%" of the long run
};

namespace detail {
// CPU seconds used by the waited-for children of this process so far.
inline double waited_children_seconds() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  const timeval t[2] = {ru.ru_utime, ru.ru_stime};
  double s = 0.0;
  for (const timeval& x : t)
    s += static_cast<double>(x.tv_sec) + 1e-6 * static_cast<double>(x.tv_usec);
  return s;
}

// One llama-speculative run of `n_predict` tokens: fills wall speed, acceptance, the tokens
// it decoded (`decoded`) and the child CPU seconds it took (`cpu`). False when it
// reported no speed.
inline bool llamacpp_tree_run(const llamacpp_tree_options& o, const llamacpp_tree_setting& s,
                              std::size_t n_predict, llamacpp_tree_speed& out, int& decoded,
                              double& cpu) {
  char cmd[4096];
  std::snprintf(cmd, sizeof cmd,
                "%s/llama-speculative -m %s -md %s -np %d --spec-draft-p-split %g "
                "--spec-draft-n-max %zu --spec-draft-n-min 0 -p \"%s\" -n %zu -c 2048 -t %d "
                "-td %d -fa %s --temp 0 -s 1 --ignore-eos 2>&1",
                o.llama_bin.c_str(), o.target.c_str(), o.draft.c_str(), s.n_parallel, s.p_split,
                o.draft_max, o.prompt.c_str(), n_predict, o.threads, o.threads, o.flash_attn);
  const double c0 = waited_children_seconds();
  FILE* f = popen(cmd, "r");
  if (f == nullptr) return false;
  bool got = false;
  char line[4096];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (const char* q = std::strstr(line, "accept    = "))
      (void)std::sscanf(q, "accept    = %lf%%", &out.accept_pct);
    const char* p = std::strstr(line, "decoded");
    double secs = 0.0, tps = 0.0;
    if (p != nullptr && std::sscanf(p, "decoded %d tokens in %lf seconds, speed: %lf t/s", &decoded,
                                    &secs, &tps) == 3) {
      out.wall_tps = tps;
      got = true;
    }
  }
  const int rc = pclose(f);
  cpu = waited_children_seconds() - c0;
  return got && rc == 0;
}
}  // namespace detail

/// Decode speed of llama-speculative at `s`: a run of o.tokens tokens minus a run of 1
/// token, in child CPU time. Each run is retried once when it reports nothing (a
/// transient failure on a busy machine); cpu_tps stays -1 when both fail.
inline llamacpp_tree_speed llamacpp_tree_measure(const llamacpp_tree_options& o,
                                                 const llamacpp_tree_setting& s) {
  llamacpp_tree_speed one{s}, full{s};
  int n_one = 0, n_full = 0;
  double cpu_one = 0.0, cpu_full = 0.0;
  if (!detail::llamacpp_tree_run(o, s, 1, one, n_one, cpu_one))
    (void)detail::llamacpp_tree_run(o, s, 1, one, n_one, cpu_one);
  if (!detail::llamacpp_tree_run(o, s, o.tokens, full, n_full, cpu_full))
    (void)detail::llamacpp_tree_run(o, s, o.tokens, full, n_full, cpu_full);
  if (n_full > n_one && cpu_full > cpu_one)
    full.cpu_tps = static_cast<double>(n_full - n_one) / (cpu_full - cpu_one);
  return full;
}

/// Sweeps o.n_parallel x o.p_split (p_split once for -np 1, where it does nothing) and
/// returns the setting with the highest cpu_tps; every result goes to `*sweep` when not
/// null, in the order run. cpu_tps is -1 when no setting ran.
inline llamacpp_tree_speed llamacpp_tree_best(const llamacpp_tree_options& o,
                                              std::vector<llamacpp_tree_speed>* sweep = nullptr) {
  llamacpp_tree_speed best;
  for (const int np : o.n_parallel)
    for (std::size_t k = 0; k < o.p_split.size() && (np > 1 || k == 0); ++k) {
      const llamacpp_tree_speed r = llamacpp_tree_measure(o, {np, o.p_split[k]});
      if (sweep != nullptr) sweep->push_back(r);
      if (r.cpu_tps > best.cpu_tps) best = r;
    }
  return best;
}

/// The llamacpp_tree_speed's setting as llama-speculative flags, for JSON and tables.
inline std::string llamacpp_tree_flags(const llamacpp_tree_speed& r, std::size_t draft_max) {
  char b[128];
  std::snprintf(b, sizeof b, "-np %d --spec-draft-p-split %g --spec-draft-n-max %zu",
                r.setting.n_parallel, r.setting.p_split, draft_max);
  return b;
}

/// `base` with room for trees of up to `leaves` leaves in one llama_decode of
/// llama_session::score_tree: for the target of tandem's tree decoder (verification) and
/// for its draft (which scores each depth level of its tree as a tree). A session with
/// tree_leaves 0 scores trees path by path, one decode per node.
inline tandem::llama_session_options tree_session_options(tandem::llama_session_options base,
                                                          std::uint32_t leaves = 64) {
  base.tree_leaves = leaves;
  return base;
}

}  // namespace tandem_bench
