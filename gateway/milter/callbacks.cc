// milter/callbacks.cc — see callbacks.h.
#include "milter/callbacks.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <ctime>

#include "log/log.h"
#include "milter/reply_map.h"
#include "server/plugin_host.h"

namespace mailgate::milter {
namespace {

// What one MTA connection keeps between callbacks (smfi_setpriv).
struct Connection {
  std::unique_ptr<MilterSession> session;
  unsigned long actions = 0;   // SMFIF_* the MTA granted
  unsigned long protocol = 0;  // SMFIP_* agreed
};

server::PluginHost* g_host = nullptr;
SessionOptions g_options;
std::atomic<uint64_t> g_counter{0};

std::string next_session_id() {
  // As proxy mode's ids: the low 24 bits of the start time, then a counter.
  static const uint32_t base = static_cast<uint32_t>(std::time(nullptr)) & 0xFFFFFF;
  return fmt::format("{:06X}{:06X}", base, ++g_counter & 0xFFFFFF);
}

Connection* connection(SMFICTX* ctx) { return static_cast<Connection*>(smfi_getpriv(ctx)); }

// The connection's state, made at the first callback (negotiation, or connect when the MTA
// does not negotiate). nullptr only when memory runs out.
Connection* ensure_connection(SMFICTX* ctx) {
  Connection* c = connection(ctx);
  if (c != nullptr) return c;
  c = new (std::nothrow) Connection();
  if (c == nullptr) return nullptr;
  try {
    c->session = std::make_unique<MilterSession>(g_host->chain_for(g_options.profile), g_options,
                                                 next_session_id());
  } catch (const std::exception& e) {
    MG_LOG_ERROR("milter: cannot start a session: {}", e.what());
    delete c;
    return nullptr;
  }
  smfi_setpriv(ctx, c);
  return c;
}

MacroLookup macros_of(SMFICTX* ctx) {
  return [ctx](const char* name) { return smfi_getsymval(ctx, const_cast<char*>(name)); };
}

std::vector<std::string> args_of(char** argv) {
  std::vector<std::string> out;
  for (char** p = argv; p != nullptr && *p != nullptr; ++p) out.emplace_back(*p);
  return out;
}

sfsistat temporary_failure(SMFICTX* ctx) {
  smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.0"),
                const_cast<char*>("Temporary filter failure, try again later"));
  return SMFIS_TEMPFAIL;
}

// Tells the MTA what the chain decided. Before the end of the message a DISCARD is only
// remembered (MilterSession applies it at the end, as proxy mode does), so the step goes on.
sfsistat answer(SMFICTX* ctx, const chain::Verdict& v, bool end_of_message) {
  if (v.action == MG_DISCARD && !end_of_message) return SMFIS_CONTINUE;
  MilterReply m = map_verdict(v.action, v.reply);
  if (!m.code.empty()) {
    char* code = m.code.data();
    char* enhanced = m.enhanced.empty() ? nullptr : m.enhanced.data();
    int rc;
    if (m.lines.size() == 1) {
      rc = smfi_setreply(ctx, code, enhanced, m.lines[0].data());
    } else {
      // smfi_setmlreply takes up to 32 lines, ended by NULL; pass 10 slots.
      const char* l[10] = {};
      for (size_t i = 0; i < m.lines.size() && i < 9; ++i) l[i] = m.lines[i].c_str();
      rc = smfi_setmlreply(ctx, code, enhanced, l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7],
                           l[8], l[9], static_cast<const char*>(nullptr));
    }
    if (rc != MI_SUCCESS)
      MG_LOG_WARNING("milter: the MTA's reply could not be set to '{} {} {}'", m.code, m.enhanced,
                     m.lines.empty() ? "" : m.lines[0]);
  }
  return to_sfsistat(m.status);
}

