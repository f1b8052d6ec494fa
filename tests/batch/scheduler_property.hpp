// Test helper: the scheduler's seeded property test (requests join and leave in random
// orders, random priorities, caps, prefixes and cancellations; every request's tokens
// equal a lone generate() of the same prompt and sampler), shared by the mock, n-gram and
// llama.cpp tests; and a multi-sequence wrapper that counts the tokens each append feeds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/batch/scheduler.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/sampler.hpp"

namespace tandem_test {

/// Forwards every call to a MultiSequenceModel and counts the tokens its appends fed.
template <class M>
class counting_multi {
 public:
  explicit counting_multi(M& m) noexcept : m_(&m) {}
  std::size_t vocab_size() const noexcept { return m_->vocab_size(); }
  std::size_t max_sequences() const noexcept { return m_->max_sequences(); }
  std::size_t context_length() const noexcept { return tandem::context_length_of(*m_); }
  tandem::result<tandem::seq_id> open() { return m_->open(); }
  tandem::errc close(tandem::seq_id s) { return m_->close(s); }
  bool is_open(tandem::seq_id s) const noexcept { return m_->is_open(s); }
  std::size_t size(tandem::seq_id s) const noexcept { return m_->size(s); }
  tandem::errc append(std::span<const tandem::seq_tokens> batch) {
    const tandem::errc e = m_->append(batch);
    if (e == tandem::errc::ok) {
      ++passes;
      for (const auto& b : batch) tokens += b.tokens.size();
    }
    return e;
  }
  std::span<const float> logits(tandem::seq_id s) const noexcept { return m_->logits(s); }
  tandem::errc score(std::span<const tandem::seq_tokens> batch, std::span<const std::size_t> scored,
                     std::span<float> rows) requires tandem::MultiSequenceBatchScoring<M> {
    const tandem::errc e = m_->score(batch, scored, rows);
    if (e == tandem::errc::ok) {
      ++passes;
      for (const auto& b : batch) tokens += b.tokens.size();
    }
    return e;
  }
  tandem::errc rewind(tandem::seq_id s, std::size_t n) { return m_->rewind(s, n); }
  tandem::result<tandem::seq_id> fork(tandem::seq_id s) { return m_->fork(s); }
  /// Open sequences now.
  std::size_t open_count() const noexcept {
    std::size_t n = 0;
    for (std::size_t s = 0; s < m_->max_sequences(); ++s)
      n += m_->is_open(static_cast<tandem::seq_id>(s)) ? 1 : 0;
    return n;
  }

  std::size_t tokens = 0;  ///< tokens fed by successful appends
  std::size_t passes = 0;  ///< successful appends

 private:
  M* m_;
};

// An n-gram model trained on seeded random sentences with some structure.
inline tandem::ngram_model random_ngram(std::uint64_t seed, std::size_t vocab) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<tandem::token_id>> data(200);
  for (auto& s : data) {
    tandem::token_id t = static_cast<tandem::token_id>(2 + rng() % (vocab - 2));
    for (std::size_t n = 3 + rng() % 12; n > 0; --n) {
      s.push_back(t);
      t = static_cast<tandem::token_id>(2 + (t * 7 + static_cast<tandem::token_id>(rng() % 3)) %
                                                (vocab - 2));
    }
  }
  auto b = tandem::ngram_builder::create(tandem::ngram_options{3, vocab, 0, 1});
  REQUIRE(b);
  REQUIRE(b->add_sentences(data) == tandem::errc::ok);
  auto m = b->build();
  REQUIRE(m);
  return std::move(*m);
}

/// Generation options with a budget of `n` tokens.
inline tandem::generation_options budget(std::size_t n) {
  tandem::generation_options o;
  o.max_tokens = n;
  return o;
}

/// Steps `sch` until nothing is active (bounded), every step ok.
template <class Sch>
void run(Sch& sch) {
  for (int i = 0; i < 10000 && sch.active() > 0; ++i) REQUIRE(sch.step() == tandem::errc::ok);
  REQUIRE(sch.active() == 0);
}

/// Settings of one property run.
struct property_case {
  std::uint64_t seed = 1;
  std::size_t requests = 12;
  std::size_t max_prompt = 20;
  std::size_t max_new = 10;
  std::size_t max_requests = 5;
  bool compare_logprobs = true;  ///< bit for bit (false: tokens and finish only)
  bool greedy_only = false;      ///< every request greedy (else half of them sample)
};

