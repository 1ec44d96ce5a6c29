// tests/unit/smtp/command_parser_test.cc — tests gateway/smtp/command_parser.cc and
// command.cc: verbs, MAIL/RCPT paths and parameters, every syntax reply, EHLO arguments.
#include "smtp/command_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mailgate::smtp {
namespace {

using namespace std::string_literals;

// "OK" on success, else the reply on one line ("501 5.1.7 text"): failures read as replies.
std::string mail_result(std::string_view argument) {
  auto r = parse_mail_args(argument);
  return r ? "OK" : r.error().summary();
}

std::string rcpt_result(std::string_view argument, bool smtputf8 = false) {
  auto r = parse_rcpt_args(argument, smtputf8);
  return r ? "OK" : r.error().summary();
}

std::string helo_result(std::string_view argument) {
  Reply r = check_helo_argument(argument);
  return r.empty() ? "OK" : r.summary();
}

// The address MAIL accepted, or "ERROR: <reply>".
std::string sender(std::string_view argument) {
  auto r = parse_mail_args(argument);
  return r ? r->reverse_path.address : "ERROR: " + r.error().summary();
}

std::string recipient(std::string_view argument, bool smtputf8 = false) {
  auto r = parse_rcpt_args(argument, smtputf8);
  return r ? r->forward_path.address : "ERROR: " + r.error().summary();
}

// A domain of exactly `length` octets made of labels of at most 63 letters.
std::string domain_of_length(size_t length) {
  std::string d;
  while (d.size() < length) {
    if (!d.empty()) d.push_back('.');
    size_t label = std::min<size_t>(63, length - d.size());
    if (label == 0) {  // a dot landed last: make the previous label one shorter
      d.pop_back();
      d.pop_back();
      d.append(".b");
      break;
    }
    d.append(label, 'd');
  }
  return d;
}

constexpr const char* kBadSender = "501 5.1.7 Bad sender address syntax";
constexpr const char* kBadRecipient = "501 5.1.3 Bad recipient address syntax";

// ---------------------------------------------------------------------------------------------
// parse_command

TEST(ParseCommand, SplitsVerbAndArgument) {
  Command c = parse_command("MAIL FROM:<a@b.example>");
  EXPECT_EQ(c.verb, Verb::kMail);
  EXPECT_EQ(c.verb_text, "MAIL");
  EXPECT_EQ(c.argument, "FROM:<a@b.example>");
}

TEST(ParseCommand, VerbsAreCaseInsensitive) {
  Command c = parse_command("mail from:<a@b.example>");
  EXPECT_EQ(c.verb, Verb::kMail);
  EXPECT_EQ(c.verb_text, "mail");
  EXPECT_EQ(parse_command("StartTLS").verb, Verb::kStarttls);
  EXPECT_EQ(parse_command("eHlO x").verb, Verb::kEhlo);
}

TEST(ParseCommand, VerbWithoutArgumentAndTrailingSpaces) {
  Command data = parse_command("DATA");
  EXPECT_EQ(data.verb, Verb::kData);
  EXPECT_EQ(data.argument, "");
  Command quit = parse_command("QUIT   ");
  EXPECT_EQ(quit.verb, Verb::kQuit);
  EXPECT_EQ(quit.verb_text, "QUIT");
  EXPECT_EQ(quit.argument, "");
  Command ehlo = parse_command("EHLO  client.example  ");
  EXPECT_EQ(ehlo.verb, Verb::kEhlo);
  EXPECT_EQ(ehlo.argument, "client.example");
}

TEST(ParseCommand, UnknownVerbs) {
  Command c = parse_command("XYZZY plugh");
  EXPECT_EQ(c.verb, Verb::kUnknown);
  EXPECT_EQ(c.verb_text, "XYZZY");
  EXPECT_EQ(c.argument, "plugh");
  EXPECT_EQ(parse_command("").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("MAILFROM:<a@b>").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("DAT").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("DATAX").verb, Verb::kUnknown);
}

TEST(ParseCommand, EveryVerbNameRoundTrips) {
  for (Verb v : {Verb::kHelo, Verb::kEhlo, Verb::kMail, Verb::kRcpt, Verb::kData, Verb::kBdat,
                 Verb::kRset, Verb::kNoop, Verb::kQuit, Verb::kVrfy, Verb::kExpn, Verb::kHelp,
                 Verb::kStarttls, Verb::kAuth}) {
    EXPECT_EQ(parse_command(verb_name(v)).verb, v) << verb_name(v);
  }
  EXPECT_EQ(verb_name(Verb::kUnknown), "UNKNOWN");
}

// ---------------------------------------------------------------------------------------------
// Path

TEST(Path, LocalPartAndDomain) {
  Path p;
  p.address = "user@example.com";
  EXPECT_EQ(p.local_part(), "user");
  EXPECT_EQ(p.domain(), "example.com");
  p.address = "\"a@b\"@example.com";
  EXPECT_EQ(p.local_part(), "\"a@b\"");
  EXPECT_EQ(p.domain(), "example.com");
  p.address = "postmaster";
  EXPECT_EQ(p.local_part(), "postmaster");
  EXPECT_EQ(p.domain(), "");
  p.address.clear();
  EXPECT_TRUE(p.is_null());
  EXPECT_EQ(p.local_part(), "");
  EXPECT_EQ(p.domain(), "");
}

// ---------------------------------------------------------------------------------------------
// MAIL: the path

TEST(MailArgs, SimpleAddress) {
  auto r = parse_mail_args("FROM:<user@example.com>");
  ASSERT_TRUE(r) << r.error().summary();
  EXPECT_EQ(r->reverse_path.address, "user@example.com");
  EXPECT_EQ(r->reverse_path.local_part(), "user");
  EXPECT_EQ(r->reverse_path.domain(), "example.com");
  EXPECT_FALSE(r->reverse_path.utf8);
  EXPECT_FALSE(r->size.has_value());
  EXPECT_EQ(r->body, BodyType::kUnspecified);
  EXPECT_FALSE(r->smtputf8);
}

TEST(MailArgs, NullReversePath) {
  auto r = parse_mail_args("FROM:<>");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->reverse_path.is_null());
  EXPECT_EQ(mail_result("FROM:<> SIZE=10"), "OK");
}