// Header values go back with LF folds and, when negotiated, their leading space.
std::string to_mta_value(const std::string& value, bool leading_space) {
  std::string out = leading_space ? " " : "";
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
    out.push_back(value[i]);
  }
  return out;
}

// Applies the end-of-message edits. False (logged) when the MTA refused one.
bool apply_edits(SMFICTX* ctx, const Connection& c, EomOutcome& out) {
  const std::string& id = c.session->id();
  bool lead = c.session->header_leading_space();
  bool ok = true;
  auto check = [&](int rc, const std::string& what) {
    if (rc == MI_SUCCESS) return;
    ok = false;
    MG_LOG_ERROR("{}: the MTA refused {} (did it grant the action? granted: 0x{:x})", id, what,
                 c.actions);
  };
  for (HeaderOp& op : out.header_ops) {
    std::string value = to_mta_value(op.value, lead);
    switch (op.kind) {
      case HeaderOp::Kind::kChange:
        check(smfi_chgheader(ctx, op.name.data(), op.index, value.data()),
              "smfi_chgheader " + op.name);
        break;
      case HeaderOp::Kind::kDelete:
        check(smfi_chgheader(ctx, op.name.data(), op.index, nullptr),
              "smfi_chgheader (delete) " + op.name);
        break;
      case HeaderOp::Kind::kInsert:
        check(smfi_insheader(ctx, op.index, op.name.data(), value.data()),
              "smfi_insheader " + op.name);
        break;
      case HeaderOp::Kind::kAdd:
        check(smfi_addheader(ctx, op.name.data(), value.data()), "smfi_addheader " + op.name);
        break;
    }
  }
  if (out.new_sender) {
    std::string from = "<" + *out.new_sender + ">";
    check(smfi_chgfrom(ctx, from.data(), nullptr), "smfi_chgfrom " + from);
  }
  for (std::string& r : out.del_rcpts) check(smfi_delrcpt(ctx, r.data()), "smfi_delrcpt " + r);
  for (const std::string& a : out.add_rcpts) {
    std::string rcpt = "<" + a + ">";
    check(smfi_addrcpt(ctx, rcpt.data()), "smfi_addrcpt " + rcpt);
  }
  if (out.new_body) {
    // libmilter sends at most 64 KiB per SMFIR_REPLBODY packet; the first replaces, the rest
    // append. An empty body is one empty call.
    const std::string& body = *out.new_body;
    constexpr size_t kChunk = 65535;
    size_t at = 0;
    do {
      size_t n = std::min(kChunk, body.size() - at);
      auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(body.data() + at));
      int rc = smfi_replacebody(ctx, p, static_cast<int>(n));
      check(rc, "smfi_replacebody");
      if (rc != MI_SUCCESS) break;
      at += n;
    } while (at < body.size());
  }
  if (out.quarantine) {
    check(smfi_quarantine(ctx, out.quarantine->data()), "smfi_quarantine " + *out.quarantine);
  }
  return ok;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long,
                      unsigned long, unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) {
  Connection* c = ensure_connection(ctx);
  if (c == nullptr) return SMFIS_TEMPFAIL;
  const MilterSession& s = *c->session;
  c->actions = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT |
                     SMFIF_CHGFROM | SMFIF_SETSYMLIST | SMFIF_CHGBODY | SMFIF_QUARANTINE);
  unsigned long want = SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC;
  if (!s.wants_message()) {
    want |= SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY;
  } else {
    // Header fields and body chunks are only collected: the stages run at the end.
    want |= SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
  }
  if (!s.wants(MG_STAGE_DATA)) want |= SMFIP_NODATA;
  c->protocol = want & f1;
  c->session->set_header_leading_space((c->protocol & SMFIP_HDR_LEADSPC) != 0);
  if (c->actions & SMFIF_SETSYMLIST) {
    for (const MacroRequest& r : macro_requests())
      smfi_setsymlist(ctx, r.stage, const_cast<char*>(r.macros));
  }
  *pf0 = c->actions;
  *pf1 = c->protocol;
  *pf2 = 0;
  *pf3 = 0;
  MG_LOG_DEBUG("{}: milter negotiated actions 0x{:x} protocol 0x{:x} (offered 0x{:x} 0x{:x})",
               s.id(), c->actions, c->protocol, f0, f1);
  return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  Connection* c = ensure_connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  std::string ip;
  int port = 0;
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr != nullptr && addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf) != nullptr) ip = buf;
    port = ntohs(in->sin_port);
  } else if (addr != nullptr && addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    }
    ip = buf;
    port = ntohs(in6->sin6_port);
  }
  chain::Verdict v =
      c->session->connect(hostname != nullptr ? hostname : "", ip, port, macros_of(ctx));
  return answer(ctx, v, false);
}

