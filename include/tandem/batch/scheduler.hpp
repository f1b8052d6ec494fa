// tandem: the continuous-batching scheduler. Requests (prompt, sampler, stop rules, token
// budget, deadline, streaming callback, priority) join and leave at any step; each
// step() is one batched append over a MultiSequenceModel.
/// \file
/// `scheduler<M, S, T>` drives many generations over one multi-sequence model
/// (core/multi_sequence.hpp). Each `step()` gathers one decode token for every running
/// request and prefill chunks for new ones, under a cap on batch tokens, makes one
/// batched append (one forward pass) and samples one token per request whose logits are
/// ready. Shared prefixes (`add_prefix`) are prefilled once and forked by each request
/// whose prompt starts with them. docs/batching.md describes it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Identifies a request of a scheduler: never 0, never reused by the same scheduler
/// (a slot number and a generation count).
using request_id = std::uint64_t;

/// Identifies a shared prefix registered with `scheduler::add_prefix`.
using prefix_id = std::uint32_t;

/// Sizes of a scheduler, fixed at construction (but max_prefill_tokens: see
/// set_max_prefill_tokens); every per-step buffer is sized from them.
struct scheduler_options {
  /// Requests held at once: waiting, running, or finished and not yet taken.
  std::size_t max_requests = 16;
  /// Tokens one step() may append in total (decode tokens plus prefill chunks).
  std::size_t max_batch_tokens = 256;
  /// Shared prefixes held at once.
  std::size_t max_prefixes = 4;
  /// Prompt tokens one step() may feed while some request decodes in it (under
  /// max_batch_tokens too); the default is no cap but max_batch_tokens, and 0 feeds none
  /// (a policy may alternate, prefilling every other step). A step with no decoding
  /// request may always prefill up to max_batch_tokens. A step's cost grows with its
  /// tokens, so this bounds how much a long prompt's chunk delays the running requests'
  /// next tokens (their time between tokens), at the price of a slower prefill (a later
  /// first token). Changeable between steps with set_max_prefill_tokens().
  std::size_t max_prefill_tokens = std::numeric_limits<std::size_t>::max();
};

/// One generation request: what generate() takes, plus a priority.
template <class S>
struct batch_request {
  /// The whole prompt (a shared prefix included); copied by submit().
  std::span<const token_id> prompt{};
  /// The request's own sampler, moved into the scheduler.
  S sampler{};
  /// Budget, stop tokens and strings, deadline, logprob recording, output constraint: as
  /// for generate(). `stop_tokens`, `stop_strings` and the constraint are only viewed: they
  /// must outlive the request (one constraint state per request, at position 0).
  generation_options options{};
  /// Higher is served first when the batch-token cap binds; ties in submission order.
  int priority = 0;
  /// Streaming callback, as for generate() (may return control::stop: finish
  /// `cancelled`); it must outlive the request.
  std::optional<token_callback> on_token{};
};

/// Where a request stands.
enum class request_state : std::uint8_t {
  unknown,     ///< no such request (never submitted, or already taken)
  waiting,     ///< submitted; no sequence yet (the model is full, or not stepped yet)
  prefilling,  ///< its prompt is being fed, one chunk per step
  decoding,    ///< generating, one token per step
  finished,    ///< done; its completion waits for take()
};

/// Counters of a scheduler since construction.
struct scheduler_stats {
  std::size_t steps = 0;             ///< step() calls
  std::size_t forward_passes = 0;    ///< batched appends made by step() (failed ones included)
  std::size_t prefill_tokens = 0;    ///< prompt tokens computed by step() (not shared)
  std::size_t prefix_tokens = 0;     ///< tokens computed by add_prefix
  std::size_t shared_tokens = 0;     ///< prompt tokens taken from a prefix by fork, not computed
  std::size_t decode_tokens = 0;     ///< generated tokens fed back by step()
  std::size_t generated_tokens = 0;  ///< tokens kept by requests
  std::size_t finished = 0;          ///< requests that finished, for any reason
};

template <class M, class D, class S, class T>
class speculative_scheduler;

