// Tests of the speculative decoder: exactness against target-only decoding (greedy token
// for token, sampling in distribution), the generation-loop rules, the decoder-policy
// interface (plans, probes, verdicts), error paths, statistics and allocation, over mock
// models and built-in n-gram model pairs. The drafters and the draft-length policies on
// their own: drafter.cpp and draft_length.cpp.
#include "tandem/speculative.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "speculative/chi_square.hpp"
#include "speculative/helpers.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::first_two_chi_square;
using tandem_test::fixed_drafter;
using tandem_test::greedy_chain;
using tandem_test::lying_drafter;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::mock_probs;
using tandem_test::partly_agreeing;
using tandem_test::successors;
using tandem_test::temperature_chain;

completion target_only(const mock_options& o, std::span<const token_id> prompt,
                       const generation_options& g) {
  mock_model m(o);
  auto s = greedy_chain();
  completion c;
  REQUIRE(tandem::generate(m, s, prompt, g, c) == errc::ok);
  return c;
}

// ---- Greedy exactness ---------------------------------------------------------------------

TEST_CASE("speculative: greedy output equals target-only greedy for mock pairs and draft lengths",
          "[speculative]") {
  const std::size_t vocab = 16;
  const auto target_succ = successors(vocab, 5, 3);
  const std::vector<std::vector<token_id>> drafts = {target_succ, partly_agreeing(target_succ, 2),
                                                     partly_agreeing(target_succ, 5),
                                                     successors(vocab, 3, 1)};
  const std::vector<std::vector<token_id>> prompts = {{1}, {4, 2}, {7, 7, 7, 9}, {0, 15, 3, 8, 1}};
  generation_options g;
  g.max_tokens = 40;
  for (const auto& dsucc : drafts) {
    for (const auto& prompt : prompts) {
      mock_options to{vocab, {}, target_succ};
      const completion want = target_only(to, prompt, g);
      for (std::size_t len : {1u, 2u, 3u, 5u, 8u, 16u}) {
        mock_model target(to);
        mock_model draft_model(mock_options{vocab, {}, dsucc});
        tandem::model_drafter drafter(draft_model, greedy_chain());
        tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{len});
        auto s = greedy_chain();
        completion got;
        REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
        CHECK(got.tokens == want.tokens);
        CHECK(got.finish == finish_reason::length);
        CHECK(got.logprobs == want.logprobs);
        // State: every kept token but the last is in the target's context.
        CHECK(target.size() == prompt.size() + got.tokens.size() - 1);
      }
    }
  }
}

TEST_CASE("speculative: every draft-length policy and the prompt-lookup drafter keep greedy exact",
          "[speculative]") {
  const std::size_t vocab = 16;
  // A target that repeats a cycle, so prompt lookup finds matches.
  const auto target_succ = successors(vocab, 1, 5);
  const std::vector<token_id> prompt = {2, 7, 12, 1, 6};
  generation_options g;
  g.max_tokens = 60;
  mock_options to{vocab, {3, 3, 3, 3, 3, 3, 9}, target_succ};
  const completion want = target_only(to, prompt, g);

  auto run = [&](auto& drafter, auto policy) {
    mock_model target(to);
    tandem::speculative_decoder dec(target, drafter, policy);
    auto s = greedy_chain();
    completion got;
    REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
    CHECK(got.tokens == want.tokens);
    return dec.stats();
  };
  mock_model dm(mock_options{vocab, {}, partly_agreeing(target_succ, 4)});
  tandem::model_drafter md(dm, greedy_chain());
  run(md, tandem::adaptive_draft{});
  run(md, tandem::cost_model_draft{});
  run(md, tandem::fixed_draft{0});

  tandem::prompt_lookup_drafter pl(vocab);
  const auto st = run(pl, tandem::fixed_draft{6});
  CHECK(st.drafted > 0);
  CHECK(st.acceptance_rate() > 0.8);  // the cycle repeats exactly
}

// Words of KJV lines split on spaces would need a vocabulary; bytes need none.
std::vector<std::vector<token_id>> kjv_bytes(std::size_t lines) {
  std::ifstream in(std::string(TANDEM_DATA_DIR) + "/kjv/train.txt");
  REQUIRE(in.good());
  std::vector<std::vector<token_id>> out;
  std::string line;
  while (out.size() < lines && std::getline(in, line)) {
    std::vector<token_id> s;
    for (unsigned char ch : line) s.push_back(ch);
    out.push_back(std::move(s));
  }
  return out;
}

tandem::ngram_model train_ngram(const std::vector<std::vector<token_id>>& data, std::size_t order) {
  tandem::ngram_options p;
  p.order = order;
  p.vocab_size = 258;
  p.bos = 256;
  p.eos = 257;
  auto b = tandem::ngram_builder::create(p);
  REQUIRE(b.has_value());
  REQUIRE(b->add_sentences(data) == errc::ok);
  auto m = b->build();
  REQUIRE(m.has_value());
  return std::move(*m);
}

