#!/usr/bin/env bash
# Fails if tests left anything behind. Test-created objects carry "berth-test" in their names
# (see CONTRIBUTING.md), so anything matching after the suite is a leak.
set -uo pipefail
leaks=0
report() { echo "LEAK: $*"; leaks=$((leaks + 1)); }

while read -r line; do report "mount: $line"; done < <(grep berth-test /proc/self/mountinfo | awk '{print $5}')
while read -r d; do report "cgroup: $d"; done < <(find /sys/fs/cgroup -maxdepth 3 -type d -name 'berth-test*' 2>/dev/null)
for root in /run/berth-runtime /run/runc /run/berth; do
  [ -d "$root" ] || continue
  while read -r d; do report "state dir: $d"; done < <(find "$root" -maxdepth 2 -name 'berth-test*' 2>/dev/null)
done
while read -r l; do report "network link: $l"; done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^(bt-|berth-test)')
while read -r n; do report "network namespace: $n"; done < <(ip netns list 2>/dev/null | grep berth-test)
while read -r p; do report "process: $p"; done < <(pgrep -af 'berth-test' | grep -v -e pgrep -e leak-check)
# A standby shim (spawned ahead by a berthd, docs/shim.md) names no container; it must exit
# with its berthd, so a live one whose parent is gone (reparented to pid 1) is a leak.
for p in $(pgrep -f '^berth-shim --standby'); do
  st=$(awk '/^PPid:/ {pp=$2} /^State:/ {s=$2} END {print pp, s}' "/proc/$p/status" 2>/dev/null) || continue
  [ "${st% *}" = 1 ] && [ "${st#* }" != Z ] && report "orphaned standby shim: pid $p"
done

if [ "$leaks" -gt 0 ]; then
  echo "leak check: $leaks leftover object(s)"
  exit 1
fi
echo "leak check: clean"
