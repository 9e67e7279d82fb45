# shellcheck shell=bash disable=SC2034
# Security properties that need no extra tool: the cella binary cannot be written from inside,
# host descriptors do not leak, the sealed copy is what stays in the container under --init.

# CVE-2019-5736 class: with --init, PID 1 of the container is cella itself. Its /proc/1/exe must
# be a sealed memfd or a read-only detached mount ("/"), never the host's binary, unless (as an
# ordinary user) the binary is one the user can neither write nor chmod, which the container,
# running as that user in a user namespace, cannot write either.
test_cella_binary_not_writable_from_inside() {
	run_cella run --init busybox readlink /proc/1/exe
	assert_rc 0
	case "$OUT" in
	/ | /memfd:*) return 0 ;;
	esac
	[ "$CELLA_PASS" = user ] || fail "as root, /proc/1/exe in the container is the host binary: $OUT"
	[ "$OUT" = "$CELLA" ] || fail "unexpected /proc/1/exe: $OUT"
	[ ! -w "$CELLA" ] && [ "$(stat -c %u "$CELLA")" != "$(id -u)" ] ||
		fail "a binary this user can write ran without a sealed copy"
}

# The same class without --init: a foreground `cella run` does not re-execute itself; its
# container's first process execs the workload through the exec stub, from a sealed memfd. A
# workload that is a `#!/proc/self/exe` script makes the kernel run whatever /proc/self/exe is at
# that execve: the stub (which says so and exits 126), never the host's cella (which would print
# its version, inside the container, from a file the container could then open for writing).
# (An ordinary user's binary that user cannot write needs neither and runs as is, as above.)
_shebang_root() { # DIR: a root whose /evil is `#!/proc/self/exe version`
	make_rootfs "$1"
	printf '#!/proc/self/exe version\n' >"$1/evil"
	chmod 755 "$1/evil"
}

_assert_exec_sealed() { # what run_cella of /evil gave
	case "$ERR" in *"cella-exec: cella's exec stub"*)
		assert_rc 126
		assert_not_contains "$OUT" "cella version" stdout
		return 0
		;;
	esac
	[ "$CELLA_PASS" = user ] && [ ! -w "$CELLA" ] && [ "$(stat -c %u "$CELLA")" != "$(id -u)" ] && return 0
	fail "the workload's #!/proc/self/exe did not reach the sealed exec stub (rc $RC): $OUT $ERR"
}

test_workload_exec_through_sealed_stub() {
	local before
	before=$(sha256sum "$CELLA" | cut -d' ' -f1)
	_shebang_root "$TEST_TMP/root"
	run_cella run "$TEST_TMP/root" /evil
	_assert_exec_sealed
	run_cella run --network none --read-only "$TEST_TMP/root" /evil
	_assert_exec_sealed
	assert_eq "$before" "$(sha256sum "$CELLA" | cut -d' ' -f1)" "sha256 of the cella binary"
}

# The stub's own failures are the usual ones: not found (127), not executable (126), by PATH too.
test_workload_exec_errors_through_stub() {
	make_rootfs "$TEST_TMP/root"
	run_cella run "$TEST_TMP/root" nosuchcmd-xyz
	assert_rc 127
	assert_contains "$ERR" "exec \`nosuchcmd-xyz\`: executable file not found in \$PATH" stderr
	run_cella run "$TEST_TMP/root" /etc/passwd
	assert_rc 126
	assert_contains "$ERR" "exec \`/etc/passwd\`: Permission denied" stderr
	run_cella run -e PATH=/etc:/bin "$TEST_TMP/root" passwd
	assert_rc 126
	assert_contains "$ERR" "exec \`passwd\`: Permission denied" stderr
	run_cella run -e PATH=/nonexistent::/bin "$TEST_TMP/root" true
	assert_rc 0
	# a descriptor of the stub's (the sync socket) never reaches the workload
	run_cella run "$TEST_TMP/root" ls /proc/self/fd
	assert_eq "0 1 2 3" "$(echo $OUT)" "fds seen by the workload"
}

