#!/usr/bin/env bash
# A SLURM cluster on this machine, for the SLURM executor's tests and benchmark:
# munged, slurmctld and one slurmd per node from Debian's `munge` and `slurm-wlm`
# (scripts/install-system-deps.sh installs them; this script installs nothing).
# FVC_SLURM_NODES=N (default 1) gives N nodes n1..nN: each slurmd listens on 127.0.0.1 with
# a port of its own, and each has this machine's CPUs and memory (they share them).
#
#   scripts/slurm-local.sh up     [STATE_DIR]   start (prints the SLURM_CONF line to export)
#   scripts/slurm-local.sh down   [STATE_DIR]   stop the daemons by their pids
#   scripts/slurm-local.sh status [STATE_DIR]   pids, and `sinfo` when up
#   scripts/slurm-local.sh env    [STATE_DIR]   print `export SLURM_CONF=...`
#
# STATE_DIR defaults to $FVC_SLURM_DIR, else /tmp/fvc-slurm-local. Every file the
# cluster uses (config, munge key and socket, state, spool, logs, pids) lives there;
# nothing is written to /etc, /run or /var. Daemons listen on 127.0.0.1 only, on the
# first free ports from 6817 up (or $FVC_SLURM_PORT), a port per node. No systemd: the daemons are
# started by hand and stopped by the pids recorded in STATE_DIR/pids/.
#
# Set SLURM_CONF=STATE_DIR/slurm.conf for sbatch/squeue/scontrol/scancel. One fake
# `gpu` GRES (gres.conf points it at /dev/null) lets steps that ask for a GPU by tag
# be scheduled here, one at a time; no device is behind it.
set -euo pipefail

cmd="${1:-status}"
STATE="$(realpath -m "${2:-${FVC_SLURM_DIR:-/tmp/fvc-slurm-local}}")"
CONF="$STATE/slurm.conf"
PIDS="$STATE/pids"
MUNGE_SOCKET="$STATE/munge/munge.socket"
NODES="${FVC_SLURM_NODES:-1}"

die() { echo "slurm-local: $*" >&2; exit 1; }

