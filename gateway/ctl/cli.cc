// ctl/cli.cc — parses mailgatectl's command line against the command table and dispatches.
// See cli.h.
#include "ctl/cli.h"

#include <fmt/format.h>

#include <cstdlib>
#include <map>

#include "ctl/commands.h"

namespace mailgate::ctl {
namespace {

const OptionSpec kGlobalOptions[] = {
    {"--db", "PATH", "policy database (default: $MAILGATE_DB, else /var/lib/mailgate/policy.db)"},
    {"--json", "", "machine-readable output"},
    {"--help", "", "show help"},
};

std::string words_of(const CommandSpec& c) { return fmt::format("{}", fmt::join(c.words, " ")); }

std::string usage_line(const CommandSpec& c) {
  std::string line = fmt::format("usage: mailgatectl [--db PATH] [--json] {}", words_of(c));
  if (!c.synopsis.empty()) line += fmt::format(" {}", c.synopsis);
  return line;
}

// The positional argument names of a synopsis: "NAME POSITION" -> {NAME, POSITION};
// "[PLUGIN]" -> {PLUGIN}; option values ("--stage STAGE") are skipped.
std::vector<std::string> positional_names(std::string_view synopsis) {
  std::vector<std::string> names;
  bool skip_next = false;
  size_t start = 0;
  while (start < synopsis.size()) {
    size_t end = synopsis.find(' ', start);
    if (end == std::string_view::npos) end = synopsis.size();
    std::string_view token = synopsis.substr(start, end - start);
    start = end + 1;
    if (skip_next) {
      skip_next = false;
      continue;
    }
    if (token.starts_with("--") || token.starts_with("[--")) {
      skip_next = !token.ends_with("]");
      continue;
    }
    while (!token.empty() && (token.front() == '[')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ']')) token.remove_suffix(1);
    if (!token.empty()) names.emplace_back(token);
  }
  return names;
}

void print_help(std::ostream& out) {
  out << "usage: mailgatectl [--db PATH] [--json] COMMAND [ARGS...]\n\n"
         "Edits mailgate's SQLite policy database. Every change is validated before it is\n"
         "written; a running gateway picks it up by itself.\n\ncommands:\n";
  for (const CommandSpec& c : command_table()) {
    std::string line = words_of(c);
    if (!c.synopsis.empty()) line += fmt::format(" {}", c.synopsis);
    out << fmt::format("  {}\n      {}\n", line, c.summary);
  }
  out << "\nglobal options:\n";
  for (const OptionSpec& o : kGlobalOptions) {
    out << fmt::format("  {:<12} {}\n", fmt::format("{} {}", o.name, o.value_name), o.help);
  }
  out << "\nexit status: 0 success, 1 refused or failed, 2 bad command line\n";
}

void print_command_help(std::ostream& out, const CommandSpec& c) {
  out << usage_line(c) << "\n\n" << c.summary << "\n";
  if (!c.options.empty()) {
    out << "\noptions:\n";
    for (const OptionSpec& o : c.options) {
      out << fmt::format("  {:<22} {}{}\n", fmt::format("{} {}", o.name, o.value_name), o.help,
                         o.required ? " (required)" : "");
    }
  }
}

const OptionSpec* find_option(const CommandSpec& c, std::string_view name) {
  for (const OptionSpec& o : c.options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// Whether `name` takes a value, across the global options and every command (an option has
// the same shape everywhere), or nullopt when no command knows it.
std::optional<bool> option_takes_value(std::string_view name) {
  for (const OptionSpec& o : kGlobalOptions) {
    if (o.name == name) return !o.value_name.empty();
  }
  for (const CommandSpec& c : command_table()) {
    if (const OptionSpec* o = find_option(c, name)) return !o->value_name.empty();
  }
  return std::nullopt;
}

int plain_usage_error(std::ostream& err, std::string_view message) {
  err << "mailgatectl: " << message << "\n"
      << "usage: mailgatectl [--db PATH] [--json] COMMAND [ARGS...]  (mailgatectl --help)\n";
  return kExitUsage;
}

}  // namespace

bool Args::has(std::string_view option) const {
  for (const auto& [name, value] : options_) {
    if (name == option) return true;
  }
  return false;
}

std::optional<std::string> Args::value(std::string_view option) const {
  std::optional<std::string> found;
  for (const auto& [name, value] : options_) {
    if (name == option) found = value;
  }
  return found;
}

std::vector<std::string> Args::values(std::string_view option) const {
  std::vector<std::string> found;
  for (const auto& [name, value] : options_) {
    if (name == option) found.push_back(value);
  }
  return found;
}

int usage_error(Context& ctx, std::string_view message) {
  ctx.err << "mailgatectl: " << message << "\n";
  if (ctx.command) ctx.err << usage_line(*ctx.command) << "\n";
  return kExitUsage;
}

int fail(Context& ctx, std::string_view message) {
  ctx.err << "mailgatectl: error: " << message << "\n";
  return kExitFailure;
}

std::optional<int64_t> parse_int(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return negative ? -n : n;
}

std::optional<int64_t> int_arg(Context& ctx, std::string_view name, std::string_view text,
                               int* exit) {
  auto n = parse_int(text);
  if (!n) *exit = usage_error(ctx, fmt::format("{}: '{}' is not an integer", name, text));
  return n;
}

int run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Args args;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view token = argv[i];
    bool negative_number =
        token.size() > 1 && token[0] == '-' && token[1] >= '0' && token[1] <= '9';
    if (options_done || token == "-" || !token.starts_with('-') || negative_number) {
      args.positional_.emplace_back(token);
      continue;
    }
    if (token == "--") {
      options_done = true;
      continue;
    }
    if (token == "-h") token = "--help";
    std::string name(token);
    std::optional<std::string> inline_value;
    if (size_t eq = token.find('='); eq != std::string_view::npos) {
      name = token.substr(0, eq);
      inline_value = std::string(token.substr(eq + 1));
    }
    auto takes_value = option_takes_value(name);
    if (!takes_value) return plain_usage_error(err, fmt::format("unknown option '{}'", name));
    if (!*takes_value) {
      if (inline_value) {
        return plain_usage_error(err, fmt::format("option {} takes no value", name));
      }
      args.options_.emplace_back(name, "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc)
        return plain_usage_error(err, fmt::format("option {} needs a value", name));
      inline_value = argv[++i];
    }
    args.options_.emplace_back(name, std::move(*inline_value));
  }

  const char* env_db = std::getenv("MAILGATE_DB");
  Context ctx{args.value("--db").value_or(env_db && *env_db ? env_db : std::string(kDefaultDbPath)),
              args.has("--json"), out, err};
  if (ctx.db_path.empty()) return plain_usage_error(err, "--db: the path is empty");

  // The command: the longest table entry whose words lead the positional arguments.
  const CommandSpec* command = nullptr;
  const auto& pos = args.positional_;
  for (const CommandSpec& c : command_table()) {
    if (c.words.size() > pos.size()) continue;
    bool match = true;
    for (size_t i = 0; i < c.words.size() && match; ++i) match = pos[i] == c.words[i];
    if (match && (!command || c.words.size() > command->words.size())) command = &c;
  }
  if (!command) {
    if (pos.empty() || (pos.size() == 1 && pos[0] == "help")) {
      if (args.has("--help") || !pos.empty()) {
        print_help(out);
        return kExitOk;
      }
      print_help(err);
      return kExitUsage;
    }
    // A known prefix ("policy domain") lists what may follow; anything else is unknown.
    std::map<std::string, bool> next;
    size_t depth = 0;
    for (const CommandSpec& c : command_table()) {
      size_t common = 0;
      while (common < c.words.size() && common < pos.size() && c.words[common] == pos[common]) {
        ++common;
      }
      if (common == 0 || common < depth) continue;
      if (common > depth) next.clear();
      depth = common;
      if (common < c.words.size()) next[std::string(c.words[common])] = true;
    }
    if (depth == 0) return plain_usage_error(err, fmt::format("unknown command '{}'", pos[0]));
    std::string prefix = fmt::format("{}", fmt::join(pos.begin(), pos.begin() + depth, " "));
    std::vector<std::string> choices;
    for (const auto& [word, unused] : next) choices.push_back(word);
    if (args.has("--help")) {
      out << "mailgatectl " << prefix << ": one of " << fmt::format("{}", fmt::join(choices, ", "))
          << "\n";
      return kExitOk;
    }
    if (depth == pos.size()) {
      return plain_usage_error(err, fmt::format("{}: missing subcommand (one of: {})", prefix,
                                                fmt::join(choices, ", ")));
    }
    return plain_usage_error(err, fmt::format("{}: unknown subcommand '{}' (one of: {})", prefix,
                                              pos[depth], fmt::join(choices, ", ")));
  }
  ctx.command = command;
  if (args.has("--help")) {
    print_command_help(out, *command);
    return kExitOk;
  }

  for (const auto& [name, value] : args.options_) {
    if (name == "--db" || name == "--json") continue;
    if (!find_option(*command, name)) {
      return usage_error(ctx, fmt::format("{}: unknown option '{}'", words_of(*command), name));
    }
  }
  for (const OptionSpec& o : command->options) {
    if (o.required && !args.has(o.name)) {
      return usage_error(ctx, fmt::format("missing required option {} {}", o.name, o.value_name));
    }
  }
  args.positional_.erase(args.positional_.begin(),
                         args.positional_.begin() + static_cast<ptrdiff_t>(command->words.size()));
  const std::vector<std::string> names = positional_names(command->synopsis);
  if (args.positional_.size() < command->min_args) {
    std::string missing = args.positional_.size() < names.size() ? names[args.positional_.size()]
                                                                 : std::string("argument");
    return usage_error(ctx, fmt::format("missing argument {}", missing));
  }
  if (args.positional_.size() > command->max_args) {
    return usage_error(
        ctx, fmt::format("unexpected argument '{}'", args.positional_[command->max_args]));
  }
  return command->run(ctx, args);
}

}  // namespace mailgate::ctl
