// tandem backends: llama.cpp adapter. A loaded GGUF model, a decoding session over it
// (a LanguageModel with rewind, batched scoring and a context length) and a tokenizer
// over the model's own vocabulary.
//
// Opt-in: link `tandem::llama_cpp` (CMake package `llama`). Written against llama.cpp
// 0.5.0-dev, commit de3ff81; the API it uses (llama_model_load_from_file,
// llama_init_from_model, llama_memory_seq_rm, llama_vocab_*) is the one of that version.
//
// llama.cpp is C++ compiled with exceptions; it catches its own exceptions at the API
// boundary for the calls used here, except where noted (see llama_tokenizer::encode).
#pragma once

#include <gguf.h>
#include <llama.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

// ---- Logging -----------------------------------------------------------------------------

namespace detail {
inline void llama_log_filter(ggml_log_level level, const char* text, void* keep_errors) {
  if (keep_errors != nullptr && level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}
// A non-null user-data pointer that carries no state: the callback only tests it for null.
inline constexpr char llama_keep_errors_tag = 0;

// Runs a llama.cpp call that writes up to `room` elements after out[old] and returns how
// many it wrote, or minus the room it needs. Tries once more with that room; on failure
// `out` is as before. Errors: capacity_exceeded.
template <class Container, class Call>
[[nodiscard]] inline errc llama_fill(Container& out, std::size_t room, Call call) {
  const std::size_t old = out.size();
  for (int attempt = 0; attempt < 2; ++attempt) {
    out.resize(old + room);
    const std::int32_t r =
        call(out.data() + old, static_cast<std::int32_t>(std::min<std::size_t>(room, INT32_MAX)));
    if (r >= 0) {
      out.resize(old + static_cast<std::size_t>(r));
      return errc::ok;
    }
    if (r == INT32_MIN) break;
    room = static_cast<std::size_t>(-static_cast<std::int64_t>(r));
  }
  out.resize(old);
  return errc::capacity_exceeded;
}
}  // namespace detail

/// Silences llama.cpp's and ggml's log output (by default they print every load step to
/// stderr). With `keep_errors`, error-level lines still reach stderr.
///
/// This changes process-wide state inside llama.cpp (`llama_log_set`, which also sets
/// ggml's logger): it affects every llama.cpp user in the process and is not thread-safe
/// against concurrent llama.cpp calls. tandem never calls it on its own; tests and tools
/// call it once at start-up. `llama_default_logs()` restores the default.
inline void llama_quiet_logs(bool keep_errors = true) noexcept {
  llama_log_set(detail::llama_log_filter,
                keep_errors ? const_cast<char*>(&detail::llama_keep_errors_tag) : nullptr);
}

/// Restores llama.cpp's default logging (everything to stderr). Process-wide, like
/// `llama_quiet_logs`.
inline void llama_default_logs() noexcept { llama_log_set(nullptr, nullptr); }

// ---- Model -------------------------------------------------------------------------------

/// How a model file is loaded.
struct llama_model_options {
  std::int32_t gpu_layers = 0;  ///< layers offloaded to a GPU; 0: CPU only; -1: all
  bool use_mmap = true;         ///< false: read the file instead of llama.cpp's default (mmap)
  bool check_tensors = false;   ///< let llama.cpp validate tensor data (slower load)
  bool vocab_only = false;      ///< load only the vocabulary (for a tokenizer; no session)
};

/// Owns a `llama_model` loaded from a GGUF file. Move-only; a moved-from handle is empty
/// (`get() == nullptr`) and may only be destroyed or assigned to. Sessions and tokenizers
/// borrow the model: it must outlive them.
class llama_model_handle {
 public:
  /// Loads the GGUF file at `path`. Before handing the file to llama.cpp it checks that the
  /// file opens, starts with the GGUF magic, parses as GGUF metadata, names an
  /// architecture, and has no repeated vocabulary pieces (on which llama.cpp would abort
  /// the process).
  /// Errors, with details (the path first) in `*info` when not null: file_not_found
  /// (cannot be opened), invalid_argument (a directory), io_error (a read failed),
  /// corrupt_file (bad magic, malformed or truncated metadata, repeated pieces, or
  /// llama.cpp refused the file: truncated tensor data, unknown architecture, missing or
  /// misshapen tensors; llama.cpp reports all of these as one failure, in its log).
  /// Calls `llama_backend_init()` (idempotent). Logs go through llama.cpp's logger.
  [[nodiscard]] static result<llama_model_handle> load(std::string_view path,
                                                       const llama_model_options& options = {},
                                                       error_info* info = nullptr) {
    const std::string name(path);
    auto magic = detail::read_file_head(name, 4, info);
    if (!magic) return magic.error();
    if (magic->size() != 4 || detail::as_text(*magic) != "GGUF")
      return detail::fail(info, errc::corrupt_file, "%s: not a GGUF file (bad magic)",
                          name.c_str());
    if (const errc e = precheck(name.c_str(), info); e != errc::ok) return e;
    llama_backend_init();
    llama_model_params p = llama_model_default_params();
    p.n_gpu_layers = options.gpu_layers;
    if (!options.use_mmap) p.load_mode = LLAMA_LOAD_MODE_NONE;
    p.check_tensors = options.check_tensors;
    p.vocab_only = options.vocab_only;
    ::llama_model* m = llama_model_load_from_file(name.c_str(), p);
    if (m == nullptr)
      return detail::fail(info, errc::corrupt_file,
                          "%s: llama.cpp could not load the model (its log says why)",
                          name.c_str());
    return llama_model_handle(m, options.vocab_only);
  }

  ///@{
  /// Takes over `o`'s model; `o` is left empty (`get()` returns null) and frees nothing.
  llama_model_handle(llama_model_handle&& o) noexcept
      : model_(std::exchange(o.model_, nullptr)), vocab_only_(o.vocab_only_) {}
  llama_model_handle& operator=(llama_model_handle&& o) noexcept {
    if (this != &o) {
      reset();
      model_ = std::exchange(o.model_, nullptr);
      vocab_only_ = o.vocab_only_;
    }
    return *this;
  }
  ///@}
  llama_model_handle(const llama_model_handle&) = delete;
  llama_model_handle& operator=(const llama_model_handle&) = delete;
  ~llama_model_handle() { reset(); }

  /// The llama.cpp model, still owned by this handle.
  [[nodiscard]] ::llama_model* get() const noexcept { return model_; }
  /// The model's vocabulary (owned by the model).
  [[nodiscard]] const ::llama_vocab* vocab() const noexcept {
    TANDEM_ASSERT(model_ != nullptr, "llama_model_handle is empty");
    return llama_model_get_vocab(model_);
  }
  /// Number of tokens in the vocabulary.
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return static_cast<std::size_t>(llama_vocab_n_tokens(vocab()));
  }
  /// The context length the model was trained with (GGUF `<arch>.context_length`).
  [[nodiscard]] std::size_t training_context_length() const noexcept {
    TANDEM_ASSERT(model_ != nullptr, "llama_model_handle is empty");
    return static_cast<std::size_t>(llama_model_n_ctx_train(model_));
  }
  /// True when loaded with `vocab_only` (no weights: sessions cannot be created).
  [[nodiscard]] bool vocab_only() const noexcept { return vocab_only_; }

 private:
  llama_model_handle(::llama_model* m, bool vocab_only) noexcept
      : model_(m), vocab_only_(vocab_only) {}
  void reset() noexcept {
    if (model_ != nullptr) llama_model_free(model_);
    model_ = nullptr;
  }
  // Checks what llama.cpp would otherwise abort on, from the GGUF metadata alone.
  [[nodiscard]] static errc precheck(const char* path, error_info* info) {
    gguf_init_params gp{};
    gp.no_alloc = true;
    gp.ctx = nullptr;
    gguf_context* g = gguf_init_from_file(path, gp);
    if (g == nullptr)
      return detail::fail(info, errc::corrupt_file, "%s: malformed or truncated GGUF metadata",
                          path);
    const char* problem = nullptr;
    const std::int64_t arch = gguf_find_key(g, "general.architecture");
    if (arch < 0 || gguf_get_kv_type(g, arch) != GGUF_TYPE_STRING)
      problem = "no general.architecture string";
    const std::int64_t tok = gguf_find_key(g, "tokenizer.ggml.tokens");
    if (problem == nullptr && tok >= 0) {
      if (gguf_get_kv_type(g, tok) != GGUF_TYPE_ARRAY ||
          gguf_get_arr_type(g, tok) != GGUF_TYPE_STRING) {
        problem = "tokenizer.ggml.tokens is not an array of strings";
      } else {
        const std::size_t n = gguf_get_arr_n(g, tok);
        std::vector<std::string_view> pieces;
        pieces.reserve(n);
        for (std::size_t i = 0; i < n; ++i) pieces.emplace_back(gguf_get_arr_str(g, tok, i));
        std::sort(pieces.begin(), pieces.end());
        if (std::adjacent_find(pieces.begin(), pieces.end()) != pieces.end())
          problem = "repeated vocabulary pieces";
      }
    }
    gguf_free(g);
    if (problem != nullptr) return detail::fail(info, errc::corrupt_file, "%s: %s", path, problem);
    return errc::ok;
  }

  ::llama_model* model_ = nullptr;
  bool vocab_only_ = false;
};

// ---- Session -----------------------------------------------------------------------------