/// A continuous-batching scheduler over the MultiSequenceModel `M`; every request samples
/// with its own `S` (a Sampler); `T` is a Tokenizer for text and stop strings, or
/// `detail::no_tokenizer` (token level only).
///
/// Per step(): requests whose deadline passed (or whose budget is 0) finish; waiting
/// requests get a sequence in priority order (a fork of the longest registered prefix
/// their prompt starts with, else a fresh one); then the batch is built: first one decode
/// token for every running request (highest priority first), then prefill chunks in
/// priority order with the tokens left under `max_batch_tokens` (and under
/// `max_prefill_tokens` when the batch holds a decode token); one append feeds it;
/// every request with fresh logits samples one token, streams it and may finish. So a
/// long prompt never holds back the others' decoding (as long as max_batch_tokens is at
/// least the number of running requests), and an urgent request is served first when the
/// cap binds. A request's tokens are those generate() would give on a lone session of the
/// same model fed the same prompt (bit for bit when the backend's batched logits equal
/// its lone ones, as the n-gram model's do).
///
/// A request's output constraint (`options.constraint`, at position 0, one state per
/// request) applies as in generate(): masked sampling, stop tokens only where it can end,
/// finish `constraint_complete`, `forced_tokens` counted. A run of tokens it forces is kept
/// without sampling and fed by the next step as one chunk (cut by `max_batch_tokens`, then
/// continued), so forced tokens cost no extra forward passes. submit() refuses a constraint
/// not at its start (`invalid_argument`) or of a larger vocabulary (`vocab_mismatch`), and
/// sizes one buffer of masked logits for the request.
///
/// When the model has no free sequence, a request waits (state `waiting`) until one is
/// closed; submit() fails only when `max_requests` requests are held.
///
/// Allocation: the slot table, the batch and the ordering buffers are sized at
/// construction. submit() copies the prompt and reserves the slot's completion
/// (allocating only until that slot's buffers are warm); step() allocates nothing when
/// the sampler, the tokenizer's piece and the callback do not; take() copies into the
/// caller's completion, reusing its capacity.
///
/// The model (and the tokenizer) must outlive the scheduler, which owns the sequences it
/// opens and closes them when requests finish. Movable, not copyable; one per thread.
template <MultiSequenceModel M, Sampler S, class T = detail::no_tokenizer>
class scheduler {
  static constexpr bool has_tok = !std::is_same_v<T, detail::no_tokenizer>;

 public:
  /// A scheduler over `model` (token level). Preconditions (TANDEM_ASSERT): every size
  /// in `opts` is at least 1.
  explicit scheduler(M& model, const scheduler_options& opts = {}) requires(!has_tok)
      : scheduler(model, nullptr, opts) {}
  /// A scheduler over `model` that renders text with `tokenizer` (which must outlive it).
  scheduler(M& model, const T& tokenizer, const scheduler_options& opts = {}) requires has_tok
      : scheduler(model, &tokenizer, opts) {}

  /// Takes over `other`'s requests, prefixes and sequences; `other` is left empty.
  scheduler(scheduler&& other) noexcept
      : model_(std::exchange(other.model_, nullptr)),
        tok_(other.tok_),
        opts_(other.opts_),
        slots_(std::move(other.slots_)),
        prefixes_(std::move(other.prefixes_)),
        batch_(std::move(other.batch_)),
        order_(std::move(other.order_)),
        next_order_(other.next_order_),
        stats_(other.stats_),
        error_(other.error_) {}
  scheduler& operator=(scheduler&&) = delete;

  /// Closes the sequences the scheduler still holds.
  ~scheduler() {
    if (model_ == nullptr) return;
    for (slot& s : slots_) release_sequence(s);
    for (prefix& p : prefixes_)
      if (p.live) (void)model_->close(p.seq);
  }

