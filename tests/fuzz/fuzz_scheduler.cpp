// Fuzz target for the continuous-batching scheduler: the input is a script of operations
// (submit, cancel, step under a prefill cap changed at random, take, add and remove a
// shared prefix) over a mock multi-sequence model whose sizes, batch-token cap and injected
// decode failure come from the first bytes. Invariants checked after every operation: the
// model never holds more sequences than the scheduler's running requests and prefixes,
// step() fails only with the injected decode_failed, a step that decodes feeds at most
// max_prefill_tokens prompt tokens, and every taken completion respects its budget and is
// the lone greedy run's output (exactly when it ended by length or stop token, a prefix
// otherwise). Half the inputs run the same script through the speculative scheduler with a
// draft mock (its failures never fail a step; it holds at most one sequence per request
// not taken and per prefix).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <vector>

#include "common/mock_model.hpp"
#include "tandem/batch/scheduler.hpp"
#include "tandem/batch/speculative.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::errc;
using tandem::finish_reason;
using tandem::request_state;
using tandem::token_id;

void check(bool ok) {
  if (!ok) std::abort();
}

struct reader {
  std::span<const std::uint8_t> in;
  std::size_t at = 0;
  bool done() const { return at >= in.size(); }
  std::size_t next(std::size_t n) { return done() ? 0 : in[at++] % n; }  // in [0, n)
};

struct live_request {
  tandem::request_id id = 0;
  std::vector<token_id> prompt;
  std::size_t max_tokens = 0;
  token_id stop = 0;
  bool has_stop = false;
};

template <class Sch>
int run_script(reader& r, Sch& sch, const tandem_test::mock_multi_model& model,
               const tandem_test::mock_multi_model* draft,
               const tandem_test::mock_multi_options& mo, std::size_t max_sequences);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader r{std::span<const std::uint8_t>(data, size)};
  const std::size_t max_sequences = 1 + r.next(5);
  tandem_test::mock_multi_options mo;
  mo.max_sequences = max_sequences;
  mo.model.context_length = 8 + r.next(40);
  if (r.next(4) == 0) mo.model.fail_at_append = r.next(32);
  tandem_test::mock_multi_model model(mo);
  const tandem::scheduler_options so{.max_requests = 1 + r.next(6),
                                     .max_batch_tokens = 1 + r.next(20),
                                     .max_prefixes = 1 + r.next(2)};
  // Half the inputs drive the speculative scheduler (batch/speculative.hpp) instead, with a
  // draft mock of its own sizes, table (the target's, or one that disagrees on a third of
  // the tokens), injected failure and fixed draft length (0: the cost model).
  const bool speculative = r.next(2) == 1;
  tandem_test::mock_multi_options dmo;
  dmo.max_sequences = 1 + r.next(6);
  dmo.model.context_length = 4 + r.next(48);
  if (r.next(2) == 0)
    for (std::size_t t = 0; t < dmo.model.vocab; ++t)
      dmo.model.successor.push_back(static_cast<token_id>((t + (t % 3 == 0 ? 2 : 1)) % 16));
  if (r.next(4) == 0) dmo.model.fail_at_append = r.next(32);
  tandem_test::mock_multi_model draft(dmo);
  tandem::speculative_scheduler_options spec;
  spec.fixed_draft = r.next(5);
  if (speculative) {
    tandem::speculative_scheduler<tandem_test::mock_multi_model, tandem_test::mock_multi_model,
                                  tandem::greedy_sampler>
        sch(model, draft, so, spec);
    return run_script(r, sch, model, &draft, mo, max_sequences);
  }
  tandem::scheduler<tandem_test::mock_multi_model, tandem::greedy_sampler> sch(model, so);
  return run_script(r, sch, model, nullptr, mo, max_sequences);
}

