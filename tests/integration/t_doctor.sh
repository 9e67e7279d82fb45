# shellcheck shell=bash disable=SC2034
# cella doctor: what it reports comes from real attempts. Where namespaces are really refused (a
# seccomp filter, tests/integration/nons.c; a user namespace whose user.max_user_namespaces is 0)
# it says so, with the cause and the fix, and picks proot.

doctor_env() {
	# the overlay probe's scratch directory is the data root when it exists: keep it in the test's
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	mkdir -p "$CELLA_ROOT"
}

# doctor_json ARGS...: run `cella ARGS... doctor --format json` style commands and check the output
# parses; JSON holds it.
doctor_json() {
	require_cmd jq
	"$@"
	printf '%s\n' "$OUT" | jq -e . >/dev/null || fail "doctor --format json does not print JSON"
	JSON=$OUT
}

jqr() { printf '%s\n' "$JSON" | jq -r "$1"; }

build_nons() {
	require_cmd cc
	cc -O2 -o "$TEST_TMP/nons" "$(dirname "${BASH_SOURCE[0]}")/nons.c" 2>"$TEST_TMP/cc.err" ||
		fail "build nons.c: $(cat "$TEST_TMP/cc.err")"
	run_cmd "$TEST_TMP/nons" unshare -U true
	assert_rc_ne 0 "nons really refuses a user namespace"
}

# What util-linux's unshare(1) says about the namespaces a container gets here.
unshare_agrees() {
	if is_root; then
		unshare -m -p -u -i true 2>/dev/null
	else
		unshare -U -m -p -u -i true 2>/dev/null
	fi
}

test_doctor_says_ns_is_the_default_here() {
	doctor_env
	require_cmd unshare
	unshare_agrees || skip "namespaces are refused on this host (unshare(1) fails too)"
	local t0 t1
	check_no_leftovers run_cella doctor
	assert_rc 0
	assert_contains "$OUT" "Backends (default: ns)"
	assert_match "$OUT" '^  ns +ok +'
	for section in "Rootless (user " "Kernel " "Cgroups" "Image store" "Programs"; do
		assert_contains "$OUT" "$section"
	done
	for item in "mount namespace" "PID namespace" "network namespace" "user namespace" "overlay mount" \
		seccomp pidfd_open openat2 "new mount API" "Landlock scoping" /dev/kvm version delegation overlay; do
		assert_match "$OUT" "^  $item +(ok|no|missing) +[^ ]" "the line for $item"
	done
	assert_match "$OUT" '^  vm +(ok|no) +[^ ]'
	if command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 && [ -x "$(dirname "$CELLA")/cella-vminit" ]; then
		assert_match "$OUT" '^  vm +ok +.*qemu-system-x86_64, kernel /boot/vmlinuz-'
	fi
	# well under a second on an idle machine; 2 s leaves room for a busy one
	t0=$(date +%s%N)
	run_cella doctor
	t1=$(date +%s%N)
	assert_rc 0
	[ $(((t1 - t0) / 1000000)) -lt 2000 ] || fail "doctor took $(((t1 - t0) / 1000000)) ms"
	[ -z "$(ls "$CELLA_ROOT")" ] || fail "the overlay probe left $(ls "$CELLA_ROOT") in the data root"
}

