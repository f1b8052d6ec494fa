// npc_dialogue: a game-style loop in which a non-player character speaks a few tokens per
// frame, never holding up the frame, without exceptions, RTTI or heap allocation once
// warm.
//
// Every frame (16 ms) the NPC may generate at most --tokens-per-frame tokens and must stop
// at a deadline --npc-budget-us into the frame, whichever comes first; the next frame
// resumes where it stopped. A line is first spoken by a small local model (a 2-gram
// model trained on a quarter of the bundled KJV corpus); when its confidence (mean token
// log-probability) is below the cascade's threshold, the cascade escalates and a larger
// model (a 4-gram model over the whole corpus) speaks the line instead. The player skips
// the last line on a given frame: the per-token callback cancels the generation.
//
// The program is built with -fno-exceptions -fno-rtti, and counts every operator new
// after warm-up: the dialogue must not allocate.
//
//   npc_dialogue [--tokens-per-frame N] [--npc-budget-us N] [--threshold X]
//                [--cancel-frame N] [--no-sleep] [--data DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tandem/backends/ngram_model.hpp"
#include "tandem/cascade/policy.hpp"
#include "tandem/confidence/white_box.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

// ---- Counting every heap allocation (operator new) ---------------------------------------
namespace {
std::size_t g_allocations = 0;  // single-threaded program
}  // namespace

void* operator new(std::size_t n) {
  ++g_allocations;
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) std::abort();  // no exceptions in this program
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return ::operator new(n, t);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using tandem::errc;
using tandem::token_id;
using game_clock = std::chrono::steady_clock;

// Splits on spaces; ids 0 = <s>, 1 = </s>, 2 = <unk>, then the training words. Lookups
// take a string_view (transparent hash), so encoding allocates nothing.
class word_tokenizer {
 public:
  static constexpr token_id bos = 0, eos = 1, unk = 2;

  word_tokenizer() : words_{"<s>", "</s>", "<unk>"} {}

  token_id add(std::string_view w) {
    const auto it = ids_.find(w);
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<token_id>(words_.size());
    words_.emplace_back(w);
    ids_.emplace(std::string(w), id);
    return id;
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return words_.size(); }
  [[nodiscard]] errc encode(std::string_view text, std::vector<token_id>& ids) const {
    ids.push_back(bos);
    for_each_word(text, [&](std::string_view w) {
      const auto it = ids_.find(w);
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
      while (i < text.size() && (text[i] == ' ' || text[i] == '\r')) ++i;
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ' && text[j] != '\r') ++j;
      if (j > i) f(text.substr(i, j - i));
      i = j;
    }
  }

 private:
  struct hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::vector<std::string> words_;
  std::unordered_map<std::string, token_id, hash, std::equal_to<>> ids_;
};

// The per-token callback: the player's "skip" cancels the generation at its next token.
struct skip_button {
  bool pressed = false;
  tandem::control operator()(const tandem::token_event&) const noexcept {
    return pressed ? tandem::control::stop : tandem::control::proceed;
  }
};

// One cascade stage: a model session that speaks a line a few tokens at a time. Every
// buffer is sized at construction.
class speaker {
 public:
  static constexpr std::size_t max_line = 24, max_prompt = 32;

  speaker(const char* name, const tandem::ngram_model& model, const word_tokenizer& tok,
          float temperature)
      : name_(name),
        session_(model, max_prompt + max_line + 1),
        tok_(tok),
        sampler_(temperature, 0) {
    seq_.reserve(max_prompt + max_line + 1);
    logprobs_.reserve(max_line);
    text_.reserve(max_line * 32);
    frame_.tokens.reserve(max_line);
    frame_.logprobs.reserve(max_line);
    frame_.entropies.reserve(max_line);
    frame_.text.reserve(max_line * 32);
  }

