// Test helper: counts heap allocations made on the current thread.
//
// Link counting_new.cpp into a test executable to replace the global operator new and
// delete (every form) with versions that count allocations in a thread-local counter.
// Tests use it to prove that a warm loop allocates nothing:
//
//   tandem_test::allocation_scope scope;
//   run_the_loop();
//   CHECK(scope.allocations() == 0);
//
// Only executables that list counting_new.cpp among their sources get the replacement;
// linking this header without it fails with an undefined reference.
#pragma once

#include <cstddef>

namespace tandem_test {

/// Heap allocations (any form of operator new, including failed nothrow ones) made on
/// the calling thread since it started.
std::size_t allocation_count() noexcept;

/// Heap deallocations (operator delete of a non-null pointer) made on the calling
/// thread since it started.
std::size_t deallocation_count() noexcept;

/// Counts the allocations made on the calling thread during its lifetime.
class allocation_scope {
 public:
  allocation_scope() noexcept : start_(allocation_count()) {}
  /// Allocations since construction (or the last restart()).
  [[nodiscard]] std::size_t allocations() const noexcept { return allocation_count() - start_; }
  /// Starts counting again from zero.
  void restart() noexcept { start_ = allocation_count(); }

 private:
  std::size_t start_;
};

}  // namespace tandem_test
