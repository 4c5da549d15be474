#!/usr/bin/env bash
# The Debian packages the test suite needs, installed in one place before any test runs
# (npm's pretest step and .ci/run call this). As root, installs what is missing; otherwise
# prints the one apt-get line to run and fails. Benchmarks install their own extra tools
# (tinc, wireguard-go, iperf3, nftables: bench/vpn.ts).
#
#   tools/test-deps.sh [--dry-run]    --dry-run: print what would be installed, install nothing
#
# BRUNET_NO_LAB=1 (the network-namespace tests skip) leaves out the lab's packages.
# Exit: 0 all present (or installed), 1 missing and not installable here, 2 bad argument.
set -euo pipefail

dry=0
case "${1:-}" in
  '') ;;
  --dry-run) dry=1 ;;
  *) echo "usage: tools/test-deps.sh [--dry-run]" >&2; exit 2 ;;
esac

# ip, iptables and sysctl live in sbin, which a non-login PATH may lack.
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/sbin:/sbin"

# command:package, and who needs it.
deps=(
  python3:python3           # XML-RPC interop with Python's xmlrpc.client (Brunet's tools are Python), ring-udp
  chromium:chromium         # the web view driven by a real browser (web-page, through playwright-core)
)
if [ -z "${BRUNET_NO_LAB:-}" ]; then
  deps+=(
    ip:iproute2             # network namespaces, veth, TAP checks (bench/lab/netns.ts, vpn-tap)
    ss:iproute2             # listening sockets in a namespace (vpn-netns, floor relay)
    ping:iputils-ping       # reachability over the VPN (lab, floor-relay, nat-netns, vpn-netns)
    udhcpc:udhcpc           # a DHCP client against the VPN's DHCP server (vpn-netns)
    iptables:iptables       # the NAT routers of the NAT lab (bench/lab/nat.ts)
    sysctl:procps           # forwarding and IPv6 switches in namespaces (vpn-tap)
    setpriv:util-linux      # the TAP agent without CAP_NET_ADMIN, and as nobody (vpn-tap)
    unshare:util-linux      # the TAP agent without /dev/net/tun (vpn-tap)
    arping:iputils-arping   # ARP across switch-mode sites (vpn-switch-netns)
    tcpdump:tcpdump         # captures: a site's bridge in switch mode, no plaintext under a nested VPN
  )
fi

missing=() pkgs=()
check() {
  missing=() pkgs=()
  local d
  for d in "${deps[@]}"; do
    command -v "${d%%:*}" >/dev/null 2>&1 && continue
    missing+=("${d%%:*}")
    [[ " ${pkgs[*]} " == *" ${d#*:} "* ]] || pkgs+=("${d#*:}")
  done
}

check
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${pkgs[*]}"
if [ $dry -eq 1 ]; then
  echo "test-deps: missing ${missing[*]}; would run: $line"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  hint=
  [ -z "${BRUNET_NO_LAB:-}" ] && hint=" (or set BRUNET_NO_LAB=1 to leave out the network-namespace tests)"
  echo "test-deps: the tests need ${missing[*]}; install them as root with: $line$hint" >&2
  exit 1
fi

echo "test-deps: installing ${pkgs[*]} (for ${missing[*]})" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() { timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${pkgs[@]}" >&2; }
# Stale or absent package lists are the usual cause of a failure on a fresh machine.
apt_install || { timeout 300 apt-get update >&2 && apt_install; } || true
check
if [ ${#missing[@]} -ne 0 ]; then
  echo "test-deps: ${missing[*]} still missing after: $line" >&2
  exit 1
fi
