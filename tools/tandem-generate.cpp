// tandem-generate: text from a model on the command line, with an optional draft model
// (speculative decoding, output unchanged) and an optional output constraint (a choice
// among strings, a regular expression in tandem's dialect, or a JSON Schema).
//
//   tandem-generate --model M [--draft D] (--prompt TEXT | --chat FILE.json)
//                   [--schema FILE.json | --regex RE | --choices a,b,c]
//                   [--max-tokens N] [--seed N] [--temperature T] [--threads N] [--json]
//                   [--verbose]
//
// M and D are GGUF files (llama.cpp), or `ngram:CORPUS` / `ngramN:CORPUS`: a byte-level
// n-gram model of order N (default 6) trained on the text file CORPUS (the built-in
// backend; no chat template). Draft and target must share a vocabulary. The text goes to
// stdout; with --json, one JSON object holding the text and the decoding statistics
// instead. Exit status: 0 success, 1 a failure (message on stderr, with its named error;
// an output cut short before its constraint's language ends is one), 2 a usage error.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/chat_messages.hpp"
#include "tandem/backends/llama_cpp_chat.hpp"
#include "tandem/backends/llama_cpp_text.hpp"
#include "tandem/backends/ngram_text.hpp"
#include "tandem/constrain.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/drafter.hpp"

namespace {

using json = nlohmann::ordered_json;

constexpr const char* help_text =
    "usage: tandem-generate --model M [--draft D] (--prompt TEXT | --chat FILE.json)\n"
    "         [--schema FILE.json | --regex RE | --choices a,b,c]\n"
    "         [--max-tokens N] [--seed N] [--temperature T] [--threads N] [--json] [--verbose]\n"
    "\n"
    "  --model M        a GGUF file, or ngram:CORPUS / ngramN:CORPUS (a byte-level n-gram\n"
    "                   model of order N [6] trained on the text file CORPUS)\n"
    "  --draft D        a draft model of the same vocabulary: speculative decoding (the\n"
    "                   output is the target's, drafts only make it faster)\n"
    "  --prompt TEXT    the prompt\n"
    "  --chat FILE      a JSON list of {\"role\": ..., \"content\": ...} messages, rendered\n"
    "                   with the GGUF's chat template (an assistant turn is opened)\n"
    "  --schema FILE    the output is a JSON instance of this JSON Schema (tandem's subset)\n"
    "  --regex RE       the output matches RE as a whole (tandem's regex dialect)\n"
    "  --choices LIST   the output is one of these comma-separated strings\n"
    "  --max-tokens N   token budget [256]\n"
    "  --temperature T  0 is greedy [0]\n"
    "  --seed N         sampling seed [0]\n"
    "  --threads N      llama.cpp threads [llama.cpp's default]\n"
    "  --verbose        keep llama.cpp's log output (errors only by default)\n"
    "  --json           print one JSON object: text, tokens, finish, statistics\n";

[[noreturn]] void die(int status, const std::string& msg) {
  std::fprintf(stderr, "tandem-generate: error: %s\n", msg.c_str());
  std::exit(status);
}
[[noreturn]] void usage_error(const std::string& msg) {
  die(2, msg + " (see tandem-generate --help)");
}
std::string describe(tandem::errc e, const tandem::error_info& info) {
  if (info) {
    char text[tandem::error_info::capacity + 64];
    tandem::format_error(info, text, sizeof text);
    return text;
  }
  return std::string(tandem::to_string(e));
}
[[noreturn]] void fail(tandem::errc e, const tandem::error_info& info, const std::string& what) {
  die(1, what + ": " + describe(e, info));
}

struct args {
  std::string model, draft, prompt, chat, schema, regex, choices;
  bool has_prompt = false, has_chat = false, json_out = false, verbose = false;
  bool has_schema = false, has_regex = false, has_choices = false;  // given, even if empty
  [[nodiscard]] bool constrained() const { return has_schema || has_regex || has_choices; }
  std::size_t max_tokens = 256;
  float temperature = 0.0f;
  std::uint64_t seed = 0;
  std::int32_t threads = 0;
};

std::uint64_t parse_uint(const std::string& flag, const std::string& v,
                         std::uint64_t max = UINT64_MAX) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE || n > max)
    usage_error(flag + " expects a whole number up to " + std::to_string(max) + ", got '" + v +
                "'");
  return n;
}

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(help_text, stdout);
      std::exit(0);
    }
    if (flag == "--json" || flag == "--verbose") {
      (flag == "--json" ? a.json_out : a.verbose) = true;
      continue;
    }
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    const std::string v = argv[++i];
    if (flag == "--model")
      a.model = v;
    else if (flag == "--draft")
      a.draft = v;
    else if (flag == "--prompt")
      a.prompt = v, a.has_prompt = true;
    else if (flag == "--chat")
      a.chat = v, a.has_chat = true;
    else if (flag == "--schema")
      a.schema = v, a.has_schema = true;
    else if (flag == "--regex")
      a.regex = v, a.has_regex = true;
    else if (flag == "--choices")
      a.choices = v, a.has_choices = true;
    else if (flag == "--max-tokens")
      a.max_tokens = parse_uint(flag, v);
    else if (flag == "--seed")
      a.seed = parse_uint(flag, v);
    else if (flag == "--threads")
      a.threads = static_cast<std::int32_t>(parse_uint(flag, v, 1024));
    else if (flag == "--temperature") {
      char* end = nullptr;
      const double t = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(t >= 0.0))
        usage_error("--temperature expects a number >= 0");
      a.temperature = static_cast<float>(t);
    } else {
      usage_error("unknown option " + flag);
    }
  }
  if (a.model.empty()) usage_error("--model is required");
  if (a.has_prompt == a.has_chat) usage_error("give exactly one of --prompt and --chat");
  if (a.has_schema + a.has_regex + a.has_choices > 1)
    usage_error("give at most one of --schema, --regex and --choices");
  if (a.has_schema && a.schema.empty()) usage_error("--schema needs a file");
  if (a.max_tokens == 0) usage_error("--max-tokens must be at least 1");
  return a;
}

