// Tests of the speculative decoder: exactness against target-only decoding (greedy token
// for token, sampling in distribution), the generation-loop rules, error paths,
// statistics and allocation, over mock models and built-in n-gram model pairs.
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
#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;

tandem::sampler_chain greedy_chain() {
  tandem::sampler_chain c(0);
  REQUIRE(c.add(tandem::sampling::greedy{}) == errc::ok);
  return c;
}

tandem::sampler_chain temperature_chain(float t, std::uint64_t seed) {
  tandem::sampler_chain c(seed);
  REQUIRE(c.add(tandem::sampling::temperature{t}) == errc::ok);
  REQUIRE(c.add(tandem::sampling::dist{}) == errc::ok);
  return c;
}

// A successor table over `vocab` tokens: t -> (t * mul + add) % vocab.
std::vector<token_id> successors(std::size_t vocab, std::size_t mul, std::size_t add) {
  std::vector<token_id> s(vocab);
  for (std::size_t t = 0; t < vocab; ++t) s[t] = static_cast<token_id>((t * mul + add) % vocab);
  return s;
}

// A draft table that agrees with `target` except where (t % every == 0).
std::vector<token_id> partly_agreeing(const std::vector<token_id>& target, std::size_t every) {
  std::vector<token_id> s = target;
  for (std::size_t t = 0; t < s.size(); t += every)
    s[t] = static_cast<token_id>((static_cast<std::size_t>(s[t]) + 3) % s.size());
  return s;
}

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

// The exact probabilities of the mock model at temperature t after (n, last).
std::vector<double> mock_probs(const mock_model& m, std::size_t n, token_id last, float t) {
  std::vector<float> l(m.vocab_size());
  m.fill(l, n, last);
  std::vector<double> p(l.size());
  double z = 0;
  for (std::size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp(static_cast<double>(l[i]) / t);
  for (double& x : p) x /= z;
  return p;
}

// A drafter that always proposes the same tokens, without probabilities.
struct fixed_drafter {
  std::size_t vocab;
  std::vector<token_id> proposal;
  std::size_t vocab_size() const noexcept { return vocab; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) const {
    const std::size_t n = std::min(r.max_tokens, proposal.size());
    std::copy_n(proposal.begin(), n, r.tokens.begin());
    return tandem::draft_result{n, false};
  }
};
static_assert(tandem::Drafter<fixed_drafter>);

// Chi-square statistic of the first two tokens' joint counts against the target's exact
// joint distribution.
template <class MakeDrafter>
double first_two_chi_square(MakeDrafter make_drafter, std::size_t runs) {
  const std::size_t vocab = 4;
  const float temp = 2.0f;
  const mock_options to{vocab, {}, successors(vocab, 1, 1)};
  const std::vector<token_id> prompt = {0, 1};
  mock_model ref(to);
  const auto p1 = mock_probs(ref, prompt.size(), prompt.back(), temp);
  std::vector<double> expected(vocab * vocab);
  for (std::size_t a = 0; a < vocab; ++a) {
    const auto p2 = mock_probs(ref, prompt.size() + 1, static_cast<token_id>(a), temp);
    for (std::size_t b = 0; b < vocab; ++b) expected[a * vocab + b] = p1[a] * p2[b] * runs;
  }
  std::vector<double> seen(vocab * vocab, 0.0);
  generation_options g;
  g.max_tokens = 2;
  for (std::size_t i = 0; i < runs; ++i) {
    mock_model target(to);
    auto drafter = make_drafter(i);
    tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3},
                                    tandem::speculative_options{1000 + i});
    auto s = temperature_chain(temp, 7 * i + 1);
    completion c;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    REQUIRE(c.tokens.size() == 2);
    seen[static_cast<std::size_t>(c.tokens[0]) * vocab + static_cast<std::size_t>(c.tokens[1])] +=
        1;
  }
  double chi = 0;
  for (std::size_t i = 0; i < seen.size(); ++i)
    chi += (seen[i] - expected[i]) * (seen[i] - expected[i]) / expected[i];
  return chi;
}

