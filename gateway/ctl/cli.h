// ctl/cli.h — mailgatectl's command-line machinery: the command table type, argument parsing,
// dispatch, help, and the exit-code conventions every command follows.
// Owns: turning argv into (command, positional arguments, options) and reporting usage errors.
// The commands themselves live in *_commands.cc and are listed in commands.cc.
// Exit codes: 0 success; 1 a value was refused (validation) or the database failed; 2 the
// command line itself is wrong (unknown command or option, missing or extra arguments, a
// missing option value, a number that is not a number).
// Threading: single-threaded (a CLI). Compiled into mailgate_core by the gateway's glob but
// only linked into the mailgatectl executable (tools/mailgatectl/main.cc).
// Must not touch: the running gateway (it edits the database; the gateway notices by itself).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

inline constexpr std::string_view kDefaultDbPath = "/var/lib/mailgate/policy.db";

struct CommandSpec;

// What every command gets: the global options and where to print.
struct Context {
  std::string db_path;  // --db, else $MAILGATE_DB, else kDefaultDbPath
  bool json = false;    // --json: machine-readable output
  std::ostream& out;
  std::ostream& err;
  const CommandSpec* command = nullptr;  // the command being run, for usage messages
};

struct OptionSpec {
  std::string_view name;        // "--comment"
  std::string_view value_name;  // "TEXT"; empty for a flag (e.g. "--disabled")
  std::string_view help;
  bool required = false;  // a missing required option is a usage error
};

// The parsed command line of one command.
class Args {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  const std::string& arg(size_t i) const { return positional_.at(i); }
  bool has(std::string_view option) const;
  // The value of an option that takes one (the last, when given twice), or nullopt.
  std::optional<std::string> value(std::string_view option) const;
  // Every value of a repeatable option, in command-line order (e.g. check's --to).
  std::vector<std::string> values(std::string_view option) const;

 private:
  friend int run(int argc, char** argv, std::ostream& out, std::ostream& err);
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> options_;  // name, value ("" for flags)
};

// One row of the command table.
struct CommandSpec {
  std::vector<std::string_view> words;  // {"policy", "domain", "add"}
  std::string_view synopsis;            // "DOMAIN [--comment TEXT]"
  std::string_view summary;             // one line for the help
  size_t min_args = 0;                  // positional arguments after the words
  size_t max_args = 0;
  std::vector<OptionSpec> options;  // besides the global --db, --json, --help
  int (*run)(Context& ctx, const Args& args) = nullptr;
};

// Runs mailgatectl with argv; returns the exit code.
int run(int argc, char** argv, std::ostream& out, std::ostream& err);

// Reporting helpers for commands. Both return the exit code to return.
// usage_error: "mailgatectl: MESSAGE" + the command's usage line; exit 2.
int usage_error(Context& ctx, std::string_view message);
// fail: "mailgatectl: error: MESSAGE"; exit 1.
int fail(Context& ctx, std::string_view message);

// Strict decimal integer ("-5", "42"; no spaces, no "+", no trailing junk).
std::optional<int64_t> parse_int(std::string_view text);

// Integer option or argument: nullopt + usage error printed (and *exit set) when malformed.
// `name` is what the message names ("--timeout-ms", "ID").
std::optional<int64_t> int_arg(Context& ctx, std::string_view name, std::string_view text,
                               int* exit);

}  // namespace mailgate::ctl