  /// Registers `tokens` as a shared prefix: opens a sequence and prefills it now, in
  /// appends of at most max_batch_tokens (outside step(): call it while loading). A
  /// request whose prompt starts with these tokens forks it instead of computing them.
  /// Errors: `empty_input`, `capacity_exceeded` (max_prefixes held), `no_free_sequence`,
  /// and the model's append errors (`invalid_token`, `context_overflow`,
  /// `decode_failed`); on error nothing is registered and no sequence stays open.
  [[nodiscard]] result<prefix_id> add_prefix(std::span<const token_id> tokens) {
    if (tokens.empty()) return detail::fail(&error_, errc::empty_input, "add_prefix: no tokens");
    std::size_t i = 0;
    while (i < prefixes_.size() && prefixes_[i].live) ++i;
    if (i == prefixes_.size())
      return detail::fail(&error_, errc::capacity_exceeded, "add_prefix: %zu prefixes held",
                          prefixes_.size());
    const result<seq_id> s = model_->open();
    if (!s) return detail::fail(&error_, s.error(), "add_prefix: open failed");
    for (std::size_t at = 0; at < tokens.size(); at += opts_.max_batch_tokens) {
      const seq_tokens chunk{
          *s, tokens.subspan(at, std::min(opts_.max_batch_tokens, tokens.size() - at))};
      if (const errc e = model_->append(std::span<const seq_tokens>(&chunk, 1)); e != errc::ok) {
        (void)model_->close(*s);
        return detail::fail(&error_, e, "add_prefix: append of tokens %zu.. failed", at);
      }
    }
    prefix& p = prefixes_[i];
    p.tokens.assign(tokens.begin(), tokens.end());
    p.seq = *s;
    p.live = true;
    stats_.prefix_tokens += tokens.size();
    return static_cast<prefix_id>(i);
  }

  /// Forgets prefix `id` and closes its sequence; requests that forked it are unaffected,
  /// waiting ones will compute their whole prompt. Errors: `not_found` (no such prefix).
  [[nodiscard]] errc remove_prefix(prefix_id id) {
    if (id >= prefixes_.size() || !prefixes_[id].live)
      return detail::fail(&error_, errc::not_found, "remove_prefix: no prefix %u",
                          static_cast<unsigned>(id));
    prefixes_[id].live = false;
    return model_->close(prefixes_[id].seq);
  }

  /// Adds a request; it gets a sequence at the next step(). Validates it first, as
  /// generate() does: `empty_input` (empty prompt), `invalid_token` (a prompt or stop token
  /// outside the vocabulary), `invalid_argument` (stop strings without a tokenizer, or an
  /// empty one), `vocab_mismatch` (tokenizer and model), `context_overflow` (the prompt
  /// does not fit the per-sequence context); `capacity_exceeded` when max_requests
  /// requests are held. On error nothing is held (the sampler is dropped).
  [[nodiscard]] result<request_id> submit(batch_request<S> req) {
    std::size_t i = 0;
    while (i < slots_.size() && slots_[i].state != request_state::unknown) ++i;
    if (i == slots_.size())
      return detail::fail(&error_, errc::capacity_exceeded, "submit: %zu requests held",
                          slots_.size());
    slot& s = slots_[i];
    s.prompt.assign(req.prompt.begin(), req.prompt.end());
    s.options = req.options;
    s.on_token = req.on_token;
    s.emitter.emplace(tokenizer(s), s.options, s.out, s.callback);
    const auto vocab = static_cast<std::size_t>(model_->vocab_size());
    errc e = s.emitter->begin(vocab, s.prompt, 0, context_length_of(*model_));
    if (e == errc::ok) e = detail::check_constraint(s.options.constraint, vocab, true);
    if (e != errc::ok) {
      s.emitter.reset();
      return detail::fail(&error_, e, "submit: request rejected (%zu prompt tokens)",
                          s.prompt.size());
    }
    s.sampler.emplace(std::move(req.sampler));
    s.priority = req.priority;
    s.order = next_order_++;
    s.state = request_state::waiting;
    s.seq = -1;
    s.fed = 0;
    s.chunk = 0;
    s.pending_from = 0;
    s.has_pending = s.ready = false;
    if (s.options.constraint) s.masked.resize(vocab);
    return id_of(i);
  }

  /// Finishes request `id` with finish `cancelled` (held-back text is flushed to its
  /// callback) and closes its sequence; the other requests are unaffected. A finished
  /// request is left as it is. Errors: `not_found` (unknown or taken id).
  [[nodiscard]] errc cancel(request_id id) {
    slot* s = find(id);
    if (s == nullptr) return detail::fail(&error_, errc::not_found, "cancel: unknown request");
    if (s->state != request_state::finished) finish(*s, finish_reason::cancelled, errc::ok);
    return errc::ok;
  }