TEST(MailArgs, KeywordIsCaseInsensitiveAndCaseIsPreserved) {
  EXPECT_EQ(sender("from:<User@Example.COM>"), "User@Example.COM");
  EXPECT_EQ(sender("From:<a@b.example>"), "a@b.example");
}

TEST(MailArgs, OneOptionalSpaceAfterColon) {
  EXPECT_EQ(sender("FROM: <a@b.example>"), "a@b.example");
  EXPECT_EQ(mail_result("FROM:  <a@b.example>"), kBadSender);
}

TEST(MailArgs, TrailingSpacesTolerated) {
  EXPECT_EQ(sender("FROM:<a@b.example>   "), "a@b.example");
  EXPECT_EQ(sender("FROM:<a@b.example> SIZE=1  "), "a@b.example");
}

TEST(MailArgs, MissingOrMalformedKeyword) {
  const std::string syntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
  EXPECT_EQ(mail_result(""), syntax);
  EXPECT_EQ(mail_result("<a@b.example>"), syntax);
  EXPECT_EQ(mail_result("FROM <a@b.example>"), syntax);
  EXPECT_EQ(mail_result("FROM<a@b.example>"), syntax);
  EXPECT_EQ(mail_result("TO:<a@b.example>"), syntax);
}

TEST(MailArgs, AngleBracketsRequired) {
  EXPECT_EQ(mail_result("FROM:"), kBadSender);
  EXPECT_EQ(mail_result("FROM:a@b.example"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@b.example"), kBadSender);
  EXPECT_EQ(mail_result("FROM:a@b.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<<a@b.example>>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@b.example>>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@b.example>x"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@b.example>SIZE=1"), kBadSender);
}

TEST(MailArgs, DomainRequired) {
  EXPECT_EQ(mail_result("FROM:<user>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<user@>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@example.com>"), kBadSender);
  // "<postmaster>" is special for RCPT only.
  EXPECT_EQ(mail_result("FROM:<postmaster>"), kBadSender);
}

TEST(MailArgs, SourceRoutesAreStripped) {
  EXPECT_EQ(sender("FROM:<@relay.example:user@dom.example>"), "user@dom.example");
  EXPECT_EQ(sender("FROM:<@a.example,@b.example:user@dom.example>"), "user@dom.example");
  EXPECT_EQ(mail_result("FROM:<@:user@dom.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@a.example user@dom.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@a.example,user@dom.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@a.example,:user@dom.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@a.example:>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<@-bad.example:user@dom.example>"), kBadSender);
}

TEST(MailArgs, DotAtomLocalParts) {
  EXPECT_EQ(sender("FROM:<first.last@x.example>"), "first.last@x.example");
  EXPECT_EQ(sender("FROM:<a+tag@x.example>"), "a+tag@x.example");
  EXPECT_EQ(sender("FROM:<!#$%&'*+-/=?^_`{|}~@x.example>"), "!#$%&'*+-/=?^_`{|}~@x.example");
  EXPECT_EQ(mail_result("FROM:<.a@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a.@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a..b@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a b@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a,b@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a(b)@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a\\b@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@b@x.example>"), kBadSender);
}

TEST(MailArgs, QuotedLocalParts) {
  auto r = parse_mail_args("FROM:<\"a b\"@x.example>");
  ASSERT_TRUE(r) << r.error().summary();
  EXPECT_EQ(r->reverse_path.address, "\"a b\"@x.example");
  EXPECT_EQ(r->reverse_path.local_part(), "\"a b\"");
  EXPECT_EQ(r->reverse_path.domain(), "x.example");
  // '@', '>' and escaped quotes inside the quotes do not end anything.
  EXPECT_EQ(sender("FROM:<\"a@>b\"@x.example>"), "\"a@>b\"@x.example");
  EXPECT_EQ(sender("FROM:<\"a\\\"b\\\\c\"@x.example>"), "\"a\\\"b\\\\c\"@x.example");
  EXPECT_EQ(sender("FROM:<\"\"@x.example>"), "\"\"@x.example");
  EXPECT_EQ(mail_result("FROM:<\"a b@x.example>"), kBadSender);     // unterminated
  EXPECT_EQ(mail_result("FROM:<\"a\tb\"@x.example>"), kBadSender);  // HTAB is a control
  EXPECT_EQ(mail_result("FROM:<\"a\\\tb\"@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<\"a\"b@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a\"b\"@x.example>"), kBadSender);
}

TEST(MailArgs, AddressLiterals) {
  EXPECT_EQ(sender("FROM:<user@[192.0.2.1]>"), "user@[192.0.2.1]");
  EXPECT_EQ(sender("FROM:<user@[IPv6:2001:db8::1]>"), "user@[IPv6:2001:db8::1]");
  EXPECT_EQ(sender("FROM:<user@[ipv6:::1]>"), "user@[ipv6:::1]");
  EXPECT_EQ(sender("FROM:<user@[IPv6:::ffff:192.0.2.1]>"), "user@[IPv6:::ffff:192.0.2.1]");
  EXPECT_EQ(sender("FROM:<user@[IPv6:2001:db8:0:0:0:0:0:1]>"), "user@[IPv6:2001:db8:0:0:0:0:0:1]");
  auto r = parse_mail_args("FROM:<user@[192.0.2.1]>");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reverse_path.domain(), "[192.0.2.1]");
  for (const char* bad :
       {"FROM:<user@[192.0.2.256]>", "FROM:<user@[192.0.2]>", "FROM:<user@[1.2.3.4.5]>",
        "FROM:<user@[1..2.3]>", "FROM:<user@[0192.0.2.1]>", "FROM:<user@[192.0.2.1>",
        "FROM:<user@[]>", "FROM:<user@[2001:db8::1]>", "FROM:<user@[IPv6:zz::1]>",
        "FROM:<user@[IPv6:2001:db8::1%eth0]>", "FROM:<user@[IPv6:1:2:3:4:5:6:7:8:9]>",
        "FROM:<user@[x-tag:abc]>", "FROM:<user@[192.0.2.1].example>"}) {
    EXPECT_EQ(mail_result(bad), kBadSender) << bad;
  }
}

TEST(MailArgs, DomainSyntax) {
  EXPECT_EQ(sender("FROM:<a@localhost>"), "a@localhost");
  EXPECT_EQ(sender("FROM:<a@x-y.example>"), "a@x-y.example");
  EXPECT_EQ(sender("FROM:<a@123.example>"), "a@123.example");
  EXPECT_EQ(sender("FROM:<a@" + std::string(63, 'l') + ".example>"),
            "a@" + std::string(63, 'l') + ".example");
  for (const std::string& bad :
       {"FROM:<a@-x.example>"s, "FROM:<a@x-.example>"s, "FROM:<a@x..example>"s,
        "FROM:<a@.x.example>"s, "FROM:<a@x.example.>"s, "FROM:<a@x_y.example>"s,
        "FROM:<a@x y.example>"s, "FROM:<a@" + std::string(64, 'l') + ".example>"}) {
    EXPECT_EQ(mail_result(bad), kBadSender) << bad;
  }
}

TEST(MailArgs, LengthLimits) {
  // Local part: 64 octets accepted, 65 refused (quotes count: they are part of it).
  EXPECT_EQ(mail_result("FROM:<" + std::string(64, 'l') + "@x.example>"), "OK");
  EXPECT_EQ(mail_result("FROM:<" + std::string(65, 'l') + "@x.example>"),
            "501 5.1.7 Bad sender address syntax: local part longer than 64 octets");
  EXPECT_EQ(mail_result("FROM:<\"" + std::string(63, 'l') + "\"@x.example>"),
            "501 5.1.7 Bad sender address syntax: local part longer than 64 octets");
  // Domain: more than 255 octets.
  EXPECT_EQ(mail_result("FROM:<a@" + domain_of_length(256) + ">"),
            "501 5.1.7 Bad sender address syntax: domain longer than 255 octets");
  // Path: "<" mailbox ">" at most 256 octets, so a mailbox of 254 is the longest.
  std::string local(64, 'l');
  ASSERT_EQ(domain_of_length(189).size(), 189u);
  EXPECT_EQ(mail_result("FROM:<" + local + "@" + domain_of_length(189) + ">"), "OK");
  EXPECT_EQ(mail_result("FROM:<" + local + "@" + domain_of_length(190) + ">"),
            "501 5.1.7 Bad sender address syntax: path longer than 256 octets");
  EXPECT_EQ(mail_result("FROM:<a@" + domain_of_length(255) + ">"),
            "501 5.1.7 Bad sender address syntax: path longer than 256 octets");
}

TEST(MailArgs, ControlCharactersAndNul) {
  EXPECT_EQ(mail_result("FROM:<a\0b@x.example>"s), kBadSender);
  EXPECT_EQ(mail_result("FROM:<ab@x.example\0>"s), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a\x01@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a\x7f@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@x.exa\rmple>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:\t<a@x.example>"), kBadSender);
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=1\x01"), "501 5.5.4 Bad parameter syntax");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=1\0"s), "501 5.5.4 Bad parameter syntax");
}

// ---------------------------------------------------------------------------------------------
// MAIL: parameters

TEST(MailArgs, SizeParameter) {
  auto r = parse_mail_args("FROM:<a@x.example> SIZE=12345");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->size.has_value());
  EXPECT_EQ(*r->size, 12345u);
  r = parse_mail_args("FROM:<a@x.example> size=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->size, 0u);
  r = parse_mail_args("FROM:<a@x.example> SIZE=18446744073709551615");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->size, UINT64_MAX);
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=18446744073709551616"),
            "501 5.5.4 Bad SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=99999999999999999999999"),
            "501 5.5.4 Bad SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=12a"), "501 5.5.4 Bad SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=-1"), "501 5.5.4 Bad SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE"), "501 5.5.4 Bad SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE="), "501 5.5.4 Bad parameter syntax");
}

