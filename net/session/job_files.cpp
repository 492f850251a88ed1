// Job and device-list files (see job_files.hpp).
#include "net/session/job_files.hpp"

#include "net/client/token_source.hpp"
#include "net/session/job_output.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fleetcast::net {

bool read_text_file(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return false;
  }
  // At most max_job_file_bytes (and one more, to tell a larger file): a job
  // or config file, or /dev/zero given as one, never fills the memory.
  text.clear();
  char chunk[64 * 1024];
  while (in && text.size() <= max_job_file_bytes) {
    in.read(chunk, sizeof chunk);
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    error = fmt::format("{}: read error", path);
    return false;
  }
  if (text.size() > max_job_file_bytes) {
    error = fmt::format("{}: larger than {} MiB: not a job or config file", path,
                        max_job_file_bytes >> 20);
    text.clear();
    return false;
  }
  return true;
}

std::uint64_t estimate_total(const job& j, std::uint64_t newlines, const opened_devices& devices,
                             const std::optional<shard_spec>& shard) {
  std::uint64_t n = 0;
  if (j.devices.file && newlines > 0) {
    if (j.devices.format == device_format::csv) n = newlines - 1;  // the header
    if (j.devices.format == device_format::ndjson) n = newlines;
  }
  if (n == 0 && devices.stream) n = devices.stream->expected_records();
  if (shard) n /= shard->count;
  return n;
}

std::vector<std::string> sendable_problems(const job& j, const std::optional<shard_spec>& shard,
                                           bool devices, bool token) {
  std::vector<std::string> problems;
  std::string error;
  if (devices && !probe_devices(j, shard, error)) problems.push_back(error);
  if (token && j.auth.kind != auth_config::source::token_command) {  // a command runs at the start
    try {
      if (auto bad = net::check_token(net::token_source(j.auth).fetch()); !bad.empty())
        problems.push_back(bad);
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

bool open_devices(const job& j, opened_devices& out, std::string& error) {
  bool is_inline = !j.devices.file;
  if (is_inline) {
    out.input = std::make_unique<std::istringstream>(j.devices.inline_json);
    out.name = "devices (inline)";
  } else {
    const auto& path = *j.devices.file;
    if (std::filesystem::is_directory(path)) {
      error = fmt::format("devices.file: {}: is a folder, not a file", path);
      return false;
    }
    auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*file) {
      error = fmt::format("devices.file: {}: cannot open: {}", path, std::strerror(errno));
      return false;
    }
    out.input = std::move(file);
    out.name = path;
  }
  out.stream = std::make_unique<device_stream>(
      make_device_reader(j.devices.format, *out.input, {}, is_inline));
  std::error_code ec;
  if (!is_inline && std::filesystem::is_regular_file(*j.devices.file, ec)) {
    // Sizes the duplicate filter once from the file's size and first
    // records, instead of growing it step by step (a hint only). Regular
    // files only: a second reader of a pipe would take records from the first.
    const auto bytes = std::filesystem::file_size(*j.devices.file, ec);
    std::ifstream head(*j.devices.file, std::ios::binary);
    std::string sample(64 * 1024, '\0');
    head.read(sample.data(), static_cast<std::streamsize>(sample.size()));
    sample.resize(static_cast<std::size_t>(head.gcount()));
    if (!ec) out.stream->expect_records(estimate_records(sample, bytes, j.devices.format));
  }
  return true;
}

std::unique_ptr<device_reader> reopen_devices(const job& j, std::string& error) {
  opened_devices o;
  if (!open_devices(j, o, error)) return nullptr;
  return make_device_reader(j.devices.format, std::move(o.input), {}, !j.devices.file);
}

bool plan_job_phases(const job& j, const std::optional<shard_spec>& shard,
                     net::rollout_options& options, std::string& error) {
  if (j.rollout.steps().empty()) return true;
  std::error_code ec;
  if (j.devices.file && !std::filesystem::is_regular_file(*j.devices.file, ec)) {
    error = fmt::format(
        "devices.file: {}: a canary or phases read the list once for a census and once per "
        "phase, and this is not a regular file (a pipe or standard input is read once): write "
        "the list to a file",
        *j.devices.file);
    return false;
  }
  const auto copy = std::make_shared<const job>(j);
  const auto name = j.devices.file ? *j.devices.file : std::string("devices (inline)");
  if (!net::plan_phases(
          j, [copy](std::string& e) { return reopen_devices(*copy, e); }, options, error,
          shard.value_or(shard_spec{}))) {
    error = fmt::format("{}: {}", name, error);
    return false;
  }
  return true;
}

bool probe_devices(const job& j, const std::optional<shard_spec>& shard, std::string& error) {
  std::error_code ec;
  if (j.devices.file && !std::filesystem::is_regular_file(*j.devices.file, ec) &&
      std::filesystem::exists(*j.devices.file, ec))
    return true;  // read once only: the engine checks it as it reads
  opened_devices probe;
  if (!open_devices(j, probe, error)) return false;
  if (shard) probe.stream->set_shard(*shard);
  device_record record;
  record_kind kind;
  if (probe.stream->next(record, kind)) return true;
  if (!probe.stream->fatal_error().empty()) {
    error = fmt::format("{}: {}", probe.name, probe.stream->fatal_error());
  } else {
    error = fmt::format("{}: the device list has no records{} (5311 Please enter device list)",
                        probe.name, shard ? " in shard " + to_string(*shard) : std::string());
  }
  return false;
}

namespace {

std::string hex(const unsigned char* md, unsigned len) {
  std::string out;
  for (unsigned i = 0; i < len; ++i) fmt::format_to(std::back_inserter(out), "{:02x}", md[i]);
  return out;
}

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

bool file_sha256(const std::string& path, std::string& hex_out, std::string& error,
                 std::uint64_t* newlines) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("{}: cannot open: {}", path, errno_text());
    return false;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0 || (n < 0 && errno == EINTR)) {
    if (n <= 0) continue;
    EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(n));
    if (newlines)
      *newlines += static_cast<std::uint64_t>(std::count(buf.data(), buf.data() + n, '\n'));
  }
  const bool ok = n == 0;
  if (!ok) error = fmt::format("{}: read failed: {}", path, errno_text());
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  hex_out = hex(md, len);
  return ok;
}

std::string text_sha256(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

bool identify(const job& j, bool emulated, rollout_manifest& out, std::string& error,
              std::uint64_t* newlines) {
  out.endpoint = emulated ? "emulator" : j.endpoint.url;
  out.cmd = j.cmd;
  if (!j.devices.file) {
    out.devices_source = "inline";
    out.devices_sha256 = text_sha256(j.devices.inline_json);
    return true;
  }
  out.devices_source = *j.devices.file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(*j.devices.file, ec)) return true;  // no digest
  std::string hex;
  if (!file_sha256(*j.devices.file, hex, error, newlines)) return false;
  out.devices_sha256 = hex;
  return true;
}

}  // namespace fleetcast::net