  /// Where request `id` stands (`unknown` for an id never seen or already taken).
  [[nodiscard]] request_state state(request_id id) const noexcept {
    const slot* s = find(id);
    return s == nullptr ? request_state::unknown : s->state;
  }

  /// The completion of request `id` so far (tokens and text kept up to now; complete once
  /// finished). Null for an unknown id. The record stays valid until take(id).
  [[nodiscard]] const completion* peek(request_id id) const noexcept {
    const slot* s = find(id);
    return s == nullptr ? nullptr : &s->out;
  }

  /// Copies the completion of the finished request `id` into `out` (reusing `out`'s
  /// capacity: no allocation once `out` has held as long a completion) and forgets the
  /// request; its slot keeps its own buffers for the next request. Errors: `not_found`
  /// (unknown or taken id), `invalid_argument` (not finished yet; nothing changes).
  [[nodiscard]] errc take(request_id id, completion& out) {
    slot* s = find(id);
    if (s == nullptr) return detail::fail(&error_, errc::not_found, "take: unknown request");
    if (s->state != request_state::finished)
      return detail::fail(&error_, errc::invalid_argument, "take: request not finished");
    out = s->out;
    s->state = request_state::unknown;
    s->emitter.reset();
    s->sampler.reset();
    ++s->generation;
    return errc::ok;
  }

  /// Advances every active request by at most one token, in one batched append (see the
  /// class comment). Per-request failures (a sampler error, a tokenizer error) finish that
  /// request with finish `error` and its errc in its completion; the step goes on.
  /// Returns ok, or the batched append's error: then every request of the batch finishes
  /// with that error (the model rolled their sequences back; they are closed), the
  /// others are unchanged, and last_error() names the failed requests by slot (the low 32
  /// bits of a request_id: "... requests in slots 0 3").
  [[nodiscard]] errc step() {
    begin_step();
    build_batch([](slot& s, std::uint32_t) { return pending_tokens(s); });
    if (!batch_.empty()) {
      ++stats_.forward_passes;
      if (const errc e = model_->append(batch_); e != errc::ok) return fail_batch(e);
    }
    commit_batch();
    sample_ready();
    return errc::ok;
  }

  /// Requests waiting, prefilling or decoding.
  [[nodiscard]] std::size_t active() const noexcept {
    return static_cast<std::size_t>(std::count_if(
        slots_.begin(), slots_.end(), [](const slot& s) { return is_active(s.state); }));
  }
  /// Counters since construction.
  [[nodiscard]] const scheduler_stats& stats() const noexcept { return stats_; }
  /// The sizes given at construction (with the latest set_max_prefill_tokens()).
  [[nodiscard]] const scheduler_options& options() const noexcept { return opts_; }
  /// Sets `max_prefill_tokens` from the next step() on (see scheduler_options), e.g. from
  /// a policy that times the steps. Never fails; allocates nothing.
  void set_max_prefill_tokens(std::size_t n) noexcept { opts_.max_prefill_tokens = n; }
  /// The model the scheduler drives.
  [[nodiscard]] M& model() const noexcept { return *model_; }
  /// Details of the last failed call (add_prefix, remove_prefix, submit, cancel, take,
  /// step).
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

 private:
  // The speculative scheduler (batch/speculative.hpp) derives from this class and builds its
  // step from the same pieces (begin_step, build_batch, commit_batch, sample_ready).
  template <class, class, class, class>
  friend class speculative_scheduler;

  // Calls a request's optional streaming callback.
  struct forward_callback {
    const std::optional<token_callback>* cb = nullptr;
    control operator()(const token_event& ev) const { return *cb ? (**cb)(ev) : control::proceed; }
  };

  struct slot {
    request_state state = request_state::unknown;
    std::uint32_t generation = 1;
    std::vector<token_id> prompt;
    std::optional<S> sampler;
    generation_options options{};
    std::optional<token_callback> on_token{};
    forward_callback callback{};
    completion out;
    detail::no_tokenizer none{};
    std::optional<detail::token_emitter<T, forward_callback>> emitter;
    seq_id seq = -1;
    std::size_t fed = 0;           // prompt tokens in the sequence
    std::size_t chunk = 0;         // tokens of this step's batch
    std::size_t pending_from = 0;  // kept tokens from here on are not fed yet
    bool has_pending = false;
    std::vector<float> masked;  // the logits masked by the request's constraint
    bool ready = false;         // the sequence's logits are fresh: sample next
    int priority = 0;
    std::uint64_t order = 0;
  };