// Whether `spec` names a built-in n-gram model ("ngram:CORPUS" or "ngramN:CORPUS").
bool is_ngram(const std::string& spec) {
  if (spec.rfind("ngram", 0) != 0) return false;
  const std::size_t colon = spec.find(':');
  if (colon == std::string::npos) return false;
  for (std::size_t i = 5; i < colon; ++i)
    if (spec[i] < '0' || spec[i] > '9') return false;
  return true;
}

// A compiled output constraint and its state, or none.
struct constraint_holder {
  std::optional<tandem::compiled_constraint> compiled;
  std::optional<tandem::constraint_state> state;
};

template <class Tok>
constraint_holder make_constraint(const args& a, const Tok& tok,
                                  std::span<const tandem::token_id> end_tokens) {
  constraint_holder h;
  if (!a.constrained()) return h;
  tandem::error_info info;
  auto vocab = tandem::token_vocabulary::from_tokenizer(tok, end_tokens, &info);
  if (!vocab) fail(vocab.error(), info, "the model's vocabulary");
  tandem::result<tandem::compiled_constraint> c = tandem::errc::invalid_argument;
  if (a.has_schema) {
    auto text = tandem::detail::read_text_file(a.schema, &info);
    if (!text) fail(text.error(), info, "--schema " + a.schema);
    c = tandem::compile_json_schema(*text, *vocab, {}, &info);
    if (!c) fail(c.error(), info, "--schema " + a.schema);
  } else if (a.has_regex) {
    c = tandem::compile_regex(a.regex, *vocab, {}, &info);
    if (!c) fail(c.error(), info, "--regex");
  } else {
    std::vector<std::string> choices;
    std::size_t start = 0;
    for (;;) {
      const std::size_t p = a.choices.find(',', start);
      choices.push_back(
          a.choices.substr(start, p == std::string::npos ? std::string::npos : p - start));
      if (p == std::string::npos) break;
      start = p + 1;
    }
    c = tandem::compile_choice(choices, *vocab, {}, &info);
    if (!c) fail(c.error(), info, "--choices");
  }
  h.compiled.emplace(std::move(*c));
  // History for the whole budget when it is modest; beyond that it grows as needed.
  h.state.emplace(*h.compiled, std::min<std::size_t>(a.max_tokens, std::size_t{1} << 16));
  return h;
}

