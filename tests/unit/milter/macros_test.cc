// macros_test.cc — milter/macros: the MTA's macros become the session items plugins read.
#include "milter/macros.h"

#include <gtest/gtest.h>

#include <map>

namespace mailgate::milter {
namespace {

MacroLookup lookup(const std::map<std::string, std::string>& m) {
  return [&m](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

std::string item(const chain::TxContext& tx, mg_item i) {
  return tx.items[i] ? *tx.items[i] : std::string("(unset)");
}

TEST(Macros, PostfixConnectAndMailMacros) {
  std::map<std::string, std::string> m = {{"j", "mx.example.test"},
                                          {"{daemon_name}", "smtpd"},
                                          {"{if_addr}", "192.0.2.25"},
                                          {"{daemon_port}", "25"},
                                          {"{client_addr}", "198.51.100.7"},
                                          {"{client_port}", "40522"},
                                          {"{client_name}", "mail.sender.example"},
                                          {"i", "4XyzAbC"},
                                          {"{auth_authen}", "alice"},
                                          {"{tls_version}", "TLSv1.3"},
                                          {"{cipher}", "TLS_AES_256_GCM_SHA384"}};
  chain::TxContext tx(0);
  MacroFacts f = apply_macros(lookup(m), tx);
  EXPECT_EQ(item(tx, MG_ITEM_HOSTNAME), "mx.example.test");
  EXPECT_EQ(item(tx, MG_ITEM_CLIENT_ADDR), "198.51.100.7");
  EXPECT_EQ(item(tx, MG_ITEM_CLIENT_PORT), "40522");
  EXPECT_EQ(item(tx, MG_ITEM_CLIENT_NAME), "mail.sender.example");
  EXPECT_EQ(item(tx, MG_ITEM_LOCAL_ADDR), "192.0.2.25:25");
  EXPECT_EQ(item(tx, MG_ITEM_AUTH_USER), "alice");
  EXPECT_EQ(item(tx, MG_ITEM_TLS_VERSION), "TLSv1.3");
  EXPECT_EQ(item(tx, MG_ITEM_TLS_CIPHER), "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(item(tx, MG_ITEM_PROTOCOL), "ESMTPSA");
  EXPECT_EQ(f.queue_id, "4XyzAbC");
  EXPECT_EQ(f.daemon_name, "smtpd");
}

TEST(Macros, MissingMacrosLeaveItemsAlone) {
  chain::TxContext tx(0);
  tx.set_item(MG_ITEM_HOSTNAME, "configured.example");
  tx.set_item(MG_ITEM_CLIENT_ADDR, "127.0.0.1");
  std::map<std::string, std::string> none;
  MacroFacts f = apply_macros(lookup(none), tx);
  EXPECT_EQ(item(tx, MG_ITEM_HOSTNAME), "configured.example");
  EXPECT_EQ(item(tx, MG_ITEM_CLIENT_ADDR), "127.0.0.1");
  EXPECT_EQ(item(tx, MG_ITEM_AUTH_USER), "(unset)");
  EXPECT_EQ(item(tx, MG_ITEM_PROTOCOL), "ESMTP");
  EXPECT_TRUE(f.queue_id.empty());
}

TEST(Macros, SendmailUnresolvedNameAndIpv6DaemonAddress) {
  std::map<std::string, std::string> m = {{"{client_name}", "[192.0.2.1]"},
                                          {"{daemon_addr}", "2001:db8::25"},
                                          {"{daemon_port}", "587"}};
  chain::TxContext tx(0);
  apply_macros(lookup(m), tx);
  EXPECT_EQ(item(tx, MG_ITEM_CLIENT_NAME), "unknown");
  EXPECT_EQ(item(tx, MG_ITEM_LOCAL_ADDR), "[2001:db8::25]:587");
}

TEST(Macros, RequestsCoverEveryMappedMacro) {
  std::string all;
  for (const MacroRequest& r : macro_requests()) all += std::string(" ") + r.macros + " ";
  for (const char* m : {" j ", " {client_addr} ", " {auth_authen} ", " {tls_version} ", " i ",
                        " {if_addr} ", " {daemon_name} "})
    EXPECT_NE(all.find(m), std::string::npos) << m;
}

}  // namespace
}  // namespace mailgate::milter