# A failed `up` (die, or any failing command under set -e) leaves nothing running behind it.
STARTING=0
on_exit() {
  local rc=$?
  if [ "$STARTING" = 1 ]; then STARTING=0; down >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap on_exit EXIT

pid_file() {  # munged writes its own files inside its private folder; slurmd-<node> one per node
  if [ "$1" = munged ]; then echo "$STATE/munge/munged.pid"; else echo "$PIDS/$1.pid"; fi
}

node_names() { local i; for ((i = 1; i <= NODES; i++)); do echo "n$i"; done; }

slurmd_daemons() {  # every slurmd this cluster has a pid file for (whatever node count it was started with)
  local f
  for f in "$PIDS"/slurmd-*.pid; do [ -e "$f" ] && basename "$f" .pid; done
  return 0
}

pid_of() {  # the recorded pid of a daemon, if that process is still alive
  local f; f="$(pid_file "$1")"
  [ -s "$f" ] || return 1
  local pid; pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# port_free, free_port_from
# shellcheck source=scripts/loopback-ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/loopback-ports.sh"

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit="$1" what="$2"; shift 2
  local i
  for ((i = 0; i < limit * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "timed out after ${limit}s waiting for $what (logs in $STATE/log)"
}

write_config() {
  local host ctld_port port mem_mb i
  host="$(hostname -s)"
  ctld_port="$(free_port_from "${FVC_SLURM_PORT:-6817}")"
  port=$ctld_port
  # Leave 10 % of memory to the system; --mem requests above this are refused.
  mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a $NODES-node cluster on 127.0.0.1, state under $STATE
ClusterName=fvc-local
SlurmctldHost=$host(127.0.0.1)
# Bind slurmctld and slurmd to their configured address (127.0.0.1), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# A node set DOWN by an administrator (scontrol update state=down) stays down until resumed.
ReturnToService=1
# Finished jobs stay visible to scontrol for an hour (there is no accounting database).
MinJobAge=3600
# Fast scheduling and prompt enforcement of --time on a test cluster.
SchedulerParameters=sched_interval=1
OverTimeLimit=0
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
GresTypes=gpu
EOF
  # Every node has this machine's CPUs and memory: they share them, as nodes of a test cluster may.
  for ((i = 1; i <= NODES; i++)); do
    port="$(free_port_from $((port + 1)))"
    echo "NodeName=n$i NodeAddr=127.0.0.1 Port=$port NodeHostname=$host CPUs=$(nproc) RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN" >>"$CONF"
  done
  echo "PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP" >>"$CONF"
  # slurmd drops a GPU without a device file; /dev/null stands in for one.
  echo "Name=gpu File=/dev/null" >"$STATE/gres.conf"
}

start_munged() {
  mkdir -p "$STATE/munge"
  # munged refuses keys and folders that others can write or read.
  if [ ! -s "$STATE/munge/munge.key" ]; then
    dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
  fi
  chown -R munge:munge "$STATE/munge"
  chmod 0700 "$STATE/munge"
  chmod 0400 "$STATE/munge/munge.key"
  runuser -u munge -- /usr/sbin/munged \
    --key-file="$STATE/munge/munge.key" \
    --socket="$MUNGE_SOCKET" \
    --pid-file="$(pid_file munged)" \
    --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed" \
    --force
  wait_for 10 munged test -S "$MUNGE_SOCKET"
}

up() {
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || die "$tool not found: install munge and slurm-wlm (scripts/install-system-deps.sh)"
  done
  [ "$(id -u)" -eq 0 ] || die "must run as root (munged runs as user munge, the slurm daemons as root)"
  [[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "FVC_SLURM_NODES=$NODES: expected a number of nodes, 1 to 99"
  local name node
  for name in slurmctld munged $(slurmd_daemons); do
    pid_of "$name" >/dev/null || continue
    die "already running in $STATE (scripts/slurm-local.sh down $STATE first)"
  done
  # The state folder must be traversable by the munge user.
  mkdir -p "$STATE" && chmod 0755 "$STATE"
  mkdir -p "$PIDS" "$STATE/log" "$STATE/ctld" "$STATE/spool"
  chmod 0755 "$PIDS" "$STATE/log"
  # A fresh cluster: no jobs from a previous life.
  find "$STATE/ctld" "$STATE/spool" -mindepth 1 -delete
  for node in $(node_names); do mkdir -p "$STATE/spool/$node"; done
  STARTING=1
  write_config
  start_munged
  export SLURM_CONF="$CONF"
  /usr/sbin/slurmctld -f "$CONF"
  wait_for 20 slurmctld scontrol ping
  for node in $(node_names); do /usr/sbin/slurmd -f "$CONF" -N "$node"; done
  wait_for 30 "every node to become idle" nodes_idle
  STARTING=0
  echo "export SLURM_CONF=$CONF"
}

nodes_idle() { [ "$(sinfo -h -N -o '%t' | grep -cE '^(idle|mix|alloc)$')" -eq "$NODES" ]; }

cancel_all_jobs() {  # while slurmctld is up: cancel every job and let slurmd kill them
  local ids i
  export SLURM_CONF="$CONF"
  ids="$(squeue -h -o '%A' 2>/dev/null || true)"
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086  # job ids are numbers
  scancel $ids 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    [ -z "$(squeue -h -t R,CG,PD -o '%A' 2>/dev/null)" ] && return 0
    sleep 0.1
  done
}

down() {
  local name pid i
  if pid_of slurmctld >/dev/null; then cancel_all_jobs; fi
  for name in $(slurmd_daemons) slurmctld munged; do  # slurmds first, munged last
    pid="$(pid_of "$name")" || continue
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  # Job steps that outlived slurmd are children of slurmstepd processes it started;
  # stop those that belong to this cluster (their command line names our spool folder).
  for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$STATE" ||
       grep -qz "SLURM_CONF=$CONF" "/proc/$pid/environ" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$PIDS"/*.pid "$(pid_file munged)"
  echo "slurm-local: stopped ($STATE)"
}

status() {
  local name pid running=0 slurmds
  slurmds="$(slurmd_daemons)"
  for name in munged slurmctld ${slurmds:-slurmd}; do
    if pid="$(pid_of "$name")"; then echo "$name: running (pid $pid)"; running=$((running + 1));
    else echo "$name: stopped"; fi
  done
  if [ -n "$slurmds" ] && [ "$running" -eq $((2 + $(wc -w <<<"$slurmds"))) ]; then
    SLURM_CONF="$CONF" sinfo -N -o '%N %P %t %c %m %G'
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  return 3
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) die "usage: $0 up|down|status|env [STATE_DIR]" ;;
esac