TEST_CASE("speculative: greedy output equals target-only greedy for n-gram pairs on KJV",
          "[speculative][ngram]") {
  const auto data = kjv_bytes(1500);
  const tandem::ngram_model big = train_ngram(data, 4);
  const tandem::ngram_model small = train_ngram(data, 2);
  const std::vector<std::string_view> texts = {"And God said", "In the beginning", "the LORD",
                                               "Then came"};
  generation_options g;
  g.max_tokens = 48;
  std::size_t total_accepted = 0;
  for (std::string_view text : texts) {
    std::vector<token_id> prompt = {256};
    for (unsigned char ch : text) prompt.push_back(ch);
    tandem::ngram_session ref(big);
    auto s0 = greedy_chain();
    completion want;
    REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
    for (std::size_t len : {1u, 3u, 6u}) {
      tandem::ngram_session target(big), draft(small);
      tandem::model_drafter drafter(draft, greedy_chain());
      tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{len});
      auto s = greedy_chain();
      completion got;
      REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
      CHECK(got.tokens == want.tokens);
      total_accepted += dec.stats().accepted;
    }
  }
  CHECK(total_accepted > 0);
}

TEST_CASE("speculative: prompt lookup backed by an n-gram model keeps greedy exact",
          "[speculative][ngram]") {
  const auto data = kjv_bytes(800);
  const tandem::ngram_model big = train_ngram(data, 4);
  const tandem::ngram_model small = train_ngram(data, 3);
  std::vector<token_id> prompt = {256};
  for (unsigned char ch : std::string_view("And the LORD said unto Moses, and the LORD said"))
    prompt.push_back(ch);
  generation_options g;
  g.max_tokens = 60;
  tandem::ngram_session ref(big);
  auto s0 = greedy_chain();
  completion want;
  REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);

  tandem::ngram_session target(big), draft(small);
  tandem::prompt_lookup_drafter lookup(258, {2, 4});
  tandem::model_drafter backing(draft, greedy_chain());
  tandem::fallback_drafter drafter(lookup, backing);
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{4});
  auto s = greedy_chain();
  completion got;
  REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
  CHECK(got.tokens == want.tokens);
  CHECK(dec.stats().accepted > 0);

  // Different vocabularies are a named error.
  tandem::prompt_lookup_drafter other(100);
  tandem::fallback_drafter mixed(other, backing);
  std::array<token_id, 4> out{};
  CHECK(mixed.draft({prompt, 4, out, {}}).error() == errc::vocab_mismatch);
}

// ---- Sampling exactness ---------------------------------------------------------------------

// 15 degrees of freedom: P(chi-square > 37.70) = 0.001.
constexpr double chi_square_15_at_0_001 = 37.70;

TEST_CASE("speculative: sampled first tokens follow the target's distribution (draft with q)",
          "[speculative][sampling]") {
  // The draft model favours another successor and samples with the target's settings.
  const double chi = first_two_chi_square(
      [](std::size_t i) { return tandem_test::sampling_model_drafter(i); }, 20000);
  CHECK(chi < chi_square_15_at_0_001);
}

TEST_CASE("speculative: sampled first tokens follow the target's distribution (one-hot drafts)",
          "[speculative][sampling]") {
  const double chi = first_two_chi_square(
      [](std::size_t) {
        return fixed_drafter{4, {2, 3, 0}};
      },
      20000);
  CHECK(chi < chi_square_15_at_0_001);
}

TEST_CASE("speculative: the chi-square check detects a verifier that accepts every draft",
          "[speculative][sampling]") {
  // Sanity of the statistic on the decoder's own output: a drafter whose q makes the
  // verifier accept its token (3) every time puts 3 first in every run, far from the
  // target's distribution, and the statistic is far above the critical value.
  const std::size_t runs = 20000;
  CHECK(first_two_chi_square(
            [](std::size_t) {
              return lying_drafter{4, 3};
            },
            2000) > chi_square_15_at_0_001);
  // The real verifier with that proposal passes.
  CHECK(first_two_chi_square(
            [](std::size_t) {
              return fixed_drafter{4, {3, 3, 3}};
            },
            runs) < chi_square_15_at_0_001);
}

// ---- Generation-loop rules ----------------------------------------------------------------

struct recorded_event {
  token_id token;
  std::size_t index;
  std::string piece;
  bool operator==(const recorded_event&) const = default;
};

TEST_CASE("speculative: stop tokens, stop strings, streaming and cancellation match generate()",
          "[speculative]") {
  using tandem_test::mock_tokenizer;
  const mock_tokenizer tok;
  const std::size_t vocab = 16;
  // Favourites spell: a b " " S TOP ... via the script, then successors.
  const mock_options to{vocab, {1, 1, 2, 3, 4, 5, 6, 7, 10, 1, 2, 15, 0}, {}};
  const std::vector<token_id> prompt = {1};
  const std::array<std::string_view, 1> stops = {"STOP"};
  const std::array<token_id, 1> stop_tok = {0};

  for (int variant = 0; variant < 4; ++variant) {
    generation_options g;
    g.max_tokens = 30;
    if (variant == 1) g.stop_strings = stops;
    if (variant == 2) g.stop_tokens = stop_tok;
    const std::size_t cancel_at = variant == 3 ? 5 : 1000;

    auto record = [&](std::vector<recorded_event>& ev) {
      return [&ev, cancel_at](const tandem::token_event& e) {
        ev.push_back({e.token, e.index, std::string(e.piece)});
        return ev.size() == cancel_at ? tandem::control::stop : tandem::control::proceed;
      };
    };
    mock_model ref(to);
    auto s0 = greedy_chain();
    completion want;
    std::vector<recorded_event> want_ev;
    REQUIRE(tandem::generate(ref, tok, s0, prompt, g, want, record(want_ev)) == errc::ok);

    for (std::size_t len : {1u, 4u, 7u}) {
      mock_model target(to);
      mock_model dm(mock_options{vocab, {1, 1, 2, 3, 4, 9, 6, 7, 10, 1, 2, 15, 0}, {}});
      tandem::model_drafter drafter(dm, greedy_chain());
      tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{len});
      auto s = greedy_chain();
      completion got;
      std::vector<recorded_event> got_ev;
      REQUIRE(dec.generate(tok, s, prompt, g, got, record(got_ev)) == errc::ok);
      INFO("variant " << variant << " draft " << len);
      CHECK(got.tokens == want.tokens);
      CHECK(got.text == want.text);
      CHECK(got.finish == want.finish);
      CHECK(got_ev == want_ev);
    }
  }
}