TEST(MailArgs, BodyParameter) {
  struct Case {
    const char* text;
    BodyType body;
  };
  for (Case c :
       {Case{"BODY=7BIT", BodyType::k7Bit}, Case{"body=7bit", BodyType::k7Bit},
        Case{"BODY=8BITMIME", BodyType::k8BitMime}, Case{"Body=8bitMime", BodyType::k8BitMime},
        Case{"BODY=BINARYMIME", BodyType::kBinaryMime}}) {
    auto r = parse_mail_args(std::string("FROM:<a@x.example> ") + c.text);
    ASSERT_TRUE(r) << c.text;
    EXPECT_EQ(r->body, c.body) << c.text;
  }
  EXPECT_EQ(mail_result("FROM:<a@x.example> BODY=9BIT"), "501 5.5.4 Bad BODY parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> BODY=8BIT"), "501 5.5.4 Bad BODY parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> BODY"), "501 5.5.4 Bad BODY parameter");
}

TEST(MailArgs, Smtputf8Parameter) {
  auto r = parse_mail_args("FROM:<a@x.example> SMTPUTF8");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->smtputf8);
  EXPECT_FALSE(r->reverse_path.utf8);  // declared, but this address is ASCII
  EXPECT_EQ(mail_result("FROM:<a@x.example> smtputf8"), "OK");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SMTPUTF8=yes"), "501 5.5.4 SMTPUTF8 takes no value");
}

