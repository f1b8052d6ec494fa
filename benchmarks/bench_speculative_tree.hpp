// bench_speculative's token-tree cases (tandem/speculative/tree.hpp). Included by
// bench_speculative.cpp after its helpers (cpu_now, spin, mix, median, greedy_chain,
// thread_cpu, options, and for the real part decode_speed, timed_greedy, tandem_speculative).
//
// 1. synthetic_trees: "synthetic-tree[-steep]/a=A/POLICY/DRAFT": synthetic models as part 1's
//    (a pass over b tokens costs t0 + t1 (b - 1) microseconds, one pass per tree, a draft
//    pass d) with a draft that agrees with the target's favourite with probability A; the
//    "runner-up" draft, when it disagrees, holds the target's favourite as its second
//    choice (a tree pays there), the "plain" one never does (a tree degenerates to a
//    chain). Achieved speedup over target-only beside the theory: per round the expected
//    kept tokens of its tree, E = 1 + sum over nodes of the product of the acceptance
//    along the path (each node's acceptance the measured rate of its sibling rank), over
//    the modelled time (levels d + t0 + t1 nodes), against one token per t0
//    ("achieved_over_theory"); rounds, acceptance and CPU time pooled over the reps, each
//    with its own agreement pattern, as part 1's.
// 2. tree_pair: "PAIR/tree": on a pair of GGUF models, greedy decode throughput (CPU time)
//    of the tree decoder at the cost model's choice against the linear cost-model decoder
//    ("tree_over_linear"), both beside target-only. The llama.cpp session scores a tree in
//    one pass when it offers TreeScoring, else through tree_scoring_adapter (several passes).
//    The results are a tree_pair_result, so further comparisons (tree_over_llamacpp) extend
//    it. Both sessions get tree_leaves (tree_session_options): the target verifies a tree
//    in one llama_decode, the draft scores a depth level in one.
// 3. In the same "PAIR/tree" line, "tree_over_llamacpp": the tree decoder's CPU tokens/s
//    over llama.cpp's llama-speculative (--llama-bin) at its best tree setting, swept over
//    -np 1, 2, 4, 8 and --spec-draft-p-split 0.05, 0.1, 0.2 at the pair's draft max
//    (bench_speculative_tree_llama.hpp; "llamacpp_tree_setting" names the best,
//    "llamacpp_tree_cpu_tps" its speed), measured as llama-speculative-simple is.
// With TANDEM_BENCH_VERBOSE set, the tree runs print a line per round to stderr (tree
// shape, draft levels, accepted, draft and target time, the cost model's T(b), draft pass
// cost and acceptance estimates), and part 2 also runs, to stderr, fixed chains of 4 and 8
// and two fixed bushy trees through the tree decoder and the linear decoder on the tree
// decoder's sessions (tree_leaves 64): where a tree round loses time against a linear one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tandem/speculative/tree.hpp"
#ifdef TANDEM_BENCH_HAVE_LLAMA
#include "bench_speculative_tree_llama.hpp"
#endif

namespace {

// A synthetic model with one-pass tree scoring (the favourite rule of synthetic_model; a
// tree pass of b tokens costs t0 + t1 (b - 1), its commit nothing).
class synthetic_tree_model {
 public:
  synthetic_tree_model(std::size_t vocab, bool draft, bool runner_up, double agree, double t0,
                       double t1, std::uint64_t seed = 0)
      : vocab_(vocab),
        draft_(draft),
        runner_up_(runner_up),
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
  errc append(std::span<const token_id> t) { return feed(t, {}); }
  errc score(std::span<const token_id> t, std::span<float> rows) { return feed(t, rows); }
  errc rewind(std::size_t n) {
    ctx_.resize(ctx_.size() - n);
    return errc::ok;
  }
  errc score_tree(std::span<const token_id> t, std::span<const std::int32_t> parents,
                  std::span<float> rows) {
    spin(t0_ + t1_ * static_cast<double>(t.size() - 1));
    depth_.resize(t.size());
    tok_.assign(t.begin(), t.end());
    par_.assign(parents.begin(), parents.end());
    for (std::size_t i = 0; i < t.size(); ++i) {
      depth_[i] = parents[i] < 0 ? 1 : depth_[static_cast<std::size_t>(parents[i])] + 1;
      fill(rows.subspan(i * vocab_, vocab_), ctx_.size() + depth_[i]);
    }
    return errc::ok;
  }
  errc commit_tree(std::span<const std::int32_t> path) {
    for (std::int32_t i : path) ctx_.push_back(tok_[static_cast<std::size_t>(i)]);
    if (!path.empty()) fill(logits_, ctx_.size());
    return errc::ok;
  }

