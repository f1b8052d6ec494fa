// tandem: the SIMD layer the logits kernels are written against (internal).
//
// Two backends give the same small API in namespace tandem::detail::simd:
// - built-in (default): GCC/Clang vector extensions, one register wide for the target
//   (64 bytes with AVX-512F, 32 with AVX/AVX2, 16 with SSE2/NEON or otherwise), and four
//   lanes of plain scalar code for other compilers (MSVC) or when TANDEM_KERNELS_SCALAR is
//   defined. It includes no system header beyond <cstddef>, <cstdint> and <cstring>, so
//   the headers built on it stay cheap to compile (README, "Compile cost").
// - xsimd (opt-in): define TANDEM_KERNELS_XSIMD (CMake: TANDEM_USE_XSIMD=ON) to run the
//   kernels on xsimd's batches instead, for its architecture support.
//
// The API (B is batch<float> or batch<std::int32_t>, M the batch_bool of B):
//   batch<T>: size, batch(T) broadcasts, load_aligned/load_unaligned (static),
//             store_aligned/store_unaligned, + - * / (float), + - & | << >> (int32),
//             compound assignment, comparisons giving batch_bool<T>;
//   batch_bool<T>: batch_bool(bool) broadcasts, | and &;
//   max, min, fma, abs, isnan, select(M, B, B), any(M), all(M), bitmask(M) (bit i: lane i),
//   hadd(B),
//   to_bits(batch<float>) -> batch<int32_t>, from_bits(batch<int32_t>) -> batch<float>,
//   backend_name().
// Nothing here allocates, throws or keeps state. Everything here lives in an inline
// namespace named after the backend and instruction set (TANDEM_SIMD_ABI below), so the
// register types and every kernel instantiated on them get different names in translation
// units built for different targets (say one with -mavx2, one without): the linker never
// hands one unit another unit's register layout. Non-template inline functions built on the
// layer still merge into one copy, as with any inline function compiled with different -m
// flags, so a program should build every unit for one target and with one backend macro.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(TANDEM_KERNELS_XSIMD)
#include <xsimd/xsimd.hpp>
#endif

// The inline namespace that tags the layer with its backend and instruction set.
#if defined(TANDEM_KERNELS_XSIMD)
#define TANDEM_SIMD_ABI xsimd_backend
#elif !(defined(__GNUC__) || defined(__clang__)) || defined(TANDEM_KERNELS_SCALAR)
#define TANDEM_SIMD_ABI scalar4
#elif defined(__AVX512F__)
#define TANDEM_SIMD_ABI avx512f
#elif defined(__AVX2__) && defined(__FMA__)
#define TANDEM_SIMD_ABI avx2_fma
#elif defined(__AVX2__)
#define TANDEM_SIMD_ABI avx2
#elif defined(__AVX__)
#define TANDEM_SIMD_ABI avx
#elif defined(__ARM_NEON)
#define TANDEM_SIMD_ABI neon
#else
#define TANDEM_SIMD_ABI vec128
#endif