  struct prefix {
    bool live = false;
    seq_id seq = -1;
    std::vector<token_id> tokens;
  };

  scheduler(M& model, const T* tokenizer, const scheduler_options& opts)
      : model_(&model),
        tok_(tokenizer),
        opts_(opts),
        slots_(opts.max_requests),
        prefixes_(opts.max_prefixes) {
    TANDEM_ASSERT(opts.max_requests >= 1 && opts.max_batch_tokens >= 1 && opts.max_prefixes >= 1,
                  "scheduler: every size must be at least 1");
    TANDEM_ASSERT(opts.max_requests < (std::size_t{1} << 32), "scheduler: too many requests");
    for (slot& s : slots_) s.callback.cb = &s.on_token;
    batch_.reserve(opts.max_requests);
    order_.reserve(opts.max_requests);
  }

  // The start of a step: requests whose budget or deadline ran out finish; waiting ones
  // get a sequence in priority order; order_ ends holding the running requests, highest
  // priority first.
  void begin_step() {
    ++stats_.steps;
    for (slot& s : slots_) {
      s.chunk = 0;
      if (is_active(s.state))
        if (const finish_reason f = s.emitter->budget_finish(); f != finish_reason::none)
          finish(s, f, errc::ok);
    }

    sort_by_priority(request_state::waiting);
    for (const std::uint32_t i : order_) {
      const errc e = acquire(slots_[i]);
      if (e == errc::no_free_sequence) break;
      if (e != errc::ok) finish(slots_[i], finish_reason::error, e);
    }
    sort_by_priority(request_state::unknown);  // prefilling and decoding
  }

  // The kept tokens of `s` not fed yet: its decode entry.
  static std::span<const token_id> pending_tokens(const slot& s) noexcept {
    return std::span<const token_id>(s.out.tokens).subspan(s.pending_from);
  }

  // Fills batch_ under max_batch_tokens: first the tokens `decode_tokens(slot, index)` of
  // every decoding request with tokens to feed (its pending run, cut by the cap), then
  // prefill chunks (under max_prefill_tokens too when the batch decodes); sets each
  // slot's chunk.
  template <class DecodeTokens>
  void build_batch(DecodeTokens decode_tokens) {
    batch_.clear();
    std::size_t budget = opts_.max_batch_tokens;
    for (const std::uint32_t i : order_) {
      slot& s = slots_[i];
      if (budget == 0) break;
      if (s.state != request_state::decoding || !s.has_pending) continue;
      const std::span<const token_id> t = decode_tokens(s, i);
      const std::size_t n = std::min(budget, t.size());
      batch_.push_back({s.seq, t.first(n)});
      s.chunk = n;
      budget -= n;
    }
    if (!batch_.empty()) budget = std::min(budget, opts_.max_prefill_tokens);
    for (const std::uint32_t i : order_) {
      slot& s = slots_[i];
      if (budget == 0) break;
      if (s.state != request_state::prefilling) continue;
      s.chunk = std::min(budget, s.prompt.size() - s.fed);
      batch_.push_back({s.seq, std::span<const token_id>(s.prompt).subspan(s.fed, s.chunk)});
      budget -= s.chunk;
    }
  }

  // After a successful pass over batch_: moves each slot with a chunk on (fed prompt
  // tokens, fed pending tokens) and marks those with fresh logits ready.
  void commit_batch() {
    for (const std::uint32_t i : order_) {
      slot& s = slots_[i];
      if (s.chunk == 0) continue;
      if (s.state == request_state::decoding) {
        stats_.decode_tokens += s.chunk;
        s.pending_from += s.chunk;
        if (s.pending_from == s.out.tokens.size()) {
          s.has_pending = false;
          s.ready = true;
        }
      } else {
        stats_.prefill_tokens += s.chunk;
        s.fed += s.chunk;
        if (s.fed == s.prompt.size()) {
          s.state = request_state::decoding;
          s.ready = true;
        }
      }
    }
  }

