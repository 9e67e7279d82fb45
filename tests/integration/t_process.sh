# shellcheck shell=bash disable=SC2034
# The process: environment, workdir, user, capabilities, no_new_privs, seccomp.

# Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
DEFAULT_CAPS=00000000a80425fb
NO_CAPS=0000000000000000

test_env_option() {
	run_cella run -e FOO=bar --env BAZ=qux busybox sh -c 'echo "$FOO $BAZ"'
	assert_rc 0
	assert_eq "bar qux" "$OUT"
}

test_env_value_with_equals_and_spaces() {
	run_cella run -e 'FOO=a=b c' busybox sh -c 'echo "$FOO"'
	assert_rc 0
	assert_eq "a=b c" "$OUT"
}

test_env_does_not_inherit_host_env() {
	CELLA_TEST_SECRET=leaked run_cella run busybox env
	assert_rc 0
	assert_not_contains "$OUT" CELLA_TEST_SECRET "container env"
}

test_env_has_path_and_home() {
	run_cella run busybox sh -c 'echo "$PATH"; echo "$HOME"'
	assert_rc 0
	assert_match "$OUT" '(^|:)/bin(:|$)' PATH
	assert_eq /root "$(printf '%s\n' "$OUT" | sed -n 2p)" HOME
}

test_env_file() {
	cat >"$TEST_TMP/env" <<-'EOF'
		# a comment
		FOO=one

		BAR=two words
		   
		# BAZ=commented
		QUX=with=equals
	EOF
	run_cella run --env-file "$TEST_TMP/env" busybox env
	assert_rc 0
	assert_match "$OUT" '^FOO=one$' env
	assert_match "$OUT" '^BAR=two words$' env
	assert_match "$OUT" '^QUX=with=equals$' env
	assert_not_contains "$OUT" BAZ env
	assert_not_contains "$OUT" '#' env
}

test_env_option_overrides_env_file() {
	printf 'FOO=file\n' >"$TEST_TMP/env"
	run_cella run --env-file "$TEST_TMP/env" -e FOO=flag busybox sh -c 'echo $FOO'
	assert_rc 0
	assert_eq flag "$OUT"
}

test_env_file_missing() {
	run_cella run --env-file "$TEST_TMP/no-such-env" busybox true
	assert_cella_error 125 "$TEST_TMP/no-such-env"
}

test_workdir() {
	run_cella run -w /tmp busybox pwd
	assert_rc 0
	assert_eq /tmp "$OUT"
}

test_workdir_long_option() {
	run_cella run --workdir /etc busybox pwd
	assert_rc 0
	assert_eq /etc "$OUT"
}

test_default_workdir_is_root() {
	run_cella run busybox pwd
	assert_rc 0
	assert_eq / "$OUT"
}

test_user_uid_gid() {
	require_id_range
	run_cella run -u 1000:1000 busybox sh -c 'id -u; id -g'
	assert_rc 0
	assert_eq "1000 1000" "$(echo $OUT)" "uid gid"
}

test_user_name_nobody() {
	require_id_range
	run_cella run -u nobody busybox id -u
	assert_rc 0
	assert_eq 65534 "$OUT"
}

test_user_name_sets_primary_group() {
	require_id_range
	run_cella run --user cella busybox sh -c 'id -u; id -g'
	assert_rc 0
	assert_eq "1000 1000" "$(echo $OUT)" "uid gid of user cella"
}

test_user_uid_only_gets_gid_from_passwd() {
	require_id_range
	run_cella run -u 1000 busybox id -g
	assert_rc 0
	assert_eq 1000 "$OUT" "gid of uid 1000 (cella's primary group)"
}

test_user_unknown() {
	run_cella run -u unknownuser busybox true
	assert_cella_error 125 unknownuser
}

test_user_default_root() {
	run_cella run busybox id -u
	assert_rc 0
	assert_eq 0 "$OUT"
}

_caps() { # run the workload printing its capability sets: _caps [cella options...]
	run_cella run "$@" busybox grep ^Cap /proc/self/status
	assert_rc 0
}

test_caps_default_root() {
	_caps
	assert_eq "$DEFAULT_CAPS" "$(status_field "$OUT" CapEff)" CapEff
	assert_eq "$DEFAULT_CAPS" "$(status_field "$OUT" CapPrm)" CapPrm
	assert_eq "$DEFAULT_CAPS" "$(status_field "$OUT" CapBnd)" CapBnd
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapInh)" CapInh
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapAmb)" CapAmb
}

test_caps_drop_all() {
	_caps --cap-drop ALL
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapEff)" CapEff
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapPrm)" CapPrm
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapBnd)" CapBnd
}

test_caps_add_net_admin() {
	_caps --cap-add NET_ADMIN
	assert_eq 00000000a80435fb "$(status_field "$OUT" CapEff)" "CapEff (default + bit 12)"
	assert_eq 00000000a80435fb "$(status_field "$OUT" CapBnd)" "CapBnd (default + bit 12)"
}

test_caps_add_with_cap_prefix() {
	_caps --cap-add CAP_NET_ADMIN
	assert_eq 00000000a80435fb "$(status_field "$OUT" CapEff)" "CapEff (default + bit 12)"
}

test_caps_drop_one() {
	_caps --cap-drop CHOWN
	assert_eq 00000000a80425fa "$(status_field "$OUT" CapEff)" "CapEff (default - bit 0)"
}

