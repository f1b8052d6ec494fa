// tandem: k samples from one prefill. The prompt is computed once, forked for each
// sample, and the k continuations decode in batched steps of one scheduler.
/// \file
/// `sample_k` (token level, or with a tokenizer for text) and `sample_answers` over a
/// multi-sequence model: the batched counterpart of confidence/consistency.hpp's
/// `sample_answers(generator, ...)`, whose answers feed majority_vote and the graph
/// measures unchanged.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/batch/scheduler.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

namespace detail {

template <class M, class S, class T, class Factory>
errc sample_k_impl(scheduler<M, S, T>& sch, std::span<const token_id> prompt, Factory& make,
                   const generation_options& opts, std::span<completion> out) {
  const std::size_t k = out.size();
  const result<prefix_id> p = sch.add_prefix(prompt);
  if (!p) return p.error();
  std::vector<request_id> id(k);
  for (std::size_t i = 0; i < k; ++i) {
    const result<request_id> r = sch.submit({prompt, detail::invoke(make, i), opts});
    if (!r) {
      (void)sch.remove_prefix(*p);
      return r.error();
    }
    id[i] = *r;
  }
  bool prefix_live = true;
  while (sch.active() > 0) {
    if (const errc e = sch.step(); e != errc::ok) {
      if (prefix_live) (void)sch.remove_prefix(*p);
      return e;
    }
    // Once every sample holds its fork, the prompt's own sequence is no longer needed.
    if (prefix_live && std::none_of(id.begin(), id.end(), [&](request_id r) {
          return sch.state(r) == request_state::waiting;
        })) {
      (void)sch.remove_prefix(*p);
      prefix_live = false;
    }
  }
  for (std::size_t i = 0; i < k; ++i) (void)sch.take(id[i], out[i]);
  return errc::ok;
}

template <class M, class Factory>
using factory_sampler = std::remove_cvref_t<std::invoke_result_t<Factory&, std::size_t>>;

}  // namespace detail

/// Draws `out.size()` = k continuations of `prompt` from `model`: the prompt is prefilled
/// once (one sequence), forked k times, and the k samples decode together, one batched
/// append per token. Sample i samples with `make_sampler(i)` (a Sampler; give each its
/// own seed) and follows `opts` (budget, stop tokens, deadline) exactly as generate()
/// would on a lone session fed the prompt; out[i] receives its completion (cleared
/// first).
///
/// Needs k + 1 free sequences for full parallelism (the prompt's own and k forks; the
/// prompt's is closed once every sample has forked); with fewer, later samples wait for
/// earlier ones to finish.
///
/// Errors: `invalid_argument` (k == 0), those of generate()'s validation (`empty_input`,
/// `invalid_token`, `context_overflow`), `no_free_sequence` (the model has none free),
/// the model's append errors. Per-sample failures (a sampler error) are in out[i] (finish
/// `error`) and do not stop the others. State left: every sequence it opened is closed.
template <MultiSequenceModel M, class Factory>
requires Sampler<detail::factory_sampler<M, Factory>>
[[nodiscard]] errc sample_k(M& model, std::span<const token_id> prompt, Factory&& make_sampler,
                            const generation_options& opts, std::span<completion> out) {
  if (out.empty()) return errc::invalid_argument;
  scheduler<M, detail::factory_sampler<M, Factory>> sch(
      model, {.max_requests = out.size(),
              .max_batch_tokens = std::max(out.size(), prompt.size()),
              .max_prefixes = 1});
  return detail::sample_k_impl(sch, prompt, make_sampler, opts, out);
}

/// As above, also rendering each sample's text with `tokenizer` and honouring
/// `opts.stop_strings`, as generate(model, tokenizer, ...) does. Additional error:
/// `vocab_mismatch`.
template <MultiSequenceModel M, Tokenizer T, class Factory>
requires Sampler<detail::factory_sampler<M, Factory>>
[[nodiscard]] errc sample_k(M& model, const T& tokenizer, std::span<const token_id> prompt,
                            Factory&& make_sampler, const generation_options& opts,
                            std::span<completion> out) {
  if (out.empty()) return errc::invalid_argument;
  scheduler<M, detail::factory_sampler<M, Factory>, T> sch(
      model, tokenizer,
      {.max_requests = out.size(),
       .max_batch_tokens = std::max(out.size(), prompt.size()),
       .max_prefixes = 1});
  return detail::sample_k_impl(sch, prompt, make_sampler, opts, out);
}

/// Samples `k` answers to one prompt from a multi-sequence model, the batched
/// counterpart of `sample_answers(generator, request, k, out)` in
/// confidence/consistency.hpp: one prefill, k forks (sample_k), sample i drawn by
/// make_sampler(sampling) with seed `sampling.seed + i`. `out` is cleared, then holds the
/// k texts (a sample that failed gives its partial text). Errors: `invalid_argument`
/// (k == 0, or bad top_p/min_p), `invalid_temperature` (temperature <= 0 or NaN: greedy
/// decoding would repeat one answer k times), then those of sample_k.
template <MultiSequenceModel M, Tokenizer T>
[[nodiscard]] errc sample_answers(M& model, const T& tokenizer, std::span<const token_id> prompt,
                                  std::size_t k, const generation_options& opts,
                                  const sampling_options& sampling, std::vector<std::string>& out) {
  out.clear();
  if (k == 0) return errc::invalid_argument;
  if (!(sampling.temperature > 0.0f)) return errc::invalid_temperature;
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  if (const auto check = make_sampler(sampling, vocab); !check) return check.error();
  std::vector<completion> done(k);
  const errc e = sample_k(
      model, tokenizer, prompt,
      [&](std::size_t i) {
        sampling_options s = sampling;
        s.seed = sampling.seed + i;
        return *make_sampler(s, vocab);  // validated above
      },
      opts, std::span<completion>(done));
  if (e != errc::ok) return e;
  out.reserve(k);
  for (completion& c : done) out.push_back(std::move(c.text));
  return errc::ok;
}

}  // namespace tandem::inline v0