TEST_CASE("speculative: the context length ends generation like generate()", "[speculative]") {
  const mock_options to{16, {}, successors(16, 3, 1), 12};
  const std::vector<token_id> prompt = {1, 2, 3};
  generation_options g;
  g.max_tokens = 100;
  const completion want = target_only(to, prompt, g);
  REQUIRE(want.finish == finish_reason::context_full);
  mock_model target(to);
  mock_model dm(mock_options{16, {}, successors(16, 3, 1)});
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{8});
  auto s = greedy_chain();
  completion got;
  REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
  CHECK(got.tokens == want.tokens);
  CHECK(got.finish == finish_reason::context_full);
}

TEST_CASE("speculative: a passed deadline keeps no token", "[speculative]") {
  mock_model target(mock_options{});
  tandem::prompt_lookup_drafter pl(16);
  tandem::speculative_decoder dec(target, pl, tandem::fixed_draft{4});
  generation_options g;
  g.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1, 2}, g, c) == errc::ok);
  CHECK(c.tokens.empty());
  CHECK(c.finish == finish_reason::deadline);
}

// ---- Statistics and policies ------------------------------------------------------------

TEST_CASE("speculative: statistics count rounds, calls and acceptance by position",
          "[speculative][stats]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, succ});  // the same table: every draft accepted
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{4});
  generation_options g;
  g.max_tokens = 25;  // 5 full rounds of 4 drafts + 1 bonus
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1, 2}, g, c) == errc::ok);
  const auto& st = dec.stats();
  CHECK(st.rounds == 5);
  CHECK(st.drafted == 20);
  CHECK(st.accepted == 20);
  CHECK(st.generated == 25);
  CHECK(st.acceptance_rate() == 1.0);
  CHECK(st.mean_accepted_length() == 4.0);
  CHECK(st.tokens_per_round() == 5.0);
  CHECK(st.target_calls == 6);  // prompt + 5 rounds
  CHECK(st.draft_calls == 5);
  CHECK(st.accepted_at[3] == 5);
  CHECK(target.counters().score_calls == 5);
}

// A clock that advances one second per reading.
double ticking_clock() noexcept {
  thread_local double t = 0.0;
  return t += 1.0;
}

TEST_CASE("speculative: a user clock times the statistics and the policy's rounds",
          "[speculative][stats]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, succ});
  tandem::model_drafter drafter(dm, greedy_chain());
  std::vector<tandem::draft_round> rounds;
  struct recording {
    std::vector<tandem::draft_round>* out;
    std::size_t next() const { return 4; }
    void update(const tandem::draft_round& r) { out->push_back(r); }
  };
  tandem::speculative_options so;
  so.clock = ticking_clock;
  tandem::speculative_decoder dec(target, drafter, recording{&rounds}, so);
  generation_options g;
  g.max_tokens = 25;
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1, 2}, g, c) == errc::ok);
  // Each timed call reads the clock twice: one "second" per call.
  CHECK(dec.stats().draft_seconds == Approx(static_cast<double>(dec.stats().draft_calls)));
  CHECK(dec.stats().target_seconds >= static_cast<double>(dec.stats().target_calls));
  REQUIRE(rounds.size() == 5);
  for (const auto& r : rounds) {
    CHECK(r.draft_seconds == Approx(1.0));
    CHECK(r.target_seconds == Approx(1.0));
  }
}

// A policy that drafts `length` tokens (or plans a probe, when `probe`) and keeps a copy
// of every round it is told about (the round's views live only during update()).
struct recorded_round {
  tandem::draft_round round;
  std::vector<token_id> tokens;
  std::vector<double> verdicts;
  std::size_t probabilities = 0;
};
struct recording_policy {
  std::size_t length = 0;
  bool probe = false;
  std::vector<recorded_round>* out = nullptr;
  std::size_t next() const { return length; }
  tandem::draft_plan plan() const { return {length, probe}; }
  void update(const tandem::draft_round& r) {
    out->push_back({r, std::vector<token_id>(r.tokens.begin(), r.tokens.end()),
                    std::vector<double>(r.verdicts.begin(), r.verdicts.end()),
                    r.probabilities.size()});
  }
};
static_assert(tandem::DraftPlanningPolicy<recording_policy>);