  // Every decoding request with fresh logits samples one token.
  void sample_ready() {
    for (const std::uint32_t i : order_)
      if (slots_[i].state == request_state::decoding && slots_[i].ready) sample(slots_[i]);
  }

  // The longest live prefix `prompt` starts with; null when none.
  const prefix* best_prefix(std::span<const token_id> prompt) const noexcept {
    const prefix* best = nullptr;
    for (const prefix& p : prefixes_) {
      if (!p.live || p.tokens.size() > prompt.size()) continue;
      if (best != nullptr && p.tokens.size() <= best->tokens.size()) continue;
      if (std::equal(p.tokens.begin(), p.tokens.end(), prompt.begin())) best = &p;
    }
    return best;
  }

  static bool is_active(request_state st) noexcept {
    return st == request_state::waiting || st == request_state::prefilling ||
           st == request_state::decoding;
  }

  const T& tokenizer(const slot& s) const noexcept {
    if constexpr (has_tok)
      return *tok_;
    else
      return s.none;
  }

  request_id id_of(std::size_t i) const noexcept {
    return (static_cast<request_id>(slots_[i].generation) << 32) | static_cast<request_id>(i);
  }
  slot* find(request_id id) noexcept {
    return const_cast<slot*>(static_cast<const scheduler*>(this)->find(id));
  }
  const slot* find(request_id id) const noexcept {
    const auto i = static_cast<std::size_t>(id & 0xffffffffu);
    if (i >= slots_.size()) return nullptr;
    const slot& s = slots_[i];
    if (s.state == request_state::unknown || s.generation != (id >> 32)) return nullptr;
    return &s;
  }

