// demo: each of tandem's building blocks on the same prompts, in one compact table.
//
// Run it with one command from a fresh clone: `cmake --workflow --preset demo`.
//
// The default models are built in a few seconds at startup: Kneser-Ney n-gram models
// (tandem's built-in backend) of orders 2, 3 and 5 trained on the bundled King James
// verses (data/kjv/train.txt) over the project's sentencepiece BPE-4000 tokenizer. The
// prompts are the opening words of held-out verses (data/kjv/heldout.txt).
//
//  1. speculative  target-only vs speculative decoding (tokens/s, acceptance, whether the
//                  output is identical). An n-gram target costs the same per token scored
//                  alone or in a batch, so it is wrapped in `simulated_latency`, which adds
//                  a fixed time per forward pass, the cost shape of a memory-bound large
//                  model on a GPU. With --draft/--target GGUF files (a build with
//                  llama.cpp) the real models run instead, with no simulation.
//  2. contrastive  greedy vs contrastive decoding (expert order 5, amateur order 2) of
//                  continuations twice as long as in 1., with the verse end masked so that
//                  generation goes on where a loop would show.
//  3. cascade      the small model (order 3) answers first and escalates to the large one
//                  (order 5) when unsure, on "the next two words of a held-out verse";
//                  and a replay of recorded GSM8K outcomes of two real LLMs
//                  (data/routellm) with a learned scorer of the weak model's answers.
//                  The next-words cascade runs twice: on the small model's white-box
//                  confidence, and on a learned deferral score (the learned evaluator
//                  trained to predict "small wrong, large right").
//  4. router       a TF-IDF + logistic router trained on recorded MMLU outcomes, shown on
//                  held-out MMLU queries with both models' recorded outcomes.
//  5. confidence   white-box confidence estimators scored on the cascade task.
//
// The demo itself uses no exceptions: every failure is a tandem::errc, reported with a
// message and a non-zero exit status.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/prompt_list.hpp"  // tools/common: the JSON Lines reader of tandem's tools
#include "tandem/backends/ngram_model.hpp"
#include "tandem/backends/sentencepiece.hpp"
#include "tandem/cascade/policy.hpp"
#include "tandem/cascade/threshold.hpp"
#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/learned.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/confidence/white_box.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"
#include "tandem/router/policy.hpp"
#include "tandem/router/router.hpp"
#include "tandem/speculative/decoder.hpp"
#if defined(TANDEM_DEMO_HAVE_LLAMA)
#include "tandem/backends/llama_cpp.hpp"
#endif

namespace {

using tandem::errc;
using tandem::token_id;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// ---- Settings and command line -------------------------------------------------------------

constexpr const char* help_text = R"(usage: demo [options]

Shows tandem's building blocks (speculative decoding, contrastive decoding, cascade,
router, confidence) on the same held-out prompts, as one table on stdout. Progress goes
to stderr.

options:
  --prompts N        prompts for speculative and contrastive decoding (default 8)
  --tokens N         tokens generated per prompt in speculative decoding (default 32);
                     contrastive decoding generates twice as many, never ending the verse
  --seed N           seed of the train/test splits (default 1)
  --quick            a small run for CI: fewer prompts and verses, a corpus subset, fewer
                     router rows (a smoke test: its figures are noisy)
  --corpus PATH      train the n-gram models on this text file (one sentence a line;
                     every 10th line is held out as prompts) instead of the KJV verses
  --data DIR         tandem's data directory (default: the source tree's data/)
  --tokenizer PATH   sentencepiece model (default: the BPE-4000 fixture of the build)
  --latency-ms X     simulated time per forward pass of the n-gram target (default 2)
  --draft PATH       GGUF draft model  } both together: speculative decoding with these
  --target PATH      GGUF target model } llama.cpp models instead (no simulated latency)
  --help             this text
)";

struct settings {
  std::string data = TANDEM_DEMO_DATA_DIR;
  std::string tokenizer = TANDEM_DEMO_TOKENIZER;
  std::string corpus;
  std::string draft, target;
  std::size_t prompts = 8;
  std::size_t tokens = 32;
  std::uint64_t seed = 1;
  double latency_ms = 2.0;
  bool quick = false;
  // Derived from --quick.
  std::size_t cascade_prompts = 1000;  // held-out verses of the cascade task
  std::size_t max_train_lines = 0;     // 0: the whole corpus
  std::size_t mmlu_files = 0;          // 0: every bundled subject
};

int usage_error(const char* fmt, ...) {
  std::fputs("demo: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputs(" (see demo --help)\n", stderr);
  return 2;
}

// The leading newline ends a progress line the failure may have interrupted.
int failure(const char* what, errc e) {
  std::fprintf(stderr, "\ndemo: %s: %s\n", what, std::string(tandem::to_string(e)).c_str());
  return 1;
}

bool parse_count(const char* s, std::size_t lo, std::size_t hi, std::size_t& out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) return false;
  out = static_cast<std::size_t>(v);
  return true;
}

// Returns -1 to go on, else the exit status.
int parse_args(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(help_text, stdout);
      return 0;
    }
    if (flag == "--quick") {
      s.quick = true;
      continue;
    }
    constexpr std::string_view valued[] = {"--prompts",    "--tokens", "--seed",
                                           "--latency-ms", "--corpus", "--data",
                                           "--tokenizer",  "--draft",  "--target"};
    if (std::find(std::begin(valued), std::end(valued), flag) == std::end(valued))
      return usage_error("unknown flag '%s'", argv[i]);
    if (i + 1 >= argc) return usage_error("%s needs a value", argv[i]);
    const char* v = argv[++i];
    std::size_t n = 0;
    if (flag == "--prompts") {
      if (!parse_count(v, 1, 256, n)) return usage_error("--prompts: a count from 1 to 256");
      s.prompts = n;
    } else if (flag == "--tokens") {
      if (!parse_count(v, 1, 1024, n)) return usage_error("--tokens: a count from 1 to 1024");
      s.tokens = n;
    } else if (flag == "--seed") {
      if (!parse_count(v, 0, std::numeric_limits<std::size_t>::max(), n))
        return usage_error("--seed: a non-negative integer");
      s.seed = n;
    } else if (flag == "--latency-ms") {
      char* end = nullptr;
      const double x = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(x >= 0.0 && x <= 1000.0))
        return usage_error("--latency-ms: a number of milliseconds from 0 to 1000");
      s.latency_ms = x;
    } else if (flag == "--corpus") {
      s.corpus = v;
    } else if (flag == "--data") {
      s.data = v;
    } else if (flag == "--tokenizer") {
      s.tokenizer = v;
    } else if (flag == "--draft") {
      s.draft = v;
    } else if (flag == "--target") {
      s.target = v;
    } else {
      return usage_error("unknown flag '%s'", argv[i - 1]);
    }
  }
  if (s.draft.empty() != s.target.empty()) return usage_error("--draft and --target go together");
#if !defined(TANDEM_DEMO_HAVE_LLAMA)
  if (!s.draft.empty())
    return usage_error(
        "--draft/--target need llama.cpp, and this demo was built without it (configure with "
        "TANDEM_LLAMA_PREFIX or CMAKE_PREFIX_PATH pointing at a llama.cpp install)");
#endif
  if (s.quick) {
    s.prompts = std::min<std::size_t>(s.prompts, 4);
    s.tokens = std::min<std::size_t>(s.tokens, 24);
    s.cascade_prompts = 300;
    s.max_train_lines = 6000;
    s.mmlu_files = 8;
  }
  return -1;
}

// ---- Progress on stderr ----------------------------------------------------------------------

// Prints "what ..." when constructed and " 1.2 s" when done.
class progress {
 public:
  explicit progress(const char* fmt, ...) : t0_(clock_type::now()) {
    std::fflush(stdout);  // the table so far first, when both go to one terminal
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputs(" ...", stderr);
    std::fflush(stderr);
  }
  double done() {
    const double s = seconds_since(t0_);
    std::fprintf(stderr, " %.1f s\n", s);
    return s;
  }

 private:
  clock_type::time_point t0_;
};

// ---- Text helpers ------------------------------------------------------------------------

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string line = text.substr(i, j - i);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(std::move(line));
    i = j + 1;
  }
  return out;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <class Words>
std::string join_words(const Words& w) {
  std::string out;
  for (std::string_view x : w) {
    if (!out.empty()) out += ' ';
    out += x;
  }
  return out;
}

