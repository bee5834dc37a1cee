#!/usr/bin/env bash
# A real single-node SLURM on this machine, for testing the SLURM launcher end to end (Debian 12, root):
#   scripts/slurm_local.sh up       install if missing, start munge, MariaDB, slurmdbd, slurmctld, slurmd (idempotent)
#   scripts/slurm_local.sh status   sinfo, squeue and the daemons `up` started
#   scripts/slurm_local.sh down     cancel the jobs, stop only the daemons `up` started
# One partition, `debug`, with this machine's cores and memory and no GPUs. Accounting runs through slurmdbd
# and MariaDB because without it sacct fails, and submitit then never learns that a killed job ended.
# State (logs, spool, the list of started daemons) lives in ${SLURM_LOCAL_STATE:-${TMPDIR:-/tmp}/ddescent-slurm};
# the configs go to /etc/slurm, where the client commands (sbatch, sacct, ...) look for them.
set -euo pipefail

S=${SLURM_LOCAL_STATE:-${TMPDIR:-/tmp}/ddescent-slurm}
STARTED=$S/started           # one line per daemon we started: "<pidfile> <process name>"
MARK="# written by ddescent scripts/slurm_local.sh"
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

say() { echo "slurm_local: $*" >&2; }
die() { say "$*"; exit 1; }

