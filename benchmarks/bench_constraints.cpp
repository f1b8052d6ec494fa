// bench_constraints: output constraints (issue 17). Prints one JSON object per case on
// stdout ("bench":"bench_constraints") and a table on stderr.
//
// Cases:
// - "mask", per vocabulary (4,000: the GGUF draft's; 32,000: synthetic, the draft's pieces
//   plus distinct concatenations of two of them; 151,936: the Qwen3 fixture GGUF, with
//   --qwen-gguf): one JSON Schema with nested objects, enums and string patterns, compiled
//   with compile_json_schema ("compile_s"); the median time of one mask() over the states
//   reached by random walks through valid outputs ("mask_us"); its ratio to one plain pass
//   over the logits (a copy of vocab floats, same run: "ratio_to_floor"); and, where the
//   vocabulary is a GGUF model's, llama.cpp's grammar sampler on the same schema written as
//   GBNF, masking the same states ("llamacpp_mask_us", "over_llamacpp" = llama.cpp / ours).
// - "speculative": JSON output of the close pair (--models DIR: DIR/draft.gguf and
//   DIR/target-close.gguf), constrained speculative decoding against constrained
//   target-only decoding, greedy: tokens/s ratio "spec_over_target", forced drafts,
//   acceptance, and whether both outputs are identical (they must be).
//
// usage: bench_constraints [--models DIR] [--qwen-gguf FILE] [--walks N] [--seed N]
//                          [--threads N] [--quick]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/backends/llama_cpp_chat.hpp"
#include "tandem/backends/llama_cpp_text.hpp"
#include "tandem/backends/llama_grammar.hpp"
#include "tandem/constrain.hpp"
#include "tandem/constrain/json_schema.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/drafter.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// The schema: nested objects, enums, string patterns; every member required (schema order).
constexpr const char* schema = R"({
  "type": "object",
  "properties": {
    "action": {"enum": ["greet", "trade", "pray", "flee", "attack"]},
    "say":    {"type": "string", "pattern": "^[A-Za-z ,.!?']{1,40}$"},
    "target": {
      "type": "object",
      "properties": {
        "kind": {"enum": ["npc", "player", "place"]},
        "name": {"type": "string", "pattern": "^[A-Z][a-z]{1,11}$"}
      },
      "required": ["kind", "name"]
    },
    "mood":   {"enum": ["calm", "angry", "afraid"]}
  },
  "required": ["action", "say", "target", "mood"]
})";

