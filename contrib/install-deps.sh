#!/usr/bin/env bash
# install-deps.sh — installs every Debian 12 package mailgate builds, runs and tests with.
# Idempotent and prompt-free: safe to run on every CI start. Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# Debian's postfix package asks how to configure the system MTA; answer "No configuration"
# so installing it never touches the machine's mail setup (mailgate runs its own instance).
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries the gateway links
  libasio-dev libssl-dev libsqlite3-dev sqlite3 libgflags-dev libfmt-dev nlohmann-json3-dev
  libmilter-dev libspf2-dev libopendkim-dev libopendmarc-dev libunbound-dev libevent-dev libhiredis-dev
  libgmime-3.0-dev libre2-dev
  # data the plugins read (dmarc: the public suffix list)
  publicsuffix
  # tests
  libgtest-dev libgmock-dev python3 swaks libnet-ssleay-perl libio-socket-ssl-perl sasl2-bin libsasl2-modules postfix unbound dnsmasq-base redis-server python3-spf python3-dkim python3-authres
  opendkim opendkim-tools
  procps iproute2
  # the Debian package (cpack -G DEB: dpkg-shlibdeps computes Depends, file finds the ELF files)
  dpkg-dev file
  # the status page test (test_status_page.py) loads the page in headless Chromium
  chromium fonts-dejavu-core
  # fuzzing (contrib/run-fuzzers.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The packages may start system daemons; mailgate's tests start their own on loopback.
for svc in postfix unbound redis-server opendkim; do
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "install-deps: all packages present"