namespace tandem::inline v0::detail::simd {
inline namespace TANDEM_SIMD_ABI {

#if defined(TANDEM_KERNELS_XSIMD)

/// A SIMD register of T for the default architecture (xsimd backend).
template <class T>
using batch = xsimd::batch<T>;
/// A lane mask of batch<T> (xsimd backend).
template <class T>
using batch_bool = xsimd::batch_bool<T>;

/// Name of the backend and instruction set, for logs and benchmarks.
[[nodiscard]] inline const char* backend_name() noexcept { return xsimd::default_arch::name(); }

// Lane-wise max, min, fma (fused where the target has FMA), abs, isnan and select; any and
// all of a mask; hadd, the sum of the lanes: xsimd's own.
using xsimd::abs;
using xsimd::all;
using xsimd::any;
using xsimd::fma;
using xsimd::hadd;
using xsimd::isnan;
using xsimd::max;
using xsimd::min;
using xsimd::select;
/// The lanes of m as bits (bit i: lane i); xsimd 8 has no movemask of its own.
template <class T, class A>
[[nodiscard]] inline std::uint32_t bitmask(const xsimd::batch_bool<T, A>& m) noexcept {
  alignas(64) bool b[xsimd::batch_bool<T, A>::size];
  m.store_aligned(b);
  std::uint32_t r = 0;
  for (std::size_t i = 0; i < xsimd::batch_bool<T, A>::size; ++i)
    r |= static_cast<std::uint32_t>(b[i]) << i;
  return r;
}
/// The bits of each float lane as an int32 lane.
template <class A>
[[nodiscard]] inline xsimd::batch<std::int32_t, A> to_bits(
    const xsimd::batch<float, A>& a) noexcept {
  return xsimd::bitwise_cast<xsimd::batch<std::int32_t, A>>(a);
}
/// The float whose bits each int32 lane holds.
template <class A>
[[nodiscard]] inline xsimd::batch<float, A> from_bits(
    const xsimd::batch<std::int32_t, A>& a) noexcept {
  return xsimd::bitwise_cast<xsimd::batch<float, A>>(a);
}

#else  // built-in backend

#if (defined(__GNUC__) || defined(__clang__)) && !defined(TANDEM_KERNELS_SCALAR)
#define TANDEM_SIMD_VECTOR_EXTENSIONS 1
/// Bytes per register: the widest the target's enabled instruction set has.
#if defined(__AVX512F__)
inline constexpr std::size_t register_bytes = 64;
#elif defined(__AVX__)
inline constexpr std::size_t register_bytes = 32;
#else  // __SSE2__, __ARM_NEON, or a target without a known vector unit
inline constexpr std::size_t register_bytes = 16;
#endif
using native_f32 = float __attribute__((vector_size(register_bytes)));
using native_i32 = std::int32_t __attribute__((vector_size(register_bytes)));
#else
/// Bytes per register without GCC's vector extensions (MSVC, or TANDEM_KERNELS_SCALAR):
/// four lanes of plain scalar code, so that sums are split as with SSE2 and NEON.
inline constexpr std::size_t register_bytes = 16;

/// Four lanes of T with element-wise operators: the scalar stand-in for a vector register.
template <class T>
struct lanes4 {
  T v[4];
  T& operator[](std::size_t i) noexcept { return v[i]; }
  const T& operator[](std::size_t i) const noexcept { return v[i]; }
};
/// r[i] = f(a[i], b[i]) for the four lanes.
template <class R, class T, class F>
[[nodiscard]] inline lanes4<R> zip(const lanes4<T>& a, const lanes4<T>& b, F f) noexcept {
  lanes4<R> r;
  for (std::size_t i = 0; i < 4; ++i) r.v[i] = static_cast<R>(f(a.v[i], b.v[i]));
  return r;
}
/// A comparison's lanes: all ones where it holds, zero elsewhere (as vector compares).
template <class T, class F>
[[nodiscard]] inline lanes4<std::int32_t> compare(const lanes4<T>& a, const lanes4<T>& b,
                                                  F f) noexcept {
  return zip<std::int32_t>(a, b, [f](T x, T y) { return f(x, y) ? -1 : 0; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator+(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x + y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator-(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x - y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator*(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x * y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator/(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x / y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator&(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x & y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator|(const lanes4<T>& a, const lanes4<T>& b) noexcept {
  return zip<T>(a, b, [](T x, T y) { return x | y; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator<<(const lanes4<T>& a, int n) noexcept {
  return zip<T>(a, a, [n](T x, T) { return x << n; });
}
template <class T>
[[nodiscard]] inline lanes4<T> operator>>(const lanes4<T>& a, int n) noexcept {
  return zip<T>(a, a, [n](T x, T) { return x >> n; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator==(const lanes4<T>& a,
                                                     const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x == y; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator!=(const lanes4<T>& a,
                                                     const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x != y; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator<(const lanes4<T>& a,
                                                    const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x < y; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator<=(const lanes4<T>& a,
                                                     const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x <= y; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator>(const lanes4<T>& a,
                                                    const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x > y; });
}
template <class T>
[[nodiscard]] inline lanes4<std::int32_t> operator>=(const lanes4<T>& a,
                                                     const lanes4<T>& b) noexcept {
  return compare(a, b, [](T x, T y) { return x >= y; });
}
using native_f32 = lanes4<float>;
using native_i32 = lanes4<std::int32_t>;
#endif

/// The native register type of T: float or std::int32_t lanes.
template <class T>
struct native;
template <>
struct native<float> {
  using type = native_f32;
};
template <>
struct native<std::int32_t> {
  using type = native_i32;
};

/// Lane i of a native register.
template <class V>
[[nodiscard]] inline auto lane(const V& v, std::size_t i) noexcept {
  return v[i];
}

/// V with every lane x: x + {-0.0f, ...} for float lanes, which is x for every x (also -0
/// and NaN) and which compilers turn into one broadcast; x + {0, ...} for integer lanes.
template <class V, class T>
[[nodiscard]] inline V splat(T x) noexcept {
#if defined(TANDEM_SIMD_VECTOR_EXTENSIONS)
  return -V{} + x;
#else
  V v;
  for (std::size_t i = 0; i < 4; ++i) v[i] = x;
  return v;
#endif
}

#if defined(TANDEM_SIMD_VECTOR_EXTENSIONS) && defined(__AVX512F__)
#define TANDEM_SIMD_AVX512_MASKS 1
/// A lane mask: one bit a lane in an AVX-512 mask register.
using native_mask = unsigned short;
#else
/// A lane mask: all-ones or all-zero int32 lanes, as vector comparisons give.
using native_mask = native_i32;
#endif

/// The comparisons of the layer.
enum class cmp_op { eq, ne, lt, le, gt, ge };

#if defined(TANDEM_SIMD_AVX512_MASKS)
/// The vcmpps predicate of each cmp_op, in its order: C's comparisons, ordered and quiet
/// (!= unordered, so that it holds for NaN).
inline constexpr int ps_predicate[] = {0x00, 0x04, 0x11, 0x12, 0x1e, 0x1d};
/// The vpcmpd predicate of each cmp_op, in its order.
inline constexpr int epi32_predicate[] = {0, 4, 1, 2, 6, 5};
/// The lanes where `a op b` holds, into a mask register (vcmpps).
template <cmp_op Op>
[[nodiscard]] inline native_mask compare(native_f32 a, native_f32 b) noexcept {
  constexpr int p = ps_predicate[static_cast<int>(Op)];
  return __builtin_ia32_cmpps512_mask(a, b, p, static_cast<native_mask>(0xffff), 4);
}
/// The lanes where `a op b` holds, into a mask register (vpcmpd).
template <cmp_op Op>
[[nodiscard]] inline native_mask compare(native_i32 a, native_i32 b) noexcept {
  constexpr int p = epi32_predicate[static_cast<int>(Op)];
  return __builtin_ia32_cmpd512_mask(a, b, p, static_cast<native_mask>(0xffff));
}
#else
/// The lanes where `a op b` holds, as all-ones int32 lanes (C semantics: only != holds for
/// NaN).
template <cmp_op Op, class V>
[[nodiscard]] inline native_mask compare(V a, V b) noexcept {
  if constexpr (Op == cmp_op::eq) return a == b;
  if constexpr (Op == cmp_op::ne) return a != b;
  if constexpr (Op == cmp_op::lt) return a < b;
  if constexpr (Op == cmp_op::le) return a <= b;
  if constexpr (Op == cmp_op::gt) return a > b;
  if constexpr (Op == cmp_op::ge) return a >= b;
}
#endif

template <class T>
class batch_bool;

/// A SIMD register of `size` lanes of T (float or std::int32_t), built-in backend.
template <class T>
class batch {
 public:
  using native_type = typename native<T>::type;
  /// Lanes per register.
  static constexpr std::size_t size = register_bytes / sizeof(T);

  batch() noexcept = default;
  /// Every lane x.
  batch(T x) noexcept : v_(splat<native_type>(x)) {}  // NOLINT: implicit, as xsimd's
  /// Wraps a native register.
  [[nodiscard]] static batch wrap(native_type v) noexcept {
    batch b;
    b.v_ = v;
    return b;
  }

  /// `size` values from p, aligned to the register size.
  [[nodiscard]] static batch load_aligned(const T* p) noexcept { return load_unaligned(p); }
  /// `size` values from p.
  [[nodiscard]] static batch load_unaligned(const T* p) noexcept {
    native_type v;
    std::memcpy(&v, p, sizeof v);
    return wrap(v);
  }
  /// Stores the lanes to p, aligned to the register size.
  void store_aligned(T* p) const noexcept { store_unaligned(p); }
  /// Stores the lanes to p.
  void store_unaligned(T* p) const noexcept { std::memcpy(p, &v_, sizeof v_); }

  /// The native register.
  [[nodiscard]] native_type data() const noexcept { return v_; }

  friend batch operator+(batch a, batch b) noexcept { return wrap(a.v_ + b.v_); }
  friend batch operator-(batch a, batch b) noexcept { return wrap(a.v_ - b.v_); }
  friend batch operator*(batch a, batch b) noexcept { return wrap(a.v_ * b.v_); }
  friend batch operator/(batch a, batch b) noexcept { return wrap(a.v_ / b.v_); }
  friend batch operator&(batch a, batch b) noexcept { return wrap(a.v_ & b.v_); }
  friend batch operator|(batch a, batch b) noexcept { return wrap(a.v_ | b.v_); }
  friend batch operator<<(batch a, int n) noexcept { return wrap(a.v_ << n); }
  friend batch operator>>(batch a, int n) noexcept { return wrap(a.v_ >> n); }
  batch& operator+=(batch b) noexcept { return *this = *this + b; }
  batch& operator-=(batch b) noexcept { return *this = *this - b; }
  batch& operator*=(batch b) noexcept { return *this = *this * b; }

  friend batch_bool<T> operator==(batch a, batch b) noexcept { return mask<cmp_op::eq>(a, b); }
  friend batch_bool<T> operator!=(batch a, batch b) noexcept { return mask<cmp_op::ne>(a, b); }
  friend batch_bool<T> operator<(batch a, batch b) noexcept { return mask<cmp_op::lt>(a, b); }
  friend batch_bool<T> operator<=(batch a, batch b) noexcept { return mask<cmp_op::le>(a, b); }
  friend batch_bool<T> operator>(batch a, batch b) noexcept { return mask<cmp_op::gt>(a, b); }
  friend batch_bool<T> operator>=(batch a, batch b) noexcept { return mask<cmp_op::ge>(a, b); }

 private:
  template <cmp_op Op>
  static batch_bool<T> mask(batch a, batch b) noexcept {
    return batch_bool<T>(compare<Op>(a.v_, b.v_));
  }
  native_type v_;
};

/// A lane mask of batch<T> (native_mask: int32 lanes, or mask-register bits on AVX-512).
template <class T>
class batch_bool {
 public:
  batch_bool() noexcept = default;
  /// Every lane b.
#if defined(TANDEM_SIMD_AVX512_MASKS)
  explicit batch_bool(bool b) noexcept : m_(b ? 0xffff : 0) {}
#else
  explicit batch_bool(bool b) noexcept : m_(splat<native_i32>(std::int32_t{b ? -1 : 0})) {}
#endif
  /// Wraps a native mask.
  explicit batch_bool(native_mask m) noexcept : m_(m) {}
  /// The native mask.
  [[nodiscard]] native_mask data() const noexcept { return m_; }
  friend batch_bool operator|(batch_bool a, batch_bool b) noexcept {
    return batch_bool(static_cast<native_mask>(a.m_ | b.m_));
  }
  friend batch_bool operator&(batch_bool a, batch_bool b) noexcept {
    return batch_bool(static_cast<native_mask>(a.m_ & b.m_));
  }

 private:
  native_mask m_;
};

/// Name of the backend and register width, for logs and benchmarks.
[[nodiscard]] inline const char* backend_name() noexcept {
#if !defined(TANDEM_SIMD_VECTOR_EXTENSIONS)
  return "builtin-scalar";
#elif defined(__AVX512F__)
  return "builtin-avx512";
#elif defined(__AVX__)
  return "builtin-avx";
#elif defined(__SSE2__)
  return "builtin-sse2";
#elif defined(__ARM_NEON)
  return "builtin-neon";
#else
  return "builtin-16";
#endif
}

/// The bits of each float lane as an int32 lane.
[[nodiscard]] inline batch<std::int32_t> to_bits(batch<float> a) noexcept {
  return batch<std::int32_t>::wrap(__builtin_bit_cast(native_i32, a.data()));
}
/// The float whose bits each int32 lane holds.
[[nodiscard]] inline batch<float> from_bits(batch<std::int32_t> a) noexcept {
  return batch<float>::wrap(__builtin_bit_cast(native_f32, a.data()));
}

#if defined(TANDEM_SIMD_AVX512_MASKS)
/// m ? a : b under a mask register (vblendmps).
[[nodiscard]] inline native_f32 blend(native_mask m, native_f32 a, native_f32 b) noexcept {
#if defined(__clang__)
  return __builtin_ia32_selectps_512(m, a, b);
#else
  return __builtin_ia32_blendmps_512_mask(b, a, m);
#endif
}
/// m ? a : b under a mask register, for int32 lanes (a blend moves bits).
[[nodiscard]] inline native_i32 blend(native_mask m, native_i32 a, native_i32 b) noexcept {
  return __builtin_bit_cast(
      native_i32, blend(m, __builtin_bit_cast(native_f32, a), __builtin_bit_cast(native_f32, b)));
}
#endif

/// m ? a : b, lane-wise.
template <class T>
[[nodiscard]] inline batch<T> select(batch_bool<T> m, batch<T> a, batch<T> b) noexcept {
#if defined(TANDEM_SIMD_AVX512_MASKS)
  return batch<T>::wrap(blend(m.data(), a.data(), b.data()));
#elif defined(TANDEM_SIMD_VECTOR_EXTENSIONS)
  return batch<T>::wrap(m.data() ? a.data() : b.data());
#else
  typename batch<T>::native_type r;
  for (std::size_t i = 0; i < 4; ++i) r[i] = m.data()[i] ? a.data()[i] : b.data()[i];
  return batch<T>::wrap(r);
#endif
}
/// Lane-wise a > b ? a : b (Max) or a < b ? a : b: b where either is NaN, as x86's
/// maxps/minps. On x86 the instruction is named: GCC otherwise lowers some selects to
/// and/andnot/or in the kernels.
template <bool Max>
[[nodiscard]] inline batch<float> max_or_min(batch<float> a, batch<float> b) noexcept {
  [[maybe_unused]] const native_f32 x = a.data(), y = b.data();
#if defined(TANDEM_SIMD_AVX512_MASKS) && defined(__clang__)
  return batch<float>::wrap(Max ? __builtin_ia32_maxps512(x, y, 4)
                                : __builtin_ia32_minps512(x, y, 4));
#elif defined(TANDEM_SIMD_AVX512_MASKS)
  constexpr auto all = static_cast<native_mask>(0xffff);
  return batch<float>::wrap(Max ? __builtin_ia32_maxps512_mask(x, y, x, all, 4)
                                : __builtin_ia32_minps512_mask(x, y, x, all, 4));
#elif defined(TANDEM_SIMD_VECTOR_EXTENSIONS) && defined(__AVX__)
  return batch<float>::wrap(Max ? __builtin_ia32_maxps256(x, y) : __builtin_ia32_minps256(x, y));
#elif defined(TANDEM_SIMD_VECTOR_EXTENSIONS) && defined(__SSE2__)
  return batch<float>::wrap(Max ? __builtin_ia32_maxps(x, y) : __builtin_ia32_minps(x, y));
#else
  return select(Max ? a > b : a < b, a, b);
#endif
}
/// Lane-wise a > b ? a : b (b where either is NaN, as x86's maxps).
[[nodiscard]] inline batch<float> max(batch<float> a, batch<float> b) noexcept {
  return max_or_min<true>(a, b);
}
/// Lane-wise a < b ? a : b (b where either is NaN, as x86's minps).
[[nodiscard]] inline batch<float> min(batch<float> a, batch<float> b) noexcept {
  return max_or_min<false>(a, b);
}
/// a * b + c; the compiler fuses it where the target has FMA.
[[nodiscard]] inline batch<float> fma(batch<float> a, batch<float> b, batch<float> c) noexcept {
  return a * b + c;
}
/// Lane-wise |a| (clears the sign bit).
[[nodiscard]] inline batch<float> abs(batch<float> a) noexcept {
  return from_bits(to_bits(a) & batch<std::int32_t>(0x7fffffff));
}
/// True in the NaN lanes (an unordered compare).
[[nodiscard]] inline batch_bool<float> isnan(batch<float> a) noexcept { return a != a; }

#if !defined(TANDEM_SIMD_AVX512_MASKS)
/// The lanes of m as bits (bit i: lane i), for masks of at most 32 lanes.
template <class T>
[[nodiscard]] inline std::uint32_t movemask(native_i32 m) noexcept {
#if defined(TANDEM_SIMD_VECTOR_EXTENSIONS) && defined(__AVX__) && !defined(__AVX512F__)
  return static_cast<std::uint32_t>(__builtin_ia32_movmskps256(__builtin_bit_cast(native_f32, m)));
#elif defined(TANDEM_SIMD_VECTOR_EXTENSIONS) && defined(__SSE2__) && !defined(__AVX__)
  return static_cast<std::uint32_t>(__builtin_ia32_movmskps(__builtin_bit_cast(native_f32, m)));
#else
  std::uint32_t r = 0;
  for (std::size_t i = 0; i < batch<T>::size; ++i)
    r |= static_cast<std::uint32_t>(lane(m, i) != 0) << i;
  return r;
#endif
}
#endif

/// The lanes of m as bits (bit i: lane i).
template <class T>
[[nodiscard]] inline std::uint32_t bitmask(batch_bool<T> m) noexcept {
#if defined(TANDEM_SIMD_AVX512_MASKS)
  return m.data();
#else
  return movemask<T>(m.data());
#endif
}
/// True when some lane of m is set.
template <class T>
[[nodiscard]] inline bool any(batch_bool<T> m) noexcept {
  return bitmask(m) != 0;
}
/// True when every lane of m is set.
template <class T>
[[nodiscard]] inline bool all(batch_bool<T> m) noexcept {
  return bitmask(m) == (std::uint32_t{1} << batch<T>::size) - 1;
}
/// Sum of the lanes (in lane order).
template <class T>
[[nodiscard]] inline T hadd(batch<T> a) noexcept {
  T s = lane(a.data(), 0);
  for (std::size_t i = 1; i < batch<T>::size; ++i) s += lane(a.data(), i);
  return s;
}

#endif

}  // namespace TANDEM_SIMD_ABI
}  // namespace tandem::inline v0::detail::simd

#undef TANDEM_SIMD_ABI
#undef TANDEM_SIMD_AVX512_MASKS
#undef TANDEM_SIMD_VECTOR_EXTENSIONS
