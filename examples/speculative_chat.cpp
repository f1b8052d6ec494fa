// speculative_chat: streams a speculative decoder's tokens to stdout as they are
// verified, then prints what the decoder measured.
//
// By default both models are tandem's built-in Kneser-Ney n-gram models over a word
// vocabulary, trained at startup on the bundled KJV corpus: a 2-gram drafter and a 4-gram
// target. Built with tandem::llama_cpp, --target and --draft load a GGUF pair instead
// (with the target's own tokenizer). Greedy decoding (the default) checks each answer
// against target-only decoding: speculative decoding must give the same tokens.
//
//   speculative_chat [PROMPT...]            answer the prompts (a few built-in ones if none)
//   speculative_chat -                      answer each line read from stdin
//   options: --max-tokens N  --temperature X  --seed N  --data DIR
//            --target FILE.gguf --draft FILE.gguf  (tandem::llama_cpp builds only)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/drafter.hpp"
#if TANDEM_EXAMPLE_WITH_LLAMA_CPP
#include "tandem/backends/llama_cpp.hpp"
#endif

using tandem::errc;
using tandem::token_id;

namespace {

// Splits on spaces; ids 0 = <s>, 1 = </s>, 2 = <unk>, then the training words. encode()
// opens with <s>, as the n-gram model was trained. Like every Tokenizer, it appends.
class word_tokenizer {
 public:
  static constexpr token_id bos = 0, eos = 1, unk = 2;

  word_tokenizer() : words_{"<s>", "</s>", "<unk>"} {}

  token_id add(std::string_view w) {
    auto [it, fresh] = ids_.try_emplace(std::string(w), static_cast<token_id>(words_.size()));
    if (fresh) words_.emplace_back(w);
    return it->second;
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return words_.size(); }
  [[nodiscard]] errc encode(std::string_view text, std::vector<token_id>& ids) const {
    ids.push_back(bos);
    for_each_word(text, [&](std::string_view w) {
      const auto it = ids_.find(std::string(w));
      ids.push_back(it == ids_.end() ? unk : it->second);
    });
    return errc::ok;
  }
  [[nodiscard]] errc decode(std::span<const token_id> ids, std::string& out) const {
    for (token_id id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= words_.size()) return errc::invalid_token;
    for (token_id id : ids)
      if (id > unk) (out += ' ') += words_[static_cast<std::size_t>(id)];
    return errc::ok;
  }
  [[nodiscard]] errc piece(token_id id, std::string& out) const {
    if (id < 0 || static_cast<std::size_t>(id) >= words_.size()) return errc::invalid_token;
    if (id > unk) (out += ' ') += words_[static_cast<std::size_t>(id)];
    return errc::ok;
  }
  template <class F>
  static void for_each_word(std::string_view text, F&& f) {
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ') ++j;
      if (j > i) f(text.substr(i, j - i));
      i = j;
    }
  }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, token_id> ids_;
};

struct args {
  std::vector<std::string> prompts;
  bool from_stdin = false;
  std::size_t max_tokens = 40;
  float temperature = 0.0f;
  std::uint64_t seed = 1;
  std::string data = TANDEM_EXAMPLE_DATA_DIR, target, draft;
};

int usage(const char* why) {
  std::fprintf(stderr, "speculative_chat: %s\n", why);
  std::fprintf(
      stderr,
      "usage: speculative_chat [--max-tokens N] [--temperature X] [--seed N] [--data DIR]\n"
      "                        [--target FILE.gguf --draft FILE.gguf] [- | PROMPT...]\n");
  return 2;
}

