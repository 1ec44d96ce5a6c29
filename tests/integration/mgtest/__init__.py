"""mgtest — helpers for mailgate's integration tests (stdlib only).

postfix.PostfixInstance   a private Postfix on loopback, used as the gateway's backend
gateway.Gateway           the mailgate binary under test, started on 127.0.0.1:0
smtpclient.RawSmtp        a byte-exact SMTP client (pipelining, bare CR/LF, raw replies)
util                      free ports, waiting, temp dirs readable by Postfix's users

Every process a test starts is stopped by PID (context managers / stop()).
"""