 private:
  // One pass over `t` (rows, when given, after each of its tokens).
  errc feed(std::span<const token_id> t, std::span<float> rows) {
    spin(t0_ + t1_ * static_cast<double>(t.size() - 1));
    if (!rows.empty())
      for (std::size_t i = 0; i < t.size(); ++i)
        fill(rows.subspan(i * vocab_, vocab_), ctx_.size() + i + 1);
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size());
    return errc::ok;
  }
  // The target's favourite after n tokens is a hash of n; the draft agrees with
  // probability agree_, else prefers the next token (with the target's favourite second
  // when runner_up_).
  void fill(std::span<float> out, std::size_t n) const {
    std::fill(out.begin(), out.end(), 0.0f);
    const std::size_t fav = mix(n) % vocab_;
    if (draft_ && !synthetic_agrees(n, seed_, agree_)) {
      out[(fav + 1) % vocab_] = 3.0f;
      if (runner_up_) out[fav] = 2.0f;
      return;
    }
    out[fav] = 3.0f;
  }
  std::size_t vocab_;
  bool draft_, runner_up_;
  double agree_, t0_, t1_;
  std::uint64_t seed_;
  std::vector<token_id> ctx_, tok_;
  std::vector<std::int32_t> par_;
  std::vector<std::size_t> depth_;
  std::vector<float> logits_;
};

// A tree policy that records each verified tree (parents, sibling ranks, timings) and the
// acceptance per sibling rank, then defers to P.
template <class P>
struct tree_logged {
  struct tree_record {
    std::vector<std::int32_t> parents;
    std::vector<std::uint8_t> rank;
    std::size_t levels = 0;
  };
  P p;
  std::vector<tree_record>* trees;
  std::array<double, tandem::max_tree_children>* tried;
  std::array<double, tandem::max_tree_children>* accepted;
  tandem::tree_plan plan() { return p.plan(); }
  double acceptance(std::size_t d, std::size_t r, double q) const { return p.acceptance(d, r, q); }
  std::size_t choose(std::span<const double> v, std::size_t levels) { return p.choose(v, levels); }
  void update(const tandem::tree_round& r) {
    tree_record rec;
    rec.parents.assign(r.parents.begin(), r.parents.end());
    rec.rank.assign(r.rank.begin(), r.rank.end());
    rec.levels = r.nodes > 0 ? r.levels : 0;
    trees->push_back(std::move(rec));
    for (std::size_t i = 0; i < r.nodes; ++i)
      if (r.tried[i]) {
        (*tried)[r.rank[i]] += 1.0;
        (*accepted)[r.rank[i]] += r.accepted_node[i] ? 1.0 : 0.0;
      }
    p.update(r);
  }
};