// The same language as GBNF (compact JSON, members in schema order).
constexpr const char* gbnf =
    R"(root ::= "{\"action\":" action ",\"say\":\"" say "\",\"target\":{\"kind\":" kind ",\"name\":\"" name "\"},\"mood\":" mood "}"
action ::= "\"greet\"" | "\"trade\"" | "\"pray\"" | "\"flee\"" | "\"attack\""
say ::= [A-Za-z ,.!?']{1,40}
kind ::= "\"npc\"" | "\"player\"" | "\"place\""
name ::= [A-Z] [a-z]{1,11}
mood ::= "\"calm\"" | "\"angry\"" | "\"afraid\""
)";

struct settings {
  std::string models;
  std::string qwen;
  std::size_t walks = 40, llama_states = 300, spec_tokens = 160, prompts = 3;
  std::uint64_t seed = 1;
  int threads = 2;
  bool quick = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_constraints: %s\nusage: bench_constraints [--models DIR] [--qwen-gguf FILE] "
               "[--walks N] [--seed N] [--threads N] [--quick]\n",
               why);
  std::exit(2);
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// A state of a random walk through valid outputs: the tokens from the start.
using walk_state = std::vector<tandem::token_id>;

// Random walks through the constraint's language: at each state, a uniformly random allowed
// token (end tokens only when nothing else is allowed). Returns every state visited.
std::vector<walk_state> random_walks(const tandem::compiled_constraint& c, std::size_t walks,
                                     std::uint64_t seed) {
  std::vector<walk_state> states;
  tandem::constraint_state st(c);
  std::mt19937_64 rng(seed);
  std::vector<float> logits(c.vocab_size());
  std::vector<tandem::token_id> allowed;
  for (std::size_t w = 0; w < walks; ++w) {
    st.reset();
    walk_state path;
    for (std::size_t step = 0; step < 512 && !st.is_complete(); ++step) {
      states.push_back(path);
      std::fill(logits.begin(), logits.end(), 0.0f);
      if (st.mask(logits) != tandem::errc::ok) break;
      allowed.clear();
      for (std::size_t t = 0; t < logits.size(); ++t)
        if (std::isfinite(logits[t])) allowed.push_back(static_cast<tandem::token_id>(t));
      if (allowed.empty()) break;
      const tandem::token_id t = allowed[rng() % allowed.size()];
      if (st.advance(t) != tandem::errc::ok) break;
      path.push_back(t);
    }
  }
  return states;
}

struct mask_figures {
  double mask_us = 0, floor_us = 0, llama_us = std::nan("");
  std::size_t states = 0, llama_states = 0;
};

// Median mask() time of `c` over `states` and of one copy of the logits (the floor).
template <class C>
double time_masks(C& con, const std::vector<walk_state>& states, std::size_t vocab,
                  std::size_t limit, std::size_t& measured) {
  std::vector<float> source(vocab), logits(vocab);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (float& x : source) x = normal(rng);
  std::vector<double> us;
  const std::size_t step =
      std::max<std::size_t>(1, states.size() / std::max<std::size_t>(1, limit));
  for (std::size_t i = 0; i < states.size(); i += step) {
    con.reset();
    bool ok = true;
    for (const tandem::token_id t : states[i])
      if (con.advance(t) != tandem::errc::ok) {
        ok = false;
        break;
      }
    if (!ok) continue;  // a token the other implementation's vocabulary rules reject
    std::memcpy(logits.data(), source.data(), vocab * sizeof(float));
    const auto t0 = clock_type::now();
    const tandem::errc e = con.mask(logits);
    const double dt = seconds_since(t0) * 1e6;
    if (e != tandem::errc::ok) continue;
    us.push_back(dt);
  }
  measured = us.size();
  return median(us);
}

double time_floor(std::size_t vocab, std::size_t reps) {
  std::vector<float> source(vocab, 1.0f), dst(vocab);
  std::vector<double> us;
  float sink = 0;
  for (std::size_t r = 0; r < reps; ++r) {
    source[r % vocab] = static_cast<float>(r);
    const auto t0 = clock_type::now();
    std::memcpy(dst.data(), source.data(), vocab * sizeof(float));
    sink += dst[(r * 31) % vocab];
    us.push_back(seconds_since(t0) * 1e6);
  }
  if (sink == -1.0f) std::fputc(' ', stderr);  // keeps the copies
  return median(us);
}

// One "mask" case: prints its JSON line and its table row.
void mask_case(const char* name, const char* source, const tandem::token_vocabulary& vocab,
               const ::llama_vocab* llama_vocab, const settings& s) {
  tandem::error_info info;
  const auto t0 = clock_type::now();
  auto compiled = tandem::compile_json_schema(schema, vocab, {}, &info);
  const double compile_s = seconds_since(t0);
  if (!compiled) {
    std::printf(
        "{\"bench\":\"bench_constraints\",\"case\":\"mask\",\"vocab\":%zu,\"skipped\":\"%s\"}\n",
        vocab.size(), std::string(tandem::to_string(compiled.error())).c_str());
    std::fprintf(stderr, "%s: compile failed: %s\n", name, info.text);
    return;
  }
  const std::vector<walk_state> states = random_walks(*compiled, s.walks, s.seed);
  tandem::constraint_state ours(*compiled);
  mask_figures f;
  f.mask_us = time_masks(ours, states, vocab.size(), states.size(), f.states);
  f.floor_us = time_floor(vocab.size(), std::max<std::size_t>(f.states, 100));
  if (llama_vocab != nullptr) {
    auto g = tandem::llama_grammar_constraint::create(llama_vocab, gbnf, "root", &info);
    if (g)
      f.llama_us = time_masks(*g, states, vocab.size(), s.llama_states, f.llama_states);
    else
      std::fprintf(stderr, "%s: llama.cpp grammar: %s\n", name, info.text);
  }
  const double ratio = f.mask_us / f.floor_us;
  const double over = f.llama_us / f.mask_us;
  std::printf(
      "{\"bench\":\"bench_constraints\",\"case\":\"mask\",\"vocab\":%zu,\"vocab_source\":\"%s\","
      "\"states\":%zu,\"mask_us\":%.3f,\"floor_us\":%.3f,\"ratio_to_floor\":%.3f,"
      "\"compile_s\":%.4f,\"automaton_states\":%zu",
      vocab.size(), source, f.states, f.mask_us, f.floor_us, ratio, compile_s,
      compiled->state_count());
  if (std::isfinite(over))
    std::printf(",\"llamacpp_states\":%zu,\"llamacpp_mask_us\":%.3f,\"over_llamacpp\":%.2f}\n",
                f.llama_states, f.llama_us, over);
  else
    std::printf(",\"over_llamacpp\":null}\n");
  std::fflush(stdout);
  char llama_cols[40] = "          -          -";
  if (std::isfinite(over))
    std::snprintf(llama_cols, sizeof llama_cols, "%11.2f %9.1fx", f.llama_us, over);
  std::fprintf(stderr, "%-8zu %-9s %7zu %9.2f %9.2f %7.2f %9.3f %s\n", vocab.size(), name, f.states,
               f.mask_us, f.floor_us, ratio, compile_s, llama_cols);
}

tandem::result<tandem::token_vocabulary> gguf_vocabulary(const tandem::llama_model_handle& m,
                                                         tandem::error_info* info) {
  tandem::llama_tokenizer tok(m);
  return tandem::token_vocabulary::from_tokenizer(tok, tandem::llama_end_of_generation_tokens(m),
                                                  info);
}

// 32,000 tokens: the 4k vocabulary's pieces, then distinct concatenations of two of them.
tandem::result<tandem::token_vocabulary> synthetic_vocabulary(const tandem::llama_model_handle& m,
                                                              std::size_t n,
                                                              tandem::error_info* info) {
  tandem::llama_tokenizer tok(m);
  const std::size_t base = static_cast<std::size_t>(tok.vocab_size());
  std::vector<std::string> bytes(base);
  std::unordered_set<std::string> seen;
  std::vector<std::size_t> words;  // tokens with bytes
  for (std::size_t t = 0; t < base; ++t) {
    if (tok.token_bytes(static_cast<tandem::token_id>(t), bytes[t]) != tandem::errc::ok)
      bytes[t].clear();
    if (!bytes[t].empty() && seen.insert(bytes[t]).second) words.push_back(t);
  }
  if (words.empty()) return tandem::errc::empty_input;
  std::mt19937_64 rng(11);
  while (bytes.size() < n) {
    std::string s = bytes[words[rng() % words.size()]] + bytes[words[rng() % words.size()]];
    if (seen.insert(s).second) bytes.push_back(std::move(s));
  }
  auto ends = tandem::llama_end_of_generation_tokens(m);
  return tandem::token_vocabulary::from_bytes(std::move(bytes), std::move(ends), info);
}

std::optional<tandem::llama_model_handle> load_model(const std::string& path) {
  tandem::error_info info;
  auto m = tandem::llama_model_handle::load(path, {}, &info);
  if (!m) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), info.text);
    return std::nullopt;
  }
  return std::move(*m);
}

