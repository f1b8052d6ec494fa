// tandem: the output-constraint concept and a non-owning, type-erased reference to one.
//
// A constraint state follows the tokens generated so far under a compiled constraint (a
// choice among strings, a regular expression, a JSON Schema, a GBNF grammar). It says which
// tokens may come next, advances by a token, rewinds for speculation, and says whether the
// output may end here. Concrete constraints live in tandem/constrain/; this header is light
// (no xsimd, no Eigen) so that generate() and the speculative decoder can take one.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// The state of an output constraint over the tokens generated so far.
///
/// - `vocab_size()`: the vocabulary the constraint was compiled for.
/// - `allows(t)`: whether token `t` may come next (false for ids outside the vocabulary).
/// - `mask(logits)`: sets every disallowed entry of `logits` to -Inf, in place, and leaves
///   the allowed ones unchanged; entries past `vocab_size()` (a model's padded logits) are
///   disallowed. Returns `size_mismatch` when `logits` is shorter than `vocab_size()`
///   (logits untouched). No allocation.
/// - `advance(t)`: appends `t`. `constraint_violation` when `allows(t)` is false,
///   `invalid_token` outside the vocabulary; on error the state is unchanged.
/// - `rewind(n)`: drops the last `n` advanced tokens (`rewind_out_of_range` past the start,
///   state unchanged).
/// - `forced()`: the only token allowed next, or `no_token` when zero or several are.
/// - `can_end()`: the text so far is a complete match, so the output may stop here. The
///   vocabulary's end tokens (end of sequence, end of turn) are allowed exactly then.
/// - `is_complete()`: no token other than an end token may follow; the output must stop.
/// - `position()`: number of tokens advanced since the start.
/// - `reset()`: back to the start state (position 0).
template <class C>
concept Constraint = requires(C& c, const C& cc, token_id t, std::size_t n,
                              std::span<float> logits) {
  { cc.vocab_size() } -> std::convertible_to<std::size_t>;
  { cc.allows(t) } -> std::same_as<bool>;
  { c.mask(logits) } -> std::same_as<errc>;
  { c.advance(t) } -> std::same_as<errc>;
  { c.rewind(n) } -> std::same_as<errc>;
  { cc.forced() } -> std::same_as<token_id>;
  { cc.can_end() } -> std::same_as<bool>;
  { cc.is_complete() } -> std::same_as<bool>;
  { cc.position() } -> std::convertible_to<std::size_t>;
  c.reset();
};

/// A non-owning, non-allocating reference to any `Constraint`, or to none (the default).
/// Options structs (`generate_options`, a scheduler request, the speculative decoder) hold
/// one, so they stay non-templates. The referenced state must outlive every use; calling a
/// member on an empty reference is a programming error (check `bool(ref)` first).
class constraint_ref {
 public:
  /// No constraint.
  constexpr constraint_ref() noexcept = default;

  /// Refers to `c` (not copied).
  template <Constraint C>
  requires(!std::is_same_v<std::remove_cvref_t<C>, constraint_ref>) constraint_ref(C& c)
  noexcept  // NOLINT(google-explicit-constructor): a view, like string_view
      : obj_(detail::addressof(c)), vt_(&vtable_for<C>) {}

  /// True when this refers to a constraint.
  [[nodiscard]] constexpr explicit operator bool() const noexcept { return obj_ != nullptr; }

  /// The referenced constraint's `vocab_size()` (see the Constraint concept).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vt_->vocab_size(obj_); }
  /// Whether token `t` may come next.
  [[nodiscard]] bool allows(token_id t) const noexcept { return vt_->allows(obj_, t); }
  /// Writes -Inf over disallowed logits; `size_mismatch` when `logits` is too short.
  [[nodiscard]] errc mask(std::span<float> logits) const noexcept {
    return vt_->mask(obj_, logits);
  }
  /// Appends `t`; `constraint_violation` or `invalid_token` leave the state unchanged.
  [[nodiscard]] errc advance(token_id t) const noexcept { return vt_->advance(obj_, t); }
  /// Drops the last `n` tokens; `rewind_out_of_range` past the start (state unchanged).
  [[nodiscard]] errc rewind(std::size_t n) const noexcept { return vt_->rewind(obj_, n); }
  /// The only token allowed next, or `no_token`.
  [[nodiscard]] token_id forced() const noexcept { return vt_->forced(obj_); }
  /// Whether the output may end here.
  [[nodiscard]] bool can_end() const noexcept { return vt_->can_end(obj_); }
  /// Whether only an end token may follow.
  [[nodiscard]] bool is_complete() const noexcept { return vt_->is_complete(obj_); }
  /// Number of tokens advanced since the start.
  [[nodiscard]] std::size_t position() const noexcept { return vt_->position(obj_); }
  /// Back to the start state.
  void reset() const noexcept { vt_->reset(obj_); }

 private:
  struct vtable {
    std::size_t (*vocab_size)(const void*) noexcept;
    bool (*allows)(const void*, token_id) noexcept;
    errc (*mask)(void*, std::span<float>) noexcept;
    errc (*advance)(void*, token_id) noexcept;
    errc (*rewind)(void*, std::size_t) noexcept;
    token_id (*forced)(const void*) noexcept;
    bool (*can_end)(const void*) noexcept;
    bool (*is_complete)(const void*) noexcept;
    std::size_t (*position)(const void*) noexcept;
    void (*reset)(void*) noexcept;
  };

  template <class C>
  static constexpr vtable vtable_for{
      [](const void* o) noexcept -> std::size_t { return static_cast<const C*>(o)->vocab_size(); },
      [](const void* o, token_id t) noexcept { return static_cast<const C*>(o)->allows(t); },
      [](void* o, std::span<float> l) noexcept { return static_cast<C*>(o)->mask(l); },
      [](void* o, token_id t) noexcept { return static_cast<C*>(o)->advance(t); },
      [](void* o, std::size_t n) noexcept { return static_cast<C*>(o)->rewind(n); },
      [](const void* o) noexcept { return static_cast<const C*>(o)->forced(); },
      [](const void* o) noexcept { return static_cast<const C*>(o)->can_end(); },
      [](const void* o) noexcept { return static_cast<const C*>(o)->is_complete(); },
      [](const void* o) noexcept -> std::size_t { return static_cast<const C*>(o)->position(); },
      [](void* o) noexcept { static_cast<C*>(o)->reset(); },
  };

  void* obj_ = nullptr;
  const vtable* vt_ = nullptr;
};

}  // namespace tandem::inline v0