// A word without the punctuation around it: the cascade task checks words, not commas.
std::string_view bare(std::string_view w) {
  const auto punct = [](char c) {
    return c == ',' || c == '.' || c == ';' || c == ':' || c == '?' || c == '!' || c == '(' ||
           c == ')' || c == '\'';
  };
  while (!w.empty() && punct(w.front())) w.remove_prefix(1);
  while (!w.empty() && punct(w.back())) w.remove_suffix(1);
  return w;
}

// `s` shortened to at most `n` (>= 4) characters, newlines as spaces.
std::string clip(std::string_view s, std::size_t n) {
  std::string out;
  // ASCII only, so that the columns line up: each other character becomes one '.
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80) {
      if ((b & 0xC0) != 0x80) out += '\'';
      continue;
    }
    out += (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
  }
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  if (out.size() <= n) return out;
  out.resize(n - 3);
  return out + "...";
}

// ---- The simulated-latency adapter ------------------------------------------------------

// SIMULATION, for the default n-gram target only: a model that spends a fixed time per
// forward pass (append or score), however many tokens the pass holds. That is the cost
// shape of a memory-bound large model on a GPU, where reading the weights dominates, so
// verifying k draft tokens costs about one pass. The built-in n-gram model instead costs
// the same per token scored alone or in a batch, so speculation could not speed it up by
// itself. Rewind is free, as dropping KV-cache entries is. Busy-waits (a sleep would
// round up to the scheduler's tick). Counts the passes; with a latency of 0 it only
// counts. Borrows the model.
template <class M>
class simulated_latency {
 public:
  simulated_latency(M& model, std::chrono::nanoseconds per_pass) noexcept
      : model_(&model), per_pass_(per_pass) {}

  [[nodiscard]] std::size_t vocab_size() const noexcept { return model_->vocab_size(); }
  [[nodiscard]] std::size_t size() const noexcept { return model_->size(); }
  [[nodiscard]] std::size_t context_length() const noexcept { return model_->context_length(); }
  [[nodiscard]] std::span<const float> logits() const noexcept { return model_->logits(); }
  [[nodiscard]] errc append(std::span<const token_id> t) noexcept {
    pass();
    return model_->append(t);
  }
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) noexcept {
    pass();
    return model_->score(t, rows);
  }
  [[nodiscard]] errc rewind(std::size_t n) noexcept { return model_->rewind(n); }
  /// Forward passes so far.
  [[nodiscard]] std::size_t passes() const noexcept { return passes_; }

 private:
  void pass() noexcept {
    ++passes_;
    const auto until = clock_type::now() + per_pass_;
    while (clock_type::now() < until) {
    }
  }
  M* model_;
  std::chrono::nanoseconds per_pass_;
  std::size_t passes_ = 0;
};

// A model whose distribution never ends the verse: the wrapped model's logits with the
// end-of-sentence token masked (-inf), so that section 2 can generate long continuations
// across what would have been a verse end. Copies the logits after each change (one
// buffer, sized at construction). Borrows the model.
template <class M>
class without_end {
 public:
  without_end(M& model, token_id eos) : model_(&model), eos_(eos), logits_(model.vocab_size()) {
    refresh();
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return model_->vocab_size(); }
  [[nodiscard]] std::size_t size() const noexcept { return model_->size(); }
  [[nodiscard]] std::span<const float> logits() const noexcept { return logits_; }
  [[nodiscard]] errc append(std::span<const token_id> t) noexcept {
    TANDEM_TRY(model_->append(t));
    refresh();
    return errc::ok;
  }

 private:
  void refresh() noexcept {
    const std::span<const float> l = model_->logits();
    std::copy(l.begin(), l.end(), logits_.begin());
    logits_[static_cast<std::size_t>(eos_)] = -std::numeric_limits<float>::infinity();
  }
  M* model_;
  token_id eos_;
  std::vector<float> logits_;
};

// ---- Corpus, tokenizer, models ---------------------------------------------------------

struct prompt_case {
  std::string text;               // the opening words of a held-out verse
  std::vector<std::string> rest;  // the verse's following words
};

struct corpus_data {
  std::vector<std::string> train_lines;
  std::vector<prompt_case> cases;  // held-out verses long enough for the cascade task
  std::string source;              // for the header line
};

constexpr std::size_t prompt_words = 5;  // words of a verse given as the prompt
constexpr std::size_t answer_words = 2;  // words the cascade task asks for

errc load_corpus(const settings& s, corpus_data& c) {
  std::vector<std::string> heldout;
  if (s.corpus.empty()) {
    auto train = tandem::read_text_file((s.data + "/kjv/train.txt").c_str());
    if (!train) return train.error();
    auto held = tandem::read_text_file((s.data + "/kjv/heldout.txt").c_str());
    if (!held) return held.error();
    c.train_lines = split_lines(*train);
    heldout = split_lines(*held);
    c.source = "KJV verses (data/kjv)";
  } else {
    auto text = tandem::read_text_file(s.corpus.c_str());
    if (!text) return text.error();
    std::vector<std::string> lines = split_lines(*text);
    for (std::size_t i = 0; i < lines.size(); ++i)
      (i % 10 == 9 ? heldout : c.train_lines).push_back(std::move(lines[i]));
    c.source = s.corpus;
  }
  if (s.max_train_lines > 0 && c.train_lines.size() > s.max_train_lines)
    c.train_lines.resize(s.max_train_lines);
  c.cases.reserve(heldout.size());
  for (const std::string& v : heldout) {
    const std::vector<std::string_view> w = split_words(v);
    if (w.size() < prompt_words + answer_words) continue;
    prompt_case& p = c.cases.emplace_back();
    p.text = join_words(std::span(w).first(prompt_words));
    p.rest.assign(w.begin() + static_cast<std::ptrdiff_t>(prompt_words), w.end());
  }
  if (c.train_lines.empty() || c.cases.empty()) return errc::insufficient_data;
  return errc::ok;
}

// ---- 1. Speculative decoding ---------------------------------------------------------------

struct speculative_row {
  std::size_t tokens = 0;
  double seconds = 0.0;
  std::size_t target_passes = 0;
};

struct speculative_report {
  speculative_row plain, spec;
  double acceptance = 0.0, mean_accepted = 0.0;
  bool identical = true;
  std::vector<token_id> first;  // the speculative continuation of the first prompt
};

// Target-only greedy decoding against greedy speculative decoding on every prompt (token
// ids, BOS included when the model wants one); the target is emptied before each run and
// counts its forward passes.
template <class Target, class Draft>
errc compare_speculative(Target& target, Draft& draft,
                         std::span<const std::vector<token_id>> prompts,
                         const tandem::generation_options& opts, speculative_report& r) {
  tandem::model_drafter drafter(draft, tandem::greedy_sampler{});
  tandem::speculative_decoder dec(target, drafter, tandem::adaptive_draft{});
  tandem::greedy_sampler greedy;
  tandem::completion a, b;
  for (const auto& p : prompts) {
    if (target.size() > 0) TANDEM_TRY(target.rewind(target.size()));
    std::size_t before = target.passes();
    auto t0 = clock_type::now();
    TANDEM_TRY(tandem::generate(target, greedy, p, opts, a));
    r.plain.seconds += seconds_since(t0);
    r.plain.tokens += a.tokens.size();
    r.plain.target_passes += target.passes() - before;

    if (target.size() > 0) TANDEM_TRY(target.rewind(target.size()));
    before = target.passes();
    t0 = clock_type::now();
    TANDEM_TRY(dec.generate(greedy, p, opts, b));
    r.spec.seconds += seconds_since(t0);
    r.spec.tokens += b.tokens.size();
    r.spec.target_passes += target.passes() - before;
    r.identical = r.identical && a.tokens == b.tokens;
    if (&p == &prompts.front()) r.first = b.tokens;
  }
  r.acceptance = dec.stats().acceptance_rate();
  r.mean_accepted = dec.stats().mean_accepted_length();
  return errc::ok;
}

