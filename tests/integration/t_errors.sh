# shellcheck shell=bash disable=SC2034
# passes: root user
# passes-why: the messages do not depend on how root came to be; root and cellatest cover both paths (CI time)
# Bad input: each gets one clear "cella: <what>: <why>" line naming the input, exit 125 (126/127
# for what cannot be executed or found), and leaves no mount, temp dir or process behind.

# bad_input CODE NEEDLE CELLA-ARGS...: run cella checking leftovers, then the error contract.
bad_input() {
	local code=$1 needle=$2
	shift 2
	check_no_leftovers run_cella "$@"
	assert_cella_error "$code" "$needle"
}

test_nonexistent_image() {
	bad_input 125 no-such-image-xyz run no-such-image-xyz true
}

test_nonexistent_rootfs_dir() {
	bad_input 125 "$TEST_TMP/no/such/dir" run "$TEST_TMP/no/such/dir" /bin/true
}

test_rootfs_is_a_file() {
	echo x >"$TEST_TMP/notadir"
	bad_input 125 "$TEST_TMP/notadir" run "$TEST_TMP/notadir" /bin/true
}

test_volume_relative_source() {
	mkdir rel # in the cwd ($TEST_TMP): a relative path that would resolve, but is not allowed
	# (`rel:/x` names a volume, as in docker: t_volume.sh)
	bad_input 125 "./rel" run -v ./rel:/x busybox true
	assert_contains "$ERR" "neither an absolute host path nor a volume name"
}

test_volume_missing_source() {
	bad_input 125 "$TEST_TMP/missing-src" run -v "$TEST_TMP/missing-src:/x" busybox true
}

test_volume_relative_target() {
	bad_input 125 rel-target run -v "$TEST_TMP:rel-target" busybox true
}

test_volume_bad_mode() {
	bad_input 125 bogus run -v "$TEST_TMP:/x:bogus" busybox true
}

test_unknown_user() {
	bad_input 125 unknownuser run -u unknownuser busybox true
}

test_unknown_group() {
	bad_input 125 nosuchgroup run -u 0:nosuchgroup busybox true
}

test_bad_tmpfs_size() {
	bad_input 125 abc run --tmpfs /x:size=abc busybox true
}

test_bad_tmpfs_option() {
	bad_input 125 nosuchopt run --tmpfs /x:nosuchopt=1 busybox true
}

test_tmpfs_relative_target() {
	bad_input 125 relx run --tmpfs relx busybox true
}

test_command_not_found() {
	bad_input 127 nosuchcmd-xyz run busybox nosuchcmd-xyz
}

test_not_executable() {
	bad_input 126 /etc/passwd run busybox /etc/passwd
}

test_workdir_relative() {
	bad_input 125 relwd run -w relwd busybox true
}

test_unknown_option() {
	bad_input 125 --no-such-option run --no-such-option busybox true
}

test_missing_image_argument() {
	check_no_leftovers run_cella run
	assert_rc 125
	assert_match "$ERR" '^cella: ' stderr
}

test_unknown_command() {
	check_no_leftovers run_cella no-such-subcommand
	assert_cella_error 125 "unknown command \`no-such-subcommand\`"
}

test_bad_capability() {
	bad_input 125 NOT_A_CAP run --cap-drop NOT_A_CAP busybox true
}

test_bad_security_opt() {
	bad_input 125 bogus-opt run --security-opt bogus-opt busybox true
}

# A root file system whose /proc or /dev is a symlink to the host's must be refused, not followed:
# mounting proc "there" would cover the host's /proc (or mount devices over the host's /dev).
_symlinked_rootfs() { # NAME: rootfs with /NAME -> /NAME
	make_rootfs "$TEST_TMP/rootfs"
	rmdir "$TEST_TMP/rootfs/$1"
	ln -s "/$1" "$TEST_TMP/rootfs/$1"
}

_host_dir_fingerprint() { # DIR: what a mount over DIR would change
	stat -c '%d %i' "$1"
	awk -v p="$1" '$5 == p' /proc/self/mountinfo | wc -l
}

test_rootfs_proc_symlink_to_host() {
	_symlinked_rootfs proc
	local before
	before=$(_host_dir_fingerprint /proc)
	check_no_leftovers run_cella run "$TEST_TMP/rootfs" /bin/true
	assert_eq "$before" "$(_host_dir_fingerprint /proc)" "host /proc"
	assert_cella_error 125 proc
}

