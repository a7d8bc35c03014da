#!/bin/sh
# Runs inside a container of the node image's base while scripts/slurm_cluster.sh builds the
# Slurm node image: installs Debian 12's Slurm (controller, node daemon, client, accounting
# daemon), MUNGE, MariaDB (sacct's store) and OpenSSH (the login host), prepares the accounting
# database, and removes what a cluster must not share (the package's munge key, ssh host keys).
# /opt/mltrain-slurm-src is scripts/slurm/, mounted read-only.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  slurmctld slurmd slurm-client slurmdbd munge mariadb-server openssh-server openssh-client \
  libpmix2 procps iproute2 rsync
install -m 0755 /opt/mltrain-slurm-src/entrypoint.sh /usr/local/sbin/mltrain-slurm-entrypoint
install -m 0644 /opt/mltrain-slurm-src/mariadb.cnf /etc/mysql/mariadb.conf.d/90-mltrain.cnf

# Slurm's PMIx plugin opens libpmix.so, which only the -dev package links; without it every
# daemon logs that it cannot load PMIx and `srun --mpi=pmix` is unavailable.
ln -sf libpmix.so.2 /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so

# The accounting database with the cluster, its account and root's association, made now so that
# a cluster's start does not wait for slurmdbd to create tables. A throwaway MUNGE key and a
# slurmdbd.conf naming localhost serve for this; each cluster brings its own at start.
mkdir -p /run/mysqld /run/munge /var/log/slurm && chown mysql:mysql /run/mysqld && chown munge:munge /run/munge
mariadbd --user=mysql --skip-networking >/tmp/build-mariadb.log 2>&1 &
db=$!
head -c 1024 /dev/urandom > /etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
runuser -u munge -- munged
sed -e 's/^DbdHost=.*/DbdHost=localhost/' -e 's|^LogFile=.*|LogFile=/tmp/build-slurmdbd.log|' \
  /opt/mltrain-slurm-src/slurmdbd.conf.in > /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf
printf 'ClusterName=mltrain\nSlurmctldHost=localhost\nAccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n' \
  > /etc/slurm/slurm.conf
wait_up() {  # wait_up WHAT COMMAND...
  what="$1"; shift; i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 300 ] || { echo "install: $what did not come up"; cat /tmp/build-*.log; exit 1; }
    sleep 0.2
  done
}
wait_up MariaDB mariadb -u root -e 'SELECT 1'
mariadb -u root -e 'CREATE DATABASE IF NOT EXISTS slurm_acct_db'
slurmdbd
wait_up slurmdbd sacctmgr -n list cluster
sacctmgr -i -Q add cluster mltrain >/dev/null
sacctmgr -i -Q add account mltrain description="MLTrain Desktop tests" organization=mltrain >/dev/null
sacctmgr -i -Q add user root account=mltrain >/dev/null
sacctmgr -n -P list associations format=cluster,account,user
kill "$(cat /run/slurmdbd.pid)"
while [ -e /run/slurmdbd.pid ] && kill -0 "$(cat /run/slurmdbd.pid)" 2>/dev/null; do sleep 0.1; done
kill "$db"; wait "$db" || true
munged --stop 2>/dev/null || kill "$(cat /run/munge/munged.pid)"
rm -f /tmp/build-*.log /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf /var/log/munge/*

rm -f /etc/munge/munge.key /etc/ssh/ssh_host_*
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/sshd /root/.ssh
chmod 700 /root/.ssh
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /var/log/apt/* /var/log/dpkg.log
