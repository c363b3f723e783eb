#!/usr/bin/env bash
# Runs one command as root in a throwaway QEMU VM with a chosen cgroup layout,
# and exits with the command's status. The VM boots Debian's kernel
# (linux-image-amd64, unpacked with dpkg -x) with a busybox initramfs that
# mounts this host's root read-only over 9p (the checkout included: nothing
# the VM does reaches the host), tmpfs on /run, /var/tmp, /var/lib and /root,
# a fresh ext4 virtio disk on /tmp and /var/lib/jobworker-test (a real block
# device, for IO limits and O_DIRECT), and cgroups as asked:
#   v2      cgroup2 alone on /sys/fs/cgroup (most hosts: systemd's default)
#   v1      every v1 controller on its own mount, no cgroup2
#   hybrid  the v1 mounts plus cgroup2 on /sys/fs/cgroup/unified (this CI host)
# Software emulation only (-accel tcg): nested KVM hung at boot on this
# machine kind. The console (and the command's output) goes to stderr; a VM
# still running after --timeout seconds is killed (exit 124).
#
# usage: scripts/vm-test.sh [--layout v2|v1|hybrid] [--timeout S] [--memory MiB]
#          [--cpus N] [--disk MiB] [--env NAME=VALUE]... -- command [arg...]
# The command runs in the current directory with this PATH and CI. Kernel and
# initramfs are built once into $JOBWORKER_VM_CACHE (/var/cache/jobworker-vm).
set -euo pipefail

layout=v2 timeout=600 memory=3072 cpus=2 disk=2048
envs=()
while (($#)); do
  case $1 in
    --layout) layout=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "vm-test: unknown option $1 (see the usage in $0)" >&2; exit 64 ;;
  esac
done
case $layout in v2 | v1 | hybrid) ;; *) echo "vm-test: --layout must be v2, v1 or hybrid, not $layout" >&2; exit 64 ;; esac
(($#)) || { echo "vm-test: no command given (… -- command [arg...])" >&2; exit 64; }
[ "$(id -u)" = 0 ] || { echo "vm-test: must run as root (qemu reads the whole root over 9p)" >&2; exit 64; }

cache=${JOBWORKER_VM_CACHE:-/var/cache/jobworker-vm}
log() { printf 'vm-test: %s\n' "$*" >&2; }

# The modules the initramfs loads, in dependency order (no depmod/modprobe in
# it): virtio and 9p for the root (the issue's order), virtio_blk and ext4 for the disk.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  netfs fscache 9pnet 9pnet_virtio 9p virtio_blk crc16 mbcache jbd2 crc32c_generic ext4)

# The VM's /init. A change to it rebuilds the initramfs (its hash names it).
read -r -d '' INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "vm-init: $*" >&2; reboot -f; }
for m in $(cat /modules); do insmod /lib/$m.ko || fail "insmod $m"; done
layout=$(sed -n 's/.*jobworker.layout=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
mkdir -p /newroot /out
# The host root, read-only: the VM writes only to the tmpfs and disk below.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose root /newroot || fail "9p root"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /out || fail "9p out"
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
# The checkout (the command's directory) stays visible wherever it is, even
# under a directory the mounts below cover (a `mktemp -d` clone in /tmp):
# held aside now, bound back at its own path after them.
src=$(cat /out/src)
mkdir -p /src && mount --bind "$r$src" /src || fail "checkout $src"
for dir in run var/tmp var/lib root; do mount -t tmpfs -o mode=755 $dir $r/$dir; done
chmod 1777 $r/var/tmp
chmod 700 $r/root
# The disk holds /tmp (test state directories) and the tests' shared scratch
# directory: IO limits need a real block device, and O_DIRECT a real file system.
d=$r/run/jobworker-disk
mkdir -p $d $r/var/lib/jobworker-test
mount -t ext4 /dev/vda $d || fail "ext4 /dev/vda"
mkdir -p $d/tmp $d/scratch && chmod 1777 $d/tmp && chmod 700 $d
mount --bind $d/tmp $r/tmp
mount --bind $d/scratch $r/var/lib/jobworker-test
mkdir -p $r/run/jobworker-vm
mount --bind /out $r/run/jobworker-vm
[ -d "$r$src" ] || mkdir -p "$r$src" || fail "mount point for $src"
mount --bind /src "$r$src" || fail "checkout $src back"
cg=$r/sys/fs/cgroup
v1() {
  mount -t tmpfs -o mode=755 cgroup $cg
  for c in cpu cpuacct cpuset memory devices freezer blkio pids hugetlb perf_event net_cls net_prio rdma misc; do
    mkdir -p $cg/$c && mount -t cgroup -o $c cgroup $cg/$c || fail "cgroup v1 $c"
  done
  mkdir -p $cg/systemd && mount -t cgroup -o none,name=systemd cgroup $cg/systemd || fail "name=systemd"
}
case $layout in
  v2) mount -t cgroup2 -o nsdelegate cgroup2 $cg || fail cgroup2 ;;
  v1) v1 ;;
  hybrid) v1; mkdir -p $cg/unified && mount -t cgroup2 -o nsdelegate cgroup2 $cg/unified || fail cgroup2 ;;
  *) fail "layout '$layout'" ;;
