// tools/mailgatectl/main.cc — entry point of mailgatectl, the policy database's admin tool.
// Everything but main() lives in gateway/ctl/ (command table: gateway/ctl/commands.cc).
#include <iostream>

#include "ctl/cli.h"
#include "log/log.h"

int main(int argc, char** argv) {
  // The library logs progress at info level (e.g. schema migrations); the tool prints its own.
  mailgate::log::set_level(mailgate::log::Level::kWarning);
  return mailgate::ctl::run(argc, argv, std::cout, std::cerr);
}