/// How a session's llama.cpp context is created. The session samples nothing, so it
/// takes no seed: sampling is tandem's, with an explicit rng.
struct llama_session_options {
  std::uint32_t context_size = 0;  ///< tokens the session can hold; 0: the training context
  std::uint32_t batch_size = 512;  ///< most tokens per llama_decode; longer inputs are split
  std::int32_t threads = 0;        ///< threads for one-token steps; 0: llama.cpp's default
  std::int32_t batch_threads = 0;  ///< threads for multi-token batches; 0: same as `threads`
  /// Flash attention: -1 llama.cpp's choice (auto), 0 off, 1 on. On CPU, off can make
  /// multi-token passes at long contexts several times cheaper (speculative verification).
  std::int32_t flash_attention = -1;
  /// Polled by llama.cpp during a decode (CPU backend); returning true aborts it and the
  /// call returns `errc::cancelled`. Null: never abort. `abort_data` is passed through.
  ggml_abort_callback abort_callback = nullptr;
  void* abort_data = nullptr;  ///< passed to `abort_callback`; not owned
  /// Most leaves of a token tree that `llama_session::score_tree` scores in one
  /// llama_decode (each leaf path gets a llama.cpp sequence id of its own), in [0, 255]
  /// and below `batch_size`;
  /// a tree with more leaves, or any tree when 0 (the default), is scored path by path
  /// (one decode per node). With leaves, the context has n_seq_max = 1 + tree_leaves and
  /// a unified KV cache. Cost (measured on this llama.cpp version, CPU): the KV cache
  /// keeps its size (`context_size` cells shared by all ids); the logits buffer grows by
  /// tree_leaves rows and the compute buffer by about 0.5 MiB (270.0 to 270.5 MiB on a
  /// 92 MB model at 4096 tokens); every llama_decode, plain ones included, costs about
  /// 50 microseconds more CPU time whatever the number of leaves (llama.cpp then checks
  /// its batches against all 256 possible sequences): nothing measurable on a model of
  /// 90 MB, about 40% of a one-token step on a 2.6 MB draft model. So set it on a target
  /// that verifies trees and leave it 0 elsewhere. llama_multi_session ignores it.
  std::uint32_t tree_leaves = 0;
};

namespace detail {
// Whether the options llama_session and llama_multi_session share are in their domains.
[[nodiscard]] inline bool llama_options_valid(const llama_session_options& o) noexcept {
  return o.batch_size != 0 && o.threads >= 0 && o.batch_threads >= 0 && o.flash_attention >= -1 &&
         o.flash_attention <= 1;
}
// Frees a session's batch and context (either may be empty) and leaves both empty.
inline void llama_release(llama_batch& batch, ::llama_context*& ctx) noexcept {
  if (batch.token != nullptr) llama_batch_free(batch);
  batch = llama_batch{};
  if (ctx != nullptr) llama_free(ctx);
  ctx = nullptr;
}
// The context parameters of a session with `n_seq` sequences.
[[nodiscard]] inline llama_context_params llama_context_params_of(const llama_session_options& o,
                                                                  std::uint32_t n_seq) noexcept {
  llama_context_params p = llama_context_default_params();
  p.n_ctx = o.context_size;
  p.n_batch = o.batch_size;
  p.n_ubatch = o.batch_size;
  p.n_seq_max = n_seq;
  p.kv_unified = n_seq > 1;
  if (o.threads > 0) p.n_threads = o.threads;
  if (o.batch_threads > 0)
    p.n_threads_batch = o.batch_threads;
  else if (o.threads > 0)
    p.n_threads_batch = o.threads;
  p.abort_callback = o.abort_callback;
  p.abort_callback_data = o.abort_data;
  p.no_perf = true;
  p.flash_attn_type = static_cast<llama_flash_attn_type>(o.flash_attention);
  return p;
}
}  // namespace detail

/// A decoding session over one token sequence (sequence 0 of its own llama.cpp context
/// and KV cache). Satisfies `LanguageModel`, `Rewindable`, `Scoring` and
/// `HasContextLength`. Move-only. Borrows the model, which must outlive the session.
///
/// Errors leave the session as it was: `size()` unchanged and `logits()` still the
/// logits of the last good state (the session keeps its own copy). The one exception is
/// a failed decode on a model whose memory cannot drop a partial tail (recurrent
/// models): the session is then cleared (`size() == 0`, no logits), as documented on
/// `append`.
///
/// Token trees (`TreeScoring`): `score_tree` scores a whole tree hung after the held
/// tokens in one llama_decode with tree attention. Each leaf gets a helper sequence id
/// (1 .. tree_leaves; the session's own tokens are sequence 0); a node carries the ids
/// of every leaf below it, at position size() + its depth; the held cells are shared
/// with the helper ids by llama_memory_seq_cp (the unified cache shares cells, it copies
/// no data). llama.cpp masks a token by its first id, whose sequence is exactly the held
/// tokens and the node's ancestors. `commit_tree` gives the kept path's cells id 0 and
/// removes every helper id (so the other nodes' cells are freed). `extend_tree` adds
/// nodes to such a pending tree in one more llama_decode, each new leaf's id copied from
/// an id through the node it hangs from, up to that node. A tree with more leaves
/// than `tree_leaves` (every tree when it is 0, the default) is scored path by path
/// instead, one decode per node (see `score_tree`).
///
/// Allocation: the llama_batch, the logits buffer, the tree's bookkeeping and
/// llama.cpp's context are sized at creation; `append`, `score`, `rewind`, `score_tree`,
/// `extend_tree` and `commit_tree` allocate nothing on tandem's side.
class llama_session {
 public:
  /// Creates a context over `model`.
  /// Errors: invalid_argument (batch_size 0, negative thread counts, flash_attention
  /// outside [-1, 1], tree_leaves over 255 or not below batch_size (llama.cpp reserves a
  /// logits row per sequence and aborts when they pass the batch's), a vocab-only or empty
  /// model), out_of_memory
  /// (llama.cpp could not create the context, usually the KV cache or compute buffers).
  [[nodiscard]] static result<llama_session> create(const llama_model_handle& model,
                                                    const llama_session_options& options = {}) {
    if (model.get() == nullptr || model.vocab_only()) return errc::invalid_argument;
    if (!detail::llama_options_valid(options) || options.tree_leaves > 255 ||
        options.tree_leaves >= options.batch_size)
      return errc::invalid_argument;
    const llama_context_params p =
        detail::llama_context_params_of(options, 1 + options.tree_leaves);
    ::llama_context* ctx = llama_init_from_model(model.get(), p);
    if (ctx == nullptr) return errc::out_of_memory;
    return llama_session(model, ctx, options.tree_leaves);
  }

  ///@{
  /// Takes over `o`'s context, batch and logits (the model stays borrowed); `o` is left
  /// without a context (`size() == 0`, no logits) and may only be destroyed or assigned to.
  llama_session(llama_session&& o) noexcept
      : ctx_(std::exchange(o.ctx_, nullptr)),
        vocab_(o.vocab_),
        batch_(std::exchange(o.batch_, llama_batch{})),
        n_vocab_(o.n_vocab_),
        n_ctx_(o.n_ctx_),
        n_batch_(o.n_batch_),
        size_(std::exchange(o.size_, 0)),
        has_logits_(std::exchange(o.has_logits_, false)),
        logits_(std::move(o.logits_)),
        tree_(std::exchange(o.tree_, tree_state{})),
        error_(o.error_) {}
  llama_session& operator=(llama_session&& o) noexcept {
    if (this != &o) {
      release();
      ctx_ = std::exchange(o.ctx_, nullptr);
      vocab_ = o.vocab_;
      batch_ = std::exchange(o.batch_, llama_batch{});
      n_vocab_ = o.n_vocab_;
      n_ctx_ = o.n_ctx_;
      n_batch_ = o.n_batch_;
      size_ = std::exchange(o.size_, 0);
      has_logits_ = std::exchange(o.has_logits_, false);
      logits_ = std::move(o.logits_);
      tree_ = std::exchange(o.tree_, tree_state{});
      error_ = o.error_;
    }
    return *this;
  }
  ///@}
  llama_session(const llama_session&) = delete;
  llama_session& operator=(const llama_session&) = delete;
  ~llama_session() { release(); }

  /// Number of tokens in the vocabulary (the length of `logits()` and of a score row).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return n_vocab_; }
  /// Tokens in the context.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Most tokens the context can hold (llama.cpp's n_ctx, which may round the
  /// requested size up).
  [[nodiscard]] std::size_t context_length() const noexcept { return n_ctx_; }
  /// Most tokens one llama_decode takes (n_batch).
  [[nodiscard]] std::size_t batch_size() const noexcept { return n_batch_; }
  /// Most leaves of a tree `score_tree` scores in one llama_decode (`tree_leaves`).
  [[nodiscard]] std::size_t max_tree_leaves() const noexcept { return tree_.leaves; }
  /// Most nodes of a tree `score_tree` takes: `batch_size()` (one llama_decode).
  [[nodiscard]] std::size_t max_tree_nodes() const noexcept { return n_batch_; }
  /// The details of the last failed `score_tree` or `commit_tree` (the other calls'
  /// errors carry no more than their errc).
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

  /// Feeds `t` after the context, in llama_decode calls of at most `batch_size()`
  /// tokens; only the last position's logits are computed. An empty `t` is a no-op.
  /// Errors (all checked before llama.cpp sees the tokens, except the last three):
  /// invalid_token (an id outside [0, vocab_size()); llama.cpp would abort),
  /// context_overflow (size() + t.size() > context_length(), or llama.cpp found no KV
  /// slot), cancelled (the abort callback fired), invalid_argument (llama.cpp rejected
  /// the batch), decode_failed (any other llama.cpp failure). On error the tokens of this
  /// call that llama.cpp had already processed are removed again; if the model's memory
  /// cannot remove them (recurrent models), the session is cleared instead.
  /// A pending tree (see `score_tree`) is dropped first, as by `commit_tree({})`.
  [[nodiscard]] errc append(std::span<const token_id> t) noexcept {
    drop_tree();
    return decode(t, std::span<float>{});
  }

  /// The next-token logits after the context: `vocab_size()` floats, valid after a
  /// successful `append` or `score` until the next mutating call. Empty after `create`,
  /// `rewind` (of at least one token) and `clear`. The session owns the buffer.
  [[nodiscard]] std::span<const float> logits() const noexcept {
    if (!has_logits_) return {};
    return {logits_.data(), logits_.size()};
  }

