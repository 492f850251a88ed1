// Operator requests through the output folder (see operator_requests.hpp).
#include "net/session/operator_requests.hpp"

#include "core/job/time_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fleetcast::net {
namespace fs = std::filesystem;

namespace {
std::string now_text() {
  return format_iso8601_utc(
      static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count()));
}

bool read_small(const fs::path& p, std::string& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out.assign(4097, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return true;
}
}  // namespace

std::vector<act_request> operator_requests::take(
    std::vector<std::pair<act_request, act_result>>& refused) {
  std::vector<act_request> out;
  std::error_code ec;
  const auto dir = dir_ / ".requests";
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (!name.starts_with('.') && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.size() > 16) files.resize(16);
  for (const auto& f : files) {
    std::string text, error;
    const bool read = read_small(f, text);
    fs::remove(f, ec);
    auto r = read ? parse_act_request(text, error) : std::nullopt;
    if (r) {
      out.push_back(std::move(*r));
      continue;
    }
    act_request bad;
    bad.id = f.stem().string().substr(0, 64);
    bad.by = "?";
    refused.push_back({bad, {false, "not a request: " + (read ? error : "cannot read it")}});
  }
  return out;
}

bool operator_requests::record(const act_request& r, const act_result& result, std::string& error) {
  const auto line = outcome_line(r, result, now_text());
  const auto path = (dir_ / "operator.ndjson").string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return false;
  }
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (!ok) error = fmt::format("{}: cannot write: {}", path, std::strerror(errno));
  ::close(fd);
  return ok;
}

act_request make_request(operator_act act, std::string by) {
  act_request r;
  r.act = act;
  r.at = now_text();
  std::random_device rd;
  r.id = fmt::format("{}-{}-{:08x}", r.at, ::getpid(), rd());
  std::replace(r.id.begin(), r.id.end(), ':', '-');
  if (by.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const auto* pw = ::getpwuid(::geteuid());
    by = fmt::format("{}@{} (uid {})", pw ? pw->pw_name : "?", host, ::geteuid());
  }
  r.by = std::move(by);
  return r;
}

bool submit_request(const fs::path& dir, const act_request& r, std::string& error) {
  std::error_code ec;
  const auto folder = dir / ".requests";
  fs::create_directories(folder, ec);
  const auto aside = folder / ("." + r.id + ".json");
  {
    std::ofstream out(aside, std::ios::binary | std::ios::trunc);
    out << to_json(r);
    if (!out.flush()) {
      error = fmt::format("{}: cannot write", aside.string());
      return false;
    }
  }
  fs::rename(aside, folder / (r.id + ".json"), ec);
  if (ec) {
    error = fmt::format("{}: cannot rename: {}", aside.string(), ec.message());
    fs::remove(aside, ec);
    return false;
  }
  return true;
}

std::optional<std::string> find_outcome(const fs::path& dir, const std::string& id) {
  std::ifstream in(dir / "operator.ndjson", std::ios::binary);
  const auto key = fmt::format("{{\"id\":\"{}\",", id);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(key)) return line;
  return std::nullopt;
}

bool folder_in_use(const fs::path& dir, std::string& holder) {
  struct stat st {};
  if (::stat((dir / ".lock").c_str(), &st) != 0) return false;
  // The holder writes its PID into the lock file: an inode of another
  // file system with the same number is not taken for it.
  std::string written;
  read_small(dir / ".lock", written);
  while (!written.empty() && (written.back() == '\n' || written.back() == ' ')) written.pop_back();
  // /proc/locks: "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF".
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string n, kind, mode, rw, pid, where;
    if (!(fields >> n >> kind >> mode >> rw >> pid >> where) || kind != "FLOCK") continue;
    if (pid == "->") continue;  // a waiter, not a holder
    const auto colon = where.rfind(':');
    if (colon == std::string::npos) continue;
    if (where.substr(colon + 1) == std::to_string(st.st_ino) && pid == written) {
      holder = pid;
      return true;
    }
  }
  return false;
}

}  // namespace fleetcast::net
