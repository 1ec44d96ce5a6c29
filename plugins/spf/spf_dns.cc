// plugins/spf/spf_dns.cc — libspf2's DNS layer over host->dns_query (see spf_dns.h).
#include "spf_dns.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate_spf {
namespace {

thread_local Evaluation* current_evaluation = nullptr;

std::string dns_key(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

SPF_dns_rr_t* empty_answer(SPF_dns_server_t* layer, const char* domain, ns_type type,
                           SPF_dns_stat_t herrno) {
  return SPF_dns_rr_new_init(layer, domain, type, 0, herrno);
}

// Copies `text` into record `i` of `rr` as a NUL-terminated string. False when out of memory.
bool put_string(SPF_dns_rr_t* rr, int i, std::string_view text) {
  if (SPF_dns_rr_buf_realloc(rr, i, text.size() + 1) != SPF_E_SUCCESS) return false;
  std::memcpy(rr->rr[i], text.data(), text.size());
  reinterpret_cast<char*>(rr->rr[i])[text.size()] = '\0';
  return true;
}

// "v=spf1" alone or followed by a space (RFC 7208 section 4.5), case-insensitively.
bool is_spf_record(std::string_view text) {
  if (text.size() < 6) return false;
  const std::string head = dns_key(text.substr(0, 6));
  return head == "v=spf1" && (text.size() == 6 || text[6] == ' ');
}

std::string spaces_as_macro(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ')
      out += "%_";
    else
      out += c;
  }
  return out;
}

}  // namespace

bool Evaluation::count_term() {
  if (++terms_ <= kMaxDnsTerms) return true;
  exceeded_ =
      "more than " + std::to_string(kMaxDnsTerms) + " DNS-querying terms (RFC 7208 section 4.6.4)";
  return false;
}

Evaluation::Scope::Scope(Evaluation& evaluation) : previous_(current_evaluation) {
  current_evaluation = &evaluation;
}

Evaluation::Scope::~Scope() { current_evaluation = previous_; }

