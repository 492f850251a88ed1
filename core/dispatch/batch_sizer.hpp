// batch_sizer: the batch size the engine uses. A 5312 answer (the list was
// too long; nothing was executed) at size n says the limit is below n; an
// accepted batch of size m says it is at least m. Between the two it
// searches by halving, and settles on the largest size the server accepts.
#pragma once

#include <cstddef>

namespace fleetcast {

class batch_sizer {
 public:
  explicit batch_sizer(std::size_t start) noexcept : current_(start < 1 ? 1 : start), hi_(0) {}

  std::size_t current() const noexcept { return current_; }
  bool settled() const noexcept { return hi_ != 0 && hi_ - lo_ <= 1; }
  std::size_t largest_accepted() const noexcept { return lo_; }

  void on_accepted(std::size_t size) noexcept;
  void on_too_long(std::size_t size) noexcept;

 private:
  void choose() noexcept;
  std::size_t current_;
  std::size_t lo_ = 0;  // largest size accepted
  std::size_t hi_;      // smallest size refused (0 = none yet)
};

}  // namespace fleetcast
