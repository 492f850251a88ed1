// delivery_stage: a run's delivery acknowledgements (a job with acks). It
// sits between the engine and the output folder: every accepted device's
// ticket goes to the tracker on its way to results.ndjson; the job's
// source (an NDJSON stream) brings the REQACKs; each decided outcome is
// journalled before the next message is read. After the last answer the
// run waits until no device waits any more (each waits acks.timeout_s at
// most), then the outcomes go into results.ndjson and summary.json.
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/core/output/run_summary.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>

namespace fleetcast::net {
struct amqp_receiver_config;
struct rollout_options;
}  // namespace fleetcast::net

namespace fleetcast::net {

class subscription_hub;

class delivery_stage {
 public:
  delivery_stage(boost::asio::any_io_executor ex, const job& j, result_sink& results);
  ~delivery_stage();
  delivery_stage(const delivery_stage&) = delete;
  delivery_stage& operator=(const delivery_stage&) = delete;

  // Reads the subscription's credentials and trust (AMQP), opens the
  // journal in the output folder and takes up the tickets of the results
  // kept there (--resume: those without an outcome wait again). False with
  // `error` (nothing sent yet).
  bool open(const std::string& dir, std::string& error, const std::string& extra_ca_pem = {},
            bool system_trust_store = true);
  // Nothing was sent after all: the journal goes if it holds nothing.
  void abandon();
  // After open(), before start(): the AMQP subscription this job names, as
  // read (credentials, trust), for sharing it (nullptr for a stream).
  const net::amqp_receiver_config* subscription() const noexcept;
  // Before start(): the messages come from a subscription shared with other
  // jobs (the daemon), not from one of the stage's own.
  void share(subscription_hub& hub);
  // The subscription's state for the progress line ("" for a stream).
  std::string source_state() const;
  // The sink to give the engine (forwards to the output folder's).
  result_sink& sink();
  // Each outcome decided from now on also goes here (the engine's guard,
  // the daemon's metrics), before it is journalled.
  void on_outcome(std::function<void(const delivery_event&)> f);
  // What the operator should hear about the source: a file truncated or
  // replaced, a line refused or dropped, the early table full.
  void on_notice(std::function<void(const std::string&)> f);
  // Wraps options.before_send (after the output folder's attach): the
  // devices of each batch written are on their way.
  void attach(net::rollout_options& options);
  // Starts reading the source; `ready` is called once it can be relied
  // on (error "") or cannot: the subscription refused the login, or no
  // link was attached within 15 s (its last error), or stop() came first.
  // A stream is ready at once.
  void start(std::function<void(const std::string& error)> ready);
  // After the last answer: `done` is called once no device waits (or at stop()).
  void async_wait(std::function<void()> done);
  // Ends reading and waiting now; what still waits is left to --resume.
  void stop();

  std::uint64_t waiting() const noexcept;
  std::uint64_t expected_now() const noexcept;  // tickets taken up from a resumed folder
  double seconds_left() const noexcept;         // until the last wait ends
  const delivery_counts& counts() const noexcept;

  // Closes the journal, writes the outcomes into results.ndjson, fills
  // summary.deliveries. Returns the error ("" when fine).
  std::string finish(run_summary& summary);
  // finish(), and what it means for the run: failed when the outcomes
  // cannot be written (the error returned), cancelled when it was
  // completed but stop() cut the wait with devices still waiting.
  std::string conclude(run_summary& summary);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::net
