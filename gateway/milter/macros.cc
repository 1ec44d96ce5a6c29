// milter/macros.cc — see macros.h.
#include "milter/macros.h"

namespace mailgate::milter {
namespace {

// Macros that fill one item as they are.
struct DirectMacro {
  const char* macro;
  mg_item item;
};
constexpr DirectMacro kDirect[] = {
    {"j", MG_ITEM_HOSTNAME},
    {"{client_addr}", MG_ITEM_CLIENT_ADDR},
    {"{client_port}", MG_ITEM_CLIENT_PORT},
    {"{client_name}", MG_ITEM_CLIENT_NAME},
    {"{tls_version}", MG_ITEM_TLS_VERSION},
    {"{cipher}", MG_ITEM_TLS_CIPHER},
    {"{auth_authen}", MG_ITEM_AUTH_USER},
};

std::string value_of(const MacroLookup& get, const char* name) {
  const char* v = get(name);
  return v != nullptr ? std::string(v) : std::string();
}

}  // namespace

const std::vector<MacroRequest>& macro_requests() {
  // SMFIM_CONNECT = 0, SMFIM_HELO = 1, SMFIM_ENVFROM = 2, SMFIM_ENVRCPT = 3, SMFIM_EOM = 5.
  static const std::vector<MacroRequest> kRequests = {
      {0,
       "j _ {daemon_name} {daemon_addr} {daemon_port} {if_addr} {client_addr} "
       "{client_port} {client_name}"},
      {1, "{tls_version} {cipher}"},
      {2, "i {auth_type} {auth_authen}"},
      {3, "i"},
      {5, "i"},
  };
  return kRequests;
}

MacroFacts apply_macros(const MacroLookup& get, chain::TxContext& tx) {
  for (const DirectMacro& d : kDirect) {
    std::string v = value_of(get, d.macro);
    if (v.empty()) continue;
    // Sendmail names an unresolved client "[192.0.2.1]"; plugins expect "unknown" then.
    if (d.item == MG_ITEM_CLIENT_NAME && v.front() == '[') v = "unknown";
    tx.set_item(d.item, std::move(v));
  }
  std::string local = value_of(get, "{if_addr}");
  if (local.empty()) local = value_of(get, "{daemon_addr}");
  if (!local.empty()) {
    std::string port = value_of(get, "{daemon_port}");
    bool v6 = local.find(':') != std::string::npos;
    if (!port.empty()) local = (v6 ? "[" + local + "]" : local) + ":" + port;
    tx.set_item(MG_ITEM_LOCAL_ADDR, std::move(local));
  }
  std::string protocol = "ESMTP";
  if (tx.items[MG_ITEM_TLS_VERSION]) protocol += "S";
  if (tx.items[MG_ITEM_AUTH_USER]) protocol += "A";
  tx.set_item(MG_ITEM_PROTOCOL, protocol);
  MacroFacts facts;
  facts.queue_id = value_of(get, "i");
  facts.daemon_name = value_of(get, "{daemon_name}");
  return facts;
}

}  // namespace mailgate::milter