test_caps_drop_all_add_one() {
	_caps --cap-drop ALL --cap-add KILL
	assert_eq 0000000000000020 "$(status_field "$OUT" CapEff)" "CapEff (only KILL, bit 5)"
}

test_caps_non_root_user() {
	require_id_range
	_caps -u 1000
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapEff)" CapEff
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapPrm)" CapPrm
	assert_eq "$DEFAULT_CAPS" "$(status_field "$OUT" CapBnd)" CapBnd
	assert_eq "$NO_CAPS" "$(status_field "$OUT" CapAmb)" CapAmb
}

test_caps_unknown_name() {
	run_cella run --cap-add NOT_A_CAP busybox true
	assert_cella_error 125 NOT_A_CAP
}

test_no_new_privs_default_off() {
	run_cella run busybox grep NoNewPrivs: /proc/self/status
	assert_rc 0
	assert_eq 0 "$(status_field "$OUT" NoNewPrivs)" NoNewPrivs
}

test_no_new_privs() {
	run_cella run --security-opt no-new-privileges busybox grep NoNewPrivs: /proc/self/status
	assert_rc 0
	assert_eq 1 "$(status_field "$OUT" NoNewPrivs)" NoNewPrivs
}

test_seccomp_default_filter() {
	run_cella run busybox grep Seccomp: /proc/self/status
	assert_rc 0
	assert_eq 2 "$(status_field "$OUT" Seccomp)" "Seccomp mode"
}

test_seccomp_unconfined() {
	run_cella run --security-opt seccomp=unconfined busybox grep Seccomp: /proc/self/status
	assert_rc 0
	assert_eq 0 "$(status_field "$OUT" Seccomp)" "Seccomp mode"
}

test_seccomp_filter_also_for_non_root_user() {
	require_id_range
	run_cella run -u 1000 busybox grep Seccomp: /proc/self/status
	assert_rc 0
	assert_eq 2 "$(status_field "$OUT" Seccomp)" "Seccomp mode"
}

# busybox has no keyctl applet: probe.c (built static here) makes the calls and reports errnos.
_build_probe() {
	require_cmd cc
	local src
	src=$(dirname "${BASH_SOURCE[0]}")/probe.c
	cc -static -O -o "$TEST_TMP/probe" "$src" 2>"$TEST_TMP/cc.err" ||
		skip "cannot build a static binary here: $(head -n1 "$TEST_TMP/cc.err")"
}

_probe_result() { # SYSCALL: its result in OUT
	printf '%s\n' "$OUT" | awk -v s="$1" '$1 == s { print $2 }'
}

test_seccomp_blocks_keyctl_add_key_bpf_userns() {
	_build_probe
	run_cella run -v "$TEST_TMP/probe:/probe:ro" busybox /probe
	assert_rc 0
	local sc r
	for sc in keyctl add_key bpf unshare_user; do
		r=$(_probe_result "$sc")
		case "$r" in
		EPERM | ENOSYS) ;;
		*) fail "$sc is not blocked by the default filter (result: ${r:-missing})" ;;
		esac
	done
}

test_seccomp_unconfined_allows_keyctl_add_key_bpf_userns() {
	# The counterpart: the same calls reach the kernel without the filter (where the host's own
	# kernel lets this user make them), so the errors above are the filter's.
	_build_probe
	local host
	host=$("$TEST_TMP/probe")
	run_cella run --security-opt seccomp=unconfined -v "$TEST_TMP/probe:/probe:ro" busybox /probe
	assert_rc 0
	local sc r h
	for sc in keyctl add_key bpf unshare_user; do
		r=$(_probe_result "$sc")
		h=$(printf '%s\n' "$host" | awk -v s="$sc" '$1 == s { print $2 }')
		case "$h" in EPERM | ENOSYS) continue ;; esac
		assert_eq "$h" "$r" "$sc with seccomp=unconfined (host: $h)"
	done
}

test_seccomp_blocks_user_namespace() {
	# Without the filter the same command works, so the refusal after it is the filter's doing.
	unshare -U true 2>/dev/null || skip "this kernel does not allow user namespaces to $(id -un)"
	run_cella run --security-opt seccomp=unconfined busybox unshare -U true
	assert_rc 0 "unshare -U with seccomp=unconfined"
	run_cella run busybox unshare -U true
	assert_rc 1 "unshare -U inside the container"
	assert_eq "unshare: unshare(0x10000000): Operation not permitted" "$ERR" "the workload's error"
}

test_mount_denied_without_sys_admin() {
	# (Undone at once if it works, so that a broken engine does not leave a mount on the host.)
	run_cella run busybox sh -c 'mkdir -p /cella-mnt-test; if mount -t tmpfs none /cella-mnt-test; then umount /cella-mnt-test; echo MOUNTED; fi; rmdir /cella-mnt-test'
	assert_rc 0
	assert_not_contains "$OUT" MOUNTED "output of mount inside the container"
}

test_chown_allowed_with_default_caps() {
	require_id_range
	run_cella run --tmpfs /t busybox sh -c 'touch /t/f && chown 1000:1000 /t/f && stat -c %u:%g /t/f'
	assert_rc 0
	assert_eq 1000:1000 "$OUT"
}
