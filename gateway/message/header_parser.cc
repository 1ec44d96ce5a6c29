// message/header_parser.cc — see header_parser.h.
#include "message/header_parser.h"

namespace mailgate::message {
namespace {

bool valid_name_char(unsigned char c) { return c > 32 && c < 127 && c != ':'; }

// "Name:" at the start of a line: a non-empty run of name characters, then a colon.
// (Postfix also accepts white space before the colon; so do we, for "Subject : x".)
bool starts_field(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && valid_name_char(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0) return false;
  size_t j = i;
  while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
  return j < line.size() && line[j] == ':';
}

}  // namespace

bool split_field(std::string_view raw, std::string* name, std::string* value) {
  size_t colon = raw.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view n = raw.substr(0, colon);
  while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.remove_suffix(1);
  if (n.empty()) return false;
  for (char c : n)
    if (!valid_name_char(static_cast<unsigned char>(c))) return false;
  std::string_view v = raw.substr(colon + 1);
  if (v.size() >= 2 && v.substr(v.size() - 2) == "\r\n") v.remove_suffix(2);
  if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  name->assign(n);
  value->assign(v);
  return true;
}

void HeaderParser::flush_field() {
  if (current_.empty()) return;
  if (fields_.size() >= kMaxFields) {
    truncated_ = true;
  } else {
    chain::HeaderField f;
    if (split_field(current_, &f.name, &f.value)) {
      f.raw = current_;
      fields_.push_back(std::move(f));
    }
  }
  current_.clear();
}

void HeaderParser::end_line(std::string_view line) {
  std::string_view content = line;
  if (content.size() >= 2 && content.substr(content.size() - 2) == "\r\n") content.remove_suffix(2);
  if (content.empty()) {  // the separator line
    flush_field();
    offset_ += line.size();
    done_ = true;
    separator_ = true;
    return;
  }
  if ((content.front() == ' ' || content.front() == '\t') && !current_.empty()) {
    if (current_.size() + line.size() <= kMaxFieldBytes) {
      current_.append(line);
    } else {
      truncated_ = true;
    }
    offset_ += line.size();
    return;
  }
  if (starts_field(content)) {
    flush_field();
    if (line.size() <= kMaxFieldBytes) {
      current_.assign(line);
    } else {
      truncated_ = true;
    }
    offset_ += line.size();
    return;
  }
  // Neither a field nor a continuation: the body starts with this line.
  flush_field();
  done_ = true;
}

size_t HeaderParser::feed(std::string_view data) {
  size_t used = 0;
  while (!done_ && used < data.size()) {
    std::string_view rest = data.substr(used);
    size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) {
      if (line_.size() < kMaxFieldBytes + 2) line_.append(rest.substr(0, kMaxFieldBytes + 2 - line_.size()));
      used = data.size();
      break;
    }
    std::string_view piece = rest.substr(0, lf + 1);
    uint64_t before = offset_;
    if (line_.empty()) {
      end_line(piece);
    } else {
      line_.append(piece);
      std::string whole;
      whole.swap(line_);
      end_line(whole);
    }
    if (done_ && offset_ == before) {
      // The line that starts the body was not consumed; hand back whatever of it is in
      // `piece` (a partial line kept in line_ earlier is already counted as used).
      return used;
    }
    used += piece.size();
  }
  return used;
}

void HeaderParser::finish() {
  if (done_) return;
  if (!line_.empty()) {
    std::string last;
    last.swap(line_);
    end_line(last);
  }
  if (!done_) {
    flush_field();
    done_ = true;
  }
}

}  // namespace mailgate::message
