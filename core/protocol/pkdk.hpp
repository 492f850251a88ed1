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

  // A device's identity is productKey + deviceKey; the gateway is a route.
  bool same_device(const pkdk_view& o) const noexcept {
    return device_key == o.device_key && product_key == o.product_key;
  }
  bool has_gateway() const noexcept {
    return !gateway_product_key.empty() || !gateway_device_key.empty();
  }
  friend bool operator==(const pkdk_view&, const pkdk_view&) = default;
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