  /// Appends `t` and writes, for every position i, the next-token logits after
  /// `t[0..i]` into `rows[i * vocab_size(), (i + 1) * vocab_size())`: one llama_decode
  /// with logits for every position when `t.size() <= batch_size()`, else one per
  /// batch-sized chunk. Afterwards `logits()` equals the last row.
  /// Errors: size_mismatch (rows.size() != t.size() * vocab_size()), then those of
  /// `append`, with the same guarantees; `rows` is unspecified after an error. A
  /// pending tree is dropped first.
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) noexcept {
    drop_tree();
    if (rows.size() != t.size() * n_vocab_) return errc::size_mismatch;
    if (t.empty()) return errc::ok;
    return decode(t, rows);
  }

  /// Drops the last `n` tokens (llama_memory_seq_rm on the tail). After a rewind of at
  /// least one token `logits()` is empty until the next append.
  /// Errors: rewind_out_of_range (n > size()), rewind_failed (llama.cpp could not remove
  /// a partial sequence, e.g. a recurrent model; the session is unchanged and usable).
  /// A pending tree is dropped first.
  [[nodiscard]] errc rewind(std::size_t n) noexcept {
    drop_tree();
    if (n > size_) return errc::rewind_out_of_range;
    if (n == 0) return errc::ok;
    const auto p0 = static_cast<llama_pos>(size_ - n);
    if (!llama_memory_seq_rm(llama_get_memory(ctx_), 0, p0, -1)) return errc::rewind_failed;
    size_ -= n;
    has_logits_ = false;
    return errc::ok;
  }

  /// Empties the context and drops a pending tree (never fails). `logits()` is empty
  /// afterwards.
  void clear() noexcept {
    llama_memory_clear(llama_get_memory(ctx_), true);
    size_ = 0;
    has_logits_ = false;
    tree_.pending = false;
    tree_.used = 0;
  }

  /// Scores the token tree `tokens`/`parents` hung after the held tokens. Node i holds
  /// tokens[i]; parents[i] == -1 makes it a root (a child of the last held token), else
  /// 0 <= parents[i] < i. Writes rows[i*V .. (i+1)*V), V = vocab_size(): the next-token
  /// logits after the held tokens followed by the path root..i. A tree of at most
  /// max_tree_leaves() leaves takes one llama_decode with tree attention (see the class
  /// comment); a tree with more leaves (any tree when tree_leaves is 0) is scored path by
  /// path instead: one llama_decode per node, with rewinds between branches, the same
  /// rows within float rounding, and `commit_tree` then decodes the kept path once more.
  /// A pending tree is dropped first; afterwards this tree is pending (`size()` and
  /// `logits()` unchanged) until `commit_tree` or any other mutating call.
  /// Errors, each leaving the session as before with no tree pending (no cells under any
  /// id but the held ones): size_mismatch (parents.size() != tokens.size() or
  /// rows.size() != tokens.size() * V), empty_input (no tokens), invalid_argument (a
  /// parent out of order), invalid_token, context_overflow (size() + tokens.size() >
  /// context_length(), or no KV slot), capacity_exceeded (more nodes than
  /// max_tree_nodes()), cancelled (the abort callback), invalid_argument (llama.cpp
  /// rejected the batch), decode_failed (any other llama.cpp failure), rewind_failed
  /// (path by path on a model that cannot drop a partial tail: the session is cleared, as
  /// `append` documents). `last_error()` has the details. `rows` is unspecified after an
  /// error.
  [[nodiscard]] errc score_tree(std::span<const token_id> tokens,
                                std::span<const std::int32_t> parents,
                                std::span<float> rows) noexcept {
    drop_tree();
    const std::size_t n = tokens.size();
    TANDEM_TRY(check_nodes("score_tree", 0, tokens, parents, rows));
    if (const errc e = check(tokens); e != errc::ok)
      return detail::fail(&error_, e, "score_tree: %zu nodes after %zu of %zu tokens", n, size_,
                          n_ctx_);
    if (n > n_batch_)
      return detail::fail(&error_, errc::capacity_exceeded,
                          "score_tree: %zu nodes, at most %zu (batch_size)", n, n_batch_);
    // tree_.leaf[i], for now: whether node i has a child.
    std::fill_n(tree_.leaf.begin(), n, 0);
    for (std::size_t i = 0; i < n; ++i)
      if (parents[i] >= 0) tree_.leaf[static_cast<std::size_t>(parents[i])] = 1;
    const auto leaves =
        static_cast<std::size_t>(std::count(tree_.leaf.begin(), tree_.leaf.begin() + n, 0));
    tree_.by_paths = leaves > tree_.leaves;
    if (const errc e = tree_.by_paths ? score_by_paths(tokens, parents, rows)
                                      : score_at_once(tokens, parents, rows, leaves);
        e != errc::ok)
      return e;
    std::copy(parents.begin(), parents.end(), tree_.parent.begin());
    std::copy(tokens.begin(), tokens.end(), tree_.token.begin());
    tree_.nodes = n;
    tree_.first = 0;
    tree_.pending = true;
    return errc::ok;
  }

  /// Adds the nodes `tokens`/`parents` to the pending tree (scored in one llama_decode)
  /// and scores only them, in one llama_decode: the tree's earlier nodes keep their cells,
  /// so a tree grown a level at a time (a drafter's) decodes each node once. New node i is
  /// node old + i of the tree (old: its nodes before the call); parents[i] is -1 (a root),
  /// an earlier node's index, or old + j for j < i. Writes rows[i*V .. (i+1)*V): the
  /// logits after the held tokens and the path root..node old + i. The tree stays pending,
  /// now with the new nodes (commit_tree's path indexes the whole tree).
  /// Errors: invalid_argument (no pending tree scored in one llama_decode, or a parent out
  /// of order; nothing changes), size_mismatch, empty_input, invalid_token,
  /// capacity_exceeded (the tree would exceed max_tree_nodes() nodes or the tree_leaves
  /// helper ids; nothing changes: score the whole tree with score_tree instead),
  /// context_overflow before decoding (the held tokens and the grown tree would pass the
  /// context; nothing changes, the tree stays pending); after a failed llama_decode
  /// (cancelled, decode_failed, or context_overflow when llama.cpp finds no KV slot) no
  /// tree is pending and the session is as before the score_tree. `last_error()` has the
  /// details.
  [[nodiscard]] errc extend_tree(std::span<const token_id> tokens,
                                 std::span<const std::int32_t> parents,
                                 std::span<float> rows) noexcept {
    const std::size_t n = tokens.size(), old = tree_.nodes;
    if (!tree_.pending || tree_.by_paths)
      return detail::fail(&error_, errc::invalid_argument,
                          "extend_tree: no pending tree scored in one pass");
    TANDEM_TRY(check_nodes("extend_tree", old, tokens, parents, rows));
    if (const errc e = check(tokens); e != errc::ok)
      return detail::fail(&error_, e, "extend_tree: %zu nodes", n);
    if (n > n_batch_ - old)
      return detail::fail(&error_, errc::capacity_exceeded,
                          "extend_tree: %zu + %zu nodes, at most %zu (batch_size)", old, n,
                          n_batch_);
    // Whether each new node has a child among the new ones; the childless get a helper id.
    std::fill_n(tree_.scratch.begin(), n, 0);
    for (std::size_t i = 0; i < n; ++i)
      if (parents[i] >= static_cast<std::int32_t>(old))
        tree_.scratch[static_cast<std::size_t>(parents[i]) - old] = 1;
    const auto leaves =
        static_cast<std::size_t>(std::count(tree_.scratch.begin(), tree_.scratch.begin() + n, 0));
    if (tree_.used + leaves > tree_.leaves)
      return detail::fail(&error_, errc::capacity_exceeded,
                          "extend_tree: %u + %zu helper ids, at most %u (tree_leaves)", tree_.used,
                          leaves, tree_.leaves);
    if (old + n > n_ctx_ - size_)
      return detail::fail(&error_, errc::context_overflow, "extend_tree: %zu + %zu nodes after %zu",
                          old, n, size_);
    batch_.n_tokens = static_cast<std::int32_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int32_t p = parents[i];
      const auto pi = static_cast<std::size_t>(p);
      batch_.token[i] = tokens[i];
      batch_.pos[i] = p < 0      ? static_cast<llama_pos>(size_)
                      : pi < old ? tree_.pos[pi] + 1
                                 : batch_.pos[pi - old] + 1;
      batch_.n_seq_id[i] = 0;
      batch_.logits[i] = 1;
    }
    // A new leaf's id marks the new nodes up to the old tree, and (copied from an id through
    // the old node it hangs from, up to that node's position) the held tokens and the old
    // path.
    llama_memory_t mem = llama_get_memory(ctx_);
    auto id = static_cast<llama_seq_id>(tree_.used);
    for (std::size_t i = 0; i < n; ++i) {
      if (tree_.scratch[i] != 0) continue;
      ++id;
      std::int32_t u = static_cast<std::int32_t>(old + i);
      for (; u >= static_cast<std::int32_t>(old); u = parents[static_cast<std::size_t>(u) - old]) {
        const std::size_t b = static_cast<std::size_t>(u) - old;
        batch_.seq_id[b][batch_.n_seq_id[b]++] = id;
      }
      if (u >= 0)
        llama_memory_seq_cp(mem, tree_.leaf[static_cast<std::size_t>(u)], id, -1,
                            tree_.pos[static_cast<std::size_t>(u)] + 1);
      else if (size_ > 0)
        llama_memory_seq_cp(mem, 0, id, -1, -1);
    }
    tree_.used = static_cast<std::uint32_t>(id);
    const std::int32_t rc = llama_decode(ctx_, batch_);
    if (rc != 0) {
      drop_tree();
      return detail::fail(&error_, map_decode_error(rc),
                          "extend_tree: llama_decode returned %d for %zu nodes",
                          static_cast<int>(rc), n);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = llama_get_logits_ith(ctx_, static_cast<std::int32_t>(i));
      if (row == nullptr) {
        drop_tree();
        return detail::fail(&error_, errc::decode_failed, "extend_tree: no logits for node %zu",
                            old + i);
      }
      std::memcpy(rows.data() + i * n_vocab_, row, n_vocab_ * sizeof(float));
    }
    for (std::size_t i = 0; i < n; ++i) {
      tree_.leaf[old + i] = batch_.seq_id[i][0];
      tree_.pos[old + i] = batch_.pos[i];
      tree_.parent[old + i] = parents[i];
      tree_.token[old + i] = tokens[i];
    }
    tree_.nodes = old + n;
    tree_.first = old;
    return errc::ok;
  }

  /// Keeps the root-to-node chain `path` of the pending tree (path[0] a root,
  /// parents[path[j]] == path[j-1]) and drops the other nodes' cells. The session then
  /// holds the old tokens followed by the path's tokens (`size()` grows by path.size())
  /// and `logits()` equals row path.back() of the `score_tree` call (after `extend_tree`:
  /// of the call that scored that node when it was the last call, else `logits()` is empty
  /// until the next append). An empty path drops the tree and leaves the session as before
  /// `score_tree`.
  /// Errors: invalid_argument (no pending tree, or `path` not a chain of it; a pending
  /// tree stays pending); after a tree scored path by path, `append`'s errors (the tree is
  /// dropped and the session as before `score_tree`); decode_failed (llama.cpp lost the
  /// tree's logits: only when the context was used directly through `get()`; the tree is
  /// dropped).
  [[nodiscard]] errc commit_tree(std::span<const std::int32_t> path) noexcept {
    if (!tree_.pending)
      return detail::fail(&error_, errc::invalid_argument, "commit_tree: no pending tree");
    for (std::size_t j = 0; j < path.size(); ++j) {
      const std::int32_t want = j == 0 ? -1 : path[j - 1];
      if (path[j] < 0 || static_cast<std::size_t>(path[j]) >= tree_.nodes ||
          tree_.parent[static_cast<std::size_t>(path[j])] != want)
        return detail::fail(&error_, errc::invalid_argument,
                            "commit_tree: path[%zu] = %d is not a child of %d in the tree of %zu "
                            "nodes",
                            j, static_cast<int>(path[j]), static_cast<int>(want), tree_.nodes);
    }
    if (path.empty()) {
      drop_tree();
      return errc::ok;
    }
    if (tree_.by_paths) {
      tree_.pending = false;
      for (std::size_t j = 0; j < path.size(); ++j)
        tree_.scratch[j] = tree_.token[static_cast<std::size_t>(path[j])];
      if (const errc e = decode(std::span(tree_.scratch.data(), path.size()), {}); e != errc::ok)
        return detail::fail(&error_, e, "commit_tree: appending a path of %zu tokens failed",
                            path.size());
      return errc::ok;
    }
    // llama.cpp keeps the rows of the last decode only: the nodes from tree_.first on.
    const auto last = static_cast<std::size_t>(path.back());
    const float* row =
        last < tree_.first
            ? nullptr
            : llama_get_logits_ith(ctx_, static_cast<std::int32_t>(last - tree_.first));
    if (row == nullptr && last >= tree_.first) {
      drop_tree();
      return detail::fail(&error_, errc::decode_failed,
                          "commit_tree: llama.cpp has no logits for node %d",
                          static_cast<int>(path.back()));
    }
    if (row != nullptr) std::memcpy(logits_.data(), row, n_vocab_ * sizeof(float));
    // A leaf below path.back(): its cells at the path's positions are the path's nodes.
    const auto p0 = static_cast<llama_pos>(size_);
    llama_memory_seq_cp(llama_get_memory(ctx_), tree_.leaf[static_cast<std::size_t>(path.back())],
                        0, p0, p0 + static_cast<llama_pos>(path.size()));
    drop_tree();
    size_ += path.size();
    has_logits_ = row != nullptr;
    return errc::ok;
  }

  /// The llama.cpp context, still owned by this session. Changing its memory directly
  /// desynchronises `size()`.
  [[nodiscard]] ::llama_context* get() const noexcept { return ctx_; }

 private:
  llama_session(const llama_model_handle& model, ::llama_context* ctx, std::uint32_t leaves)
      : ctx_(ctx),
        vocab_(model.vocab()),
        n_vocab_(model.vocab_size()),
        n_ctx_(llama_n_ctx(ctx)),
        n_batch_(llama_n_batch(ctx)),
        logits_(n_vocab_, 0.0f) {
    batch_ = llama_batch_init(static_cast<std::int32_t>(n_batch_), 0,
                              static_cast<std::int32_t>(std::max<std::uint32_t>(leaves, 1)));
    tree_.leaves = leaves;
    tree_.parent.assign(n_batch_, -1);
    tree_.leaf.assign(n_batch_, 0);
    tree_.chain.assign(n_batch_, 0);
    tree_.pos.assign(n_batch_, 0);
    tree_.token.assign(n_batch_, 0);
    tree_.scratch.assign(n_batch_, 0);
    tree_.saved.assign(n_vocab_, 0.0f);
  }

  void release() noexcept { detail::llama_release(batch_, ctx_); }

  // score_tree in one llama_decode: leaf j gets helper id 1 + j, given to every node from
  // it up to its root; tree_.leaf[i] becomes the first id of node i.
  [[nodiscard]] errc score_at_once(std::span<const token_id> tokens,
                                   std::span<const std::int32_t> parents, std::span<float> rows,
                                   std::size_t leaves) noexcept {
    const std::size_t n = tokens.size();
    batch_.n_tokens = static_cast<std::int32_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int32_t p = parents[i];
      batch_.token[i] = tokens[i];
      batch_.pos[i] =
          p < 0 ? static_cast<llama_pos>(size_) : batch_.pos[static_cast<std::size_t>(p)] + 1;
      batch_.n_seq_id[i] = 0;
      batch_.logits[i] = 1;
    }
    llama_seq_id id = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (tree_.leaf[i] != 0) continue;
      ++id;
      for (auto u = static_cast<std::int32_t>(i); u >= 0; u = parents[static_cast<std::size_t>(u)])
        batch_.seq_id[u][batch_.n_seq_id[u]++] = id;
    }
    tree_.used = static_cast<std::uint32_t>(id);
    llama_memory_t mem = llama_get_memory(ctx_);
    if (size_ > 0)
      for (llama_seq_id s = 1; s <= id; ++s) llama_memory_seq_cp(mem, 0, s, -1, -1);
    const std::int32_t rc = llama_decode(ctx_, batch_);
    if (rc != 0) {
      remove_tree_ids();
      return detail::fail(&error_, map_decode_error(rc),
                          "score_tree: llama_decode returned %d for %zu nodes, %zu leaves",
                          static_cast<int>(rc), n, leaves);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = llama_get_logits_ith(ctx_, static_cast<std::int32_t>(i));
      if (row == nullptr) {
        remove_tree_ids();
        return detail::fail(&error_, errc::decode_failed, "score_tree: no logits for node %zu", i);
      }
      std::memcpy(rows.data() + i * n_vocab_, row, n_vocab_ * sizeof(float));
    }
    for (std::size_t i = 0; i < n; ++i) {
      tree_.leaf[i] = batch_.seq_id[i][0];
      tree_.pos[i] = batch_.pos[i];
    }
    return errc::ok;
  }

  // score_tree path by path on sequence 0: for each node, rewind to the part of its path
  // already held (tree_.chain) and append the rest; its logits are its row. Ends with the
  // session as before (size and logits).
  [[nodiscard]] errc score_by_paths(std::span<const token_id> tokens,
                                    std::span<const std::int32_t> parents,
                                    std::span<float> rows) noexcept {
    const std::size_t base = size_;
    const bool had_logits = has_logits_;
    std::copy(logits_.begin(), logits_.end(), tree_.saved.begin());
    std::size_t held = 0;  // tree nodes held after `base`: tree_.chain[0, held)
    errc e = errc::ok;
    std::size_t i = 0;
    for (; i < tokens.size(); ++i) {
      std::size_t d = 0;  // the path root..i into tree_.leaf[0, d), root first
      for (auto u = static_cast<std::int32_t>(i); u >= 0; u = parents[static_cast<std::size_t>(u)])
        tree_.leaf[d++] = u;
      std::reverse(tree_.leaf.begin(), tree_.leaf.begin() + static_cast<std::ptrdiff_t>(d));
      std::size_t c = 0;
      while (c < held && c < d && tree_.chain[c] == tree_.leaf[c]) ++c;
      if (c < held) {
        if (!llama_memory_seq_rm(llama_get_memory(ctx_), 0, static_cast<llama_pos>(base + c), -1)) {
          e = errc::rewind_failed;
          break;
        }
        size_ = base + c;
      }
      for (std::size_t k = c; k < d; ++k) {
        tree_.chain[k] = tree_.leaf[k];
        tree_.scratch[k - c] = tokens[static_cast<std::size_t>(tree_.leaf[k])];
      }
      held = c;
      e = decode(std::span(tree_.scratch.data(), d - c), {});
      if (e != errc::ok) break;
      held = d;
      std::memcpy(rows.data() + i * n_vocab_, logits_.data(), n_vocab_ * sizeof(float));
    }
    if (size_ > base &&
        !llama_memory_seq_rm(llama_get_memory(ctx_), 0, static_cast<llama_pos>(base), -1)) {
      clear();
      if (e == errc::ok) e = errc::rewind_failed;
    }
    if (size_ >= base) {
      size_ = base;
      has_logits_ = had_logits;
      std::copy(tree_.saved.begin(), tree_.saved.end(), logits_.begin());
    }
    if (e != errc::ok)
      return detail::fail(&error_, e, "score_tree: node %zu of %zu, scored path by path", i,
                          tokens.size());
    return errc::ok;
  }

  // The input checks of score_tree (old == 0) and extend_tree (`old` nodes pending), with
  // details in error_: size_mismatch, empty_input, invalid_argument (a parent out of
  // order); else ok.
  [[nodiscard]] errc check_nodes(const char* what, std::size_t old,
                                 std::span<const token_id> tokens,
                                 std::span<const std::int32_t> parents,
                                 std::span<const float> rows) noexcept {
    const std::size_t n = tokens.size();
    if (parents.size() != n || rows.size() != n * n_vocab_)
      return detail::fail(&error_, errc::size_mismatch,
                          "%s: %zu tokens, %zu parents, %zu floats for rows of %zu", what, n,
                          parents.size(), rows.size(), n_vocab_);
    if (n == 0) return detail::fail(&error_, errc::empty_input, "%s: no nodes", what);
    for (std::size_t i = 0; i < n; ++i)
      if (parents[i] < -1 || parents[i] >= static_cast<std::int32_t>(old + i))
        return detail::fail(&error_, errc::invalid_argument,
                            "%s: node %zu has parent %d (a parent comes first)", what, old + i,
                            static_cast<int>(parents[i]));
    return errc::ok;
  }

  // Removes every helper sequence id a tree used: its cells (which carry only helper
  // ids) are freed, the held cells keep id 0. Removing a whole sequence never fails.
  void remove_tree_ids() noexcept {
    llama_memory_t mem = llama_get_memory(ctx_);
    for (std::uint32_t s = 1; s <= tree_.used; ++s)
      llama_memory_seq_rm(mem, static_cast<llama_seq_id>(s), -1, -1);
    tree_.used = 0;
  }

  // Drops a pending tree, as commit_tree({}) would.
  void drop_tree() noexcept {
    if (!tree_.pending) return;
    remove_tree_ids();
    tree_.pending = false;
  }

  [[nodiscard]] errc check(std::span<const token_id> t) const noexcept {
    for (const token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= n_vocab_) return errc::invalid_token;
    if (t.size() > n_ctx_ - size_) return errc::context_overflow;
    return errc::ok;
  }

  [[nodiscard]] static errc map_decode_error(std::int32_t rc) noexcept {
    switch (rc) {
      case 1:
        return errc::context_overflow;  // no KV slot for the batch
      case 2:
        return errc::cancelled;  // the abort callback fired
      case -1:
        return errc::invalid_argument;  // invalid input batch
      default:
        return errc::decode_failed;  // < -1: fatal; other values: undocumented
    }
  }

  // Removes what a failed call left behind in the memory, from position `start` on.
  void roll_back(std::size_t start) noexcept {
    llama_memory_t mem = llama_get_memory(ctx_);
    if (llama_memory_seq_pos_max(mem, 0) < static_cast<llama_pos>(start)) return;
    if (!llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(start), -1)) clear();
  }

  // Appends `t`; with non-empty `rows`, copies out the logits of every position.
  [[nodiscard]] errc decode(std::span<const token_id> t, std::span<float> rows) noexcept {
    if (const errc e = check(t); e != errc::ok) return e;
    if (t.empty()) return errc::ok;
    const bool all = !rows.empty();
    const std::size_t start = size_;
    std::size_t done = 0;
    std::int32_t last_out = 0;  // output index of the last position in the last chunk
    while (done < t.size()) {
      const std::size_t n = std::min(n_batch_, t.size() - done);
      batch_.n_tokens = static_cast<std::int32_t>(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch_.token[i] = t[done + i];
        batch_.pos[i] = static_cast<llama_pos>(start + done + i);
        batch_.n_seq_id[i] = 1;
        batch_.seq_id[i][0] = 0;
        batch_.logits[i] = (all || done + i + 1 == t.size()) ? 1 : 0;
      }
      const std::int32_t rc = llama_decode(ctx_, batch_);
      if (rc != 0) {
        roll_back(start);
        return map_decode_error(rc);
      }
      if (all) {
        for (std::size_t i = 0; i < n; ++i) {
          const float* row = llama_get_logits_ith(ctx_, static_cast<std::int32_t>(i));
          if (row == nullptr) {
            roll_back(start);
            return errc::decode_failed;
          }
          std::memcpy(rows.data() + (done + i) * n_vocab_, row, n_vocab_ * sizeof(float));
        }
      }
      last_out = static_cast<std::int32_t>(n) - 1;
      done += n;
    }
    const float* last =
        all ? rows.data() + (t.size() - 1) * n_vocab_ : llama_get_logits_ith(ctx_, last_out);
    if (last == nullptr) {
      roll_back(start);
      return errc::decode_failed;
    }
    std::memcpy(logits_.data(), last, n_vocab_ * sizeof(float));
    has_logits_ = true;
    size_ = start + t.size();
    return errc::ok;
  }

  ::llama_context* ctx_ = nullptr;
  const ::llama_vocab* vocab_ = nullptr;
  llama_batch batch_{};
  std::size_t n_vocab_ = 0;
  std::size_t n_ctx_ = 0;
  std::size_t n_batch_ = 0;
  std::size_t size_ = 0;
  bool has_logits_ = false;
  std::vector<float> logits_;
  // The pending tree of score_tree.
  struct tree_state {
    std::vector<std::int32_t> parent;  // parent of each node (n_batch entries)
    std::vector<llama_seq_id> leaf;    // first helper id of each node: a leaf below it
    std::vector<std::int32_t> chain;   // score_by_paths: the tree nodes held, root first
    std::vector<llama_pos> pos;        // position of each node (scored in one pass)
    std::vector<token_id> token;       // token of each node (commit after score_by_paths)
    std::vector<token_id> scratch;     // tokens of one append
    std::vector<float> saved;          // score_by_paths: logits() before the tree
    std::size_t nodes = 0;             // nodes of the pending tree
    std::size_t first = 0;             // first node of the last llama_decode (its rows)
    std::uint32_t leaves = 0;          // most leaves (tree_leaves)
    std::uint32_t used = 0;            // helper ids 1..used carry cells
    bool pending = false;
    bool by_paths = false;  // scored path by path: no cells, commit appends the path
  } tree_;
  error_info error_;
};

