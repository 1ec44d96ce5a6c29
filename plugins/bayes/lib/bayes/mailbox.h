// plugins/bayes/lib/bayes/mailbox.h — the messages under a path, for `mailgatectl learn` and
// the tests: a message file, an mbox file (several messages, "From " separator lines), a
// maildir (its cur/ and new/), or a directory of message files.
//
// Owns: telling these apart and splitting mboxes (mboxrd: a line ">From " loses one '>').
// Files are read whole; each must be at most kMaxMessageFileBytes.
// Must not: follow into subdirectories other than a maildir's cur/ and new/.
// Threading: none of its own; the callback runs on the caller's thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mailgate::bayes {

inline constexpr std::size_t kMaxMessageFileBytes = 256u * 1024 * 1024;

// Calls `each(origin, raw)` for every message under `path`, in name order; origin is the file
// name, with "#N" (1-based) for the Nth message of an mbox. Returns "" or the first error
// (naming the path); messages before the error have been passed on.
std::string for_each_message(
    const std::string& path,
    const std::function<void(const std::string& origin, std::string_view raw)>& each);

// Splits an mbox's text into messages (without their "From " lines). A text that does not
// start with "From " is one message.
void split_mbox(std::string_view text, const std::function<void(std::string_view raw)>& each);

}  // namespace mailgate::bayes
