// The job file's auth and acks sections (see job_reader.hpp).
#include "core/job/job_reader.hpp"

#include "core/job/url.hpp"

namespace fleetcast::job_parsing {

void read_auth(job_reader& r, dom::element e, auth_config& auth) {
  dom::object obj;
  const std::size_t errors_before = r.errors_.size();
  if (!r.fields(e, "auth",
                {"token_file", "token_env", "token_command", "command_timeout_ms",
                 "refresh_token_file", "refresh_token_env"},
                obj))
    return;
  std::string refresh_file;
  const bool refresh_from_file = r.string(obj, "auth", "refresh_token_file", refresh_file);
  const bool refresh_from_env = r.string(obj, "auth", "refresh_token_env", auth.refresh_token_env);
  if (refresh_from_file) auth.refresh_token_file = r.path(refresh_file);
  if (refresh_from_file && refresh_from_env)
    r.error("auth", "takes at most one of refresh_token_file, refresh_token_env");
  if ((refresh_from_file || refresh_from_env) &&
      obj["token_command"].error() != simdjson::NO_SUCH_FIELD)
    r.error("auth", "a refresh token renews a token_file or token_env, not a token_command");
  r.integer(obj, "auth", "command_timeout_ms", auth.command_timeout_ms,
            auth_config::command_timeout_ms_range);
  int given = 0;
  std::string file;
  if (r.string(obj, "auth", "token_file", file)) {
    ++given;
    auth.kind = auth_config::source::token_file;
    auth.token_file = r.path(file);
  }
  if (r.string(obj, "auth", "token_env", auth.token_env)) {
    ++given;
    auth.kind = auth_config::source::token_env;
  }
  dom::element cmd;
  if (obj["token_command"].get(cmd) == simdjson::SUCCESS) {
    dom::array argv;
    if (cmd.get_array().get(argv) != simdjson::SUCCESS || argv.size() == 0) {
      ++given;
      r.error("auth.token_command", "must be a non-empty array of strings (argv)");
    } else {
      ++given;
      auth.kind = auth_config::source::token_command;
      for (dom::element a : argv) {
        std::string_view s;
        if (a.get_string().get(s) != simdjson::SUCCESS) {
          r.error("auth.token_command", "must be an array of strings (argv)");
          break;
        }
        auth.token_command.emplace_back(s);
      }
    }
  }
  if (given > 1) {
    r.error("auth", "takes exactly one of token_file, token_env, token_command");
  } else if (given == 0 && r.errors_.size() == errors_before) {
    r.error("auth", "needs one of token_file, token_env, token_command");
  }
}

// One secret from a file or the environment: exactly one of the two.
namespace {

void read_secret_source(job_reader& r, dom::object obj, std::string_view name, std::string& file,
                        std::string& env) {
  const std::string file_key = std::string(name) + "_file", env_key = std::string(name) + "_env";
  std::string f;
  const bool has_file = r.string(obj, "acks.amqp", file_key, f);
  const bool has_env = r.string(obj, "acks.amqp", env_key, env);
  if (has_file) file = r.path(f);
  if (has_file == has_env)
    r.error("acks.amqp", fmt::format("takes exactly one of {}, {}", file_key, env_key));
}

}  // namespace

void read_acks(job_reader& r, dom::element e, acks_config& acks) {
  dom::object obj;
  if (!r.fields(e, "acks", {"ndjson", "amqp", "timeout_s"}, obj)) return;
  r.integer(obj, "acks", "timeout_s", acks.timeout_s, acks_config::timeout_s_range);
  std::string path;
  const bool ndjson = r.string(obj, "acks", "ndjson", path);
  if (ndjson) {
    acks.kind = acks_config::source::ndjson;
    acks.ndjson = r.path(path);
  }
  dom::element a;
  const bool amqp = obj["amqp"].get(a) == simdjson::SUCCESS;
  if (ndjson == amqp) {
    r.error("acks", "takes exactly one of ndjson, amqp");
    return;
  }
  if (!amqp) return;
  acks.kind = acks_config::source::amqp;
  auto& q = acks.amqp;
  dom::object o;
  if (!r.fields(a, "acks.amqp",
                {"url", "access_key_file", "access_key_env", "access_secret_file",
                 "access_secret_env", "queue", "hostname", "source", "idle_timeout_ms"},
                o))
    return;
  std::string url;
  if (!r.string(o, "acks.amqp", "url", url)) {
    r.error("acks.amqp.url", "is required (e.g. amqps://iot-amqp.acceleronix.io:5671/quec-open)");
  } else if (auto problem = parse_amqp_url(url, q)) {
    r.error("acks.amqp.url", *problem);
  }
  read_secret_source(r, o, "access_key", q.access_key_file, q.access_key_env);
  read_secret_source(r, o, "access_secret", q.access_secret_file, q.access_secret_env);
  const bool has_queue = r.string(o, "acks.amqp", "queue", q.queue);
  if (has_queue && !is_queue_name(q.queue))
    r.error("acks.amqp.queue", "at most 64 of A-Z a-z 0-9 _ - and '.' (e.g. a.12345.fleetcast)");
  if (!r.string(o, "acks.amqp", "source", q.source)) {
    if (!has_queue)
      r.error("acks.amqp", "needs queue (or source, the receiving link's address)");
    else
      q.source = "/amq/queue/" + q.queue;
  }
  if (!r.string(o, "acks.amqp", "hostname", q.hostname)) q.hostname = "vhost:" + q.vhost;
  r.integer(o, "acks.amqp", "idle_timeout_ms", q.idle_timeout_ms,
            amqp_acks_config::idle_timeout_ms_range);
}

}  // namespace fleetcast::job_parsing
