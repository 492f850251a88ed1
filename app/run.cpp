// The run command (see run.hpp): job and device list in; results.ndjson as
// results come, a send journal (so that --resume knows what may already have
// been sent), summary.json and result.json at the end; a progress line.
#include "app/run.hpp"
#include "app/say.hpp"

#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include <fleetcast/net/session/session.hpp>
#include "app/job_load.hpp"
#include "app/library_parts.hpp"
#include "core/output/progress_view.hpp"
#include "net/acks/amqp_ack_receiver.hpp"

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

// --emulate: the emulator in this process, the job pointed at it (its
// acknowledgements from the emulator's subscription). False: said why.
bool start_rehearsal(job& j, const std::string& job_file, const run_flags& flags,
                     std::optional<net::emulator>& emulator, net::rollout_options& options) {
  std::string error;
  emulator_config ec;
  if (!flags.emulator_config.empty()) {
    std::string etext;
    if (!read_text_file(flags.emulator_config, etext, error)) {
      say("fleetcast: {}\n", error);
      return false;
    }
    auto ep = parse_emulator_config(etext, flags.emulator_config);
    if (!ep.config) {
      for (const auto& e : ep.errors) say("fleetcast: {}: {}\n", flags.emulator_config, e);
      return false;
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
      return false;
    }
    ec.acks.amqp_listen = "127.0.0.1:0";
    ec.acks.access_secret_file.clear();
    if (!j.acks.amqp.queue.empty()) ec.acks.queue = j.acks.amqp.queue;
  }
  try {
    emulator.emplace(ec);
  } catch (const std::exception& e) {
    say("fleetcast: --emulate: {}\n", e.what());
    return false;
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
  return true;
}

// Whether the progress line is redrawn in place (a terminal) or printed
// every 5 s (a log, TERM=dumb).
bool progress_on_terminal(const run_flags& flags) {
  const char* term = std::getenv("TERM");
  return isatty(STDERR_FILENO) && !(term && std::string_view(term) == "dumb") && !flags.quiet;
}

// The progress line: on a terminal one line redrawn in place, fitted to
// its width; elsewhere a plain line every 5 s. `last` keeps the latest.
struct progress_line {
  progress_line(const run_flags& f, bool t) : flags(f), terminal(t) {}
  const run_flags& flags;
  bool terminal;
  std::uint64_t resumed_records = 0;
  std::uint64_t estimated_total = 0;
  progress_view view;
  net::rollout_progress last;
  double last_line_s = -10;

  void operator()(const net::rollout_progress& p) {
    last = p;
    view.sample(p.elapsed_s, p.succeeded + p.failed);
    if (flags.quiet) return;
    progress_counts c;
    c.done = resumed_records + p.done;
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
  }
};

// What the run's loop ended with.
struct loop_end {
  boost::system::error_code ec;  // nothing was sent: why (outcome.error)
  net::session_outcome outcome;
  int stopped_by = 0;  // SIGINT or SIGTERM
};

// The run's event loop: the session (with acks, their source first, the
// rollout, then the wait for the acknowledgements, shown as it goes). The
// first SIGINT or SIGTERM cancels, the second cuts the requests in flight too.
loop_end run_loop(boost::asio::io_context& ioc, net::session& session, const run_flags& flags,
                  bool terminal, std::function<void()>& on_acks_wait) {
  loop_end end;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  int seen = 0;
  std::function<void()> on_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (!end.stopped_by) end.stopped_by = sig;
      session.cancel();  // what still waits for its acknowledgement is left to --resume
      if (++seen < 2) on_signal();
    });
  };
  on_signal();
  boost::asio::steady_timer wait_line(ioc);
  // Set when the wait ends: a line whose timer expired in the same turn
  // (its handler queued, past cancelling) must not arm it again.
  bool wait_over = false;
  std::function<void()> show_wait = [&] {
    if (flags.quiet || wait_over) return;
    const auto text = fmt::format(
        "waiting for {} acknowledgements ({} delivered, {} failed so far; "
        "at most {:.0f} s more)",
        session.acks_waiting(), session.deliveries().delivered,
        session.deliveries().delivery_failed, session.acks_seconds_left());
    if (terminal)
      say("\r{}\033[K", text);
    else
      say("fleetcast: {}\n", text);
    wait_line.expires_after(std::chrono::seconds(terminal ? 1 : 5));
    wait_line.async_wait([&](boost::system::error_code ec) {
      if (!ec) show_wait();
    });
  };
  on_acks_wait = [&] {
    if (terminal) say("\n");
    show_wait();
  };
  session.async_run([&](boost::system::error_code ec, net::session_outcome o) {
    end.ec = ec;
    end.outcome = std::move(o);
    wait_over = true;
    wait_line.cancel();
    signals.cancel();  // the loop ends with the run
  });
  ioc.run();
  return end;
}

