#!/usr/bin/env bash
# A real Slurm cluster on this machine: one slurmctld and N slurmd "nodes" (nid001..), on loopback,
# for tests and the main job. Needs root, Debian's slurmctld/slurmd/slurm-client and PMIx plugin.
#
#   slurm-cluster.sh start [--nodes N] [--cpus C] [--id K] [--owner-pid PID] [--plugstack FILE]
#                          [--spank 'optional /path/plugin.so args'] [--conf 'Key=Value']
#       Starts a cluster, waits until every node is idle, and prints on stdout the environment a
#       client needs (`eval "$(slurm-cluster.sh start)"`): SLURM_CONF, STRUN_CLUSTER_ID,
#       STRUN_CLUSTER_DIR, STRUN_CLUSTER_SHARED (a directory every node sees: /tmp is private per
#       node), STRUN_CLUSTER_NODELIST. Progress goes to stderr.
#   slurm-cluster.sh stop [--id K]      kills the daemons and every process of their jobs, removes files
#   slurm-cluster.sh status [--id K]    prints the state of the cluster, exit 1 when it is not running
#   slurm-cluster.sh kill-node NAME [--id K]
#       a node failure: SIGKILLs the node's slurmd and every process of its jobs at once (its cgroup),
#       so slurmctld stops hearing from it; the node turns DOWN after SlurmdTimeout.
#   slurm-cluster.sh restart-node NAME [--id K]   starts a killed node's slurmd again
#   slurm-cluster.sh run [start options] -- COMMAND...
#       starts a cluster, runs COMMAND with its environment, stops the cluster however COMMAND ends,
#       and exits with COMMAND's status.
#
# Several clusters can run side by side: cluster K (0..7) lives in /var/tmp/strun-cluster-K and uses
# ports 16817+100K (slurmctld), 16818+100K (SlurmdPort) and 17001+100K.. (one per node). Without
# --id start takes the first free K (it ignores STRUN_CLUSTER_ID, so a cluster can be started from
# inside another's environment); with --id it waits up to STRUN_CLUSTER_WAIT seconds (120) for K.
# stop/status find the cluster from --id, STRUN_CLUSTER_ID or SLURM_CONF.
#
# Clean-up does not depend on the caller: a keeper process holds the cluster's lock for its lifetime
# and, given --owner-pid, stops the cluster as soon as that process is gone (a crashed or killed
# test). A cluster whose keeper died (machine or script killed) is stale: the next start that picks
# its K removes it first. Every daemon runs in the cluster's cgroup, so their jobs' processes are
# killed with them even if they detached; each slurmd runs in its own mount namespace with a private
# tmpfs /tmp (Slurm's PMIx plugin keeps per-step files in /tmp that would collide between nodes), so
# nothing stays mounted once its processes are gone.
set -euo pipefail

self=$(readlink -f "$0")
repo_root=$(cd "$(dirname "$self")/../.." && pwd)
base_dir=${STRUN_CLUSTER_BASE:-/var/tmp}
max_clusters=8

log() { echo "slurm-cluster: $*" >&2; }

# Runs inside a node's own mount namespace: a private tmpfs /tmp (PMIx's per-step files collide
# between nodes otherwise), but the directories the jobs need -- the repository (binaries, scripts,
# build tree), the caller's working directory and STRUN_CLUSTER_KEEP_PATHS -- stay visible at their
# paths even when they lie under /tmp (a CI checkout in /tmp, say).
#   node_slurmd MNTNS_FILE CONF NODE HOLD_DIR KEEP_PATH...
node_slurmd() {
  local mntns=$1 conf=$2 name=$3 hold=$4
  shift 4
  local p i=0 kept=()
  for p in "$@"; do
    case "$p" in /tmp/*) ;; *) continue ;; esac
    [ -d "$p" ] || continue
    mkdir -p "$hold/$i"
    mount --rbind "$p" "$hold/$i"
    kept+=("$p")
    i=$((i + 1))
  done
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  i=0
  for p in "${kept[@]}"; do
    mkdir -p "$p"
    mount --rbind "$hold/$i" "$p"
    umount -l "$hold/$i"
    i=$((i + 1))
  done
  readlink /proc/self/ns/mnt >"$mntns"
  exec slurmd -D -f "$conf" -N "$name"
}
die() { log "error: $*"; exit 1; }

cluster_dir() { echo "$base_dir/strun-cluster-$1"; }
lock_file() { echo "$base_dir/strun-cluster-$1.lock"; }

# The cgroup v2 hierarchy, where one is mounted and writable (pure v2 or the hybrid 'unified' tree).
cgroup_root() {
  local r
  [ "${STRUN_CLUSTER_NO_CGROUP:-0}" = 1 ] && return 1
  for r in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    if [ -f "$r/cgroup.procs" ] && [ -f "$r/cgroup.controllers" ] && [ -w "$r" ]; then
      echo "$r"
      return 0
    fi
  done
  return 1
}

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# The K of the cluster meant by --id, STRUN_CLUSTER_ID or SLURM_CONF.
resolve_id() {
  local id=${1:-${STRUN_CLUSTER_ID:-}}
  if [ -z "$id" ] && [ -n "${SLURM_CONF:-}" ]; then
    case "$SLURM_CONF" in
      "$base_dir"/strun-cluster-*/slurm.conf) id=${SLURM_CONF#"$base_dir"/strun-cluster-}; id=${id%/slurm.conf} ;;
    esac
  fi
  [ -n "$id" ] || die "which cluster? pass --id K or set STRUN_CLUSTER_ID (printed by 'start')"
  [[ "$id" =~ ^[0-7]$ ]] || die "cluster id '$id' must be a number from 0 to 7"
  echo "$id"
}