# A descriptor the caller left open (without close-on-exec) must not reach the container.
test_no_host_fd_leaks() {
	exec 7</etc/hostname
	run_cella run busybox sh -c 'ls /proc/self/fd'
	exec 7<&-
	assert_rc 0
	# ls itself opens one fd (3) to read the directory; 0 1 2 are stdio
	assert_eq "0 1 2 3" "$(echo $OUT)" "fds seen in the container"
}

# The workload's view of the host's mounts: no host mount point outside /proc, /dev and /sys
# (the latter bound from the host when rootless with the host network) is visible.
test_host_mounts_not_visible() {
	local m leaked=""
	run_cella run busybox sh -c 'cut -d" " -f5 /proc/self/mountinfo'
	assert_rc 0
	for m in $(cut -d' ' -f5 /proc/self/mountinfo | sort -u); do
		case "$m" in / | /proc | /proc/* | /dev | /dev/* | /sys | /sys/*) continue ;; esac
		if printf '%s\n' "$OUT" | grep -qx -- "$m"; then leaked="$leaked $m"; fi
	done
	[ -z "$leaked" ] || fail "host mount points visible in the container:$leaked"
}

# Mount propagation: a mount made in the container does not appear on the host, checked while the
# container runs (teardown would undo a leak before a check after exit). As the real root, cella
# runs in a mount namespace whose / is shared, as on systemd hosts, so a missing slave/private
# step shows here whatever the machine's own / is.
test_mounts_do_not_propagate_to_host() {
	mkdir -p "$TEST_TMP/sig"
	cat >"$TEST_TMP/prop.sh" <<'EOS'
[ -z "$BEFORE" ] || awk '{ print $5 }' /proc/self/mountinfo | sort >"$BEFORE"
"$CELLA" run --cap-add SYS_ADMIN --security-opt seccomp=unconfined -v "$SIG:/sig" busybox sh -c \
	'mount -t tmpfs cella-proptest /mnt && grep -c " cella-proptest " /proc/self/mountinfo && touch /sig/ready &&
	 while [ ! -e /sig/go ]; do sleep 0.05; done' &
pid=$!
for i in $(seq 200); do [ -e "$SIG/ready" ] && break; sleep 0.05; done
echo "during: $(grep -c ' cella-proptest ' /proc/self/mountinfo)"
[ -z "$BEFORE" ] || echo "new mount points during the run: $(awk '{ print $5 }' /proc/self/mountinfo | sort | comm -13 "$BEFORE" - | tr '\n' ' ')."
echo "/ is $(awk '$5 == "/" { print ($7 ~ /^shared:/ ? "shared" : "not shared") }' /proc/self/mountinfo)"
touch "$SIG/go"
wait $pid
echo "rc=$?"
echo "after: $(grep -c ' cella-proptest ' /proc/self/mountinfo)"
EOS
	# (in that namespace of its own, nobody else's mounts come and go: any new one is this run's)
	local wrap=() before=""
	is_real_root && wrap=(unshare -m --propagation shared) before=$TEST_TMP/before
	run_cmd env CELLA="$CELLA" SIG="$TEST_TMP/sig" BEFORE="$before" "${wrap[@]}" bash "$TEST_TMP/prop.sh"
	assert_ok
	assert_eq "1" "$(printf '%s\n' "$OUT" | head -n1)" "the container sees its own mount"
	assert_contains "$OUT" "during: 0" "the container's mount on the host while it runs"
	assert_contains "$OUT" "rc=0"
	assert_contains "$OUT" "after: 0" "the container's mount on the host after it exits"
	if is_real_root; then
		assert_contains "$OUT" "/ is shared" "the wrapper's / (so that a leak would show)"
		assert_contains "$OUT" "new mount points during the run: ." "the wrapper's mounts while the container runs"
	fi
	return 0
}

# --- --security-opt seccomp=PROFILE.json: docker's profile format -----------------------------

# A default-allow profile in docker's shape: an archMap, `names` and `name`, errnoRet, args and
# comments; includes/excludes on capabilities. Written here, loaded by cella, probed inside.
_write_allow_profile() {
	cat >"$TEST_TMP/allow.json" <<'JSON'
{
	"defaultAction": "SCMP_ACT_ALLOW",
	"archMap": [
		{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
		{ "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] },
		{ "architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"] }
	],
	"syscalls": [
		{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "comment": "EPERM: no errnoRet" },
		{ "names": ["chmod", "fchmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
		{ "names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
		  "args": [ { "index": 2, "value": 5, "op": "SCMP_CMP_EQ" } ] },
		{ "name": "rmdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 95, "includes": { "caps": ["CAP_SYS_ADMIN"] } },
		{ "names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 36,
		  "excludes": { "caps": ["CAP_SYS_ADMIN"] } },
		{ "names": ["truncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": 27, "includes": { "minKernel": "99.0" } }
	]
}
JSON
}

test_seccomp_profile_docker_format() {
	_write_allow_profile
	run_cella run --security-opt seccomp=allow.json busybox sh -c '
		grep "^Seccomp:" /proc/self/status
		mkdir /d 2>&1; echo "mkdir=$?"
		chmod 600 /etc/hostname 2>&1; echo "chmod=$?"
		renice -n 5 -p $$ >/dev/null 2>&1; echo "renice5=$?"
		renice -n 3 -p $$ >/dev/null 2>&1; echo "renice3=$?"
		: >/tmp/f && truncate -s 1 /tmp/f; echo "truncate=$?"'
	assert_rc 0
	assert_match "$OUT" '^Seccomp:[[:space:]]+2$' "a filter is loaded"
	assert_contains "$OUT" "Operation not permitted" "mkdir's error (SCMP_ACT_ERRNO without errnoRet)"
	assert_contains "$OUT" "mkdir=1"
	assert_contains "$OUT" "Permission denied" "chmod's error (errnoRet 13)"
	assert_contains "$OUT" "chmod=1"
	assert_contains "$OUT" "renice5=1" "setpriority to 5 (an args rule)"
	assert_contains "$OUT" "renice3=0" "setpriority to 3 (not matched by the args rule)"
	assert_contains "$OUT" "truncate=0" "a rule for kernels from 99.0 on does not apply"
}

test_seccomp_profile_includes_and_excludes_follow_capabilities() {
	_write_allow_profile
	run_cella run --security-opt seccomp=allow.json busybox sh -c '
		rmdir /mnt 2>&1; echo "rmdir=$?"; ln -s x /tmp/l 2>&1; echo "ln=$?"'
	assert_rc 0
	assert_contains "$OUT" "rmdir=0" "includes.caps CAP_SYS_ADMIN: not applied without it"
	assert_contains "$OUT" "File name too long" "excludes.caps CAP_SYS_ADMIN: applied without it (errnoRet 36)"
	assert_contains "$OUT" "ln=1"
	run_cella run --cap-add SYS_ADMIN --security-opt seccomp=allow.json busybox sh -c '
		rmdir /mnt 2>&1; echo "rmdir=$?"; ln -s x /tmp/l 2>&1; echo "ln=$?"'
	assert_rc 0
	assert_contains "$OUT" "Operation not supported" "includes.caps applied with --cap-add SYS_ADMIN (errnoRet 95)"
	assert_contains "$OUT" "rmdir=1"
	assert_contains "$OUT" "ln=0" "excludes.caps: dropped with --cap-add SYS_ADMIN"
}

# The shape of docker's own default profile: deny by default (errno 1), an allowlist, rules that
# apply from a kernel version on or with a capability, clone3 answered with ENOSYS.
test_seccomp_profile_allowlist_like_dockers_default() {
	local allow
	allow=$(printf '"%s",' access arch_prctl brk capget capset chdir close close_range dup2 dup3 execve exit \
		exit_group faccessat faccessat2 fcntl fstat futex getcwd getdents64 getegid geteuid getgid getpid getppid \
		getrandom getuid ioctl lseek madvise mmap mprotect munmap newfstatat openat poll prctl pread64 prlimit64 \
		read readlink readlinkat rseq rt_sigaction rt_sigprocmask rt_sigreturn set_robust_list set_tid_address \
		setgid setgroups setresgid setresuid setuid sigaltstack stat statx uname wait4 write writev vfork fork \
		getpgrp setpgid getpgid gettid tgkill kill open dup pipe pipe2 lstat)
	cat >"$TEST_TMP/deny.json" <<JSON
{
	"defaultAction": "SCMP_ACT_ERRNO",
	"defaultErrnoRet": 1,
	"archMap": [ { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
	             { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] } ],
	"syscalls": [
		{ "names": [${allow%,}], "action": "SCMP_ACT_ALLOW" },
		{ "names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "4.8" } },
		{ "names": ["sethostname", "setdomainname"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMIN"] } },
		{ "names": ["clone"], "action": "SCMP_ACT_ALLOW",
		  "args": [ { "index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ" } ],
		  "excludes": { "caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"] } },
		{ "names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMIN"] } },
		{ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": { "caps": ["CAP_SYS_ADMIN"] } }
	]
}
JSON
	run_cella run --security-opt seccomp=deny.json busybox sh -c 'echo started; (echo forked); mkdir /d; hostname h'
	assert_rc 1
	assert_contains "$OUT" started "the workload ran under an allowlist profile"
	assert_contains "$OUT" forked "clone without namespace flags is allowed"
	assert_contains "$ERR" "can't create directory '/d': Operation not permitted" "a call off the list: defaultErrnoRet 1"
	assert_contains "$ERR" "sethostname: Operation not permitted" "sethostname without CAP_SYS_ADMIN"
	run_cella run --cap-add SYS_ADMIN --security-opt seccomp=deny.json busybox sh -c 'hostname h && hostname'
	assert_rc 0
	assert_eq h "$OUT" "sethostname with CAP_SYS_ADMIN (includes.caps)"
}

test_seccomp_profile_invalid_is_refused() {
	printf '%s\n' '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [' \
		'{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},' \
		'{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOON"}]}]}' \
		>"$TEST_TMP/bad.json"
	run_cella run --security-opt seccomp=bad.json busybox true
	assert_cella_error 125 "seccomp profile \`bad.json\`: syscalls[1].args[0].op: unknown operator \`SCMP_CMP_SOON\`"
	printf '{"defaultAction": "SCMP_ACT_ALLOW",' >"$TEST_TMP/cut.json"
	run_cella run --security-opt seccomp=cut.json busybox true
	assert_cella_error 125 "seccomp profile \`cut.json\`: not valid JSON"
	printf '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": []}' >"$TEST_TMP/ok.json"
	run_cella run --security-opt seccomp=ok.json busybox true
	assert_rc 0 "an empty archMap next to architectures"
	run_cella run --security-opt seccomp="$TEST_TMP/missing.json" busybox true
	assert_cella_error 125 "seccomp profile: open \`$TEST_TMP/missing.json\`: No such file or directory"
	run_cella run --security-opt seccomp=unconfined --security-opt nonsense busybox true
	assert_cella_error 125 "--security-opt \`nonsense\`: unknown option"
}

test_seccomp_unconfined_has_no_filter() {
	run_cella run --security-opt seccomp=unconfined busybox grep '^Seccomp:' /proc/self/status
	assert_rc 0
	assert_match "$OUT" '^Seccomp:[[:space:]]+0$' "no filter with seccomp=unconfined"
	_write_allow_profile
	run_cella run --security-opt seccomp=allow.json --security-opt seccomp=unconfined busybox sh -c 'mkdir /d && echo made'
	assert_rc 0
	assert_eq made "$OUT" "the last seccomp option wins (unconfined)"
}

test_seccomp_profile_refused_by_proot_and_vm() {
	_write_allow_profile
	run_cella run --backend vm --security-opt seccomp=allow.json busybox true
	assert_cella_error 125 "--security-opt seccomp=allow.json: not supported by the vm backend"
	command -v proot >/dev/null || skip "proot not installed (the vm backend's refusal was checked)"
	run_cella run --backend proot --security-opt seccomp=allow.json busybox true
	assert_cella_error 125 "--security-opt seccomp=allow.json: the proot backend has no seccomp"
}

# A kept container keeps its profile: the monitor's start and every exec load it from the saved plan.
test_seccomp_profile_engine_container_and_exec() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	_write_allow_profile
	run_cella run -d --name scmp --security-opt seccomp=allow.json busybox sleep 60
	assert_ok
	rm -f "$TEST_TMP/allow.json" # read at create: the file is not needed afterwards
	run_cella exec scmp sh -c 'grep "^Seccomp:" /proc/self/status; mkdir /d'
	assert_rc 1
	assert_match "$OUT" '^Seccomp:[[:space:]]+2$' "exec loads a filter"
	assert_contains "$ERR" "Operation not permitted" "exec runs under the container's profile"
	run_cella inspect -f '{{.Plan.oci.linux.seccomp.defaultAction}}' scmp
	assert_eq SCMP_ACT_ALLOW "$OUT" "inspect shows the profile"
	run_cella rm -f scmp
	assert_ok
}

# --- state directories (docs/security.md "Another local user") -----------------------------------

# _need_personas: the accounts daemon and nobody exist and root can act as them (runuser, the initial user namespace).
_need_personas() {
	require_real_root
	require_cmd runuser
	id -u daemon >/dev/null 2>&1 && id -u nobody >/dev/null 2>&1 || skip "needs the accounts daemon and nobody"
}

# Without XDG_RUNTIME_DIR (su, sudo -u, cron) the OCI state root is /tmp/cella-oci-UID. Another
# local user (daemon) creates it first and plants a container record whose plan has a poststop
# hook; the victim (nobody) runs `cella oci delete --force`. The directory must be refused with
# an error that names it, and the hook must never run as the victim.
test_oci_state_dir_planted_by_another_user() {
	_need_personas
	local vuid dir shared id=planted
	vuid=$(id -u nobody)
	dir=/tmp/cella-oci-$vuid
	shared=$(mktemp -d /tmp/itest-plant.XXXXXX) || fail mktemp
	chmod 0777 "$shared"
	# shellcheck disable=SC2064
	trap "rm -rf '$dir' '$shared'" EXIT
	if [ -e "$dir" ] || [ -L "$dir" ]; then
		owner=$(stat -c %U "$dir")
		case $owner in daemon | nobody) rm -rf "$dir" ;; *) skip "$dir exists and belongs to $owner" ;; esac
	fi
	# a real record to plant: made by root in a root of its own, with a poststop hook that
	# appends the id of whoever runs it to a file
	require_cmd jq
	make_rootfs "$TEST_TMP/b/rootfs"
	(cd "$TEST_TMP/b" && "$CELLA" spec) || fail "cella spec"
	jq --arg m "$shared/hook-ran" '.process.terminal = false | .process.args = ["sleep", "100"]
		| .hooks.poststop = [{"path": "/bin/sh", "args": ["sh", "-c", ("id -u >>" + $m)]}]' \
		"$TEST_TMP/b/config.json" >"$TEST_TMP/c.json" && mv "$TEST_TMP/c.json" "$TEST_TMP/b/config.json" || fail jq
	run_cella --root "$TEST_TMP/gen" create --bundle "$TEST_TMP/b" "$id"
	assert_ok
	cp "$TEST_TMP/gen/$id/plan.json" "$TEST_TMP/gen/$id/state.json" "$TEST_TMP/"
	run_cella --root "$TEST_TMP/gen" delete --force "$id"
	assert_ok
	rm -f "$shared/hook-ran"
	# the attacker plants it
	runuser -u daemon -- mkdir -m 0777 "$dir" "$dir/$id" || fail "plant the directory as daemon"
	runuser -u daemon -- tee "$dir/$id/plan.json" <"$TEST_TMP/plan.json" >/dev/null || fail "plant plan.json"
	runuser -u daemon -- tee "$dir/$id/state.json" <"$TEST_TMP/state.json" >/dev/null || fail "plant state.json"
	# the victim
	run_cmd runuser -u nobody -- env -u XDG_RUNTIME_DIR HOME=/nonexistent "$CELLA" oci delete --force "$id"
	[ ! -s "$shared/hook-ran" ] || fail "the planted poststop hook ran as uid $(cat "$shared/hook-ran")"
	assert_rc_ne 0 "delete in a planted state root"
	assert_contains "$ERR" "$dir" "the error names the directory"
	assert_contains "$ERR" "belongs to" "the error says why"
	run_cmd runuser -u nobody -- env -u XDG_RUNTIME_DIR HOME=/nonexistent "$CELLA" oci list
	assert_rc_ne 0 "list in a planted state root"
}

# The engine's run root without XDG_RUNTIME_DIR is /tmp/cella-run-UID (pid files of network
# helpers that `rm` kills, attach sockets): one planted by another user is refused.
test_engine_run_dir_planted_by_another_user() {
	_need_personas
	local vuid dir data
	vuid=$(id -u nobody)
	dir=/tmp/cella-run-$vuid
	data=$(mktemp -d /tmp/itest-data.XXXXXX) || fail mktemp
	chown nobody "$data"
	# shellcheck disable=SC2064
	trap "rm -rf '$dir' '$data'" EXIT
	if [ -e "$dir" ] || [ -L "$dir" ]; then
		owner=$(stat -c %U "$dir")
		case $owner in daemon | nobody) rm -rf "$dir" ;; *) skip "$dir exists and belongs to $owner" ;; esac
	fi
	runuser -u daemon -- mkdir -m 0777 "$dir" || fail "plant the directory as daemon"
	run_cmd runuser -u nobody -- env -u XDG_RUNTIME_DIR HOME=/nonexistent CELLA_ROOT="$data" "$CELLA" ps -a
	assert_rc 125 "ps with a planted run root"
	assert_contains "$ERR" "$dir" "the error names the directory"
	# a symlink planted there (to a directory the victim owns) is refused too
	rm -rf "$dir"
	runuser -u nobody -- mkdir -m 0700 "$data/real" || fail mkdir
	ln -s "$data/real" "$dir" || fail "ln"
	chown -h daemon "$dir"
	run_cmd runuser -u nobody -- env -u XDG_RUNTIME_DIR HOME=/nonexistent CELLA_ROOT="$data" "$CELLA" ps -a
	assert_rc 125 "ps with a symlink planted as the run root"
	assert_contains "$ERR" "$dir" "the error names the directory"
	# and when nobody planted anything, it is made private to the user
	rm -f "$dir"
	run_cmd runuser -u nobody -- env -u XDG_RUNTIME_DIR HOME=/nonexistent CELLA_ROOT="$data" "$CELLA" ps -a
	assert_rc 0 "ps with no run root yet"
	assert_eq "nobody 700" "$(stat -c '%U %a' "$dir")" "owner and mode of the run root it made"
}

# Every state directory, whoever runs cella: a symlink, or one others may write, is refused
# with an error naming it; one that does not exist is made with mode 0700.
test_state_dirs_must_be_private() {
	mkdir -m 0777 "$TEST_TMP/open"
	mkdir -m 0700 "$TEST_TMP/real"
	ln -s "$TEST_TMP/real" "$TEST_TMP/link"
	CELLA_RUN_ROOT=$TEST_TMP/open CELLA_ROOT=$TEST_TMP/data run_cella ps -a
	assert_cella_error 125 "$TEST_TMP/open"
	CELLA_RUN_ROOT=$TEST_TMP/run CELLA_ROOT=$TEST_TMP/open run_cella images
	assert_cella_error 125 "$TEST_TMP/open"
	CELLA_RUN_ROOT=$TEST_TMP/link CELLA_ROOT=$TEST_TMP/data run_cella ps -a
	assert_cella_error 125 "$TEST_TMP/link"
	run_cella --root "$TEST_TMP/open" list
	assert_rc_ne 0 "oci list in a root others may write"
	assert_contains "$ERR" "$TEST_TMP/open"
	run_cella --root "$TEST_TMP/link" list
	assert_rc_ne 0 "oci list in a symlinked root"
	assert_contains "$ERR" "$TEST_TMP/link"
	CELLA_RUN_ROOT=$TEST_TMP/new/run CELLA_ROOT=$TEST_TMP/new/data run_cella ps -a
	assert_ok
	assert_eq 700 "$(stat -c %a "$TEST_TMP/new/run")" "mode of a new run root"
	assert_eq 700 "$(stat -c %a "$TEST_TMP/new/data")" "mode of a new data root"
}

# --- the sealed re-exec (CVE-2019-5736 class) -------------------------------------------------------

# _exe_sealed PID: /proc/PID/exe is a sealed memfd or a read-only detached mount ("/"), or (an
# ordinary user only) the binary itself when that user can neither write nor chmod it.
_exe_sealed() {
	local exe
	exe=$(readlink "/proc/$1/exe") || fail "no process $1"
	case "$exe" in / | /memfd:*) return 0 ;; esac
	[ "$CELLA_PASS" = user ] && [ ! -w "$CELLA" ] && [ "$(stat -c %u "$CELLA")" != "$(id -u)" ] && return 0
	fail "cella process $1 runs from $exe, not from a sealed copy"
}

# _started_then_check MARKER PID: wait until the workload wrote MARKER, then check the cella process.
_started_then_check() {
	local i
	for i in $(seq 100); do [ -e "$1" ] && break; sleep 0.1; done
	[ -e "$1" ] || { kill "$2" 2>/dev/null; fail "the workload never started"; }
	_exe_sealed "$2"
	wait "$2"
}

# Whether to skip the sealed copy is decided from cella's own parsed options: a workload's
# argument that reads like `--backend=vm` or `--backend proot` must not turn it off.
test_sealed_reexec_not_skipped_by_workload_args() {
	local before pid
	before=$(sha256sum "$CELLA" | cut -d' ' -f1)
	mkdir "$TEST_TMP/s"
	# a foreground run: the protection is the exec stub (test_workload_exec_through_sealed_stub)
	_shebang_root "$TEST_TMP/root"
	run_cella run "$TEST_TMP/root" /evil --backend=vm
	_assert_exec_sealed
	run_cella run "$TEST_TMP/root" /evil x --backend proot
	_assert_exec_sealed
	# under --init, cella itself stays in the container: it re-executes from a sealed copy
	"$CELLA" run --init -v "$TEST_TMP/s:/s" busybox sh -c 'touch /s/run1; sleep 3' --backend=vm &
	_started_then_check "$TEST_TMP/s/run1" $!
	"$CELLA" run --init -v "$TEST_TMP/s:/s" busybox sh -c 'touch /s/run2; sleep 3' x --backend proot &
	_started_then_check "$TEST_TMP/s/run2" $!
	export CELLA_ROOT=$TEST_TMP/data CELLA_RUN_ROOT=$TEST_TMP/run
	trap '"$CELLA" rm -f sealed >/dev/null 2>&1' EXIT
	run_cella run -d --name sealed -v "$TEST_TMP/s:/s" busybox sleep 60
	assert_ok
	"$CELLA" exec sealed sh -c 'touch /s/exec1; sleep 3' x --backend=proot &
	pid=$!
	_started_then_check "$TEST_TMP/s/exec1" $pid
	"$CELLA" rm -f sealed >/dev/null
	assert_eq "$before" "$(sha256sum "$CELLA" | cut -d' ' -f1)" "sha256 of the cella binary"
}
