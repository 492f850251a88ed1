// pkdk: the platform's device address (productKey + deviceKey, optionally the
// gateway a sub-device is reached through), owned and as a cheap view.
#pragma once

#include <string>
#include <string_view>

namespace fleetcast {

// A non-owning device address; the hot path (encoding, decoding, accounting)
// passes these around so that no device costs an allocation.
struct pkdk_view {
  std::string_view product_key;
  std::string_view device_key;
  std::string_view gateway_product_key;  // empty when the device is addressed directly
  std::string_view gateway_device_key;
  // All four keys need no JSON escaping: set by validate_device, which looks
  // at every byte anyway (UTF-8), so the writers copy them without looking
  // again. False means "not known": they are checked where written.
  bool plain = false;

  // A device's identity is productKey + deviceKey; the gateway is a route.
  bool same_device(const pkdk_view& o) const noexcept {
    return device_key == o.device_key && product_key == o.product_key;
  }
  bool has_gateway() const noexcept {
    return !gateway_product_key.empty() || !gateway_device_key.empty();
  }
  // The same address (the plain flag is a property of how it was read).
  friend bool operator==(const pkdk_view& a, const pkdk_view& b) noexcept {
    return a.product_key == b.product_key && a.device_key == b.device_key &&
           a.gateway_product_key == b.gateway_product_key &&
           a.gateway_device_key == b.gateway_device_key;
  }
};

// An owning device address, for the library user and the tests.
struct pkdk {
  std::string product_key;
  std::string device_key;
  std::string gateway_product_key;
  std::string gateway_device_key;

  pkdk_view view() const noexcept {
    return {product_key, device_key, gateway_product_key, gateway_device_key};
  }
  static pkdk from(const pkdk_view& v) {
    return {std::string(v.product_key), std::string(v.device_key),
            std::string(v.gateway_product_key), std::string(v.gateway_device_key)};
  }
  friend bool operator==(const pkdk&, const pkdk&) = default;
};

}  // namespace fleetcast