// `first_text`: the first prompt's speculative continuation, as text.
void print_speculative(const speculative_report& r, const char* target_desc, const char* draft_desc,
                       std::size_t n_prompts, std::size_t max_tokens,
                       const std::string& first_text) {
  std::printf(
      "\n1. SPECULATIVE DECODING  target: %s; draft: %s;\n"
      "   greedy, %zu prompts x up to %zu tokens\n",
      target_desc, draft_desc, n_prompts, max_tokens);
  std::printf("   %-22s %8s %10s %14s %11s   %s\n", "method", "tokens", "tokens/s", "target passes",
              "acceptance", "output");
  const auto tps = [](const speculative_row& x) {
    return x.seconds > 0 ? static_cast<double>(x.tokens) / x.seconds : 0.0;
  };
  std::printf("   %-22s %8zu %10.1f %14zu %11s   %s\n", "target only", r.plain.tokens, tps(r.plain),
              r.plain.target_passes, "-", "reference");
  std::printf("   %-22s %8zu %10.1f %14zu %11.2f   identical output: %s\n", "speculative",
              r.spec.tokens, tps(r.spec), r.spec.target_passes, r.acceptance,
              r.identical ? "yes" : "NO");
  std::printf("   first prompt's continuation: \"%s\"\n", clip(first_text, 72).c_str());
  std::printf("   speedup %.2fx; %.1f draft tokens accepted per round on average\n",
              tps(r.plain) > 0 ? tps(r.spec) / tps(r.plain) : 0.0, r.mean_accepted);
  std::printf(
      "   legend: tokens/s = generated tokens / wall time; target passes = forward passes of the "
      "target\n"
      "   (prompt included); acceptance = accepted / drafted tokens; identical = same tokens as "
      "target-only greedy\n");
}

// ---- 2. Contrastive decoding -------------------------------------------------------------

// Repetition of continuations, each measured on its own tokens and averaged: rep-4 is the
// share of token 4-grams that already occurred earlier in the same continuation,
// distinct-2 the distinct token bigrams over all bigrams; expert perplexity is that of the
// unmasked expert model given the prompt (lower = more like the corpus).
struct repetition {
  double rep4_sum = 0, distinct2_sum = 0, log_ppl_sum = 0;
  std::size_t generations = 0;
  std::set<std::array<token_id, 4>> all4;  // 4-grams of every continuation so far
  std::size_t all_n4 = 0, all_rep = 0;
  void add(std::span<const token_id> g, double log_ppl) {
    ++generations;
    log_ppl_sum += log_ppl;
    std::set<std::array<token_id, 4>> seen4;
    std::size_t n4 = 0, rep = 0;
    for (std::size_t i = 0; i + 4 <= g.size(); ++i, ++n4) {
      const std::array<token_id, 4> q{g[i], g[i + 1], g[i + 2], g[i + 3]};
      if (!seen4.insert(q).second) ++rep;
      if (!all4.insert(q).second) ++all_rep;
      ++all_n4;
    }
    std::set<std::pair<token_id, token_id>> seen2;
    for (std::size_t i = 0; i + 2 <= g.size(); ++i) seen2.insert({g[i], g[i + 1]});
    if (n4 > 0) rep4_sum += static_cast<double>(rep) / static_cast<double>(n4);
    if (g.size() >= 2)
      distinct2_sum += static_cast<double>(seen2.size()) / static_cast<double>(g.size() - 1);
  }
  [[nodiscard]] double mean(double sum) const {
    return generations ? sum / static_cast<double>(generations) : 0.0;
  }
  [[nodiscard]] double rep4() const { return mean(rep4_sum); }
  // rep-4 of all continuations taken together: also counts one loop reached from several
  // prompts.
  [[nodiscard]] double rep4_all() const {
    return all_n4 ? static_cast<double>(all_rep) / static_cast<double>(all_n4) : 0.0;
  }
  [[nodiscard]] double distinct2() const { return mean(distinct2_sum); }
  // Geometric mean over continuations of the per-token perplexity.
  [[nodiscard]] double perplexity() const { return std::exp(mean(log_ppl_sum)); }
};

// Mean negative natural-log probability per token of `gen` after `prompt` under `m`.
double log_perplexity(const tandem::ngram_model& m, std::span<const token_id> prompt,
                      std::span<const token_id> gen) {
  if (gen.empty()) return 0.0;
  std::vector<token_id> ctx(prompt.begin(), prompt.end());
  double lp = 0.0;
  for (token_id t : gen) {
    auto v = m.log_prob(ctx, t);
    lp += v && std::isfinite(*v) ? std::max(*v, -50.0) : -50.0;
    ctx.push_back(t);
  }
  return -lp / static_cast<double>(gen.size());
}

// ---- 3./5. Cascade and confidence on the next-words task -----------------------------------

struct answer {
  std::string words;  // the first answer_words words of the continuation
  bool right = false;
  double cost = 0.0;
  tandem::white_box_scores scores{};
  bool scored = false;
  double first_logprob = -50.0;  // of the answer's first token
  double first_entropy = 0.0;    // of the distribution it was chosen from
  double prompt_logprob = 0.0;   // the model's mean log-prob per token of the prompt
};

// Greedy continuation of `prompt` by `model` (up to 8 tokens, EOS stops), checked against
// the verse's next words; cost = price per token of the answer; the white-box scores are
// those of the answer's tokens.
errc answer_case(tandem::ngram_session& model, const tandem::sentencepiece_tokenizer& tok,
                 std::span<const token_id> prompt, const prompt_case& pc, double price,
                 tandem::completion& out, answer& a) {
  if (model.size() > 0) TANDEM_TRY(model.rewind(model.size()));
  const token_id stop[] = {tok.eos_id()};
  tandem::generation_options o;
  o.max_tokens = 8;
  o.stop_tokens = stop;
  tandem::greedy_sampler greedy;
  TANDEM_TRY(tandem::generate(model, tok, greedy, prompt, o, out));
  // Keep the tokens of the first answer_words words, split as split_words splits the text:
  // the first piece and every piece opening with a space start a word.
  std::size_t n_ans = 0, starts = 0;
  std::string piece;
  for (; n_ans < out.tokens.size(); ++n_ans) {
    piece.clear();
    TANDEM_TRY(tok.piece(out.tokens[n_ans], piece));
    const bool starts_word = n_ans == 0 || (!piece.empty() && piece.front() == ' ');
    if (starts_word && ++starts > answer_words) break;
  }
  out.tokens.resize(n_ans);
  out.logprobs.resize(std::min(out.logprobs.size(), n_ans));
  out.entropies.resize(std::min(out.entropies.size(), n_ans));
  const std::vector<std::string_view> w = split_words(out.text);
  const std::size_t k = std::min(w.size(), answer_words);
  a.words = join_words(std::span(w).first(k));
  a.right = k == answer_words;
  for (std::size_t i = 0; i < k && a.right; ++i) a.right = bare(w[i]) == bare(pc.rest[i]);
  a.cost = price * static_cast<double>(std::max<std::size_t>(n_ans, 1));
  if (!out.logprobs.empty()) a.first_logprob = std::max<double>(out.logprobs[0], -50.0);
  if (!out.entropies.empty()) a.first_entropy = out.entropies[0];
  auto s = tandem::score_white_box(out);
  a.scored = s.has_value();
  if (s) a.scores = *s;
  return errc::ok;
}

// A white-box estimator oriented as a confidence (higher = more likely right); answers
// without tokens get the lowest confidence.
struct estimator {
  const char* name;
  tandem::score_scale scale;
  double (*get)(const tandem::white_box_scores&);
};
const estimator estimators[] = {
    {"mean token log-prob", tandem::score_scale::logit,
     [](const tandem::white_box_scores& s) { return s.mean_logprob; }},
    {"min token prob", tandem::score_scale::probability,
     [](const tandem::white_box_scores& s) { return s.min_token_probability; }},
    {"sequence prob", tandem::score_scale::probability,
     [](const tandem::white_box_scores& s) { return s.sequence_probability; }},
    {"-mean entropy", tandem::score_scale::logit,
     [](const tandem::white_box_scores& s) { return -s.mean_entropy; }},
};

double confidence_of(const estimator& e, const answer& a) {
  if (!a.scored) return e.scale == tandem::score_scale::probability ? 0.0 : -50.0;
  const double v = e.get(a.scores);
  return std::isfinite(v) ? std::clamp(v, -50.0, 50.0) : -50.0;
}

struct cascade_row {
  const char* name;
  double quality, cost, escalation;
  std::optional<double> apgr;
};

void print_cascade_rows(std::span<const cascade_row> rows) {
  for (const cascade_row& r : rows) {
    char apgr[16] = "-";
    if (r.apgr) std::snprintf(apgr, sizeof apgr, "%.2f", *r.apgr);
    std::printf("   %-30s %8.3f %10.2f %10.0f%% %6s\n", r.name, r.quality, r.cost,
                100.0 * r.escalation, apgr);
  }
}

// The two-stage cascade (stage 0 = small, accepts when its confidence >= threshold; else
// stage 1 = large, paying both) fitted on the training rows and replayed on the test rows.
// conf: per row; quality/cost: per row x {small, large}. The threshold is FrugalGPT's
// budget search (cascade/threshold.hpp) on the training rows with the budget "half the
// large model's mean cost". APGR is that of the test rows' threshold sweep.
struct cascade_fit {
  std::vector<cascade_row> rows;
  double threshold = 0.0, budget = 0.0;
};

