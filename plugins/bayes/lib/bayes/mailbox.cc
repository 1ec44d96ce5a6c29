// plugins/bayes/lib/bayes/mailbox.cc — files, mboxes and maildirs. See mailbox.h.
#include "bayes/mailbox.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace mailgate::bayes {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path, std::string& text) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return path.string() + ": " + ec.message();
  if (size > kMaxMessageFileBytes)
    return path.string() + ": larger than " + std::to_string(kMaxMessageFileBytes) + " bytes";
  std::ifstream in(path, std::ios::binary);
  if (!in) return path.string() + ": cannot open it";
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return path.string() + ": read error";
  text = std::move(buffer).str();
  return std::string();
}

// Lines ">From ", ">>From ", ... lose one '>' (mboxrd).
std::string unescape_from_lines(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t eol = raw.find('\n', pos);
    eol = eol == std::string_view::npos ? raw.size() : eol + 1;
    std::string_view line = raw.substr(pos, eol - pos);
    const std::size_t gts = line.find_first_not_of('>');
    if (gts != std::string_view::npos && gts > 0 && line.substr(gts).starts_with("From "))
      line.remove_prefix(1);
    out.append(line);
    pos = eol;
  }
  return out;
}

std::string each_file_message(
    const fs::path& file, const std::function<void(const std::string&, std::string_view)>& each) {
  std::string text;
  if (std::string e = read_file(file, text); !e.empty()) return e;
  std::size_t n = 0;
  std::vector<std::string_view> messages;
  split_mbox(text, [&](std::string_view raw) { messages.push_back(raw); });
  for (std::string_view raw : messages) {
    ++n;
    const std::string origin =
        messages.size() == 1 ? file.string() : file.string() + "#" + std::to_string(n);
    if (raw.find("\n>") != std::string_view::npos) {
      const std::string unescaped = unescape_from_lines(raw);
      each(origin, unescaped);
    } else {
      each(origin, raw);
    }
  }
  return std::string();
}

std::string sorted_files(const fs::path& dir, std::vector<fs::path>& files) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) files.push_back(it->path());
  }
  if (ec) return dir.string() + ": " + ec.message();
  std::sort(files.begin(), files.end());
  return std::string();
}

}  // namespace

void split_mbox(std::string_view text, const std::function<void(std::string_view raw)>& each) {
  if (!text.starts_with("From ")) {
    each(text);
    return;
  }
  std::size_t start = std::string_view::npos;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    eol = eol == std::string_view::npos ? text.size() : eol + 1;
    const bool separator = text.substr(pos).starts_with("From ") &&
                           (pos == 0 || (pos >= 2 && text[pos - 2] == '\n') ||
                            (pos >= 3 && text[pos - 2] == '\r' && text[pos - 3] == '\n'));
    if (separator) {
      if (start != std::string_view::npos) each(text.substr(start, pos - start));
      start = eol;
    }
    pos = eol;
  }
  if (start != std::string_view::npos && start <= text.size()) each(text.substr(start));
}

std::string for_each_message(
    const std::string& path,
    const std::function<void(const std::string& origin, std::string_view raw)>& each) {
  std::error_code ec;
  const fs::path p(path);
  const fs::file_status st = fs::status(p, ec);
  if (ec || !fs::exists(st)) return path + ": no such file or directory";
  if (fs::is_regular_file(st)) return each_file_message(p, each);
  if (!fs::is_directory(st)) return path + ": not a file or directory";
  std::vector<fs::path> files;
  const bool maildir = fs::is_directory(p / "cur", ec) || fs::is_directory(p / "new", ec);
  if (maildir) {
    for (const char* sub : {"cur", "new"}) {
      if (!fs::is_directory(p / sub, ec)) continue;
      if (std::string e = sorted_files(p / sub, files); !e.empty()) return e;
    }
  } else if (std::string e = sorted_files(p, files); !e.empty()) {
    return e;
  }
  for (const fs::path& file : files) {
    if (std::string e = each_file_message(file, each); !e.empty()) return e;
  }
  return std::string();
}

}  // namespace mailgate::bayes
