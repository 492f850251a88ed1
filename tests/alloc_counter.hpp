// Counts heap allocations made by this thread while a counting_scope is
// alive, so tests can show that a hot path allocates nothing per device.
#pragma once

#include <cstddef>

namespace fleetcast::test {

class counting_scope {
 public:
  counting_scope();
  ~counting_scope();
  std::size_t allocations() const;

 private:
  std::size_t start_;
};

}  // namespace fleetcast::test
