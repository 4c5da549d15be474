#!/usr/bin/env bash
# Writes ./bootstrap.config for a bootstrap node that listens on UDP PORT and lists itself
# (IP:PORT) as the remote TA, as in the IPOP tutorial's bootstrap setup.
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") NAMESPACE IP PORT" >&2
  echo "  writes bootstrap.config in the current directory (UDP listener on PORT, RemoteTA brunet.udp://IP:PORT)" >&2
  exit 2
}
die() { echo "$(basename "$0"): $*" >&2; usage; }

[[ $# -eq 3 ]] || usage
NAMESPACE=$1 IP=$2 PORT=$3

# The values go into XML unescaped, so refuse anything that would need escaping.
[[ -n $NAMESPACE && $NAMESPACE != *[[:space:]\<\>\&\"\']* ]] || die "invalid NAMESPACE: '$NAMESPACE'"

if [[ $IP =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
  for octet in "${BASH_REMATCH[@]:1}"; do
    (( 10#$octet <= 255 )) || die "invalid IP: '$IP'"
  done
  HOST=$IP
elif [[ $IP =~ ^[0-9A-Fa-f:.]+$ && $IP == *:* ]]; then
  HOST="[$IP]"
elif [[ $IP =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
  HOST=$IP
else
  die "invalid IP: '$IP'"
fi

[[ $PORT =~ ^[0-9]{1,5}$ ]] && (( 10#$PORT >= 1 && 10#$PORT <= 65535 )) || die "PORT must be an integer in 1..65535, got '$PORT'"
PORT=$((10#$PORT))

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
    <Transport>brunet.udp://$HOST:$PORT</Transport>
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
echo "wrote $(pwd)/$OUT (namespace $NAMESPACE, brunet.udp://$HOST:$PORT)"
