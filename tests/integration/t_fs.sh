# shellcheck shell=bash disable=SC2034
# File system: volumes, tmpfs, read-only root, masked and read-only /proc paths, /dev, /etc files,
# and running from a root file system directory.

test_volume_rw_write_visible_on_host() {
	mkdir "$TEST_TMP/rw"
	run_cella run -v "$TEST_TMP/rw:/data" busybox sh -c 'echo written > /data/f'
	assert_rc 0
	[ -f "$TEST_TMP/rw/f" ] || fail "file written through the volume is not on the host"
	assert_eq written "$(cat "$TEST_TMP/rw/f")" "host file content"
}

test_volume_rw_explicit() {
	mkdir "$TEST_TMP/rw"
	run_cella run -v "$TEST_TMP/rw:/data:rw" busybox sh -c 'echo x > /data/f'
	assert_rc 0
	[ -f "$TEST_TMP/rw/f" ] || fail "file written through the :rw volume is not on the host"
}

test_volume_host_file_visible_inside() {
	mkdir "$TEST_TMP/src"
	echo from-host >"$TEST_TMP/src/in"
	run_cella run --volume "$TEST_TMP/src:/data:ro" busybox cat /data/in
	assert_rc 0
	assert_eq from-host "$OUT" "file read through the volume"
}

test_volume_ro_write_fails() {
	mkdir "$TEST_TMP/ro"
	echo readable >"$TEST_TMP/ro/in"
	run_cella run -v "$TEST_TMP/ro:/data:ro" busybox sh -c 'cat /data/in; echo x > /data/f && echo WROTE; echo x >> /data/in && echo APPENDED; true'
	assert_rc 0
	assert_eq readable "$(printf '%s\n' "$OUT" | head -n1)" "file read through the :ro volume"
	assert_not_contains "$OUT" WROTE "output"
	assert_not_contains "$OUT" APPENDED "output"
	assert_contains "$ERR" "Read-only file system" "error of the write"
	[ ! -e "$TEST_TMP/ro/f" ] || fail "write through a :ro volume reached the host"
	assert_eq readable "$(cat "$TEST_TMP/ro/in")" "host file after the append attempt"
}

test_volume_single_file() {
	echo content >"$TEST_TMP/file"
	run_cella run -v "$TEST_TMP/file:/etc/myfile:ro" busybox cat /etc/myfile
	assert_rc 0
	assert_eq content "$OUT"
}

test_volume_creates_missing_target_dir() {
	mkdir "$TEST_TMP/d"
	touch "$TEST_TMP/d/marker"
	run_cella run -v "$TEST_TMP/d:/new/deep/dir" busybox ls /new/deep/dir
	assert_rc 0
	assert_eq marker "$OUT"
}

test_tmpfs_size_limit() {
	run_cella run --tmpfs /scratch:size=1m busybox dd if=/dev/zero of=/scratch/f bs=1024 count=2048
	assert_rc_ne 0 "writing 2 MB to a 1 MB tmpfs"
	assert_contains "$ERR" "No space left" "dd error"
}

test_tmpfs_size_shown_by_df() {
	run_cella run --tmpfs /scratch:size=1m busybox df -k /scratch
	assert_rc 0
	local total
	total=$(printf '%s\n' "$OUT" | awk 'END { print $2 }')
	assert_eq 1024 "$total" "1K-blocks of /scratch"
}

test_tmpfs_in_mountinfo() {
	run_cella run --tmpfs /scratch:size=1m,mode=755 busybox cat /proc/self/mountinfo
	assert_rc 0
	local line
	line=$(printf '%s\n' "$OUT" | awk '$5 == "/scratch"')
	[ -n "$line" ] || fail "/scratch not in mountinfo"
	assert_contains "$line" tmpfs "mountinfo line of /scratch"
	assert_contains "$line" size=1024k "mountinfo line of /scratch"
	assert_contains "$line" mode=755 "mountinfo line of /scratch"
}

# Each filesystem shows docker's type and source in mountinfo (fsopen gives none unless told).
test_mounts_show_type_and_source() {
	run_cella run --tmpfs /scratch busybox cat /proc/self/mountinfo
	assert_rc 0
	local want got
	for want in "/proc proc proc" "/dev tmpfs tmpfs" "/dev/pts devpts devpts" "/dev/shm tmpfs shm" \
		"/dev/mqueue mqueue mqueue" "/sys sysfs sysfs" "/scratch tmpfs tmpfs" "/ overlay overlay"; do
		got=$(printf '%s\n' "$OUT" | awk -v p="${want%% *}" '$5 == p { for (i = 7; $i != "-"; i++); print $(i + 1), $(i + 2) }')
		assert_eq "${want#* }" "$got" "type and source of ${want%% *}"
	done
}