test_rootfs_dev_symlink_to_host() {
	_symlinked_rootfs dev
	local before
	before=$(_host_dir_fingerprint /dev)
	check_no_leftovers run_cella run "$TEST_TMP/rootfs" /bin/true
	assert_eq "$before" "$(_host_dir_fingerprint /dev)" "host /dev"
	assert_cella_error 125 dev
}

test_rootfs_sys_symlink_to_host() {
	_symlinked_rootfs sys
	check_no_leftovers run_cella run "$TEST_TMP/rootfs" /bin/true
	assert_cella_error 125 sys
}

test_volume_target_symlink_escaping_root() {
	# A volume target that is a symlink inside the rootfs pointing out of it must not mount over
	# the host path it points to.
	make_rootfs "$TEST_TMP/rootfs"
	mkdir "$TEST_TMP/outside" "$TEST_TMP/src"
	touch "$TEST_TMP/outside/keep" "$TEST_TMP/src/payload"
	ln -s "$TEST_TMP/outside" "$TEST_TMP/rootfs/escape"
	check_no_leftovers run_cella run -v "$TEST_TMP/src:/escape" "$TEST_TMP/rootfs" /bin/ls /escape
	assert_eq keep "$(ls "$TEST_TMP/outside")" "host dir the symlink points to"
	# Either refused (125), or the symlink resolved inside the root (the mount lands in
	# rootfs/$TEST_TMP/outside and the workload sees the payload at /escape).
	if [ "$RC" != 0 ]; then
		assert_cella_error 125 escape
	else
		assert_eq payload "$OUT" "ls /escape"
	fi
}

test_tmpfs_target_symlink_escaping_root() {
	make_rootfs "$TEST_TMP/rootfs"
	mkdir "$TEST_TMP/outside"
	touch "$TEST_TMP/outside/keep"
	ln -s "$TEST_TMP/outside" "$TEST_TMP/rootfs/escape"
	# The symlink resolves inside the root: the missing target is made there, the tmpfs lands on
	# it, and the workload sees it through the symlink; the host directory of that name is
	# untouched.
	check_no_leftovers run_cella run --tmpfs /escape "$TEST_TMP/rootfs" /bin/sh -c \
		"echo in-tmpfs >/escape/f && cat $TEST_TMP/outside/f && grep \" $TEST_TMP/outside \" /proc/self/mountinfo | sed 's/.* - \\([^ ]*\\) .*/\\1/'"
	assert_ok
	assert_eq "in-tmpfs
tmpfs" "$OUT" "the file written through /escape, and the file system at the symlink's target in the root"
	assert_eq keep "$(ls "$TEST_TMP/outside")" "host dir the symlink points to"
	[ -d "$TEST_TMP/rootfs$TEST_TMP/outside" ] || fail "the target was not made inside the root"
	assert_eq "" "$(ls -A "$TEST_TMP/rootfs$TEST_TMP/outside")" "the root's directory under the tmpfs"
}

# A volume or a tmpfs on the container's root `/` used to be dropped without a word.
test_volume_or_tmpfs_on_root_refused() {
	bad_input 125 "$TEST_TMP:/" run -v "$TEST_TMP:/" busybox true
	bad_input 125 "$TEST_TMP://" run -v "$TEST_TMP://" busybox true
	bad_input 125 "tmpfs \`/\`" run --tmpfs / busybox true
	bad_input 125 "target=/" run --mount "type=bind,source=$TEST_TMP,target=/" busybox true
	bad_input 125 "target=/." run --mount "type=tmpfs,target=/." busybox true
}

# --mount's readonly/ro takes docker's spellings of a boolean (1 t T TRUE true True, 0 f F FALSE
# false False, or none); anything else (yes, maybe) is an error, never a read-write mount.
test_mount_readonly_bad_value() {
	bad_input 125 "readonly=yes" run --mount "type=bind,source=$TEST_TMP,target=/m,readonly=yes" busybox true
	bad_input 125 "readonly=maybe" run --mount "type=bind,source=$TEST_TMP,target=/m,readonly=maybe" busybox true
	bad_input 125 "ro=yes" run --mount "type=bind,source=$TEST_TMP,target=/m,ro=yes" busybox true
	bad_input 125 "ro=" run --mount "type=tmpfs,target=/m,ro=" busybox true
}
