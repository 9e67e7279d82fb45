# shellcheck shell=bash disable=SC2016
# Host devices stay out of containers (docs/security.md "Devices"): no node outside the allow-list
# opens, whether made with mknod or shipped by the image, under any option short of --privileged or
# --device; --device adds one; --privileged lifts it all. Root: the devices cgroup (v1 here, the
# eBPF program on cgroup v2, driven through this hybrid host's cgroup2 tree) and nodev mounts; rootless
# (the second pass, `unshare -r`): the user namespace.

engine_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

# Root of the host (the initial user namespace): cella confines devices with the cgroup.
real_root() { is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map; }

# The probe, run by the container's sh with the directories to try as arguments. In each it makes
# nodes of the host's first loop device (b 7:0), kmsg (c 1:11), mem (c 1:1) and null (c 1:3, the
# control: allowed) and opens each for reading and for writing (nothing is read or written); then the
# image's own nodes (/probe-img-*), a fresh devtmpfs where mount is allowed, and /dev/null. It prints
# one line: "RESULT" then MKNOD:DIR/NAME and OPEN-R:/OPEN-W:WHERE for what worked.
PROBE='
r=""
try() { (: <"$1") 2>/dev/null && r="$r OPEN-R:$2"; (: >>"$1") 2>/dev/null && r="$r OPEN-W:$2"; }
for dir in "$@"; do
	for spec in "b 7 0 loop0" "c 1 11 kmsg" "c 1 1 mem" "c 1 3 null"; do
		set -- $spec
		n=$dir/probe-$4
		mknod "$n" $1 $2 $3 2>/dev/null && r="$r MKNOD:$dir/$4"
		[ -e "$n" ] && try "$n" "$dir/$4"
	done
done
for f in /probe-img-*; do [ -e "$f" ] && try "$f" "img-${f#/probe-img-}"; done
mkdir -p /tmp/devtmpfs 2>/dev/null
if mount -t devtmpfs none /tmp/devtmpfs 2>/dev/null; then
	r="$r DEVTMPFS"
	for n in loop0 kmsg mem; do [ -e /tmp/devtmpfs/$n ] && try /tmp/devtmpfs/$n devtmpfs-$n; done
fi
try /dev/null devnull
echo "RESULT$r"
'

# assert_confined: the last probe opened no node but null's (the control), and /dev/null worked.
assert_confined() {
	assert_rc 0
	assert_match "$OUT" '^RESULT'
	assert_contains "$OUT" "OPEN-R:devnull" "probe (control: /dev/null opens)"
	if printf '%s\n' "$OUT" | grep '^RESULT' | tr ' ' '\n' | grep -E '^OPEN-' | grep -qv -e 'null$' -e ':devnull$'; then
		fail "a device outside the allow-list opened: $(printf '%s\n' "$OUT" | grep '^RESULT')"
	fi
}

# An image (a root file system with a busybox) that ships world-readable and -writable nodes of the host's
# first loop device, kmsg and mem. Made as root only (an ordinary user cannot make device nodes).
make_node_rootfs() {
	make_rootfs "$1"
	ln -sf busybox "$1/bin/mknod"
	ln -sf busybox "$1/bin/mount"
	ln -sf busybox "$1/bin/mkdir"
	touch "$1/etc/hostname" "$1/etc/hosts" "$1/etc/resolv.conf"
	mknod -m 0666 "$1/probe-img-loop0" b 7 0
	mknod -m 0666 "$1/probe-img-kmsg" c 1 11
	mknod -m 0666 "$1/probe-img-mem" c 1 1
}

