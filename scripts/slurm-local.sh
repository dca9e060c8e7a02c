#!/usr/bin/env bash
# scripts/slurm-local.sh start|stop|status
#
# A single-node Slurm cluster on this machine, for the Slurm executor's tests (SlurmExecutorTests) and for
# trying `pipeline run --executor slurm` without a cluster. `start` installs munge and Slurm with apt-get
# when they are missing (as root), writes /etc/slurm/slurm.conf for one node with this machine's CPUs and
# memory (from `slurmd -C`), and starts munged, slurmctld and slurmd; it returns once the node takes jobs.
# It is idempotent: a running cluster is left as it is. `stop` stops the daemons it started (by their pid
# files); `status` exits 0 only when the controller answers and the node is up.
#
# There is no slurmdbd: accounting storage is off and finished jobs are written by jobcomp/filetxt, so
# `sacct --completion` (and, while the controller still holds a job, `squeue --states=all` and
# `scontrol show job`) give final states. State, spool and logs are under $SLURM_LOCAL_DIR
# (default /var/tmp/slurm-local). An /etc/slurm/slurm.conf that this script did not write is never replaced.
set -euo pipefail

DIR="${SLURM_LOCAL_DIR:-/var/tmp/slurm-local}"
CONF=/etc/slurm/slurm.conf
MARK="# written by scripts/slurm-local.sh"

die() { echo "slurm-local: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "needs root (or sudo) to $*"
  fi
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
     && command -v munged >/dev/null; then
    return
  fi
  echo "slurm-local: installing slurm-wlm munge (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq || die "apt-get update failed"
  as_root apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || die "apt-get install slurm-wlm munge failed"
}

# Runs a command that starts a daemon without the caller's descriptors above 2: a daemon keeps what it inherits for
# its whole life, such as the lock file that `flock` holds for the caller, or a pipe a test runner reads to its end.
without_inherited_fds() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd="${fd##*/}"
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    "$@"
  )
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  munge_works && return
  [ -s /etc/munge/munge.key ] || as_root /usr/sbin/mungekey --create >/dev/null 2>&1 \
    || as_root create-munge-key >/dev/null 2>&1 || die "cannot create /etc/munge/munge.key"
  as_root install -d -o munge -g munge -m 0755 /run/munge
  as_root install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  # --force: a socket or pid file left by a munged that was killed does not stop a new one.
  without_inherited_fds as_root runuser -u munge -- /usr/sbin/munged --force || die "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do munge_works && return; sleep 0.1; done
  die "munged started but does not answer (see /var/log/munge/munged.log)"
}

write_config() {
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not replacing it (stop here, or move it away)"
  fi
  local host node cpus sockets cores threads memory
  host="$(hostname -s)"
  node="$(slurmd -C | head -1)" || die "slurmd -C failed"
  cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")"
  sockets="$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$node")"
  cores="$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$node")"
  threads="$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$node")"
  # A little under what the node reports, so that the node never registers with less than configured.
  memory="$(( $(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node") * 95 / 100 ))"
  [ -n "$cpus" ] && [ -n "$memory" ] || die "cannot read CPUs and memory from 'slurmd -C': $node"
  as_root install -d -m 0755 "$DIR" "$DIR/state" "$DIR/spool" /etc/slurm
  local old=""
  [ -e "$CONF" ] && old="$(cat "$CONF")"
  as_root tee "$CONF" >/dev/null <<EOF
$MARK: a single-node cluster on this machine.
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# No cgroups: processes are tracked through their parent pids.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: finished jobs go to a text file that 'sacct --completion' reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
# FIFO, and a scheduling pass at every submission and completion: a dependent job starts about 1 s
# after its dependency ends.
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# srun wires the tasks of an MPI step (a train node with ranks > 1) through PMIx.
MpiDefault=pmix
ReturnToService=2
# Quick turnarounds for tests: a cancelled job is killed 2 s after SIGTERM.
KillWait=2
MinJobAge=300
MaxArraySize=1001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  # Daemons running with another configuration (an older version of this script) start again with this one.
  if [ -n "$old" ] && [ "$old" != "$(cat "$CONF")" ]; then stop >/dev/null; fi
}

# Whether the pid file $1 names a live process called $2 (a stale file may name another process by now).
pid_alive() { [ -s "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }

status() {
  scontrol ping 2>/dev/null | grep -q 'is UP' || { echo "slurm-local: the controller does not answer"; return 1; }
  local state
  state="$(node_state)"
  case "$state" in
    idle*|mixed*|allocated*|completing*) echo "slurm-local: up (node $state)"; return 0;;
    *) echo "slurm-local: the controller is up but the node is '${state:-unknown}'"; return 1;;
  esac
}

start() {
  install_packages
  start_munge
  write_config
  if ! pid_alive "$DIR/slurmctld.pid" slurmctld; then
    without_inherited_fds as_root slurmctld || die "slurmctld did not start (see $DIR/slurmctld.log)"
  fi
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
  scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer (see $DIR/slurmctld.log)"
  if ! pid_alive "$DIR/slurmd.pid" slurmd; then
    without_inherited_fds as_root slurmd || die "slurmd did not start (see $DIR/slurmd.log)"
  fi
  local state=""
  for _ in $(seq 150); do
    state="$(node_state)"
    case "$state" in
      idle*|mixed*|allocated*|completing*) echo "slurm-local: up (node $(hostname -s), $state)"; return 0;;
      down*|drain*) as_root scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true;;
    esac
    sleep 0.2
  done
  die "the node did not come up (state '${state:-unknown}'; see $DIR/slurmd.log and $DIR/slurmctld.log)"
}

stop() {
  local daemon f
  for daemon in slurmd slurmctld; do
    f="$DIR/$daemon.pid"
    if pid_alive "$f" "$daemon"; then
      local pid
      pid="$(cat "$f")"
      as_root kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  echo "slurm-local: stopped (munged is left running)"
}

case "${1:-}" in
  start) start;;
  stop) stop;;
  status) status;;
  *) echo "usage: scripts/slurm-local.sh start|stop|status" >&2; exit 2;;
esac