# Pids of every process whose parent chain reaches one of the given pids (themselves included).
descendants() {
  local -A parent=() keep=()
  local p pp
  while read -r p pp; do parent[$p]=$pp; done < <(ps -e -o pid=,ppid=)
  for p in "$@"; do keep[$p]=1; done
  local changed=1
  while ((changed)); do
    changed=0
    for p in "${!parent[@]}"; do
      if [ -z "${keep[$p]:-}" ] && [ -n "${keep[${parent[$p]}]:-}" ]; then keep[$p]=1; changed=1; fi
    done
  done
  echo "${!keep[@]}"
}

# Kills everything the cluster in $1 started. With a cgroup, that is the cgroup's whole content;
# without, the daemons, their descendants and every process in a node's mount namespace.
kill_cluster_processes() {
  local dir=$1 cg
  cg=$(cat "$dir/run/cgroup" 2>/dev/null || true)
  if [ -n "$cg" ] && [ -d "$cg" ]; then
    echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      grep -q '^populated 1' "$cg/cgroup.events" 2>/dev/null || break
      sleep 0.05
    done
    local sub
    for sub in "$cg"/*/; do [ -d "$sub" ] && rmdir "$sub" 2>/dev/null || true; done
    rmdir "$cg" 2>/dev/null || log "warning: cgroup $cg still has processes"
  fi
  # Without a cgroup: the daemons and their descendants (with one, these are already gone).
  local pids=() f ns p
  for f in "$dir"/run/*.pid; do
    [ -f "$f" ] || continue
    case "$f" in */keeper.pid) continue ;; esac
    p=$(cat "$f" 2>/dev/null || true)
    alive "$p" && pids+=("$p")
  done
  local victims=()
  ((${#pids[@]})) && read -r -a victims <<<"$(descendants "${pids[@]}")"
  # Processes in a node's mount namespace (slow to scan: only without a cgroup).
  if [ -z "$cg" ]; then
    for f in "$dir"/run/*.mntns; do
      [ -f "$f" ] || continue
      ns=$(cat "$f")
      for p in $(find /proc/[0-9]*/ns -maxdepth 1 -name mnt -lname "${ns//[/\\[}" 2>/dev/null); do
        p=${p#/proc/}
        victims+=("${p%%/*}")
      done
    done
  fi
  # srun clients of this cluster would wait for their dead steps forever. srun and its helper
  # child both have comm 'srun' and the cluster's SLURM_CONF in their environment.
  local conf_entry="SLURM_CONF=$dir/slurm.conf"
  for p in $(pgrep -x srun || true); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "$conf_entry" && victims+=("$p")
  done
  if ((${#victims[@]})); then
    kill -KILL "${victims[@]}" 2>/dev/null || true
  fi
}

# Stops cluster K: its processes, its keeper (unless we are the keeper), its files.
stop_cluster() {
  local id=$1 dir keeper
  dir=$(cluster_dir "$id")
  [ -d "$dir" ] || return 0
  kill_cluster_processes "$dir"
  keeper=$(cat "$dir/run/keeper.pid" 2>/dev/null || true)
  if [ "$keeper" != "$$" ] && alive "$keeper"; then
    kill -TERM "$keeper" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

# The start time of a live process (field 22 of /proc/PID/stat), to tell it from a later one with
# its pid; nothing for a zombie or no process.
start_time() { awk '{sub(/^.*\) /, ""); if ($1 != "Z") print $20}' "/proc/$1/stat" 2>/dev/null; }
alive() { [ -n "$1" ] && [ -n "$(start_time "$1")" ]; }

# Runs in the background for the cluster's lifetime holding the lock (fd 9). Stops the cluster when
# the owner process is gone.
keeper_main() {
  local id=$1 owner=$2 owner_start=$3 dir
  dir=$(cluster_dir "$id")
  echo $$ >"$dir/run/keeper.pid"
  trap 'exit 0' TERM
  if [ "$owner" = 0 ]; then
    while [ -d "$dir" ]; do sleep 5 9>&- & wait $! || true; done
    exit 0
  fi
  while [ -d "$dir" ] && [ "$(start_time "$owner")" = "$owner_start" ]; do
    sleep 0.5 9>&- & wait $! || true
  done
  if [ -d "$dir" ]; then
    log "owner $owner is gone: stopping cluster $id"
    stop_cluster "$id"
  fi
}

write_conf() {
  local id=$1 dir=$2 nodes=$3 cpus=$4 plugstack=$5
  shift 5
  local ctld_port=$((16817 + 100 * id)) slurmd_port=$((16818 + 100 * id)) node_port=$((17001 + 100 * id))
  local last
  last=$(printf '%03d' "$nodes")
  cat >"$dir/slurm.conf" <<EOF
# Generated by tests/cluster/slurm-cluster.sh for local cluster $id.
ClusterName=strun$id
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPidFile=$dir/run/slurmctld.daemon.pid
SlurmdPidFile=$dir/run/slurmd-%n.daemon.pid
PlugStackConfig=$plugstack
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The configured CPUs and memory count, not what this machine has: the nodes share its cores.
SlurmdParameters=config_overrides
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Short enough that scancel of a job that ignores SIGTERM does not slow the tests down.
KillWait=5
EOF
  local line
  for line in "$@"; do echo "$line" >>"$dir/slurm.conf"; done
  cat >>"$dir/slurm.conf" <<EOF
NodeName=nid[001-$last] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$node_port-$((node_port + nodes - 1))] CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=normal Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
EOF
}

# Starts one daemon in the background: in cgroup $cg (when there is one), its pid in run/$name.pid.
# The wrapper shell writes its own pid and execs, so that pid is the daemon's.
spawn_daemon() {
  local dir=$1 cg=$2 name=$3
  shift 3
  local join=""
  [ -n "$cg" ] && join="echo \$\$ >'$cg/$name/cgroup.procs' &&"
  [ -n "$cg" ] && mkdir -p "$cg/$name"
  # shellcheck disable=SC2016
  setsid sh -c "$join echo \$\$ >'$dir/run/$name.pid' && exec \"\$@\"" sh "$@" \
    </dev/null >>"$dir/log/$name.out" 2>&1 9>&- &
}

start_cluster() {
  local id="" nodes=4 cpus=4 owner=0 plugstack="" spank=() extra=()
  while (($#)); do
    case "$1" in
      --id) id=$2; shift 2 ;;
      --nodes) nodes=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;;
      --owner-pid) owner=$2; shift 2 ;;
      --plugstack) plugstack=$2; shift 2 ;;
      --spank) spank+=("$2"); shift 2 ;;
      --conf) extra+=("$2"); shift 2 ;;
      *) die "start: unknown option '$1' (see the top of $self)" ;;
    esac
  done
  [[ "$nodes" =~ ^[0-9]+$ ]] && ((nodes >= 1 && nodes <= 16)) || die "--nodes $nodes: must be 1 to 16"
  [[ "$cpus" =~ ^[0-9]+$ ]] && ((cpus >= 1)) || die "--cpus $cpus: must be a positive number"
  [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as any user and mounts a private /tmp per node)"
  local tool
  for tool in slurmctld slurmd sinfo srun unshare flock ss; do
    command -v "$tool" >/dev/null || die "'$tool' not found: run ./etc/setup/install-deps.sh"
  done
  [ -z "$plugstack" ] || [ -f "$plugstack" ] || die "--plugstack $plugstack: no such file"
  [ "$owner" = 0 ] || alive "$owner" || die "--owner-pid $owner: no such process"
  mkdir -p "$base_dir"

  # Take a cluster slot: its lock, then remove what a dead cluster left there.
  local candidates k wait_s=${STRUN_CLUSTER_WAIT:-120}
  if [ -n "$id" ]; then
    [[ "$id" =~ ^[0-7]$ ]] || die "cluster id '$id' must be a number from 0 to 7"
    candidates=("$id")
  else
    candidates=(0 1 2 3 4 5 6 7)
  fi
  id=""
  for k in "${candidates[@]}"; do
    exec 9>"$(lock_file "$k")"
    if ((${#candidates[@]} == 1)); then
      flock -n 9 || {
        log "cluster $k is in use; waiting up to ${wait_s}s for it (STRUN_CLUSTER_WAIT)"
        flock -w "$wait_s" 9 || die "cluster $k is still in use after ${wait_s}s"
      }
    else
      flock -n 9 || continue
    fi
    if [ -d "$(cluster_dir "$k")" ]; then
      log "removing stale cluster $k left by an earlier run"
      stop_cluster "$k"
    fi
    local busy="" p
    for p in $((16817 + 100 * k)) $((16818 + 100 * k)) $(seq $((17001 + 100 * k)) $((17000 + 100 * k + nodes))); do
      port_in_use "$p" && busy="$busy $p"
    done
    if [ -n "$busy" ]; then
      exec 9>&-
      ((${#candidates[@]} == 1)) && die "cluster $k: port(s)$busy already in use by another program"
      continue
    fi
    id=$k
    break
  done
  [ -n "$id" ] || die "no free cluster slot (0-7 are all in use or their ports are taken)"

  local dir
  dir=$(cluster_dir "$id")
  mkdir -p "$dir"/{state,spool,log,run,shared}
  chmod 1777 "$dir/shared"
  if [ -z "$plugstack" ]; then
    plugstack=$dir/plugstack.conf
    : >"$plugstack"
    local s
    for s in "${spank[@]}"; do echo "$s" >>"$plugstack"; done
  fi
  write_conf "$id" "$dir" "$nodes" "$cpus" "$plugstack" "${extra[@]}"

  local owner_start=""
  [ "$owner" = 0 ] || owner_start=$(start_time "$owner")
  setsid "$self" __keeper "$id" "$owner" "$owner_start" </dev/null >>"$dir/log/keeper.out" 2>&1 &
  exec 9>&-

  local cg=""
  if cg=$(cgroup_root) && mkdir -p "$cg/strun-cluster-$id" 2>/dev/null; then
    cg=$cg/strun-cluster-$id
    echo "$cg" >"$dir/run/cgroup"
  else
    cg=""
    log "no writable cgroup v2: clean-up falls back to process trees and mount namespaces"
  fi

  local conf=$dir/slurm.conf n name keep=${STRUN_CLUSTER_KEEP_PATHS:-}
  spawn_daemon "$dir" "$cg" slurmctld slurmctld -D -c -f "$conf"
  for ((n = 1; n <= nodes; n++)); do
    name=$(printf 'nid%03d' "$n")
    spawn_daemon "$dir" "$cg" "$name" unshare --mount --propagation private \
      "$self" __slurmd "$dir/run/$name.mntns" "$conf" "$name" "$dir/run/hold-$name" \
      "$repo_root" "$PWD" ${keep//:/ }
  done

  # Ready when every node is idle. Daemons that die on start-up end the wait at once.
  local deadline=$((SECONDS + ${STRUN_CLUSTER_START_TIMEOUT:-60})) idle=0 states
  export SLURM_CONF=$conf
  while ((SECONDS < deadline)); do
    states=$(sinfo -h -N -o '%N %T' 2>/dev/null || true)
    idle=$(grep -c ' idle$' <<<"$states" || true)
    ((idle == nodes)) && break
    for name in slurmctld $(for ((n = 1; n <= nodes; n++)); do printf 'nid%03d ' "$n"; done); do
      local pid
      pid=$(cat "$dir/run/$name.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && ! alive "$pid"; then
        log "$name exited during start-up; its log:"
        tail -n 20 "$dir/log/$name.out" "$dir"/log/slurm*"${name#slurmctld}"*.log >&2 2>/dev/null || true
        stop_cluster "$id"
        exit 1
      fi
    done
    sleep 0.1
  done
  if ((idle != nodes)); then
    log "only $idle of $nodes nodes became idle within ${STRUN_CLUSTER_START_TIMEOUT:-60}s:"
    echo "$states" >&2
    tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
    stop_cluster "$id"
    exit 1
  fi
  log "cluster $id up: $(nodelist_of "$nodes") in ${SECONDS}s (files in $dir)"
  print_env "$id" "$nodes"
}

# nid[001-004], or nid001 for one node (as scontrol prints them).
nodelist_of() {
  if (($1 == 1)); then echo nid001; else echo "nid[001-$(printf '%03d' "$1")]"; fi
}

print_env() {
  local id=$1 nodes=$2 dir
  dir=$(cluster_dir "$id")
  echo "export SLURM_CONF=$dir/slurm.conf"
  echo "export STRUN_CLUSTER_ID=$id"
  echo "export STRUN_CLUSTER_DIR=$dir"
  echo "export STRUN_CLUSTER_SHARED=$dir/shared"
  echo "export STRUN_CLUSTER_NODELIST=$(nodelist_of "$nodes")"
}

status_cluster() {
  local id dir
  id=$(resolve_id "${1:-}")
  dir=$(cluster_dir "$id")
  if ! [ -f "$dir/slurm.conf" ]; then
    echo "cluster $id: not running"
    return 1
  fi
  local keeper
  keeper=$(cat "$dir/run/keeper.pid" 2>/dev/null || true)
  if ! alive "$keeper"; then
    echo "cluster $id: stale (its keeper is gone); the next start or 'stop --id $id' removes it"
    return 1
  fi
  echo "cluster $id: running, files in $dir, keeper pid $keeper"
  SLURM_CONF=$dir/slurm.conf sinfo -N -o '%N %T %c %O' || return 1
  SLURM_CONF=$dir/slurm.conf squeue || true
  local nodes
  nodes=$(grep -c . <<<"$(SLURM_CONF=$dir/slurm.conf sinfo -h -N -o %N)")
  print_env "$id" "$nodes"
}

# The node's cgroup, or its process tree without cgroups: everything is SIGKILLed at once.
kill_node() {
  local id=$1 name=$2 dir cg pid
  dir=$(cluster_dir "$id")
  [ -f "$dir/run/$name.pid" ] || die "kill-node: no node '$name' in cluster $id"
  cg=$(cat "$dir/run/cgroup" 2>/dev/null || true)
  if [ -n "$cg" ] && [ -d "$cg/$name" ]; then
    echo 1 >"$cg/$name/cgroup.kill"
    local i
    for i in $(seq 100); do
      grep -q '^populated 1' "$cg/$name/cgroup.events" 2>/dev/null || break
      sleep 0.05
    done
  else
    pid=$(cat "$dir/run/$name.pid")
    local victims=("$pid") queue=("$pid") p c
    while ((${#queue[@]})); do
      p=${queue[0]}
      queue=("${queue[@]:1}")
      for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do victims+=("$c"); queue+=("$c"); done
    done
    kill -KILL "${victims[@]}" 2>/dev/null || true
  fi
  log "node $name of cluster $id killed"
}

restart_node() {
  local id=$1 name=$2 dir cg="" keep=${STRUN_CLUSTER_KEEP_PATHS:-}
  dir=$(cluster_dir "$id")
  [ -f "$dir/run/$name.pid" ] || die "restart-node: no node '$name' in cluster $id"
  ! alive "$(cat "$dir/run/$name.pid")" || die "restart-node: $name is running"
  cg=$(cat "$dir/run/cgroup" 2>/dev/null || true)
  spawn_daemon "$dir" "$cg" "$name" unshare --mount --propagation private \
    "$self" __slurmd "$dir/run/$name.mntns" "$dir/slurm.conf" "$name" "$dir/run/hold-$name" \
    "$repo_root" "$PWD" ${keep//:/ }
  log "node $name of cluster $id restarted"
}

cmd=${1:-}
shift || true
case "$cmd" in
  kill-node | restart-node)
    [ -n "${1:-}" ] || die "$cmd: expected a node name"
    node=$1
    shift
    id=""
    [ "${1:-}" = --id ] && id=${2:-}
    id=$(resolve_id "$id")
    if [ "$cmd" = kill-node ]; then kill_node "$id" "$node"; else restart_node "$id" "$node"; fi
    ;;
  start) start_cluster "$@" ;;
  stop)
    id=""
    while (($#)); do
      case "$1" in
        --id) id=$2; shift 2 ;;
        *) die "stop: unknown option '$1'" ;;
      esac
    done
    id=$(resolve_id "$id")
    stop_cluster "$id"
    log "cluster $id stopped"
    ;;
  status)
    id=""
    [ "${1:-}" = --id ] && id=${2:-}
    status_cluster "$id"
    ;;
  run)
    opts=()
    while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ "${1:-}" = -- ] || die "run: expected '-- COMMAND...'"
    shift
    (($#)) || die "run: no command after --"
    env_lines=$(start_cluster --owner-pid $$ "${opts[@]}")
    eval "$env_lines"
    trap 'stop_cluster "$STRUN_CLUSTER_ID"; log "cluster $STRUN_CLUSTER_ID stopped"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    rc=0
    "$@" || rc=$?
    exit "$rc"
    ;;
  __keeper) keeper_main "$@" ;;
  __slurmd) node_slurmd "$@" ;;
  *)
    echo "usage: $0 start|stop|status|run ... (options at the top of $self)" >&2
    exit 2
    ;;
esac