  // Fills order_ with the slots in state `st` (unknown: prefilling and decoding), highest
  // priority first, then by submission.
  void sort_by_priority(request_state st) {
    order_.clear();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const request_state x = slots_[i].state;
      if (st == request_state::unknown
              ? (x == request_state::prefilling || x == request_state::decoding)
              : x == st)
        order_.push_back(static_cast<std::uint32_t>(i));
    }
    std::sort(order_.begin(), order_.end(), [this](std::uint32_t a, std::uint32_t b) {
      const slot& x = slots_[a];
      const slot& y = slots_[b];
      return x.priority != y.priority ? x.priority > y.priority : x.order < y.order;
    });
  }

  // Gives a waiting request a sequence: a fork of the longest prefix its prompt starts
  // with, else a fresh one.
  errc acquire(slot& s) {
    const prefix* best = best_prefix(s.prompt);
    const result<seq_id> r = best != nullptr ? model_->fork(best->seq) : model_->open();
    if (!r) return r.error();
    s.seq = *r;
    s.fed = best != nullptr ? best->tokens.size() : 0;
    stats_.shared_tokens += s.fed;
    s.state = s.fed == s.prompt.size() ? request_state::decoding : request_state::prefilling;
    s.ready = s.state == request_state::decoding;  // a fork carries its prefix's logits
    return errc::ok;
  }

  // Samples, keeps and streams one token of a request whose logits are fresh. With a
  // constraint, as generate() does: first the run of tokens it forces (they need no logits),
  // else a token sampled from the masked logits followed by the run it forces; what was
  // kept is fed together by the next step.
  void sample(slot& s) {
    s.ready = false;
    const constraint_ref con = s.options.constraint;
    if (const finish_reason f = s.emitter->budget_finish(); f != finish_reason::none)
      return finish(s, f, errc::ok);
    const std::size_t kept_before = s.out.tokens.size();
    if (!keep_forced_run(s)) return;
    if (s.out.tokens.size() > kept_before) {  // the logits are stale now
      s.has_pending = true;
      return;
    }
    std::span<const float> logits = model_->logits(s.seq);
    if (logits.size() != static_cast<std::size_t>(model_->vocab_size()))
      return finish(s, finish_reason::error, errc::size_mismatch);
    if (con) {
      if (const errc e = detail::constrain_logits(con, logits, s.masked, s.options.stop_tokens);
          e != errc::ok)
        return finish(s, finish_reason::error, e);
      logits = s.masked;
    }
    const result<token_id> t = s.sampler->sample(logits);
    if (!t) return finish(s, finish_reason::error, t.error());
    if (!keep_token(s, *t, logits) || !keep_forced_run(s)) return;
    s.has_pending = true;
  }

  // Keeps token `t` that request `s` chose from `logits` (masked when constrained): checks
  // it, advances the constraint, streams it; finishes the request on a stop token, an error
  // or a stop rule. Returns false when it finished the request.
  bool keep_token(slot& s, token_id t, std::span<const float> logits) {
    const constraint_ref con = s.options.constraint;
    if (!s.emitter->in_vocab(t)) return finish(s, finish_reason::error, errc::invalid_token), false;
    if (s.emitter->is_stop_token(t)) return finish(s, finish_reason::stop_token, errc::ok), false;
    if (con) {
      if (const errc e = con.advance(t); e != errc::ok)
        return finish(s, finish_reason::error, e), false;
    }
    const auto k = s.emitter->keep(t, logits, *s.sampler);
    if (k.error != errc::ok) {
      if (con) (void)con.rewind(1);
      return finish(s, finish_reason::error, k.error), false;
    }
    ++stats_.generated_tokens;
    if (k.finish != finish_reason::none) return finish(s, k.finish, errc::ok), false;
    return true;
  }

  // Keeps the tokens the request's constraint forces (none without one), finishing the
  // request when the budget, the constraint's completion, an error or a stop rule ends it.
  // Returns false when it finished the request.
  bool keep_forced_run(slot& s) {
    const constraint_ref con = s.options.constraint;
    if (!con) return true;
    for (;;) {
      if (const finish_reason f = s.emitter->budget_finish(); f != finish_reason::none) {
        finish(s, f, errc::ok);
        return false;
      }
      if (con.is_complete()) {
        finish(s, finish_reason::constraint_complete, errc::ok);
        return false;
      }
      const token_id f = detail::forced_token(con, s.options.stop_tokens);
      if (f == no_token || s.emitter->is_stop_token(f)) return true;
      errc e = s.emitter->in_vocab(f) ? con.advance(f) : errc::invalid_token;
      if (e == errc::ok) {
        const auto k = s.emitter->keep_forced(f, *s.sampler);
        if (k.error == errc::ok) {
          ++s.out.forced_tokens;
          ++stats_.generated_tokens;
          if (k.finish == finish_reason::none) continue;
          finish(s, k.finish, errc::ok);
          return false;
        }
        (void)con.rewind(1);
        e = k.error;
      }
      finish(s, finish_reason::error, e);
      return false;
    }
  }

  void release_sequence(slot& s) {
    if (s.seq >= 0) (void)model_->close(s.seq);
    s.seq = -1;
  }

  // Ends a request: records the reason (or the error), flushes held-back text, closes
  // its sequence.
  void finish(slot& s, finish_reason why, errc err) {
    s.out.finish = why;
    (void)s.emitter->end(err);
    release_sequence(s);
    s.state = request_state::finished;
    s.has_pending = s.ready = false;
    ++stats_.finished;
  }

  errc fail_batch(errc e) {
    error_.clear();
    error_.code = e;
    int n = std::snprintf(error_.text, error_info::capacity,
                          "step: batched append failed (%.*s); "
                          "requests in slots",
                          static_cast<int>(to_string(e).size()), to_string(e).data());
    for (const std::uint32_t i : order_) {
      slot& s = slots_[i];
      if (s.chunk == 0) continue;
      if (n >= 0 && static_cast<std::size_t>(n) < error_info::capacity) {
        const int m =
            std::snprintf(error_.text + n, error_info::capacity - static_cast<std::size_t>(n),
                          " %u", static_cast<unsigned>(i));
        n = m < 0 ? -1 : n + m;
      }
      s.chunk = 0;
      finish(s, finish_reason::error, e);
    }
    return e;
  }

  M* model_;
  const T* tok_;
  scheduler_options opts_;
  std::vector<slot> slots_;
  std::vector<prefix> prefixes_;
  std::vector<seq_tokens> batch_;
  std::vector<std::uint32_t> order_;
  std::uint64_t next_order_ = 0;
  scheduler_stats stats_{};
  error_info error_{};
};

}  // namespace tandem::inline v0