static_assert(LanguageModel<llama_session> && Rewindable<llama_session> && Scoring<llama_session> &&
              HasContextLength<llama_session>);
static_assert(TreeScoring<llama_session>);

// ---- Many sequences in one context -------------------------------------------------------

/// How a llama_multi_session lays out its KV cache (llama.cpp's `kv_unified`).
enum class kv_layout : std::uint8_t {
  /// One KV stream per sequence (`kv_unified = false`, llama.cpp's default): each
  /// sequence owns `context_size / max_sequences` cells, rounded up by llama.cpp to a
  /// multiple of 256 (so the cache can hold more than `context_size` cells in all), and
  /// each token attends only its own stream. A step of N one-token decodes then costs
  /// attention over N short streams instead of over the whole shared cache: measured
  /// with llama-batched-bench on a 512x8 model (2 threads, 32 prompt and 64 generated
  /// tokens), 907-914 against 821-832 tokens/s at N = 8, 1102-1146 against 845-869 at
  /// N = 16 and 1206 against 696 at N = 32. Costs: a fork copies the parent's whole stream
  /// (llama.cpp copies the buffer at the next decode: memory per fork, no recompute);
  /// llama.cpp runs a batch as ubatches holding equally many tokens of each of a run of
  /// consecutive sequence ids, so entries of unequal lengths (a prompt chunk beside
  /// one-token decodes, per-request draft lengths in a speculative verification) take
  /// several forward passes where the unified layout takes one.
  per_sequence,
  /// One KV buffer for all sequences (`kv_unified = true`): a sequence may grow into
  /// the whole `context_size` (all together may not), and a fork shares the parent's
  /// cells (no copy, no memory). Pick it for many forks of a long prefix under a
  /// memory limit, or for sequences of very different lengths.
  unified,
};

