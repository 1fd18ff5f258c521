#!/usr/bin/env bash
# Install the directory servers the tests run against (OpenLDAP slapd, Samba AD DC) when missing.
# Debian/Ubuntu, non-interactive, --no-upgrade. Needs root (or sudo); otherwise prints what to run.
set -euo pipefail
pkgs=()
[ -x /usr/sbin/slapd ] || pkgs+=(slapd ldap-utils)
command -v openssl >/dev/null || pkgs+=(openssl)
# samba-ad-provision (/usr/share/samba/setup) is only a Recommends of samba-ad-dc, yet provisioning needs it
if [ ! -x /usr/sbin/samba ] || ! command -v samba-tool >/dev/null || [ ! -d /usr/share/samba/setup ]; then
  pkgs+=(samba samba-ad-dc samba-ad-provision winbind)
fi
[ ${#pkgs[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "system-deps: not a Debian/Ubuntu machine; install ${pkgs[*]} yourself (LDAP tests will skip)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "system-deps: not root; run: sudo apt-get install -y ${pkgs[*]}" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo 'slapd slapd/no_configuration boolean true' | $sudo debconf-set-selections
echo "system-deps: installing ${pkgs[*]}" >&2
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends --no-upgrade "${pkgs[@]}" >/dev/null
# the LDAP/AD suites need all of these; say which one is still missing rather than skipping silently
missing=()
for tool in /usr/sbin/slapd /usr/sbin/slapadd /usr/sbin/samba "$(command -v samba-tool || echo samba-tool)" \
            "$(command -v openssl || echo openssl)"; do
  [ -x "$tool" ] || missing+=("$tool")
done
[ -d /usr/share/samba/setup ] || missing+=("samba-ad-provision (/usr/share/samba/setup)")
if [ ${#missing[@]} -ne 0 ]; then
  echo "system-deps: still missing after install: ${missing[*]}" >&2
  exit 1
fi