TEST(MailArgs, AllParametersTogether) {
  auto r = parse_mail_args("FROM:<a@x.example> SIZE=100  BODY=8BITMIME SMTPUTF8");
  ASSERT_TRUE(r) << r.error().summary();
  EXPECT_EQ(*r->size, 100u);
  EXPECT_EQ(r->body, BodyType::k8BitMime);
  EXPECT_TRUE(r->smtputf8);
}

TEST(MailArgs, DuplicateParameters) {
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=1 SIZE=2"), "501 5.5.4 Duplicate SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=1 size=1"), "501 5.5.4 Duplicate SIZE parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> BODY=7BIT BODY=8BITMIME"),
            "501 5.5.4 Duplicate BODY parameter");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SMTPUTF8 SMTPUTF8"),
            "501 5.5.4 Duplicate SMTPUTF8 parameter");
}

TEST(MailArgs, UnknownParameters) {
  EXPECT_EQ(mail_result("FROM:<a@x.example> AUTH=<>"), "555 5.5.4 Unsupported parameter: AUTH");
  EXPECT_EQ(mail_result("FROM:<a@x.example> RET=FULL"), "555 5.5.4 Unsupported parameter: RET");
  EXPECT_EQ(mail_result("FROM:<a@x.example> SIZE=1 X-FOO"),
            "555 5.5.4 Unsupported parameter: X-FOO");
}