/// As check_scheduler_equals_lone, with the scheduler made by
/// `make_scheduler(counting_multi<Multi>&, const scheduler_options&)` (returned by value:
/// e.g. a speculative_scheduler).
template <class Multi, class MakeLone, class MakeScheduler>
void check_scheduler_equals_lone_with(Multi& inner, MakeLone make_lone, const property_case& pc,
                                      MakeScheduler make_scheduler) {
  std::mt19937_64 rng(pc.seed);
  auto pick = [&](std::size_t lo, std::size_t hi) {  // in [lo, hi]
    return lo + static_cast<std::size_t>(rng() % (hi - lo + 1));
  };
  const auto vocab = static_cast<std::size_t>(inner.vocab_size());
  auto random_tokens = [&](std::size_t n) {
    std::vector<tandem::token_id> t(n);
    for (auto& x : t) x = static_cast<tandem::token_id>(pick(0, vocab - 1));
    return t;
  };

  struct req {
    std::vector<tandem::token_id> prompt;
    tandem::sampling_options sampling;
    tandem::generation_options options;
    tandem::token_id stop = 0;
    int priority = 0;
    tandem::request_id id = 0;
    bool submitted = false, taken = false, cancelled = false;
    tandem::completion got;
  };
  std::vector<req> rs(pc.requests);
  const auto shared = random_tokens(pick(2, pc.max_prompt / 2 + 2));
  for (std::size_t i = 0; i < rs.size(); ++i) {
    req& r = rs[i];
    if (pick(0, 1) == 1) {
      r.prompt = shared;
      const auto tail = random_tokens(pick(0, pc.max_prompt / 2));
      r.prompt.insert(r.prompt.end(), tail.begin(), tail.end());
    } else {
      r.prompt = random_tokens(pick(1, pc.max_prompt));
    }
    r.sampling.temperature = pick(0, 1) == 1 || pc.greedy_only ? 0.0f : 0.9f;
    r.sampling.seed = pc.seed * 1000 + i;
    r.options.max_tokens = pick(0, pc.max_new);
    r.stop = static_cast<tandem::token_id>(pick(0, vocab - 1));
    if (pick(0, 2) == 0) r.options.stop_tokens = std::span<const tandem::token_id>(&r.stop, 1);
    r.priority = static_cast<int>(pick(0, 2)) - 1;
  }

  counting_multi<Multi> model(inner);
  const tandem::scheduler_options so{
      .max_requests = pc.max_requests, .max_batch_tokens = pick(1, 24), .max_prefixes = 2};
  CAPTURE(pc.seed, so.max_batch_tokens);
  auto sch = make_scheduler(model, so);
  if (pick(0, 3) != 0) REQUIRE(sch.add_prefix(shared));

  std::size_t next = 0, taken = 0;
  for (std::size_t iter = 0; taken < rs.size(); ++iter) {
    REQUIRE(iter < 20000);
    // Join: a few new requests, while the scheduler has room.
    for (std::size_t j = pick(0, 2); j > 0 && next < rs.size(); --j) {
      req& r = rs[next];
      auto s = tandem::make_sampler(r.sampling, vocab);
      REQUIRE(s);
      auto id = sch.submit({r.prompt, std::move(*s), r.options, r.priority});
      if (!id) {
        REQUIRE(id.error() == tandem::errc::capacity_exceeded);
        break;
      }
      r.id = *id;
      r.submitted = true;
      ++next;
    }
    // Cancel one now and then.
    if (pick(0, 19) == 0 && next > 0) {
      req& r = rs[pick(0, next - 1)];
      if (!r.taken && sch.state(r.id) != tandem::request_state::finished) {
        REQUIRE(sch.cancel(r.id) == tandem::errc::ok);
        r.cancelled = true;
      }
    }
    REQUIRE(sch.step() == tandem::errc::ok);
    REQUIRE(model.open_count() <= inner.max_sequences());
    // Leave: take finished requests, not always at once.
    for (std::size_t i = 0; i < next; ++i) {
      req& r = rs[i];
      if (r.taken || sch.state(r.id) != tandem::request_state::finished || pick(0, 2) == 0)
        continue;
      REQUIRE(sch.take(r.id, r.got) == tandem::errc::ok);
      CHECK(sch.state(r.id) == tandem::request_state::unknown);
      r.taken = true;
      ++taken;
    }
  }
  CHECK(sch.active() == 0);

  for (std::size_t i = 0; i < rs.size(); ++i) {
    req& r = rs[i];
    CAPTURE(i, r.prompt.size(), r.options.max_tokens, r.sampling.temperature, r.cancelled);
    auto lone = make_lone();
    auto s = tandem::make_sampler(r.sampling, vocab);
    tandem::completion want;
    REQUIRE(tandem::generate(lone, *s, r.prompt, r.options, want) == tandem::errc::ok);
    CHECK(r.got.prompt_tokens == r.prompt.size());
    if (r.cancelled && r.got.finish == tandem::finish_reason::cancelled) {
      REQUIRE(r.got.tokens.size() <= want.tokens.size());
      CHECK(std::equal(r.got.tokens.begin(), r.got.tokens.end(), want.tokens.begin()));
      continue;
    }
    CHECK(r.got.tokens == want.tokens);
    CHECK(r.got.finish == want.finish);
    if (pc.compare_logprobs) CHECK(r.got.logprobs == want.logprobs);
  }
}

/// Runs `pc.requests` random requests through one scheduler over `model`, joining,
/// cancelling and leaving at random steps, and checks each against a lone generate() on
/// `make_lone()` with the same prompt, options and sampler: equal tokens and finish, or,
/// for a cancelled one, a prefix of the lone tokens.
template <class Multi, class MakeLone>
void check_scheduler_equals_lone(Multi& inner, MakeLone make_lone, const property_case& pc) {
  check_scheduler_equals_lone_with(
      inner, make_lone, pc, [](counting_multi<Multi>& m, const tandem::scheduler_options& so) {
        return tandem::scheduler<counting_multi<Multi>, tandem::sampler_chain>(m, so);
      });
}

}  // namespace tandem_test