TEST_CASE("speculative: each round tells the policy its draft tokens, their q and the verdicts",
          "[speculative][policy]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
  std::vector<recorded_round> rounds;
  tandem::speculative_decoder dec(target, drafter, recording_policy{4, false, &rounds});
  generation_options g;
  g.max_tokens = 60;
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1}, g, c) == errc::ok);
  REQUIRE(c.tokens.size() == 60);
  REQUIRE(rounds.size() == dec.stats().rounds);
  // Greedy verification: the verdict is 1 on each accepted token (the target's own), 0 on
  // the first rejected one; the rounds' accepted tokens and corrections are the output.
  std::size_t pos = 0, rejected = 0;
  for (const recorded_round& r : rounds) {
    CHECK_FALSE(r.round.probed);
    REQUIRE(r.tokens.size() == r.round.drafted);
    CHECK(r.probabilities == r.round.drafted * vocab);  // the greedy chain reports q
    const bool rejects = r.round.accepted < r.round.drafted;
    REQUIRE(r.verdicts.size() <= r.round.accepted + 1);
    for (std::size_t i = 0; i < r.round.accepted; ++i) {
      CHECK(r.verdicts[i] == 1.0);
      CHECK(r.tokens[i] == c.tokens[pos + i]);
    }
    if (rejects && pos + r.round.accepted < c.tokens.size()) {
      REQUIRE(r.verdicts.size() == r.round.accepted + 1);
      CHECK(r.verdicts[r.round.accepted] == 0.0);
      CHECK(r.tokens[r.round.accepted] != c.tokens[pos + r.round.accepted]);
      ++rejected;
    }
    pos += r.round.accepted + 1;
  }
  CHECK(rejected == dec.stats().rejections);
  CHECK(rejected > 0);
}

// A greedy generation of `max_tokens` tokens after {1} on a 16-token mock pair whose draft
// agrees at 2 positions of 3, with recording_policy{length, probe}: its output (checked
// against target-only greedy decoding), rounds, statistics and the tokens the target
// scored.
struct recorded_run {
  completion out;
  std::vector<recorded_round> rounds;
  tandem::speculative_stats stats;
  std::size_t scored = 0;
};
recorded_run run_recorded(std::size_t length, bool probe, std::size_t max_tokens) {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  const std::vector<token_id> prompt = {1};
  generation_options g;
  g.max_tokens = max_tokens;
  const completion want = target_only(mock_options{vocab, {}, succ}, prompt, g);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
  recorded_run run;
  tandem::speculative_decoder dec(target, drafter, recording_policy{length, probe, &run.rounds});
  auto s = greedy_chain();
  REQUIRE(dec.generate(s, prompt, g, run.out) == errc::ok);
  CHECK(run.out.tokens == want.tokens);
  run.stats = dec.stats();
  run.scored = target.counters().scored_tokens;
  return run;
}

TEST_CASE("speculative: a probe the policy plans is judged by the plain step, output unchanged",
          "[speculative][policy]") {
  const recorded_run run = run_recorded(0, true, 40);
  const auto& [c, rounds, st, scored] = run;
  CHECK(st.probes == st.rounds);
  CHECK(st.draft_calls == st.probes);
  CHECK(st.drafted == 0);
  CHECK(scored == st.rounds);  // plain steps only
  // Round i's probe token is judged against the token the target chose there.
  REQUIRE(rounds.size() == c.tokens.size());
  std::size_t agreed = 0;
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    const recorded_round& r = rounds[i];
    CHECK(r.round.probed);
    CHECK(r.round.requested == 0);
    CHECK(r.round.drafted == 0);
    CHECK(r.round.target_batch == 1);
    REQUIRE(r.tokens.size() == 1);
    REQUIRE(r.verdicts.size() == 1);
    CHECK(r.verdicts[0] == (r.tokens[0] == c.tokens[i] ? 1.0 : 0.0));
    agreed += r.tokens[0] == c.tokens[i] ? 1 : 0;
  }
  CHECK(agreed > 0);
  CHECK(agreed < rounds.size());
}

TEST_CASE("speculative: under sampling a probe's verdict is the acceptance chance min(1, p/q)",
          "[speculative][policy][sampling]") {
  const std::size_t vocab = 4;
  const float temp = 2.0f;
  const mock_options to{vocab, {}, successors(vocab, 1, 1)};
  mock_model target(to);
  mock_model dm(mock_options{vocab, {}, successors(vocab, 1, 2)});
  tandem::model_drafter drafter(dm, temperature_chain(temp, 5));
  std::vector<recorded_round> rounds;
  tandem::speculative_decoder dec(target, drafter, recording_policy{0, true, &rounds});
  generation_options g;
  g.max_tokens = 12;
  auto s = temperature_chain(temp, 9);
  completion c;
  const std::vector<token_id> prompt = {0, 1};
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  REQUIRE(rounds.size() == c.tokens.size());
  // p and q from the mock models' exact distributions after the same context.
  mock_model ref_t(to), ref_d(mock_options{vocab, {}, successors(vocab, 1, 2)});
  token_id last = prompt.back();
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    REQUIRE(rounds[i].verdicts.size() == 1);
    CHECK(rounds[i].probabilities == vocab);
    const auto x = static_cast<std::size_t>(rounds[i].tokens[0]);
    const std::size_t n = prompt.size() + i;
    const double p = mock_probs(ref_t, n, last, temp)[x];
    const double q = mock_probs(ref_d, n, last, temp)[x];
    CHECK(rounds[i].verdicts[0] == Approx(std::min(1.0, p / q)).epsilon(1e-4));
    last = c.tokens[i];
  }
}

