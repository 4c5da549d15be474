#!/usr/bin/env bash
# Writes ./bootstrap.config for a bootstrap node, as in the IPOP tutorial's bootstrap setup:
#   NAMESPACE IP PORT                   listens on UDP PORT and lists itself (IP:PORT) as the remote TA;
#   NAMESPACE IP:PORT [IP:PORT ...]     several bootstrap nodes: listens on the first one's port and
#                                       lists all of them, so a node still joins while some are down.
# An IPv6 address is written [ADDR]:PORT in the second form.
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") NAMESPACE IP PORT" >&2
  echo "       $(basename "$0") NAMESPACE IP:PORT [IP:PORT ...]" >&2
  echo "  writes bootstrap.config in the current directory (UDP listener on the (first) PORT," >&2
  echo "  a RemoteTA brunet.udp://IP:PORT for each bootstrap node)" >&2
  exit 2
}
die() { echo "$(basename "$0"): $*" >&2; usage; }

# host IP: the host part of a TA (an IPv6 address in brackets), or dies. Called as $(host ...),
# each on its own line, so that set -e ends the script with die's exit code.
host() {
  local ip=$1 octet
  if [[ $ip =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
    for octet in "${BASH_REMATCH[@]:1}"; do
      (( 10#$octet <= 255 )) || die "invalid IP: '$ip'"
    done
    echo "$ip"
  elif [[ $ip =~ ^[0-9A-Fa-f:.]+$ && $ip == *:* ]]; then
    echo "[$ip]"
  elif [[ $ip =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    echo "$ip"
  else
    die "invalid IP: '$ip'"
  fi
}

# port PORT: the port as a plain integer in 1..65535, or dies.
port() {
  [[ $1 =~ ^[0-9]{1,5}$ ]] && (( 10#$1 >= 1 && 10#$1 <= 65535 )) || die "PORT must be an integer in 1..65535, got '$1'"
  echo $((10#$1))
}

[[ $# -ge 2 ]] || usage
NAMESPACE=$1
shift
# The values go into XML unescaped, so refuse anything that would need escaping.
[[ -n $NAMESPACE && $NAMESPACE != *[[:space:]\<\>\&\"\']* ]] || die "invalid NAMESPACE: '$NAMESPACE'"

TAS=()
if [[ $# -eq 2 && $2 != *:* ]]; then
  # NAMESPACE IP PORT (the original form)
  H=$(host "$1")
  P=$(port "$2")
  PORT=$P
  TAS+=("brunet.udp://$H:$P")
else
  PORT=
  for hp in "$@"; do
    if [[ $hp =~ ^\[([0-9A-Fa-f:.]+)\]:([^:]*)$ ]]; then
      [[ ${BASH_REMATCH[1]} == *:* ]] || die "invalid IP:PORT: '$hp'"
      ip=${BASH_REMATCH[1]} p=${BASH_REMATCH[2]}
    elif [[ $hp =~ ^([^:]+):([^:]*)$ ]]; then
      ip=${BASH_REMATCH[1]} p=${BASH_REMATCH[2]}
    else
      die "expected IP:PORT ([IPv6]:PORT), got '$hp'"
    fi
    H=$(host "$ip")
    P=$(port "$p")
    PORT=${PORT:-$P}
    TAS+=("brunet.udp://$H:$P")
  done
fi

OUT=bootstrap.config
TMP=$(mktemp "./.bootstrap.config.XXXXXX")
trap 'rm -f "$TMP"' EXIT
cat >"$TMP" <<XML
<?xml version="1.0" encoding="utf-8"?>
<NodeConfig>
  <BrunetNamespace>$NAMESPACE</BrunetNamespace>
  <EdgeListeners>
    <EdgeListener type="udp">
      <port>$PORT</port>
    </EdgeListener>
  </EdgeListeners>
  <RemoteTAs>
$(printf '    <Transport>%s</Transport>\n' "${TAS[@]}")
  </RemoteTAs>
  <XmlRpcManager>
    <Enabled>true</Enabled>
    <Port>10000</Port>
  </XmlRpcManager>
</NodeConfig>
XML
chmod 644 "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "wrote $(pwd)/$OUT (namespace $NAMESPACE, UDP port $PORT, ${TAS[*]})"
