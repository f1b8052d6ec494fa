// tandem: result<T>, a value or a named error (a small std::expected for C++20).
/// \file
/// result<T> and the TANDEM_TRY macro.
#pragma once

#include <new>
#include <type_traits>
#include <utility>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"

namespace tandem::inline v0 {

/// Holds either a `T` or an `errc` other than `errc::ok`. Accessing the value of an
/// error result, or the error of a value result, breaks a precondition (TANDEM_ASSERT).
/// Works without exceptions; `T` must be nothrow move constructible.
template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, errc>, "use errc directly");
  static_assert(std::is_nothrow_move_constructible_v<T>, "T must be nothrow movable");

 public:
  /// The type of the held value.
  using value_type = T;

  ///@{
  /// A value result holding a copy of, or the value moved from, `v`.
  result(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) : has_(true) {
    ::new (static_cast<void*>(&storage_.value)) T(v);
  }
  result(T&& v) noexcept : has_(true) {
    ::new (static_cast<void*>(&storage_.value)) T(std::move(v));
  }
  ///@}
  /// An error result; `e` must not be `errc::ok`.
  result(errc e) noexcept : has_(false) {
    TANDEM_ASSERT(e != errc::ok, "result constructed from errc::ok without a value");
    storage_.error = e;
  }
  /// Constructs the value in place.
  template <class... Args>
  explicit result(std::in_place_t,
                  Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>)
      : has_(true) {
    ::new (static_cast<void*>(&storage_.value)) T(std::forward<Args>(args)...);
  }

  ///@{
  /// Copies or moves the value or the error of `o`; a moved-from `o` still holds a value
  /// (moved from) or its error.
  result(const result& o) noexcept(std::is_nothrow_copy_constructible_v<T>) : has_(o.has_) {
    if (has_)
      ::new (static_cast<void*>(&storage_.value)) T(o.storage_.value);
    else
      storage_.error = o.storage_.error;
  }
  result(result&& o) noexcept : has_(o.has_) {
    if (has_)
      ::new (static_cast<void*>(&storage_.value)) T(std::move(o.storage_.value));
    else
      storage_.error = o.storage_.error;
  }
  result& operator=(const result& o) {
    if (this != &o) {
      result tmp(o);
      *this = std::move(tmp);
    }
    return *this;
  }
  result& operator=(result&& o) noexcept {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (has_)
        ::new (static_cast<void*>(&storage_.value)) T(std::move(o.storage_.value));
      else
        storage_.error = o.storage_.error;
    }
    return *this;
  }
  ///@}
  ~result() { destroy(); }

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return has_; }
  /// True when a value is held (same as has_value()).
  explicit operator bool() const noexcept { return has_; }

  ///@{
  /// The held value (`*r`, `r->` and `value()` alike). Precondition: has_value()
  /// (TANDEM_ASSERT). The rvalue overloads move the value out.
  [[nodiscard]] T& value() & noexcept {
    TANDEM_ASSERT(has_, "result::value() on an error");
    return storage_.value;
  }
  [[nodiscard]] const T& value() const& noexcept {
    TANDEM_ASSERT(has_, "result::value() on an error");
    return storage_.value;
  }
  [[nodiscard]] T&& value() && noexcept {
    TANDEM_ASSERT(has_, "result::value() on an error");
    return std::move(storage_.value);
  }
  [[nodiscard]] T& operator*() & noexcept { return value(); }
  [[nodiscard]] const T& operator*() const& noexcept { return value(); }
  [[nodiscard]] T&& operator*() && noexcept { return std::move(*this).value(); }
  [[nodiscard]] T* operator->() noexcept { return &value(); }
  [[nodiscard]] const T* operator->() const noexcept { return &value(); }
  ///@}

  /// The error, or `errc::ok` when a value is held.
  [[nodiscard]] errc error() const noexcept { return has_ ? errc::ok : storage_.error; }

  /// The value, or `fallback` on error.
  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_ ? storage_.value : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void destroy() noexcept {
    if (has_) storage_.value.~T();
  }
  union storage {
    storage() noexcept : error(errc::ok) {}
    ~storage() {}
    T value;
    errc error;
  } storage_;
  bool has_;
};

}  // namespace tandem::inline v0

/// Evaluates an `errc` expression and returns it from the enclosing function on failure.
#define TANDEM_TRY(expr)                                                                  \
  do {                                                                                    \
    if (const ::tandem::errc tandem_try_e_ = (expr); tandem_try_e_ != ::tandem::errc::ok) \
      return tandem_try_e_;                                                               \
  } while (0)
