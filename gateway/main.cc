// main.cc — the mailgate daemon: parse flags, check them, bind, serve.
#include <gflags/gflags.h>
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <filesystem>
#include <memory>

#include "config/config.h"
#include "config/milter_flags.h"
#include "config/obs_flags.h"
#include "dns/dns_flags.h"
#include "log/log.h"
#include "milter/milter_main.h"
#include "obs/service.h"
#include "server/plugin_host.h"
#include "server/server.h"
#include "spool/spool.h"
#include "store/store_flags.h"

namespace {

// glibc returns the free top of a heap to the kernel once it exceeds 128 KiB. Every
// session grows its input buffer to 32 KiB for DATA and frees it at the end, so under load
// the heaps of the I/O threads were trimmed and grown again all the time: madvise(2) and
// page faults cost 7% of the gateway's CPU per message (tests/bench/throughput.py). 16 MiB
// of slack per heap ends the churn; blocks of 128 KiB and more are still mmap(2)ed and
// returned at once. MALLOC_TRIM_THRESHOLD_ in the environment still wins.
void keep_freed_heap_memory() {
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_heap_memory();
  gflags::SetUsageMessage(
      "SMTP filtering gateway in front of a backend MTA.\n"
      "  mailgate --listen=0.0.0.0:25=inbound --backend=127.0.0.1:10025\n"
      "or as a milter inside Postfix/Sendmail:\n"
      "  mailgate --mode=milter --milter_socket=inet:8891@127.0.0.1");
  gflags::SetVersionString("0.1.0");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) {
    std::fprintf(stderr, "mailgate: unexpected argument '%s' (flags start with --)\n", argv[1]);
    return 2;
  }
  auto config = mailgate::config::from_flags();
  if (!config) {
    std::fprintf(stderr, "mailgate: %s\n", config.error().c_str());
    return 2;
  }
  mailgate::log::set_level(config->log_level);
  std::string spool_error = mailgate::spool::prepare_spool_dir(config->session.spool_dir);
  if (!spool_error.empty()) {
    std::fprintf(stderr, "mailgate: --spool_dir: %s\n", spool_error.c_str());
    return 1;
  }
  auto dns_config = mailgate::dns::config_from_flags();
  if (!dns_config) {
    std::fprintf(stderr, "mailgate: %s\n", dns_config.error().c_str());
    return 2;
  }
  auto obs_config = mailgate::config::obs_config_from_flags();
  if (!obs_config) {
    std::fprintf(stderr, "mailgate: %s\n", obs_config.error().c_str());
    return 2;
  }
  auto mode = mailgate::config::mode_from_flags();
  if (!mode) {
    std::fprintf(stderr, "mailgate: %s\n", mode.error().c_str());
    return 2;
  }
  if (*mode == mailgate::config::Mode::kMilter) {
    auto milter = mailgate::config::milter_config_from_flags();
    if (!milter) {
      std::fprintf(stderr, "mailgate: %s\n", milter.error().c_str());
      return 2;
    }
    // Metrics (plugin verdicts and latency, DNS) also in milter mode; the trace needs SMTP
    // sessions, so it stays empty there.
    auto obs = mailgate::obs::Service::start(*obs_config);
    if (!obs) {
      std::fprintf(stderr, "mailgate: %s\n", obs.error().c_str());
      return 1;
    }
    return mailgate::milter::run(*config, *milter);
  }
  std::signal(SIGPIPE, SIG_IGN);

  // Bind first: an unusable address is reported before anything is created on disk.
  mailgate::server::Server server(*config, argv[0]);
  std::string bind_error = server.bind();
  if (!bind_error.empty()) {
    std::fprintf(stderr, "mailgate: %s\n", bind_error.c_str());
    return 1;
  }

  auto store_config = mailgate::store::config_from_flags();
  if (!store_config) {
    std::fprintf(stderr, "mailgate: %s\n", store_config.error().c_str());
    return 2;
  }
  mailgate::server::PluginHostOptions host_options;
  host_options.store = *store_config;
  host_options.policy_db = config->policy_db;
  host_options.plugin_dir = config->plugin_dir;
  host_options.worker_threads = config->plugin_threads;
  host_options.worker_queue = config->plugin_queue;
  host_options.policy_poll = config->policy_poll;
  host_options.dns = std::move(*dns_config);
  for (const auto& l : config->listeners) host_options.profiles.push_back(l.profile);
  {
    std::error_code ec;
    auto dir = std::filesystem::path(config->policy_db).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  auto plugins = mailgate::server::PluginHost::start(std::move(host_options));
  if (!plugins) {
    std::fprintf(stderr, "mailgate: %s\n", plugins.error().c_str());
    return 1;
  }
  server.attach_plugins(plugins->get());
  // Metrics listener, status page and trace writer; stopped before the plugins go away.
  auto obs = mailgate::obs::Service::start(*obs_config);
  if (!obs) {
    std::fprintf(stderr, "mailgate: %s\n", obs.error().c_str());
    return 1;
  }
  return server.run();
}
