// npc_crowd: sixteen NPCs speak at once through one model, one batched forward pass per
// game frame, with a shared system prompt computed once, and no heap allocation once warm.
//
// Every NPC's prompt is the same "system prompt" (a few words every villager's line
// opens with) followed by its own opening words. The scheduler prefills the system prompt
// once (add_prefix) and forks it for each NPC. Each frame makes exactly one step(): at
// most --frame-tokens tokens in one batched append over the 2-gram model's sequences,
// one new token for every NPC still speaking; each line also has a deadline. The player
// walks away from one NPC on frame --cancel-frame (cancel). When a line's confidence (mean
// token log-probability) falls below the cascade's threshold, that NPC escalates: a
// second scheduler over a 4-gram model speaks its line again, one token per frame.
//
// Allocations are counted (tests/common/counting_new.cpp replaces operator new) after a
// warm-up round: the crowd must not allocate.
//
//   npc_crowd [--frame-tokens N] [--threshold X] [--cancel-frame N] [--data DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/counting_new.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/batch.hpp"
#include "tandem/cascade/policy.hpp"
#include "tandem/confidence/white_box.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using crowd_scheduler = tandem::scheduler<tandem::ngram_multi_session, tandem::categorical_sampler>;

constexpr std::size_t npcs = 16, line_tokens = 12;
constexpr token_id bos = 0, eos = 1;

// The corpus as word ids (0 <s>, 1 </s>, then words in order of appearance), one verse a
// sentence; `words` maps ids back for printing.
struct corpus {
  std::vector<std::string> words{"<s>", "</s>"};
  std::unordered_map<std::string, token_id> ids;
  std::vector<std::vector<token_id>> verses;

  token_id id(std::string_view w, bool add) {
    if (auto it = ids.find(std::string(w)); it != ids.end()) return it->second;
    if (!add) return eos;
    words.emplace_back(w);
    return ids[std::string(w)] = static_cast<token_id>(words.size() - 1);
  }
  // Appends the ids of the space-separated words of `text`.
  void encode(std::string_view text, std::vector<token_id>& out, bool add) {
    for (std::size_t i = 0, j = 0; i < text.size(); i = j + 1) {
      j = std::min(text.find(' ', i), text.size());
      if (j > i) out.push_back(id(text.substr(i, j - i), add));
    }
  }
};

bool load(const std::string& path, corpus& c) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::string line;
  for (int ch = std::fgetc(f); ch != EOF; ch = std::fgetc(f)) {
    if (ch != '\n') {
      if (ch != '\r') line.push_back(static_cast<char>(ch));
      continue;
    }
    c.encode(line, c.verses.emplace_back(), true);
    line.clear();
  }
  std::fclose(f);
  return !c.verses.empty();
}

tandem::result<tandem::ngram_model> train(std::size_t order, const corpus& c, std::size_t n) {
  auto b = tandem::ngram_builder::create(tandem::ngram_options{order, c.words.size(), bos, eos});
  if (!b) return b.error();
  for (std::size_t i = 0; i < n; ++i) TANDEM_TRY(b->add_sentence(c.verses[i]));
  return b->build();
}

constexpr std::string_view system_prompt =
    "And the LORD spake unto Moses, saying, Speak unto the children of Israel, and say unto them,";
constexpr std::string_view openings[npcs] = {"I",   "Ye",  "The",  "And",  "Thou", "Behold,",
                                             "He",  "Let", "My",   "When", "If",   "Now",
                                             "Who", "For", "Thus", "O"};

struct settings {
  std::size_t frame_tokens = 24, cancel_frame = 3;
  double threshold = -3.2;
  std::string data = TANDEM_EXAMPLE_DATA_DIR;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "npc_crowd: %s\nusage: npc_crowd [--frame-tokens N] [--threshold X] "
               "[--cancel-frame N] [--data DIR]\n",
               why);
  return 2;
}

// One round: every NPC speaks a line; the player cancels one; low-confidence lines are
// spoken again by the large model. Returns false on an error.
struct round_result {
  std::size_t frames = 0, escalated = 0, cancelled = 0, max_step_tokens = 0;
  double slowest_step_us = 0.0;
};