errc fit_cascade(std::span<const double> conf_train, std::span<const double> q_train,
                 std::span<const double> c_train, std::span<const double> conf_test,
                 std::span<const double> q_test, std::span<const double> c_test,
                 const char* small_name, const char* large_name, cascade_fit& out) {
  const std::size_t n_tr = conf_train.size(), n = conf_test.size();
  std::vector<double> s_tr(2 * n_tr, 1.0), s_te(2 * n, 1.0);
  double large_cost = 0.0;
  for (std::size_t i = 0; i < n_tr; ++i) {
    s_tr[2 * i] = conf_train[i];
    large_cost += c_train[2 * i + 1];
  }
  for (std::size_t i = 0; i < n; ++i) s_te[2 * i] = conf_test[i];
  out.budget = 0.5 * large_cost / static_cast<double>(n_tr);
  const tandem::cascade_views train{s_tr, q_train, c_train, 2};
  const tandem::cascade_views test{s_te, q_test, c_test, 2};
  tandem::budget_search_options bo;
  bo.max_length = 2;
  bo.grid = 64;
  auto found = tandem::search_budget(train, out.budget, bo);
  if (!found) return found.error();
  // The search may keep the small model alone, which accepts everything (threshold -inf).
  const tandem::cascade_policy& policy = found->policy;
  out.threshold =
      policy.order.size() == 2 ? policy.accept[0] : -std::numeric_limits<double>::infinity();
  auto small = tandem::evaluate_cascade(tandem::cascade_policy::chain({0}, 0.0), test);
  auto large = tandem::evaluate_cascade(tandem::cascade_policy::chain({1}, 0.0), test);
  auto casc = tandem::evaluate_cascade(policy, test);
  if (!small) return small.error();
  if (!large) return large.error();
  if (!casc) return casc.error();
  // APGR over the test threshold sweep: escalate the least confident first; an escalated
  // query pays both stages.
  std::vector<double> esc(n), qw(n), qs(n), cw(n), cs(n);
  for (std::size_t i = 0; i < n; ++i) {
    esc[i] = -conf_test[i];
    qw[i] = q_test[2 * i];
    qs[i] = q_test[2 * i + 1];
    cw[i] = c_test[2 * i];
    cs[i] = c_test[2 * i] + c_test[2 * i + 1];
  }
  std::optional<double> apgr;
  if (auto curve = tandem::two_model_curve(esc, qw, qs, cw, cs))
    if (auto m = tandem::two_model_summary(*curve)) apgr = m->apgr;
  out.rows = {{small_name, small->quality, small->cost, 0.0, std::nullopt},
              {large_name, large->quality, large->cost, 1.0, std::nullopt},
              {"cascade", casc->quality, casc->cost, casc->escalation, apgr}};
  return errc::ok;
}

// Scores of `rows` by scorers that never saw them: `score(fit, held, out)` trains on `fit`
// and scores `held` into `out`; each of `folds` folds (row k in fold k % folds) is held out
// once. The cascade threshold is chosen on these, as in-sample scores would be optimistic.
template <class Score>
errc out_of_fold(std::span<const std::size_t> rows, std::size_t folds, Score&& score,
                 std::vector<double>& out) {
  out.assign(rows.size(), 0.0);
  std::vector<std::size_t> fit_rows, held_rows;
  std::vector<double> held_scores;
  for (std::size_t f = 0; f < folds; ++f) {
    fit_rows.clear();
    held_rows.clear();
    for (std::size_t k = 0; k < rows.size(); ++k)
      (k % folds == f ? held_rows : fit_rows).push_back(rows[k]);
    TANDEM_TRY(score(std::span<const std::size_t>(fit_rows),
                     std::span<const std::size_t>(held_rows), held_scores));
    for (std::size_t k = f, j = 0; k < rows.size(); k += folds, ++j) out[k] = held_scores[j];
  }
  return errc::ok;
}

// Learned deferral for the next-words cascade: the learned evaluator (hashed words of the
// prompt and of the small model's answer, plus the small model's white-box numbers),
// trained on `fit` rows to predict "escalating pays" (small wrong, large right). Writes
// 1 - that probability for `pred` rows: a confidence in keeping the small answer. It uses
// only what the small model saw and said, so it runs before the large model.
errc deferral_scores(std::span<const prompt_case> cases, std::span<const answer> small,
                     std::span<const answer> large, std::span<const std::size_t> fit,
                     std::span<const std::size_t> pred, std::vector<double>& out) {
  // Log-probabilities in tens of nats, so that the features have similar ranges.
  const auto features = [&](std::size_t i) {
    const answer& a = small[i];
    return std::array<double, 4>{confidence_of(estimators[0], a) / 10.0, a.first_logprob / 10.0,
                                 a.first_entropy, a.prompt_logprob / 10.0};
  };
  std::vector<std::array<double, 4>> f(cases.size());
  for (std::size_t i : fit) f[i] = features(i);
  for (std::size_t i : pred) f[i] = features(i);
  std::vector<tandem::learned_example> ex;
  ex.reserve(fit.size());
  for (std::size_t i : fit)
    ex.push_back({cases[i].text, small[i].words, f[i], !small[i].right && large[i].right ? 1 : 0});
  tandem::learned_options lo;
  lo.l2 = 1e-2;  // the GSM8K scorer's penalty below; not tuned for this task
  auto ev = tandem::learned_evaluator::train(ex, lo);
  if (!ev) return ev.error();
  out.resize(pred.size());
  for (std::size_t k = 0; k < pred.size(); ++k) {
    auto p = ev->predict(cases[pred[k]].text, small[pred[k]].words, f[pred[k]]);
    if (!p) return p.error();
    out[k] = 1.0 - *p;
  }
  return errc::ok;
}

// ---- GSM8K replay (cascade row 2) -----------------------------------------------------

constexpr const char* weak_model = "mistralai/Mixtral-8x7B-Instruct-v0.1";
constexpr const char* strong_model = "gpt-4-1106-preview";

struct gsm8k_row {
  std::string prompt, weak_answer;
  double weak = 0, strong = 0;
};

errc load_gsm8k(const std::string& path, std::vector<gsm8k_row>& rows) {
  auto csv = tandem::read_csv_file(path.c_str());
  if (!csv) return csv.error();
  auto pc = csv->column("prompt");
  auto wc = csv->column(weak_model);
  auto sc = csv->column(strong_model);
  auto rc = csv->column(std::string(weak_model) + "_response");
  if (!pc || !wc || !sc || !rc) return errc::not_found;
  for (const auto& r : csv->rows) {
    auto w = tandem::parse_quality(r[*wc]);
    auto s = tandem::parse_quality(r[*sc]);
    if (!w || !s || r[*rc].empty()) continue;
    rows.push_back({r[*pc], r[*rc], *w, *s});
  }
  return rows.empty() ? errc::insufficient_data : errc::ok;
}

// RouteLLM's contaminated prompts (both sides of each recorded overlap between the
// routers' training data and the evaluation sets), to leave out of the replays.
errc load_contaminated(const std::string& path, std::unordered_set<std::string>& out) {
  auto list = tandem_tools::read_prompt_list_file(path);
  if (!list) return list.error();
  out = std::move(*list);
  return errc::ok;
}

// Learned evaluator (hashed word n-grams of question and answer, confidence/learned.hpp)
// trained on `fit` rows, predicting P(weak answer right) for `pred` rows.
errc learned_scores(const std::vector<gsm8k_row>& rows, std::span<const std::size_t> fit,
                    std::span<const std::size_t> pred, std::vector<double>& out) {
  std::vector<tandem::learned_example> ex;
  ex.reserve(fit.size());
  for (std::size_t i : fit)
    ex.push_back({rows[i].prompt, rows[i].weak_answer, {}, rows[i].weak >= 0.5 ? 1 : 0});
  // A fixed penalty and iteration cap keep this under a second; tools/tandem-cascade
  // chooses the penalty by cross-validation instead.
  tandem::learned_options lo;
  lo.l2 = 1e-2;
  lo.max_iterations = 150;
  auto ev = tandem::learned_evaluator::train(ex, lo);
  if (!ev) return ev.error();
  out.resize(pred.size());
  for (std::size_t k = 0; k < pred.size(); ++k) {
    auto p = ev->predict(rows[pred[k]].prompt, rows[pred[k]].weak_answer, {});
    if (!p) return p.error();
    out[k] = *p;
  }
  return errc::ok;
}