// 15 degrees of freedom: P(chi-square > 37.70) = 0.001.
constexpr double chi_square_15_at_0_001 = 37.70;

TEST_CASE("speculative: sampled first tokens follow the target's distribution (draft with q)",
          "[speculative][sampling]") {
  // The draft model favours another successor and samples with the target's settings.
  struct holder {
    mock_model model;
    tandem::model_drafter<mock_model> drafter;
    explicit holder(std::size_t i)
        : model(mock_options{4, {}, successors(4, 1, 2)}),
          drafter(model, temperature_chain(2.0f, 99 + i)) {}
    std::size_t vocab_size() const { return drafter.vocab_size(); }
    tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) {
      return drafter.draft(r);
    }
  };
  const double chi = first_two_chi_square([](std::size_t i) { return holder(i); }, 20000);
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
  // Sanity of the statistic: if every run kept the proposal (3, 3), as a verifier that
  // always accepts would, the statistic is far above the critical value.
  const std::size_t runs = 20000;
  mock_model ref(mock_options{4, {}, successors(4, 1, 1)});
  const auto p1 = mock_probs(ref, 2, 1, 2.0f);
  double chi = 0;
  for (std::size_t a = 0; a < 4; ++a) {
    const auto p2 = mock_probs(ref, 3, static_cast<token_id>(a), 2.0f);
    for (std::size_t b = 0; b < 4; ++b) {
      const double e = p1[a] * p2[b] * runs;
      const double seen = a == 3 && b == 3 ? static_cast<double>(runs) : 0.0;
      chi += (seen - e) * (seen - e) / e;
    }
  }
  CHECK(chi > chi_square_15_at_0_001);
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

