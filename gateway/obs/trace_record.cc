// obs/trace_record.cc — see trace_record.h.
#include "obs/trace_record.h"

namespace mailgate::obs {

std::string normalize_message_id(std::string_view text) {
  size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = text.find_last_not_of(" \t\r\n");
  text = text.substr(b, e - b + 1);
  size_t lt = text.find('<');
  if (lt != std::string_view::npos) {
    size_t gt = text.find('>', lt);
    if (gt != std::string_view::npos) return std::string(text.substr(lt + 1, gt - lt - 1));
    return std::string(text.substr(lt + 1));
  }
  return std::string(text);
}

std::string queue_id_from_reply(std::string_view text) {
  for (std::string_view marker : {std::string_view("queued as "), std::string_view("id=")}) {
    size_t at = text.find(marker);
    if (at != std::string_view::npos) {
      std::string_view rest = text.substr(at + marker.size());
      size_t end = rest.find_first_of(" ,;)\t\r\n");
      return std::string(rest.substr(0, end));
    }
  }
  return {};
}

}  // namespace mailgate::obs