// ---- Models and prompts ------------------------------------------------------------------

tandem::result<tandem::ngram_model> build_model(const std::vector<std::vector<token_id>>& sentences,
                                                std::size_t order,
                                                const tandem::sentencepiece_tokenizer& tok) {
  progress p("building n-gram order %zu", order);
  auto b = tandem::ngram_builder::create(
      tandem::ngram_options{order, tok.vocab_size(), tok.bos_id(), tok.eos_id()});
  if (!b) return b.error();
  TANDEM_TRY(b->add_sentences(sentences));
  auto m = b->build();
  if (m) p.done();
  return m;
}

std::vector<token_id> prompt_ids(const tandem::sentencepiece_tokenizer& tok,
                                 const std::string& text, errc& e) {
  std::vector<token_id> ids{tok.bos_id()};
  e = tok.encode(text, ids);
  return ids;
}

#if defined(TANDEM_DEMO_HAVE_LLAMA)
// Section 1 with two GGUF models: real llama.cpp sessions, no simulated latency.
int speculative_gguf(const settings& s, const corpus_data& c) {
  tandem::llama_quiet_logs();
  progress p("loading GGUF models");
  auto hd = tandem::llama_model_handle::load(s.draft);
  if (!hd) return failure(("cannot load --draft " + s.draft).c_str(), hd.error());
  auto ht = tandem::llama_model_handle::load(s.target);
  if (!ht) return failure(("cannot load --target " + s.target).c_str(), ht.error());
  if (hd->vocab_size() != ht->vocab_size())
    return failure("--draft and --target have different vocabularies", errc::vocab_mismatch);
  tandem::llama_session_options so;
  so.context_size = 512;
  auto target = tandem::llama_session::create(*ht, so);
  if (!target) return failure("cannot create the target session", target.error());
  auto draft = tandem::llama_session::create(*hd, so);
  if (!draft) return failure("cannot create the draft session", draft.error());
  const tandem::llama_tokenizer tok(*ht);
  p.done();
  std::vector<std::vector<token_id>> prompts;
  for (std::size_t i = 0; i < s.prompts && i < c.cases.size(); ++i) {
    std::vector<token_id> ids;
    if (tok.adds_bos() && tok.bos()) ids.push_back(*tok.bos());
    if (const errc e = tok.encode(c.cases[i].text, ids); e != errc::ok)
      return failure("cannot tokenize a prompt", e);
    prompts.push_back(std::move(ids));
  }
  std::vector<token_id> stops;
  if (tok.eos()) stops.push_back(*tok.eos());
  tandem::generation_options o;
  o.max_tokens = s.tokens;
  o.stop_tokens = stops;
  o.record_logprobs = false;
  speculative_report r;
  progress q("speculative decoding with the GGUF pair");
  // No simulated latency: the wrapper only counts the target's forward passes.
  simulated_latency counted(*target, std::chrono::nanoseconds(0));
  const errc e = compare_speculative(counted, *draft, prompts, o, r);
  if (e != errc::ok) return failure("speculative decoding failed", e);
  q.done();
  const std::string td = s.target + " (llama.cpp)", dd = s.draft;
  std::string first_text;
  if (const errc d = tok.decode(r.first, first_text); d != errc::ok)
    return failure("cannot decode the first continuation", d);
  print_speculative(r, td.c_str(), dd.c_str(), prompts.size(), s.tokens, first_text);
  return 0;
}
#endif

// ---- Demo driver: one function per section -------------------------------------------------
// Each returns 0, or the exit status after failure() has reported what went wrong.

// The tokenizer, the corpus, the three n-gram models and the tokenized prompts every
// section shares. Sessions refer to the models: an instance stays where it was made.
struct demo_models {
  std::optional<tandem::sentencepiece_tokenizer> tok;
  corpus_data c;
  std::optional<tandem::ngram_model> order2, order3, order5;
  std::size_t n_prompts = 0;
  std::vector<std::vector<token_id>> prompts;  // the first n_prompts cases, BOS first
};

int load_models(const settings& s, demo_models& m) {
  progress p_tok("loading tokenizer %s", s.tokenizer.c_str());
  auto tok_r = tandem::sentencepiece_tokenizer::load(s.tokenizer);
  if (!tok_r)
    return failure(("cannot load the tokenizer '" + s.tokenizer + "'").c_str(), tok_r.error());
  const tandem::sentencepiece_tokenizer& tok = m.tok.emplace(std::move(*tok_r));
  p_tok.done();
  corpus_data& c = m.c;
  if (const errc e = load_corpus(s, c); e != errc::ok)
    return failure(s.corpus.empty()
                       ? ("cannot read the KJV corpus in '" + s.data + "/kjv' (set --data)").c_str()
                       : ("cannot use --corpus '" + s.corpus + "'").c_str(),
                   e);
  progress p_enc("tokenizing %zu training lines", c.train_lines.size());
  std::vector<std::vector<token_id>> train(c.train_lines.size());
  for (std::size_t i = 0; i < train.size(); ++i)
    if (const errc e = tok.encode(c.train_lines[i], train[i]); e != errc::ok)
      return failure("cannot tokenize the corpus", e);
  p_enc.done();
  auto m2 = build_model(train, 2, tok);
  if (!m2) return failure("cannot build the n-gram models", m2.error());
  auto m3 = build_model(train, 3, tok);
  if (!m3) return failure("cannot build the n-gram models", m3.error());
  auto m5 = build_model(train, 5, tok);
  if (!m5) return failure("cannot build the n-gram models", m5.error());
  m.order2.emplace(std::move(*m2));
  m.order3.emplace(std::move(*m3));
  m.order5.emplace(std::move(*m5));

  m.n_prompts = std::min(s.prompts, c.cases.size());
  m.prompts.resize(m.n_prompts);
  for (std::size_t i = 0; i < m.n_prompts; ++i) {
    errc e = errc::ok;
    m.prompts[i] = prompt_ids(tok, c.cases[i].text, e);
    if (e != errc::ok) return failure("cannot tokenize a prompt", e);
  }
  return 0;
}

void print_header(const demo_models& m) {
  const corpus_data& c = m.c;
  std::printf("tandem demo: small and large models working together\n");
  std::printf(
      "models: n-gram (Kneser-Ney) orders 2, 3, 5 trained on %zu lines of %s;\n"
      "        tokenizer sentencepiece BPE, %zu pieces\n",
      c.train_lines.size(), c.source.c_str(), m.tok->vocab_size());
  std::printf("prompts: the first %zu words of held-out verses, e.g. \"%s\" / \"%s\"\n",
              prompt_words, c.cases[0].text.c_str(),
              c.cases[std::min<std::size_t>(1, c.cases.size() - 1)].text.c_str());
}

// 1. Speculative decoding: the n-gram pair with a simulated target latency, or the GGUF pair
// given by --draft/--target.
int show_speculative(const settings& s, const demo_models& m) {
#if defined(TANDEM_DEMO_HAVE_LLAMA)
  if (!s.draft.empty()) return speculative_gguf(s, m.c);
#endif
  const token_id stops[] = {m.tok->eos_id()};
  tandem::ngram_session target_session(*m.order5), draft_session(*m.order3);
  simulated_latency target(target_session,
                           std::chrono::nanoseconds(static_cast<long long>(s.latency_ms * 1e6)));
  tandem::generation_options o;
  o.max_tokens = s.tokens;
  o.stop_tokens = stops;
  o.record_logprobs = false;
  speculative_report r;
  progress p("speculative decoding, %zu prompts", m.n_prompts);
  const errc e = compare_speculative(target, draft_session, m.prompts, o, r);
  if (e != errc::ok) return failure("speculative decoding failed", e);
  p.done();
  char td[96];
  std::snprintf(td, sizeof td, "n-gram order 5 + simulated %g ms/pass", s.latency_ms);
  std::string first_text;
  if (const errc d = m.tok->decode(r.first, first_text); d != errc::ok)
    return failure("cannot decode the first continuation", d);
  print_speculative(r, td, "n-gram order 3", m.n_prompts, s.tokens, first_text);
  return 0;
}