TEST_CASE("speculative: a probe the policy plans is judged by the plain step, output unchanged",
          "[speculative][policy]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  const std::vector<token_id> prompt = {1};
  generation_options g;
  g.max_tokens = 40;
  const completion want = target_only(mock_options{vocab, {}, succ}, prompt, g);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
  std::vector<recorded_round> rounds;
  tandem::speculative_decoder dec(target, drafter, recording_policy{0, true, &rounds});
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  CHECK(c.tokens == want.tokens);
  const auto& st = dec.stats();
  CHECK(st.probes == st.rounds);
  CHECK(st.draft_calls == st.probes);
  CHECK(st.drafted == 0);
  CHECK(target.counters().scored_tokens == st.rounds);  // plain steps only
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

TEST_CASE("speculative: adaptive draft length grows by 2 on full acceptance and shrinks by 1",
          "[speculative][policy]") {
  tandem::adaptive_draft a(4, 1, 9);
  a.update({4, 4, 4, 0, 0, 5});
  CHECK(a.next() == 6);
  a.update({6, 6, 6, 0, 0, 7});
  CHECK(a.next() == 8);
  a.update({8, 8, 8, 0, 0, 9});
  CHECK(a.next() == 9);
  a.update({9, 9, 2, 0, 0, 10});
  CHECK(a.next() == 8);
  for (int i = 0; i < 20; ++i) a.update({8, 8, 0, 0, 0, 9});
  CHECK(a.next() == 1);
}

TEST_CASE("speculative: with a batch-independent target cost the cost model is Leviathan's formula",
          "[speculative][policy]") {
  tandem::cost_model_options o;
  o.max_length = 16;
  o.decay = 1.0;
  o.per_position = false;
  tandem::cost_model_draft cm(o);
  // Acceptance 0.8 (4 of 5 per round), draft cost 0.1 per token, target cost 1 per pass
  // whatever the batch: Leviathan's formula with c = 0.1.
  for (int i = 0; i < 400; ++i) cm.update({5, 5, 4, 0.5, 1.0, 6});
  const double a = cm.acceptance();
  CHECK(a == Approx(0.8).margin(0.01));
  CHECK(cm.target_cost(1) == Approx(1.0));
  CHECK(cm.target_cost(17) == Approx(1.0));
  CHECK(cm.draft_cost() == Approx(0.1));
  std::size_t best = 0;
  double best_s = 1.0;
  for (std::size_t gg = 1; gg <= 16; ++gg) {
    const double s = (1 - std::pow(a, gg + 1.0)) / ((1 - a) * (gg * 0.1 + 1));
    CHECK(cm.predicted_speedup(gg) == Approx(s).epsilon(1e-9));
    if (s > best_s) {
      best_s = s;
      best = gg;
    }
  }
  CHECK(cm.next() == best);
  CHECK(best >= 3);
}

TEST_CASE("speculative: the cost model learns how the target's cost grows with the batch",
          "[speculative][policy]") {
  tandem::cost_model_options o;
  o.decay = 1.0;
  tandem::cost_model_draft cm(o);
  // Passes of 1, 3 and 9 tokens cost 2, 4 and 10: measured sizes are exact, sizes between
  // them interpolated, sizes beyond the slope of the fitted line.
  for (int i = 0; i < 5; ++i) {
    cm.update({0, 0, 0, 0.0, 2.0, 1});
    cm.update({2, 2, 2, 0.02, 4.0, 3});
    cm.update({8, 8, 8, 0.08, 10.0, 9});
  }
  CHECK(cm.target_cost(1) == Approx(2.0));
  CHECK(cm.target_cost(3) == Approx(4.0));
  CHECK(cm.target_cost(2) == Approx(3.0));
  CHECK(cm.target_cost(6) == Approx(7.0));
  CHECK(cm.target_cost(9) == Approx(10.0));
  CHECK(cm.target_cost(11) > 10.0);
  // Every draft accepted: E(g) near g + 1, so the speedup is (g + 1) T(1) / (g d + T(g + 1)).
  CHECK(cm.predicted_speedup(8) == Approx(9.0 * 2.0 / (8 * 0.01 + 10.0)).epsilon(0.05));
}

TEST_CASE("speculative: the cost model guesses sizes above the measured ones optimistically",
          "[speculative][policy]") {
  tandem::cost_model_options o;
  o.decay = 1.0;
  tandem::cost_model_draft cm(o);
  // Only 1- and 2-token passes measured (2 and 3): above them half the slope, 3 + 0.5 (b - 2).
  for (int i = 0; i < 3; ++i) {
    cm.update({0, 0, 0, 0.0, 2.0, 1});
    cm.update({1, 1, 1, 0.01, 3.0, 2});
  }
  CHECK(cm.target_cost(2) == Approx(3.0));
  CHECK(cm.target_cost(6) == Approx(5.0));
  // Once a size is measured the guess is gone: the 6-token pass costs 4.
  cm.update({5, 5, 5, 0.05, 4.0, 6});
  CHECK(cm.target_cost(6) == Approx(4.0));
  CHECK(cm.target_cost(4) == Approx(3.5));
}

TEST_CASE("speculative: the cost model finds long drafts behind a dear first extra token",
          "[speculative][policy]") {
  // A target whose second token costs 0.8 of a pass and every further one 0.1 (a CPU
  // backend switching kernels): drafts of 1 token lose (acceptance 0.9, 1.9 / 1.8 per
  // pass cost), drafts of 8 win (E = 6.1 tokens for T(9) = 2.5). Judged from 1- and
  // 2-token passes alone, the step looks like the slope and long drafts never get tried.
  tandem::cost_model_options o;
  o.max_length = 8;
  tandem::cost_model_draft cm(o);
  tandem::rng r(3);
  std::size_t early = 0, last = 0;  // tokens drafted in rounds 2..31; the last length
  for (int i = 0; i < 300; ++i) {
    const std::size_t g = cm.next();
    std::size_t acc = 0;
    while (acc < g && r.uniform() < 0.9) ++acc;
    const double t = 1.0 + (g > 0 ? 0.8 + 0.1 * static_cast<double>(g - 1) : 0.0);
    cm.update({g, g, acc, 0.001 * static_cast<double>(g), t, g + 1});
    if (i >= 2 && i < 32) early += g;
    last = g;
  }
  CHECK(early >= 4 * 30);  // long drafts from the start, not after a wait
  CHECK(last >= 6);
  CHECK(cm.best_predicted_speedup() > 1.8);
}

// Runs a cost_model_draft for `rounds` rounds against a simulated pair, as the decoder
// would: each draft token is accepted with probability `a` (independently, seeded), a
// target pass over b tokens costs t0 + t1 (b - 1), a draft token costs d; a round
// without a draft carries the shadow probe the policy asks for (one draft token, judged
// with the same chance a), unless `carry_shadows` is false (a decoder without them).
// Returns the draft lengths chosen; `shadows`, when given, gets the rounds that carried a
// shadow probe.
std::vector<std::size_t> simulate(tandem::cost_model_draft& cm, double a, double t0, double t1,
                                  double d, std::size_t rounds, std::uint64_t seed = 1,
                                  std::vector<std::size_t>* shadows = nullptr,
                                  bool carry_shadows = true) {
  tandem::rng r(seed);
  std::vector<std::size_t> lengths;
  const std::array<token_id, 1> probe_token = {0};
  std::array<double, 1> verdict = {0.0};
  for (std::size_t i = 0; i < rounds; ++i) {
    const std::size_t g = cm.next();
    tandem::draft_round round{
        g, g, 0, d * static_cast<double>(g), t0 + t1 * static_cast<double>(g), g + 1};
    while (round.accepted < g && r.uniform() < a) ++round.accepted;
    if (carry_shadows && cm.plan().probe) {
      REQUIRE(g == 0);
      round.probed = true;
      round.tokens = probe_token;
      verdict[0] = r.uniform() < a ? 1.0 : 0.0;
      round.verdicts = verdict;
      round.draft_seconds = d;
      if (shadows != nullptr) shadows->push_back(i);
    }
    cm.update(round);
    lengths.push_back(g);
  }
  return lengths;
}

TEST_CASE("speculative: the cost model drafts long when verification is flat and drafts agree",
          "[speculative][policy]") {
  tandem::cost_model_options o;
  o.max_length = 12;
  tandem::cost_model_draft cm(o);
  std::vector<std::size_t> shadows;
  const auto lengths = simulate(cm, 0.995, 1.0, 0.0, 0.001, 300, 1, &shadows);
  CHECK(cm.next() >= 10);
  CHECK(cm.best_predicted_speedup() > 5.0);
  // The start-up: one round without a draft (it measures T(1)), four with a shadow probe
  // each (a first acceptance for a draft token apiece); then real drafts.
  CHECK(lengths[0] == 0);
  CHECK(shadows == std::vector<std::size_t>{1, 2, 3, 4});
  CHECK(lengths[5] >= 1);
}

TEST_CASE("speculative: the cost model drafts short when verification cost grows steeply",
          "[speculative][policy]") {
  // Acceptance 0.8. Flat target: long drafts pay. A target whose pass grows by half a
  // single pass per extra token: (1 + a + a^2) / (1 + 0.5 * 2) is about the best, g near 2.
  tandem::cost_model_options o;
  o.max_length = 16;
  tandem::cost_model_draft flat(o), steep(o);
  const auto lf = simulate(flat, 0.8, 1.0, 0.0, 0.01, 600);
  const auto ls = simulate(steep, 0.8, 1.0, 0.5, 0.01, 600);
  double mean_flat = 0, mean_steep = 0;
  for (std::size_t i = 300; i < 600; ++i) {
    mean_flat += static_cast<double>(lf[i]) / 300.0;
    mean_steep += static_cast<double>(ls[i]) / 300.0;
  }
  CHECK(mean_flat >= 6.0);
  CHECK(mean_steep >= 1.0);
  CHECK(mean_steep <= 3.5);
  CHECK(steep.target_cost(9) == Approx(5.0).epsilon(0.05));
  CHECK(steep.best_predicted_speedup() > 1.0);
  CHECK(steep.best_predicted_speedup() < 1.4);
}

TEST_CASE("speculative: the cost model drafts to the depth at which drafts typically fail",
          "[speculative][policy]") {
  // A draft that is right for 3 tokens and then wrong (a repeating text the draft gets
  // wrong every 4th token): the best draft is 3 tokens, accepted whole, plus the bonus.
  tandem::cost_model_options o;
  o.max_length = 8;
  tandem::cost_model_draft cm(o);
  std::size_t threes = 0;
  for (int i = 0; i < 200; ++i) {
    const std::size_t g = cm.next();
    if (i >= 100 && g == 3) ++threes;
    cm.update({g, g, std::min<std::size_t>(g, 3), 0.01 * static_cast<double>(g),
               1.0 + 0.2 * static_cast<double>(g), g + 1});
  }
  // Mostly 3; now and then 4 again, as old failures are forgotten (decay).
  CHECK(threes >= 80);
  CHECK(cm.acceptance_at(0) > 0.9);
  // The pooled geometric model would have settled elsewhere.
  o.per_position = false;
  tandem::cost_model_draft pooled(o);
  for (int i = 0; i < 200; ++i) {
    const std::size_t g = pooled.next();
    pooled.update({g, g, std::min<std::size_t>(g, 3), 0.01 * static_cast<double>(g),
                   1.0 + 0.2 * static_cast<double>(g), g + 1});
  }
  CHECK(pooled.next() != 3);
}

TEST_CASE("speculative: the cost model turns speculation off when it cannot pay",
          "[speculative][policy]") {
  tandem::cost_model_options o;
  o.probe_interval = 8;
  o.probe_budget = 0.0;  // the waits below are the doubling alone
  tandem::cost_model_draft cm(o);
  // Nothing is ever accepted, and a draft token costs half a target pass.
  std::vector<std::size_t> shadows;
  const auto lengths = simulate(cm, 0.0, 1.0, 0.1, 0.5, 300, 1, &shadows);
  CHECK(cm.best_predicted_speedup() <= 1.0);
  // Round 0 measures the target alone, rounds 1 to 4 carry shadow probes that fail; no
  // real draft is ever made, and the probes (4 shadow probes in a row each) grow ever
  // sparser: 8, then 16, 32, 64, 128 rounds between them.
  CHECK(std::all_of(lengths.begin(), lengths.end(), [](std::size_t g) { return g == 0; }));
  REQUIRE(shadows.size() % 4 == 0);
  std::vector<std::size_t> starts;  // first round of each probe
  for (std::size_t k = 0; k < shadows.size(); k += 4) {
    CHECK(shadows[k + 3] == shadows[k] + 3);
    starts.push_back(shadows[k]);
  }
  REQUIRE(starts.size() >= 4);
  CHECK(starts.size() <= 7);
  CHECK(starts[0] == 1);
  for (std::size_t k = 1; k < starts.size(); ++k)
    CHECK(starts[k] - (starts[k - 1] + 4) == (std::size_t{8} << (k - 1)));
}

TEST_CASE("speculative: without shadow probes the cost model probes with one-token drafts",
          "[speculative][policy]") {
  // A decoder (or a wrapper) that does not carry the shadow probe asked for: the policy
  // notices and probes with real 1-token drafts, on the same doubling schedule.
  tandem::cost_model_options o;
  o.probe_interval = 8;
  o.probe_budget = 0.0;
  tandem::cost_model_draft cm(o);
  const auto lengths = simulate(cm, 0.0, 1.0, 0.1, 0.5, 300, 1, nullptr, false);
  std::vector<std::size_t> drafting;  // rounds that drafted
  for (std::size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] > 0) drafting.push_back(i);
  CHECK(!cm.plan().probe);
  REQUIRE(drafting.size() >= 4);
  CHECK(drafting[0] == 2);  // round 1 asked for a shadow probe that did not come
  for (std::size_t k = 0; k < drafting.size(); ++k) CHECK(drafting[k] > 0);
  for (std::size_t k = 1; k < drafting.size(); ++k)
    CHECK(drafting[k] - drafting[k - 1] - 1 == (std::size_t{8} << (k - 1)));
}

