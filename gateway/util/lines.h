// util/lines.h — walks a text line by line, counting lines, for parsers of config-like files.
// Lines end at '\n' (the '\n' is not part of the line; a '\r' before it is left to the caller);
// a last line without '\n' counts. Owns nothing: views point into the caller's text.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailgate {

class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {}

  // Sets *line to the next line and returns true, or returns false at the end.
  bool next(std::string_view* line) {
    if (start_ >= text_.size()) return false;
    size_t nl = text_.find('\n', start_);
    *line = text_.substr(start_, nl == std::string_view::npos ? std::string_view::npos
                                                              : nl - start_);
    start_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    ++number_;
    return true;
  }

  // 1-based number of the line next() returned last.
  size_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t start_ = 0;
  size_t number_ = 0;
};

}  // namespace mailgate