test_tmpfs_mode() {
	run_cella run --tmpfs /scratch:mode=0700 busybox stat -c %a /scratch
	assert_rc 0
	assert_eq 700 "$OUT" "mode of /scratch"
}

test_tmpfs_without_options_writable() {
	run_cella run --tmpfs /scratch busybox sh -c 'echo x > /scratch/f && cat /scratch/f'
	assert_rc 0
	assert_eq x "$OUT"
}

test_root_writable_by_default() {
	run_cella run busybox sh -c 'touch /cella-test-x && rm /cella-test-x && echo ok'
	assert_rc 0
	assert_eq ok "$OUT" "touch on the default (writable) root"
}

test_root_writes_not_persisted() {
	# Each run is a new container: what one writes to its root, the next does not see.
	run_cella run busybox sh -c 'echo x > /cella-persist-test'
	assert_rc 0
	run_cella run busybox sh -c 'if [ -e /cella-persist-test ]; then echo PERSISTED; rm -f /cella-persist-test; fi; true'
	assert_rc 0
	assert_not_contains "$OUT" PERSISTED "second run"
}

test_read_only_root() {
	run_cella run --read-only busybox touch /cella-test-x
	assert_rc_ne 0 "touch with --read-only"
	assert_contains "$ERR" "Read-only file system" "touch error"
}

test_read_only_root_with_tmpfs_tmp() {
	run_cella run --read-only --tmpfs /tmp busybox sh -c 'touch /tmp/x && echo ok'
	assert_rc 0
	assert_eq ok "$OUT"
}

# Masked paths: if the host has PATH, inside the container it is a mount point (a /dev/null bind or
# an empty read-only tmpfs) that reads as empty.
_masked() { # PATH
	[ -e "$1" ] || skip "host has no $1"
	run_cella run busybox sh -c "if [ -d $1 ]; then ls -A $1; else head -c 64 $1; fi | wc -c; cat /proc/self/mountinfo"
	assert_rc 0
	assert_eq 0 "$(printf '%s\n' "$OUT" | head -n1 | tr -d ' ')" "bytes readable from $1"
	printf '%s\n' "$OUT" | awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' ||
		fail "$1 is not a mount point in the container (not masked)"
}

test_proc_kcore_masked() { _masked /proc/kcore; }
test_proc_keys_masked() { _masked /proc/keys; }
test_proc_timer_list_masked() { _masked /proc/timer_list; }
test_sys_firmware_masked() { _masked /sys/firmware; }

_mount_opts() { # MOUNTPOINT: per-mount options of the last mount at MOUNTPOINT in $OUT (mountinfo)
	printf '%s\n' "$OUT" | awk -v p="$1" '$5 == p { o = $6 } END { print o }'
}

test_proc_sys_read_only() {
	# With CAP_SYS_ADMIN the UTS namespace would allow this write; only a read-only mount stops it.
	save_host_hostname
	run_cella run --cap-add SYS_ADMIN busybox sh -c 'echo cella-procsys > /proc/sys/kernel/hostname'
	check_host_hostname
	assert_rc_ne 0 "write to /proc/sys/kernel/hostname with CAP_SYS_ADMIN"
	run_cella run busybox cat /proc/self/mountinfo
	assert_rc 0
	local opts
	opts=$(_mount_opts /proc/sys)
	[ -n "$opts" ] || fail "/proc/sys is not a mount point"
	assert_match "$(printf '%s\n' "$opts" | tr , '\n')" '^ro$' "/proc/sys mount options ($opts)"
}

test_proc_sysrq_trigger_read_only() {
	[ -e /proc/sysrq-trigger ] || skip "host has no /proc/sysrq-trigger"
	run_cella run busybox sh -c 'cat /proc/self/mountinfo; echo h > /proc/sysrq-trigger'
	assert_rc 1 "write to /proc/sysrq-trigger"
	local opts
	opts=$(_mount_opts /proc/sysrq-trigger)
	[ -n "$opts" ] || fail "/proc/sysrq-trigger is not a mount point"
	assert_match "$(printf '%s\n' "$opts" | tr , '\n')" '^ro$' "/proc/sysrq-trigger mount options ($opts)"
	# as a user the kernel refuses first (the file is the real root's)
	assert_match "$ERR" "^sh: can't create /proc/sysrq-trigger: (Read-only file system|Permission denied)$" "the workload's error"
	is_real_root && assert_contains "$ERR" "Read-only file system"
	return 0
}

test_sys_read_only() {
	run_cella run busybox sh -c 'ls /sys/kernel >/dev/null && cat /proc/self/mountinfo'
	assert_rc 0
	local opts
	opts=$(_mount_opts /sys)
	[ -n "$opts" ] || fail "/sys is not a mount point"
	assert_match "$(printf '%s\n' "$opts" | tr , '\n')" '^ro$' "/sys mount options ($opts)"
}

