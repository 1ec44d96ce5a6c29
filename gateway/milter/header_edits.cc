// milter/header_edits.cc — see header_edits.h.
#include "milter/header_edits.h"

#include <strings.h>

#include <algorithm>

namespace mailgate::milter {
namespace {

bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strncasecmp(a.c_str(), b.c_str(), a.size()) == 0;
}

constexpr size_t kNone = static_cast<size_t>(-1);

}  // namespace

std::vector<HeaderOp> diff_headers(const std::vector<chain::HeaderField>& original,
                                   const std::vector<chain::HeaderField>& edited) {
  // 1. Untouched fields: plugins never reorder fields, so the edited list's untouched fields
  //    are a subsequence of the original. The earliest match is as good as any: fields with
  //    the same raw text are interchangeable.
  std::vector<size_t> origin(edited.size(), kNone);  // edited index -> original index
  std::vector<bool> kept(original.size(), false);
  size_t next = 0;
  for (size_t j = 0; j < edited.size(); ++j) {
    if (edited[j].raw.empty()) continue;
    for (size_t i = next; i < original.size(); ++i) {
      if (original[i].raw == edited[j].raw) {
        origin[j] = i;
        kept[i] = true;
        next = i + 1;
        break;
      }
    }
  }
  // 2. Between two untouched fields, an original field that is gone and a new field of the
  //    same name in its place is a change (header_change keeps the position); other gone
  //    fields were removed, other new fields inserted.
  std::vector<size_t> changed_to(original.size(), kNone);  // original index -> edited index
  std::vector<bool> is_change(edited.size(), false);
  size_t oi = 0, ej = 0;
  while (oi <= original.size() && ej <= edited.size()) {
    // The gap runs up to the next untouched pair (or the ends).
    size_t ej_end = ej;
    while (ej_end < edited.size() && origin[ej_end] == kNone) ++ej_end;
    size_t oi_end = ej_end < edited.size() ? origin[ej_end] : original.size();
    std::vector<bool> used(ej_end - ej, false);
    for (size_t i = oi; i < oi_end; ++i) {
      for (size_t j = ej; j < ej_end; ++j) {
        if (used[j - ej] || !same_name(original[i].name, edited[j].name)) continue;
        used[j - ej] = true;
        changed_to[i] = j;
        is_change[j] = true;
        break;
      }
    }
    if (ej_end >= edited.size()) break;
    oi = oi_end + 1;
    ej = ej_end + 1;
  }

  std::vector<HeaderOp> ops;
  // 3. Changes and deletions, each name from its last occurrence to its first.
  std::vector<int> occurrence(original.size(), 0);
  for (size_t i = 0; i < original.size(); ++i) {
    int n = 0;
    for (size_t k = 0; k <= i; ++k)
      if (same_name(original[k].name, original[i].name)) ++n;
    occurrence[i] = n;
  }
  for (size_t ii = original.size(); ii-- > 0;) {
    if (kept[ii]) continue;
    HeaderOp op;
    op.name = original[ii].name;
    op.index = occurrence[ii];
    if (changed_to[ii] != kNone) {
      const chain::HeaderField& f = edited[changed_to[ii]];
      if (f.value == original[ii].value && f.name == original[ii].name) continue;  // no-op
      op.kind = HeaderOp::Kind::kChange;
      op.value = f.value;
    } else {
      op.kind = HeaderOp::Kind::kDelete;
    }
    ops.push_back(std::move(op));
  }
  // Group by name, keeping the descending order within a name (stable sort on the name).
  std::stable_sort(ops.begin(), ops.end(), [](const HeaderOp& a, const HeaderOp& b) {
    return strcasecmp(a.name.c_str(), b.name.c_str()) < 0;
  });
  // 4. New fields: inserted at their final position from the top down, except the trailing
  //    run after the last field that was already there, which is appended.
  size_t tail = 0;
  for (size_t j = 0; j < edited.size(); ++j)
    if (origin[j] != kNone || is_change[j]) tail = j + 1;
  for (size_t j = 0; j < edited.size(); ++j) {
    if (origin[j] != kNone || is_change[j]) continue;
    HeaderOp op;
    op.kind = j >= tail ? HeaderOp::Kind::kAdd : HeaderOp::Kind::kInsert;
    op.index = j >= tail ? 0 : static_cast<int>(j);
    op.name = edited[j].name;
    op.value = edited[j].value;
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace mailgate::milter