TEST_CASE("speculative: probes that are dear against a plain step wait longer",
          "[speculative][policy]") {
  // Without shadow probes a probe costs T(2) - T(1) + d = 0.5 + 0.1 of a plain step: with
  // a 2 % budget the first wait is at least 30 rounds, where probe_interval alone says 8.
  tandem::cost_model_options o;
  o.probe_interval = 8;
  o.probe_budget = 0.02;
  tandem::cost_model_draft cm(o);
  const auto lengths = simulate(cm, 0.0, 1.0, 0.5, 0.1, 400, 1, nullptr, false);
  std::vector<std::size_t> drafting;
  for (std::size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] > 0) drafting.push_back(i);
  REQUIRE(drafting.size() >= 2);
  CHECK(drafting[1] - drafting[0] - 1 >= 30);
  double time = 0.0;
  for (std::size_t g : lengths) time += 1.0 + 0.6 * static_cast<double>(g);
  CHECK(400.0 / time > 0.98);
  // A probe of 4 shadow probes costs 4 draft tokens (0.4): the budget wants 20 rounds
  // between probes, more than probe_interval (8).
  tandem::cost_model_draft shadowed(o);
  std::vector<std::size_t> shadows;
  (void)simulate(shadowed, 0.0, 1.0, 0.5, 0.1, 100, 1, &shadows);
  REQUIRE(shadows.size() >= 8);
  CHECK(shadows[3] == 4);
  CHECK(shadows[4] - shadows[3] - 1 == 20);
}