template <class Policy>
void synthetic_tree_case(const options& o, const char* shape, bool runner_up,
                         const char* policy_name, Policy make_policy(), double agree, double t0,
                         double t1, double d) {
  const std::size_t vocab = 64;
  const std::vector<token_id> prompt = {1, 2, 3, 4};
  tandem::generation_options g;
  g.max_tokens = o.synthetic_tokens;
  g.record_logprobs = false;
  std::vector<double> base_s, spec_s;
  double tpr = 0.0, mean_nodes = 0.0;
  // Pooled over the reps (each with its own agreement pattern), as in synthetic_case:
  // the verified trees, the acceptance per sibling rank, CPU seconds of both sides.
  std::vector<typename tree_logged<Policy>::tree_record> trees;
  trees.reserve(static_cast<std::size_t>(o.reps) * (o.synthetic_tokens + 8));
  std::array<double, tandem::max_tree_children> tried{}, accepted{};
  double base_total = 0.0, spec_total = 0.0;
  for (int rep = 0; rep < o.reps; ++rep) {
    {
      synthetic_tree_model target(vocab, false, false, 1.0, t0, t1);
      auto s = greedy_chain();
      tandem::completion c;
      const double t = cpu_now();
      (void)tandem::generate(target, s, prompt, g, c);
      base_s.push_back(cpu_now() - t);
    }
    synthetic_tree_model target(vocab, false, false, 1.0, t0, t1);
    synthetic_tree_model draft(vocab, true, runner_up, agree, d, 0.0,
                               static_cast<std::uint64_t>(rep));
    tandem::tree_options to;
    to.clock = thread_cpu;
    tandem::tree_speculative_decoder dec(
        target, draft, tree_logged<Policy>{make_policy(), &trees, &tried, &accepted}, to);
    auto s = greedy_chain();
    tandem::completion c;
    const double t = cpu_now();
    (void)dec.generate(s, prompt, g, c);
    spec_s.push_back(cpu_now() - t);
    base_total += base_s.back();
    spec_total += spec_s.back();
    tpr = dec.stats().tokens_per_round();
    mean_nodes = dec.stats().mean_tree_size();
  }
  // Theory: each round's E from the measured acceptance of each sibling rank, over the
  // modelled time of the round, against one token per t0.
  double tok = 0.0, time = 0.0;
  std::vector<double> a;
  for (const auto& tr : trees) {
    a.clear();
    for (std::uint8_t r : tr.rank) a.push_back(tried[r] > 0 ? accepted[r] / tried[r] : 0.0);
    tok += tandem::expected_accepted_tokens(tr.parents, a);
    time += static_cast<double>(tr.levels) * d + t0 + t1 * static_cast<double>(tr.parents.size());
  }
  const double th = time > 0.0 ? tok * t0 / time : 1.0;
  const double speedup = spec_total > 0.0 ? base_total / spec_total : 0.0;
  const char* draft_name = runner_up ? "runner-up" : "plain";
  std::printf(
      "{\"bench\":\"speculative\",\"case\":\"synthetic-tree%s/a=%.2f/%s/%s\",\"shape\":\"%s\","
      "\"policy\":\"%s\",\"draft\":\"%s\",\"agree\":%.2f,\"t0_us\":%.0f,\"t1_us\":%.0f,"
      "\"draft_us\":%.0f,\"tokens\":%zu,\"mean_tree_nodes\":%.3f,\"tokens_per_round\":%.3f,"
      "\"target_only_s\":%.6f,\"speculative_s\":%.6f,\"speedup\":%.3f,\"theory_speedup\":%.3f,"
      "\"achieved_over_theory\":%.3f}\n",
      std::strcmp(shape, "flat") == 0 ? "" : "-steep", agree, policy_name, draft_name, shape,
      policy_name, draft_name, agree, t0, t1, d, o.synthetic_tokens, mean_nodes, tpr, base_total,
      spec_total, speedup, th, speedup / th);
  std::fprintf(stderr,
               "synthetic-tree %-5s a=%.2f %-10s %-9s nodes %5.2f  speedup %6.3f  theory %6.3f  "
               "ratio %.3f\n",
               shape, agree, policy_name, draft_name, mean_nodes, speedup, th, speedup / th);
  std::fflush(stdout);
}

tandem::tree_cost_model tree_cost() { return tandem::tree_cost_model{}; }
tandem::fixed_tree tree_chain4() { return {4, 4, 1, 1}; }
tandem::fixed_tree tree_bushy() { return {12, 4, 2, 4}; }

// Part 1 for trees: the synthetic shapes and costs of part 1, both drafts, three policies.
void synthetic_trees(const options& o) {
  const double t0 = 2000, d = 200;
  for (const auto& [shape, t1] : {std::pair{"flat", 100.0}, std::pair{"steep", 1000.0}})
    for (double agree : {0.9, 0.6, 0.0})
      for (const bool runner_up : {false, true}) {
        synthetic_tree_case(o, shape, runner_up, "chain4", tree_chain4, agree, t0, t1, d);
        synthetic_tree_case(o, shape, runner_up, "bushy12", tree_bushy, agree, t0, t1, d);
        synthetic_tree_case(o, shape, runner_up, "cost_model", tree_cost, agree, t0, t1, d);
      }
}