// Generates with `target` (and `draft` when not null) and prints the result.
template <class Target, class Draft>
int run(const args& a, Target& target, Draft* draft, std::span<const tandem::token_id> prompt,
        std::span<const tandem::token_id> end_tokens) {
  const auto& tok = target.tokenizer();
  auto& ts = target.session();
  constraint_holder con = make_constraint(a, tok, end_tokens);

  tandem::sampling_options so;
  so.temperature = a.temperature;
  so.seed = a.seed;
  auto sampler = tandem::make_sampler(so, static_cast<std::size_t>(ts.vocab_size()));
  if (!sampler) die(1, "--temperature: " + std::string(tandem::to_string(sampler.error())));

  tandem::generation_options opts;
  opts.max_tokens = a.max_tokens;
  opts.stop_tokens = end_tokens;
  if (con.state) opts.constraint = *con.state;

  tandem::completion out;
  json stats = json::object();
  tandem::errc e = tandem::errc::ok;
  if (draft == nullptr) {
    e = tandem::generate(ts, tok, *sampler, prompt, opts, out);
  } else {
    auto& ds = draft->session();
    if (ds.vocab_size() != ts.vocab_size())
      die(1, "vocab_mismatch: draft vocabulary " + std::to_string(ds.vocab_size()) +
                 ", target vocabulary " + std::to_string(ts.vocab_size()));
    using draft_session = std::remove_reference_t<decltype(ds)>;
    tandem::model_drafter<draft_session, tandem::greedy_sampler> drafter(ds,
                                                                         tandem::greedy_sampler{});
    tandem::speculative_decoder<std::remove_reference_t<decltype(ts)>, decltype(drafter)> dec(
        ts, drafter);
    e = dec.generate(tok, *sampler, prompt, opts, out);
    if (e != tandem::errc::ok && out.tokens.empty()) fail(e, dec.last_error(), "generation");
    const auto& s = dec.stats();
    stats["rounds"] = s.rounds;
    stats["target_calls"] = s.target_calls;
    stats["draft_calls"] = s.draft_calls;
    stats["drafted"] = s.drafted;
    stats["accepted"] = s.accepted;
    stats["acceptance"] = s.acceptance_rate();
    stats["forced_drafts"] = s.forced_drafts;
  }
  if (e != tandem::errc::ok && out.tokens.empty())
    die(1, "generation: " + std::string(tandem::to_string(e)));

  if (a.json_out) {
    json j;
    j["text"] = out.text;
    j["tokens"] = out.tokens.size();
    j["prompt_tokens"] = out.prompt_tokens;
    j["finish"] = std::string(tandem::to_string(out.finish));
    if (out.error != tandem::errc::ok) j["error"] = std::string(tandem::to_string(out.error));
    j["forced_tokens"] = out.forced_tokens;
    j["constraint"] = a.has_schema    ? "schema"
                      : a.has_regex   ? "regex"
                      : a.has_choices ? "choices"
                                      : "none";
    if (con.state) j["constraint_satisfied"] = con.state->can_end();
    j["speculative"] = draft != nullptr;
    j["stats"] = stats;
    j["seconds"] = out.seconds;
    std::puts(j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::fwrite(out.text.data(), 1, out.text.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);  // the text first, then any error after it
  if (out.error != tandem::errc::ok) {
    std::fprintf(stderr, "tandem-generate: error: generation stopped after %zu tokens: %s\n",
                 out.tokens.size(), std::string(tandem::to_string(out.error)).c_str());
    return 1;
  }
  if (con.state && !con.state->can_end()) {
    // Cut short (the token budget, a stop token): the text is not in the language.
    std::fprintf(stderr,
                 "tandem-generate: error: the output ended (%s) before the constraint allows "
                 "it to: raise --max-tokens\n",
                 std::string(tandem::to_string(out.finish)).c_str());
    return 1;
  }
  return 0;
}

tandem::ngram_text_model open_ngram(const std::string& spec) {
  const std::size_t colon = spec.find(':');
  tandem::ngram_text_options o;
  if (colon > 5) o.order = static_cast<std::size_t>(std::strtoull(spec.c_str() + 5, nullptr, 10));
  tandem::error_info info;
  auto m = tandem::open_ngram_text_file(std::string_view(spec).substr(colon + 1), o, &info);
  if (!m) fail(m.error(), info, spec);
  return std::move(*m);
}

tandem::llama_text_model open_gguf(const std::string& path, const args& a) {
  tandem::llama_text_options o;
  o.session.threads = a.threads;
  tandem::error_info info;
  auto m = tandem::open_llama(path, o, &info);
  if (!m) fail(m.error(), info, path);
  return std::move(*m);
}

// The prompt tokens of a GGUF model: the encoded --prompt, or --chat rendered with the
// model's template.
std::vector<tandem::token_id> gguf_prompt(const args& a, tandem::llama_text_model& m) {
  std::vector<tandem::token_id> ids;
  tandem::error_info info;
  if (a.has_chat) {
    auto messages = tandem_tools::read_chat_messages_file(a.chat, &info);
    if (!messages) fail(messages.error(), info, "--chat " + a.chat);
    auto tmpl = tandem::llama_chat_template::from_model(m.model(), &info);
    if (!tmpl) fail(tmpl.error(), info, a.model + ": chat template");
    if (const tandem::errc e = tmpl->render(*messages, true, ids); e != tandem::errc::ok)
      die(1, "--chat: rendering the template: " + std::string(tandem::to_string(e)));
  } else if (const tandem::errc e = m.tokenizer().encode(a.prompt, ids); e != tandem::errc::ok) {
    die(1, "--prompt: " + std::string(tandem::to_string(e)));
  }
  if (ids.empty()) die(1, "empty_input: the prompt encodes to no tokens");
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  const args a = parse(argc, argv);
  if (!a.verbose) tandem::llama_quiet_logs();
  if (is_ngram(a.model)) {
    if (a.has_chat) usage_error("--chat needs a GGUF model with a chat template (ngram: has none)");
    auto target = open_ngram(a.model);
    std::vector<tandem::token_id> ids;
    (void)target.tokenizer().encode(a.prompt, ids);
    if (ids.empty()) die(1, "empty_input: the prompt is empty");
    if (a.draft.empty())
      return run(a, target, static_cast<tandem::ngram_text_model*>(nullptr), ids, {});
    if (!is_ngram(a.draft)) die(1, "vocab_mismatch: an ngram: target needs an ngram: draft");
    auto draft = open_ngram(a.draft);
    return run(a, target, &draft, ids, {});
  }
  auto target = open_gguf(a.model, a);
  const std::vector<tandem::token_id> ids = gguf_prompt(a, target);
  const std::vector<tandem::token_id> ends = tandem::llama_end_of_generation_tokens(target.model());
  if (a.draft.empty())
    return run(a, target, static_cast<tandem::llama_text_model*>(nullptr), ids, ends);
  if (is_ngram(a.draft))
    die(1, "vocab_mismatch: a GGUF target needs a GGUF draft of its vocabulary");
  auto draft = open_gguf(a.draft, a);
  return run(a, target, &draft, ids, ends);
}