void speculative_case(const settings& s) {
  const std::string target_path = s.models + "/target-close.gguf";
  const std::string draft_path = s.models + "/draft.gguf";
  tandem::llama_text_options o;
  o.session.threads = s.threads;
  tandem::error_info info;
  auto target = tandem::open_llama(target_path, o, &info);
  if (!target) return (void)std::fprintf(stderr, "%s: %s\n", target_path.c_str(), info.text);
  auto draft = tandem::open_llama(draft_path, o, &info);
  if (!draft) return (void)std::fprintf(stderr, "%s: %s\n", draft_path.c_str(), info.text);
  const auto ends = tandem::llama_end_of_generation_tokens(target->model());
  auto vocab = tandem::token_vocabulary::from_tokenizer(target->tokenizer(), ends, &info);
  if (!vocab) return (void)std::fprintf(stderr, "vocabulary: %s\n", info.text);
  auto compiled = tandem::compile_json_schema(schema, *vocab, {}, &info);
  if (!compiled) return (void)std::fprintf(stderr, "schema: %s\n", info.text);
  tandem::constraint_state state(*compiled);

  static constexpr std::string_view prompts[] = {
      "And Moses said unto the people, ", "The word of the LORD came unto Jonah, saying, ",
      "Then answered the king and said, ", "In the beginning God created "};
  auto& ts = target->session();
  auto& ds = draft->session();
  tandem::model_drafter<tandem::llama_session, tandem::greedy_sampler> drafter(
      ds, tandem::greedy_sampler{});
  tandem::speculative_decoder<tandem::llama_session, decltype(drafter)> dec(ts, drafter);
  tandem::generation_options opts;
  opts.max_tokens = s.spec_tokens;
  opts.stop_tokens = ends;
  opts.constraint = state;
  std::size_t tokens_t = 0, tokens_s = 0, forced = 0, same = 0, n = 0;
  double sec_t = 0, sec_s = 0;
  tandem::completion out_t, out_s;
  // Warm-up (untimed): llama.cpp's first decodes of a context are much slower.
  for (auto* sess : {&ts, &ds}) {
    std::vector<tandem::token_id> ids;
    if (target->tokenizer().encode(prompts[0], ids) != tandem::errc::ok) return;
    tandem::greedy_sampler g;
    tandem::generation_options w;
    w.max_tokens = 8;
    if (sess->size() != 0) (void)sess->rewind(sess->size());
    (void)tandem::generate(*sess, g, ids, w, out_t);
    (void)sess->rewind(sess->size());
  }
  for (std::size_t i = 0; i < std::min(s.prompts, std::size(prompts)); ++i, ++n) {
    std::vector<tandem::token_id> ids;
    if (target->tokenizer().encode(prompts[i], ids) != tandem::errc::ok) return;
    tandem::greedy_sampler g;
    if (ts.size() != 0) (void)ts.rewind(ts.size());
    state.reset();
    auto t0 = clock_type::now();
    tandem::errc e = tandem::generate(ts, target->tokenizer(), g, ids, opts, out_t);
    sec_t += seconds_since(t0);
    if (e != tandem::errc::ok)
      return (void)std::fprintf(stderr, "target-only: %s\n",
                                std::string(tandem::to_string(e)).c_str());
    if (ts.size() != 0) (void)ts.rewind(ts.size());
    if (ds.size() != 0) (void)ds.rewind(ds.size());
    state.reset();
    t0 = clock_type::now();
    e = dec.generate(target->tokenizer(), g, ids, opts, out_s);
    sec_s += seconds_since(t0);
    if (e != tandem::errc::ok)
      return (void)std::fprintf(stderr, "speculative (prompt %zu): %s: %s\n", i,
                                std::string(tandem::to_string(e)).c_str(), dec.last_error().text);
    tokens_t += out_t.tokens.size();
    tokens_s += out_s.tokens.size();
    forced += out_s.forced_tokens;
    same += out_t.tokens == out_s.tokens;
  }
  const auto& st = dec.stats();
  const double tps_t = static_cast<double>(tokens_t) / sec_t;
  const double tps_s = static_cast<double>(tokens_s) / sec_s;
  std::printf(
      "{\"bench\":\"bench_constraints\",\"case\":\"speculative\",\"pair\":\"close\","
      "\"vocab\":%zu,\"prompts\":%zu,\"tokens\":%zu,\"target_tps\":%.2f,\"spec_tps\":%.2f,"
      "\"spec_over_target\":%.3f,\"forced_tokens\":%zu,\"forced_drafts\":%zu,"
      "\"drafted\":%zu,\"accepted\":%zu,\"acceptance\":%.4f,\"identical\":%s}\n",
      vocab->size(), n, tokens_s, tps_t, tps_s, tps_s / tps_t, forced, st.forced_drafts, st.drafted,
      st.accepted, st.acceptance_rate(), same == n ? "true" : "false");
  std::fflush(stdout);
  std::fprintf(stderr,
               "\nspeculative JSON (close pair, greedy): target-only %.1f tok/s, speculative %.1f "
               "tok/s, x%.2f; forced tokens %zu, forced drafts %zu, acceptance %.3f, identical "
               "%zu of %zu\nlast output: %s\n",
               tps_t, tps_s, tps_s / tps_t, forced, st.forced_drafts, st.acceptance_rate(), same, n,
               out_s.text.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (const char* home = std::getenv("HOME"))
    s.models = std::string(home) + "/.cache/tandem/models/85611aafe6d9b417";
  bool walks_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quick") {
      s.quick = true;
      continue;
    }
    if (i + 1 >= argc) usage("unknown flag or missing value");
    const char* v = argv[++i];
    if (a == "--models")
      s.models = v;
    else if (a == "--qwen-gguf")
      s.qwen = v;
    else if (a == "--walks")
      s.walks = std::strtoull(v, nullptr, 10), walks_given = true;
    else if (a == "--seed")
      s.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--threads")
      s.threads = std::atoi(v);
    else
      usage("unknown flag");
  }
  if (s.quick) {
    if (!walks_given) s.walks = 4;
    s.llama_states = 30;
    s.spec_tokens = 48;
    s.prompts = 1;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);

  std::fprintf(stderr, "%-8s %-9s %7s %9s %9s %7s %9s %11s %10s\n", "vocab", "source", "states",
               "mask_us", "floor_us", "ratio", "compile_s", "llama_us", "over_llama");
  tandem::error_info info;
  if (auto draft = load_model(s.models + "/draft.gguf")) {
    if (auto v = gguf_vocabulary(*draft, &info))
      mask_case("gguf", "the GGUF draft's vocabulary (--models DIR/draft.gguf)", *v, draft->vocab(),
                s);
    if (auto v = synthetic_vocabulary(*draft, 32000, &info))
      mask_case("synthetic", "synthetic: the draft's pieces plus distinct concatenations of two",
                *v, nullptr, s);
  }
  if (!s.qwen.empty()) {
    if (auto qwen = load_model(s.qwen)) {
      if (auto v = gguf_vocabulary(*qwen, &info))
        mask_case("qwen3", "the Qwen3 fixture GGUF (--qwen-gguf)", *v, qwen->vocab(), s);
    }
  } else {
    std::fprintf(
        stderr,
        "(vocab 151,936 skipped: give --qwen-gguf FILE, made by tools/make-qwen-gguf.sh)\n");
  }
  speculative_case(s);
  return 0;
}