#ifdef TANDEM_BENCH_HAVE_LLAMA
// What the tree case measured on one pair; a comparison added later (llama.cpp's tree
// drafting) fills its own fields.
struct tree_pair_result {
  std::string name;
  speed target, tree, linear;  // decode throughput, medians over the reps
  double tree_over_target = 0.0, linear_over_target = 0.0, tree_over_linear = 0.0;
  bool same_output = true;           // tree and linear tokens equal target-only greedy
  tandem::tree_stats stats{};        // the last tree run's
  double tree_over_llamacpp = -1.0;  // filled by a llama.cpp tree comparison (-1: not run)
  tandem_bench::llamacpp_tree_speed llamacpp{};  // llama-speculative at its best setting
  std::size_t draft_max = 0;                     // the pair's draft max (llama-speculative's)
};

// A tree policy that prints each round (shape, acceptance, draft and target time) to
// stderr, then defers to P (TANDEM_BENCH_VERBOSE).
template <class P>
struct tree_traced {
  P p;
  tandem::tree_plan plan() { return p.plan(); }
  double acceptance(std::size_t d, std::size_t r, double q) const { return p.acceptance(d, r, q); }
  std::size_t choose(std::span<const double> v, std::size_t levels) { return p.choose(v, levels); }
  void update(const tandem::tree_round& r) {
    std::size_t depth = 0, leaves = 0;
    for (std::size_t i = 0; i < r.nodes; ++i) {
      depth = std::max<std::size_t>(depth, r.depth[i] + 1u);
      bool leaf = true;
      for (std::size_t j = i + 1; j < r.nodes && leaf; ++j)
        leaf = r.parents[j] != static_cast<std::int32_t>(i);
      leaves += leaf ? 1 : 0;
    }
    std::fprintf(stderr,
                 "  round: nodes %2zu depth %2zu leaves %2zu levels %2zu accepted %2zu%s  draft "
                 "%.2f ms  target %.2f ms\n",
                 r.nodes, depth, leaves, r.levels, r.accepted, r.forced ? " (forced)" : "",
                 r.draft_seconds * 1e3, r.target_seconds * 1e3);
    p.update(r);
    if constexpr (requires { p.costs(); })
      std::fprintf(stderr,
                   "    T(1..6) %.2f %.2f %.2f %.2f %.2f %.2f ms, draft pass %.2f ms, a(d, 0, "
                   "0.5) %.2f %.2f %.2f %.2f, a(0, 1, 0.2) %.2f, best %.3f\n",
                   p.costs().target_cost(1) * 1e3, p.costs().target_cost(2) * 1e3,
                   p.costs().target_cost(3) * 1e3, p.costs().target_cost(4) * 1e3,
                   p.costs().target_cost(5) * 1e3, p.costs().target_cost(6) * 1e3,
                   p.costs().draft_cost() * 1e3, p.acceptance(0, 0, 0.5), p.acceptance(1, 0, 0.5),
                   p.acceptance(2, 0, 0.5), p.acceptance(3, 0, 0.5), p.acceptance(0, 1, 0.2),
                   p.best_predicted_speedup());
  }
};

// One greedy tree generation on fresh sessions, timed in process CPU time.
template <class Policy = tandem::tree_cost_model>
run_result tandem_tree(const options& o, const tandem::llama_model_handle& tm,
                       const tandem::llama_model_handle& dm, std::span<const token_id> prompt,
                       std::size_t max_tokens, tandem::tree_stats* stats,
                       std::vector<token_id>* tokens, Policy policy = Policy()) {
  auto target =
      tandem::llama_session::create(tm, tandem_bench::tree_session_options(session_options(o)));
  auto draft =
      tandem::llama_session::create(dm, tandem_bench::tree_session_options(session_options(o)));
  if (!target || !draft) return {};
  tandem::tree_options to;
  to.clock = thread_cpu;
  const bool verbose = std::getenv("TANDEM_BENCH_VERBOSE") != nullptr && max_tokens > 1;
  const auto run = [&](auto pol) {
    tandem::tree_speculative_decoder dec(*target, *draft, std::move(pol), to);
    auto s = greedy_chain();
    const run_result r = timed_greedy(
        max_tokens, tokens, [&](const auto& g, auto& c) { return dec.generate(s, prompt, g, c); });
    if (stats) *stats = dec.stats();
    if (verbose)
      std::fprintf(stderr,
                   "  tree: cpu %.4f s: target %.4f s (%zu calls), draft %.4f s (%zu calls), "
                   "%zu rounds, %zu drafting, nodes %.2f, accepted %.3f\n",
                   r.cpu, dec.stats().target_seconds, dec.stats().target_calls,
                   dec.stats().draft_seconds, dec.stats().draft_calls, dec.stats().rounds,
                   dec.stats().drafting_rounds, dec.stats().mean_tree_size(),
                   dec.stats().mean_accepted_length());
    return r;
  };
  return verbose ? run(tree_traced<Policy>{std::move(policy)}) : run(std::move(policy));
}

