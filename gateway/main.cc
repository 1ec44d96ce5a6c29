// main.cc — the mailgate daemon: parse flags, check them, bind, serve.
#include <gflags/gflags.h>

#include <csignal>
#include <cstdio>

#include "config/config.h"
#include "log/log.h"
#include "server/server.h"
#include "spool/spool.h"

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "SMTP filtering gateway in front of a backend MTA.\n"
      "  mailgate --listen=0.0.0.0:25=inbound --backend=127.0.0.1:10025");
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
  std::signal(SIGPIPE, SIG_IGN);
  mailgate::server::Server server(std::move(*config), argv[0]);
  std::string bind_error = server.bind();
  if (!bind_error.empty()) {
    std::fprintf(stderr, "mailgate: %s\n", bind_error.c_str());
    return 1;
  }
  return server.run();
}
