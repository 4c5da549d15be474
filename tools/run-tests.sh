#!/usr/bin/env bash
# The test command behind `npm test`. Files that build network namespaces, bridges or TAP
# devices have time-sensitive labs: they run one at a time. The others (most in virtual time
# or waiting on child processes) run three at a time alongside them: the serial run is the
# longer one and sets the suite's wall time. Not niced: at nice 10 on a saturated machine the
# parallel run's real-time bounds (a process up within 10 s) failed, while the labs pass
# with the machine busy.
# After the parallel run, a third repeats the files that use real UDP sockets over the addon's
# batched socket (BRUNET_FASTPATH=1). Tests that build their own listeners use node:dgram unless
# the environment says otherwise; the commands (run_bootstrap_node, groupvpn) default to the
# batched socket.
# The serial run reports as it goes; the other two are buffered and printed after it, whole.
# Arguments go to every tap run (e.g. --reporter=tap). Exit status: non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# Serial: a *-netns test, or one that uses the namespace lab (bench/lab/netns.js) or runs `ip netns`.
mapfile -t serial < <({ ls test/*-netns.test.ts; grep -lE "lab/netns\.js|'netns'" test/*.test.ts; } | sort -u)
mapfile -t parallel < <(ls test/*.test.ts | grep -vxF -f <(printf '%s\n' "${serial[@]}"))
out=$(mktemp -d)
# Each run in a session of its own, so that an interrupted npm test can stop it whole.
setsid bash -c '
  out=$1 k=$2; shift 2
  args=("${@:1:k}") files=("${@:k+1}")
  tap --jobs=3 "${args[@]}" "${files[@]}" >"$out/parallel.log" 2>&1
  echo $? >"$out/parallel.rc"
  BRUNET_FASTPATH=1 tap --jobs=2 "${args[@]}" test/transport-udp.test.ts test/ring-udp.test.ts test/remote-tas.test.ts test/secure-edge.test.ts >"$out/fastpath.log" 2>&1
  echo $? >"$out/fastpath.rc"
' _ "$out" "$#" "$@" "${parallel[@]}" &
others=$!
setsid tap --jobs=1 "$@" "${serial[@]}" &
netns=$!
# Interrupted: stop both runs (each a process group; tap passes the signal on to its tests).
trap 'kill -TERM -- "-$others" "-$netns" 2>/dev/null; rm -rf "$out"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait "$netns"
second=$?
wait "$others"
cat "$out/parallel.log" "$out/fastpath.log"
first=$(cat "$out/parallel.rc" 2>/dev/null || echo 1)
third=$(cat "$out/fastpath.rc" 2>/dev/null || echo 1)
exit $(( first != 0 ? first : second != 0 ? second : third ))