// Trees at the cost model's choice against the linear cost-model decoder on pair `spec`
// (NAME:TARGET:DRAFT[:DRAFT_MAX]).
tree_pair_result measure_tree_pair(const options& o, const std::string& spec) {
  tree_pair_result res;
  const auto a = spec.find(':'), b = spec.find(':', a + 1), c = spec.find(':', b + 1);
  if (a == std::string::npos || b == std::string::npos) return res;
  res.name = spec.substr(0, a);
  const std::string tpath = spec.substr(a + 1, b - a - 1),
                    dpath =
                        spec.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1);
  auto tm = tandem::llama_model_handle::load(tpath);
  auto dm = tandem::llama_model_handle::load(dpath);
  if (!tm || !dm) return res;
  tandem::llama_tokenizer tok(*tm, {true});
  std::vector<token_id> prompt;
  if (tok.encode(bench_prompt, prompt) != errc::ok) return res;
  std::vector<speed> base, tree, linear;
  std::vector<double> tree_paired, linear_paired;
  std::vector<token_id> want, got;
  for (int rep = 0; rep < o.reps; ++rep) {
    const speed b0 = decode_speed(target_only(o, *tm, prompt, o.tokens, &want),
                                  target_only(o, *tm, prompt, 1, nullptr));
    base.push_back(b0);
    tree.push_back(decode_speed(tandem_tree(o, *tm, *dm, prompt, o.tokens, &res.stats, &got),
                                tandem_tree(o, *tm, *dm, prompt, 1, nullptr, nullptr)));
    res.same_output = res.same_output && got == want;
    linear.push_back(
        decode_speed(tandem_speculative(o, *tm, *dm, prompt, tandem::cost_model_draft{}, 0.0f,
                                        o.tokens, nullptr, &got),
                     tandem_speculative(o, *tm, *dm, prompt, tandem::cost_model_draft{}, 0.0f, 1,
                                        nullptr, nullptr)));
    res.same_output = res.same_output && got == want;
    if (b0.cpu_tps > 0) {
      tree_paired.push_back(tree.back().cpu_tps / b0.cpu_tps);
      linear_paired.push_back(linear.back().cpu_tps / b0.cpu_tps);
    }
  }
  if (std::getenv("TANDEM_BENCH_VERBOSE")) {  // fixed chains through the tree decoder
    for (const std::size_t g : {4, 8}) {
      const speed c = decode_speed(
          tandem_tree(o, *tm, *dm, prompt, o.tokens, nullptr, &got, tandem::fixed_tree{g, g, 1, 1}),
          tandem_tree(o, *tm, *dm, prompt, 1, nullptr, nullptr));
      std::fprintf(stderr, "%s chain of %zu through the tree decoder: %.2f tok/s cpu\n",
                   res.name.c_str(), g, c.cpu_tps);
    }
    for (const tandem::fixed_tree f :
         {tandem::fixed_tree{6, 3, 3, 2}, tandem::fixed_tree{12, 4, 4, 3}}) {
      tandem::tree_stats st;
      const speed c = decode_speed(tandem_tree(o, *tm, *dm, prompt, o.tokens, &st, &got, f),
                                   tandem_tree(o, *tm, *dm, prompt, 1, nullptr, nullptr, f));
      std::fprintf(stderr, "%s fixed tree %zu/%zu/%zu/%zu: %.2f tok/s cpu, accepted %.3f\n",
                   res.name.c_str(), f.nodes, f.depth, f.children, f.width, c.cpu_tps,
                   st.mean_accepted_length());
    }
    const speed l = decode_speed(tandem_speculative(o, *tm, *dm, prompt, tandem::cost_model_draft{},
                                                    0.0f, o.tokens, nullptr, &got, false, 64),
                                 tandem_speculative(o, *tm, *dm, prompt, tandem::cost_model_draft{},
                                                    0.0f, 1, nullptr, nullptr, false, 64));
    std::fprintf(stderr, "%s linear on the tree decoder's sessions: %.2f tok/s cpu\n",
                 res.name.c_str(), l.cpu_tps);
  }
  res.target = median_speed(base);
  res.tree = median_speed(tree);
  res.linear = median_speed(linear);
  res.tree_over_target = median(tree_paired);
  res.linear_over_target = median(linear_paired);
  if (res.linear.cpu_tps > 0) res.tree_over_linear = res.tree.cpu_tps / res.linear.cpu_tps;
  tandem_bench::llamacpp_tree_options lo;
  lo.llama_bin = o.llama_bin;
  lo.target = tpath;
  lo.draft = dpath;
  lo.prompt = bench_prompt;
  lo.tokens = o.tokens;
  lo.draft_max = res.draft_max = c == std::string::npos
                                     ? o.draft_max
                                     : static_cast<std::size_t>(std::atol(spec.c_str() + c + 1));
  lo.threads = o.threads;
  lo.flash_attn = o.flash_attn < 0 ? "auto" : o.flash_attn == 0 ? "off" : "on";
  res.llamacpp = tandem_bench::llamacpp_tree_best(lo);
  if (res.llamacpp.cpu_tps > 0 && res.tree.cpu_tps > 0)
    res.tree_over_llamacpp = res.tree.cpu_tps / res.llamacpp.cpu_tps;
  return res;
}

