// The delivery outcomes' journal and their merge into results.ndjson (see
// delivery_journal.hpp).
#include "net/session/delivery_journal.hpp"

#include "core/input/line_reader.hpp"
#include "core/output/result_log.hpp"
#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

namespace fleetcast::net {

namespace {

std::string errno_text(const std::string& what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool outcome_from(std::string_view s, delivery_outcome& out) {
  for (auto o :
       {delivery_outcome::delivered, delivery_outcome::delivery_failed, delivery_outcome::no_ack}) {
    if (to_string(o) == s) {
      out = o;
      return true;
    }
  }
  return false;
}

}  // namespace

delivery_journal::~delivery_journal() {
  if (fd_ >= 0) ::close(fd_);
}

bool delivery_journal::open(const std::string& dir, std::string& error) {
  path_ = dir + "/deliveries.ndjson";
  std::uint64_t keep = 0;
  {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      line_reader lines(in, 1 << 16, simdjson::SIMDJSON_PADDING);
      simdjson::ondemand::parser parser;
      line_reader::line line;
      while (lines.next(line)) {
        if (!line.terminated) break;  // cut short by a crash
        keep += line.text.size() + 1;
        if (line.text.empty()) continue;
        simdjson::ondemand::document doc;
        std::uint64_t index = 0;
        std::string_view outcome;
        delivery_record rec;
        auto e = parser.iterate(line.text.data(), line.text.size(), line.readable).get(doc);
        bool early = false;
        if (!e) {
          auto v = doc["index"];
          early = v.is_null();
          if (!early) e = v.get_uint64().get(index);
        }
        if (!e && early) {  // an acknowledgement kept for its ticket: the message itself
          std::string_view body;
          e = doc["message"].get_string().get(body);
          if (!e) {
            early_.push_back(read_subscription_message(body));
            continue;
          }
        }
        if (!e) e = doc["delivery"].get_string().get(outcome);
        if (!e && !outcome_from(outcome, rec.outcome)) e = simdjson::INCORRECT_TYPE;
        if (!e) {
          auto at = doc["ackAt"];
          std::int64_t ms = 0;
          if (at.get_int64().get(ms) == simdjson::SUCCESS) rec.ack_at_ms = ms;
        }
        if (e) {
          error = fmt::format("{}: line {}: not a delivery line ({})", path_, line.number,
                              simdjson::error_message(e));
          return false;
        }
        recorded_.insert_or_assign(index, rec);
      }
      if (lines.failed()) {
        error = errno_text(path_);
        return false;
      }
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0) {
    error = errno_text(path_);
    return false;
  }
  return true;
}

std::string delivery_journal::record(const std::vector<delivery_event>& events) {
  if (events.empty()) return {};
  buf_.clear();
  for (const auto& e : events) {
    fmt::format_to(std::back_inserter(buf_), "{{\"index\":{},\"ticket\":", e.index);
    append_json_string(buf_, e.ticket);
    fmt::format_to(std::back_inserter(buf_),
                   ",\"delivery\":\"{}\",\"ackAt\":", to_string(e.outcome));
    if (e.outcome == delivery_outcome::no_ack)
      buf_ += "null";
    else
      fmt::format_to(std::back_inserter(buf_), "{}", e.ack_at_ms);
    buf_ += "}\n";
    recorded_.insert_or_assign(e.index, delivery_record{e.outcome, e.ack_at_ms});
  }
  dirty_ = true;
  if (!write_all(fd_, buf_)) return errno_text(path_);
  return {};
}

std::string delivery_journal::record_early(const subscription_message& m) {
  // The message again as the subscription sent its fields (the one kind kept).
  std::string body = "{\"type\":\"REQACK\",\"productKey\":";
  append_json_string(body, m.product_key);
  body += ",\"deviceKey\":";
  append_json_string(body, m.device_key);
  body += ",\"ticket\":";
  append_json_string(body, m.ticket);
  fmt::format_to(std::back_inserter(body), ",\"data\":{{\"sentAt\":{},\"status\":\"{}\"}}}}",
                 m.at_ms, m.delivered ? "succ" : "fail");
  buf_ = "{\"index\":null,\"message\":";
  append_json_string(buf_, body);
  buf_ += "}\n";
  dirty_ = true;
  if (!write_all(fd_, buf_)) return errno_text(path_);
  return {};
}

std::string delivery_journal::sync() {
  if (fd_ < 0 || !dirty_) return {};
  dirty_ = false;
  ++syncs_;
  if (::fdatasync(fd_) != 0) return errno_text(path_);
  return {};
}

std::string delivery_journal::close() {
  if (fd_ < 0) return {};
  std::string problem;
  if (::fdatasync(fd_) != 0) problem = errno_text(path_);
  if (::close(fd_) != 0 && problem.empty()) problem = errno_text(path_);
  fd_ = -1;
  return problem;
}

std::string load_tickets(const std::string& results_path, const delivery_journal& journal,
                         delivery_tracker& tracker, std::uint64_t now_ms, std::uint64_t* expected) {
  std::ifstream in(results_path, std::ios::binary);
  if (!in) return {};  // no results yet
  result_log_reader reader(in);
  device_result r;
  std::uint64_t n = 0;
  const auto& recorded = journal.recorded();
  while (reader.next(r)) {
    if (r.reason != outcome_reason::accepted || r.ticket.empty()) continue;
    if (auto it = recorded.find(r.index); it != recorded.end()) {
      tracker.settled(r.index, r.device.product_key, r.device.device_key, r.ticket,
                      it->second.outcome);
    } else {
      tracker.expect(r.index, r.device.product_key, r.device.device_key, r.ticket, now_ms);
      ++n;
    }
  }
  if (expected) *expected = n;
  if (!reader.error().empty()) return results_path + ": " + reader.error();
  return {};
}

std::string merge_deliveries(const std::string& results_path, const delivery_journal& journal,
                             delivery_summary& out) {
  std::ifstream in(results_path, std::ios::binary);
  if (!in) return errno_text(results_path);
  const std::string tmp = results_path + ".deliveries.tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text(tmp);
  line_reader lines(in, 1 << 20, 0);
  line_reader::line line;
  std::string buf;
  const auto& recorded = journal.recorded();
  out.delivered = out.delivery_failed = out.no_ack = out.waiting = 0;
  std::string problem;
  constexpr std::string_view index_key = "{\"index\":";
  constexpr std::string_view delivery_key = ",\"delivery\":";
  while (lines.next(line)) {
    if (!line.terminated) break;  // a cut-short last line is not a result
    std::string_view text = line.text;
    if (text.empty()) continue;
    // The lines are fleetcast's own: "index" first, "delivery" (when an
    // earlier merge added it) last; inside strings a quote is escaped, so
    // these keys cannot appear there.
    std::uint64_t index = 0;
    const auto parsed =
        text.starts_with(index_key)
            ? std::from_chars(text.data() + index_key.size(), text.data() + text.size(), index)
            : std::from_chars_result{nullptr, std::errc::invalid_argument};
    if (parsed.ec != std::errc() || !text.ends_with('}')) {
      problem = fmt::format("{}: line {}: not a result line", results_path, line.number);
      break;
    }
    if (const auto at = text.rfind(delivery_key); at != std::string_view::npos)
      text = text.substr(0, at);
    else
      text.remove_suffix(1);
    buf.append(text);
    const bool succeeded = text.find("\"status\":\"succeeded\"") != std::string_view::npos;
    const auto it = succeeded ? recorded.find(index) : recorded.end();
    if (it == recorded.end() || it->second.outcome == delivery_outcome::no_ack) {
      buf += ",\"delivery\":null,\"ackAt\":null}\n";
      if (succeeded) ++(it == recorded.end() ? out.waiting : out.no_ack);
    } else {
      fmt::format_to(std::back_inserter(buf), ",\"delivery\":\"{}\",\"ackAt\":{}}}\n",
                     to_string(it->second.outcome), it->second.ack_at_ms);
      ++(it->second.outcome == delivery_outcome::delivered ? out.delivered : out.delivery_failed);
    }
    if (buf.size() >= (1 << 20)) {
      if (!write_all(fd, buf)) problem = errno_text(tmp);
      buf.clear();
      if (!problem.empty()) break;
    }
  }
  if (problem.empty() && lines.failed()) problem = errno_text(results_path);
  if (problem.empty() && !write_all(fd, buf)) problem = errno_text(tmp);
  if (problem.empty() && ::fdatasync(fd) != 0) problem = errno_text(tmp);
  if (::close(fd) != 0 && problem.empty()) problem = errno_text(tmp);
  if (problem.empty()) {
    std::error_code ec;
    std::filesystem::rename(tmp, results_path, ec);
    if (ec) problem = fmt::format("{}: {}", results_path, ec.message());
  }
  if (!problem.empty()) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
  }
  return problem;
}

}  // namespace fleetcast::net