// 2. Contrastive decoding: long continuations with the verse end masked, so that a decoder
// that loops shows it (a verse ends after about 25 tokens otherwise). A prompt that
// repeats an earlier one is skipped: its continuation would repeat too.
int show_contrastive(const settings& s, const demo_models& m) {
  const tandem::sentencepiece_tokenizer& tok = *m.tok;
  const std::vector<std::vector<token_id>>& prompts = m.prompts;
  const std::size_t cd_tokens = 2 * s.tokens;
  progress p("contrastive decoding, %zu prompts x %zu tokens", m.n_prompts, cd_tokens);
  repetition greedy_rep, cd_rep;
  std::string greedy_text, cd_text;
  tandem::generation_options o;
  o.max_tokens = cd_tokens;
  o.record_logprobs = false;
  tandem::completion out;
  tandem::greedy_sampler greedy;
  for (std::size_t i = 0; i < m.n_prompts; ++i) {
    if (std::find(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(i), prompts[i]) !=
        prompts.begin() + static_cast<std::ptrdiff_t>(i))
      continue;
    tandem::ngram_session greedy_session(*m.order5), cd_session(*m.order5), amateur(*m.order2);
    without_end greedy_expert(greedy_session, tok.eos_id());
    if (const errc e = tandem::generate(greedy_expert, tok, greedy, prompts[i], o, out);
        e != errc::ok)
      return failure("greedy decoding failed", e);
    greedy_rep.add(out.tokens, log_perplexity(*m.order5, prompts[i], out.tokens));
    if (i == 0) greedy_text = out.text;
    without_end cd_expert(cd_session, tok.eos_id());
    auto cd = tandem::make_contrastive(cd_expert, amateur);
    if (!cd) return failure("cannot combine the models", cd.error());
    if (const errc e = tandem::generate(*cd, tok, greedy, prompts[i], o, out); e != errc::ok)
      return failure("contrastive decoding failed", e);
    cd_rep.add(out.tokens, log_perplexity(*m.order5, prompts[i], out.tokens));
    if (i == 0) cd_text = out.text;
  }
  p.done();
  std::printf(
      "\n2. CONTRASTIVE DECODING  expert: n-gram order 5; amateur: order 2 (Li et al. 2022, "
      "alpha 0.1)\n"
      "   greedy, the same %zu distinct prompts, %zu tokens each: the verse end is masked, so "
      "generation goes on\n",
      greedy_rep.generations, cd_tokens);
  std::printf("   %-22s %6s %10s %11s %11s   %s\n", "method", "rep-4", "rep-4 all", "distinct-2",
              "expert ppl", "first prompt's continuation");
  const auto row = [](const char* name, const repetition& r, const std::string& text) {
    std::printf("   %-22s %6.3f %10.3f %11.3f %11.1f   \"%s\"\n", name, r.rep4(), r.rep4_all(),
                r.distinct2(), r.perplexity(), clip(text, 36).c_str());
  };
  row("greedy (expert alone)", greedy_rep, greedy_text);
  row("contrastive", cd_rep, cd_text);
  std::printf(
      "   legend: rep-4 = share of a continuation's token 4-grams repeating an earlier one in "
      "it (lower:\n"
      "   less looping), mean over prompts; rep-4 all = the same over all continuations "
      "together (counts one\n"
      "   loop reached from several prompts); distinct-2 = distinct / all token bigrams; "
      "expert ppl = the\n"
      "   expert's perplexity of the text (lower: more like the corpus)\n");
  return 0;
}

// The next-words task of sections 3 and 5: both models' answers on the held-out verses, a
// seeded train/test split, and the small model's confidence (mean token log-probability,
// Platt-calibrated on the training half).
struct next_words_task {
  std::size_t n_cases = 0;
  std::vector<answer> small, large;
  std::vector<std::size_t> tr, te;  // training and test rows
  std::vector<int> lab_tr, lab_te;  // 1 when the small model is right
  std::optional<tandem::calibrator> cal;

  // The raw scores of estimator `e` for `rows`.
  std::vector<double> raw(const estimator& e, std::span<const std::size_t> rows) const {
    std::vector<double> v;
    for (std::size_t i : rows) v.push_back(confidence_of(e, small[i]));
    return v;
  }
  // Calibrated P(small right) of row i.
  double calibrated(std::size_t i) const {
    auto v = cal->apply(confidence_of(estimators[0], small[i]));
    return v ? *v : 0.0;
  }
};

int answer_next_words(const settings& s, const demo_models& m, next_words_task& t) {
  const corpus_data& c = m.c;
  t.n_cases = std::min(s.cascade_prompts, c.cases.size());
  t.small.resize(t.n_cases);
  t.large.resize(t.n_cases);
  {
    progress p("next-%zu-words task on %zu held-out verses", answer_words, t.n_cases);
    tandem::ngram_session sm(*m.order3), lg(*m.order5);
    tandem::completion out;
    for (std::size_t i = 0; i < t.n_cases; ++i) {
      errc e = errc::ok;
      const std::vector<token_id> ids = prompt_ids(*m.tok, c.cases[i].text, e);
      if (e != errc::ok) return failure("cannot tokenize a prompt", e);
      if ((e = answer_case(sm, *m.tok, ids, c.cases[i], 1.0, out, t.small[i])) != errc::ok ||
          (e = answer_case(lg, *m.tok, ids, c.cases[i], 10.0, out, t.large[i])) != errc::ok)
        return failure("generation failed", e);
      t.small[i].prompt_logprob =
          -log_perplexity(*m.order3, std::span(ids).first(1), std::span(ids).subspan(1));
    }
    p.done();
  }
  auto split = tandem::split_rows(t.n_cases, 0.5, s.seed);
  if (!split) return failure("too few held-out verses for a train/test split", split.error());
  t.tr = std::move(split->first);
  t.te = std::move(split->second);
  for (std::size_t i : t.tr) t.lab_tr.push_back(t.small[i].right ? 1 : 0);
  for (std::size_t i : t.te) t.lab_te.push_back(t.small[i].right ? 1 : 0);
  const estimator& main_est = estimators[0];
  tandem::calibration_options co;
  co.scale = main_est.scale;
  auto cal = tandem::calibrator::fit(tandem::calibration_method::platt, t.raw(main_est, t.tr),
                                     t.lab_tr, co);
  if (!cal)
    return failure("calibrating the small model's confidence failed (too few right answers?)",
                   cal.error());
  t.cal.emplace(std::move(*cal));
  return 0;
}

// Two next-words cascades: one on the white-box confidence (`kjv_fit`, whose rows end up
// holding both), one on a learned deferral score (`kjv_learned`).
int fit_next_words_cascades(const demo_models& m, const next_words_task& t, cascade_fit& kjv_fit,
                            cascade_fit& kjv_learned) {
  progress p("next-words cascade: white-box confidence and learned deferral");
  const std::vector<answer>&small = t.small, &large = t.large;
  std::vector<double> conf_tr, q_tr, c_tr, conf_te, q_te, c_te;
  for (std::size_t i : t.tr) {
    conf_tr.push_back(t.calibrated(i));
    q_tr.insert(q_tr.end(), {small[i].right ? 1.0 : 0.0, large[i].right ? 1.0 : 0.0});
    c_tr.insert(c_tr.end(), {small[i].cost, large[i].cost});
  }
  for (std::size_t i : t.te) {
    conf_te.push_back(t.calibrated(i));
    q_te.insert(q_te.end(), {small[i].right ? 1.0 : 0.0, large[i].right ? 1.0 : 0.0});
    c_te.insert(c_te.end(), {small[i].cost, large[i].cost});
  }
  if (const errc e = fit_cascade(conf_tr, q_tr, c_tr, conf_te, q_te, c_te,
                                 "always small (n-gram 3)", "always large (n-gram 5)", kjv_fit);
      e != errc::ok)
    return failure("fitting the next-words cascade failed", e);
  const auto scorer = [&](std::span<const std::size_t> fit, std::span<const std::size_t> pred,
                          std::vector<double>& out) {
    return deferral_scores(std::span<const prompt_case>(m.c.cases).first(t.n_cases), small, large,
                           fit, pred, out);
  };
  if (const errc e = out_of_fold(t.tr, 3, scorer, conf_tr); e != errc::ok)
    return failure("training the deferral scorer failed", e);
  if (const errc e = scorer(t.tr, t.te, conf_te); e != errc::ok)
    return failure("training the deferral scorer failed", e);
  if (const errc e = fit_cascade(conf_tr, q_tr, c_tr, conf_te, q_te, c_te, "", "", kjv_learned);
      e != errc::ok)
    return failure("fitting the next-words cascade failed", e);
  kjv_fit.rows[2].name = "cascade, white-box conf";
  kjv_fit.rows.push_back(kjv_learned.rows[2]);
  kjv_fit.rows[3].name = "cascade, learned deferral";
  p.done();
  return 0;
}

// The GSM8K replay: a learned scorer of the weak model's recorded answers decides which
// questions go to the strong model.
struct gsm8k_replay {
  cascade_fit fit;
  std::size_t n_test = 0, n_contaminated = 0;
};