void print_tree_pair(const options& o, const tree_pair_result& r) {
  std::printf(
      "{\"bench\":\"speculative\",\"case\":\"%s/tree\",\"tokens\":%zu,\"tree_scoring\":\"%s\","
      "\"target_cpu_tps\":%.2f,\"tree_cpu_tps\":%.2f,\"linear_cpu_tps\":%.2f,"
      "\"tree_over_target\":%.3f,\"linear_over_target\":%.3f,\"tree_over_linear\":%.3f,"
      "\"mean_tree_nodes\":%.2f,\"mean_accepted\":%.3f,\"same_output\":%s",
      r.name.c_str(), o.tokens,
      tandem::TreeScoring<tandem::llama_session> ? "one-pass" : "fallback", r.target.cpu_tps,
      r.tree.cpu_tps, r.linear.cpu_tps, r.tree_over_target, r.linear_over_target,
      r.tree_over_linear, r.stats.mean_tree_size(), r.stats.mean_accepted_length(),
      r.same_output ? "true" : "false");
  if (r.tree_over_llamacpp >= 0.0)
    std::printf(
        ",\"tree_over_llamacpp\":%.3f,\"llamacpp_tree_cpu_tps\":%.2f,"
        "\"llamacpp_tree_accept_pct\":%.1f,\"llamacpp_tree_setting\":\"%s\"",
        r.tree_over_llamacpp, r.llamacpp.cpu_tps, r.llamacpp.accept_pct,
        tandem_bench::llamacpp_tree_flags(r.llamacpp, r.draft_max).c_str());
  std::printf("}\n");
  std::fprintf(stderr, "%-8s tree: %.2f tok/s cpu, linear %.2f, tree/linear %.3f, nodes %.2f%s\n",
               r.name.c_str(), r.tree.cpu_tps, r.linear.cpu_tps, r.tree_over_linear,
               r.stats.mean_tree_size(), r.same_output ? "" : "  OUTPUT DIFFERS");
  std::fflush(stdout);
}

// Part 2 for trees: every pair of the run.
void tree_pair(const options& o, const std::string& spec) {
  print_tree_pair(o, measure_tree_pair(o, spec));
}
#endif

}  // namespace