TEST(MailArgs, MalformedParameters) {
  for (const char* bad :
       {"FROM:<a@x.example> =1", "FROM:<a@x.example> SI_ZE=1", "FROM:<a@x.example> -X=1",
        "FROM:<a@x.example> SIZE=1=2", "FROM:<a@x.example> X=\xff"}) {
    EXPECT_EQ(mail_result(bad), "501 5.5.4 Bad parameter syntax") << bad;
  }
}

TEST(MailArgs, AddressErrorsComeBeforeParameterErrors) {
  EXPECT_EQ(mail_result("FROM:<a b@x.example> FOO=1"), kBadSender);
}

// ---------------------------------------------------------------------------------------------
// MAIL/RCPT: UTF-8 (RFC 6531)

TEST(MailArgs, Utf8AddressNeedsSmtputf8) {
  auto r = parse_mail_args("FROM:<jöran@bücher.example> SMTPUTF8");
  ASSERT_TRUE(r) << r.error().summary();
  EXPECT_EQ(r->reverse_path.address, "jöran@bücher.example");
  EXPECT_TRUE(r->reverse_path.utf8);
  EXPECT_EQ(mail_result("FROM:<jöran@bücher.example>"),
            "553 5.6.7 Non-ASCII sender address requires SMTPUTF8");
  EXPECT_EQ(mail_result("FROM:<user@bücher.example>"),
            "553 5.6.7 Non-ASCII sender address requires SMTPUTF8");
  EXPECT_EQ(mail_result("FROM:<\"jö ran\"@x.example> SMTPUTF8"), "OK");
  EXPECT_EQ(mail_result("FROM:<用户@例子.广告> SMTPUTF8"), "OK");
  // A source route is dropped, so its UTF-8 does not make the path a UTF-8 one.
  EXPECT_EQ(sender("FROM:<@bücher.example:a@x.example>"), "a@x.example");
}

