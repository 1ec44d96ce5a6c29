// plugins/spamscore/html_text.h — what the rules see of an HTML part: its text as a browser
// would show it (inline tags removed, block tags as line breaks, script and style contents and
// comments dropped, common entities decoded, white space runs collapsed) and the targets of
// its links (href attributes).
// Owns: only that conversion; no HTML validation, no CSS. Input is UTF-8 (the MIME scanner
// converted it), output is UTF-8. Linear in the input; pure functions, any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

struct HtmlText {
  std::string text;                // visible text
  std::vector<std::string> hrefs;  // href="..." values in document order, entities decoded
};

HtmlText html_to_text(std::string_view html);

}  // namespace mailgate::spamscore