test_doctor_json_has_the_keys() {
	doctor_env
	doctor_json run_cella doctor --format json
	assert_rc 0
	assert_eq "default_backend backends kernel cgroups image_store programs network" "$(jqr 'keys_unsorted | join(" ")')"
	assert_eq "private helper fix" "$(jqr '.network | keys_unsorted | join(" ")')" "network's keys"
	assert_eq "ns proot vm" "$(jqr '.backends | keys_unsorted | join(" ")')"
	for b in ns proot vm; do
		assert_eq "true" "$(jqr ".backends.$b | has(\"available\") and has(\"reason\") and has(\"fix\")")" "backend $b's keys"
	done
	if [ "$(jqr .backends.vm.available)" = true ]; then
		assert_eq null "$(jqr .backends.vm.reason)" "an available vm backend has no reason"
	else
		assert_match "$(jqr .backends.vm.fix)" "qemu-system-x86" "the vm backend's fix"
	fi
	for k in mount_ns pid_ns net_ns user_ns overlay_userns seccomp pidfd_open openat2 mount_api landlock kvm; do
		assert_eq "true" "$(jqr ".kernel.$k | (.ok | type == \"boolean\") and has(\"errno\") and (.detail | length > 0)")" \
			"kernel.$k"
	done
	assert_eq "$(uname -r)" "$(jqr .kernel.release)"
	# the probes agree with what is tried here by other means
	if [ -e /dev/kvm ]; then :; else assert_eq "false ENOENT" "$(jqr '"\(.kernel.kvm.ok) \(.kernel.kvm.errno)"')"; fi
	if unshare_agrees; then
		assert_eq "ns true" "$(jqr '"\(.default_backend) \(.backends.ns.available)"')"
		assert_eq null "$(jqr .backends.ns.reason)"
	fi
	local want=none
	if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
		want=v2
	elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
		want=hybrid
	elif grep -q 'cgroup ' /proc/self/mounts; then
		want=v1
	fi
	assert_eq "$want" "$(jqr .cgroups.version)" "cgroup version"
	assert_eq "true" "$(jqr '.cgroups | (.v1_controllers | type == "array") and (.v2_controllers | type == "array") and (.delegated | type == "boolean")')"
	assert_eq "proot newuidmap newgidmap pasta slirp4netns qemu-system-x86_64 firecracker mkfs.ext4 debootstrap fuse-overlayfs skopeo crun runc" \
		"$(jqr '.programs | keys_unsorted | join(" ")')"
	command -v pasta >/dev/null || assert_eq null "$(jqr .programs.pasta)" "a program that is not installed"
	if is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map; then
		assert_eq "kernel overlay" "$(jqr .image_store.mode)"
	elif [ "$(jqr .image_store.overlay)" = true ]; then
		assert_eq "kernel overlay with userxattr" "$(jqr .image_store.mode)"
	fi
}

test_doctor_reports_proot_and_its_version() {
	doctor_env
	require_cmd proot
	doctor_json run_cella doctor --format json
	assert_eq "$(command -v proot)" "$(jqr .programs.proot.path)" "proot's path"
	local v
	v=$(jqr .programs.proot.version)
	[ -n "$v" ] && [ "$v" != null ] || fail "no proot version" # (fail exits)
	assert_contains "$(proot --version 2>&1)" "$v" "proot --version"
	assert_eq "true $(command -v proot) $v" "$(jqr '"\(.backends.proot.available) \(.backends.proot.path) \(.backends.proot.version)"')"
	run_cella doctor
	assert_match "$OUT" "^  proot +ok +$v \\($(command -v proot)\\)$" "the programs line"
	# a version option that never answers costs 2 s, not a hang; --version goes to no terminal
	printf '#!/bin/sh\necho "fakeproot 9.8.7-test"\n' >"$TEST_TMP/fakeproot"
	printf '#!/bin/sh\nsleep 30\n' >"$TEST_TMP/hangproot"
	chmod +x "$TEST_TMP/fakeproot" "$TEST_TMP/hangproot"
	CELLA_PROOT=$TEST_TMP/fakeproot doctor_json run_cella doctor --format json
	assert_eq "$TEST_TMP/fakeproot fakeproot 9.8.7-test" "$(jqr '"\(.programs.proot.path) \(.programs.proot.version)"')"
	local t0 t1
	t0=$(date +%s)
	CELLA_PROOT=$TEST_TMP/hangproot run_cella doctor
	t1=$(date +%s)
	assert_rc 0
	[ $((t1 - t0)) -le 5 ] || fail "a hanging proot --version held doctor for $((t1 - t0)) s"
	assert_match "$OUT" "^  proot +ok +$TEST_TMP/hangproot \\(no answer to its version option within 2 s\\)"
	CELLA_PROOT=$TEST_TMP/nosuch run_cella doctor
	assert_match "$OUT" "^  proot +missing +\\\$CELLA_PROOT \`$TEST_TMP/nosuch\`: No such file or directory"
}

