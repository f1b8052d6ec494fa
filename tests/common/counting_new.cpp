// Test helper: replaces every form of the global operator new/delete with versions that
// count allocations per thread (see counting_new.hpp).
#include "common/counting_new.hpp"

#include <cstdlib>
#include <new>

namespace {
// Plain integers: constant-initialised, so counting never runs a TLS constructor
// (which could itself allocate and recurse).
thread_local std::size_t t_allocations = 0;
thread_local std::size_t t_deallocations = 0;

void* allocate(std::size_t size) noexcept {
  ++t_allocations;
  return std::malloc(size == 0 ? 1 : size);
}

void* allocate_aligned(std::size_t size, std::align_val_t align) noexcept {
  ++t_allocations;
  auto a = static_cast<std::size_t>(align);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, a, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

void deallocate(void* p) noexcept {
  if (p == nullptr) return;
  ++t_deallocations;
  std::free(p);
}

[[noreturn]] void out_of_memory() {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  throw std::bad_alloc();
#else
  std::abort();
#endif
}

void* allocate_or_fail(std::size_t size) {
  void* p = allocate(size);
  if (p == nullptr) out_of_memory();
  return p;
}

void* allocate_aligned_or_fail(std::size_t size, std::align_val_t align) {
  void* p = allocate_aligned(size, align);
  if (p == nullptr) out_of_memory();
  return p;
}
}  // namespace

namespace tandem_test {
std::size_t allocation_count() noexcept { return t_allocations; }
std::size_t deallocation_count() noexcept { return t_deallocations; }
}  // namespace tandem_test

void* operator new(std::size_t size) { return allocate_or_fail(size); }
void* operator new[](std::size_t size) { return allocate_or_fail(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  return allocate_aligned_or_fail(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return allocate_aligned_or_fail(size, align);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return allocate_aligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return allocate_aligned(size, align);
}

void operator delete(void* p) noexcept { deallocate(p); }
void operator delete[](void* p) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
