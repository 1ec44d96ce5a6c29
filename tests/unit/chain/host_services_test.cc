// host_services_test.cc — the gateway's mg_host services of ABI 1.1 called directly, as a plugin
// would: header_raw_at (the bytes as relayed) and the authentication results (scopes, argument
// checks, order). The services of 1.0 are covered through the chain and the integration tests.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "chain/call_context.h"
#include "chain/host_services.h"
#include "chain/tx_context.h"

namespace mailgate::chain {
namespace {

struct Call {
  std::shared_ptr<TxContext> tx = std::make_shared<TxContext>(1);
  CallContext context;
  explicit Call(mg_stage stage) {
    context.tx = tx;
    context.plugin_name = "test";
    context.stage = stage;
  }
  mg_session* s() { return context.handle(); }
  void at(mg_stage stage) {
    context.stage = stage;
    tx->stage = stage;
  }
};

std::string raw_at(const mg_host* host, mg_session* s, size_t index) {
  const char* raw = nullptr;
  size_t len = 0;
  if (host->header_raw_at(s, index, &raw, &len) != 0) return "<none>";
  return std::string(raw, len);
}

TEST(HostServices, HeaderRawAtGivesTheReceivedBytesAndRebuildsEditedFields) {
  const mg_host* host = host_table();
  ASSERT_TRUE(MG_HOST_HAS(host, header_raw_at));
  Call call(MG_STAGE_EOM);
  call.tx->headers.push_back(
      HeaderField{"Subject", "folded\r\n\tline", "Subject:  folded\r\n\tline\r\n"});
  call.tx->headers.push_back(HeaderField{"From", "a@example.com", "From: a@example.com\r\n"});
  EXPECT_EQ(raw_at(host, call.s(), 0), "Subject:  folded\r\n\tline\r\n");
  EXPECT_EQ(host->header_change(call.s(), "From", 1, "b@example.com"), 0);
  EXPECT_EQ(raw_at(host, call.s(), 1), "From: b@example.com\r\n");
  EXPECT_EQ(host->header_insert(call.s(), 0, "X-Added", "yes"), 0);
  EXPECT_EQ(raw_at(host, call.s(), 0), "X-Added: yes\r\n");
  EXPECT_EQ(raw_at(host, call.s(), 1), "Subject:  folded\r\n\tline\r\n");
  EXPECT_EQ(raw_at(host, call.s(), 3), "<none>");
}

struct Listed {
  std::string method, result, reason, properties;
  bool reason_null = false, properties_null = false;
};

Listed listed(const mg_host* host, mg_session* s, size_t index) {
  const char* method = nullptr;
  const char* result = nullptr;
  const char* reason = nullptr;
  const char* properties = nullptr;
  Listed out;
  if (host->auth_result_at(s, index, &method, &result, &reason, &properties) != 0) return out;
  out.method = method;
  out.result = result;
  out.reason_null = reason == nullptr;
  out.properties_null = properties == nullptr;
  if (reason != nullptr) out.reason = reason;
  if (properties != nullptr) out.properties = properties;
  return out;
}

TEST(HostServices, AuthResultsKeepSessionOnesAcrossTransactions) {
  const mg_host* host = host_table();
  ASSERT_TRUE(MG_HOST_HAS(host, auth_result_at));
  Call call(MG_STAGE_CONNECT);
  EXPECT_EQ(host->auth_result_add(call.s(), "iprev", "pass", nullptr, "policy.iprev=192.0.2.1"),
            0);
  call.at(MG_STAGE_MAIL);
  EXPECT_EQ(host->auth_result_add(call.s(), "spf", "fail", "no match", "smtp.mailfrom=a.example"),
            0);
  call.at(MG_STAGE_EOM);
  EXPECT_EQ(host->auth_result_add(call.s(), "dkim", "pass", nullptr, nullptr), 0);
  ASSERT_EQ(host->auth_result_count(call.s()), 3u);
  Listed first = listed(host, call.s(), 0);
  EXPECT_EQ(first.method, "iprev");
  EXPECT_TRUE(first.reason_null);
  EXPECT_EQ(first.properties, "policy.iprev=192.0.2.1");
  Listed second = listed(host, call.s(), 1);
  EXPECT_EQ(second.method, "spf");
  EXPECT_EQ(second.result, "fail");
  EXPECT_EQ(second.reason, "no match");
  Listed third = listed(host, call.s(), 2);
  EXPECT_EQ(third.method, "dkim");
  EXPECT_TRUE(third.properties_null);
  const char* method = nullptr;
  EXPECT_EQ(host->auth_result_at(call.s(), 3, &method, nullptr, nullptr, nullptr), -1);

  // The next transaction starts with the session's results only.
  call.tx->reset_transaction();
  ASSERT_EQ(host->auth_result_count(call.s()), 1u);
  EXPECT_EQ(listed(host, call.s(), 0).method, "iprev");
}

TEST(HostServices, AuthResultsRefuseWhatWouldBreakTheHeader) {
  const mg_host* host = host_table();
  Call call(MG_STAGE_EOM);
  EXPECT_EQ(host->auth_result_add(call.s(), nullptr, "pass", nullptr, nullptr), -1);
  EXPECT_EQ(host->auth_result_add(call.s(), "", "pass", nullptr, nullptr), -1);
  EXPECT_EQ(host->auth_result_add(call.s(), "DKIM", "pass", nullptr, nullptr), -1);
  EXPECT_EQ(host->auth_result_add(call.s(), "dkim", "pass fail", nullptr, nullptr), -1);
  EXPECT_EQ(host->auth_result_add(call.s(), "dkim", "pass", "a; dmarc=pass", nullptr), -1);
  EXPECT_EQ(host->auth_result_add(call.s(), "dkim", "pass", nullptr, "header.d=x\r\nX: y"), -1);
  EXPECT_EQ(host->auth_result_count(call.s()), 0u);
  // A call the chain gave up waiting for records nothing.
  call.context.abandoned = true;
  EXPECT_EQ(host->auth_result_add(call.s(), "dkim", "pass", nullptr, nullptr), -1);
  EXPECT_EQ(host->auth_result_count(call.s()), 0u);
}

}  // namespace
}  // namespace mailgate::chain