// Runs one envelope step: macros first, then the step.
template <typename Step>
sfsistat step(SMFICTX* ctx, Step&& run) {
  Connection* c = connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  c->session->update_macros(macros_of(ctx));
  chain::Verdict v = run(*c->session);
  return answer(ctx, v, false);
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
  std::string helo = name != nullptr ? name : "";
  return step(ctx, [&](MilterSession& s) { return s.helo(helo); });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  auto args = args_of(argv);
  return step(ctx, [&](MilterSession& s) { return s.mail(args); });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
  auto args = args_of(argv);
  return step(ctx, [&](MilterSession& s) { return s.rcpt(args); });
}

sfsistat on_data(SMFICTX* ctx) {
  return step(ctx, [&](MilterSession& s) { return s.data(); });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  Connection* c = connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  c->session->header(name != nullptr ? name : "", value != nullptr ? value : "");
  return (c->protocol & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat on_eoh(SMFICTX* ctx) {
  Connection* c = connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  c->session->end_of_header();
  return (c->protocol & SMFIP_NR_EOH) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
  Connection* c = connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  c->session->body(std::string_view(reinterpret_cast<const char*>(data), len));
  return (c->protocol & SMFIP_NR_BODY) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat on_eom(SMFICTX* ctx) {
  Connection* c = connection(ctx);
  if (c == nullptr) return temporary_failure(ctx);
  c->session->update_macros(macros_of(ctx));
  EomOutcome out = c->session->end_of_message();
  if (out.verdict.action == MG_CONTINUE && !apply_edits(ctx, *c, out))
    return temporary_failure(ctx);
  return answer(ctx, out.verdict, true);
}

sfsistat on_abort(SMFICTX* ctx) {
  Connection* c = connection(ctx);
  if (c != nullptr) c->session->abort();
  return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
  Connection* c = connection(ctx);
  if (c != nullptr) {
    smfi_setpriv(ctx, nullptr);
    c->session->close();
    delete c;
  }
  return SMFIS_CONTINUE;
}

}  // namespace

void set_callback_context(server::PluginHost* host, SessionOptions options) {
  g_host = host;
  g_options = std::move(options);
}

smfiDesc make_filter_description(char* name) {
  smfiDesc d{};
  d.xxfi_name = name;
  d.xxfi_version = SMFI_VERSION;
  d.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGFROM |
                 SMFIF_SETSYMLIST | SMFIF_CHGBODY | SMFIF_QUARANTINE;
  d.xxfi_connect = on_connect;
  d.xxfi_helo = on_helo;
  d.xxfi_envfrom = on_envfrom;
  d.xxfi_envrcpt = on_envrcpt;
  d.xxfi_header = on_header;
  d.xxfi_eoh = on_eoh;
  d.xxfi_body = on_body;
  d.xxfi_eom = on_eom;
  d.xxfi_abort = on_abort;
  d.xxfi_close = on_close;
  d.xxfi_unknown = nullptr;
  d.xxfi_data = on_data;
  d.xxfi_negotiate = on_negotiate;
  return d;
}

}  // namespace mailgate::milter
