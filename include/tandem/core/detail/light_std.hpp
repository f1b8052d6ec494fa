// tandem: the few standard-library pieces the light headers need, without the headers
// that are costly to compile (<memory>, <functional>, C++20 <chrono>).
/// \file
/// `detail::addressof` and `detail::invoke` stand in for std::addressof (<memory>) and
/// std::invoke (<functional>); with libstdc++ the steady clock comes from
/// <bits/chrono.h>, the part of <chrono> that defines durations, time points and the
/// clocks, without the calendar and time-zone parts that C++20 added (and their
/// <sstream>). Other standard libraries get <chrono>. See README, "Compile cost".
#pragma once

#include <type_traits>
#include <utility>

#if defined(__GLIBCXX__) && defined(__has_include)
#if __has_include(<bits/chrono.h>)
#include <bits/chrono.h>
#define TANDEM_DETAIL_LIGHT_CHRONO 1
#endif
#endif
#ifndef TANDEM_DETAIL_LIGHT_CHRONO
#include <chrono>
#endif

#include "tandem/core/config.hpp"

namespace tandem::inline v0::detail {

/// The address of `x`, even when its type overloads unary `&` (std::addressof).
template <class T>
[[nodiscard]] constexpr T* addressof(T& x) noexcept {
  return __builtin_addressof(x);
}
template <class T>
const T* addressof(const T&&) = delete;

// GCC 12 at -O2 can report a false -Warray-bounds when a member-function pointer is called
// on a small non-polymorphic object (it reads the object as if for a virtual call); the
// standard library's own invoke is spared only because it sits in a system header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#endif
/// invoke() for a pointer to member `m` on `obj` (an object, a reference or a pointer).
template <class M, class Obj, class... Args>
constexpr decltype(auto) invoke_member(M m, Obj&& obj, Args&&... args) {
  using object = std::remove_cvref_t<Obj>;
  constexpr bool direct = !std::is_pointer_v<object>;
  if constexpr (std::is_member_function_pointer_v<M>) {
    if constexpr (direct)
      return (std::forward<Obj>(obj).*m)(std::forward<Args>(args)...);
    else
      return ((*std::forward<Obj>(obj)).*m)(std::forward<Args>(args)...);
  } else {
    static_assert(sizeof...(Args) == 0, "a data member takes no arguments");
    if constexpr (direct)
      return (std::forward<Obj>(obj).*m);
    else
      return ((*std::forward<Obj>(obj)).*m);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Calls `f` with `args` as std::invoke does: a callable object or function directly, a
/// pointer to member function or data member on an object, a reference or a pointer.
/// Takes part in overload resolution only when std::is_invocable_v<F, Args...> (so that
/// concepts can test it, as they test std::invoke).
template <class F, class... Args>
requires std::is_invocable_v<F, Args...>
constexpr std::invoke_result_t<F, Args...> invoke(F&& f, Args&&... args) noexcept(
    std::is_nothrow_invocable_v<F, Args...>) {
  if constexpr (std::is_member_pointer_v<std::remove_cvref_t<F>>) {
    return detail::invoke_member(f, std::forward<Args>(args)...);
  } else {
    return std::forward<F>(f)(std::forward<Args>(args)...);
  }
}

}  // namespace tandem::inline v0::detail