TEST(MailArgs, InvalidUtf8IsASyntaxError) {
  const std::string invalid = "501 5.1.7 Bad sender address syntax: invalid UTF-8";
  EXPECT_EQ(mail_result("FROM:<a\xff@x.example> SMTPUTF8"), invalid);
  EXPECT_EQ(mail_result("FROM:<a\xc0\xaf@x.example> SMTPUTF8"), invalid);          // overlong
  EXPECT_EQ(mail_result("FROM:<a\xed\xa0\x80@x.example> SMTPUTF8"), invalid);      // surrogate
  EXPECT_EQ(mail_result("FROM:<a\xf4\x90\x80\x80@x.example> SMTPUTF8"), invalid);  // > U+10FFFF
  EXPECT_EQ(mail_result("FROM:<a\xc3@x.example> SMTPUTF8"), invalid);              // truncated
  EXPECT_EQ(mail_result("FROM:<a@x\x80.example> SMTPUTF8"), invalid);  // lone continuation
  EXPECT_EQ(mail_result("FROM:<a\xff@x.example>"), invalid);  // invalid even without SMTPUTF8
}

TEST(RcptArgs, Utf8AddressNeedsDeclaredTransaction) {
  EXPECT_EQ(recipient("TO:<jöran@bücher.example>", /*smtputf8=*/true), "jöran@bücher.example");
  EXPECT_EQ(rcpt_result("TO:<jöran@bücher.example>", /*smtputf8=*/false),
            "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8");
  EXPECT_EQ(rcpt_result("TO:<a\xff@x.example>", /*smtputf8=*/true),
            "501 5.1.3 Bad recipient address syntax: invalid UTF-8");
  auto r = parse_rcpt_args("TO:<jöran@x.example>", true);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->forward_path.utf8);
}

// ---------------------------------------------------------------------------------------------
// RCPT

TEST(RcptArgs, SimpleAddress) {
  auto r = parse_rcpt_args("TO:<rcpt@example.org>", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->forward_path.address, "rcpt@example.org");
  EXPECT_EQ(r->forward_path.domain(), "example.org");
  EXPECT_EQ(recipient("to: <rcpt@example.org>  "), "rcpt@example.org");
  EXPECT_EQ(recipient("TO:<@hop.example:rcpt@example.org>"), "rcpt@example.org");
  EXPECT_EQ(recipient("TO:<\"x y\"@example.org>"), "\"x y\"@example.org");
  EXPECT_EQ(recipient("TO:<rcpt@[IPv6:2001:db8::25]>"), "rcpt@[IPv6:2001:db8::25]");
}

TEST(RcptArgs, SyntaxErrors) {
  const std::string syntax = "501 5.5.4 Syntax: RCPT TO:<address>";
  EXPECT_EQ(rcpt_result(""), syntax);
  EXPECT_EQ(rcpt_result("TO <a@b.example>"), syntax);
  EXPECT_EQ(rcpt_result("FROM:<a@b.example>"), syntax);
  EXPECT_EQ(rcpt_result("TO:<>"), kBadRecipient);  // no null forward-path
  EXPECT_EQ(rcpt_result("TO:"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:a@b.example"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<user>"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:  <a@b.example>"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<a..b@b.example>"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<a@b.example>x"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<a\0@b.example>"s), kBadRecipient);
}

