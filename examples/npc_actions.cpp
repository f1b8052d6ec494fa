// npc_actions: NPCs take turns; each turn produces one JSON action under a JSON Schema.
//
// The schema (an enum of actions, a line to say, a nested target object with an enum and a
// string pattern) is compiled once with compile_json_schema against the model's vocabulary;
// each turn generate() writes one action under a constraint_state, which masks the logits
// before every token, so the output is always an instance of the schema. The program parses
// every action with nlohmann-json and checks it against the schema by hand: an invalid action
// exits non-zero. By default the model is a byte-level n-gram model trained on the bundled
// KJV corpus (runs without GGUF files); --model FILE.gguf uses a llama.cpp model instead
// (when built with llama.cpp). Heap allocations are counted per turn (generation only, not
// the parse) with tests/common/counting_new.cpp: once warm, a turn on the n-gram model
// allocates at most generate()'s one masked-logits buffer per call, and nothing per token
// (llama.cpp allocates inside its own decode calls, so --model does not check this).
//
// usage: npc_actions [--turns N] [--seed N] [--data DIR] [--model FILE.gguf]

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/counting_new.hpp"
#include "tandem/backends/ngram_text.hpp"
#include "tandem/constrain.hpp"
#include "tandem/constrain/json_schema.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#ifdef TANDEM_EXAMPLE_WITH_LLAMA_CPP
#include "tandem/backends/llama_cpp_chat.hpp"
#include "tandem/backends/llama_cpp_text.hpp"
#endif

namespace {

constexpr const char* schema = R"({
  "type": "object",
  "properties": {
    "action": {"enum": ["greet", "trade", "pray", "flee", "attack"]},
    "say":    {"type": "string", "maxLength": 40},
    "target": {
      "type": "object",
      "properties": {
        "kind": {"enum": ["npc", "player", "place"]},
        "name": {"type": "string", "pattern": "^[A-Z][a-z]{2,9}$"}
      },
      "required": ["kind", "name"]
    }
  },
  "required": ["action", "say", "target"]
})";

constexpr std::string_view npcs[] = {"Aaron", "Miriam", "Joshua", "Deborah"};

struct settings {
  int turns = 12;
  unsigned long long seed = 7;
  std::string data = TANDEM_EXAMPLE_DATA_DIR;
  std::string model;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "npc_actions: %s\nusage: npc_actions [--turns N] [--seed N] [--data DIR] "
               "[--model FILE.gguf]\n",
               why);
  return 2;
}

// The hand-written schema check: every required member, the enums, the pattern, the length.
bool valid_action(const nlohmann::json& j) {
  auto in = [](const nlohmann::json& v, std::initializer_list<const char*> names) {
    if (!v.is_string()) return false;
    for (const char* n : names)
      if (v.get<std::string>() == n) return true;
    return false;
  };
  if (!j.is_object() || j.size() != 3 || !j.contains("action") || !j.contains("say") ||
      !j.contains("target"))
    return false;
  if (!in(j["action"], {"greet", "trade", "pray", "flee", "attack"})) return false;
  if (!j["say"].is_string()) return false;
  const std::string say = j["say"].get<std::string>();
  std::size_t code_points = 0;
  for (const char c : say) code_points += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (code_points > 40) return false;
  const nlohmann::json& t = j["target"];
  if (!t.is_object() || t.size() != 2 || !t.contains("kind") || !t.contains("name")) return false;
  if (!in(t["kind"], {"npc", "player", "place"}) || !t["name"].is_string()) return false;
  const std::string name = t["name"].get<std::string>();
  if (name.size() < 3 || name.size() > 10 || name[0] < 'A' || name[0] > 'Z') return false;
  for (std::size_t i = 1; i < name.size(); ++i)
    if (name[i] < 'a' || name[i] > 'z') return false;
  return true;
}