test_dev_has_minimal_devices() {
	run_cella run busybox sh -c 'for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done'
	assert_rc 0
	assert_eq "null zero full random urandom tty" "$(echo $OUT)" "character devices in /dev"
}

test_dev_pts_and_ptmx() {
	run_cella run busybox sh -c '[ -d /dev/pts ] && [ -e /dev/ptmx ] && [ -c /dev/pts/ptmx ] && echo ok'
	assert_rc 0
	assert_eq ok "$OUT" "/dev/pts, /dev/ptmx, /dev/pts/ptmx"
}

test_dev_pts_is_a_new_instance() {
	# A host pty must not be visible: the container's devpts is a newinstance.
	exec 9</dev/ptmx 2>/dev/null || skip "cannot open a host pty"
	run_cella run busybox ls /dev/pts
	exec 9<&-
	assert_rc 0
	assert_eq ptmx "$(echo $OUT)" "/dev/pts in the container"
}

test_dev_read_only() {
	# The minimal /dev is remounted read-only once populated; /dev/shm stays writable.
	run_cella run busybox sh -c 'if touch /dev/cella-test 2>/dev/null; then rm -f /dev/cella-test; echo WROTE; fi; cat /proc/self/mountinfo'
	assert_rc 0
	assert_not_contains "$OUT" WROTE "touch /dev/cella-test"
	local opts
	opts=$(_mount_opts /dev)
	[ -n "$opts" ] || fail "/dev is not a mount point"
	assert_match "$(printf '%s\n' "$opts" | tr , '\n')" '^ro$' "/dev mount options ($opts)"
}

test_dev_fd_links() {
	run_cella run busybox sh -c 'for l in fd stdin stdout stderr; do [ -L /dev/$l ] && echo $l; done'
	assert_rc 0
	assert_eq "fd stdin stdout stderr" "$(echo $OUT)" "links in /dev"
}

test_dev_shm_and_mqueue() {
	run_cella run busybox sh -c 'touch /dev/shm/x && echo shm; [ -d /dev/mqueue ] && echo mqueue'
	assert_rc 0
	assert_eq "shm mqueue" "$(echo $OUT)" "/dev/shm writable and /dev/mqueue present"
}

test_dev_devices_work() {
	run_cella run busybox sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c'
	assert_rc 0
	assert_eq "4 4" "$(echo $OUT)" "bytes read from /dev/zero and /dev/urandom"
	run_cella run busybox sh -c 'echo x > /dev/full'
	assert_rc_ne 0 "write to /dev/full"
}

test_dev_no_host_disks() {
	run_cella run busybox ls /dev
	assert_rc 0
	local b
	for b in vda sda nvme0 nvme0n1 xvda hda loop0 zram0 mem kmem port $(ls /sys/block 2>/dev/null); do
		printf '%s\n' $OUT | grep -qx "$b" && fail "host device /dev/$b is in the container's /dev"
	done
	return 0
}

test_mknod_host_disk_not_readable() {
	# CAP_MKNOD is in docker's default set; docker's device cgroup is what keeps a node made with
	# it from opening a host disk. Whatever cella uses, the disk must not be readable.
	local dev mm
	dev=$(ls /sys/block 2>/dev/null | grep -vE '^(loop|ram|zram)' | head -n1)
	[ -n "$dev" ] || skip "host has no disk in /sys/block"
	mm=$(cat "/sys/block/$dev/dev")
	[ "$(head -c 512 "/dev/$dev" 2>/dev/null | wc -c)" = 512 ] ||
		skip "the host itself cannot read /dev/$dev here"
	run_cella run busybox sh -c "mknod /cella-disk-test b ${mm%:*} ${mm#*:} 2>/dev/null; head -c 512 /cella-disk-test 2>/dev/null | wc -c; rm -f /cella-disk-test"
	assert_rc 0
	assert_eq 0 "$(echo $OUT)" "bytes read from a node made for the host's /dev/$dev ($mm)"
}

test_etc_files_placed() {
	run_cella run --hostname etchost busybox sh -c '[ -f /etc/hostname ] && [ -f /etc/hosts ] && [ -f /etc/resolv.conf ] && cat /etc/hostname'
	assert_rc 0
	assert_eq etchost "$OUT" "/etc/hostname"
}

test_etc_hosts_has_localhost_and_hostname() {
	run_cella run --hostname etchost busybox cat /etc/hosts
	assert_rc 0
	assert_match "$OUT" '^127\.0\.0\.1[[:space:]].*localhost' "/etc/hosts"
	assert_contains "$OUT" etchost "/etc/hosts"
}

