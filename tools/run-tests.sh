#!/usr/bin/env bash
# The test command behind `npm test`. Files that build network namespaces, bridges or TAP
# devices (each mentions "netns") share the host's devices and have time-sensitive labs: they run
# one at a time, after the others, which run three at a time (most are in virtual time or wait on
# child processes, so three keep two cores busy).
# A third run repeats the files that use real UDP sockets over the addon's batched socket
# (BRUNET_FASTPATH=1). Tests that build their own listeners use node:dgram unless the environment
# says otherwise; the commands (run_bootstrap_node, groupvpn) default to the batched socket.
# Arguments go to every tap run (e.g. --reporter=tap). Exit status: non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t serial < <(grep -l netns test/*.test.ts)
mapfile -t parallel < <(grep -L netns test/*.test.ts)
tap --jobs=3 "$@" "${parallel[@]}"
first=$?
tap --jobs=1 "$@" "${serial[@]}"
second=$?
BRUNET_FASTPATH=1 tap --jobs=2 "$@" test/transport-udp.test.ts test/ring-udp.test.ts test/remote-tas.test.ts test/secure-edge.test.ts
third=$?
exit $(( first != 0 ? first : second != 0 ? second : third ))
