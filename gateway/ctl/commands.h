// ctl/commands.h — mailgatectl's command table and the entry points it lists.
// Owns: nothing but declarations; the table itself is in commands.cc. To add a command
// (e.g. `check`), write run_<name>() in its own <name>_command.cc, declare it here and add
// one row to the table.
// Threading: single-threaded.
#pragma once

#include <vector>

#include "ctl/cli.h"

namespace mailgate::ctl {

// Every command, in the order the help lists them.
const std::vector<CommandSpec>& command_table();

// init_command.cc
int run_init(Context& ctx, const Args& args);
// domain_commands.cc: local domains and relay networks
int run_domain_add(Context& ctx, const Args& args);
int run_domain_remove(Context& ctx, const Args& args);
int run_domain_list(Context& ctx, const Args& args);
int run_network_add(Context& ctx, const Args& args);
int run_network_remove(Context& ctx, const Args& args);
int run_network_list(Context& ctx, const Args& args);
// access_commands.cc
int run_access_add(Context& ctx, const Args& args);
int run_access_remove(Context& ctx, const Args& args);
int run_access_list(Context& ctx, const Args& args);
// plugin_commands.cc
int run_plugin_add(Context& ctx, const Args& args);
int run_plugin_remove(Context& ctx, const Args& args);
int run_plugin_list(Context& ctx, const Args& args);
int run_plugin_enable(Context& ctx, const Args& args);
int run_plugin_disable(Context& ctx, const Args& args);
int run_plugin_order(Context& ctx, const Args& args);
int run_plugin_set(Context& ctx, const Args& args);
// settings_commands.cc
int run_settings_set(Context& ctx, const Args& args);
int run_settings_remove(Context& ctx, const Args& args);
int run_settings_list(Context& ctx, const Args& args);
// dkim_commands.cc: DKIM signing keys (dkim_keys)
int run_dkim_keygen(Context& ctx, const Args& args);
int run_dkim_list(Context& ctx, const Args& args);
int run_dkim_record(Context& ctx, const Args& args);
int run_dkim_enable(Context& ctx, const Args& args);
int run_dkim_disable(Context& ctx, const Args& args);
int run_dkim_remove(Context& ctx, const Args& args);
// ratelimit_commands.cc: rate limits (ratelimits, ratelimit_exemptions)
int run_ratelimit_add(Context& ctx, const Args& args);
int run_ratelimit_remove(Context& ctx, const Args& args);
int run_ratelimit_list(Context& ctx, const Args& args);
int run_ratelimit_exempt(Context& ctx, const Args& args);
int run_ratelimit_unexempt(Context& ctx, const Args& args);
int run_ratelimit_exemptions(Context& ctx, const Args& args);
// route_commands.cc: envelope routes (the routing plugin)
int run_route_add(Context& ctx, const Args& args);
int run_route_remove(Context& ctx, const Args& args);
int run_route_list(Context& ctx, const Args& args);
int run_route_test(Context& ctx, const Args& args);
// bayes_commands.cc: the Bayes classifier's token counts (the bayes plugin)
int run_learn(Context& ctx, const Args& args);
int run_classify(Context& ctx, const Args& args);
// check_command.cc: run the chain over a message (exit 3 reject, 4 tempfail, 5 discard)
int run_check(Context& ctx, const Args& args);
// trace_command.cc: find transactions in the gateway's trace database (--trace_db)
int run_trace(Context& ctx, const Args& args);

}  // namespace mailgate::ctl
