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
