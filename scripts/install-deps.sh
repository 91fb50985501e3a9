#!/usr/bin/env bash
# Installs and starts what cinderblock and its tests need on a Debian (bookworm) machine:
# cinder's control plane and glance-api (for end-to-end tests and the quick-start stack), the iSCSI tools, and
# the services (RabbitMQ, MariaDB). Safe to run again: it installs only what is missing and starts
# only what is not running.
set -euo pipefail

PACKAGES=(
  python3-cinder cinder-api cinder-scheduler cinder-volume cinder-backup python3-cinderclient
  glance-api nova-api dmidecode  # dmidecode: os-brick asks it for the system uuid where sysfs has no DMI (cinder-backup)
  python3-os-brick python3-oslo.messaging python3-oslo.concurrency
  sqlite3 tgt libiscsi-bin nvme-cli qemu-utils qemu-block-extra lvm2 thin-provisioning-tools rabbitmq-server mariadb-server
  python3 make g++ xfsprogs btrfs-progs util-linux fio valgrind xxhash
  debootstrap dpkg-repack podman runc
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  # Debian starts packaged daemons on install; cinder-volume must not run beside cinderblock, and
  # the API and scheduler are started by whoever needs them. policy-rc.d exit 101 = "don't start".
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [[ -e $policy ]] && had_policy=1
  if ((!had_policy)); then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; fi
  trap '((had_policy)) || rm -f '"$policy" EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's packaged cinder-volume must stay stopped: it would serve the same queues.
if pgrep -f '/usr/bin/cinder-volume' >/dev/null; then
  echo "install-deps: warning: cinder-volume is running; stop it before starting cinderblock on the same host" >&2
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5672; then
  echo "install-deps: starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
  port_open 5672 || { echo "install-deps: RabbitMQ did not start; see /var/log/rabbitmq" >&2; exit 1; }
fi

if ! port_open 3306; then
  echo "install-deps: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do port_open 3306 && break; sleep 1; done
  port_open 3306 || { echo "install-deps: MariaDB did not start; see /var/log/mysql" >&2; exit 1; }
fi
echo "install-deps: ready"