TEST_CASE("speculative: a shadow token past the draft is judged by the bonus row, output unchanged",
          "[speculative][policy]") {
  const std::size_t vocab = 16;
  const recorded_run run = run_recorded(2, true, 60);
  const auto& [c, rounds, st, scored] = run;
  CHECK(st.probes <= 1);  // the last round may have no room for a draft: a shadow probe
  // The shadow token is drafted, never scored: each pass holds the last kept token and the
  // verified draft only.
  std::size_t passes = 0, judged = 0, agreed = 0, pos = 0;
  REQUIRE(rounds.size() == st.rounds);
  for (const recorded_round& r : rounds) {
    passes += r.round.target_batch;
    CHECK(r.round.target_batch == r.round.drafted + 1);
    if (r.round.drafted == 0) break;  // the budget's last plain step
    CHECK(r.round.probed);
    REQUIRE(r.tokens.size() == r.round.drafted + 1);
    CHECK(r.probabilities == (r.round.drafted + 1) * vocab);
    if (r.round.accepted == r.round.drafted && pos + r.round.drafted < c.tokens.size()) {
      // Accepted whole: the shadow token against the bonus token the target chose.
      REQUIRE(r.verdicts.size() == r.round.drafted + 1);
      const bool same = r.tokens[r.round.drafted] == c.tokens[pos + r.round.drafted];
      CHECK(r.verdicts[r.round.drafted] == (same ? 1.0 : 0.0));
      ++judged;
      agreed += same ? 1 : 0;
    } else {
      CHECK(r.verdicts.size() <= r.round.accepted + 1);
    }
    pos += r.round.accepted + 1;
  }
  CHECK(st.shadow_tokens == st.drafting_rounds);
  CHECK(scored == passes);
  CHECK(judged > 0);
  CHECK(agreed > 0);
  CHECK(agreed < judged);
}

TEST_CASE("speculative: a shadow token fits after the longest draft but one",
          "[speculative][policy]") {
  // The buffers hold max_draft_length draft tokens: a draft one shorter gets its shadow
  // token, a full-length draft none (and no error).
  for (const std::size_t g : {tandem::max_draft_length - 1, tandem::max_draft_length}) {
    INFO("length " << g);
    const recorded_run run = run_recorded(g, true, 3 * tandem::max_draft_length);
    REQUIRE_FALSE(run.rounds.empty());
    const recorded_round& first = run.rounds.front();
    CHECK(first.round.drafted == g);
    CHECK(first.tokens.size() == std::min(g + 1, tandem::max_draft_length));
    CHECK(first.round.probed == (g < tandem::max_draft_length));
  }
}

// A policy that drafts 1 token with a shadow token after it, every round.
struct always_shadow {
  std::size_t next() const { return 1; }
  tandem::draft_plan plan() const { return {1, true}; }
  void update(const tandem::draft_round&) {}
};

TEST_CASE("speculative: shadow tokens leave sampled tokens distributed as the target's",
          "[speculative][sampling]") {
  // Two tokens: a 1-token draft and its shadow token, judged against the bonus token's row
  // before the bonus is drawn from it.
  const double chi =
      first_two_chi_square([](std::size_t i) { return tandem_test::sampling_model_drafter(i); },
                           20000, {}, {}, always_shadow{});
  CHECK(chi < chi_square_15_at_0_001);
}

TEST_CASE("speculative: acceptance falls with draft position for a partly agreeing draft",
          "[speculative][stats]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{4});
  generation_options g;
  g.max_tokens = 200;
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1}, g, c) == errc::ok);
  const auto& st = dec.stats();
  CHECK(st.acceptance_rate() > 0.0);
  CHECK(st.acceptance_rate() < 1.0);
  CHECK(st.acceptance_at(0) >= st.acceptance_at(3));
  CHECK(st.drafted_at[0] >= st.drafted_at[3]);
}

TEST_CASE("speculative: a cost-model decoder drafts little against a disagreeing draft",
          "[speculative][policy]") {
  const std::size_t vocab = 16;
  mock_model target(mock_options{vocab, {}, successors(vocab, 5, 3)});
  mock_model dm(mock_options{vocab, {}, successors(vocab, 7, 2)});
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::cost_model_draft{});
  generation_options g;
  g.max_tokens = 300;
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1}, g, c) == errc::ok);
  CHECK(c.tokens.size() == 300);
  CHECK(dec.stats().drafted < 60);  // drafting stops soon; only probes remain
  // The probes are shadow probes: a draft call each, no longer target pass.
  CHECK(dec.stats().probes >= 3);
  CHECK(dec.stats().draft_calls >= dec.stats().probes);
  // And the output is target-only greedy decoding's.
  mock_model alone(mock_options{vocab, {}, successors(vocab, 5, 3)});
  auto s2 = greedy_chain();
  completion ref;
  REQUIRE(tandem::generate(alone, s2, std::vector<token_id>{1}, g, ref) == errc::ok);
  CHECK(c.tokens == ref.tokens);
}

