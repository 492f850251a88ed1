// Batch size search (see batch_sizer.hpp).
#include "core/dispatch/batch_sizer.hpp"

namespace fleetcast {

void batch_sizer::on_accepted(std::size_t size) noexcept {
  if (size > lo_) lo_ = size;
  if (hi_ != 0 && lo_ >= hi_) hi_ = lo_ + 1;  // a limit that moved up
  choose();
}

void batch_sizer::on_too_long(std::size_t size) noexcept {
  if (hi_ == 0 || size < hi_) hi_ = size;
  // A limit that moved down below what was accepted: those accepts say
  // nothing any more, search again by halving (stepping down one size at a
  // time would cost a refused request per step).
  if (lo_ >= hi_) lo_ = 0;
  choose();
}

void batch_sizer::choose() noexcept {
  if (hi_ == 0) return;  // nothing refused: keep the size
  if (lo_ == 0) {
    current_ = hi_ / 2 > 0 ? hi_ / 2 : 1;
  } else if (hi_ - lo_ <= 1) {
    current_ = lo_;
  } else {
    current_ = lo_ + (hi_ - lo_) / 2;
  }
}

}  // namespace fleetcast