SPF_dns_rr_t* lookup(SPF_dns_server_t* layer, const char* domain, ns_type type,
                     int /*should_cache*/) {
  Evaluation* ev = current_evaluation;
  if (domain == nullptr) domain = "";
  if (ev == nullptr) return empty_answer(layer, domain, type, TRY_AGAIN);

  mg_dns_type mg_type;
  switch (static_cast<int>(type)) {
    case ns_t_a:
      mg_type = MG_DNS_A;
      break;
    case ns_t_aaaa:
      mg_type = MG_DNS_AAAA;
      break;
    case ns_t_mx:
      mg_type = MG_DNS_MX;
      break;
    case ns_t_txt:
      mg_type = MG_DNS_TXT;
      break;
    case ns_t_ptr:
      mg_type = MG_DNS_PTR;
      break;
    default:  // type SPF (99) and anything else: not asked, RFC 7208 uses TXT only
      return empty_answer(layer, domain, type, NO_DATA);
  }
  // Past a limit, nothing more is asked: libspf2 finishes and the caller reports permerror.
  if (ev->exceeded()) return empty_answer(layer, domain, type, HOST_NOT_FOUND);
  // After a DNS failure check_host() has terminated (RFC 7208 section 5): no more queries.
  if (ev->tempfailed_) return empty_answer(layer, domain, type, TRY_AGAIN);

  // Term accounting (RFC 7208 section 4.6.4). A TXT lookup is a term (include, redirect) only
  // when it finds an SPF record: that is decided below, once the answer is in.
  const std::string key = dns_key(domain);
  bool is_term = true;
  bool first_txt = false;
  if (mg_type == MG_DNS_TXT) {
    first_txt = !ev->saw_first_txt_;
    ev->saw_first_txt_ = true;
    is_term = false;
  } else if (mg_type == MG_DNS_A || mg_type == MG_DNS_AAAA) {
    auto it = ev->secondary_names_.find(key);
    if (it != ev->secondary_names_.end()) {
      is_term = false;  // an address of an MX or PTR name: part of that term
      ev->secondary_names_.erase(it);
    }
  }
  if (is_term && !ev->count_term()) return empty_answer(layer, domain, type, HOST_NOT_FOUND);

  ++ev->queries_;
  mg_dns_result* result = ev->host_->dns_query(ev->session_, domain, mg_type);
  struct Free {
    const mg_host* host;
    mg_dns_result* r;
    ~Free() {
      if (r != nullptr) host->dns_free(r);
    }
  } guard{ev->host_, result};

  const mg_dns_status status = result != nullptr ? result->status : MG_DNS_ERROR;
  const std::size_t count =
      result != nullptr && result->records != nullptr && status == MG_DNS_OK ? result->count : 0;
  SPF_dns_stat_t herrno;
  switch (status) {
    case MG_DNS_OK:
      herrno = count > 0 ? NETDB_SUCCESS : NO_DATA;
      break;
    case MG_DNS_NXDOMAIN:
      herrno = HOST_NOT_FOUND;
      break;
    case MG_DNS_NODATA:
      herrno = NO_DATA;
      break;
    case MG_DNS_WOULDBLOCK:
      ev->would_block_ = true;
      herrno = TRY_AGAIN;
      break;
    case MG_DNS_TEMPFAIL:
    case MG_DNS_ERROR:
    default:
      herrno = TRY_AGAIN;
      break;
  }
  if (herrno == TRY_AGAIN) {
    ev->tempfailed_ = true;
    return empty_answer(layer, domain, type, TRY_AGAIN);
  }
  // Void lookups are counted for the terms' own lookups (not for TXT: a missing include or
  // redirect target is a permerror anyway, and an exp= target is no term).
  if (herrno == HOST_NOT_FOUND || herrno == NO_DATA) {
    if (mg_type != MG_DNS_TXT && ++ev->voids_ > kMaxVoidLookups) {
      ev->exceeded_ = "more than " + std::to_string(kMaxVoidLookups) +
                      " void DNS lookups (RFC 7208 section 4.6.4)";
      return empty_answer(layer, domain, type, HOST_NOT_FOUND);
    }
    return empty_answer(layer, domain, type, herrno);
  }

  if (mg_type == MG_DNS_TXT && !first_txt) {
    bool spf_record = false;
    for (std::size_t i = 0; i < count; ++i)
      if (result->records[i].text != nullptr && is_spf_record(result->records[i].text))
        spf_record = true;
    if (spf_record && !ev->count_term()) return empty_answer(layer, domain, type, HOST_NOT_FOUND);
  }

  if (mg_type == MG_DNS_MX && count > kMaxMxNames) {
    ev->exceeded_ = "more than " + std::to_string(kMaxMxNames) + " MX names for " + key +
                    " (RFC 7208 section 4.6.4)";
    return empty_answer(layer, domain, type, HOST_NOT_FOUND);
  }

  std::uint32_t ttl = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (i == 0 || result->records[i].ttl < ttl) ttl = result->records[i].ttl;
  SPF_dns_rr_t* rr = SPF_dns_rr_new_init(layer, domain, type, static_cast<int>(ttl), NETDB_SUCCESS);
  if (rr == nullptr) return nullptr;

  int n = 0;
  const std::size_t limit = mg_type == MG_DNS_PTR ? std::min(count, kMaxPtrNames) : count;
  for (std::size_t i = 0; i < limit; ++i) {
    const char* text = result->records[i].text != nullptr ? result->records[i].text : "";
    bool ok = true;
    switch (mg_type) {
      case MG_DNS_A: {
        in_addr a{};
        if (inet_pton(AF_INET, text, &a) != 1) continue;
        ok = SPF_dns_rr_buf_realloc(rr, n, sizeof(a)) == SPF_E_SUCCESS;
        if (ok) rr->rr[n]->a = a;
        break;
      }
      case MG_DNS_AAAA: {
        in6_addr a{};
        if (inet_pton(AF_INET6, text, &a) != 1) continue;
        ok = SPF_dns_rr_buf_realloc(rr, n, sizeof(a)) == SPF_E_SUCCESS;
        if (ok) rr->rr[n]->aaaa = a;
        break;
      }
      case MG_DNS_MX:
      case MG_DNS_PTR: {
        std::string name(text);
        if (!name.empty() && name.back() == '.') name.pop_back();
        ev->secondary_names_.insert(dns_key(name));
        ok = put_string(rr, n, name);
        break;
      }
      case MG_DNS_TXT:
        // libspf2 1.2.10 garbles literal spaces in an explanation (exp=) string; "%_" is the
        // macro for a space, so non-SPF TXT strings get it. SPF records are left alone.
        ok = put_string(rr, n, is_spf_record(text) ? std::string(text) : spaces_as_macro(text));
        break;
    }
    if (!ok) {
      SPF_dns_rr_free(rr);
      return nullptr;
    }
    ++n;
  }
  rr->num_rr = n;
  if (n == 0) rr->herrno = NO_DATA;
  return rr;
}

void DnsLayerDeleter::operator()(SPF_dns_server_t* layer) const noexcept { std::free(layer); }

DnsLayer make_dns_layer() {
  auto* layer = static_cast<SPF_dns_server_t*>(std::calloc(1, sizeof(SPF_dns_server_t)));
  if (layer == nullptr) return DnsLayer();
  layer->destroy = nullptr;  // owned by DnsLayer, not by the SPF_server_t
  layer->lookup = &lookup;
  layer->get_spf = nullptr;
  layer->get_exp = nullptr;
  layer->add_cache = nullptr;
  layer->layer_below = nullptr;
  layer->name = "mailgate";
  layer->debug = 0;
  layer->hook = nullptr;
  return DnsLayer(layer);
}

}  // namespace mailgate_spf
