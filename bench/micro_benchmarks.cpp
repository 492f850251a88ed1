// Micro-benchmarks of the hot paths, each reporting bytes/s and items/s
// (devices/s) for batches of 1, 100 and 500 devices with realistic keys and
// tickets: request encoding, response decoding (simdjson), chunking,
// accounting, and device-list reading (CSV, NDJSON).
//   build/release/bench/fleetcast_micro_benchmarks [--benchmark_filter=...]
#include <fleetcast/core/input/device_stream.hpp>
#include "core/dispatch/accountant.hpp"
#include "core/dispatch/chunker.hpp"
#include "core/protocol/request_encoder.hpp"
#include "core/protocol/response_decoder.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace fleetcast;

struct fleet {
  std::vector<std::string> keys;
  batch devices;
  explicit fleet(std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
      keys.push_back(fmt::format("86{:013}", i * 7919 % 10'000'000'000'000));
    for (std::int64_t i = 0; i < n; ++i) {
      devices.add(static_cast<std::uint64_t>(i), {"p1a2b3c4", keys[i], i % 10 == 9 ? "pgw001" : "",
                                                  i % 10 == 9 ? "gw00000001" : ""});
    }
  }
};

command property_command() {
  command c;
  c.type = 2;
  c.data = R"([{"switch":true}])";
  c.qos = 1;
  c.is_cache = 1;
  c.cache_time = 3600;
  c.is_cover = 1;
  return c;
}

// The answer a platform gives to a batch: every tenth device failing.
std::string answer_for(const batch& b) {
  std::string s = R"({"code":200,"msg":"success","extMsg":null,"data":{"successList":[)";
  std::string f;
  bool first = true;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto d = b.device(i);
    std::string dev = fmt::format(
        R"({{"productKey":"{}","deviceKey":"{}","gatewayProductKey":"{}","gatewayDeviceKey":"{}"}})",
        d.product_key, d.device_key, d.gateway_product_key, d.gateway_device_key);
    if (i % 10 == 3) {
      f += fmt::format(R"({}{{"data":{},"msg":"device offline"}})", f.empty() ? "" : ",", dev);
    } else {
      s += fmt::format(R"({}{{"data":{},"ticket":"{}"}})", first ? "" : ",", dev,
                       1700000000000000000ULL + i);
      first = false;
    }
  }
  return s + "],\"failureList\":[" + f + "]}}";
}

void encode(benchmark::State& state) {
  fleet f(state.range(0));
  request_encoder encoder(property_command());
  std::string body;
  for (auto _ : state) {
    body.clear();
    encoder.encode(f.devices, body);
    benchmark::DoNotOptimize(body.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(encode)->Arg(1)->Arg(100)->Arg(500);

void decode(benchmark::State& state) {
  fleet f(state.range(0));
  std::string body = answer_for(f.devices);
  const std::size_t size = body.size();
  body.append(response_decoder::padding, ' ');
  response_decoder decoder;
  for (auto _ : state) {
    auto ec = decoder.decode({body.data(), size}, body.size());
    benchmark::DoNotOptimize(ec);
  }
  if (decoder.response().successes.size() + decoder.response().failures.size() !=
      f.devices.size()) {
    state.SkipWithError("the answer did not decode whole");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(decode)->Arg(1)->Arg(100)->Arg(500);

void chunking(benchmark::State& state) {
  fleet f(10'000);
  chunker c(static_cast<std::size_t>(state.range(0)));
  batch out;
  for (auto _ : state) {
    for (std::size_t i = 0; i < f.keys.size(); ++i) {
      if (c.add(i, {"p1a2b3c4", f.keys[i], "", ""})) c.take(out);
    }
    c.take(out);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(f.keys.size()));
}
BENCHMARK(chunking)->Arg(1)->Arg(100)->Arg(500);

void accounting(benchmark::State& state) {
  fleet f(state.range(0));
  const std::string body = answer_for(f.devices);
  response_decoder decoder;
  if (decoder.decode(body)) state.SkipWithError("decode failed");
  accountant a;
  struct count_sink : result_sink {
    std::uint64_t n = 0;
    void on_result(const device_result& r) override { n += r.attempts + 1; }
  } sink;
  for (auto _ : state) a.account_answer(f.devices, decoder.response(), sink);
  benchmark::DoNotOptimize(sink.n);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(accounting)->Arg(1)->Arg(100)->Arg(500);

void read_devices(benchmark::State& state, device_format format) {
  const std::int64_t n = 100'000;
  std::string text = format == device_format::csv
                         ? "productKey,deviceKey,gatewayProductKey,gatewayDeviceKey\n"
                         : "";
  for (std::int64_t i = 0; i < n; ++i) {
    const auto key = fmt::format("86{:013}", i);
    text += format == device_format::csv
                ? fmt::format("p1a2b3c4,{},,\n", key)
                : fmt::format(R"({{"productKey":"p1a2b3c4","deviceKey":"{}"}})"
                              "\n",
                              key);
  }
  for (auto _ : state) {
    std::istringstream in(text);
    device_stream s(make_device_reader(format, in));
    device_record r;
    record_kind k;
    std::int64_t seen = 0;
    while (s.next(r, k)) seen += k == record_kind::device;
    if (seen != n) state.SkipWithError("records lost");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK_CAPTURE(read_devices, csv, device_format::csv);
BENCHMARK_CAPTURE(read_devices, ndjson, device_format::ndjson);

}  // namespace

BENCHMARK_MAIN();
