// The run command (see run.hpp): job and device list in; results.ndjson as
// results come, a send journal (so that --resume knows what may already have
// been sent), summary.json and result.json at the end; a progress line.
#include "app/run.hpp"
#include "app/say.hpp"

#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include "app/delivery_stage.hpp"
#include "app/job_files.hpp"
#include "app/job_output.hpp"
#include "core/output/progress_view.hpp"
#include "net/acks/amqp_ack_receiver.hpp"
#include "net/client/token_source.hpp"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

namespace fleetcast::app {
namespace {

// The terminal's width in columns (80 when it cannot be told).
std::size_t terminal_width() {
  winsize w{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const long n = std::strtol(c, nullptr, 10);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  return 80;
}

}  // namespace

int run_job(const std::string& job_file, const run_flags& flags) {
  // The whole run as the operator waits for it: from here to every output
  // written (the closing line's time and devices/s).
  const auto process_start = std::chrono::steady_clock::now();
  auto loaded = load_job(job_file, true);
  if (!loaded) return 2;
  job j = std::move(*loaded);
  std::string error;

  // The run's event loop: the rollout and the stop signals (the first
  // SIGINT or SIGTERM cancels, the second cuts the requests in flight too).
  boost::asio::io_context ioc(1);
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  int stopped_by = 0;
  std::optional<net::emulator> emulator;
  net::rollout_options options;
  if (flags.emulate) {
    emulator_config ec;
    if (!flags.emulator_config.empty()) {
      std::string etext;
      if (!read_text_file(flags.emulator_config, etext, error)) {
        say("fleetcast: {}\n", error);
        return 2;
      }
      auto ep = parse_emulator_config(etext, flags.emulator_config);
      if (!ep.config) {
        for (const auto& e : ep.errors) say("fleetcast: {}: {}\n", flags.emulator_config, e);
        return 2;
      }
      ec = std::move(*ep.config);
    } else {
      ec.threads = 1;  // leave the other core to the engine
    }
    ec.listen = "127.0.0.1:0";
    // The job's acknowledgements come from the emulator's subscription:
    // its file, or its AMQP listener taking the job's own credentials.
    if (j.acks.kind == acks_config::source::ndjson) ec.acks.ndjson = j.acks.ndjson;
    if (j.acks.kind == acks_config::source::amqp) {
      if (!net::read_amqp_credentials(j.acks.amqp, ec.acks.access_key, ec.acks.access_secret,
                                      error)) {
        say("fleetcast: {}: {}\n", job_file, error);
        return 2;
      }
      ec.acks.amqp_listen = "127.0.0.1:0";
      ec.acks.access_secret_file.clear();
      if (!j.acks.amqp.queue.empty()) ec.acks.queue = j.acks.amqp.queue;
    }
    try {
      emulator.emplace(ec);
    } catch (const std::exception& e) {
      say("fleetcast: --emulate: {}\n", e.what());
      return 2;
    }
    parse_endpoint(emulator->url(), j.endpoint);
    if (emulator->amqp_port()) {
      j.acks.amqp.host = emulator->host();
      j.acks.amqp.port = emulator->amqp_port();
    }
    j.proxy = "direct";  // the emulator is in this process: never through a proxy
    options.extra_ca_pem = emulator->certificate_pem();
    options.system_trust_store = false;  // only the emulator's certificate
    say("fleetcast: rehearsing against the emulator at {} (list limit {})\n", emulator->url(),
        ec.max_devices);
  }
  if (j.endpoint.tls && !j.tls.verify) {
    say("fleetcast: WARNING: tls.verify is false: the server's certificate is NOT checked; "
        "anyone on the path can read the token and the commands\n");
  }

  // Nothing is written before the job is known to be sendable: a device
  // list that cannot be read or holds no record is refused here.
  // Every problem of this kind in one round: the device list and the token.
  if (const auto problems = sendable_problems(j, flags.shard); !problems.empty()) {
    for (const auto& p : problems) say("fleetcast: {}: {}\n", job_file, p);
    say("fleetcast: {}: nothing was sent\n", job_file);
    return 2;
  }
  output_request request;
  request.resume = flags.resume;
  if (flags.retry_failed) {
    if (auto problem = request.plan.retry_failed(*flags.retry_failed)) {
      say("fleetcast run: {}\n", *problem);
      return 2;
    }
  }
  std::uint64_t newlines = 0;
  if (!identify(j, flags.emulate, request.identity, error, &newlines)) {
    say("fleetcast: {}: {}\n", job_file, error);
    return 2;
  }
  if (flags.shard) {  // each shard's outputs apart, so shards can share a folder
    j.output_dir =
        fmt::format("{}/shard-{}-of-{}", j.output_dir, flags.shard->index, flags.shard->count);
  }

  // The output folder: locked for this process, results so far (resume),
  // the journal of sends, the rollout's identity.
  job_output output;
  if (const auto o = output.open(j.output_dir, request, error); o != open_outcome::ok) {
    say("fleetcast: {}\n", error);
    return o == open_outcome::refused ? 2 : 1;
  }
  if (output.needs_verify()) {
    opened_devices check;
    if (!open_devices(j, check, error)) {
      say("fleetcast: {}: {}\n", job_file, error);
      return 2;
    }
    if (flags.shard) check.stream->set_shard(*flags.shard);
    if (const auto o = output.verify(*check.stream, error); o != open_outcome::ok) {
      say("fleetcast: {}\n", error);
      return o == open_outcome::refused ? 2 : 1;
    }
  }

  opened_devices devices;
  if (!open_devices(j, devices, error)) {
    say("fleetcast: {}: {}\n", job_file, error);
    return 2;
  }
  if (flags.shard) devices.stream->set_shard(*flags.shard);

  const run_summary& before = output.earlier();
  if (flags.resume) {
    say("fleetcast: resuming: {} records keep their result\n", before.records);
  }
  output.attach(options);
  // Delivery acknowledgements: every accepted device's ticket goes by the
  // stage on its way to the folder; the stage waits for their REQACKs.
  std::optional<delivery_stage> acks;
  if (j.acks.enabled()) {
    acks.emplace(ioc.get_executor(), j, output.sink());
    if (!acks->open(j.output_dir, error, options.extra_ca_pem, options.system_trust_store)) {
      say("fleetcast: {}: {}; nothing was sent\n", job_file, error);
      acks->abandon();
      output.abandon();
      return 2;
    }
    acks->attach(options);
    acks->on_notice([](const std::string& text) { say("\nfleetcast: {}\n", text); });
    if (acks->expected_now() > 0)
      say("fleetcast: resuming: {} devices wait for their acknowledgement\n", acks->expected_now());
  }
  result_sink& sink = acks ? acks->sink() : output.sink();
  // The progress line: on a terminal one line redrawn in place, fitted to
  // its width; elsewhere (a log, TERM=dumb) a plain line every 5 s.
  const char* term = std::getenv("TERM");
  const bool terminal =
      isatty(STDERR_FILENO) && !(term && std::string_view(term) == "dumb") && !flags.quiet;
  const std::uint64_t estimated_total = estimate_total(j, newlines, devices, flags.shard);
  progress_view view;
  net::rollout_progress last;
  double last_line_s = -10;
  options.on_progress = [&](const net::rollout_progress& p) {
    last = p;
    view.sample(p.elapsed_s, p.succeeded + p.failed);
    if (flags.quiet) return;
    progress_counts c;
    c.done = before.records + p.done;
    c.total_exact = p.input_complete;
    c.total = p.input_complete ? p.records : std::max(estimated_total, p.records);
    c.failed = p.failed;
    c.skipped = p.skipped;
    c.requests = p.requests;
    c.retries = p.retries;
    c.waiting_for = p.waiting_for;
    if (terminal) {
      say("\r{}\033[K", view.line(c, terminal_width()));
    } else if (p.elapsed_s - last_line_s >= 5) {
      say("fleetcast: {}\n", view.line(c, 0));
      last_line_s = p.elapsed_s;
    }
  };

  std::optional<net::rollout> made;
  try {
    made.emplace(ioc.get_executor(), j, *devices.stream, sink, options);
  } catch (const std::exception& e) {  // out of memory, a bug: a proxy mistake is an outcome
    say("fleetcast: {}; nothing was sent\n", e.what());
    output.abandon();
    return 2;
  }
  net::rollout& rollout = *made;
  if (acks)
    acks->on_outcome([&rollout](const delivery_event& e) { rollout.on_delivery(e.outcome); });
  if (const auto route = rollout.route(); !route.empty() && !flags.quiet)
    say("fleetcast: reaching {} {}\n", j.endpoint.url, route);
  int seen = 0;
  std::function<void()> on_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (!stopped_by) stopped_by = sig;
      rollout.cancel();
      if (acks) acks->stop();  // what still waits is left to --resume
      if (++seen < 2) on_signal();
    });
  };
  on_signal();
  net::rollout_outcome outcome;
  // After the last answer, the wait for acknowledgements, shown as it goes.
  boost::asio::steady_timer wait_line(ioc);
  std::function<void()> show_wait = [&] {
    if (flags.quiet) return;
    const auto text = fmt::format(
        "waiting for {} acknowledgements ({} delivered, {} failed so far; "
        "at most {:.0f} s more)",
        acks->waiting(), acks->counts().delivered, acks->counts().delivery_failed,
        acks->seconds_left());
    if (terminal)
      say("\r{}\033[K", text);
    else
      say("fleetcast: {}\n", text);
    wait_line.expires_after(std::chrono::seconds(terminal ? 1 : 5));
    wait_line.async_wait([&](boost::system::error_code ec) {
      if (!ec) show_wait();
    });
  };
  // With acks, nothing is sent before their source can be relied on.
  std::string acks_refused;
  const auto run_rollout = [&] {
    rollout.async_run([&](boost::system::error_code, net::rollout_outcome o) {
      outcome = std::move(o);
      if (!acks || !outcome.started()) {
        if (acks) acks->stop();
        signals.cancel();  // the loop ends with the run
        return;
      }
      if (terminal) say("\n");
      show_wait();
      acks->async_wait([&] {
        wait_line.cancel();
        signals.cancel();
      });
    });
  };
  if (acks) {
    acks->start([&](const std::string& problem) {
      if (problem.empty() && !stopped_by) return run_rollout();
      acks_refused = problem.empty() ? "stopped before sending" : problem;
      acks->stop();
      signals.cancel();
    });
  } else {
    run_rollout();
  }
  ioc.run();
  if (!acks_refused.empty()) {
    say("fleetcast: {}: {}; nothing was sent\n", job_file, acks_refused);
    acks->abandon();
    output.abandon();
    return stopped_by ? 4 : 2;
  }
  if (!outcome.started()) {
    if (terminal) say("\n");
    say("fleetcast: {}; nothing was sent\n", outcome.startup_error);
    output.abandon();
    return 2;
  }
  run_summary summary = std::move(outcome.summary);
  if (terminal) say("\n");
  const auto last_answer = std::chrono::steady_clock::now();
  if (acks) {
    if (const auto problem = acks->conclude(summary); !problem.empty())
      say("fleetcast: the delivery outcomes cannot be written: {}\n", problem);
    const auto& d = *summary.deliveries;
    say("fleetcast: deliveries: {} delivered, {} failed, {} without an acknowledgement "
        "within {} s{}; messages: {} early, {} duplicate, {} contradictory, {} for another "
        "device, {} unmatched ({} for want of room), {} late, {} not REQACK, {} unreadable, "
        "{} lines refused\n",
        d.delivered, d.delivery_failed, d.no_ack, j.acks.timeout_s,
        d.waiting ? fmt::format(", {} still waiting (--resume waits on)", d.waiting) : "",
        d.messages.early, d.messages.duplicates, d.messages.contradictory, d.messages.mismatched,
        d.messages.unmatched, d.messages.overflow, d.messages.late, d.messages.other_messages,
        d.messages.malformed, d.messages.refused_lines);
  }
  if (const auto problem = output.finish(summary); !problem.empty())
    say("fleetcast: the outputs cannot be written: {}\n", problem);
  const auto outputs_written = std::chrono::steady_clock::now();
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  const double whole_s = seconds(outputs_written - process_start);
  const double after_s = seconds(outputs_written - last_answer);

  if (!rollout.failure().empty()) say("fleetcast: the job failed: {}\n", rollout.failure());
  if (summary.exit_code() == 1 || summary.exit_code() == 3) {
    if (summary.state != job_state::completed || summary.count_of(device_status::failed) > 0)
      say("fleetcast: continue with: fleetcast run {} --resume{}{}\n", job_file,
          summary.count_of(device_status::failed) > 0 ? " [--retry-failed]" : "",
          flags.shard ? " --shard " + to_string(*flags.shard) : std::string());
  }
  if (stopped_by) {
    say("fleetcast: stopped by {}; continue with: fleetcast run {} --resume{}\n",
        stopped_by == SIGINT ? "SIGINT" : "SIGTERM", job_file,
        flags.shard ? " --shard " + to_string(*flags.shard) : std::string());
  }
  // Devices/s: those this run sent, over the whole of this process's run
  // (reading the list, sending, writing every output), which is what the
  // operator waited for.
  const auto sent_now = last.succeeded + last.failed;
  const auto text = fmt::format(
      "fleetcast: {} \"{}\": {} devices: {} succeeded, {} failed, {} skipped; {} requests, {} "
      "retries; {} sent in {:.1f} s, {} devices/s over the whole run ({:.1f} s of it writing the "
      "outputs after the last answer); batch size {}; outputs in {}\n",
      to_string(summary.state), summary.name, summary.records,
      summary.count_of(device_status::succeeded), summary.count_of(device_status::failed),
      summary.count_of(device_status::skipped), summary.requests, summary.retries, sent_now,
      whole_s, rate_text(whole_s > 0 ? static_cast<double>(sent_now) / whole_s : 0), after_s,
      summary.batch_size, j.output_dir);
  if (flags.json) {
    fmt::print("{}", summary.to_json());
    if (!flags.quiet) say("{}", text);
  } else if (!flags.quiet) {
    fmt::print("{}", text);
  }
  return summary.exit_code();
}

}  // namespace fleetcast::app
