// Global operator new replacements that count allocations per thread.
#include "tests/alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t allocation_count = 0;
thread_local int counting_depth = 0;

void* allocate(std::size_t n) {
  if (counting_depth > 0) ++allocation_count;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) {
  return allocate(n);
}
void* operator new[](std::size_t n) {
  return allocate(n);
}
// The nothrow forms too (simdjson uses them), so that every new meets our delete.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (counting_depth > 0) ++allocation_count;
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace fleetcast::test {
counting_scope::counting_scope() : start_(allocation_count) {
  ++counting_depth;
}
counting_scope::~counting_scope() {
  --counting_depth;
}
std::size_t counting_scope::allocations() const {
  return allocation_count - start_;
}
}  // namespace fleetcast::test
