#!/usr/bin/env bash
# The test command behind `npm test`, in four tap runs:
# - parallel: the files that build no network namespace (most in virtual time or waiting on
#   child processes), three at a time; then the fast-path run repeats the files that use real
#   UDP sockets over the addon's batched socket (BRUNET_FASTPATH=1; tests that build their own
#   listeners use node:dgram unless the environment says otherwise, the commands they spawn
#   default to the batched socket), two at a time;
# - serial, alongside those: the files that build namespaces, bridges or TAP devices (a
#   *-netns test, or one that uses bench/lab/netns.js or runs `ip netns`), one at a time;
# - alone, once both are done: the namespace files whose assertions are timing-sensitive (they
#   say "runs alone (tools/run-tests.sh)"), one at a time with nothing else running.
# The serial and alone runs report as they go; the parallel and fast-path runs are buffered and
# printed whole once done. Arguments go to every tap run (e.g. --reporter=tap). Exit status:
# non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# tap builds its plugin loader on its first run after npm ci; two runs starting at once would both
# build it into the same folder and one fails (seen on a fresh clone): build it once, first.
tap build >/dev/null || exit 1
mapfile -t netns < <({ ls test/*-netns.test.ts; grep -lE "lab/netns\.js|'netns'" test/*.test.ts; } | sort -u)
mapfile -t alone < <(grep -lF 'runs alone (tools/run-tests.sh)' "${netns[@]}" </dev/null)
mapfile -t serial < <(printf '%s\n' "${netns[@]}" | grep -vxF -f <(printf '%s\n' "${alone[@]}"))
mapfile -t parallel < <(ls test/*.test.ts | grep -vxF -f <(printf '%s\n' "${netns[@]}"))
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
runs=("$others")
# Stops the runs still going: SIGTERM (labs tear themselves down), SIGKILL after 10 s.
stop_runs() {
  local p i
  for p in "${runs[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
  for ((i = 0; i < 100; i++)); do
    for p in "${runs[@]}"; do kill -0 -- "-$p" 2>/dev/null && break; done || { rm -rf "$out"; return; }
    sleep 0.1
  done
  for p in "${runs[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
  rm -rf "$out"
}
trap stop_runs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# tap without files would run every file: an empty list is a run that passed.
second=0
if [ ${#serial[@]} -gt 0 ]; then
  setsid tap --jobs=1 "$@" "${serial[@]}" &
  runs+=("$!")
  wait "$!"
  second=$?
fi
wait "$others"
cat "$out/parallel.log" "$out/fastpath.log"
first=$(cat "$out/parallel.rc" 2>/dev/null || echo 1)
third=$(cat "$out/fastpath.rc" 2>/dev/null || echo 1)
fourth=0
if [ ${#alone[@]} -gt 0 ]; then
  setsid tap --jobs=1 "$@" "${alone[@]}" &
  runs+=("$!")
  wait "$!"
  fourth=$?
fi
for rc in "$first" "$second" "$third" "$fourth"; do [ "$rc" -ne 0 ] && exit "$rc"; done
exit 0