  [[nodiscard]] const char* name() const noexcept { return name_; }
  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] tandem::finish_reason finish() const noexcept { return finish_; }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] std::size_t tokens() const noexcept { return logprobs_.size(); }
  [[nodiscard]] std::span<const float> logprobs() const noexcept { return logprobs_; }

  // Starts a line after `prompt` (the session forgets the previous line).
  errc start(std::span<const token_id> prompt, std::uint64_t seed) {
    if (prompt.empty() || prompt.size() > max_prompt) return errc::invalid_argument;
    session_.reset();
    sampler_.reseed(seed);
    seq_.assign(prompt.begin(), prompt.end());
    logprobs_.clear();
    text_.clear();
    fed_prompt_ = false;
    done_ = false;
    finish_ = tandem::finish_reason::none;
    return errc::ok;
  }

  // Speaks at most `budget` more tokens, stopping at `deadline`. Returns the tokens kept.
  std::size_t step(std::size_t budget, game_clock::time_point deadline, skip_button& skip) {
    if (done_) return 0;
    tandem::generation_options opts;
    opts.max_tokens = std::min(budget, max_line - logprobs_.size());
    opts.deadline = deadline;
    opts.stop_tokens = stops_;
    // The first frame feeds the prompt; later ones continue the line (continue_generation:
    // the context is kept on purpose) from the last token, which generation leaves unfed
    // when it stops (re-fed after a rewind if it was fed).
    std::span<const token_id> feed(seq_);
    if (fed_prompt_) {
      if (session_.size() == seq_.size() && session_.rewind(1) != errc::ok) return fail();
      feed = feed.last(1);
    }
    const errc e = tandem::continue_generation(session_, tok_, sampler_, feed, opts, frame_, skip);
    fed_prompt_ = true;
    seq_.insert(seq_.end(), frame_.tokens.begin(), frame_.tokens.end());
    logprobs_.insert(logprobs_.end(), frame_.logprobs.begin(), frame_.logprobs.end());
    text_ += frame_.text;
    finish_ = frame_.finish;
    if (e != errc::ok) return fail();
    // The callback stops the generation at the next token; when that token was also the
    // frame's last, generate() reports `length` (the other rule wins): a skip is a skip.
    if (skip.pressed) finish_ = tandem::finish_reason::cancelled;
    done_ = finish_ == tandem::finish_reason::stop_token ||
            finish_ == tandem::finish_reason::cancelled ||
            finish_ == tandem::finish_reason::context_full || logprobs_.size() >= max_line;
    return frame_.tokens.size();
  }

 private:
  std::size_t fail() {
    done_ = true;
    finish_ = tandem::finish_reason::error;
    return 0;
  }

  const char* name_;
  tandem::ngram_session session_;
  const word_tokenizer& tok_;
  tandem::categorical_sampler sampler_;
  const token_id stops_[1] = {word_tokenizer::eos};
  std::vector<token_id> seq_;  // prompt + line so far
  std::vector<float> logprobs_;
  std::string text_;
  tandem::completion frame_;  // one frame's output, reused
  bool fed_prompt_ = false, done_ = true;
  tandem::finish_reason finish_ = tandem::finish_reason::none;
};

struct settings {
  std::size_t tokens_per_frame = 3, cancel_frame = 0;  // 0: during the last line
  long npc_budget_us = 2000;
  double threshold = -3.0;
  bool sleep = true;
  std::string data = TANDEM_EXAMPLE_DATA_DIR;
};

struct exchange {
  const char* player;
  const char* npc_opening;  // the NPC's line starts with these words (the prompt)
};

constexpr exchange script[] = {
    {"Who are you, old man?", "I am the"},
    {"Where is the king?", "The king of"},
    {"What news of the war?", "And the children of"},
    {"I must go. Farewell!", "Go in peace, and"},
};
constexpr std::size_t frame_ms = 16;

int usage(const char* why) {
  std::fprintf(stderr, "npc_dialogue: %s\n", why);
  std::fprintf(stderr,
               "usage: npc_dialogue [--tokens-per-frame N] [--npc-budget-us N] [--threshold X]\n"
               "                    [--cancel-frame N] [--no-sleep] [--data DIR]\n");
  return 2;
}

