// Reading subscription messages from a growing file or a FIFO (see
// ndjson_ack_reader.hpp).
#include "net/acks/ndjson_ack_reader.hpp"

#include "core/input/line_splitter.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fleetcast::net {

namespace asio = boost::asio;

struct ndjson_ack_reader::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, std::string p, subscription_handler h, source_notice n)
      : ex(e), timer(e), path(std::move(p)), handler(std::move(h)), notice(std::move(n)) {}
  ~impl() {
    if (fd >= 0) ::close(fd);
  }
  asio::any_io_executor ex;
  asio::steady_timer timer;
  std::string path;
  subscription_handler handler;
  source_notice notice;
  line_splitter splitter{max_line};
  int fd = -1;
  bool fifo = false;
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t offset = 0;  // bytes read from the file open now
  std::uint64_t lines = 0, refused = 0;
  std::string error;
  bool stopped = false, turn_posted = false;

  void tell(const std::string& text) {
    if (notice && !stopped) notice(text);
  }

  bool open(std::string& why) {
    const int f = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st {};
    if (f < 0 || ::fstat(f, &st) != 0) {
      why = fmt::format("acks.ndjson: {}: {}", path, std::strerror(errno));
      if (f >= 0) ::close(f);
      return false;
    }
    if (fd >= 0) ::close(fd);
    fd = f;
    fifo = S_ISFIFO(st.st_mode);
    dev = st.st_dev;
    ino = st.st_ino;
    offset = 0;
    return true;
  }

  void drop_unfinished(std::string_view why) {
    if (const auto n = splitter.drop_partial(); n > 0) {
      ++refused;
      tell(fmt::format("acks.ndjson: {}: an unfinished line of {} bytes was dropped ({})", path, n,
                       why));
    }
  }

  // One slice: true when the slice was filled (more may be there now).
  bool read_slice() {
    char buf[64 * 1024];
    std::size_t got_total = 0;
    while (got_total < slice && !stopped) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        got_total += static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
        splitter.feed(
            std::string_view(buf, static_cast<std::size_t>(n)),
            [this](std::string_view line) {
              ++lines;
              if (!stopped) handler(line);
            },
            [this](std::uint64_t size) {
              ++refused;
              tell(fmt::format("acks.ndjson: {}: a line of {} bytes was refused (longer than {})",
                               path, size, max_line));
            });
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) error = fmt::format("{}: {}", path, std::strerror(errno));
      if (n == 0 && fifo) drop_unfinished("its writer closed the FIFO");
      if (n == 0 && !fifo) follow();
      return false;
    }
    return !stopped;
  }

  // At the end of a regular file: was it cut shorter, or replaced?
  void follow() {
    struct stat now {};
    if (::fstat(fd, &now) == 0 && static_cast<std::uint64_t>(now.st_size) < offset) {
      drop_unfinished("the file was truncated");
      tell(
          fmt::format("acks.ndjson: {} was truncated (from {} to {} bytes): reading it again "
                      "from its start",
                      path, offset, now.st_size));
      ::lseek(fd, 0, SEEK_SET);
      offset = 0;
      post_turn();
      return;
    }
    struct stat at_path {};
    if (::stat(path.c_str(), &at_path) != 0) return;  // moved away, the new one not there yet
    if (at_path.st_dev == dev && at_path.st_ino == ino) return;
    // The old file is read to its end: the new one from its start.
    drop_unfinished("the file was replaced");
    std::string why;
    if (!open(why)) {
      error = why;
      return;
    }
    tell(fmt::format("acks.ndjson: {} was replaced (rotated): reading the new file from its start",
                     path));
    post_turn();
  }

  void turn() {
    turn_posted = false;
    if (stopped || fd < 0) return;
    if (read_slice()) post_turn();  // more is there: after the loop's other work
  }

  void post_turn() {
    if (std::exchange(turn_posted, true)) return;
    asio::post(ex, [self = shared_from_this()] { self->turn(); });
  }

  void schedule() {
    if (stopped) return;
    timer.expires_after(std::chrono::milliseconds(50));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->turn();
      self->schedule();
    });
  }
};

ndjson_ack_reader::ndjson_ack_reader(asio::any_io_executor ex, std::string path,
                                     subscription_handler on_message, source_notice on_notice)
    : impl_(std::make_shared<impl>(ex, std::move(path), std::move(on_message),
                                   std::move(on_notice))) {}

ndjson_ack_reader::~ndjson_ack_reader() {
  stop();
}

bool ndjson_ack_reader::start(std::string& error) {
  if (!impl_->open(error)) return false;
  impl_->post_turn();
  impl_->schedule();
  return true;
}

void ndjson_ack_reader::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

void ndjson_ack_reader::poll() {
  if (!impl_->stopped && impl_->fd >= 0) impl_->read_slice();
}

std::uint64_t ndjson_ack_reader::lines() const noexcept {
  return impl_->lines;
}
std::uint64_t ndjson_ack_reader::refused() const noexcept {
  return impl_->refused;
}
const std::string& ndjson_ack_reader::error() const noexcept {
  return impl_->error;
}

}  // namespace fleetcast::net
