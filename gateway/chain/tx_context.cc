// chain/tx_context.cc — see tx_context.h.
#include "chain/tx_context.h"

namespace mailgate::chain {

void Slot::reset() {
  if (data != nullptr && free_fn != nullptr) free_fn(data);
  data = nullptr;
  free_fn = nullptr;
}

TxContext::TxContext(size_t plugin_count) : tx_slots(plugin_count), session_slots(plugin_count) {}

TxContext::~TxContext() {
  for (Slot& s : tx_slots) s.reset();
  for (Slot& s : session_slots) s.reset();
}

void TxContext::set_item(mg_item item, std::string value) {
  if (item >= 0 && item < MG_ITEM_COUNT) items[item] = std::move(value);
}

void TxContext::clear_item(mg_item item) {
  if (item >= 0 && item < MG_ITEM_COUNT) items[item].reset();
}

double TxContext::score() const {
  double sum = 0;
  for (const Symbol& s : symbols) sum += s.score;
  return sum;
}

void TxContext::add_symbol(std::string name, double score, std::string detail,
                           std::string plugin) {
  for (Symbol& s : symbols) {
    if (s.name == name) {
      s.score = score;
      s.detail = std::move(detail);
      s.plugin = std::move(plugin);
      return;
    }
  }
  symbols.push_back(Symbol{std::move(name), score, std::move(detail), std::move(plugin)});
}

void TxContext::reset_transaction() {
  mail_params.clear();
  recipients.clear();
  headers.clear();
  headers_edited = false;
  symbols.clear();
  auth_results.clear();
  spool = nullptr;
  body_offset = 0;
  new_sender.reset();
  rewritten_rcpt.reset();
  added_rcpts.clear();
  removed_rcpts.clear();
  drop_current_rcpt = false;
  new_body.reset();
  quarantine_reason.reset();
  clear_item(MG_ITEM_SENDER);
  clear_item(MG_ITEM_TX_ID);
  clear_item(MG_ITEM_CURRENT_RCPT);
  for (Slot& s : tx_slots) s.reset();
}

}  // namespace mailgate::chain