test_doctor_rootless_details() {
	doctor_env
	doctor_json run_cella doctor --format json
	if is_root; then
		assert_eq "false" "$(jqr .backends.ns.rootless.needed)"
		run_cella doctor
		assert_match "$OUT" '^  user namespace +ok +not needed: as root'
		return 0
	fi
	local user start count
	user=$(id -un)
	read -r start count < <(awk -F: -v u="$user" -v id="$(id -u)" '$1 == u || $1 == id { print $2, $3; exit }' /etc/subuid)
	assert_eq true "$(jqr .backends.ns.rootless.needed)"
	if [ -z "$start" ]; then
		assert_eq "null false" "$(jqr '"\(.backends.ns.rootless.subuid) \(.backends.ns.rootless.id_range)"')"
		run_cella doctor
		assert_contains "$OUT" "rootless with one id only: add a range to /etc/subuid and /etc/subgid"
		return 0
	fi
	assert_eq "$start $count" "$(jqr '"\(.backends.ns.rootless.subuid.start) \(.backends.ns.rootless.subuid.count)"')"
	run_cella doctor
	assert_match "$OUT" "^  subuid +ok +$start-$((start + count - 1)) \\($count ids\\)"
	if [ -x /usr/bin/newuidmap ] && [ -x /usr/bin/newgidmap ] && grep -q "^$user:" /etc/subgid; then
		assert_match "$OUT" "^  ids +ok +containers get $((count + 1)) ids"
	fi
}

test_doctor_under_a_seccomp_filter_says_ns_is_refused() {
	doctor_env
	build_nons
	run_cmd "$TEST_TMP/nons" "$CELLA" doctor
	assert_match "$OUT" '^  ns +no +creating .* is refused \(EPERM\): a seccomp filter denies unshare'
	assert_match "$OUT" '^  user namespace +no +unshare\(CLONE_NEWUSER\) is refused \(EPERM\): a seccomp filter'
	if command -v proot >/dev/null; then
		assert_rc 0 "doctor's exit status with proot as the default"
		assert_contains "$OUT" "Backends (default: proot)"
		doctor_json run_cmd "$TEST_TMP/nons" "$CELLA" doctor --format json
		assert_eq proot "$(jqr .default_backend)"
		assert_eq "false EPERM" "$(jqr '"\(.backends.ns.available) \(.kernel.user_ns.errno)"')"
		assert_contains "$(jqr .backends.ns.reason)" "seccomp"
		assert_contains "$(jqr .backends.ns.fix)" "proot backend"
	fi
	# and with no proot either: nothing can run, exit 1
	CELLA_PROOT=$TEST_TMP/nosuch run_cmd "$TEST_TMP/nons" "$CELLA" doctor
	assert_rc 1 "doctor's exit status when no backend works"
	assert_contains "$OUT" "Backends (default: none)"
	CELLA_PROOT=$TEST_TMP/nosuch doctor_json run_cmd "$TEST_TMP/nons" "$CELLA" doctor --format json
	assert_eq none "$(jqr .default_backend)"
}