TEST_CASE("speculative: against a draft that never agrees the cost model costs almost nothing",
          "[speculative][policy]") {
  // Simulated time of 1,000 rounds (one token each, no real draft is ever made) against
  // target-only time: only the shadow probes' draft tokens are extra.
  for (const double t1 : {0.05, 0.5}) {
    tandem::cost_model_draft cm;
    std::vector<std::size_t> shadows;
    const auto lengths = simulate(cm, 0.0, 1.0, t1, 0.1, 1000, 1, &shadows);
    double time = 0.1 * static_cast<double>(shadows.size());
    for (std::size_t g : lengths)
      time += 1.0 + t1 * static_cast<double>(g) + 0.1 * static_cast<double>(g);
    CHECK(1000.0 / time > 0.995);
    CHECK(std::all_of(lengths.begin(), lengths.end(), [](std::size_t g) { return g == 0; }));
  }
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

// ---- Drafters ---------------------------------------------------------------------------

TEST_CASE("speculative: prompt lookup copies what followed the latest longest match",
          "[speculative][drafter]") {
  tandem::prompt_lookup_drafter pl(16, {1, 3});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {5, 6, 7, 1, 5, 6, 9, 2, 5, 6};
  auto r = pl.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 4);  // "5 6" last seen before "9 2 5 6"
  CHECK(out == std::array<token_id, 4>{9, 2, 5, 6});
  CHECK_FALSE(r->has_probabilities);
  const std::vector<token_id> none = {1, 2, 3};
  r = pl.draft({none, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
}

TEST_CASE("speculative: p_min stops the model drafter on an unsure draft",
          "[speculative][drafter]") {
  mock_model dm(mock_options{16});  // top probability about 0.85
  tandem::model_drafter drafter(dm, greedy_chain(), {0.9f});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {1};
  auto r = drafter.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
  REQUIRE(drafter.set_p_min(0.5f) == errc::ok);
  r = drafter.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 4);
  CHECK(drafter.set_p_min(1.5f) == errc::invalid_argument);
}

TEST_CASE("speculative: p_min over the top k tokens renormalises among them, as llama.cpp's draft",
          "[speculative][drafter]") {
  // Logits 3, -0.25, -0.5, ...: the top probability is about 0.85 over the 16 tokens and
  // about 0.96 over the best 2 (the best of 1 is always 1).
  mock_model dm(mock_options{16});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {1};
  for (const auto& [k, drafted] :
       {std::pair<std::size_t, std::size_t>{0, 0}, {2, 4}, {16, 0}, {1, 4}}) {
    mock_model m(mock_options{16});
    tandem::model_drafter drafter(m, greedy_chain(), {0.9f, k});
    const auto r = drafter.draft({h, 4, out, {}});
    REQUIRE(r.has_value());
    CHECK(r->count == drafted);
  }
  tandem::model_drafter strict(dm, greedy_chain(), {0.97f, 2});
  const auto r = strict.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
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
