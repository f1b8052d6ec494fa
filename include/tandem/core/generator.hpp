// tandem: text-level generators. model_generator turns a local LanguageModel and
// Tokenizer into a Generator with prompt caching; any_generator and generator_ref erase
// the type of any Generator (no RTTI) for heterogeneous lists such as cascade stages.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

namespace detail {
/// A Rewindable model type, or a reference to one.
template <class M>
concept RewindableRef = Rewindable<std::remove_reference_t<M>>;
/// A Tokenizer type, or a reference to one.
template <class T>
concept TokenizerRef = Tokenizer<std::remove_cvref_t<T>>;
/// An argument that can initialise a member of type `To` when forwarded.
template <class From, class To>
concept ForwardableTo = std::constructible_from<To, From&&>;
/// A Generator, other than `Self`, that can be moved or copied into an owner.
template <class G, class Self>
concept OwnableGenerator =
    !std::same_as<std::remove_cvref_t<G>, Self> && Generator<std::remove_cvref_t<G>> &&
    std::constructible_from<std::remove_cvref_t<G>, G&&>;
/// A Generator type other than `Self` (possibly const).
template <class G, class Self>
concept OtherGenerator = !std::same_as<std::remove_cv_t<G>, Self> && Generator<G>;
}  // namespace detail

namespace detail {

/// Marks `out` as failed with `e` (finish_reason::error) and returns `e`.
inline errc fail_completion(completion& out, errc e) noexcept {
  out.finish = finish_reason::error;
  out.error = e;
  return e;
}

/// The start every text-level adapter shares: clears `out`, resets the request's output
/// constraint (a request is a whole generation, so a request repeated with the same
/// constraint state starts it afresh), encodes `req.prompt` with `tok` into `ids` (cleared
/// first). Errors, also recorded in `out`: the encode error, `empty_input` (no tokens).
template <class T>
errc start_request(const T& tok, const generate_request& req, std::vector<token_id>& ids,
                   completion& out) {
  out.clear();
  ids.clear();
  if (req.options.constraint) req.options.constraint.reset();
  if (errc e = tok.encode(req.prompt, ids); e != errc::ok) return fail_completion(out, e);
  if (ids.empty()) return fail_completion(out, errc::empty_input);
  return errc::ok;
}

}  // namespace detail

/// A Generator over a local model and tokenizer: encodes the request's prompt, builds a
/// sampler from `request.sampling` with make_sampler, and runs generate() (text level).
///
/// Prompt caching: the adapter remembers which tokens its model's context holds after
/// each request. The next request keeps the longest common prefix of those tokens and
/// its prompt, rewinds only the divergent tail, and feeds only the rest (at least one
/// token, so fresh logits exist). It assumes it is the model's only user between calls:
/// when the model's size no longer matches what it remembers, it rewinds the whole
/// context; after using the model elsewhere without changing its size, call
/// forget_cache().
///
/// Ownership: `M` and `T` may be value types (the adapter owns the model/tokenizer) or
/// lvalue references (it refers to them; they must outlive it). The deduction guide
/// picks a reference for an lvalue argument and a value for an rvalue. Buffers for the
/// prompt and the cache grow to the largest request and are reused, and so is the sampler
/// while the sampling parameters (seed aside) stay the same: with a reused completion and
/// a tokenizer whose encode does not allocate, a warm request allocates nothing. Not
/// thread-safe.
template <detail::RewindableRef M, detail::TokenizerRef T>
class model_generator {
 public:
  /// The model's type, without the reference when the adapter refers to it.
  using model_type = std::remove_reference_t<M>;
  /// The tokenizer's type, without reference and const.
  using tokenizer_type = std::remove_cvref_t<T>;

  /// Wraps `model` and `tokenizer` (forwarded into the members, see the class comment).
  template <detail::ForwardableTo<M> MM, detail::ForwardableTo<T> TT>
  model_generator(MM&& model, TT&& tokenizer)
      : model_(std::forward<MM>(model)), tok_(std::forward<TT>(tokenizer)) {}