test_etc_files_not_host_writable() {
	# /etc/hosts and friends are placed read-only (or as copies): a write must not reach the host.
	local f
	for f in /etc/hosts /etc/resolv.conf /etc/hostname; do
		[ -f "$f" ] && cp -p "$f" "$TEST_TMP/saved.${f##*/}"
	done
	run_cella run busybox sh -c 'for f in hosts resolv.conf hostname; do echo cella-evil >> /etc/$f; done'
	local changed=""
	for f in /etc/hosts /etc/resolv.conf /etc/hostname; do
		[ -f "$TEST_TMP/saved.${f##*/}" ] || continue
		if ! cmp -s "$f" "$TEST_TMP/saved.${f##*/}"; then
			is_root && cat "$TEST_TMP/saved.${f##*/}" >"$f" # restore the host's file
			changed="$changed $f"
		fi
	done
	[ -z "$changed" ] || fail "modified on the host from inside the container:$changed"
}

test_passwd_of_embedded_image() {
	run_cella run busybox cat /etc/passwd
	assert_rc 0
	assert_match "$OUT" '^root:[^:]*:0:0:' "/etc/passwd"
	assert_match "$OUT" '^nobody:[^:]*:65534:' "/etc/passwd"
	assert_match "$OUT" '^cella:[^:]*:1000:1000:' "/etc/passwd"
}

test_rootfs_dir() {
	make_rootfs "$TEST_TMP/rootfs"
	echo marker-in-rootfs >"$TEST_TMP/rootfs/etc/marker"
	run_cella run "$TEST_TMP/rootfs" /bin/sh -c 'cat /etc/marker; echo $$'
	assert_rc 0
	assert_eq "marker-in-rootfs
1" "$OUT" "output from the rootfs dir"
}

test_rootfs_dir_gets_proc_and_dev() {
	make_rootfs "$TEST_TMP/rootfs"
	run_cella run "$TEST_TMP/rootfs" /bin/sh -c '[ -r /proc/self/status ] && [ -c /dev/null ] && echo ok'
	assert_rc 0
	assert_eq ok "$OUT"
}

test_rootfs_dir_with_volume() {
	make_rootfs "$TEST_TMP/rootfs"
	mkdir "$TEST_TMP/vol"
	run_cella run -v "$TEST_TMP/vol:/mnt/vol" "$TEST_TMP/rootfs" /bin/sh -c 'echo hi > /mnt/vol/f'
	assert_rc 0
	assert_eq hi "$(cat "$TEST_TMP/vol/f" 2>/dev/null)" "file written through the volume"
}

test_rootfs_dir_no_leftovers_after_run() {
	make_rootfs "$TEST_TMP/rootfs"
	mkdir -p "$TEST_TMP/rootfs/mnt/vol"
	mkdir "$TEST_TMP/vol"
	local before
	before=$(cd "$TEST_TMP/rootfs" && find . | sort)
	check_no_leftovers run_cella run -v "$TEST_TMP/vol:/mnt/vol" --tmpfs /tmp "$TEST_TMP/rootfs" /bin/true
	assert_rc 0
	local gone
	gone=$(comm -23 <(printf '%s\n' "$before") <(cd "$TEST_TMP/rootfs" && find . | sort))
	assert_eq "" "$gone" "files of the rootfs dir that disappeared"
}

# --mount readonly=: every spelling docker accepts for true makes the mount read-only, for false
# read-write.
test_mount_readonly_spellings() {
	local v
	mkdir "$TEST_TMP/m"
	for v in readonly readonly=1 readonly=t readonly=T readonly=TRUE readonly=true readonly=True ro ro=1 ro=true ro=TRUE; do
		run_cella run --mount "type=bind,source=$TEST_TMP/m,target=/m,$v" busybox sh -c 'touch /m/f && echo WROTE; true'
		assert_ok "$v"
		assert_not_contains "$OUT" WROTE "a write through a bind mount with $v"
		run_cella run --mount "type=tmpfs,target=/t,$v" busybox sh -c 'touch /t/f && echo WROTE; true'
		assert_not_contains "$OUT" WROTE "a write to a tmpfs with $v"
	done
	[ ! -e "$TEST_TMP/m/f" ] || fail "a read-only bind mount was written"
	for v in readonly=0 readonly=f readonly=F readonly=FALSE readonly=false readonly=False ro=0 ro=false; do
		run_cella run --mount "type=bind,source=$TEST_TMP/m,target=/m,$v" busybox sh -c 'touch /m/f && echo WROTE'
		assert_ok "$v"
		assert_eq WROTE "$OUT" "a write through a bind mount with $v"
	done
}