namespace {

// The operations of one input over scheduler `sch` (plain or speculative; `draft` is the
// speculative one's draft model, else null).
template <class Sch>
int run_script(reader& r, Sch& sch, const tandem_test::mock_multi_model& model,
               const tandem_test::mock_multi_model* draft,
               const tandem_test::mock_multi_options& mo, std::size_t max_sequences) {
  std::vector<live_request> live;
  std::vector<tandem::prefix_id> prefixes;
  tandem::completion out;
  // Stop tokens are viewed by the scheduler until a request is taken: they live here.
  token_id stops[16];
  for (token_id t = 0; t < 16; ++t) stops[t] = t;

  while (!r.done()) {
    switch (r.next(6)) {
      case 0: {  // submit
        live_request q;
        q.prompt.resize(r.next(12));  // may be empty: rejected
        for (token_id& t : q.prompt) t = static_cast<token_id>(r.next(17));  // 16: invalid
        q.max_tokens = r.next(10);
        q.has_stop = r.next(2) == 1;
        q.stop = static_cast<token_id>(r.next(16));
        tandem::generation_options o;
        o.max_tokens = q.max_tokens;
        if (q.has_stop) o.stop_tokens = std::span<const token_id>(&stops[q.stop], 1);
        auto id = sch.submit({q.prompt, {}, o, static_cast<int>(r.next(3))});
        if (id) {
          q.id = *id;
          live.push_back(std::move(q));
        }
        break;
      }
      case 1:  // cancel
        if (!live.empty()) check(sch.cancel(live[r.next(live.size())].id) == errc::ok);
        break;
      case 2: {  // step, sometimes under a new prefill cap (0: none while a request decodes)
        if (r.next(4) == 0)
          sch.set_max_prefill_tokens(r.next(3) == 0 ? std::numeric_limits<std::size_t>::max()
                                                    : r.next(4));
        const tandem::scheduler_stats before = sch.stats();
        const errc e = sch.step();
        check(e == errc::ok || e == errc::decode_failed);
        if (sch.stats().decode_tokens > before.decode_tokens)
          check(sch.stats().prefill_tokens - before.prefill_tokens <=
                sch.options().max_prefill_tokens);
        break;
      }
      case 3: {  // take
        if (live.empty()) break;
        const std::size_t i = r.next(live.size());
        live_request& q = live[i];
        const bool finished = sch.state(q.id) == request_state::finished;
        const errc e = sch.take(q.id, out);
        check(finished ? e == errc::ok : e == errc::invalid_argument);
        if (!finished) break;
        check(out.tokens.size() <= q.max_tokens);
        check(out.prompt_tokens == q.prompt.size());
        tandem_test::mock_options lo;
        lo.context_length = mo.model.context_length;
        tandem_test::mock_model lone(lo);
        tandem::greedy_sampler g;
        tandem::generation_options o;
        o.max_tokens = q.max_tokens;
        if (q.has_stop) o.stop_tokens = std::span<const token_id>(&stops[q.stop], 1);
        tandem::completion want;
        check(tandem::generate(lone, g, q.prompt, o, want) == errc::ok);
        check(out.tokens.size() <= want.tokens.size());
        for (std::size_t k = 0; k < out.tokens.size(); ++k) check(out.tokens[k] == want.tokens[k]);
        if (out.finish == finish_reason::length || out.finish == finish_reason::stop_token ||
            out.finish == finish_reason::context_full)
          check(out.tokens == want.tokens && out.finish == want.finish);
        check(sch.state(q.id) == request_state::unknown);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 4: {  // add a prefix
        std::vector<token_id> p(r.next(8));
        for (token_id& t : p) t = static_cast<token_id>(r.next(16));
        if (auto id = sch.add_prefix(p)) prefixes.push_back(*id);
        break;
      }
      case 5:  // remove a prefix
        if (!prefixes.empty()) {
          const std::size_t i = r.next(prefixes.size());
          check(sch.remove_prefix(prefixes[i]) == errc::ok);
          prefixes.erase(prefixes.begin() + static_cast<std::ptrdiff_t>(i));
        }
        break;
    }
    // Sequences held: one per running request and live prefix, never more than the model has.
    std::size_t running = 0, open = 0;
    for (const live_request& q : live) {
      const request_state st = sch.state(q.id);
      check(st != request_state::unknown);
      running += st == request_state::prefilling || st == request_state::decoding ? 1 : 0;
    }
    for (std::size_t s = 0; s < max_sequences; ++s)
      open += model.is_open(static_cast<tandem::seq_id>(s)) ? 1 : 0;
    check(open == running + prefixes.size());
    check(sch.active() <= live.size());
    if (draft != nullptr) {  // draft sequences: at most one per request not taken, and prefix
      std::size_t drafts = 0;
      for (std::size_t s = 0; s < draft->max_sequences(); ++s)
        drafts += draft->is_open(static_cast<tandem::seq_id>(s)) ? 1 : 0;
      check(drafts <= live.size() + prefixes.size());
    }
  }
  return 0;
}

}  // namespace
