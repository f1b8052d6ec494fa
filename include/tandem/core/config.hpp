// tandem: configuration, version, namespaces and the overridable assertion.
/// \file
/// Version macros, exception detection and the overridable TANDEM_ASSERT.
#pragma once

#include <cstdio>
#include <cstdlib>

/// Library version (semantic versioning): major, minor and patch.
///@{
#define TANDEM_VERSION_MAJOR 0
#define TANDEM_VERSION_MINOR 1
#define TANDEM_VERSION_PATCH 0
///@}

/// True (1) when the translation unit is compiled with C++ exceptions enabled.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define TANDEM_HAS_EXCEPTIONS 1
#else
#define TANDEM_HAS_EXCEPTIONS 0
#endif

/// Precondition check. A broken precondition is a programming error, not a runtime
/// failure (those are reported through `errc`/`result`). Define `TANDEM_ASSERT` before
/// including any tandem header to route it elsewhere (for example to a game engine's
/// crash handler); define `TANDEM_DISABLE_ASSERTS` to compile the checks out.
#ifndef TANDEM_ASSERT
#ifdef TANDEM_DISABLE_ASSERTS
#define TANDEM_ASSERT(cond, msg) ((void)0)
#else
#define TANDEM_ASSERT(cond, msg) \
  ((cond) ? (void)0 : ::tandem::detail::assert_fail(#cond, msg, __FILE__, __LINE__))
#endif
#endif

/// Small and large language models working together at inference time: speculative and
/// contrastive decoding, confidence estimation, cascades and routing over user-supplied
/// models. Public names live here (in the versioned inline namespace `v0`); private code
/// lives in `tandem::detail`.
namespace tandem {
/// Versioned inline namespace: a binary that mixes two tandem versions fails to link
/// rather than misbehaving.
inline namespace v0 {
namespace detail {
/// Default handler behind TANDEM_ASSERT: prints the failed condition and aborts.
[[noreturn]] inline void assert_fail(const char* cond, const char* msg, const char* file,
                                     int line) noexcept {
  std::fprintf(stderr, "tandem: assertion failed: %s (%s) at %s:%d\n", cond, msg, file, line);
  std::abort();
}
}  // namespace detail
}  // namespace v0
}  // namespace tandem
