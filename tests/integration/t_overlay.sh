# The overlay op through --mount: persistent, ephemeral and read-only layers, and the image root.

mk_layers() {
	mkdir -p "$TEST_TMP/l1" "$TEST_TMP/l2" "$TEST_TMP/up" "$TEST_TMP/wk"
	echo one >"$TEST_TMP/l1/a"
	echo low >"$TEST_TMP/l1/b"
	echo high >"$TEST_TMP/l2/b"
}

test_overlay_read_only_two_lowers() {
	mk_layers
	run_cella run --mount "type=overlay,target=/ov,lower=$TEST_TMP/l2:$TEST_TMP/l1,readonly" busybox \
		sh -c 'cat /ov/a /ov/b; touch /ov/c 2>&1 || echo refused'
	assert_rc 0
	assert_eq "one
high
touch: /ov/c: Read-only file system
refused" "$OUT" "upper layer wins, writes refused"
}

test_overlay_persistent_writes_land_in_upper() {
	mk_layers
	run_cella run --mount "type=overlay,target=/ov,lower=$TEST_TMP/l1,upper=$TEST_TMP/up,work=$TEST_TMP/wk" busybox \
		sh -c 'echo new >/ov/c && echo changed >/ov/a && cat /ov/a'
	assert_rc 0
	assert_eq changed "$OUT" "read back"
	assert_eq new "$(cat "$TEST_TMP/up/c")" "new file in the upper dir on the host"
	assert_eq changed "$(cat "$TEST_TMP/up/a")" "copied-up file in the upper dir"
	assert_eq one "$(cat "$TEST_TMP/l1/a")" "lower layer untouched"
}

test_overlay_ephemeral_leaves_lower_untouched() {
	mk_layers
	run_cella run --mount "type=overlay,target=/ov,lower=$TEST_TMP/l1" busybox sh -c 'echo x >/ov/a; rm /ov/b; ls /ov'
	assert_rc 0
	assert_eq a "$OUT" "the container sees its changes"
	assert_eq one "$(cat "$TEST_TMP/l1/a")" "lower file unchanged"
	[ -f "$TEST_TMP/l1/b" ] || fail "lower file removed on the host"
}

test_overlay_read_only_needs_two_lowers() {
	mk_layers
	run_cella run --mount "type=overlay,target=/ov,lower=$TEST_TMP/l1,readonly" busybox true
	assert_rc 125
	assert_contains "$ERR" "cella: overlay on \`/ov\`: a read-only overlay needs at least two lower layers"
}

test_overlay_missing_lower_is_named() {
	run_cella run --mount "type=overlay,target=/ov,lower=$TEST_TMP/nope" busybox true
	assert_rc 125
	assert_contains "$ERR" "overlay lower \`$TEST_TMP/nope\`"
}

# The image is the lower layer of the container's root: its changes vanish at exit.
test_image_root_is_copy_on_write() {
	run_cella run busybox sh -c 'echo scribble >/etc/motd-test && rm /bin/true && echo done'
	assert_rc 0
	run_cella run busybox sh -c 'cat /etc/motd-test 2>/dev/null; ls /bin/true'
	assert_rc 0
	assert_eq /bin/true "$OUT" "a second container sees the pristine image"
}

# A plain run of an image hands its mount namespace, once the exit is known, to a small process that tears it
# down after cella has reported (an overlay's unmount waits for RCU grace periods: docs/benchmarks.md). That
# process must not outlive the teardown: a moment after 10 runs, nothing on the machine holds any of their
# mount namespaces (as a process's own or as an open fd).
test_image_run_teardown_leaves_nothing_held() {
	local i ns="" left=""
	for i in $(seq 10); do
		run_cella run busybox readlink /proc/self/ns/mnt
		assert_ok
		assert_match "$OUT" '^mnt:\[[0-9]+\]$'
		ns="$ns$OUT
"
	done
	for i in $(seq 50); do
		left=$(find /proc/[0-9]*/fd /proc/[0-9]*/ns -maxdepth 1 -lname 'mnt:*' -printf '%l %p\n' 2>/dev/null |
			grep -F -f <(printf '%s' "$ns") || true)
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || fail "the runs' mount namespaces are still held: $left"
}