/// Settings of a llama_multi_session: those of one session, the number of sequences and
/// the KV layout.
///
/// Memory: besides the KV cache (`context_size` cells for all sequences together; in the
/// per_sequence layout each sequence's share is rounded up to a multiple of 256 cells),
/// the context's compute buffer is sized for one ubatch of `session.batch_size` tokens
/// against the cache, and its logits for `max_outputs` rows. Set
/// `session.batch_size` to the most tokens one append carries: under a `scheduler`, its
/// `max_batch_tokens` (a larger batch size only reserves memory no step uses; a smaller
/// one splits a step into several forward passes). The default, 256, is
/// scheduler_options' default cap.
struct llama_multi_session_options {
  /// Context size (here: the KV cache, in tokens, for all sequences together), batch
  /// size (most tokens per llama_decode, and llama.cpp's n_ubatch), threads, flash
  /// attention and abort callback, as for llama_session.
  llama_session_options session{.batch_size = 256};
  /// Most sequences open at once: llama.cpp's n_seq_max, in [1, 256].
  std::uint32_t max_sequences = 4;
  /// Most logits rows one llama_decode produces (llama.cpp's n_outputs_max); 0 or less
  /// than `max_sequences`: `max_sequences`, the rows an append requests (one per entry).
  /// `score` computes every position's row, so it decodes in chunks of at most this many
  /// tokens: raise it for long scores (speculative verification of many draft tokens).
  std::uint32_t max_outputs = 0;
  /// The KV layout. Default unified: every sequence may grow into the whole
  /// `context_size` and forks share their parent's cells, so a context sized for the
  /// work fits it whatever the mix of lengths. Choose per_sequence for throughput at many
  /// sequences (see kv_layout) when each sequence fits `context_size / max_sequences`
  /// tokens: with `context_size` under 256 x `max_sequences`, llama.cpp's rounding makes
  /// the cache larger than `context_size` (e.g. 4096 tokens for 64 sequences become 64
  /// streams of 256 cells, 16384 in all) and caps each sequence at its stream.
  kv_layout layout = kv_layout::unified;
};