std::string shorten(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

// Plays the turns on `model` (a TextModel: session() and tokenizer()). Returns the exit code.
template <class Model>
int play(Model& model, std::span<const tandem::token_id> end_tokens, const settings& s,
         bool check_allocations) {
  auto& session = model.session();
  const auto& tok = model.tokenizer();
  tandem::error_info info;
  auto vocab = tandem::token_vocabulary::from_tokenizer(tok, end_tokens, &info);
  if (!vocab) return std::fprintf(stderr, "vocabulary: %s\n", info.text), 1;
  auto compiled = tandem::compile_json_schema(schema, *vocab, {}, &info);
  if (!compiled) return std::fprintf(stderr, "schema: %s\n", info.text), 1;
  tandem::constraint_state state(*compiled);

  // Prompts, encoded once: "<name> said unto the people, ".
  std::vector<std::vector<tandem::token_id>> prompts;
  for (const std::string_view n : npcs) {
    std::string text(n);
    text += " said unto the people, ";
    if (tok.encode(text, prompts.emplace_back()) != tandem::errc::ok) return 1;
  }

  tandem::categorical_sampler sampler(0.9f, s.seed);
  tandem::generation_options opts;
  opts.max_tokens = 256;
  opts.stop_tokens = end_tokens;
  opts.constraint = state;
  tandem::completion out;
  out.tokens.reserve(opts.max_tokens);
  out.text.reserve(4 * opts.max_tokens);

  std::printf("%-4s %-8s %-7s %-28s %-7s %-10s %6s %6s %6s\n", "turn", "npc", "action", "say",
              "kind", "name", "tokens", "forced", "allocs");
  std::size_t warm_allocations = 0, warm_token_allocations = 0, total_tokens = 0, total_forced = 0;
  int invalid = 0;
  for (int turn = 0; turn < s.turns; ++turn) {
    const std::size_t who = static_cast<std::size_t>(turn) % std::size(npcs);
    tandem_test::allocation_scope scope;
    if (session.size() != 0 && session.rewind(session.size()) != tandem::errc::ok) return 1;
    state.reset();
    sampler.reseed(s.seed + static_cast<unsigned long long>(turn));
    // Allocations from the first token event to the last: the per-token cost (generate()
    // allocates its one masked-logits buffer per call, before the first token).
    std::size_t at_first = 0, at_last = 0;
    bool first = true;
    auto on_token = [&](const tandem::token_event&) {
      at_last = tandem_test::allocation_count();
      if (first) at_first = at_last, first = false;
    };
    const tandem::errc e =
        tandem::generate(session, tok, sampler, prompts[who], opts, out, on_token);
    const std::size_t allocations = scope.allocations();
    if (turn >= 1) {  // turn 0 warms up
      warm_allocations += allocations;
      warm_token_allocations += at_last - at_first;
    }
    if (e != tandem::errc::ok) {
      std::fprintf(stderr, "turn %d: generation failed: %s\n", turn,
                   std::string(tandem::to_string(e)).c_str());
      return 1;
    }
    total_tokens += out.tokens.size();
    total_forced += out.forced_tokens;
    const nlohmann::json j = nlohmann::json::parse(out.text, nullptr, false);
    const bool ok = !j.is_discarded() && valid_action(j) && state.can_end();
    if (!ok) {
      ++invalid;
      std::printf("%-4d %-8.*s INVALID: %s\n", turn, static_cast<int>(npcs[who].size()),
                  npcs[who].data(), out.text.c_str());
      continue;
    }
    std::printf("%-4d %-8.*s %-7s %-28s %-7s %-10s %6zu %6zu %6zu\n", turn,
                static_cast<int>(npcs[who].size()), npcs[who].data(),
                j["action"].get<std::string>().c_str(),
                shorten(j["say"].get<std::string>(), 28).c_str(),
                j["target"]["kind"].get<std::string>().c_str(),
                j["target"]["name"].get<std::string>().c_str(), out.tokens.size(),
                out.forced_tokens, allocations);
  }
  std::printf("last action: %s\n", out.text.c_str());
  std::printf("turns: %d, valid actions: %d, invalid: %d\n", s.turns, s.turns - invalid, invalid);
  std::printf("tokens: %zu, forced by the schema: %zu\n", total_tokens, total_forced);
  const std::size_t warm_turns = static_cast<std::size_t>(s.turns - 1);
  std::printf("allocations once warm: %.1f per turn, %zu between tokens%s\n",
              warm_turns > 0 ? static_cast<double>(warm_allocations) / warm_turns : 0.0,
              warm_token_allocations,
              check_allocations ? " (per turn: generate()'s masked-logits buffer)"
                                : " (llama.cpp allocates inside its decode calls: not checked)");
  if (invalid != 0) return 1;
  return !check_allocations || (warm_token_allocations == 0 && warm_allocations <= warm_turns) ? 0
                                                                                               : 1;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage("unknown flag or missing value");
    const char* v = argv[++i];
    if (a == "--turns")
      s.turns = std::atoi(v);
    else if (a == "--seed")
      s.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--data")
      s.data = v;
    else if (a == "--model")
      s.model = v;
    else
      return usage("unknown flag");
  }
  if (s.turns < 1) return usage("--turns must be at least 1");
  tandem::error_info info;
  if (!s.model.empty()) {
#ifdef TANDEM_EXAMPLE_WITH_LLAMA_CPP
    auto m = tandem::open_llama(s.model, {}, &info);
    if (!m) return std::fprintf(stderr, "%s: %s\n", s.model.c_str(), info.text), 1;
    const std::vector<tandem::token_id> ends = tandem::llama_end_of_generation_tokens(m->model());
    return play(*m, ends, s, false);
#else
    return usage("--model needs a build with llama.cpp");
#endif
  }
  auto m = tandem::open_ngram_text_file(s.data + "/kjv/train.txt", {}, &info);
  if (!m) return std::fprintf(stderr, "n-gram model: %s\n", info.text), 1;
  std::printf("model: byte-level 6-gram on %s/kjv/train.txt\n", s.data.c_str());
  return play(*m, {}, s, true);
}