  /// Generates a completion for `req` into `out` (cleared first; capacity kept).
  ///
  /// Errors, each also stored in `out.error` with `out.finish == finish_reason::error`:
  /// the tokenizer's encode error, `empty_input` (the prompt encodes to no tokens),
  /// `vocab_mismatch` (tokenizer and model vocabulary sizes differ), make_sampler's
  /// errors (`invalid_temperature`, `invalid_argument`), all before the model is touched;
  /// the model's rewind error (the cache is then forgotten); then every error of
  /// generate(), with the partial completion kept. `out.prompt_tokens` is the whole
  /// prompt's token count, cached part included.
  [[nodiscard]] errc generate(const generate_request& req, completion& out) {
    const auto fail = [&out](errc e) { return detail::fail_completion(out, e); };
    if (errc e = detail::start_request(tok_, req, prompt_, out); e != errc::ok) return e;
    if (static_cast<std::size_t>(tok_.vocab_size()) !=
        static_cast<std::size_t>(model_.vocab_size())) {
      return fail(detail::fail(&error_, errc::vocab_mismatch,
                               "tokenizer vocabulary %zu, model vocabulary %zu",
                               static_cast<std::size_t>(tok_.vocab_size()),
                               static_cast<std::size_t>(model_.vocab_size())));
    }
    if (errc e = prepare_sampler(req.sampling); e != errc::ok) return fail(e);

    std::size_t keep = 0;
    if (static_cast<std::size_t>(model_.size()) == cached_.size()) {
      keep = static_cast<std::size_t>(
          std::mismatch(cached_.begin(), cached_.end(), prompt_.begin(), prompt_.end()).first -
          cached_.begin());
    }
    if (keep == prompt_.size()) --keep;  // feed at least one token: logits after a rewind are stale
    if (const std::size_t drop = static_cast<std::size_t>(model_.size()) - keep; drop > 0) {
      if (errc e = model_.rewind(drop); e != errc::ok) {
        forget_cache();
        return fail(e);
      }
    }
    cached_.resize(keep);

    const std::span<const token_id> rest = std::span<const token_id>(prompt_).subspan(keep);
    errc e = errc::ok;
    if (req.on_token) {
      e = tandem::continue_generation(model_, tok_, *sampler_, rest, req.options, out,
                                      *req.on_token);
    } else {
      e = tandem::continue_generation(model_, tok_, *sampler_, rest, req.options, out);
    }
    out.prompt_tokens = prompt_.size();

    // The context now holds prompt_ followed by a prefix of out.tokens (or, when the
    // prompt was rejected, the kept prefix only).
    const std::size_t n = static_cast<std::size_t>(model_.size());
    if (n >= keep && n <= prompt_.size() + out.tokens.size()) {
      const std::size_t from_prompt = std::min(n, prompt_.size());
      cached_.assign(prompt_.begin(), prompt_.begin() + static_cast<std::ptrdiff_t>(from_prompt));
      cached_.insert(cached_.end(), out.tokens.begin(),
                     out.tokens.begin() + static_cast<std::ptrdiff_t>(n - from_prompt));
    } else {
      forget_cache();
    }
    return e;
  }

  /// Generator interface: the completion, or the error when generation failed before
  /// producing any token (a run cut short mid-way returns its partial completion with
  /// `finish_reason::error` and `error` set). Errors as the overload above.
  [[nodiscard]] result<completion> generate(const generate_request& req) {
    completion out;
    if (errc e = generate(req, out); e != errc::ok && out.tokens.empty()) return e;
    return out;
  }

  ///@{
  /// The wrapped model (its context is what the cache describes). Changing its size
  /// behind the adapter's back makes the next request rewind the whole context.
  [[nodiscard]] model_type& model() noexcept { return model_; }
  [[nodiscard]] const model_type& model() const noexcept { return model_; }
  ///@}
  /// The wrapped tokenizer.
  [[nodiscard]] const tokenizer_type& tokenizer() const noexcept { return tok_; }
  /// The tokens the adapter believes its model's context holds.
  [[nodiscard]] std::span<const token_id> cached_tokens() const noexcept { return cached_; }
  /// Forgets the cache: the next request rewinds the model's whole context (an empty
  /// cache matches only an empty context).
  void forget_cache() noexcept { cached_.clear(); }
  /// The details of the last failure that had more to say than its errc (for
  /// `vocab_mismatch`: both vocabulary sizes); code `ok` when there was none.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

 private:
  // Builds the request's sampler, or restarts the previous one (reseeded, history reset:
  // the same as a fresh chain) when the parameters are equal, which saves its buffers.
  errc prepare_sampler(const sampling_options& p) {
    const bool same = sampler_.has_value() && p.temperature == params_.temperature &&
                      p.top_k == params_.top_k && p.top_p == params_.top_p &&
                      p.min_p == params_.min_p;
    if (same) {
      sampler_->reseed(p.seed);
      sampler_->reset();
      params_.seed = p.seed;
      return errc::ok;
    }
    auto made = make_sampler(p, static_cast<std::size_t>(model_.vocab_size()));
    if (!made) return made.error();
    sampler_.emplace(std::move(*made));
    params_ = p;
    return errc::ok;
  }