// A virtual clock for the decoder (its statistics and the policy's timings), advanced by
// virtual_time_model's passes.
thread_local double virtual_now = 0.0;
double virtual_clock() noexcept { return virtual_now; }

// A mock model whose passes take virtual time: cost[b] for a pass over b tokens (cost[9]
// beyond 9), the first pass over each size b > 1 `stall` times that (another process on
// the core).
struct virtual_time_model {
  mock_model inner;
  std::array<double, 10> cost{};
  double stall = 1.0;
  std::array<bool, 10> stalled{};
  std::size_t vocab_size() const { return inner.vocab_size(); }
  std::size_t size() const { return inner.size(); }
  std::span<const float> logits() const { return inner.logits(); }
  void pass(std::size_t b) {
    const std::size_t i = std::min<std::size_t>(b, 9);
    double t = cost[i];
    if (i > 1 && !stalled[i]) {
      stalled[i] = true;
      t *= stall;
    }
    virtual_now += t;
  }
  errc append(std::span<const token_id> t) {
    pass(t.size());
    return inner.append(t);
  }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    pass(t.size());
    return inner.score(t, rows);
  }
  errc rewind(std::size_t n) { return inner.rewind(n); }
};

// The mid pair of tools/make-model-pair.sh in miniature: the target's greedy text loops
// over 3 tokens (0 1 2 0 1 2 ...), the draft gets the token after 2 wrong; the target's
// passes cost what the mid pair's 512x8 target costs on one CPU thread (ms), a draft token
// 0.15. Returns the virtual time of 300 tokens with `policy`.
template <class Policy>
double loop_pair_time(Policy policy, double stall) {
  const std::size_t vocab = 8;
  std::vector<token_id> target_succ = {1, 2, 0, 0, 0, 0, 0, 0};
  std::vector<token_id> draft_succ = target_succ;
  draft_succ[2] = 5;
  const std::array<double, 10> cost = {0.0, 6.5, 7.1, 8.0, 9.6, 10.1, 10.3, 12.0, 12.5, 13.3};
  virtual_time_model target{mock_model(mock_options{vocab, {}, target_succ}), cost, stall, {}};
  std::array<double, 10> draft_cost{};
  for (std::size_t b = 0; b < draft_cost.size(); ++b) draft_cost[b] = 0.15 * static_cast<double>(b);
  virtual_time_model dm{mock_model(mock_options{vocab, {}, draft_succ}), draft_cost, 1.0, {}};
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_options so;
  so.clock = virtual_clock;
  tandem::speculative_decoder dec(target, drafter, std::move(policy), so);
  generation_options g;
  g.max_tokens = 300;
  auto s = greedy_chain();
  completion c;
  virtual_now = 0.0;
  REQUIRE(dec.generate(s, std::vector<token_id>{0}, g, c) == errc::ok);
  REQUIRE(c.tokens.size() == 300);
  return virtual_now;
}

TEST_CASE("speculative: on a mid-like pair the cost-model decoder comes near the best fixed length",
          "[speculative][policy]") {
  // Target-only: 300 single passes (and the 1-token prompt). 2-token drafts lock onto the
  // positions the draft gets right (3 tokens a round); the cost model must find that,
  // with and without a stall on the first pass over each size (which used to switch
  // speculation off for good).
  const double alone = 301 * 6.5;
  for (const double stall : {1.0, 3.0}) {
    INFO("stall " << stall);
    double best = 0.0;
    for (std::size_t g = 1; g <= 8; ++g)
      best = std::max(best, alone / loop_pair_time(tandem::fixed_draft{g}, stall));
    CHECK(best > 2.0);
    tandem::cost_model_options o;
    o.max_length = 8;
    const double cost_model = alone / loop_pair_time(tandem::cost_model_draft(o), stall);
    // Before the stall guards: 0.96 of the best without stalls, 0.44 with them (0.99x
    // target-only, the figure issue 16 measured on the mid pair).
    CHECK(cost_model >= (stall > 1.0 ? 0.7 : 0.93) * best);
  }
}

// ---- Errors --------------------------------------------------------------------------------

// A target wrapper whose score and rewind fail on command.
struct faulty_target {
  mock_model inner;
  std::size_t fail_score_at = SIZE_MAX, fail_rewind_at = SIZE_MAX;
  std::size_t scores = 0, rewinds = 0;
  std::size_t vocab_size() const { return inner.vocab_size(); }
  std::size_t size() const { return inner.size(); }
  std::span<const float> logits() const { return inner.logits(); }
  errc append(std::span<const token_id> t) { return inner.append(t); }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    if (scores++ == fail_score_at) return errc::decode_failed;
    return inner.score(t, rows);
  }
  errc rewind(std::size_t n) {
    if (rewinds++ == fail_rewind_at) return errc::rewind_failed;
    return inner.rewind(n);
  }
};

// A model without score(): not a SpeculativeTarget.
struct no_score_model {
  std::size_t vocab_size() const { return 4; }
  std::size_t size() const { return 0; }
  std::span<const float> logits() const { return {}; }
  errc append(std::span<const token_id>) { return errc::ok; }
  errc rewind(std::size_t) { return errc::ok; }
};

