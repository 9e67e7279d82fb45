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

# Mount propagation: a mount made in the container does not appear on the host.
test_mounts_do_not_propagate_to_host() {
	local before after
	before=$(wc -l </proc/self/mountinfo)
	run_cella run --cap-add SYS_ADMIN --security-opt seccomp=unconfined busybox sh -c 'mount -t tmpfs none /mnt && echo mounted'
	after=$(wc -l </proc/self/mountinfo)
	assert_rc 0
	assert_contains "$OUT" mounted
	assert_eq "$before" "$after" "host mount count"
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
