#!/usr/bin/env bash
# Installs the Debian packages the interop tests drive: pcscd with the vpcd virtual reader,
# PC/SC tools, OpenSC, usbip, tshark, socat and openssl, plus libpcsclite-dev for the Node
# PC/SC binding. Idempotent; needs root (CI runs as root).
set -euo pipefail
packages=(pcscd vsmartcard-vpcd pcsc-tools opensc usbip tshark socat openssl libpcsclite-dev pkg-config iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The vpcd tests start their own pcscd (pcsc-lite serves one socket per machine): a
# system pcscd started by systemd socket activation would take the readers away.
stop_system_pcscd() {
  if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files pcscd.socket >/dev/null 2>&1; then
    systemctl stop pcscd.socket pcscd.service >/dev/null 2>&1 || true
    systemctl disable pcscd.socket >/dev/null 2>&1 || true
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  echo "system deps: all present"
  stop_system_pcscd
  exit 0
fi
echo "system deps: installing ${missing[*]}"
# wireshark-common asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
stop_system_pcscd
echo "system deps: done"
