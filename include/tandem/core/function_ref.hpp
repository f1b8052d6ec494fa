// tandem: function_ref, a non-owning, non-allocating reference to a callable.
#pragma once

#include <type_traits>
#include <utility>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/light_std.hpp"

namespace tandem::inline v0 {

template <class Signature>
class function_ref;

/// A non-owning reference to any callable with signature `R(Args...)`. Never allocates;
/// the referenced callable must outlive the function_ref. Used instead of std::function
/// where a callback is invoked per token.
template <class R, class... Args>
class function_ref<R(Args...)> {
 public:
  /// Refers to `f` (not copied). `f` must outlive this function_ref and every copy of it;
  /// binding a temporary is only safe for a call that ends before the temporary does.
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, function_ref> &&
           std::is_invocable_r_v<R, F&, Args...>) function_ref(F&& f)
  noexcept  // NOLINT(google-explicit-constructor): a view, like string_view
      : obj_(const_cast<void*>(static_cast<const void*>(detail::addressof(f)))),
        call_([](void* o, Args... args) -> R {
          return detail::invoke(*static_cast<std::add_pointer_t<F>>(o),
                                std::forward<Args>(args)...);
        }) {}

  /// Calls the referenced callable with `args`; returns what it returns.
  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

}  // namespace tandem::inline v0
