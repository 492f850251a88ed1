// padded_body: a Beast Body that reads a message body into a buffer the
// caller keeps from message to message, with room after the body for
// simdjson's padding, so that the answer is parsed where it was read: no
// allocation, no zero-filling and no second copy per answer (string_body
// allocates a string, zero-fills it as it grows, and the decoder would then
// copy it once more to pad it).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>

#include <algorithm>
#include <boost/optional.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace fleetcast::net {

// The reused storage: bytes [0, size) are the body, and at least `padding`
// readable bytes follow them.
class padded_buffer {
 public:
  explicit padded_buffer(std::size_t padding) : padding_(padding) {}
  void clear() noexcept { size_ = 0; }
  std::string_view view() const noexcept { return {data_.get(), size_}; }
  // Bytes readable from view().data(): size() plus at least the padding.
  std::size_t readable() const noexcept { return capacity_; }
  void reserve(std::size_t body_bytes) {
    const std::size_t need = body_bytes + padding_;
    if (need <= capacity_) return;
    const std::size_t grown = std::max(need, capacity_ + capacity_ / 2);
    auto bigger = std::make_unique_for_overwrite<char[]>(grown);
    if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
    // The padding must be readable, not meaningful: zeroed once, so that no
    // tool reads it as uninitialised.
    std::memset(bigger.get() + size_, 0, grown - size_);
    data_ = std::move(bigger);
    capacity_ = grown;
  }
  void append(const void* p, std::size_t n) {
    reserve(size_ + n);
    std::memcpy(data_.get() + size_, p, n);
    size_ += n;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0, capacity_ = 0;
  std::size_t padding_;
};

struct padded_body {
  // The message refers to the storage; set it before reading.
  struct value_type {
    padded_buffer* storage = nullptr;
  };

  class reader {
   public:
    template <bool IsRequest, class Fields>
    reader(boost::beast::http::header<IsRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      body_.storage->clear();
      if (length) body_.storage->reserve(static_cast<std::size_t>(*length));
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      std::size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer b = *it;
        body_.storage->append(b.data(), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace fleetcast::net