// The deliveries' closing line.
void say_deliveries(const job& j, const delivery_summary& d) {
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

// The closing lines: the failure, how to continue, the counts and speed.
// Devices/s: those this run sent, over the whole of this process's run
// (reading the list, sending, writing every output), which is what the
// operator waited for.
void say_end(const job& j, const std::string& job_file, const run_flags& flags,
             const run_summary& summary, const std::string& failure, int stopped_by,
             std::uint64_t sent_now, double whole_s, double after_s) {
  if (!failure.empty()) say("fleetcast: the job failed: {}\n", failure);
  const std::string shard = flags.shard ? " --shard " + to_string(*flags.shard) : std::string();
  if (summary.exit_code() == 1 || summary.exit_code() == 3) {
    if (summary.state != job_state::completed || summary.count_of(device_status::failed) > 0)
      say("fleetcast: continue with: fleetcast run {} --resume{}{}\n", job_file,
          summary.count_of(device_status::failed) > 0 ? " [--retry-failed]" : "", shard);
  }
  if (stopped_by) {
    say("fleetcast: stopped by {}; continue with: fleetcast run {} --resume{}\n",
        stopped_by == SIGINT ? "SIGINT" : "SIGTERM", job_file, shard);
  }
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
}

// The session's refusal before anything was sent, worded as the command
// words it; the exit status (1 for a folder that cannot be written, 4 for a
// stop, else 2).
int refused(boost::system::error_code ec, const std::string& error, const std::string& job_file,
            bool terminal) {
  using net::session_errc;
  if (ec == session_errc::folder_refused || ec == session_errc::folder_failed ||
      ec == session_errc::invalid_request) {
    say("fleetcast{}: {}\n", ec == session_errc::invalid_request ? " run" : "", error);
    return ec == session_errc::folder_failed ? 1 : 2;
  }
  if (ec == session_errc::devices) {
    say("fleetcast: {}: {}\n", job_file, error);
    return 2;
  }
  if (ec == session_errc::acks_source || ec == session_errc::stopped) {
    say("fleetcast: {}: {}; nothing was sent\n", job_file, error);
    return ec == session_errc::stopped ? 4 : 2;
  }
  if (terminal) say("\n");
  say("fleetcast: {}; nothing was sent\n", error);  // the engine's start-up
  return 2;
}

// What the closing steps need to know of the run.
struct run_context {
  const job& j;
  const std::string& job_file;
  const run_flags& flags;
  bool terminal;
  std::chrono::steady_clock::time_point process_start;
};

// After the loop: a refusal leaves the folder as it was; else the
// outputs were written: the closing lines said. The exit status.
int finish_run(const run_context& c, loop_end& end, const net::rollout_progress& last) {
  if (end.ec) return refused(end.ec, end.outcome.error, c.job_file, c.terminal);
  auto& o = end.outcome;
  if (c.terminal) say("\n");
  if (o.summary.deliveries) {
    if (!o.deliveries_problem.empty())
      say("fleetcast: the delivery outcomes cannot be written: {}\n", o.deliveries_problem);
    say_deliveries(c.j, *o.summary.deliveries);
  }
  if (!o.outputs_problem.empty())
    say("fleetcast: the outputs cannot be written: {}\n", o.outputs_problem);
  const auto whole = std::chrono::steady_clock::now() - c.process_start;
  say_end(c.j, c.job_file, c.flags, o.summary, o.failure, end.stopped_by,
          last.succeeded + last.failed, std::chrono::duration<double>(whole).count(), o.writing_s);
  return o.summary.exit_code();
}

}  // namespace

int run_job(const std::string& job_file, const run_flags& flags) {
  // The whole run as the operator waits for it: from here to every output
  // written (the closing line's time and devices/s).
  const auto process_start = std::chrono::steady_clock::now();
  auto loaded = load_job(job_file, true);
  if (!loaded) return 2;
  job j = std::move(*loaded);
  boost::asio::io_context ioc(1);
  std::optional<net::emulator> emulator;
  net::session_options options;
  options.resume = flags.resume;
  options.retry_failed = flags.retry_failed;
  options.shard = flags.shard;
  options.emulated = flags.emulate;
  if (flags.emulate && !start_rehearsal(j, job_file, flags, emulator, options.rollout)) return 2;
  if (j.endpoint.tls && !j.tls.verify) {
    say("fleetcast: WARNING: tls.verify is false: the server's certificate is NOT checked; "
        "anyone on the path can read the token and the commands\n");
  }
  // Nothing is written before the job is known to be sendable (every
  // problem of this kind in one round: the device list and the token).
  if (const auto problems = sendable_problems(j, flags.shard); !problems.empty()) {
    for (const auto& p : problems) say("fleetcast: {}: {}\n", job_file, p);
    say("fleetcast: {}: nothing was sent\n", job_file);
    return 2;
  }
  if (flags.shard) {  // each shard's outputs apart, so shards can share a folder
    j.output_dir =
        fmt::format("{}/shard-{}-of-{}", j.output_dir, flags.shard->index, flags.shard->count);
  }
  std::function<void()> on_acks_wait;
  options.on_acks_wait = [&on_acks_wait] { on_acks_wait(); };
  options.on_notice = [](const std::string& text) { say("\nfleetcast: {}\n", text); };
  options.on_act = [](const act_request& r, const act_result& result) {
    say("\nfleetcast: {} by {}: {}{}\n", to_string(r.act), r.by,
        result.applied ? "" : "not applied: ", result.text);
  };
  const bool terminal = progress_on_terminal(flags);
  auto progress = std::make_shared<progress_line>(flags, terminal);
  options.rollout.on_progress = [progress](const net::rollout_progress& p) { (*progress)(p); };
  net::session session(ioc.get_executor(), j, std::move(options));
  std::string error;
  if (const auto ec = session.open(error)) return refused(ec, error, job_file, false);
  if (flags.resume)
    say("fleetcast: resuming: {} records keep their result\n", session.earlier().records);
  if (session.acks_expected() > 0)
    say("fleetcast: resuming: {} devices wait for their acknowledgement\n",
        session.acks_expected());
  progress->resumed_records = session.earlier().records;
  progress->estimated_total = session.estimated_total();
  if (const auto route = session.route(); !route.empty() && !flags.quiet)
    say("fleetcast: reaching {} {}\n", j.endpoint.url, route);
  auto end = run_loop(ioc, session, flags, terminal, on_acks_wait);
  return finish_run({j, job_file, flags, terminal, process_start}, end, progress->last);
}

}  // namespace fleetcast::app
