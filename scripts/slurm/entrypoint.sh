#!/bin/bash
# PID 1's child in every container of the test Slurm cluster (tini is PID 1).
#   mltrain-slurm-entrypoint ctld   MUNGE, MariaDB, slurmdbd, slurmctld and sshd (the login host)
#   mltrain-slurm-entrypoint node   MUNGE and slurmd
# The cluster's files come from /etc/mltrain-slurm (scripts/slurm_cluster.sh writes them on the
# host, mounted read-only): slurm.conf, slurmdbd.conf, munge.key, and for the login host its ssh
# host key and authorized_keys. They are copied with the owners and modes the daemons demand.
# Daemons run in the foreground and log to /var/log/slurm; the container ends when one of them does.
set -euo pipefail
role="${1:?usage: mltrain-slurm-entrypoint ctld|node}"
src=/etc/mltrain-slurm
log=/var/log/slurm

install -m 0644 "$src/slurm.conf" /etc/slurm/slurm.conf
install -o munge -g munge -m 0400 "$src/munge.key" /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
runuser -u munge -- munged

pids=()
wait_for() {  # wait_for WHAT TRIES COMMAND...: retries COMMAND every 0.1 s
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "mltrain-slurm: $what did not come up; see $log" >&2
  return 1
}

case "$role" in
  ctld)
    install -m 0600 "$src/slurmdbd.conf" /etc/slurm/slurmdbd.conf
    install -m 0600 "$src/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
    install -m 0600 "$src/authorized_keys" /root/.ssh/authorized_keys
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    mariadbd --user=mysql >"$log/mariadb.log" 2>&1 &
    pids+=($!)
    wait_for MariaDB 200 mariadb -u root -e 'SELECT 1'
    slurmdbd -D &
    pids+=($!)
    wait_for slurmdbd 300 sacctmgr -n list cluster
    /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/ssh_host_ed25519_key -o PasswordAuthentication=no \
      -o PermitRootLogin=prohibit-password 2>"$log/sshd.log" &
    pids+=($!)
    slurmctld -D -L "$log/slurmctld.log" &
    pids+=($!)
    ;;
  node)
    # A slurmd that finds no controller retries only every ten seconds: wait for it first.
    wait_for slurmctld 600 sh -c 'scontrol ping | grep -q UP'
    slurmd -D -L "$log/slurmd.log" &
    pids+=($!)
    ;;
  *) echo "mltrain-slurm: unknown role $role (ctld or node)" >&2; exit 2 ;;
esac

trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
set +e
wait -n "${pids[@]}"
rc=$?
echo "mltrain-slurm: a daemon of role $role ended (exit $rc); stopping the others" >&2
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit "$rc"