  M model_;
  T tok_;
  std::vector<token_id> prompt_;
  std::vector<token_id> cached_;
  std::optional<sampler_chain> sampler_;
  sampling_options params_{};
  error_info error_{};
};

/// Deduction guide: an lvalue argument is referred to (it must outlive the adapter), an
/// rvalue is moved in and owned.
template <class M, class T>
model_generator(M&&, T&&) -> model_generator<M, T>;

namespace detail {

/// Manual vtable of an erased Generator (no RTTI).
struct generator_vtable {
  result<completion> (*generate)(void*, const generate_request&);
  void (*destroy)(void*) noexcept;
};

template <class G>
result<completion> erased_generate(void* g, const generate_request& req) {
  return static_cast<G*>(g)->generate(req);
}

template <class G>
void erased_destroy(void* g) noexcept {
  delete static_cast<G*>(g);
}

template <class G>
inline constexpr generator_vtable generator_vtable_for{&erased_generate<G>, &erased_destroy<G>};

}  // namespace detail

/// A move-only owner of any Generator, its type erased without RTTI (a vtable of two
/// function pointers), for heterogeneous lists such as the stages of a cascade.
///
/// The wrapped generator lives on the heap (one allocation at construction). An empty
/// any_generator (default-constructed or moved-from) answers generate() with
/// `invalid_argument`; one whose allocation failed answers `out_of_memory`.
class any_generator {
 public:
  /// An empty generator.
  any_generator() noexcept = default;

  /// Takes `g` (moved or copied into a heap object owned by this any_generator). When that
  /// allocation fails the any_generator is empty and generate() returns out_of_memory.
  template <detail::OwnableGenerator<any_generator> G>
  any_generator(G&& g) {  // NOLINT(google-explicit-constructor): erasure, like std::function
    using D = std::remove_cvref_t<G>;
    D* p = new (std::nothrow) D(std::forward<G>(g));
    if (p == nullptr) {
      empty_error_ = errc::out_of_memory;
      return;
    }
    obj_ = p;
    vt_ = &detail::generator_vtable_for<D>;
  }

  ///@{
  /// Takes over the generator held by `o` (and its construction error); `o` is left
  /// empty, its generate() returning `invalid_argument`.
  any_generator(any_generator&& o) noexcept
      : obj_(std::exchange(o.obj_, nullptr)),
        vt_(std::exchange(o.vt_, nullptr)),
        empty_error_(std::exchange(o.empty_error_, errc::invalid_argument)) {}
  any_generator& operator=(any_generator&& o) noexcept {
    if (this != &o) {
      reset();
      obj_ = std::exchange(o.obj_, nullptr);
      vt_ = std::exchange(o.vt_, nullptr);
      empty_error_ = std::exchange(o.empty_error_, errc::invalid_argument);
    }
    return *this;
  }
  ///@}
  any_generator(const any_generator&) = delete;
  any_generator& operator=(const any_generator&) = delete;
  ~any_generator() { reset(); }

  /// Runs the wrapped generator. Errors: those of the wrapped generator;
  /// `invalid_argument` when empty; `out_of_memory` when construction failed.
  [[nodiscard]] result<completion> generate(const generate_request& req) {
    if (obj_ == nullptr) return empty_error_;
    return vt_->generate(obj_, req);
  }

  /// True when a generator is held.
  [[nodiscard]] bool has_value() const noexcept { return obj_ != nullptr; }
  /// True when a generator is held (same as has_value()).
  explicit operator bool() const noexcept { return has_value(); }

  /// Destroys the wrapped generator; the any_generator becomes empty.
  void reset() noexcept {
    if (obj_ != nullptr) vt_->destroy(obj_);
    obj_ = nullptr;
    vt_ = nullptr;
    empty_error_ = errc::invalid_argument;
  }

 private:
  void* obj_ = nullptr;
  const detail::generator_vtable* vt_ = nullptr;
  errc empty_error_ = errc::invalid_argument;
};

/// A non-owning, copyable reference to any Generator (which must outlive it). Never
/// allocates.
class generator_ref {
 public:
  /// Refers to `g`.
  template <detail::OtherGenerator<generator_ref> G>
  generator_ref(G& g) noexcept  // NOLINT(google-explicit-constructor): a view
      : obj_(const_cast<void*>(static_cast<const void*>(detail::addressof(g)))),
        call_(&detail::erased_generate<G>) {}

  /// Runs the referenced generator; its errors.
  [[nodiscard]] result<completion> generate(const generate_request& req) const {
    return call_(obj_, req);
  }

 private:
  void* obj_;
  result<completion> (*call_)(void*, const generate_request&);
};

static_assert(Generator<any_generator>);
static_assert(Generator<generator_ref>);

}  // namespace tandem::inline v0