/// Up to `max_sequences()` sequences in one llama.cpp context, its KV cache laid out as
/// `options.layout` says (kv_layout: one stream per sequence, or one unified buffer), and
/// one `llama_batch` with per-token sequence ids (one id per token) for every append. A
/// MultiSequenceModel with score and a per-sequence context length; each sequence
/// predicts as a lone llama_session fed the same tokens, within float rounding (the
/// conformance suite's default tolerance). Move-only; borrows the model.
///
/// Each llama_batch lists its tokens in sequence-id order, whatever the order of the
/// call's entries: with one stream per sequence llama.cpp splits a batch into ubatches of
/// consecutive sequence ids holding equally many tokens each (`split_equal`), so a step of
/// one-token decodes over sequences 0..N-1 is one forward pass, and a step that adds a
/// prompt chunk to one of them is two (the decodes with the chunk's first token, then the
/// rest of the chunk). Sequence ids with gaps (0, 1, 3) take one pass per run of
/// consecutive ids; `open` hands out the lowest free id, which keeps them compact.
///
/// Logits are requested only for the last token of each batch entry (and the scored
/// tokens of a score), and llama.cpp reserves rows for `max_outputs` of them (see
/// llama_multi_session_options): a call that needs more rows decodes in several chunks.
/// Each sequence keeps two logits buffers, sized at creation: a call writes the
/// spare one and swaps on success, so a failed call leaves the old logits in place.
/// Allocation: none on tandem's side after create.
///
/// Errors are MultiSequenceModel's. Per-sequence context: context_length() is the cells
/// one sequence can hold: its stream's size (per_sequence) or the shared cache's size
/// (unified); an append past it gives `context_overflow` before anything is decoded. In
/// the unified layout a batch the cache cannot hold (the cells of all sequences together)
/// also gives `context_overflow`, from llama.cpp ("no KV slot"). A failed
/// llama_decode (`decode_failed`, `cancelled` from the abort callback, `invalid_argument`
/// for a batch llama.cpp rejects, `context_overflow`) removes every token of the call
/// from every sequence of the batch again, so all sequences are as before the call;
/// `last_error()` names the batch's sequences. On a model whose memory cannot drop a
/// partial tail (recurrent models) that removal can fail: such a sequence is closed
/// and `last_error()` says so.
class llama_multi_session {
 public:
  /// Creates a context with room for `options.max_sequences` sequences over `model`.
  /// Errors: invalid_argument (max_sequences outside [1, 256], and llama_session's
  /// cases), out_of_memory (llama.cpp could not create the context). `info` (not null)
  /// receives the details.
  [[nodiscard]] static result<llama_multi_session> create(
      const llama_model_handle& model, const llama_multi_session_options& options = {},
      error_info* info = nullptr) {
    const llama_session_options& o = options.session;
    if (model.get() == nullptr || model.vocab_only())
      return detail::fail(info, errc::invalid_argument, "llama_multi_session: no usable model");
    if (!detail::llama_options_valid(o) || options.max_sequences == 0 ||
        options.max_sequences > 256)
      return detail::fail(info, errc::invalid_argument,
                          "llama_multi_session: an option is outside its domain");
    llama_context_params p =
        detail::llama_context_params_of(o, static_cast<std::uint32_t>(options.max_sequences));
    p.kv_unified = options.layout == kv_layout::unified;
    // The compute buffer's logits and the output buffer get this many rows, not n_batch.
    p.n_outputs_max = std::max(options.max_outputs, options.max_sequences);
    ::llama_context* ctx = llama_init_from_model(model.get(), p);
    if (ctx == nullptr)
      return detail::fail(info, errc::out_of_memory,
                          "llama_multi_session: llama.cpp could not create the context");
    return llama_multi_session(model, ctx, options.max_sequences, p.n_outputs_max, options.layout);
  }

  ///@{
  /// Takes over `o`'s context and buffers; `o` may only be destroyed or assigned to.
  llama_multi_session(llama_multi_session&& o) noexcept
      : ctx_(std::exchange(o.ctx_, nullptr)),
        batch_(std::exchange(o.batch_, llama_batch{})),
        n_vocab_(o.n_vocab_),
        n_ctx_(o.n_ctx_),
        n_batch_(o.n_batch_),
        max_outputs_(o.max_outputs_),
        layout_(o.layout_),
        slots_(std::move(o.slots_)),
        order_(std::move(o.order_)),
        row_base_(std::move(o.row_base_)),
        error_(o.error_) {}
  llama_multi_session& operator=(llama_multi_session&& o) noexcept {
    if (this != &o) {
      release();
      ctx_ = std::exchange(o.ctx_, nullptr);
      batch_ = std::exchange(o.batch_, llama_batch{});
      n_vocab_ = o.n_vocab_;
      n_ctx_ = o.n_ctx_;
      n_batch_ = o.n_batch_;
      max_outputs_ = o.max_outputs_;
      layout_ = o.layout_;
      slots_ = std::move(o.slots_);
      order_ = std::move(o.order_);
      row_base_ = std::move(o.row_base_);
      error_ = o.error_;
    }
    return *this;
  }
  ///@}
  llama_multi_session(const llama_multi_session&) = delete;
  llama_multi_session& operator=(const llama_multi_session&) = delete;
  ~llama_multi_session() { release(); }

  /// Number of tokens in the vocabulary.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return n_vocab_; }
  /// Most sequences open at once (n_seq_max).
  [[nodiscard]] std::size_t max_sequences() const noexcept { return slots_.size(); }
  /// Most tokens one sequence can hold (llama.cpp's n_ctx_seq): its stream's size
  /// (per_sequence layout) or the shared cache's size (unified).
  [[nodiscard]] std::size_t context_length() const noexcept { return n_ctx_; }
  /// The KV layout the context was created with.
  [[nodiscard]] kv_layout layout() const noexcept { return layout_; }
  /// Most tokens one llama_decode takes (n_batch); longer batches are split.
  [[nodiscard]] std::size_t batch_size() const noexcept { return n_batch_; }
  /// Details of the last failed call.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }
  /// The llama.cpp context, still owned by this object.
  [[nodiscard]] ::llama_context* get() const noexcept { return ctx_; }

  /// True when `s` is open.
  [[nodiscard]] bool is_open(seq_id s) const noexcept { return slots_.is_open(s); }
  /// Tokens in `s`; 0 when not open.
  [[nodiscard]] std::size_t size(seq_id s) const noexcept { return is_open(s) ? at(s).size : 0; }
  /// Next-token logits of `s` (vocab_size() floats owned by this object); empty when `s`
  /// is not open, has no tokens or was just rewound.
  [[nodiscard]] std::span<const float> logits(seq_id s) const noexcept {
    if (!is_open(s) || !at(s).has_logits) return {};
    return {at(s).logits.data() + at(s).current * n_vocab_, n_vocab_};
  }

  /// Opens an empty sequence. Errors: `no_free_sequence`.
  [[nodiscard]] result<seq_id> open() noexcept {
    const result<seq_id> s_free = slots_.find_free("open", error_);
    if (!s_free) return s_free.error();
    const seq_id s = *s_free;
    slot& e = at(s);
    e.open = true;
    e.size = 0;
    e.has_logits = false;
    return s;
  }

  /// Closes `s` and frees its cache cells (those a fork still shares stay). Errors:
  /// `invalid_sequence`.
  [[nodiscard]] errc close(seq_id s) noexcept {
    TANDEM_TRY(slots_.require_open(s, "close", error_));
    llama_memory_seq_rm(llama_get_memory(ctx_), s, -1, -1);
    at(s).open = false;
    at(s).size = 0;
    at(s).has_logits = false;
    return errc::ok;
  }

  /// Appends every entry's tokens in llama_decode calls of at most batch_size() tokens
  /// (one call when they fit), logits for the last token of each entry. Errors and state
  /// left: see the class comment.
  [[nodiscard]] errc append(std::span<const seq_tokens> batch) noexcept {
    TANDEM_TRY(validate(batch));
    return decode(batch, {}, {});
  }

  /// Appends `t` to `s` with logits for every position, written into `rows` (rows
  /// unspecified after an error), in llama_decode calls of at most
  /// min(batch_size(), max_outputs) tokens. Errors: those of a one-entry append,
  /// `size_mismatch`.
  [[nodiscard]] errc score(seq_id s, std::span<const token_id> t, std::span<float> rows) noexcept {
    const seq_tokens one{s, t};
    const std::span<const seq_tokens> batch(&one, 1);
    TANDEM_TRY(validate(batch));
    if (rows.size() != t.size() * n_vocab_)
      return detail::fail(&error_, errc::size_mismatch, "score: %zu floats for %zu tokens",
                          rows.size(), t.size());
    const std::size_t all = t.size();
    return decode(batch, std::span<const std::size_t>(&all, 1), rows);
  }

  /// Appends every entry in one batch (llama_decode calls of at most batch_size() tokens),
  /// logits requested for exactly the last `scored[i]` tokens of entry i (and its last
  /// token), those rows written into `rows` in entry order (MultiSequenceBatchScoring).
  /// Errors and state left: append's, `size_mismatch` (rows unspecified after an error).
  [[nodiscard]] errc score(std::span<const seq_tokens> batch, std::span<const std::size_t> scored,
                           std::span<float> rows) noexcept {
    TANDEM_TRY(validate(batch));
    TANDEM_TRY(detail::check_score_rows(batch, scored, n_vocab_, rows.size(), &error_));
    return decode(batch, scored, rows);
  }