TEST_CASE("speculative: targets without rewind or score are rejected at compile time",
          "[speculative][errors]") {
  // speculative_decoder<T, ...> static_asserts these with a message naming the missing
  // capability; the concept lets code test for it.
  STATIC_REQUIRE(tandem::SpeculativeTarget<mock_model>);
  STATIC_REQUIRE(tandem::SpeculativeTarget<faulty_target>);
  STATIC_REQUIRE_FALSE(tandem::SpeculativeTarget<tandem_test::mock_model_no_rewind>);
  STATIC_REQUIRE_FALSE(tandem::SpeculativeTarget<no_score_model>);
}

TEST_CASE("speculative: a drafter with another vocabulary is a vocab_mismatch before any work",
          "[speculative][errors]") {
  mock_model target(mock_options{16});
  mock_model dm(mock_options{8});
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter);
  auto s = greedy_chain();
  completion c;
  CHECK(dec.generate(s, std::vector<token_id>{1, 2}, {}, c) == errc::vocab_mismatch);
  CHECK(c.finish == finish_reason::error);
  CHECK(c.error == errc::vocab_mismatch);
  CHECK(target.size() == 0);
  CHECK(dm.size() == 0);
}

TEST_CASE("speculative: a policy or drafter with bad options is invalid_argument before any work",
          "[speculative][errors]") {
  const std::vector<token_id> prompt = {1, 2};
  const auto check_refused = [&](auto& dec, mock_model& target, const char* what) {
    INFO(what);
    auto s = greedy_chain();
    completion c;
    CHECK(dec.generate(s, prompt, {}, c) == errc::invalid_argument);
    CHECK(c.finish == finish_reason::error);
    CHECK(c.error == errc::invalid_argument);
    CHECK(c.tokens.empty());
    CHECK(target.size() == 0);
    CHECK(target.counters().append_calls == 0);
    CHECK(target.counters().score_calls == 0);
    CHECK(dec.stats().target_calls == 0);
    CHECK(dec.stats().draft_calls == 0);
  };
  {
    mock_model target(mock_options{16});
    tandem::prompt_lookup_drafter pl(16);
    tandem::cost_model_options o;
    o.max_length = 0;
    tandem::speculative_decoder dec(target, pl, tandem::cost_model_draft(o));
    check_refused(dec, target, "cost_model_draft");
  }
  {
    mock_model target(mock_options{16});
    tandem::prompt_lookup_drafter pl(16);
    tandem::speculative_decoder dec(target, pl, tandem::adaptive_draft(8, 1, 4));
    check_refused(dec, target, "adaptive_draft");
  }
  {
    mock_model target(mock_options{16});
    tandem::prompt_lookup_drafter pl(16, {0, 4});
    tandem::speculative_decoder dec(target, pl, tandem::fixed_draft{4});
    check_refused(dec, target, "prompt_lookup_drafter");
  }
  {
    mock_model target(mock_options{16});
    mock_model dm(mock_options{16});
    tandem::model_drafter drafter(dm, greedy_chain(), {2.0f});
    tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{4});
    check_refused(dec, target, "model_drafter");
    CHECK(dm.size() == 0);
  }
}

TEST_CASE("speculative: bad requests are rejected before the target is touched",
          "[speculative][errors]") {
  mock_model target(mock_options{16});
  tandem::prompt_lookup_drafter pl(16);
  tandem::speculative_decoder dec(target, pl);
  auto s = greedy_chain();
  completion c;
  CHECK(dec.generate(s, std::vector<token_id>{}, {}, c) == errc::empty_input);
  CHECK(dec.generate(s, std::vector<token_id>{1, 16}, {}, c) == errc::invalid_token);
  CHECK(target.size() == 0);
  CHECK(target.counters().append_calls == 0);
}

TEST_CASE("speculative: a failing target pass mid-run is reported and leaves a consistent target",
          "[speculative][errors]") {
  const mock_options to{16, {}, successors(16, 5, 3)};
  const std::vector<token_id> prompt = {1, 2, 3};
  generation_options g;
  g.max_tokens = 40;
  const completion want = target_only(to, prompt, g);
  for (std::size_t fail_at : {0u, 1u, 3u}) {
    faulty_target target{mock_model(to)};
    target.fail_score_at = fail_at;
    mock_model dm(mock_options{16, {}, partly_agreeing(successors(16, 5, 3), 4)});
    tandem::model_drafter drafter(dm, greedy_chain());
    tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3});
    auto s = greedy_chain();
    completion c;
    CHECK(dec.generate(s, prompt, g, c) == errc::decode_failed);
    CHECK(c.error == errc::decode_failed);
    CHECK(c.finish == finish_reason::error);
    // The kept tokens are a prefix of the target-only output, and the target holds the
    // prompt and every kept token but the last.
    REQUIRE(c.tokens.size() <= want.tokens.size());
    CHECK(std::equal(c.tokens.begin(), c.tokens.end(), want.tokens.begin()));
    CHECK(target.size() == prompt.size() + c.tokens.size() - 1);
    if (fail_at > 0) CHECK(!c.tokens.empty());
  }
}

