// The daemon's admin port (see daemon_service.hpp): who may do what
// (core/daemon/admin_access.hpp), /metrics, /healthz, /readyz, /jobs, and the
// requests that cancel, resume and retry jobs.
#include "app/daemon_service.hpp"
#include "app/status_page.hpp"

#include "core/daemon/admin_access.hpp"
#include "core/protocol/json_escape.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include <fmt/format.h>

#include <cstdio>

namespace fleetcast::app::daemon_detail {

// ------------------------------------------------------------------ admin

namespace {

// ,"by_reason":{"device_failed":3,...}: the reasons with a count.
void append_by_reason(std::string& out,
                      const std::array<std::uint64_t, outcome_reason_count>& by_reason) {
  out += ",\"by_reason\":{";
  bool first = true;
  for (std::size_t i = 0; i < by_reason.size(); ++i) {
    if (by_reason[i] == 0) continue;
    if (!first) out += ',';
    first = false;
    append_json_string(out, to_string(static_cast<outcome_reason>(i)));
    fmt::format_to(std::back_inserter(out), ":{}", by_reason[i]);
  }
  out += '}';
}

void append_text_field(std::string& out, std::string_view key, std::string_view text) {
  if (text.empty()) return;
  out += ',';
  append_json_string(out, key);
  out += ':';
  append_json_string(out, text);
}

}  // namespace

std::string daemon_service::jobs_json() {
  std::string out = "{\"jobs\":[";
  std::lock_guard lock(jobs_mutex_);
  bool first = true;
  auto open = [&](std::string_view name, std::string_view state) {
    out += first ? "{" : ",{";
    first = false;
    out += "\"name\":";
    append_json_string(out, name);
    out += ",\"state\":";
    append_json_string(out, state);
  };
  for (const auto& j : jobs_) {
    const auto& p = j->progress;
    open(j->name, j->phase == job_phase::waiting ? "waiting" : "running");
    fmt::format_to(std::back_inserter(out),
                   ",\"records\":{},\"input_complete\":{},\"done\":{},\"succeeded\":{},"
                   "\"failed\":{},\"skipped\":{},\"requests\":{},\"retries\":{},"
                   "\"batch_size\":{},\"connections\":{},\"elapsed_s\":{:.3f}",
                   p.records, p.input_complete, p.done, p.succeeded, p.failed, p.skipped,
                   p.requests, p.retries, p.batch_size, j->connections, p.elapsed_s);
    if (j->phase != job_phase::waiting) {
      // Done of total (the earlier runs' results included), the rate over
      // the last seconds, the ETA (null until there is a rate).
      const auto f = j->now(j->earlier_records);
      fmt::format_to(
          std::back_inserter(out),
          ",\"progress\":{{\"done\":{},\"total\":{},\"total_exact\":{},\"percent\":{:.1f},"
          "\"devices_per_second\":{:.1f},\"eta_s\":",
          f.done, f.total, f.exact, f.percent, f.rate);
      if (f.eta_s >= 0) {
        fmt::format_to(std::back_inserter(out), "{:.0f}}}", f.eta_s);
      } else {
        out += "null}";
      }
    }
    append_by_reason(out, p.by_reason);
    append_text_field(out, "stage", p.guard_stage);
    append_text_field(out, "verdict", p.verdict);
    append_text_field(out, "waiting_for", p.waiting_for);
    if (j->cancel_by_user) out += ",\"cancelling\":true";
    if (j->acks_now.enabled) {
      const auto& a = j->acks_now;
      fmt::format_to(std::back_inserter(out),
                     ",\"acks\":{{\"phase\":\"{}\",\"waiting\":{},\"delivered\":{},"
                     "\"delivery_failed\":{},\"no_ack\":{}",
                     a.waiting_phase ? "waiting" : "sending", a.waiting, a.counts.delivered,
                     a.counts.delivery_failed, a.counts.no_ack);
      append_text_field(out, "subscription", a.source);
      out += '}';
    }
    out += '}';
  }
  for (const auto& f : finished_) {
    open(f.name, f.state);
    out += ",\"folder\":";
    append_json_string(out, f.where);
    fmt::format_to(std::back_inserter(out),
                   ",\"records\":{},\"succeeded\":{},\"failed\":{},\"skipped\":{},"
                   "\"requests\":{},\"retries\":{},\"elapsed_s\":{:.3f}",
                   f.summary.records, f.summary.count_of(device_status::succeeded),
                   f.summary.count_of(device_status::failed),
                   f.summary.count_of(device_status::skipped), f.summary.requests,
                   f.summary.retries, f.summary.elapsed_s);
    append_by_reason(out, f.summary.by_reason);
    append_text_field(out, "reason", f.reason);
    if (const auto& d = f.summary.deliveries) {
      fmt::format_to(std::back_inserter(out),
                     ",\"acks\":{{\"delivered\":{},\"delivery_failed\":{},\"no_ack\":{},"
                     "\"waiting\":{}}}",
                     d->delivered, d->delivery_failed, d->no_ack, d->waiting);
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string daemon_service::metrics_text() {
  namespace pm = prometheus;
  std::string out;
  std::array<std::uint64_t, 3> devices{};
  std::uint64_t retries = 0, budget_refusals = 0;
  double rate_wait = 0;
  std::string per_job;  // the running jobs' own families, written under the lock
  std::size_t waiting = 0, running = 0;
  std::size_t incoming = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_ / "incoming", ec)) incoming += is_job_file(e);
  std::scoped_lock lock(jobs_mutex_, metrics_mutex_);
  for (const auto& j : jobs_) {
    (j->phase == job_phase::waiting ? waiting : running) += 1;
    devices[0] += j->progress.succeeded;
    devices[1] += j->progress.failed;
    devices[2] += j->progress.skipped;
    retries += j->progress.retries;
    budget_refusals += j->progress.budget_refusals;
    rate_wait += j->progress.rate_wait_s;
  }
  append_job_metrics(per_job);

  pm::append_header(out, "fleetcast_jobs", "gauge", "Jobs by state right now.");
  pm::append_sample(out, "fleetcast_jobs", "state", "incoming", static_cast<double>(incoming));
  pm::append_sample(out, "fleetcast_jobs", "state", "waiting", static_cast<double>(waiting));
  pm::append_sample(out, "fleetcast_jobs", "state", "running", static_cast<double>(running));
  pm::append_header(out, "fleetcast_jobs_finished_total", "counter",
                    "Jobs that ended since the daemon started, by final state.");
  for (const char* s : {"completed", "aborted", "cancelled", "failed", "invalid", "drained"}) {
    const auto it = jobs_finished_by_state_.find(s);
    pm::append_sample(out, "fleetcast_jobs_finished_total", "state", s,
                      it == jobs_finished_by_state_.end() ? 0.0 : static_cast<double>(it->second));
  }
  pm::append_header(out, "fleetcast_devices_total", "counter",
                    "Devices with a result since the daemon started, by status.");
  constexpr std::array<device_status, 3> statuses{device_status::succeeded, device_status::failed,
                                                  device_status::skipped};
  for (std::size_t i = 0; i < 3; ++i) {
    pm::append_sample(out, "fleetcast_devices_total", "status", to_string(statuses[i]),
                      static_cast<double>(devices[i] + devices_finished_[i]));
  }
  pm::append_header(out, "fleetcast_requests_total", "counter",
                    "Requests by what came of them (accounted, throttled, no_answer, ...).");
  for (const auto& [outcome, n] : requests_by_outcome_)
    pm::append_sample(out, "fleetcast_requests_total", "outcome", outcome, static_cast<double>(n));
  pm::append_header(out, "fleetcast_retries_total", "counter", "Batches sent again.");
  pm::append_sample(out, "fleetcast_retries_total", "", "",
                    static_cast<double>(retries + retries_finished_));
  pm::append_header(out, "fleetcast_retry_budget_refusals_total", "counter",
                    "Batches given up with attempts left because the retry budget was spent.");
  pm::append_sample(out, "fleetcast_retry_budget_refusals_total", "", "",
                    static_cast<double>(budget_refusals + budget_refusals_finished_));
  pm::append_header(out, "fleetcast_rate_limit_wait_seconds_total", "counter",
                    "Time requests waited for a rate limit, summed over connections.");
  pm::append_sample(out, "fleetcast_rate_limit_wait_seconds_total", "", "",
                    rate_wait + rate_wait_finished_s_);
  latency_.append(out, "fleetcast_request_duration_seconds",
                  "From a request's write to its answer.");
  batch_sizes_.append(out, "fleetcast_batch_size", "Devices per request.");
  pm::append_header(out, "fleetcast_draining", "gauge", "1 while the daemon drains.");
  pm::append_sample(out, "fleetcast_draining", "", "", draining_ ? 1 : 0);
  append_ack_metrics(out);
  out += per_job;
  return out;
}

// The jobs that run now, one series each, for dashboards and the stalled-job
// alert. The label is job_name: `job` is Prometheus's own (the scrape job),
// and a metric's label of that name would be renamed exported_job. Called
// under jobs_mutex_.
void daemon_service::append_job_metrics(std::string& out) {
  namespace pm = prometheus;
  struct row {
    const daemon_job* job;
    daemon_job::figures f;
  };
  std::vector<row> rows;
  for (const auto& j : jobs_)
    if (j->phase == job_phase::running) rows.push_back({j.get(), j->now(j->earlier_records)});
  if (rows.empty()) return;
  pm::append_header(out, "fleetcast_job_devices", "gauge",
                    "A running job's devices with a result in this run, by status.");
  for (const auto& [j, f] : rows) {
    pm::append_sample(out, "fleetcast_job_devices",
                      {{"job_name", j->name}, {"status", "succeeded"}},
                      static_cast<double>(j->progress.succeeded));
    pm::append_sample(out, "fleetcast_job_devices", {{"job_name", j->name}, {"status", "failed"}},
                      static_cast<double>(j->progress.failed));
    pm::append_sample(out, "fleetcast_job_devices", {{"job_name", j->name}, {"status", "skipped"}},
                      static_cast<double>(j->progress.skipped));
  }
  pm::append_header(out, "fleetcast_job_done_ratio", "gauge",
                    "A running job's devices with a result of all (earlier runs included).");
  for (const auto& [j, f] : rows)
    pm::append_sample(out, "fleetcast_job_done_ratio", "job_name", j->name, f.percent / 100);
  pm::append_header(out, "fleetcast_job_devices_per_second", "gauge",
                    "A running job's results per second over the last seconds.");
  for (const auto& [j, f] : rows)
    pm::append_sample(out, "fleetcast_job_devices_per_second", "job_name", j->name, f.rate);
  pm::append_header(out, "fleetcast_job_eta_seconds", "gauge",
                    "A running job's time to its last device at the current rate (when known).");
  for (const auto& [j, f] : rows)
    if (f.eta_s >= 0)
      pm::append_sample(out, "fleetcast_job_eta_seconds", "job_name", j->name, f.eta_s);
  pm::append_header(out, "fleetcast_job_stalled_seconds", "gauge",
                    "Time a running job has gone without a new result, not counting time it holds "
                    "back on purpose (time window, canary wait, a long Retry-After).");
  const auto now = steady::now();
  for (const auto& [j, f] : rows)
    pm::append_sample(out, "fleetcast_job_stalled_seconds", "job_name", j->name,
                      std::chrono::duration<double>(now - j->last_result).count());
}

net::admin_response daemon_service::admin(const net::admin_request& req) {
  auto answer = admin_answer(req);
  secret_registry::process().redact(answer.body);  // whatever a peer echoed into a job's text
  return answer;
}

net::admin_response daemon_service::admin_answer(const net::admin_request& req) {
  constexpr std::string_view text = "text/plain; charset=utf-8";
  admin_client client;
  client.method = req.method;
  client.target = req.target;
  client.on_loopback = req.client_on_loopback;
  client.authorization = req.authorization;
  client.origin = req.origin;
  client.host = req.host;
  client.has_admin_header = req.admin_header;
  const auto verdict = admin_access(client, admin_policy{admin_token_, &admin_hosts_});
  if (verdict != admin_verdict::allowed) {
    const bool ask = verdict == admin_verdict::unauthorized;
    return {ask ? 401 : 403, std::string(text), std::string(admin_refusal(verdict)), ask};
  }
  const std::string_view target = req.target;
  if (req.method == "GET" && target == "/readyz")
    return ready_ && !draining_ ? net::admin_response{200, std::string(text), "ready\n"}
                                : net::admin_response{503, std::string(text), "not ready\n"};
  if (req.method == "GET" && target == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
  if (req.method == "GET" && target == "/healthz")
    return draining_ ? net::admin_response{503, "text/plain; charset=utf-8", "draining\n"}
                     : net::admin_response{200, "text/plain; charset=utf-8", "ok\n"};
  if (req.method == "GET" && target == "/jobs") return {200, "application/json", jobs_json()};
  if (req.method == "GET" && (target == "/" || target == "/index.html"))
    return {200, "text/html; charset=utf-8", std::string(status_page_html())};
  if (target.starts_with("/jobs/")) return job_action(req, target.substr(6));
  return {404, "text/plain; charset=utf-8",
          "not found: try /, /metrics, /healthz, /readyz, /jobs\n"};
}

// POST /jobs/NAME/approve, pause, continue: a request into the running
// job's folder, which its session takes within a tick (the outcome in the
// folder's operator.ndjson and the log's job_operator_act).
net::admin_response daemon_service::operator_request(const net::admin_request& req,
                                                     const std::string& name, operator_act act) {
  constexpr std::string_view text = "text/plain; charset=utf-8";
  std::string dir;
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_)
      if (j->name == name && j->session) dir = j->spec.output_dir;
  }
  if (dir.empty()) return {404, std::string(text), "no such job running\n"};
  const auto r =
      make_request(act, fmt::format("admin port, client {}{}", req.peer.empty() ? "?" : req.peer,
                                    req.authorization.empty() ? "" : ", with the admin token"));
  std::string error;
  if (!submit_request(dir, r, error)) return {500, std::string(text), error + "\n"};
  std::string body = fmt::format("{{\"{}\":\"requested\",\"id\":", to_string(act));
  append_json_string(body, r.id);
  body += ",\"outcome_in\":";
  append_json_string(body, dir + "/operator.ndjson");
  body += "}\n";
  return {202, "application/json", std::move(body)};
}

// POST /jobs/NAME/cancel, /jobs/NAME/resume, /jobs/NAME/retry-failed[?reasons=R,...].
net::admin_response daemon_service::job_action(const net::admin_request& req,
                                               std::string_view rest) {
  const std::string_view method = req.method;
  constexpr std::string_view text = "text/plain; charset=utf-8";
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return {404, std::string(text), "not found: try /jobs\n"};
  const auto name = std::string(rest.substr(0, slash));
  const auto action = rest.substr(slash + 1);
  const auto act = parse_operator_act(action);
  if (action != "cancel" && action != "resume" && action != "retry-failed" && !act)
    return {404, std::string(text),
            "not found: POST /jobs/NAME/cancel, resume, retry-failed, approve, pause or "
            "continue\n"};
  if (method != "POST") return {405, std::string(text), "use POST\n"};
  if (name.empty() || name != clean_name(name)) return {400, std::string(text), "not a job name\n"};
  if (act) return operator_request(req, name, *act);
  if (action != "cancel") {
    const auto kind = action == "resume" ? resume_kind::resume : resume_kind::retry_failed;
    std::string reasons;
    if (query.starts_with("reasons="))
      reasons = std::string(query.substr(8));
    else if (!query.empty())
      return {400, std::string(text), "the only parameter is reasons=REASON,...\n"};
    const auto verdict = judge_resume(name, facts_of(name, true), resume_request_of(kind, reasons));
    if (!verdict.accepted) return {verdict.http_status, std::string(text), verdict.why + "\n"};
    const auto dir = spool_ / (kind == resume_kind::resume ? "resume" : "retry-failed");
    if (!write_file(dir / ("." + name), reasons) ||
        (std::rename((dir / ("." + name)).c_str(), (dir / name).c_str()) != 0))
      return {500, std::string(text), "cannot write the request file\n"};
    wake();
    return {202, "application/json", fmt::format("{{\"{}\":\"requested\"}}\n", action)};
  }
  bool known = fs::exists(spool_ / "incoming" / (name + ".json"));
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_) known = known || j->name == name;
  }
  if (!known) return {404, "text/plain; charset=utf-8", "no such job waiting or running\n"};
  if (!write_file(spool_ / "cancel" / name, ""))
    return {500, "text/plain; charset=utf-8", "cannot write the cancel file\n"};
  wake();
  return {202, "application/json", "{\"cancel\":\"requested\"}\n"};
}

}  // namespace fleetcast::app::daemon_detail