# A loop device over a file that says SECRET-HOST-DISK, for as long as the test runs: LOOP, LOOP_MAJ,
# LOOP_MIN. Skips where loop devices cannot be set up.
loop_setup() {
	require_real_root
	require_cmd losetup
	head -c 65536 /dev/zero >"$TEST_TMP/disk.img"
	printf 'SECRET-HOST-DISK' | dd of="$TEST_TMP/disk.img" conv=notrunc status=none
	LOOP=$(losetup -f --show "$TEST_TMP/disk.img" 2>/dev/null) || skip "no free loop device (losetup -f failed)"
	trap 'losetup -d "$LOOP"' EXIT
	LOOP_MAJ=$((16#$(stat -c %t "$LOOP")))
	LOOP_MIN=$((16#$(stat -c %T "$LOOP")))
}

# --- the issue's reproductions ------------------------------------------------------------------------

# `cella run busybox sh -c 'mknod /d b 7 0; head -c 6 /d'` read the host's loop device (any block device
# would do: the host's disk). Now the node can be made (docker allows mknod) but not opened.
test_mknod_of_a_host_block_device_cannot_read_it() {
	loop_setup
	run_cella run busybox sh -c "mknod /d b $LOOP_MAJ $LOOP_MIN && echo made; head -c 16 /d; mknod /dev/shm/d b $LOOP_MAJ $LOOP_MIN; head -c 16 /dev/shm/d; true"
	assert_rc 0
	assert_contains "$OUT" made "mknod (allowed, as docker does)"
	assert_not_contains "$OUT" SECRET-HOST-DISK "what the container read"
}

# The same with a tmpfs that allows device nodes (--tmpfs ...:dev): only the cgroup stands in the way.
test_mknod_on_a_dev_tmpfs_cannot_read_a_host_device() {
	loop_setup
	run_cella run --tmpfs /t:dev busybox sh -c "mknod /t/d b $LOOP_MAJ $LOOP_MIN && echo made; head -c 16 /t/d; mknod /t/n c 1 3 && echo null > /t/n && echo null-ok; true"
	assert_rc 0
	assert_contains "$OUT" made "mknod"
	assert_contains "$OUT" null-ok "a node of an allowed device on the same tmpfs"
	assert_not_contains "$OUT" SECRET-HOST-DISK "what the container read"
	assert_contains "$ERR" "Operation not permitted" "the cgroup's refusal (EPERM)"
}

test_default_container_opens_no_host_device() {
	run_cella run --tmpfs /devt:dev busybox sh -c "$PROBE" probe / /tmp /devt /dev/shm
	assert_confined
	if real_root; then
		assert_contains "$OUT" "MKNOD:/devt/loop0" "mknod as root (allowed, as docker does)"
		assert_contains "$OUT" "OPEN-W:/devt/null" "a node of an allowed device on a dev tmpfs"
	else
		assert_not_contains "$OUT" "MKNOD:" "mknod in a user namespace"
	fi
}

# An image that ships a 0666 node of the host's loop device (or kmsg, or mem): read by nobody without
# any capability before the fix.
test_image_nodes_do_not_open_as_nobody_without_caps() {
	require_real_root
	make_node_rootfs "$TEST_TMP/root"
	run_cella run -u 65534 --cap-drop ALL "$TEST_TMP/root" sh -c "$PROBE" probe /tmp
	assert_confined
	engine_env
	run_cella import "$TEST_TMP/root" devnodes:1
	assert_ok
	run_cella run -u 65534 --cap-drop ALL devnodes:1 sh -c "$PROBE" probe /tmp
	assert_confined
	run_cella run devnodes:1 sh -c "$PROBE" probe /tmp
	assert_confined
}

# Everything short of --privileged: every capability, no seccomp filter (so mount works: a fresh
# devtmpfs, a remount of the root with dev).
test_all_caps_and_no_seccomp_still_confined() {
	require_real_root
	make_node_rootfs "$TEST_TMP/root"
	run_cella run --cap-add ALL --security-opt seccomp=unconfined --tmpfs /devt:dev "$TEST_TMP/root" sh -c \
		"mount -o remount,dev / && echo remounted; $PROBE" probe / /devt
	assert_confined
	assert_contains "$OUT" DEVTMPFS "the devtmpfs mount (CAP_SYS_ADMIN, no seccomp)"
	assert_contains "$OUT" remounted "the root remounted with dev"
}

# A node of the host's loop device in a rootfs made by root, run by an ordinary user: the root bound
# from the directory is nodev.
test_rootless_run_of_a_root_made_rootfs_opens_no_node() {
	require_real_root
	require_cmd setpriv
	id cellatest >/dev/null 2>&1 || skip "no user cellatest (the runner makes it)"
	# the test's directory is private to root: a world-readable one for the user
	d=$(mktemp -d /tmp/cella-devt.XXXXXX) || fail mktemp
	trap 'rm -rf "$d"' EXIT
	chmod 755 "$d"
	make_node_rootfs "$d/root"
	cp "$CELLA" "$d/cella"
	mkdir -p "$d/home"
	chown cellatest "$d/home"
	run_cmd setpriv --reuid=cellatest --regid=cellatest --init-groups env HOME="$d/home" XDG_RUNTIME_DIR="$d/home" \
		XDG_DATA_HOME="$d/home" "$d/cella" run "$d/root" sh -c "$PROBE" probe /tmp
	assert_confined
	assert_contains "$(stat -c %F "$d/root/probe-img-loop0")" "block" "the image's node (on the host)"
}

# --- engine and OCI containers ------------------------------------------------------------------------

test_engine_container_and_exec_confined() {
	engine_env
	run_cella run -d --network none --name devc --tmpfs /devt:dev busybox sleep 30
	assert_ok
	run_cella exec devc sh -c "$PROBE" probe / /devt
	assert_confined
	if real_root && [ -d /sys/fs/cgroup/devices ]; then
		# v1 and hybrid hosts: the devices controller holds the list
		local pid path
		pid=$("$CELLA" inspect -f '{{.State.Pid}}' devc)
		path=$(awk -F: '$2 == "devices" { print $3 }' "/proc/$pid/cgroup")
		run_cmd cat "/sys/fs/cgroup/devices$path/devices.list"
		assert_contains "$OUT" "c 1:3 rwm" "devices.list of $path"
		assert_not_contains "$OUT" "a *:* rwm" "devices.list of $path"
		assert_not_contains "$OUT" "b 7:" "devices.list of $path"
	fi
	if awk '{s += $3} END {exit !(s > 1)}' /proc/self/uid_map; then
		run_cella exec -u 65534 devc sh -c "$PROBE" probe /tmp
		assert_confined
	fi
	run_cella rm -f devc
}

# bundle DIR: a bundle of the probe whose config has no device rules at all (runc's defaults still apply)
# and a writable /dev, CAP_MKNOD, and a node of loop0 in linux.devices (made as root, bound from the
# host's /dev/loop0 in a user namespace). The probe's line goes to /result in the root.
probe_bundle() {
	local dir=$1 rl=""
	require_cmd jq
	[ -b /dev/loop0 ] || skip "no /dev/loop0 on the host (the bundle's linux.devices names it)"
	make_rootfs "$dir/rootfs"
	ln -sf busybox "$dir/rootfs/bin/mknod"
	ln -sf busybox "$dir/rootfs/bin/mount"
	ln -sf busybox "$dir/rootfs/bin/mkdir"
	is_root || rl=--rootless
	(cd "$dir" && "$CELLA" spec $rl) || fail "cella spec"
	jq --arg p "$PROBE" '.process.terminal = false
		| .process.args = ["sh", "-c", ($p + "echo \"RESULT$r\" >/result\n"), "probe", "/dev", "/tmp"]
		| .root.readonly = false | del(.linux.resources)
		| .process.capabilities |= with_entries(.value += ["CAP_MKNOD"])
		| .mounts |= map(if .destination == "/dev" then .options -= ["ro"] else . end)
		| .linux.devices = [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 438}]' \
		"$dir/config.json" >"$dir/c.json" && mv "$dir/c.json" "$dir/config.json" || fail "jq"
}

test_oci_bundle_without_device_rules_confined() {
	probe_bundle b
	run_cella --root "$TEST_TMP/state" create --bundle b devo
	assert_ok
	run_cella --root "$TEST_TMP/state" start devo
	assert_ok
	for _ in $(seq 100); do [ -s b/rootfs/result ] && break; sleep 0.1; done
	run_cella --root "$TEST_TMP/state" delete -f devo
	OUT=$(cat b/rootfs/result) RC=0
	assert_confined
	if real_root; then
		assert_contains "$OUT" "MKNOD:/dev/loop0" "mknod on the OCI /dev"
	fi
}

test_oci_bundle_config_node_does_not_open() {
	probe_bundle b
	jq '.process.args = ["sh", "-c", "ls -l /dev/loop0 && (: </dev/loop0) && echo OPENED; true"]' \
		b/config.json >b/c.json && mv b/c.json b/config.json
	run_cella --root "$TEST_TMP/state" run --bundle b devo3
	assert_rc 0
	assert_match "$OUT" '^b.* 7, +0 .*/dev/loop0$' "the node linux.devices asked for"
	# in a user namespace the node is the host's own, bound: it opens for whoever may open it on the host
	# (here, under `unshare -r`, root mapped to itself), for nobody else
	if real_root || [ ! -r /dev/loop0 ]; then
		assert_not_contains "$OUT" OPENED "open of a device no rule allows"
	fi
}

# cella inside a confined parent (an OCI cgroupsPath under a v1 devices cgroup that allows only null and
# mknod): the defaults the parent does not allow are skipped, not an error; the parent's list still holds.
test_oci_under_a_confined_parent_cgroup() {
	require_real_root
	[ -d /sys/fs/cgroup/devices ] || skip "no v1 devices hierarchy"
	DEVT_PARENT=cella-devt-$$
	mkdir "/sys/fs/cgroup/devices/$DEVT_PARENT" || fail "mkdir parent"
	trap 'for h in /sys/fs/cgroup/*/; do rmdir "$h$DEVT_PARENT/c" "$h$DEVT_PARENT" 2>/dev/null; done' EXIT
	echo a >"/sys/fs/cgroup/devices/$DEVT_PARENT/devices.deny"
	for r in "c 1:3 rwm" "c *:* m" "b *:* m"; do echo "$r" >"/sys/fs/cgroup/devices/$DEVT_PARENT/devices.allow"; done
	probe_bundle b
	jq --arg c "/$DEVT_PARENT/c" '.linux.cgroupsPath = $c | .process.args = ["sh", "-c", "echo x >/dev/null && echo null-ok; head -c 1 /dev/zero >/dev/null && echo ZERO-OPENED; true"]' \
		b/config.json >b/c.json && mv b/c.json b/config.json
	run_cella --root "$TEST_TMP/state" run --bundle b devp
	assert_ok
	assert_contains "$OUT" null-ok "/dev/null (the parent allows it)"
	assert_not_contains "$OUT" ZERO-OPENED "/dev/zero (a default the parent does not allow)"
}

# An OCI config's cgroup mount made read-write (podman asks for one for systemd containers): the container
# sees its own cgroup there, never the host's tree. Before the fix it was the host's whole /sys/fs/cgroup,
# and the container wrote its pid to the host's root cgroups (v1 devices and the cgroup2 tree), out of its
# device rules, and read the host's loop device through a node it made (runc keeps it in its own cgroup).
test_oci_writable_cgroup_mount_is_the_containers_own() {
	require_real_root
	loop_setup
	probe_bundle b
	local script='mknod /dev/l b "$1" "$2"
for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do
	[ -e "$f" ] && echo $$ >"$f" 2>/dev/null && echo "moved:$f"
done
echo "read:$(head -c 16 /dev/l 2>/dev/null)"
[ -e /sys/fs/cgroup/devices/devices.list ] && sed "s/^/devlist:/" /sys/fs/cgroup/devices/devices.list
ls /sys/fs/cgroup | sed "s/^/entry:/"'
	jq --arg s "$script" --arg maj "$LOOP_MAJ" --arg min "$LOOP_MIN" '.process.args = ["sh", "-c", $s, "probe", $maj, $min]
		| .mounts |= map(if .type == "cgroup" then .options = (.options - ["ro"] + ["rw"]) else . end)' \
		b/config.json >b/c.json && mv b/c.json b/config.json
	run_cella --root "$TEST_TMP/state" run --bundle b devcg
	assert_ok
	assert_contains "$OUT" "moved:" "a write to cgroup.procs (the container's own: the mount is read-write)"
	assert_contains "$OUT" "read:" "the probe"
	assert_not_contains "$OUT" SECRET-HOST-DISK "what the container read of the host's loop device"
	assert_contains "$OUT" "entry:" "the cgroup mount's entries"
	if [ -d /sys/fs/cgroup/devices ]; then
		assert_contains "$OUT" "devlist:c 1:3 rwm" "devices.list seen in the container (its own rules)"
		assert_not_contains "$OUT" "devlist:a *:* rwm" "devices.list seen in the container (the host's root's)"
	fi
}

# --- cgroup v2: the eBPF program ----------------------------------------------------------------------

# The v2 code driven through this hybrid host's cgroup2 tree mounted at /sys/fs/cgroup in a private
# mount namespace (as t_cgroup.sh does): cella then sees cgroup v2 and loads its device filter.
test_v2_device_filter_on_hybrid_unified() {
	require_real_root
	require_cmd unshare
	[ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] ||
		skip "not a hybrid cgroup host (this test drives the v2 code through a hybrid host's cgroup2 tree)"
	loop_setup
	engine_env
	cat >"$TEST_TMP/v2.sh" <<EOS
mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup || exit 99
"\$CELLA" run --tmpfs /devt:dev busybox sh -c "\$PROBE" probe / /devt
"\$CELLA" run --tmpfs /devt:dev busybox sh -c 'mknod /devt/l b $LOOP_MAJ $LOOP_MIN; echo "mknod-read:\$(head -c 16 /devt/l)"; cat /proc/self/cgroup' 2>&1
"\$CELLA" run --device $LOOP:/dev/xda:r busybox sh -c 'echo "device-read:\$(head -c 16 /dev/xda)"; (: >>/dev/xda) 2>/dev/null && echo WRITE-OPENED; true'
"\$CELLA" run -d --network none --name v2dev --tmpfs /devt:dev busybox sleep 30 >/dev/null || exit 98
"\$CELLA" exec v2dev sh -c "\$PROBE" probe /devt
echo exec-done
"\$CELLA" rm -f v2dev >/dev/null
EOS
	run_cmd unshare -m env CELLA="$CELLA" PROBE="$PROBE" CELLA_ROOT="$CELLA_ROOT" CELLA_RUN_ROOT="$CELLA_RUN_ROOT" bash "$TEST_TMP/v2.sh"
	assert_ok
	assert_confined
	assert_contains "$OUT" "OPEN-W:/devt/null" "an allowed device on a dev tmpfs (the filter allows)"
	assert_contains "$OUT" "mknod-read:" "the mknod run"
	assert_not_contains "$OUT" "mknod-read:SECRET-HOST-DISK" "mknod'ed loop device read under v2"
	assert_match "$OUT" '^0::/$' "the container's own cgroup (v2)"
	assert_contains "$OUT" "device-read:SECRET-HOST-DISK" "--device $LOOP:/dev/xda:r (read allowed by the filter)"
	assert_not_contains "$OUT" WRITE-OPENED "--device ...:r opened for writing"
	assert_contains "$OUT" exec-done "exec"
}

# Hybrid without a v1 devices hierarchy (unmounted in a private mount namespace): an engine container's
# filter goes to the cgroup2 tree too, which the kernel checks alongside the v1 controllers. (With it, engine
# and OCI containers use the v1 controller; a plain run always uses the cgroup2 tree on a hybrid host.)
test_hybrid_without_v1_devices_uses_the_unified_filter() {
	require_real_root
	require_cmd unshare
	[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && [ -d /sys/fs/cgroup/devices ] ||
		skip "not a hybrid host with a v1 devices hierarchy"
	engine_env
	run_cmd unshare -m sh -c 'mount --make-rprivate / && umount /sys/fs/cgroup/devices || exit 99
		"$0" run -d --network none --name nodevs --tmpfs /devt:dev busybox sleep 30 >/dev/null || exit 98
		"$0" exec nodevs sh -c "$1" probe /devt
		pid=$("$0" inspect -f "{{.State.Pid}}" nodevs); grep "^0::" /proc/$pid/cgroup
		"$0" rm -f nodevs >/dev/null' "$CELLA" "$PROBE"
	assert_confined
	assert_contains "$OUT" "OPEN-W:/devt/null" "an allowed device"
	assert_match "$OUT" '^0::/cella/[0-9a-f]{64}$' "the container's cgroup2 directory"
}

# A plain run (devices only, no limits) is born in a cgroup of its own below `cella/devices-KEY`, which carries
# the one program of those rules for every run below it (docs/security.md "Devices"). The parent stays for the
# next run, with nothing of the run left below it; a run that finds it (and so its program) gone makes it and
# attaches the program again before anything of the container runs. The rules here (--device /dev/full:r)
# are this test's own, so its parent is no other run's.
# plain_run_cgroup DEVICE SECONDS: start a plain `cella run --device DEVICE busybox sleep SECONDS`,
# take its cgroup (CG, below cella/devices-KEY) from its process, and kill it.
plain_run_cgroup() {
	local pid i
	"$CELLA" run --device "$1" busybox sleep "$2" >/dev/null 2>&1 &
	for i in $(seq 100); do
		pid=$(pgrep -f -x "sleep $2" | head -n1)
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || fail "the run's process did not show up"
	CG=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
	kill -9 "$pid"
	wait
	case "$CG" in /cella/devices-*/*) ;; *) fail "the plain run's cgroup is $CG, not below cella/devices-KEY" ;; esac
}

test_plain_runs_share_one_device_program() {
	require_real_root
	local top cg dir i
	top=/sys/fs/cgroup
	[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || top=/sys/fs/cgroup/unified
	[ "$(stat -f -c %T "$top" 2>/dev/null)" = cgroup2fs ] || skip "no cgroup2 tree (plain runs use the v1 devices controller)"
	plain_run_cgroup /dev/full:/dev/probe-full:r 5.4321
	cg=$CG
	dir=$top${cg%/*}
	[ -d "$dir" ] || fail "the shared parent $dir did not stay"
	# (removed by the process that also tears the run's mounts down, a moment after cella's exit)
	for i in $(seq 60); do
		[ -e "$top$cg" ] || break
		sleep 0.05
	done
	[ ! -e "$top$cg" ] || fail "the run's own cgroup $top$cg stayed"
	# gone (its program with it): the next run puts both back, and is confined
	rmdir "$dir" || fail "rmdir $dir (something left below it?)"
	for i in 1 2; do
		run_cella run --device /dev/full:/dev/probe-full:r --tmpfs /devt:dev busybox sh -c "$PROBE" probe /devt
		assert_confined
		assert_contains "$OUT" "OPEN-W:/devt/null" "an allowed device (run $i)"
		[ -d "$dir" ] || fail "run $i did not make $dir again"
	done
}

# Plain runs killed before their teardown leave empty leaves below the shared parent; once there
# are more than CGROUP_PLAIN_SWEEP_AT (128), the next start removes the old empty ones (not a
# young one: a start under way; not one with a process in it).
test_plain_run_leaves_left_behind_stay_bounded() {
	require_real_root
	local top dir i hex young busy holder
	top=/sys/fs/cgroup
	[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || top=/sys/fs/cgroup/unified
	[ "$(stat -f -c %T "$top" 2>/dev/null)" = cgroup2fs ] || skip "no cgroup2 tree (plain runs use the v1 devices controller)"
	# a rule set of this test's own: its own parent, which no other test's runs use
	plain_run_cgroup /dev/full:/dev/bounded-full:r 6.5432
	dir=$top${CG%/*}
	trap "kill \$holder 2>/dev/null; sleep 0.2; rmdir '$dir'/* 2>/dev/null" EXIT
	for i in $(seq 140); do
		hex=$(printf '%064x' "$((0xb0b0000 + i))")
		mkdir "$dir/$hex" && touch -d '-2 min' "$dir/$hex" || fail "mkdir/touch $dir/$hex"
	done
	young=$(printf '%064x' 0xb0c0001)
	busy=$(printf '%064x' 0xb0c0002)
	mkdir "$dir/$young" "$dir/$busy" || fail "mkdir"
	sleep 300 &
	holder=$!
	echo "$holder" >"$dir/$busy/cgroup.procs" || fail "move a process into $dir/$busy"
	touch -d '-2 min' "$dir/$busy"
	run_cella run --device /dev/full:/dev/bounded-full:r busybox true
	assert_ok
	assert_eq 0 "$(find "$dir" -mindepth 1 -maxdepth 1 -name '000000000000000000000000000000000000000000000000000000000b0b*' | wc -l)" \
		"the old empty leaves were removed"
	[ -d "$dir/$young" ] || fail "a young leaf (a start under way) was removed"
	[ -d "$dir/$busy" ] || fail "a leaf with a process in it was removed"
	kill "$holder"
	wait "$holder" 2>/dev/null
	for i in $(seq 40); do rmdir "$dir/$busy" 2>/dev/null && break; sleep 0.05; done
	rmdir "$dir/$young" || fail "rmdir $dir/$young"
	# below the mark a start does not sweep: an old empty leaf stays until `system prune`
	hex=$(printf '%064x' 0xb0d0001)
	mkdir "$dir/$hex" && touch -d '-2 min' "$dir/$hex"
	run_cella run --device /dev/full:/dev/bounded-full:r busybox true
	[ -d "$dir/$hex" ] || fail "a start below the mark swept"
	rmdir "$dir/$hex"
}

# A v1-only host (the cgroup2 tree unmounted in a private mount namespace): a plain run's rules go to
# the v1 devices controller, the child moved there after clone.
test_v1_only_plain_run_uses_the_devices_controller() {
	require_real_root
	require_cmd unshare
	[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && [ -d /sys/fs/cgroup/devices ] ||
		skip "not a hybrid host with a v1 devices hierarchy"
	run_cmd unshare -m sh -c 'mount --make-rprivate / && umount /sys/fs/cgroup/unified || exit 99
		"$0" run --tmpfs /devt:dev busybox sh -c "$1
grep :devices: /proc/self/cgroup" probe /devt' "$CELLA" "$PROBE"
	assert_confined
	assert_contains "$OUT" "OPEN-W:/devt/null" "an allowed device"
	assert_match "$OUT" ':devices:/$' "the container's own devices cgroup (its namespace's root)"
}

# Root without any cgroup file system (unmounted in a private mount namespace): the run goes on, and says
# that the rules are not applied; the nodev mounts still keep the image's and mknod'ed nodes closed.
test_no_cgroup_fs_says_rules_are_not_applied() {
	require_real_root
	require_cmd unshare
	make_node_rootfs "$TEST_TMP/root"
	run_cmd unshare -m sh -c 'mount --make-rprivate / && umount -R /sys/fs/cgroup || exit 99
		"$0" run "$2" sh -c "$1" probe / /tmp' "$CELLA" "$PROBE" "$TEST_TMP/root"
	assert_confined
	assert_contains "$ERR" "cella: no cgroup file system is mounted: the container's device rules are not applied" "stderr"
}

# --- --device ----------------------------------------------------------------------------------------

test_device_option_adds_a_node() {
	run_cella run --device /dev/null:/dev/mynull busybox sh -c 'ls -l /dev/mynull && echo x >/dev/mynull && echo wrote'
	assert_ok
	assert_match "$OUT" '^c.* 1, +3 .*/dev/mynull$'
	assert_contains "$OUT" wrote
	run_cella run --device /dev/zero busybox sh -c 'head -c 3 /dev/zero | wc -c'
	assert_ok
	assert_eq 3 "$OUT" "bytes read from --device /dev/zero"
}

test_device_option_gives_a_host_block_device_with_its_permissions() {
	loop_setup
	run_cella run --device "$LOOP" busybox sh -c "head -c 16 $LOOP"
	assert_ok
	assert_eq SECRET-HOST-DISK "$OUT" "read through --device $LOOP"
	run_cella run --device "$LOOP:/dev/xda:r" busybox sh -c 'head -c 16 /dev/xda; echo; (: >>/dev/xda) && echo WRITE-OPENED; true'
	assert_ok
	assert_contains "$OUT" SECRET-HOST-DISK "read through :r"
	assert_not_contains "$OUT" WRITE-OPENED ":r opened for writing"
	run_cella run --device "$LOOP:/dev/xda:r" busybox sh -c "mknod /dev/shm/y b $LOOP_MAJ $LOOP_MIN; head -c 16 /dev/shm/y; true"
	assert_not_contains "$OUT" SECRET-HOST-DISK "another node of the same device on a nodev mount"
}

test_device_option_errors() {
	local spec want
	while IFS='|' read -r spec want; do
		run_cella run --device "$spec" busybox true
		assert_cella_error 125 "$want"
	done <<'EOF'
/dev/nope|--device `/dev/nope`: `/dev/nope` on the host
/etc/passwd|`/etc/passwd` must be an absolute path under /dev/
/dev/null:/mnt/x|the container path `/mnt/x` must be an absolute path under /dev/
/dev/null:/dev/x:rwx|permissions `rwx` must be made of r, w and m
/dev/null:/dev/x:|permissions `` must be made of r, w and m
relative|`relative` must be an absolute host path
/dev/null:/dev/../etc/x|the container path `/dev/../etc/x` must be an absolute path under /dev/
/dev/null:/dev/a:r:w|too many `:`
EOF
	mkdir -p dir
	run_cella run --device "$TEST_TMP/dir:/dev/d" busybox true
	assert_cella_error 125 "is not a character or block device"
}

test_device_and_privileged_refused_by_proot_and_vm() {
	command -v proot >/dev/null 2>&1 || skip "proot not installed"
	run_cella run --backend proot --device /dev/null busybox true
	assert_cella_error 125 "--device /dev/null: the proot backend"
	run_cella run --backend proot --privileged busybox true
	assert_cella_error 125 "--privileged: the proot backend"
	run_cella run --backend vm --device /dev/null busybox true
	assert_cella_error 125 "--device /dev/null: the vm backend"
	run_cella run --backend vm --privileged busybox true
	assert_cella_error 125 "--privileged: the vm backend"
}

# --- --privileged --------------------------------------------------------------------------------------

test_privileged_lifts_the_confinement() {
	local bnd last
	# root of the host: its bounding set; a new user namespace starts with every capability
	bnd=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
	if ! real_root; then
		last=$(cat /proc/sys/kernel/cap_last_cap)
		bnd=$(printf '%016x' $(((1 << (last + 1)) - 1)))
	fi
	run_cella run --privileged busybox sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status; grep -E " /sys | /proc/sys " /proc/self/mountinfo; ls /dev'
	assert_ok
	assert_eq "$bnd" "$(status_field "$OUT" CapEff)" "CapEff under --privileged (every capability cella's caller has)"
	assert_eq 0 "$(status_field "$OUT" Seccomp)" "seccomp mode under --privileged"
	assert_not_contains "$OUT" " /proc/sys " "/proc/sys (not remounted read-only)"
	if real_root; then
		# (rootless with the host's network: the host's /sys bound read-only, as without --privileged)
		assert_match "$OUT" ' /sys rw,' "/sys mount (read-write)"
		# every host device node (here: the loop devices), made in the container's /dev
		for n in $(cd /dev && ls -d loop[0-9]* 2>/dev/null | head -3); do
			assert_contains "$OUT" "$n" "/dev of a --privileged container"
		done
	fi
}

test_privileged_reads_a_host_block_device() {
	loop_setup
	run_cella run --privileged busybox sh -c "head -c 16 $LOOP; echo; mknod /d b $LOOP_MAJ $LOOP_MIN && head -c 16 /d"
	assert_ok
	assert_eq "SECRET-HOST-DISK
SECRET-HOST-DISK" "$OUT" "the host's device and a node of it, under --privileged"
}

# --- what the plan says ---------------------------------------------------------------------------------

test_dry_run_and_inspect_show_device_rules() {
	require_cmd jq
	run_cella run --dry-run --device /dev/null:/dev/mynull:rw busybox true
	assert_ok
	if real_root; then
		assert_eq "deny a *:* rwm" "$(jq -r '.deviceRules[0]' <<<"$OUT")" "first rule"
		jq -e '.deviceRules | index("allow c 1:3 rw") and index("allow c 136:* rwm") and index("allow b *:* m")' <<<"$OUT" >/dev/null ||
			fail "dry-run deviceRules: $(jq -c .deviceRules <<<"$OUT")"
		jq -e '.deviceRules | index("allow c 5:1 rwm") | not' <<<"$OUT" >/dev/null || fail "/dev/console (the host's) is allowed"
	else
		assert_eq null "$(jq -c '.deviceRules' <<<"$OUT")" "deviceRules where the user namespace does the work"
	fi
	run_cella run --dry-run --privileged busybox true
	assert_eq '["allow a *:* rwm"]' "$(jq -c '.deviceRules' <<<"$OUT")" "--privileged deviceRules"
	assert_eq true "$(jq -r '.privileged' <<<"$OUT")" "plan.privileged"
	engine_env
	run_cella create --network none --name insp --device /dev/null:/dev/mynull:rw busybox true
	assert_ok
	run_cella inspect -f '{{.HostConfig.Devices}}' insp
	assert_eq '[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}]' "$OUT" "HostConfig.Devices"
	run_cella inspect -f '{{.HostConfig.Privileged}}' insp
	assert_eq false "$OUT" "HostConfig.Privileged"
	run_cella inspect -f '{{.HostConfig.DeviceRules}}' insp
	if real_root; then
		assert_contains "$OUT" '"deny a *:* rwm","allow c 1:3 rw","allow c *:* m"' "HostConfig.DeviceRules"
	else
		assert_eq null "$OUT" "HostConfig.DeviceRules (user namespace)"
	fi
	run_cella start -a insp
	assert_ok
	run_cella rm -f insp
}
