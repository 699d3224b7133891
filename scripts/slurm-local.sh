#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the SLURM executor's tests and
# benchmark: munged, slurmctld and slurmd from Debian's `munge` and `slurm-wlm`
# (scripts/install-system-deps.sh installs them; this script installs nothing).
#
#   scripts/slurm-local.sh up     [STATE_DIR]   start (prints the SLURM_CONF line to export)
#   scripts/slurm-local.sh down   [STATE_DIR]   stop the daemons by their pids
#   scripts/slurm-local.sh status [STATE_DIR]   pids, and `sinfo` when up
#   scripts/slurm-local.sh env    [STATE_DIR]   print `export SLURM_CONF=...`
#
# STATE_DIR defaults to $FVC_SLURM_DIR, else /tmp/fvc-slurm-local. Every file the
# cluster uses (config, munge key and socket, state, spool, logs, pids) lives there;
# nothing is written to /etc, /run or /var. Daemons listen on 127.0.0.1 only, on the
# first free ports from 6817 up (or $FVC_SLURM_PORT). No systemd: the daemons are
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
DAEMONS=(slurmd slurmctld munged)   # stop order; start order is the reverse

die() { echo "slurm-local: $*" >&2; exit 1; }

# A failed `up` (die, or any failing command under set -e) leaves nothing running behind it.
STARTING=0
on_exit() {
  local rc=$?
  if [ "$STARTING" = 1 ]; then STARTING=0; down >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap on_exit EXIT

pid_file() {  # munged writes its own files inside its private folder
  if [ "$1" = munged ]; then echo "$STATE/munge/munged.pid"; else echo "$PIDS/$1.pid"; fi
}

pid_of() {  # the recorded pid of a daemon, if that process is still alive
  local f; f="$(pid_file "$1")"
  [ -s "$f" ] || return 1
  local pid; pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port_from() {
  local p="$1"
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

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
  local host ctld_port slurmd_port mem_mb
  host="$(hostname -s)"
  ctld_port="$(free_port_from "${FVC_SLURM_PORT:-6817}")"
  slurmd_port="$(free_port_from $((ctld_port + 1)))"
  # Leave 10 % of memory to the system; --mem requests above this are refused.
  mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster on 127.0.0.1, state under $STATE
ClusterName=fvc-local
SlurmctldHost=$host(127.0.0.1)
# Bind slurmctld and slurmd to their configured address (127.0.0.1), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
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
ReturnToService=2
# Finished jobs stay visible to scontrol for an hour (there is no accounting database).
MinJobAge=3600
# Fast scheduling and prompt enforcement of --time on a test cluster.
SchedulerParameters=sched_interval=1
OverTimeLimit=0
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$(nproc) RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
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
  if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null || pid_of munged >/dev/null; then
    die "already running in $STATE (scripts/slurm-local.sh down $STATE first)"
  fi
  # The state folder must be traversable by the munge user.
  mkdir -p "$STATE" && chmod 0755 "$STATE"
  mkdir -p "$PIDS" "$STATE/log" "$STATE/ctld" "$STATE/spool/$(hostname -s)"
  chmod 0755 "$PIDS" "$STATE/log"
  # A fresh cluster: no jobs from a previous life.
  find "$STATE/ctld" "$STATE/spool/$(hostname -s)" -mindepth 1 -delete
  STARTING=1
  write_config
  start_munged
  export SLURM_CONF="$CONF"
  /usr/sbin/slurmctld -f "$CONF"
  wait_for 20 slurmctld scontrol ping
  /usr/sbin/slurmd -f "$CONF"
  wait_for 30 "the node to become idle" node_idle
  STARTING=0
  echo "export SLURM_CONF=$CONF"
}

node_idle() { sinfo -h -N -o '%t' | grep -Eq '^(idle|mix|alloc)'; }

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
  for name in "${DAEMONS[@]}"; do
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
  local name pid running=0
  for name in munged slurmctld slurmd; do
    if pid="$(pid_of "$name")"; then echo "$name: running (pid $pid)"; running=$((running + 1));
    else echo "$name: stopped"; fi
  done
  if [ "$running" -eq 3 ]; then
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
