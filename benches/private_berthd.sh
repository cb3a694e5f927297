# Sourced by benches/phases.sh, cpu.sh and spells.sh: a private berthd of one build, in a
# temp directory of its own, with busybox imported; stopped and cleaned up at exit.
#   private_berthd BINDIR NAME
# Sets W (the directory: berth, berthd and berth-shim are installed copies there, as
# scripts/setup.sh installs them), DPID, exports BERTH_HOST; the cgroup parent is
# /berth-test-NAME. Chain further cleanup with `private_berthd_cleanup` in a trap of your own.
private_berthd_cleanup() {
  if [ -n "${DPID:-}" ]; then
    BERTH_HOST=unix://$W/berth.sock "$W/berth" ps -aq 2>/dev/null |
      xargs -r env BERTH_HOST=unix://$W/berth.sock "$W/berth" rm -f >/dev/null 2>&1 || true
    kill "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  for cg in /sys/fs/cgroup/*/"berth-test-$PB_NAME"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$W"
}

private_berthd() { # BINDIR NAME
  PB_NAME=$2
  W=$(mktemp -d "/tmp/berth-test-$PB_NAME.XXXXXX")
  DPID=""
  trap private_berthd_cleanup EXIT
  install -m 0755 "$1/berth" "$1/berthd" "$1/berth-shim" "$W/"
  "$W/berthd" --data-root "$W/data" --exec-root "$W/run" -H "unix://$W/berth.sock" \
    --cgroup-parent "/berth-test-$PB_NAME" --config-file <(echo '{}') >"$W/berthd.log" 2>&1 &
  DPID=$!
  export BERTH_HOST=unix://$W/berth.sock
  for _ in $(seq 100); do "$W/berth" version >/dev/null 2>&1 && break; sleep 0.05; done
  mkdir -p "$W/rootfs/bin" "$W/rootfs/etc"
  cp /bin/busybox "$W/rootfs/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
  tar -C "$W/rootfs" -cf "$W/busybox.tar" .
  "$W/berth" import "$W/busybox.tar" busybox:latest >/dev/null
}