bool play(crowd_scheduler& small, crowd_scheduler& large, const tandem::cascade_policy& policy,
          const std::vector<std::vector<token_id>>& prompts, const settings& s, std::uint64_t seed,
          std::span<tandem::completion> lines, round_result& r, const corpus* print) {
  using clock = std::chrono::steady_clock;
  const token_id stops[1] = {eos};
  tandem::request_id ids[npcs] = {};
  bool escalated[npcs] = {};
  tandem::generation_options o;
  o.max_tokens = line_tokens;
  o.stop_tokens = stops;
  o.deadline = clock::now() + std::chrono::seconds(5);
  for (std::size_t i = 0; i < npcs; ++i) {
    auto id = small.submit({prompts[i], tandem::categorical_sampler(0.8f, seed + i), o,
                            i == 0 ? 1 : 0});  // NPC 0 talks to the player: served first
    if (!id) return false;
    ids[i] = *id;
  }
  std::size_t speaking = npcs;
  while (speaking > 0) {
    const auto t0 = clock::now();
    const std::size_t before = small.stats().prefill_tokens + small.stats().decode_tokens +
                               large.stats().prefill_tokens + large.stats().decode_tokens;
    if (small.step() != errc::ok || large.step() != errc::ok) return false;
    r.slowest_step_us = std::max(
        r.slowest_step_us, std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    r.max_step_tokens = std::max(
        r.max_step_tokens, small.stats().prefill_tokens + small.stats().decode_tokens +
                               large.stats().prefill_tokens + large.stats().decode_tokens - before);
    if (++r.frames == s.cancel_frame && small.cancel(ids[npcs - 1]) != errc::ok) return false;
    for (std::size_t i = 0; i < npcs; ++i) {
      crowd_scheduler& sch = escalated[i] ? large : small;
      if (ids[i] == 0 || sch.state(ids[i]) != tandem::request_state::finished) continue;
      if (sch.take(ids[i], lines[i]) != errc::ok) return false;
      ids[i] = 0;
      const auto score = tandem::mean_logprob(lines[i].logprobs);
      const double conf = score ? *score : -1e300;
      if (lines[i].finish == tandem::finish_reason::cancelled) {
        ++r.cancelled;
      } else if (!escalated[i] && policy.decide(0, conf) == tandem::cascade_decision::escalate) {
        auto id = large.submit({prompts[i], tandem::categorical_sampler(0.8f, seed + 100 + i), o});
        if (!id) return false;
        ids[i] = *id;
        escalated[i] = true;
        ++r.escalated;
        continue;
      }
      --speaking;
      if (print == nullptr) continue;
      std::printf("  NPC %2zu (%s, %-9s score %6.2f): %s", i, escalated[i] ? "large" : "small",
                  tandem::to_string(lines[i].finish).data(), score ? *score : 0.0,
                  openings[i].data());
      for (token_id t : lines[i].tokens)
        std::printf(" %s", print->words[static_cast<std::size_t>(t)].c_str());
      std::printf("\n");
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i], value = argv[i + 1];
    const double x = std::atof(argv[i + 1]);
    auto count = [x](std::size_t& out, double least) {
      if (!(x >= least)) return false;
      out = static_cast<std::size_t>(x);
      return true;
    };
    const bool known = flag == "--data"           ? (s.data = value, true)
                       : flag == "--frame-tokens" ? count(s.frame_tokens, 1)
                       : flag == "--cancel-frame" ? count(s.cancel_frame, 0)
                       : flag == "--threshold"    ? (s.threshold = x, true)
                                                  : false;
    if (!known) return usage("unknown flag or bad value");
  }
  if (argc % 2 == 0) return usage("every flag takes a value");

  // Loading (allocates freely).
  corpus c;
  if (!load(s.data + "/kjv/train.txt", c)) return usage("cannot read <data>/kjv/train.txt");
  auto small_model = train(2, c, c.verses.size() / 4);
  auto large_model = train(4, c, c.verses.size());
  if (!small_model || !large_model) return usage("training failed");
  std::vector<token_id> system;
  c.encode(system_prompt, system, false);
  std::vector<std::vector<token_id>> prompts(npcs, system);
  for (std::size_t i = 0; i < npcs; ++i) c.encode(openings[i], prompts[i], false);

  constexpr std::size_t ctx = 64;
  tandem::ngram_multi_session small_seqs(*small_model, npcs + 1, ctx);
  tandem::ngram_multi_session large_seqs(*large_model, npcs + 1, ctx);
  crowd_scheduler small(small_seqs, {.max_requests = npcs, .max_batch_tokens = s.frame_tokens});
  crowd_scheduler large(large_seqs, {.max_requests = npcs, .max_batch_tokens = s.frame_tokens});
  if (!small.add_prefix(system) || !large.add_prefix(system)) return usage("prefix failed");
  const tandem::cascade_policy policy = tandem::cascade_policy::chain({0, 1}, s.threshold);
  std::printf(
      "%zu NPCs on one 2-gram model (%zu words); system prompt of %zu tokens; at most "
      "%zu tokens per frame; cascade threshold %.2f\n",
      npcs, c.words.size(), system.size(), s.frame_tokens, s.threshold);

  // Warm-up round: every line escalates, so every request slot of both schedulers and
  // every completion is sized once.
  std::vector<tandem::completion> lines(npcs);
  for (tandem::completion& l : lines) {  // take() copies into these: room for a whole line
    l.tokens.reserve(line_tokens);
    l.logprobs.reserve(line_tokens);
    l.entropies.reserve(line_tokens);
  }
  round_result warm;
  const tandem::cascade_policy escalate_all = tandem::cascade_policy::chain({0, 1}, 1.0);
  if (!play(small, large, escalate_all, prompts, s, 1, lines, warm, nullptr)) return 1;
  const std::size_t shared_before = small.stats().shared_tokens;
  const std::size_t computed_before = small.stats().prefill_tokens;

  tandem_test::allocation_scope scope;
  round_result r;
  if (!play(small, large, policy, prompts, s, 1000, lines, r, &c)) return 1;
  const std::size_t allocations = scope.allocations();

  std::printf(
      "frames: %zu, one step() each; most tokens in one frame: %zu (cap %zu); slowest "
      "step: %.0f us\n",
      r.frames, r.max_step_tokens, 2 * s.frame_tokens, r.slowest_step_us);
  std::printf("prompt tokens: %zu shared from the system prompt, %zu computed\n",
              small.stats().shared_tokens - shared_before,
              small.stats().prefill_tokens - computed_before);
  std::printf("cancelled by the player: %zu; escalated to the large model: %zu\n", r.cancelled,
              r.escalated);
  std::printf("allocations during the crowd: %zu\n", allocations);
  return allocations == 0 ? 0 : 1;
}