int fail(const char* what, errc e) {
  std::printf("\nspeculative_chat: %s: %s\n", what, tandem::to_string(e).data());
  return 1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Answers every prompt with speculative decoding, streaming the text, then prints the
// decoder's statistics. Works for any target/draft model pair and tokenizer.
template <class Target, class DraftModel, class Tok>
int chat(Target& target, DraftModel& draft_model, const Tok& tok,
         std::span<const token_id> stop_tokens, const args& a) {
  tandem::sampling_options sp;
  sp.temperature = a.temperature;
  sp.seed = a.seed;
  auto sampler = tandem::make_sampler(sp, target.vocab_size());
  sp.seed = a.seed + 1000;
  auto draft_sampler = tandem::make_sampler(sp, target.vocab_size());
  if (!sampler || !draft_sampler) return usage("bad sampling settings");

  tandem::model_drafter drafter(draft_model, std::move(*draft_sampler));
  tandem::speculative_decoder decoder(target, drafter);  // adaptive draft length
  decoder.reserve(1024);  // size the buffers now, not during the first answer
  drafter.reserve(1024);
  tandem::generation_options opts;
  opts.max_tokens = a.max_tokens;
  opts.stop_tokens = stop_tokens;
  const bool greedy = a.temperature == 0.0f;

  std::vector<token_id> prompt;
  tandem::completion out, reference;
  double spec_seconds = 0.0, target_only_seconds = 0.0;
  std::size_t spec_tokens = 0, answered = 0, identical = 0;
  const auto stream = [](const tandem::token_event& ev) {
    std::fwrite(ev.piece.data(), 1, ev.piece.size(), stdout);
    std::fflush(stdout);  // show each verified token as it comes
  };

  std::string line;
  std::size_t next = 0;
  const auto next_prompt = [&]() -> bool {
    if (a.from_stdin) return static_cast<bool>(std::getline(std::cin, line));
    if (next == a.prompts.size()) return false;
    line = a.prompts[next++];
    return true;
  };
  while (next_prompt()) {
    if (line.empty()) continue;
    prompt.clear();
    if (errc e = tok.encode(line, prompt); e != errc::ok) {
      std::printf("encode error: %s\n", tandem::to_string(e).data());
      continue;
    }
    // Each prompt starts a fresh conversation: empty the target's context.
    if (errc e = target.rewind(target.size()); e != errc::ok) return fail("rewind", e);

    const tandem::speculative_stats before = decoder.stats();
    std::printf("> %s\n", line.c_str());
    std::fflush(stdout);
    if (errc e = decoder.generate(tok, *sampler, prompt, opts, out, stream); e != errc::ok) {
      std::printf("\n  error: %s\n", tandem::to_string(e).data());
      continue;
    }
    const tandem::speculative_stats& st = decoder.stats();
    const std::size_t drafted = st.drafted - before.drafted;
    const std::size_t accepted = st.accepted - before.accepted;
    std::printf("\n  [%zu tokens in %.1f ms, finish=%s, %zu rounds, accepted %zu/%zu drafted",
                out.tokens.size(), out.seconds * 1e3, tandem::to_string(out.finish).data(),
                st.rounds - before.rounds, accepted, drafted);
    spec_seconds += out.seconds;
    spec_tokens += out.tokens.size();
    ++answered;

    if (greedy) {  // the guarantee: the same tokens as the target alone
      if (errc e = target.rewind(target.size()); e != errc::ok) return fail("rewind", e);
      sampler->reset();
      if (errc e = tandem::generate(target, tok, *sampler, prompt, opts, reference); e != errc::ok)
        return fail("target-only generate", e);
      target_only_seconds += reference.seconds;
      const bool same = reference.tokens == out.tokens;
      identical += same ? 1 : 0;
      std::printf(", target-only %.1f ms, same tokens: %s", reference.seconds * 1e3,
                  same ? "yes" : "NO");
    }
    std::printf("]\n\n");
    sampler->reset();
  }

  const tandem::speculative_stats& st = decoder.stats();
  std::printf("statistics over %zu prompts\n", answered);
  std::printf("  tokens generated      %zu (%.0f tokens/s)\n", spec_tokens,
              spec_seconds > 0 ? static_cast<double>(spec_tokens) / spec_seconds : 0.0);
  std::printf("  acceptance rate       %.3f (%zu of %zu drafted tokens)\n", st.acceptance_rate(),
              st.accepted, st.drafted);
  std::printf("  mean accepted length  %.2f tokens per drafting round\n",
              st.mean_accepted_length());
  std::printf("  tokens per round      %.2f\n", st.tokens_per_round());
  std::printf("  acceptance by position");
  for (std::size_t i = 0; i < tandem::max_draft_length && st.drafted_at[i] > 0; ++i)
    std::printf(" %zu:%.2f", i + 1, st.acceptance_at(i));
  std::printf("\n  target calls          %zu (%.1f ms)\n", st.target_calls,
              st.target_seconds * 1e3);
  std::printf("  draft calls           %zu (%.1f ms)\n", st.draft_calls, st.draft_seconds * 1e3);
  if (greedy)
    std::printf(
        "  same as target-only   %zu of %zu prompts (target-only %.1f ms, speculative "
        "%.1f ms)\n",
        identical, answered, target_only_seconds * 1e3, spec_seconds * 1e3);
  return greedy && identical != answered ? 1 : 0;
}

// The default pair: n-gram models of two orders over one word vocabulary.
int chat_with_ngrams(const args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  word_tokenizer tok;
  std::vector<std::vector<token_id>> verses;
  {
    std::ifstream in(a.data + "/kjv/train.txt");
    if (!in) return usage("cannot read <data>/kjv/train.txt (set --data)");
    std::string l;
    while (std::getline(in, l)) {
      auto& v = verses.emplace_back();
      word_tokenizer::for_each_word(l, [&](std::string_view w) { v.push_back(tok.add(w)); });
    }
  }
  const auto train = [&](std::size_t order) -> tandem::result<tandem::ngram_model> {
    auto b = tandem::ngram_builder::create(
        tandem::ngram_options{order, tok.vocab_size(), word_tokenizer::bos, word_tokenizer::eos});
    if (!b) return b.error();
    TANDEM_TRY(b->add_sentences(verses));
    return b->build();
  };
  auto small = train(2), large = train(4);
  if (!small || !large) return usage("training failed");
  tandem::ngram_session draft(*small), target(*large);
  std::printf("draft: 2-gram, target: 4-gram; %zu KJV verses, %zu words, trained in %.2f s\n\n",
              verses.size(), tok.vocab_size(), seconds_since(t0));
  const token_id stops[] = {word_tokenizer::eos};
  return chat(target, draft, tok, stops, a);
}

#if TANDEM_EXAMPLE_WITH_LLAMA_CPP
// A GGUF pair sharing one vocabulary, through llama.cpp.
int chat_with_llama(const args& a) {
  tandem::llama_quiet_logs();
  auto tm = tandem::llama_model_handle::load(a.target);
  auto dm = tandem::llama_model_handle::load(a.draft);
  if (!tm || !dm) return usage("cannot load the --target or --draft GGUF file");
  tandem::llama_session_options so;
  so.context_size = 0;  // the context the models were trained with
  auto target = tandem::llama_session::create(*tm, so);
  auto draft = tandem::llama_session::create(*dm, so);
  if (!target || !draft) return usage("cannot create the llama.cpp contexts");
  const tandem::llama_tokenizer tok(*tm, {/*add_special=*/true});
  std::vector<token_id> stops;
  if (auto e = tok.eos()) stops.push_back(*e);
  if (auto e = tok.eot(); e && (stops.empty() || *e != stops[0])) stops.push_back(*e);
  std::printf("draft: %s, target: %s\n\n", a.draft.c_str(), a.target.c_str());
  return chat(*target, *draft, tok, stops, a);
}
#endif

bool parse(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "-") {
      a.from_stdin = true;
      continue;
    }
    if (flag.substr(0, 2) != "--") {
      a.prompts.emplace_back(flag);
      continue;
    }
    if (i + 1 >= argc) return usage("every flag takes a value");
    const char* v = argv[++i];
    double x = 0.0;
    if (flag == "--data")
      a.data = v;
    else if (flag == "--target")
      a.target = v;
    else if (flag == "--draft")
      a.draft = v;
    else if (!parse(v, x))
      return usage("a numeric flag has a non-numeric value");
    else if (flag == "--max-tokens" && x >= 1)
      a.max_tokens = static_cast<std::size_t>(x);
    else if (flag == "--temperature" && x >= 0)
      a.temperature = static_cast<float>(x);
    else if (flag == "--seed" && x >= 0)
      a.seed = static_cast<std::uint64_t>(x);
    else
      return usage("unknown flag or bad value");
  }
  if (a.prompts.empty() && !a.from_stdin)
    a.prompts = {"In the beginning God", "And the LORD said unto Moses,", "Blessed are the",
                 "For God so loved the"};
  if (a.target.empty() != a.draft.empty()) return usage("--target and --draft go together");
  if (!a.target.empty()) {
#if TANDEM_EXAMPLE_WITH_LLAMA_CPP
    return chat_with_llama(a);
#else
    return usage("--target/--draft need a build with tandem::llama_cpp");
#endif
  }
  return chat_with_ngrams(a);
}