TEST(RcptArgs, Postmaster) {
  EXPECT_EQ(recipient("TO:<postmaster>"), "postmaster");
  EXPECT_EQ(recipient("TO:<Postmaster>"), "postmaster");
  EXPECT_EQ(recipient("to:<POSTMASTER>"), "postmaster");
  EXPECT_EQ(recipient("TO:postmaster"), "postmaster");
  EXPECT_EQ(recipient("TO: Postmaster"), "postmaster");
  EXPECT_EQ(recipient("TO:<Postmaster@example.org>"), "Postmaster@example.org");
  auto r = parse_rcpt_args("TO:<postmaster>", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->forward_path.local_part(), "postmaster");
  EXPECT_EQ(r->forward_path.domain(), "");
  EXPECT_EQ(rcpt_result("TO:<postmasters>"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<postmaster"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:postmaster@example.org"), kBadRecipient);
  EXPECT_EQ(rcpt_result("TO:<postmaster> NOTIFY=NEVER"), "555 5.5.4 Unsupported parameter: NOTIFY");
}

TEST(RcptArgs, ParametersAreRefused) {
  EXPECT_EQ(rcpt_result("TO:<a@b.example> NOTIFY=SUCCESS,FAILURE"),
            "555 5.5.4 Unsupported parameter: NOTIFY");
  EXPECT_EQ(rcpt_result("TO:<a@b.example> ORCPT=rfc822;a@b.example"),
            "555 5.5.4 Unsupported parameter: ORCPT");
  EXPECT_EQ(rcpt_result("TO:<a@b.example> =x"), "501 5.5.4 Bad parameter syntax");
}

TEST(RcptArgs, LengthLimits) {
  EXPECT_EQ(rcpt_result("TO:<" + std::string(64, 'r') + "@x.example>"), "OK");
  EXPECT_EQ(rcpt_result("TO:<" + std::string(65, 'r') + "@x.example>"),
            "501 5.1.3 Bad recipient address syntax: local part longer than 64 octets");
  EXPECT_EQ(rcpt_result("TO:<r@" + domain_of_length(300) + ">"),
            "501 5.1.3 Bad recipient address syntax: domain longer than 255 octets");
  EXPECT_EQ(rcpt_result("TO:<" + std::string(64, 'r') + "@" + domain_of_length(190) + ">"),
            "501 5.1.3 Bad recipient address syntax: path longer than 256 octets");
}

// ---------------------------------------------------------------------------------------------
// HELO / EHLO

TEST(HeloArgument, Accepted) {
  for (const char* ok : {"mail.example.com", "localhost", "my_host.example", "MAIL.EXAMPLE.COM",
                         "host.example.", "192.0.2.1", "xn--bcher-kva.example", "bücher.example",
                         "-odd-.example", "a", "[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::1]"}) {
    EXPECT_EQ(helo_result(ok), "OK") << ok;
  }
  EXPECT_EQ(helo_result(std::string(63, 'h') + ".example"), "OK");
}

TEST(HeloArgument, Empty) { EXPECT_EQ(helo_result(""), "501 5.5.4 Syntax: EHLO hostname"); }

TEST(HeloArgument, Refused) {
  const std::string invalid = "501 5.5.4 Invalid EHLO hostname";
  for (const std::string& bad : {"mail example"s,
                                 "host\t"s,
                                 "ho\x01st"s,
                                 "host\0"s,
                                 "ho\x7fst"s,
                                 "[192.0.2.1"s,
                                 "192.0.2.1]"s,
                                 "[300.1.1.1]"s,
                                 "[IPv6:xyz]"s,
                                 "[]"s,
                                 "["s,
                                 "host..example"s,
                                 ".host"s,
                                 "."s,
                                 "host!"s,
                                 "host/x"s,
                                 "<host>"s,
                                 "a\xff"s,
                                 "a\xc3"s,
                                 std::string(64, 'h') + ".x",
                                 std::string(256, 'h')}) {
    EXPECT_EQ(helo_result(bad), invalid) << bad;
  }
}

}  // namespace
}  // namespace mailgate::smtp