// Reads the corpus into word-id sentences (one KJV verse a line).
bool read_corpus(const std::string& path, word_tokenizer& tok,
                 std::vector<std::vector<token_id>>& verses) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::string all;
  char buf[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, got);
  std::fclose(f);
  std::string_view rest = all;
  while (!rest.empty()) {
    const std::size_t nl = std::min(rest.find('\n'), rest.size());
    auto& v = verses.emplace_back();
    word_tokenizer::for_each_word(rest.substr(0, nl),
                                  [&](std::string_view w) { v.push_back(tok.add(w)); });
    rest.remove_prefix(std::min(nl + 1, rest.size()));
  }
  return !verses.empty();
}

tandem::result<tandem::ngram_model> train(std::size_t order, std::size_t vocab,
                                          std::span<const std::vector<token_id>> verses) {
  auto b = tandem::ngram_builder::create(
      tandem::ngram_options{order, vocab, word_tokenizer::bos, word_tokenizer::eos});
  if (!b) return b.error();
  for (const auto& v : verses) TANDEM_TRY(b->add_sentence(v));
  return b->build();
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--no-sleep") {
      s.sleep = false;
      continue;
    }
    if (i + 1 >= argc) return usage("every flag but --no-sleep takes a value");
    const char* v = argv[++i];
    char* end = nullptr;
    const double x = std::strtod(v, &end);
    const bool number = end != v && *end == '\0';
    if (flag == "--data")
      s.data = v;
    else if (!number)
      return usage("a numeric flag has a non-numeric value");
    else if (flag == "--tokens-per-frame" && x >= 1)
      s.tokens_per_frame = static_cast<std::size_t>(x);
    else if (flag == "--npc-budget-us" && x >= 1)
      s.npc_budget_us = static_cast<long>(x);
    else if (flag == "--threshold")
      s.threshold = x;
    else if (flag == "--cancel-frame" && x >= 0)
      s.cancel_frame = static_cast<std::size_t>(x);
    else
      return usage("unknown flag or bad value");
  }

  // Loading (allocates freely): the tokenizer, both models, the cascade policy.
  const auto t0 = game_clock::now();
  word_tokenizer tok;
  std::vector<std::vector<token_id>> verses;
  if (!read_corpus(s.data + "/kjv/train.txt", tok, verses))
    return usage("cannot read <data>/kjv/train.txt (set --data)");
  const std::span<const std::vector<token_id>> all(verses);
  auto small_model = train(2, tok.vocab_size(), all.first(all.size() / 4));
  auto large_model = train(4, tok.vocab_size(), all);
  if (!small_model || !large_model) return usage("training failed");
  speaker small("small", *small_model, tok, 0.8f), large("large", *large_model, tok, 0.8f);
  speaker* stages[] = {&small, &large};
  // Stage 0 accepts its line when its mean token log-probability >= threshold; the last
  // stage always accepts.
  const tandem::cascade_policy policy = tandem::cascade_policy::chain({0, 1}, s.threshold);
  std::printf(
      "loaded in %.2f s: small = 2-gram on %zu verses, large = 4-gram on %zu verses, "
      "%zu words\n",
      std::chrono::duration<double>(game_clock::now() - t0).count(), all.size() / 4, all.size(),
      tok.vocab_size());
  std::printf(
      "frame %zu ms, at most %zu NPC tokens per frame, NPC deadline %ld us into the "
      "frame, cascade threshold %.2f\n",
      frame_ms, s.tokens_per_frame, s.npc_budget_us, s.threshold);

  std::vector<token_id> prompt;
  prompt.reserve(speaker::max_prompt);
  std::size_t frame_tokens[64] = {};
  skip_button skip;

  // Warm-up: one line from each stage sizes every buffer that grows on first use.
  for (speaker* sp : stages) {
    prompt.clear();
    (void)tok.encode(script[0].npc_opening, prompt);
    if (sp->start(prompt, 1) != errc::ok) return 1;
    while (!sp->done())
      sp->step(s.tokens_per_frame, game_clock::now() + std::chrono::seconds(1), skip);
  }

  // The dialogue: from here on, nothing may allocate.
  const std::size_t allocations_before = g_allocations;
  std::printf("allocations while loading and warming up: %zu\n\n", allocations_before);
  const std::size_t cancel_frame = s.cancel_frame;
  std::size_t frame = 0, deadline_frames = 0, escalations = 0, cancelled = 0;
  std::size_t small_tokens = 0, large_tokens = 0;
  double worst_npc_us = 0.0;
  for (std::size_t line = 0; line < std::size(script); ++line) {
    const exchange& x = script[line];
    std::printf("Player: %s\n", x.player);
    prompt.clear();
    (void)tok.encode(x.npc_opening, prompt);
    std::size_t stage = 0, frames_in_line = 0;
    if (small.start(prompt, 100 + line) != errc::ok) return 1;
    const std::size_t skip_on =
        cancel_frame > 0 ? cancel_frame : (line + 1 == std::size(script) ? frame + 2 : SIZE_MAX);
    while (true) {
      const auto frame_start = game_clock::now();
      skip.pressed = frame == skip_on;  // input: the player presses "skip"
      speaker& sp = *stages[stage];
      const std::size_t n = sp.step(s.tokens_per_frame,
                                    frame_start + std::chrono::microseconds(s.npc_budget_us), skip);
      const double npc_us =
          std::chrono::duration<double, std::micro>(game_clock::now() - frame_start).count();
      worst_npc_us = std::max(worst_npc_us, npc_us);
      if (sp.finish() == tandem::finish_reason::deadline) ++deadline_frames;
      (stage == 0 ? small_tokens : large_tokens) += n;
      if (frames_in_line < std::size(frame_tokens)) frame_tokens[frames_in_line] = n;
      ++frames_in_line;
      ++frame;

      bool line_over = false;
      if (sp.done()) {
        std::printf("  frames: %s", sp.name());
        for (std::size_t f = 0; f < std::min(frames_in_line, std::size(frame_tokens)); ++f)
          std::printf(" %zu", frame_tokens[f]);
        std::printf(" tokens\n");
        frames_in_line = 0;
        if (sp.finish() == tandem::finish_reason::cancelled) {
          std::printf("  NPC (%s): %s%s -- skipped by the player on frame %zu\n", sp.name(),
                      x.npc_opening, sp.text().c_str(), frame - 1);
          ++cancelled;
          line_over = true;
        } else if (sp.finish() == tandem::finish_reason::error) {
          std::printf("  NPC (%s): generation error\n", sp.name());
          line_over = true;
        } else {
          const auto score = tandem::mean_logprob(sp.logprobs());
          const double conf = score ? *score : -1e300;
          const tandem::cascade_decision d = policy.decide(stage, conf);
          std::printf("  cascade: stage=%s score=%.2f threshold=%.2f decision=%s\n", sp.name(),
                      conf, policy.accept[stage], tandem::to_string(d).data());
          if (d == tandem::cascade_decision::escalate) {
            ++escalations;
            stage = 1;
            if (large.start(prompt, 200 + line) != errc::ok) return 1;
          } else {
            std::printf("  NPC (%s): %s%s\n", sp.name(), x.npc_opening, sp.text().c_str());
            line_over = true;
          }
        }
      }
      if (s.sleep) std::this_thread::sleep_until(frame_start + std::chrono::milliseconds(frame_ms));
      if (line_over) break;
    }
  }
  const std::size_t allocations = g_allocations - allocations_before;

  std::printf(
      "\n%zu frames, %zu lines escalated to the large model, %zu skipped; tokens: "
      "small %zu, large %zu\n",
      frame, escalations, cancelled, small_tokens, large_tokens);
  std::printf("frames cut by the NPC deadline: %zu; slowest NPC update: %.0f us (budget %ld us)\n",
              deadline_frames, worst_npc_us, s.npc_budget_us);
  std::printf("allocations during dialogue: %zu\n", allocations);
  return allocations == 0 ? 0 : 1;
}