esac
ip link set lo up
hostname jobworker-vm
echo "vm-init: cgroup layout $layout, kernel $(uname -r), $(nproc) CPUs" >&2
chroot $r /bin/sh /run/jobworker-vm/cmd </dev/null
echo $? > /out/status
sync
reboot -f
EOF

kernel_dir() {
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
  [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64 (apt-get update?)"; exit 69; }
  local dir=$cache/$pkg
  if [ ! -f "$dir/.done" ]; then
    log "unpacking $pkg into $dir"
    rm -rf "$dir" "$cache/dl" && mkdir -p "$cache/dl"
    (cd "$cache/dl" && apt-get download -q "$pkg" </dev/null >&2)
    dpkg -x "$cache"/dl/"$pkg"_*.deb "$dir"
    rm -rf "$cache/dl"
    touch "$dir/.done"
  fi
  echo "$dir"
}

build_initramfs() {
  local kdir=$1 ver hash out tmp m f
  ver=$(ls "$kdir/lib/modules")
  hash=$( (printf '%s\n' "$INIT" "${MODULES[@]}" "$ver"; sha256sum /bin/busybox) | sha256sum | cut -c1-12)
  out=$cache/initramfs-$ver-$hash.cpio.gz
  if [ ! -f "$out" ]; then
    log "building $out"
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,lib,proc,sys,dev}
    cp /bin/busybox "$tmp/bin/busybox"
    for m in "${MODULES[@]}"; do
      f=$(find "$kdir/lib/modules/$ver/kernel" -name "$m.ko" -print -quit)
      [ -n "$f" ] || { log "module $m not in $kdir"; rm -rf "$tmp"; exit 69; }
      cp "$f" "$tmp/lib/"
    done
    printf '%s\n' "${MODULES[@]}" >"$tmp/modules"
    printf '%s\n' "$INIT" >"$tmp/init"
    chmod 755 "$tmp/init"
    (cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out.new"
    mv "$out.new" "$out"
    rm -rf "$tmp"
  fi
  echo "$out"
}

for tool in qemu-system-x86_64 busybox mkfs.ext4; do
  command -v "$tool" >/dev/null || { log "$tool is missing (apt-get install qemu-system-x86 busybox-static e2fsprogs)"; exit 69; }
done
mkdir -p "$cache"
kdir=$(kernel_dir)
initrd=$(build_initramfs "$kdir")
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)

work=$(mktemp -d /tmp/jobworker-vm.XXXXXX)
qemu_pid=
cleanup() {
  # timeout(1) passes a TERM on to qemu (a KILL would orphan it).
  if [ -n "$qemu_pid" ]; then kill -TERM "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$work/out"
truncate -s "${disk}M" "$work/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$work/disk.img"

# The command, as a script the VM's init runs in the chroot.
{
  echo 'set -e'
  printf 'export PATH=%q HOME=/root LANG=C.UTF-8 JOBWORKER_VM_LAYOUT=%q\n' "$PATH" "$layout"
  [ -n "${CI:-}" ] && printf 'export CI=%q\n' "$CI"
  for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
  printf 'cd %q\n' "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  echo
} >"$work/out/cmd"
printf '%s\n' "$PWD" >"$work/out/src"

log "booting layout $layout ($cpus CPUs, $memory MiB, timeout ${timeout}s, TCG)"
started=$(date +%s)
# timeout(1) kills a hung VM. qemu's console is its stdout, a pipe that cat
# copies to our stderr: a file chardev on /proc/self/fd/2 reopened a log
# file truncated and wrote over it from offset 0 (NULs where this script's
# lines had been), and the pipe keeps whatever flags qemu sets on its stdio
# off the file we share with our caller.
timeout -k 5 "$timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory" \
  -nodefaults -no-user-config -display none -no-reboot \
  -chardev stdio,id=con,signal=off -serial chardev:con \
  -kernel "$vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init jobworker.layout=$layout" \
  -virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$work/out,mount_tag=out,security_model=none" \
  -drive "file=$work/disk.img,if=virtio,format=raw,cache=unsafe" \
  </dev/null > >(cat >&2) &
qemu_pid=$!
rc=0
wait "$qemu_pid" || rc=$?
qemu_pid=
log "VM ($layout) ran $(($(date +%s) - started)) s"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  log "VM still running after ${timeout}s: killed"
  exit 124
fi
if [ ! -s "$work/out/status" ]; then
  log "VM ended (qemu status $rc) without the command's status: see the console above"
  exit 70
fi
exit "$(cat "$work/out/status")"