# The daemon named in a pid file is running (and is that program, not a reused pid).
alive() {
  local pf=$1 name=$2 pid
  [ -s "$pf" ] || return 1
  pid=$(cat "$pf" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

wait_for() {  # wait_for <seconds> <shell test>
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt "$deadline" ]; do
    eval "$2" >/dev/null 2>&1 && return 0
    sleep 0.3
  done
  say "gave up after $1 s waiting for: $2"
  return 1
}

# start <pidfile> <name> <ready test> <command...>: start unless the daemon already runs or the service already
# answers (someone else's daemon: used, never recorded, so `down` leaves it alone).
start() {
  local pf=$1 name=$2 ready=$3; shift 3
  if alive "$pf" "$name" || eval "$ready" >/dev/null 2>&1; then
    wait_for 60 "$ready"
    return 0
  fi
  rm -f "$pf"
  "$@"
  wait_for 60 "alive $pf $name" || { say "$name did not start; see $S/log"; return 1; }
  grep -qx "$pf $name" "$STARTED" 2>/dev/null || echo "$pf $name" >> "$STARTED"
  wait_for 60 "$ready" || { say "$name started but is not answering; see $S/log"; return 1; }
}

install_packages() {
  local missing=0 cmd
  for cmd in slurmctld slurmd sbatch munged slurmdbd mariadbd; do command -v "$cmd" >/dev/null || missing=1; done
  [ "$missing" = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "needs root to install ${PACKAGES[*]}"
  say "installing ${PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A machine whose package lists are missing or stale needs one update first.
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$S/log/apt.log" 2>&1 ||
    { apt-get update -q >>"$S/log/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$S/log/apt.log" 2>&1; } ||
    die "apt-get install failed; see $S/log/apt.log"
}

write_config() {
  local f
  for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do  # never overwrite a real cluster's config
    [ -e "$f" ] && ! grep -qxF "$MARK" "$f" && die "$f exists and is not ours; refusing to replace it"
  done
  install -d /etc/slurm
  local node
  # The node as slurmd sees the hardware (CPUs, sockets, RealMemory), named localhost.
  node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*/NodeName=localhost/')
  umask 077  # slurmdbd refuses a config that others can read
  cat > /etc/slurm/slurmdbd.conf.tmp <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$S/log/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=ddescent_slurm_acct
EOF
  mv /etc/slurm/slurmdbd.conf.tmp /etc/slurm/slurmdbd.conf
  umask 022
  cat > /etc/slurm/slurm.conf.tmp <<EOF
$MARK
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
# Short-lived credentials and a fast scheduler loop: a requeued job starts again in seconds, not 30-45 s.
AuthInfo=cred_expire=5
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
# Seconds between SIGTERM and SIGKILL on cancel or requeue (submitit ignores SIGTERM).
KillWait=5
MailProg=/bin/true
StateSaveLocation=$S/spool/ctld
SlurmdSpoolDir=$S/spool/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
# No cgroups here: track processes by parentage, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
# Reject at submission a job that asks for more CPUs or memory than the node has; by default it would wait in
# the queue forever (reason PartitionConfig) and the launcher with it.
EnforcePartLimits=ALL
$node State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s /etc/slurm/slurm.conf.tmp /etc/slurm/slurm.conf; then
    rm /etc/slurm/slurm.conf.tmp
  else
    mv /etc/slurm/slurm.conf.tmp /etc/slurm/slurm.conf
    if alive /run/slurmctld.pid slurmctld; then CHANGED=1; fi
  fi
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (it starts system daemons)"
  install -d "$S" "$S/log" "$S/spool/ctld" "$S/spool/d"
  install_packages
  CHANGED=0
  write_config

  # munge: the Debian package creates the key; make one if it is missing.
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -f && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 755 /run/munge
  start /run/munge/munged.pid munged "munge -n | unmunge" runuser -u munge -- munged

  # MariaDB on its unix socket only: nothing listens on the network.
  install -d -o mysql -g mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >>"$S/log/mariadb.log" 2>&1
  start /run/mysqld/mysqld.pid mariadbd "mariadb -e 'select 1'" \
    setsid -f sh -c "exec mariadbd --user=mysql --skip-networking --pid-file=/run/mysqld/mysqld.pid \
      </dev/null >>'$S/log/mariadb.log' 2>&1"

  # Job ids restart at 1 with a fresh controller state; old accounting rows with the same ids would answer
  # sacct (and submitit) for the new jobs. So a fresh state starts a fresh accounting database too.
  if [ ! -e "$S/spool/ctld/job_state" ] && ! alive /run/slurmdbd.pid slurmdbd; then
    mariadb -e "DROP DATABASE IF EXISTS ddescent_slurm_acct"
  fi
  start /run/slurmdbd.pid slurmdbd "sacctmgr -n list cluster" slurmdbd
  start /run/slurmctld.pid slurmctld "scontrol ping | grep -q UP" slurmctld
  start /run/slurmd.pid slurmd "sinfo -h -n localhost -o %t | grep -Eqx 'idle|mix|alloc|comp'" slurmd -N localhost
  # A config that changed under running daemons (a newer version of this script): make them read it.
  if [ "$CHANGED" = 1 ]; then scontrol reconfigure; fi
  sinfo
}

down() {
  [ -s "$STARTED" ] || { say "nothing to stop"; return 0; }
  # Cancel every job first, so no slurmstepd (and no job's processes) outlive slurmd.
  if grep -q ' slurmctld$' "$STARTED" && alive /run/slurmctld.pid slurmctld; then
    squeue -h -o %A 2>/dev/null | xargs -r scancel --full --quiet 2>/dev/null || true
    # shellcheck disable=SC2016  # expanded by wait_for's eval, at each try
    wait_for 60 '[ -z "$(squeue -h 2>/dev/null)" ]' || say "jobs still listed; stopping anyway"
  fi
  local pf name pid
  tac "$STARTED" | while read -r pf name; do
    alive "$pf" "$name" || continue
    pid=$(cat "$pf")
    kill "$pid"
    wait_for 30 "! kill -0 $pid" || { say "SIGKILL $name ($pid)"; kill -9 "$pid" 2>/dev/null || true; }
    say "stopped $name ($pid)"
  done
  rm -f "$STARTED"
}

status() {
  if [ -s "$STARTED" ]; then
    local pf name
    while read -r pf name; do
      if alive "$pf" "$name"; then echo "$name: running (pid $(cat "$pf"))"; else echo "$name: not running"; fi
    done < "$STARTED"
  else
    echo "no daemons started by slurm_local.sh (state: $S)"
  fi
  if command -v sinfo >/dev/null && sinfo; then squeue; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