TEST_CASE("speculative: a failing target rewind is reported as rewind_failed",
          "[speculative][errors]") {
  const mock_options to{16, {}, successors(16, 5, 3)};
  faulty_target target{mock_model(to)};
  target.fail_rewind_at = 0;
  mock_model dm(mock_options{16, {}, successors(16, 7, 2)});  // disagrees: rewinds needed
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3});
  auto s = greedy_chain();
  completion c;
  const std::vector<token_id> prompt = {1, 2};
  CHECK(dec.generate(s, prompt, {}, c) == errc::rewind_failed);
  CHECK(c.error == errc::rewind_failed);
  REQUIRE(c.tokens.size() == 1);  // the correction of the first round was kept
  // The target holds the rejected drafts it could not drop, and says so by its size.
  CHECK(target.size() == prompt.size() + 3);
}

// A rewindable draft model whose rewind fails on command.
struct faulty_draft_model {
  mock_model inner;
  std::size_t fail_rewind_at = SIZE_MAX, rewinds = 0;
  std::size_t vocab_size() const { return inner.vocab_size(); }
  std::size_t size() const { return inner.size(); }
  std::span<const float> logits() const { return inner.logits(); }
  errc append(std::span<const token_id> t) { return inner.append(t); }
  errc rewind(std::size_t n) {
    if (rewinds++ == fail_rewind_at) return errc::rewind_failed;
    return inner.rewind(n);
  }
};

TEST_CASE("speculative: a failing draft model is reported and the target stays consistent",
          "[speculative][errors]") {
  const mock_options to{16, {}, successors(16, 5, 3)};
  mock_model target(to);
  faulty_draft_model dm{mock_model(mock_options{16, {}, successors(16, 7, 2)})};
  dm.fail_rewind_at = 0;
  tandem::model_drafter drafter(dm, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3});
  auto s = greedy_chain();
  completion c;
  const std::vector<token_id> prompt = {1, 2};
  CHECK(dec.generate(s, prompt, {}, c) == errc::rewind_failed);
  REQUIRE(c.tokens.size() == 1);
  CHECK(target.size() == prompt.size() + c.tokens.size() - 1);
}

TEST_CASE("speculative: drafters returning bad tokens or too many are named errors",
          "[speculative][errors]") {
  mock_model target(mock_options{16});
  completion c;
  auto s = greedy_chain();
  {
    fixed_drafter bad{16, {3, 99}};
    tandem::speculative_decoder dec(target, bad, tandem::fixed_draft{2});
    CHECK(dec.generate(s, std::vector<token_id>{1}, {}, c) == errc::invalid_token);
  }
  struct greedy_drafter {
    std::size_t vocab_size() const { return 16; }
    tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) const {
      return tandem::draft_result{r.max_tokens + 1, false};
    }
  } liar;
  mock_model target2(mock_options{16});
  tandem::speculative_decoder dec(target2, liar, tandem::fixed_draft{2});
  CHECK(dec.generate(s, std::vector<token_id>{1}, {}, c) == errc::invalid_argument);
  CHECK(target2.size() == 0);
}

// ---- Allocation ---------------------------------------------------------------------------

TEST_CASE("speculative: a warm decoder allocates nothing per token", "[speculative][alloc]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
  drafter.reserve(256);
  tandem::speculative_decoder dec(target, drafter, tandem::adaptive_draft{});
  dec.reserve(256);
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = 100;
  completion c;
  const std::vector<token_id> prompt = {1, 2};
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  REQUIRE(target.rewind(target.size()) == errc::ok);
  tandem_test::allocation_scope scope;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  CHECK(scope.allocations() == 0);
  CHECK(c.tokens.size() == 100);
}

}  // namespace

TEST_CASE("speculative: generate() refuses a used target, continue_generation() goes on from it",
          "[speculative]") {
  const std::size_t vocab = 16;
  const auto target_succ = successors(vocab, 5, 3);
  mock_options to{vocab, {}, target_succ};
  mock_model target(to);
  mock_model draft_model(mock_options{vocab, {}, partly_agreeing(target_succ, 3)});
  tandem::model_drafter drafter(draft_model, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3});
  generation_options g;
  g.max_tokens = 12;
  auto s = greedy_chain();
  completion first, second;
  const std::vector<token_id> p1 = {1, 2}, p2 = {7};
  REQUIRE(dec.generate(s, p1, g, first) == errc::ok);
  const std::size_t held = target.size();
  REQUIRE(held > 0);

  // A second generate() would silently continue the first context: it is refused, and
  // the target is left as it was.
  CHECK(dec.generate(s, p2, g, second) == errc::context_not_empty);
  CHECK(second.finish == finish_reason::error);
  CHECK(second.error == errc::context_not_empty);
  CHECK(dec.last_error().code == errc::context_not_empty);
  CHECK(target.size() == held);

  // continue_generation() continues it, exactly as core's continue_generation() does on
  // the target alone fed the same tokens.
  REQUIRE(dec.continue_generation(s, p2, g, second) == errc::ok);
  mock_model alone(to);
  auto s2 = greedy_chain();
  std::vector<token_id> history = p1;
  history.insert(history.end(), first.tokens.begin(), first.tokens.end() - 1);
  REQUIRE(alone.append(history) == errc::ok);
  completion want;
  REQUIRE(tandem::continue_generation(alone, s2, p2, g, want) == errc::ok);
  CHECK(second.tokens == want.tokens);

  // After a rewind to empty, generate() works again.
  REQUIRE(target.rewind(target.size()) == errc::ok);
  CHECK(dec.generate(s, p2, g, second) == errc::ok);
}
