// A fixed amount of hot-path work (encode, decode, account, write the
// outputs of 2,000 batches of 100 devices) for bench/instruction_guard.sh to count under callgrind:
// instruction counts are repeatable where timings on a shared machine are not.
#include "core/dispatch/accountant.hpp"
#include "core/protocol/pkdk_result_merger.hpp"
#include "core/protocol/request_encoder.hpp"
#include "core/protocol/response_decoder.hpp"
#include "core/protocol/validation.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace fleetcast;

constexpr int batches = 2000;
constexpr int per_batch = 100;

// Kept out of line so that callgrind can count each phase by name.
[[gnu::noinline]] void encode_phase(const request_encoder& e, const batch& b, std::string& out) {
  for (int i = 0; i < batches; ++i) {
    out.clear();
    e.encode(b, out);
  }
}

[[gnu::noinline]] std::size_t decode_phase(response_decoder& d, const std::string& padded,
                                           std::size_t size) {
  std::size_t n = 0;
  for (int i = 0; i < batches; ++i) {
    if (!d.decode({padded.data(), size}, padded.size())) n += d.response().successes.size();
  }
  return n;
}

[[gnu::noinline]] std::uint64_t account_phase(accountant& a, const batch& b,
                                              const decoded_response& r) {
  struct count_sink : result_sink {
    std::uint64_t n = 0;
    void on_result(const device_result& x) override { n += x.reason == outcome_reason::accepted; }
  } sink;
  for (int i = 0; i < batches; ++i) a.account_answer(b, r, sink);
  return sink.n;
}

// What each device's result costs in the outputs: its results.ndjson line
// and its result.json entry (buffers drained as the writers do).
[[gnu::noinline]] std::size_t write_phase(const std::vector<device_result>& results) {
  std::string lines;
  pkdk_result_merger merged;
  std::size_t bytes = 0;
  for (int i = 0; i < batches; ++i) {
    for (const auto& r : results) {
      append_result_line(lines, r);
      merged.add(r);
    }
    bytes += lines.size() + merged.successes().size();
    lines.clear();
    merged.successes().clear();
  }
  return bytes;
}

}  // namespace

int main() {
  std::vector<std::string> keys;
  batch b;
  for (int i = 0; i < per_batch; ++i) keys.push_back(fmt::format("86{:013}", i * 7919));
  for (int i = 0; i < per_batch; ++i) {
    pkdk_view d{"p1a2b3c4", keys[i], "", ""};
    if (validate_device(d, &d.plain)) return 1;  // as the device stream does
    b.add(static_cast<std::uint64_t>(i), d);
  }
  command c;
  c.type = 2;
  c.data = R"([{"switch":true}])";
  c.qos = 1;
  const request_encoder encoder(c);
  std::string body;
  encode_phase(encoder, b, body);

  std::string answer = R"({"code":200,"msg":"success","extMsg":null,"data":{"successList":[)";
  for (int i = 0; i < per_batch; ++i) {
    answer += fmt::format(
        R"({}{{"data":{{"productKey":"p1a2b3c4","deviceKey":"{}","gatewayProductKey":"","gatewayDeviceKey":""}},"ticket":"{}"}})",
        i ? "," : "", keys[i], 1700000000000000000ULL + static_cast<unsigned>(i));
  }
  answer += R"(],"failureList":[]}})";
  const std::size_t size = answer.size();
  answer.append(response_decoder::padding, ' ');
  response_decoder decoder;
  const auto decoded = decode_phase(decoder, answer, size);
  accountant acct;
  const auto accounted = account_phase(acct, b, decoder.response());
  std::vector<device_result> results;
  for (std::size_t i = 0; i < decoder.response().successes.size(); ++i) {
    device_result r;  // as the accountant makes it: the batch's device, the answer's ticket
    r.index = b.index(i);
    r.device = b.device(i);
    r.ticket = decoder.response().successes[i].ticket;
    results.push_back(r);
  }
  const auto written = write_phase(results);
  std::printf(
      "%d devices encoded (%zu bytes each batch), %zu decoded, %llu accounted, %zu bytes "
      "written\n",
      batches * per_batch, body.size(), decoded, static_cast<unsigned long long>(accounted),
      written);
  return decoded == static_cast<std::size_t>(batches * per_batch) && accounted == decoded &&
                 results.size() == per_batch && written > 0
             ? 0
             : 1;
}