int replay_gsm8k(const settings& s, gsm8k_replay& g) {
  progress p("GSM8K replay: learned scorer on the weak model's answers");
  std::vector<gsm8k_row> rows;
  const std::string path = s.data + "/routellm/gsm8k/gsm8k_responses.csv";
  if (const errc e = load_gsm8k(path, rows); e != errc::ok)
    return failure(("cannot read '" + path + "'").c_str(), e);
  std::unordered_set<std::string> contaminated;
  const std::string cpath = s.data + "/routellm/gsm8k/contaminated_prompts.jsonl";
  if (const errc e = load_contaminated(cpath, contaminated); e != errc::ok)
    return failure(("cannot read '" + cpath + "'").c_str(), e);
  const std::size_t n_rows = rows.size();
  std::erase_if(rows, [&](const gsm8k_row& r) { return contaminated.count(r.prompt) > 0; });
  g.n_contaminated = n_rows - rows.size();
  auto sp = tandem::split_rows(rows.size(), 0.7, s.seed);
  if (!sp) return failure("GSM8K split failed", sp.error());
  const std::vector<std::size_t>& gtr = sp->first;
  const std::vector<std::size_t>& gte = sp->second;
  g.n_test = gte.size();
  // Out-of-fold scores on the training split choose the threshold; a scorer fitted on
  // the whole training split scores the test split.
  const auto scorer = [&](std::span<const std::size_t> fit, std::span<const std::size_t> pred,
                          std::vector<double>& out) {
    return learned_scores(rows, fit, pred, out);
  };
  std::vector<double> oof, test_scores;
  if (const errc e = out_of_fold(gtr, 3, scorer, oof); e != errc::ok)
    return failure("training the GSM8K scorer failed", e);
  if (const errc e = scorer(gtr, gte, test_scores); e != errc::ok)
    return failure("training the GSM8K scorer failed", e);
  std::vector<double> q_tr, c_tr, q_te, c_te;
  for (std::size_t i : gtr) {
    q_tr.insert(q_tr.end(), {rows[i].weak, rows[i].strong});
    c_tr.insert(c_tr.end(), {1.0, 20.0});
  }
  for (std::size_t i : gte) {
    q_te.insert(q_te.end(), {rows[i].weak, rows[i].strong});
    c_te.insert(c_te.end(), {1.0, 20.0});
  }
  if (const errc e = fit_cascade(oof, q_tr, c_tr, test_scores, q_te, c_te, "always weak (Mixtral)",
                                 "always strong (GPT-4)", g.fit);
      e != errc::ok)
    return failure("fitting the GSM8K cascade failed", e);
  p.done();
  g.fit.rows[2].name = "cascade, learned scorer";
  return 0;
}

// 3. Cascade: a) the next-words cascades, b) the GSM8K replay.
int show_cascade(const settings& s, const demo_models& m, const next_words_task& t,
                 cascade_fit& kjv_fit) {
  cascade_fit kjv_learned;
  if (const int rc = fit_next_words_cascades(m, t, kjv_fit, kjv_learned); rc != 0) return rc;
  gsm8k_replay gsm;
  if (const int rc = replay_gsm8k(s, gsm); rc != 0) return rc;
  std::printf(
      "\n3. CASCADE  the small model answers first; the large one is asked when the answer's "
      "confidence is below\n"
      "   a threshold (budget search on a training split: mean cost <= half the large model's)\n");
  std::printf("   %-30s %8s %10s %11s %6s\n", "policy", "quality", "mean cost", "escalated",
              "APGR");
  std::printf(
      "   a) next %zu words of %zu held-out verses (test half); cost 1 (small) or 10 (large) per "
      "token\n",
      answer_words, t.te.size());
  print_cascade_rows(kjv_fit.rows);
  std::printf(
      "   b) GSM8K replay, %zu test questions (recorded outcomes, %zu contaminated left out); "
      "cost 1 (weak) or 20 (strong)\n",
      gsm.n_test, gsm.n_contaminated);
  print_cascade_rows(gsm.fit.rows);
  std::printf(
      "   confidence: a) white-box = Platt-calibrated mean token log-prob (threshold %.3f); "
      "learned deferral =\n"
      "   learned evaluator on the prompt, the small answer and its white-box numbers, trained on "
      "the training half\n"
      "   to predict \"small wrong, large right\" (threshold %.3f); b) learned evaluator on "
      "question and weak\n"
      "   answer (threshold %.3f)\n",
      kjv_fit.threshold, kjv_learned.threshold, gsm.fit.threshold);
  if (s.quick)
    std::printf("   note: --quick leaves too few test verses in a) for its APGRs to mean much\n");
  else
    std::printf(
        "   note: in a) the small model's own confidence says where it is wrong (AUROC in 5.), "
        "hardly where the\n"
        "   large one is right: it recovers about what random mixing would; learning deferral from "
        "outcomes helps\n");
  std::printf(
      "   legend: quality = share right (a: all %zu words exact, b: recorded); cost = mean per "
      "query, an escalated\n"
      "   query pays both; APGR = share of the small-to-large quality gap recovered over all "
      "thresholds (random 0.5)\n",
      answer_words);
  return 0;
}

// The bundled MMLU outcome tables (the first --quick subjects only) as one table, the
// contaminated prompts left out.
int load_mmlu(const settings& s, tandem::outcome_table& table, std::size_t& n_files,
              std::size_t& n_contaminated) {
  std::vector<std::string> files;
  std::error_code ec;
  const std::filesystem::path dir = s.data + "/routellm/mmlu";
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".csv") files.push_back(it->path().string());
  if (ec || files.empty())
    return failure(("cannot list '" + dir.string() + "'").c_str(), errc::file_not_found);
  std::sort(files.begin(), files.end());
  if (s.mmlu_files > 0 && files.size() > s.mmlu_files) files.resize(s.mmlu_files);
  table.models = {weak_model, strong_model};
  tandem::outcome_csv_options oo;
  oo.models = table.models;
  oo.fixed_costs = {1.0, 20.0};
  tandem::outcome_load_stats st;
  for (const std::string& f : files) {
    tandem::error_info le;
    auto csv = tandem::read_csv_file(f, {}, &le);
    if (!csv)
      return failure(("cannot read '" + f + "': " + std::string(le.context())).c_str(),
                     csv.error());
    if (const errc e = tandem::append_outcome_csv(table, *csv, oo, st, &le); e != errc::ok)
      return failure(("bad outcome table '" + f + "': " + std::string(le.context())).c_str(), e);
  }
  std::unordered_set<std::string> contaminated;
  const std::string cpath = dir.string() + "/contaminated_prompts.jsonl";
  if (const errc e = load_contaminated(cpath, contaminated); e != errc::ok)
    return failure(("cannot read '" + cpath + "'").c_str(), e);
  n_contaminated = tandem::remove_prompts(table, contaminated);
  n_files = files.size();
  return 0;
}