  /// Drops the last `n` tokens of `s` (llama_memory_seq_rm); its logits are empty until
  /// the next append. Errors: `invalid_sequence`, `rewind_out_of_range`, `rewind_failed`
  /// (llama.cpp cannot drop a partial tail; `s` unchanged).
  [[nodiscard]] errc rewind(seq_id s, std::size_t n) noexcept {
    TANDEM_TRY(slots_.require_open(s, "rewind", error_));
    slot& e = at(s);
    if (n > e.size)
      return detail::fail(&error_, errc::rewind_out_of_range, "rewind: %zu tokens of %zu", n,
                          e.size);
    if (n == 0) return errc::ok;
    if (!llama_memory_seq_rm(llama_get_memory(ctx_), s, static_cast<llama_pos>(e.size - n), -1))
      return detail::fail(&error_, errc::rewind_failed,
                          "rewind: llama.cpp could not drop the tail of sequence %d", s);
    e.size -= n;
    e.has_logits = false;
    return errc::ok;
  }

  /// Opens a sequence holding every token of `s` (llama_memory_seq_cp: nothing is
  /// recomputed) with a copy of its logits. Unified layout: the new sequence shares the
  /// parent's cells. Per_sequence layout: the parent's whole stream is copied into the new
  /// sequence's (llama.cpp supports only whole-stream copies between streams, and makes
  /// them at the start of the next llama_decode, before that call's tokens are placed, so
  /// calls in between see the fork complete). Errors: `invalid_sequence`,
  /// `no_free_sequence`.
  [[nodiscard]] result<seq_id> fork(seq_id s) noexcept {
    const result<seq_id> c_free = slots_.fork_target(s, error_);
    if (!c_free) return c_free.error();
    const seq_id c = *c_free;
    const slot& parent = at(s);
    slot& child = at(c);
    if (parent.size > 0) llama_memory_seq_cp(llama_get_memory(ctx_), s, c, -1, -1);
    child.open = true;
    child.size = parent.size;
    child.has_logits = parent.has_logits;
    if (parent.has_logits)
      std::memcpy(child.logits.data() + child.current * n_vocab_,
                  parent.logits.data() + parent.current * n_vocab_, n_vocab_ * sizeof(float));
    return c;
  }

 private:
  struct slot {
    bool open = false;
    [[nodiscard]] bool in_use() const noexcept { return open; }
    bool has_logits = false;
    std::size_t current = 0;  // which half of `logits` holds the current row
    std::size_t size = 0;
    std::vector<float> logits;  // two rows of n_vocab_
  };

  llama_multi_session(const llama_model_handle& model, ::llama_context* ctx, std::size_t n_seq,
                      std::size_t n_outputs, kv_layout layout)
      : ctx_(ctx),
        n_vocab_(model.vocab_size()),
        n_ctx_(llama_n_ctx_seq(ctx)),
        n_batch_(llama_n_batch(ctx)),
        max_outputs_(std::min(n_batch_, n_outputs)),
        layout_(layout),
        slots_(n_seq),
        order_(n_seq),
        row_base_(n_seq) {
    for (slot& e : slots_) e.logits.assign(2 * n_vocab_, 0.0f);
    batch_ = llama_batch_init(static_cast<std::int32_t>(n_batch_), 0, 1);
  }

  void release() noexcept { detail::llama_release(batch_, ctx_); }

  slot& at(seq_id s) noexcept { return slots_[static_cast<std::size_t>(s)]; }
  const slot& at(seq_id s) const noexcept { return slots_[static_cast<std::size_t>(s)]; }

  [[nodiscard]] errc validate(std::span<const seq_tokens> batch) noexcept {
    return detail::validate_batch(
        batch, n_vocab_, n_ctx_, [this](seq_id s) { return is_open(s); },
        [this](seq_id s) { return at(s).size; }, &error_);
  }

  // Removes every token of a failed call again; closes sequences that cannot be rolled
  // back and records the details.
  errc roll_back(std::span<const seq_tokens> batch, errc code, const char* why) noexcept {
    llama_memory_t mem = llama_get_memory(ctx_);
    int closed = 0;
    char ids[96];
    std::size_t used = 0;
    ids[0] = '\0';
    for (const seq_tokens& b : batch) {
      if (b.tokens.empty()) continue;
      slot& e = at(b.seq);
      if (used + 12 < sizeof ids)
        used += static_cast<std::size_t>(
            std::snprintf(ids + used, sizeof ids - used, used == 0 ? "%d" : ",%d", b.seq));
      if (llama_memory_seq_pos_max(mem, b.seq) < static_cast<llama_pos>(e.size)) continue;
      if (!llama_memory_seq_rm(mem, b.seq, static_cast<llama_pos>(e.size), -1)) {
        llama_memory_seq_rm(mem, b.seq, -1, -1);
        e.open = false;
        e.size = 0;
        e.has_logits = false;
        ++closed;
      }
    }
    return detail::fail(&error_, code,
                        "%s; sequences {%s} rolled back to their state before the call, %d of "
                        "them closed (their memory could not drop the tail)",
                        why, ids, closed);
  }

  [[nodiscard]] static errc map_decode_error(std::int32_t rc) noexcept {
    switch (rc) {
      case 1:
        return errc::context_overflow;
      case 2:
        return errc::cancelled;
      case -1:
        return errc::invalid_argument;
      default:
        return errc::decode_failed;
    }
  }

  // Decodes the batch (validated) in chunks of n_batch_ tokens, its entries taken in
  // sequence-id order (see the class comment), logits requested for the last token of each
  // entry and, with `scored` (a score), for the last scored[e] tokens of entry e, whose
  // rows go to `rows` in entry order; each entry's last logits go to its spare buffer.
  // Sizes and buffers are committed only when every chunk succeeded.
  [[nodiscard]] errc decode(std::span<const seq_tokens> batch, std::span<const std::size_t> scored,
                            std::span<float> rows) noexcept {
    const std::size_t n = batch.size();  // distinct open sequences: at most order_.size()
    for (std::size_t e = 0, row = 0; e < n; ++e) {
      order_[e] = e;
      row_base_[e] = row;
      if (!scored.empty()) row += scored[e];
    }
    const auto first = order_.begin(), last = first + static_cast<std::ptrdiff_t>(n);
    std::sort(first, last,
              [&](std::size_t x, std::size_t y) { return batch[x].seq < batch[y].seq; });
    // Token `offset` of entry e gets a row of `rows` when it is among the last scored[e].
    const auto scored_row = [&](std::size_t e, std::size_t offset) {
      return !scored.empty() && offset + scored[e] >= batch[e].tokens.size();
    };
    std::size_t k = 0, offset = 0;  // the next token: order_[k]'s token `offset`
    const auto skip_empty = [&](std::size_t& j, std::size_t& off) {
      while (j < n && off == batch[order_[j]].tokens.size()) ++j, off = 0;
    };
    skip_empty(k, offset);
    while (k < n) {
      std::size_t filled = 0, outputs = 0;  // outputs: rows this chunk requests, <= max_outputs_
      const std::size_t first_k = k, first_offset = offset;
      while (k < n && filled < n_batch_) {
        const std::size_t e = order_[k];
        const seq_tokens& b = batch[e];
        const bool out = scored_row(e, offset) || offset + 1 == b.tokens.size();
        if (out && outputs == max_outputs_) break;
        outputs += out ? 1 : 0;
        const std::size_t i = filled++;
        batch_.token[i] = b.tokens[offset];
        batch_.pos[i] = static_cast<llama_pos>(at(b.seq).size + offset);
        batch_.n_seq_id[i] = 1;
        batch_.seq_id[i][0] = b.seq;
        batch_.logits[i] = out ? 1 : 0;
        ++offset;
        skip_empty(k, offset);
      }
      batch_.n_tokens = static_cast<std::int32_t>(filled);
      const std::int32_t rc = llama_decode(ctx_, batch_);
      if (rc != 0) return roll_back(batch, map_decode_error(rc), "llama_decode failed");
      // Copy out this chunk's logits.
      std::size_t kk = first_k, o = first_offset;
      for (std::size_t i = 0; i < filled; ++i) {
        const std::size_t e = order_[kk];
        const seq_tokens& b = batch[e];
        const bool is_last = o + 1 == b.tokens.size();
        const bool to_rows = scored_row(e, o);
        if (to_rows || is_last) {
          const float* r = llama_get_logits_ith(ctx_, static_cast<std::int32_t>(i));
          if (r == nullptr) return roll_back(batch, errc::decode_failed, "no logits row");
          if (to_rows) {
            const std::size_t row = row_base_[e] + o + scored[e] - b.tokens.size();
            std::memcpy(rows.data() + row * n_vocab_, r, n_vocab_ * sizeof(float));
          }
          if (is_last) {
            slot& s = at(b.seq);
            std::memcpy(s.logits.data() + (1 - s.current) * n_vocab_, r, n_vocab_ * sizeof(float));
          }
        }
        ++o;
        skip_empty(kk, o);
      }
    }
    for (const seq_tokens& b : batch) {
      if (b.tokens.empty()) continue;
      slot& s = at(b.seq);
      s.size += b.tokens.size();
      s.current = 1 - s.current;
      s.has_logits = true;
    }
    return errc::ok;
  }

  ::llama_context* ctx_ = nullptr;
  llama_batch batch_{};
  std::size_t n_vocab_ = 0;
  std::size_t n_ctx_ = 0;
  std::size_t n_batch_ = 0;
  // Most logits rows one llama_decode may request (a chunk ends before the next one):
  // llama.cpp's n_outputs_max, min(n_batch_, max(max_outputs, n_seq_max)), since
  // llama.cpp aborts on more.
  std::size_t max_outputs_ = 0;
  kv_layout layout_ = kv_layout::unified;
  detail::sequence_table<slot> slots_;
  // decode()'s scratch, one element per sequence (a batch has at most one entry each):
  // the entries in sequence-id order, and each entry's first row in a score's `rows`.
  std::vector<std::size_t> order_;
  std::vector<std::size_t> row_base_;
  error_info error_;
};

