// batch storage (see batch.hpp).
#include <fleetcast/core/dispatch/batch.hpp>

#include "core/input/device_hash.hpp"

#include <cassert>

namespace fleetcast {

void batch::add(std::uint64_t index, const pkdk_view& d, std::uint32_t attempts, bool uncertain) {
  add_hashed(index, d, device_hash(d.product_key, d.device_key), attempts, uncertain);
}

void batch::add_hashed(std::uint64_t index, const pkdk_view& d, std::uint64_t fingerprint,
                       std::uint32_t attempts, bool uncertain) {
  const std::string_view parts[4] = {d.product_key, d.device_key, d.gateway_product_key,
                                     d.gateway_device_key};
  slot s{index,     fingerprint, static_cast<std::uint32_t>(arena_.size()), {}, attempts,
         uncertain, d.plain};
  for (int i = 0; i < 4; ++i) {
    assert(parts[i].size() <= 0xFFFF);
    s.length[i] = static_cast<std::uint16_t>(parts[i].size());
    arena_.append(parts[i]);
  }
  slots_.push_back(s);
}

pkdk_view batch::device(std::size_t i) const noexcept {
  const slot& s = slots_[i];
  const char* p = arena_.data() + s.offset;
  pkdk_view v;
  v.product_key = {p, s.length[0]};
  p += s.length[0];
  v.device_key = {p, s.length[1]};
  p += s.length[1];
  v.gateway_product_key = {p, s.length[2]};
  p += s.length[2];
  v.gateway_device_key = {p, s.length[3]};
  v.plain = s.plain;
  return v;
}

void batch::note_attempt() noexcept {
  for (auto& s : slots_) ++s.attempts;
}

void batch::mark_uncertain() noexcept {
  for (auto& s : slots_) s.uncertain = true;
}

void batch::clear() noexcept {
  arena_.clear();
  slots_.clear();
}

batch batch::slice(std::size_t first, std::size_t last) const {
  batch out;
  for (std::size_t i = first; i < last && i < size(); ++i) {
    const slot& s = slots_[i];
    out.add_hashed(s.index, device(i), s.fingerprint, s.attempts, s.uncertain);
  }
  return out;
}

}  // namespace fleetcast
