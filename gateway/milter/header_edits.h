// milter/header_edits.h — the header edits plugins made, as milter operations.
// Plugins edit the transaction's header list in place (chain/host_services.cc: add, insert,
// remove, change). The MTA holds the original header and takes edits only as
// smfi_chgheader (change or, with no value, delete the Nth field of a name),
// smfi_insheader (insert at a position) and smfi_addheader (append). This module compares
// the original list with the edited one and lists those operations, in an order that gives
// the edited header whether the MTA renumbers fields after a deletion or not: changes and
// deletions first, each name's fields from its last occurrence to its first, then
// insertions from the top down, then appends.
// Owns: that comparison. Must not touch: libmilter (callbacks.cc applies the operations).
// Threading: pure functions.
#pragma once

#include <string>
#include <vector>

#include "chain/tx_context.h"

namespace mailgate::milter {

struct HeaderOp {
  enum class Kind {
    kChange,  // smfi_chgheader(name, index, value): the index-th field named `name`
    kDelete,  // smfi_chgheader(name, index, NULL)
    kInsert,  // smfi_insheader(index, name, value): `index` counts fields from the top, 0-based
    kAdd,     // smfi_addheader(name, value): at the end
  };
  Kind kind = Kind::kAdd;
  std::string name;
  int index = 0;      // kChange/kDelete: 1-based occurrence of `name` in the original header
  std::string value;  // the field's value, milter convention (no leading space, CRLF folds)

  bool operator==(const HeaderOp&) const = default;
};

// `original`: the header as the MTA sent it (every field has its `raw` text). `edited`: the
// same list after the plugins' edits: untouched fields keep their `raw`, changed and added
// fields have none. Returns the operations that turn one into the other (empty when equal).
std::vector<HeaderOp> diff_headers(const std::vector<chain::HeaderField>& original,
                                   const std::vector<chain::HeaderField>& edited);

}  // namespace mailgate::milter
