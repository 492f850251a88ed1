// Reading subscription messages from a growing file or a FIFO (see
// ndjson_ack_reader.hpp).
#include "net/acks/ndjson_ack_reader.hpp"

#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace fleetcast::net {

namespace asio = boost::asio;

struct ndjson_ack_reader::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor ex, std::string p, subscription_handler h)
      : timer(ex), path(std::move(p)), handler(std::move(h)) {}
  ~impl() {
    if (fd >= 0) ::close(fd);
  }
  asio::steady_timer timer;
  std::string path;
  subscription_handler handler;
  int fd = -1;
  std::string pending;  // a line not yet ended
  std::uint64_t lines = 0;
  std::string error;
  bool stopped = false;

  void read_available() {
    if (fd < 0) {
      fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        if (errno != ENOENT) error = path + ": " + std::strerror(errno);
        return;  // not there yet: looked for again
      }
      error.clear();
    }
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t begin = 0;
        for (std::size_t nl; (nl = pending.find('\n', begin)) != std::string::npos;
             begin = nl + 1) {
          std::string_view line(pending.data() + begin, nl - begin);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (line.empty()) continue;
          ++lines;
          handler(line);
          if (stopped) return;
        }
        pending.erase(0, begin);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) error = path + ": " + std::strerror(errno);
      return;  // end for now (a file's end, a FIFO without data or writer)
    }
  }

  void schedule() {
    if (stopped) return;
    timer.expires_after(std::chrono::milliseconds(50));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->read_available();
      self->schedule();
    });
  }
};

ndjson_ack_reader::ndjson_ack_reader(asio::any_io_executor ex, std::string path,
                                     subscription_handler on_message)
    : impl_(std::make_shared<impl>(ex, std::move(path), std::move(on_message))) {}

ndjson_ack_reader::~ndjson_ack_reader() {
  stop();
}

void ndjson_ack_reader::start() {
  impl_->read_available();
  impl_->schedule();
}

void ndjson_ack_reader::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

void ndjson_ack_reader::poll() {
  if (!impl_->stopped) impl_->read_available();
}

std::uint64_t ndjson_ack_reader::lines() const noexcept {
  return impl_->lines;
}
const std::string& ndjson_ack_reader::error() const noexcept {
  return impl_->error;
}

}  // namespace fleetcast::net