static_assert(MultiSequenceModel<llama_multi_session> &&
              MultiSequenceScoring<llama_multi_session> &&
              MultiSequenceBatchScoring<llama_multi_session> &&
              HasContextLength<llama_multi_session>);
static_assert(LanguageModel<sequence<llama_multi_session>> &&
              Rewindable<sequence<llama_multi_session>> && Scoring<sequence<llama_multi_session>>);

// ---- Tokenizer ---------------------------------------------------------------------------

/// How text maps to tokens.
struct llama_tokenizer_options {
  /// `encode` adds the BOS/EOS tokens the model asks for (GGUF add_bos/add_eos).
  bool add_special = false;
  /// `encode` turns the text of special tokens (e.g. `</s>`) into those tokens instead of
  /// plain text. Off by default: user text cannot inject control tokens.
  bool parse_special = false;
  /// `decode` and `piece` write the text of special tokens; off: they write nothing.
  bool render_special = false;
};

/// A tokenizer over a llama.cpp model's own vocabulary; satisfies `Tokenizer`. Borrows
/// the model, which must outlive it. Copyable (it holds only pointers and options).
class llama_tokenizer {
 public:
  /// A tokenizer over `model`'s vocabulary (a vocab-only model is enough).
  explicit llama_tokenizer(const llama_model_handle& model,
                           const llama_tokenizer_options& options = {})
      : vocab_(model.vocab()),
        n_vocab_(model.vocab_size()),
        options_(options),
        encodable_(can_encode_everything(vocab_, n_vocab_)) {}

  /// Number of tokens in the vocabulary.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return n_vocab_; }

  /// Appends the tokens of `text` to `ids`.
  /// Errors: capacity_exceeded (text longer than INT32_MAX bytes or too many tokens),
  /// unsupported (a sentencepiece-style vocabulary without the 256 byte tokens
  /// `<0x00>`..`<0xFF>`: llama.cpp would throw an exception it does not catch for text it
  /// cannot cover, so such vocabularies are refused), out_of_memory. On error `ids` is
  /// as before. Allocates (not for the per-token path).
  [[nodiscard]] errc encode(std::string_view text, std::vector<token_id>& ids) const {
    if (!encodable_) return errc::unsupported;
    if (text.size() > static_cast<std::size_t>(INT32_MAX)) return errc::capacity_exceeded;
    return detail::llama_fill(ids, text.size() + 4, [&](token_id* dst, std::int32_t room) {
      return llama_tokenize(vocab_, text.data(), static_cast<std::int32_t>(text.size()), dst, room,
                            options_.add_special, options_.parse_special);
    });
  }

  /// Appends the text of `ids` to `out` (llama_detokenize; special tokens rendered only
  /// with `render_special`; the leading space a sentencepiece vocabulary adds is removed).
  /// Errors: invalid_token (an id outside the vocabulary), capacity_exceeded (more than
  /// INT32_MAX tokens or bytes). On error `out` is as before.
  [[nodiscard]] errc decode(std::span<const token_id> ids, std::string& out) const {
    for (const token_id x : ids)
      if (!valid(x)) return errc::invalid_token;
    if (ids.size() > static_cast<std::size_t>(INT32_MAX)) return errc::capacity_exceeded;
    return detail::llama_fill(out, ids.size() * 8 + 16, [&](char* dst, std::int32_t room) {
      return llama_detokenize(vocab_, ids.data(), static_cast<std::int32_t>(ids.size()), dst, room,
                              false, options_.render_special);
    });
  }

  /// Appends the raw text of one token (llama_token_to_piece: byte tokens give their
  /// byte, which may be part of a UTF-8 character; a sentencepiece space marker becomes a
  /// space). Errors: invalid_token, capacity_exceeded (llama.cpp still found the room it
  /// asked for too small; `out` as before). Allocates only when `out` must grow.
  [[nodiscard]] errc piece(token_id id, std::string& out) const {
    return append_piece(id, out, options_.render_special);
  }

  /// Appends the bytes token `id` adds to a generated text, for output constraints
  /// (`ByteTokenizer`, tandem/constrain): llama_token_to_piece without special rendering
  /// (byte tokens give their byte, a sentencepiece space marker a space); control, unknown
  /// and unused tokens have no bytes (nothing appended). Errors: as piece().
  [[nodiscard]] errc token_bytes(token_id id, std::string& out) const {
    if (!valid(id)) return errc::invalid_token;
    const auto attr = llama_vocab_get_attr(vocab_, id);
    if ((attr & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN | LLAMA_TOKEN_ATTR_UNUSED)) !=
        0)
      return errc::ok;
    return append_piece(id, out, false);
  }

  /// The beginning-of-sequence token. Errors: not_found (the model has none).
  [[nodiscard]] result<token_id> bos() const noexcept { return special(llama_vocab_bos(vocab_)); }
  /// The end-of-sequence token. Errors: not_found.
  [[nodiscard]] result<token_id> eos() const noexcept { return special(llama_vocab_eos(vocab_)); }
  /// The end-of-turn token. Errors: not_found.
  [[nodiscard]] result<token_id> eot() const noexcept { return special(llama_vocab_eot(vocab_)); }
  /// True when the model asks for BOS before a prompt.
  [[nodiscard]] bool adds_bos() const noexcept { return llama_vocab_get_add_bos(vocab_); }
  /// True when `id` ends generation (EOS, EOT and the model's other end-of-generation
  /// tokens). False for ids outside the vocabulary.
  [[nodiscard]] bool is_eog(token_id id) const noexcept {
    return valid(id) && llama_vocab_is_eog(vocab_, id);
  }
  /// True when `id` is a control token (BOS, EOS, ...). False outside the vocabulary.
  [[nodiscard]] bool is_control(token_id id) const noexcept {
    return valid(id) && llama_vocab_is_control(vocab_, id);
  }
  /// The vocabulary's stored text of `id` (e.g. `"\u2581the"` or `<0x0A>`, unlike `piece`,
  /// which renders it), owned by the model. Errors: invalid_token.
  [[nodiscard]] result<std::string_view> token_text(token_id id) const noexcept {
    if (!valid(id)) return errc::invalid_token;
    const char* s = llama_vocab_get_text(vocab_, id);
    return std::string_view(s != nullptr ? s : "");
  }
  /// token_text(id), under the name vocab_map's piece_source_of reads.
  [[nodiscard]] result<std::string_view> raw_piece(token_id id) const noexcept {
    return token_text(id);
  }
  /// True when `id` is a byte token (`<0xNN>`). False outside the vocabulary.
  [[nodiscard]] bool is_byte(token_id id) const noexcept {
    return has_attr(id, LLAMA_TOKEN_ATTR_BYTE);
  }
  /// True when `id` is the unknown token. False outside the vocabulary.
  [[nodiscard]] bool is_unknown(token_id id) const noexcept {
    return has_attr(id, LLAMA_TOKEN_ATTR_UNKNOWN);
  }
  /// True when `id` is an unused entry (e.g. the `[PAD151665]` padding converters add).
  /// False outside the vocabulary.
  [[nodiscard]] bool is_unused(token_id id) const noexcept {
    return has_attr(id, LLAMA_TOKEN_ATTR_UNUSED);
  }
  /// The vocabulary, owned by the model.
  [[nodiscard]] const ::llama_vocab* get() const noexcept { return vocab_; }

 private:
  [[nodiscard]] bool valid(token_id x) const noexcept {
    return x >= 0 && static_cast<std::size_t>(x) < n_vocab_;
  }
  [[nodiscard]] bool has_attr(token_id x, enum llama_token_attr a) const noexcept {
    return valid(x) && (llama_vocab_get_attr(vocab_, x) & a) != 0;
  }
  [[nodiscard]] errc append_piece(token_id id, std::string& out, bool special) const {
    if (!valid(id)) return errc::invalid_token;
    char buf[64];
    std::int32_t r = llama_token_to_piece(vocab_, id, buf, sizeof buf, 0, special);
    if (r >= 0) {
      out.append(buf, static_cast<std::size_t>(r));
      return errc::ok;
    }
    const std::size_t old = out.size();
    out.resize(old + static_cast<std::size_t>(-r));
    r = llama_token_to_piece(vocab_, id, out.data() + old, -r, 0, special);
    if (r < 0) {
      out.resize(old);
      return errc::capacity_exceeded;
    }
    out.resize(old + static_cast<std::size_t>(r));
    return errc::ok;
  }
  [[nodiscard]] static result<token_id> special(llama_token t) noexcept {
    if (t == LLAMA_TOKEN_NULL) return errc::not_found;
    return static_cast<token_id>(t);
  }
  // llama.cpp's sentencepiece and unigram tokenizers fall back to the byte tokens for
  // text no piece covers and throw (uncaught) when one is missing.
  [[nodiscard]] static bool can_encode_everything(const ::llama_vocab* v, std::size_t n) noexcept {
    const enum llama_vocab_type type = llama_vocab_type(v);
    if (type != LLAMA_VOCAB_TYPE_SPM && type != LLAMA_VOCAB_TYPE_UGM) return true;
    bool seen[256] = {};
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = static_cast<llama_token>(i);
      if ((llama_vocab_get_attr(v, id) & LLAMA_TOKEN_ATTR_BYTE) == 0) continue;
      const char* s = llama_vocab_get_text(v, id);
      if (s == nullptr || std::strlen(s) != 6 || std::strncmp(s, "<0x", 3) != 0) continue;
      const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int hi = hex(s[3]), lo = hex(s[4]);
      if (hi < 0 || lo < 0 || s[5] != '>') continue;
      if (!seen[hi * 16 + lo]) ++count;
      seen[hi * 16 + lo] = true;
    }
    return count == 256;
  }

  const ::llama_vocab* vocab_ = nullptr;
  std::size_t n_vocab_ = 0;
  llama_tokenizer_options options_;
  bool encodable_ = true;
};

static_assert(Tokenizer<llama_tokenizer>);

}  // namespace tandem::inline v0