# limited_userns CMD...: CMD in a new user namespace whose user.max_user_namespaces is 0, as uid
# 1000 of it when it can map a range of ids (else as its root). Sets RC, OUT, ERR; LIMITED_AS.
limited_userns() {
	local go pid me s c
	go=$TEST_TMP/go
	mkfifo "$go"
	me=$(readlink /proc/self/ns/user)
	LIMITED_AS=root
	if is_root && awk '{ s += $3 } END { exit !(s > 65536) }' /proc/self/uid_map; then
		LIMITED_AS=user
	elif ! is_root && [ -x /usr/bin/newuidmap ] && [ -x /usr/bin/newgidmap ] &&
		grep -q "^$(id -un):" /etc/subuid && grep -q "^$(id -un):" /etc/subgid; then
		LIMITED_AS=user
	fi
	# inner.sh is executed once the ids are mapped: only then is it root of the namespace, with the
	# capability (CAP_SYS_RESOURCE there) to lower the limit
	cat >"$TEST_TMP/inner.sh" <<-'EOF'
		echo 0 >/proc/sys/user/max_user_namespaces || exit 99
		if [ "$1" = user ]; then shift; exec setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; fi
		shift
		exec "$@"
	EOF
	unshare -U sh -c 'read _ <"$1"; shift; exec sh "$@"' _ "$go" "$TEST_TMP/inner.sh" "$LIMITED_AS" "$@" \
		>"$TEST_TMP/l.out" 2>"$TEST_TMP/l.err" &
	pid=$!
	while [ "$(readlink "/proc/$pid/ns/user")" = "$me" ]; do sleep 0.01; done
	if [ "$LIMITED_AS" = root ]; then
		echo "0 $(id -u) 1" >"/proc/$pid/uid_map" && echo deny >"/proc/$pid/setgroups" &&
			echo "0 $(id -g) 1" >"/proc/$pid/gid_map" || fail "map the ids of the user namespace"
	elif is_root; then
		echo "0 0 65536" >"/proc/$pid/uid_map" && echo "0 0 65536" >"/proc/$pid/gid_map" || fail "map ids"
	else
		read -r _ s c < <(grep "^$(id -un):" /etc/subuid | tr : ' ')
		newuidmap "$pid" 0 "$(id -u)" 1 1 "$s" "$c" || fail "newuidmap"
		read -r _ s c < <(grep "^$(id -un):" /etc/subgid | tr : ' ')
		newgidmap "$pid" 0 "$(id -g)" 1 1 "$s" "$c" || fail "newgidmap"
	fi
	echo go >"$go"
	wait "$pid"
	RC=$?
	OUT=$(cat "$TEST_TMP/l.out")
	ERR=$(cat "$TEST_TMP/l.err")
	LAST_CMD="(user namespace with user.max_user_namespaces=0, as $LIMITED_AS) $*"
}

test_doctor_when_max_user_namespaces_is_zero() {
	require_cmd unshare setpriv jq
	unshare -U true 2>/dev/null || skip "this host refuses user namespaces already"
	# no data root: the overlay probe then runs in /tmp, where the namespace's uid 1000 can write
	CELLA_ROOT=$TEST_TMP/nosuch limited_userns "$CELLA" doctor --format json
	[ "$RC" = 99 ] && skip "the kernel does not let the root of a user namespace lower user.max_user_namespaces"
	JSON=$OUT
	printf '%s\n' "$JSON" | jq -e . >/dev/null || fail "doctor --format json in the limited namespace"
	echo "doctor ran as $LIMITED_AS of the limited user namespace"
	assert_eq "false ENOSPC" "$(jqr '"\(.kernel.user_ns.ok) \(.kernel.user_ns.errno)"')"
	assert_contains "$(jqr .kernel.user_ns.detail)" "user.max_user_namespaces is 0 — \`sysctl -w user.max_user_namespaces=15000\`"
	if [ "$LIMITED_AS" = user ]; then
		# rootless containers need a user namespace: the ns backend cannot run, proot is the default
		assert_eq false "$(jqr .backends.ns.available)"
		assert_contains "$(jqr .backends.ns.reason)" "(ENOSPC): user.max_user_namespaces is 0"
		assert_eq "\`sysctl -w user.max_user_namespaces=15000\`" "$(jqr .backends.ns.fix)"
		command -v proot >/dev/null && assert_eq "proot 0" "$(jqr .default_backend) $RC"
	else
		# the root of a user namespace makes the other namespaces in its own: ns still works
		assert_eq "true ns 0" "$(jqr '"\(.backends.ns.available) \(.default_backend)"') $RC"
	fi
}

test_doctor_usage_errors() {
	run_cella doctor --format yaml
	assert_cella_error 125 "--format \`yaml\`"
	run_cella doctor extra
	assert_cella_error 125 "unexpected argument \`extra\`"
	run_cella doctor --help
	assert_rc 0
	assert_contains "$OUT" "--format"
	run_cella --help
	assert_match "$OUT" '^  doctor +Check what this host can run'
}
