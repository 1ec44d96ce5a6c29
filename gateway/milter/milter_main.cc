// milter/milter_main.cc — see milter_main.h.
#include "milter/milter_main.h"

#include <libmilter/mfapi.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dns/dns_flags.h"
#include "log/log.h"
#include "milter/callbacks.h"
#include "server/plugin_host.h"
#include "store/store_flags.h"

namespace mailgate::milter {
namespace {

// libmilter stops smfi_main() on SIGTERM, SIGINT and SIGHUP from a thread that sigwait()s
// them. Every thread started before (plugin workers, the resolver, the policy watcher)
// inherits this mask, so the signals reach that thread and never kill the process outright.
void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int run(const config::GatewayConfig& config, const config::MilterConfig& milter) {
  auto dns_config = dns::config_from_flags();
  if (!dns_config) {
    std::fprintf(stderr, "mailgate: %s\n", dns_config.error().c_str());
    return 2;
  }
  auto store_config = store::config_from_flags();
  if (!store_config) {
    std::fprintf(stderr, "mailgate: %s\n", store_config.error().c_str());
    return 2;
  }
  block_stop_signals();

  // The socket first: an unusable --milter_socket is reported before anything else starts.
  static char name[] = "mailgate";
  smfiDesc desc = make_filter_description(name);
  std::string socket = milter.socket;
  if (smfi_setconn(socket.data()) != MI_SUCCESS) {
    std::fprintf(stderr, "mailgate: --milter_socket: libmilter refused '%s'\n", socket.c_str());
    return 2;
  }
  smfi_settimeout(milter.timeout_seconds);
  if (smfi_register(desc) != MI_SUCCESS) {
    std::fprintf(stderr, "mailgate: smfi_register failed (libmilter version mismatch?)\n");
    return 1;
  }
  if (smfi_opensocket(true) != MI_SUCCESS) {
    std::fprintf(stderr,
                 "mailgate: --milter_socket: cannot listen on '%s' (in use, bad address, or no "
                 "permission for the socket's directory)\n",
                 socket.c_str());
    return 1;
  }
  if (milter.socket_mode >= 0) {
    std::string path = milter.socket.substr(milter.socket.find(':') + 1);
    if (chmod(path.c_str(), static_cast<mode_t>(milter.socket_mode)) != 0) {
      std::fprintf(stderr, "mailgate: --milter_socket_mode: chmod %s: %s\n", path.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }

  server::PluginHostOptions host_options;
  host_options.store = *store_config;
  host_options.policy_db = config.policy_db;
  host_options.plugin_dir = config.plugin_dir;
  host_options.worker_threads = config.plugin_threads;
  host_options.worker_queue = config.plugin_queue;
  host_options.policy_poll = config.policy_poll;
  host_options.dns = std::move(*dns_config);
  host_options.profiles.push_back(milter.profile);
  {
    std::error_code ec;
    auto dir = std::filesystem::path(config.policy_db).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  auto plugins = server::PluginHost::start(std::move(host_options));
  if (!plugins) {
    std::fprintf(stderr, "mailgate: %s\n", plugins.error().c_str());
    return 1;
  }

  SessionOptions options;
  options.profile = milter.profile;
  options.hostname = config.session.hostname;
  options.spool_dir = config.session.spool_dir;
  options.spool_memory_limit = config.session.spool_memory_limit;
  options.max_message_size = config.session.max_message_size;
  set_callback_context(plugins->get(), options);

  MG_LOG_INFO("milter listening on {} (profile {})", milter.socket, milter.profile);
  int rc = smfi_main();
  MG_LOG_INFO("milter stopped");
  set_callback_context(nullptr, {});
  return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace mailgate::milter