// 4. Router: TF-IDF + logistic regression trained on recorded MMLU outcomes, replayed on
// the held-out queries.
int show_router(const settings& s) {
  progress p("router: TF-IDF + logistic on MMLU outcomes");
  tandem::outcome_table table;
  std::size_t n_files = 0, n_contaminated = 0;
  if (const int rc = load_mmlu(s, table, n_files, n_contaminated); rc != 0) return rc;
  auto sp = tandem::split_rows(table.size(), 0.7, s.seed);
  if (!sp) return failure("MMLU split failed", sp.error());
  const tandem::outcome_table train_t = tandem::subset(table, sp->first);
  const tandem::outcome_table test_t = tandem::subset(table, sp->second);
  tandem::router_options ro;
  ro.predictor = tandem::router_predictor::logistic;
  ro.seed = s.seed;
  // One L2 strength and two folds instead of the library's 5 x 4 cross-validation grid:
  // the demo must finish in seconds (tools/tandem-route runs the full search).
  ro.l2_grid = {1e-3};
  ro.folds = 2;
  ro.ngrams.dims_log2 = s.quick ? 15 : 16;  // smaller than the default 2^18: fast
  tandem::router router;
  if (const errc e = router.fit(train_t.prompts, train_t.quality, train_t.models, ro);
      e != errc::ok)
    return failure("fitting the router failed", e);
  const auto wins = [&](const tandem::outcome_table& t, std::vector<double>& w) {
    w.resize(t.size());
    double pq[2];
    for (std::size_t i = 0; i < t.size(); ++i) {
      TANDEM_TRY(router.predict(t.prompts[i], pq));
      w[i] = pq[1] - pq[0];
    }
    return errc::ok;
  };
  std::vector<double> w_tr, w_te;
  if (const errc e = wins(train_t, w_tr); e != errc::ok) return failure("routing failed", e);
  if (const errc e = wins(test_t, w_te); e != errc::ok) return failure("routing failed", e);
  std::vector<double> qw, qs, cw, cs;
  for (std::size_t i = 0; i < test_t.size(); ++i) {
    qw.push_back(test_t.q(i, 0));
    qs.push_back(test_t.q(i, 1));
    cw.push_back(test_t.c(i, 0));
    cs.push_back(test_t.c(i, 1));
  }
  auto curve = tandem::two_model_curve(w_te, qw, qs, cw, cs);
  if (!curve) return failure("replaying the router failed", curve.error());
  auto summary = tandem::two_model_summary(*curve);
  if (!summary) return failure("replaying the router failed", summary.error());
  // Operating point for the examples: half of the training queries go to the strong model.
  auto policy = tandem::calibrate_win_threshold(w_tr, 0.5);
  if (!policy) return failure("choosing the router threshold failed", policy.error());
  p.done();

  // The operating point on the held-out queries, and where its strong calls land.
  std::size_t n_strong = 0, pays_strong = 0, pays_weak = 0;
  double q_routed = 0.0, c_routed = 0.0;
  for (std::size_t i = 0; i < test_t.size(); ++i) {
    const bool strong = policy->route_strong(w_te[i]);
    const bool pays = test_t.q(i, 0) < 0.5 && test_t.q(i, 1) >= 0.5;
    n_strong += strong ? 1 : 0;
    (strong ? pays_strong : pays_weak) += pays ? 1 : 0;
    q_routed += test_t.q(i, strong ? 1 : 0);
    c_routed += test_t.c(i, strong ? 1 : 0);
  }
  const std::size_t n_weak = test_t.size() - n_strong;
  const auto share = [](std::size_t k, std::size_t n) {
    return n ? 100.0 * static_cast<double>(k) / static_cast<double>(n) : 0.0;
  };
  const double n_test = static_cast<double>(test_t.size());

  std::printf(
      "\n4. ROUTER  picks one model per query before either runs: TF-IDF word/char n-grams + "
      "logistic regression\n"
      "   per model, trained on %zu MMLU queries (%zu subjects, %zu contaminated left out, "
      "seeded 70/30 split);\n"
      "   costs 1 (Mixtral-8x7B) and 20 (GPT-4) per query; below, only the %zu held-out "
      "queries\n",
      train_t.size(), n_files, n_contaminated, test_t.size());
  std::printf(
      "   always weak %.3f, always strong %.3f; router APGR %.3f (random 0.5), CPT50 %.1f%% "
      "strong calls\n",
      summary->weak_quality, summary->strong_quality, summary->apgr, 100.0 * summary->cpt50);
  std::printf(
      "   threshold sending half the training queries to GPT-4: %.0f%% strong, quality %.3f, "
      "mean cost %.2f\n",
      share(n_strong, test_t.size()), q_routed / n_test, c_routed / n_test);
  std::printf(
      "   strong pays (weak wrong, strong right) on %.0f%% of the queries routed strong, %.0f%% "
      "of those routed weak\n",
      share(pays_strong, n_strong), share(pays_weak, n_weak));
  std::printf("   %-46s %7s %9s  %-7s %s\n", "held-out query (first words)", "P(weak)", "P(strong)",
              "choice", "recorded");
  const std::size_t n_show = std::min<std::size_t>(6, test_t.size());
  for (std::size_t k = 0; k < n_show; ++k) {
    const std::size_t i = k * (test_t.size() / n_show);
    double pq[2] = {0, 0};
    if (const errc e = router.predict(test_t.prompts[i], pq); e != errc::ok)
      return failure("routing failed", e);
    const auto ok = [](double q) { return q >= 0.5 ? "ok" : "x"; };
    std::printf("   %-46s %7.2f %9.2f  %-7s weak %-2s / strong %s\n",
                ("\"" + clip(test_t.prompts[i], 42) + "\"").c_str(), pq[0], pq[1],
                policy->route_strong(w_te[i]) ? "strong" : "weak", ok(test_t.q(i, 0)),
                ok(test_t.q(i, 1)));
  }
  std::printf(
      "   legend: P = predicted chance the model answers right; recorded = RouteLLM's outcome "
      "of each model\n"
      "   (ok right, x wrong); APGR = share of the weak-to-strong quality gap recovered over "
      "all thresholds;\n"
      "   CPT50 = strong calls needed for half the gap\n");
  return 0;
}

// 5. Confidence: the white-box estimators of the small model's answers in 3a, and the shown
// prompts' answers with the white-box cascade's decision.
void show_confidence(const demo_models& m, const next_words_task& t, const cascade_fit& kjv_fit) {
  const std::vector<std::size_t>&tr = t.tr, &te = t.te;
  const std::vector<int>&lab_tr = t.lab_tr, &lab_te = t.lab_te;
  const std::vector<answer>&small = t.small, &large = t.large;
  const corpus_data& c = m.c;
  std::printf(
      "\n5. CONFIDENCE  white-box estimators of the small model's answers in 3a (%zu test "
      "verses, %.0f%% right);\n"
      "   calibrated on the training half (Platt)\n",
      te.size(),
      100.0 * static_cast<double>(std::accumulate(lab_te.begin(), lab_te.end(), 0)) /
          static_cast<double>(te.size()));
  std::printf("   %-22s %7s %11s\n", "estimator", "AUROC", "ECE (10)");
  for (const estimator& e : estimators) {
    const std::vector<double> s_tr = t.raw(e, tr), s_te = t.raw(e, te);
    auto auc = tandem::auroc(s_te, lab_te);
    tandem::calibration_options eo;
    eo.scale = e.scale;
    auto ce = tandem::calibrator::fit(tandem::calibration_method::platt, s_tr, lab_tr, eo);
    std::optional<double> ece;
    if (ce) {
      std::vector<double> p(s_te.size());
      if (ce->apply(s_te, p) == errc::ok)
        if (auto v = tandem::expected_calibration_error(p, lab_te, 10)) ece = *v;
    }
    std::printf("   %-22s %7s %11s\n", e.name,
                auc ? std::to_string(*auc).substr(0, 5).c_str() : "-",
                ece ? std::to_string(*ece).substr(0, 5).c_str() : "-");
  }
  std::printf(
      "   the shown prompts' answers in 3a (conf = calibrated P(small right); the white-box "
      "cascade accepts\n"
      "   at conf >= %.3f, else asks the large model):\n",
      kjv_fit.threshold);
  std::printf("   %-28s %-20s %5s %-9s %-20s %s\n", "prompt", "small model says", "conf", "cascade",
              "large model says", "verse says");
  const auto mark = [](const answer& a) {
    return "\"" + clip(a.words, 14) + "\"" + (a.right ? " ok" : " x");
  };
  for (std::size_t i = 0; i < m.n_prompts && i < t.n_cases; ++i) {
    const double conf = t.calibrated(i);
    const std::string truth = join_words(std::span(c.cases[i].rest).first(answer_words));
    std::printf("   %-28s %-20s %5.2f %-9s %-20s %s\n",
                ("\"" + clip(c.cases[i].text, 26) + "\"").c_str(), mark(small[i]).c_str(), conf,
                conf >= kjv_fit.threshold ? "accept" : "escalate", mark(large[i]).c_str(),
                ("\"" + clip(truth, 14) + "\"").c_str());
  }
  std::printf(
      "   legend: AUROC = chance a right answer scores above a wrong one (0.5 = no signal); "
      "ECE = expected\n"
      "   calibration error over 10 equal-width bins (lower is better); ok/x = answer "
      "right/wrong\n");
}

int run(const settings& s) {
  const auto t_start = clock_type::now();
  demo_models m;
  if (const int rc = load_models(s, m); rc != 0) return rc;
  print_header(m);
  if (const int rc = show_speculative(s, m); rc != 0) return rc;
  if (const int rc = show_contrastive(s, m); rc != 0) return rc;
  next_words_task t;
  if (const int rc = answer_next_words(s, m, t); rc != 0) return rc;
  cascade_fit kjv_fit;
  if (const int rc = show_cascade(s, m, t, kjv_fit); rc != 0) return rc;
  if (const int rc = show_router(s); rc != 0) return rc;
  show_confidence(m, t, kjv_fit);
  std::printf("\ndone in %.1f s\n", seconds_since(t_start));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (const int rc = parse_args(argc, argv, s); rc >= 0) return rc;
  return run(s);
}
