# The proot backend: the same behaviour tests as the ns backend where they apply (env, workdir,
# volumes, exit codes, logs, stop, exec, cp), the refusals, and the automatic fallback on a host
# where namespaces are truly refused (a seccomp filter, tests/integration/nons.c).

proot_env() {
	require_cmd proot
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

test_proot_run_basics() {
	proot_env
	run_cella run --backend proot busybox sh -c 'echo hi; id -u; uname -r; ls / | grep -c etc'
	assert_ok
	assert_eq "hi
0
$(uname -r)
1" "$OUT" "output, fake root, the host's kernel release, directories readable"
	run_cella run --backend proot --kernel-release 6.1.0-cella busybox uname -r
	assert_eq "6.1.0-cella" "$OUT" "--kernel-release"
	run_cella run --backend proot busybox sh -c 'exit 3'
	assert_rc 3
	run_cella run --backend proot busybox nosuchcmd-xyz
	assert_rc 127
	assert_contains "$ERR" "nosuchcmd-xyz" "not found names the command"
	run_cella run --backend proot -e FOO=bar -w /work busybox sh -c 'echo $FOO; pwd'
	assert_eq "bar
/work" "$OUT" "env and workdir (created)"
	run_cella run --backend proot busybox cat /etc/hostname /etc/hosts
	assert_ok
	assert_contains "$OUT" "localhost" "placed files"
	mkdir -p "$TEST_TMP/vol"
	echo from-host >"$TEST_TMP/vol/in"
	run_cella run --backend proot -v "$TEST_TMP/vol:/vol" busybox sh -c 'cat /vol/in; echo from-ctr >/vol/out'
	assert_eq from-host "$OUT" "a volume is visible"
	assert_eq from-ctr "$(cat "$TEST_TMP/vol/out")" "and writable"
	run_cella run --backend proot --tmpfs /scratch busybox sh -c 'echo x >/scratch/f && cat /scratch/f'
	assert_eq x "$OUT" "a tmpfs is a fresh directory"
	run_cella run --backend proot busybox sh -c 'echo changed >/etc/motd'
	assert_ok
	run_cella run --backend proot busybox cat /etc/motd
	assert_rc_ne 0 "a foreground run's changes do not reach the image"
	[ -z "$(ls -d "$CELLA_ROOT"/proot-root-* "$CELLA_RUN_ROOT"/proot-run-* 2>/dev/null)" ] ||
		fail "copies or state left: $(ls -d "$CELLA_ROOT"/proot-* "$CELLA_RUN_ROOT"/proot-*)"
}

# A directory root that lacks the targets of the binds (a busybox root has no /etc/hosts,
# hostname or resolv.conf) gets empty mount points, as the ns backend leaves them, and the
# container still sees the host's files; a target that is a symlink out of the root creates
# nothing outside it.
test_proot_directory_root_mount_points() {
	proot_env
	make_rootfs "$TEST_TMP/r"
	ln -s "$TEST_TMP/outside" "$TEST_TMP/r/etc/resolv.conf"
	run_cella run --backend proot "$TEST_TMP/r" cat /etc/hosts
	assert_ok
	assert_eq "$(cat /etc/hosts)" "$OUT" "the host's /etc/hosts"
	[ -f "$TEST_TMP/r/etc/hosts" ] && [ ! -s "$TEST_TMP/r/etc/hosts" ] || fail "no empty mount point /etc/hosts in the root"
	[ -f "$TEST_TMP/r/etc/hostname" ] || fail "no mount point /etc/hostname in the root"
	[ ! -e "$TEST_TMP/outside" ] || fail "a file was created outside the root through its symlink"
	[ -L "$TEST_TMP/r/etc/resolv.conf" ] || fail "the root's symlink was replaced"
	run_cella run --backend proot "$TEST_TMP/r" cat /etc/hostname
	assert_eq "$(cat /etc/hostname)" "$OUT" "the host's /etc/hostname, second run"
}

test_proot_refusals() {
	proot_env
	local args
	for args in "--network none" "--read-only" "--init" "--hostname h" "--cap-add NET_ADMIN" "--cap-drop ALL" \
		"--security-opt no-new-privileges" "-v /tmp:/t:ro" "--mount type=overlay,target=/o,lower=/tmp:/var"; do
		# shellcheck disable=SC2086
		run_cella run --backend proot $args busybox true
		assert_cella_error 125 "proot backend"
	done
	run_cella run --backend proot --proot-path /nonexistent/proot busybox true
	assert_cella_error 125 "/nonexistent/proot"
	run_cella run --kernel-release 5.0 busybox true
	assert_cella_error 125 "only for the proot backend"
	run_cella run --backend bogus busybox true
	assert_cella_error 125 "bogus"
}

test_proot_engine_lifecycle() {
	proot_env
	run_cella run -d --name pr --backend proot busybox sh -c 'echo started; echo data >/tmp/made; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done'
	assert_ok
	wait_log pr started
	run_cella ps
	assert_match "$OUT" "Up .* pr$" "ps shows it running"
	run_cella inspect -f '{{.Backend}} {{.Proot.KernelRelease}} {{.Proot.KernelReleaseFaked}}' pr
	assert_eq "proot $(uname -r) false" "$OUT" "inspect: backend and kernel release"
	run_cella exec pr ls /tmp
	assert_contains "$OUT" "made" "exec lists a directory"
	run_cella inspect -f '{{.Proot.RootCopy}}' pr
	assert_match "$OUT" '^(reflink|copy_file_range|read/write)$' "inspect: how the image was copied"
	run_cella exec pr cat /tmp/made
	assert_eq data "$OUT" "exec runs in the same root"
	run_cella exec pr sh -c 'exit 7'
	assert_rc 7
	echo into >"$TEST_TMP/f"
	run_cella cp "$TEST_TMP/f" pr:/tmp/f
	assert_ok
	run_cella exec pr cat /tmp/f
	assert_eq into "$OUT" "cp into a running proot container"
	run_cella cp pr:/tmp/made "$TEST_TMP/back"
	assert_eq data "$(cat "$TEST_TMP/back")" "cp out of it"
	# top: proot and its descendants (no pid namespace of its own), not the rest of the host
	sleep 4323 &
	local hostsleep=$!
	run_cella top pr
	kill "$hostsleep"
	assert_ok "top"
	assert_contains "$OUT" "while :; do sleep 0.1" "top lists the workload"
	assert_not_contains "$OUT" "sleep 4323" "top does not list the host's other processes"
	local t0 t1
	t0=$(date +%s%N)
	run_cella stop -t 10 pr
	assert_ok
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -lt 5000 ] || fail "stop took $(((t1 - t0) / 1000000)) ms: SIGTERM did not reach the workload"
	run_cella logs pr
	assert_contains "$OUT" "bye" "the workload got SIGTERM"
	[ -z "$(pgrep -f 'while :; do sleep 0.1' || true)" ] || fail "processes left after stop"
	run_cella start pr
	assert_ok
	run_cella exec pr cat /tmp/made
	assert_eq data "$OUT" "changes survive stop/start"
	run_cella rm -f pr
	assert_ok
	[ -z "$(ls "$CELLA_ROOT/containers" 2>/dev/null)" ] || fail "container dir left: $(ls "$CELLA_ROOT/containers")"
}

test_proot_store_image() {
	proot_env
	make_rootfs "$TEST_TMP/rootfs"
	echo layered >"$TEST_TMP/rootfs/etc/motd"
	run_cella image import "$TEST_TMP/rootfs" local/pr
	assert_ok
	run_cella run --backend proot local/pr cat /etc/motd
	assert_eq layered "$OUT" "an image from the store, copied"
	run_cella create --backend proot --name c local/pr cat /etc/motd
	assert_ok
	run_cella start -a c
	assert_eq layered "$OUT"
	run_cella rm c
	assert_ok
}

test_proot_auto_fallback_when_namespaces_are_refused() {
	proot_env
	require_cmd cc
	cc -O2 -o "$TEST_TMP/nons" "$(dirname "${BASH_SOURCE[0]}")/nons.c" 2>"$TEST_TMP/cc.err" || fail "build nons.c: $(cat "$TEST_TMP/cc.err")"
	run_cmd "$TEST_TMP/nons" unshare -U true
	assert_rc_ne 0 "the filter really refuses namespaces"
	# the ns probe's positive answer is kept for the boot in the run root; a process the filter
	# confines must not be given it (its key holds the seccomp state)
	run_cella run busybox echo warm
	assert_ok
	[ -s "$CELLA_RUN_ROOT/probe-ns" ] || fail "the ns probe's answer was not kept in $CELLA_RUN_ROOT/probe-ns"
	run_cmd "$TEST_TMP/nons" "$CELLA" run busybox echo fallback
	assert_ok
	assert_eq fallback "$OUT" "the container ran"
	assert_contains "$ERR" "using the proot backend" "with one notice line"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "only one line"
	run_cmd "$TEST_TMP/nons" "$CELLA" run --backend ns busybox echo no
	assert_rc 125
	# a kept answer that matches but is wrong (here: written by a process under another filter in
	# the same seccomp state, one that allows namespaces; on a host: a namespace sysctl lowered
	# since) is dropped when the start meets the refusal, and the run falls back all the same.
	# As root only: a filter needs no_new_privs, under which newuidmap (set-uid) cannot map a
	# rootless container's ids, so a rootless run under the permissive filter cannot use namespaces.
	[ "$(id -u)" = 0 ] || return 0
	rm -f "$CELLA_RUN_ROOT/probe-ns"
	run_cmd "$TEST_TMP/nons" --allow "$CELLA" run busybox echo allowed
	assert_ok
	assert_eq allowed "$OUT" "namespaces are allowed under the permissive filter"
	assert_eq "" "$ERR" "without a notice"
	[ -s "$CELLA_RUN_ROOT/probe-ns" ] || fail "the answer under the permissive filter was not kept"
	run_cmd "$TEST_TMP/nons" "$CELLA" run busybox echo fallback
	assert_ok
	assert_eq fallback "$OUT" "the container ran after the kept answer was found wrong"
	assert_contains "$ERR" "using the proot backend" "with one notice line"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "only one line"
	[ ! -e "$CELLA_RUN_ROOT/probe-ns" ] || fail "the wrong answer is still kept: $(cat "$CELLA_RUN_ROOT/probe-ns")"
	run_cella run busybox echo back
	assert_eq back "$OUT" "outside the filter: namespaces again"
	assert_eq "" "$ERR" "without a notice"
	# a container the engine keeps: its monitor clones (the plan was made before): that start
	# fails, but drops the wrong answer, and the next one falls back
	rm -f "$CELLA_RUN_ROOT/probe-ns"
	run_cmd "$TEST_TMP/nons" --allow "$CELLA" run busybox true
	[ -s "$CELLA_RUN_ROOT/probe-ns" ] || fail "the answer under the permissive filter was not kept (2)"
	run_cmd "$TEST_TMP/nons" "$CELLA" run --rm busybox echo first
	assert_rc_ne 0 "the kept answer's start, in the monitor"
	[ ! -e "$CELLA_RUN_ROOT/probe-ns" ] || fail "the monitor's refused clone left the wrong answer kept"
	run_cmd "$TEST_TMP/nons" "$CELLA" run --rm busybox echo second
	assert_ok
	assert_eq second "$OUT" "the next engine run fell back"
	assert_contains "$ERR" "using the proot backend"
}

# The kept answer's key has no sysctl (a start reads none): a namespace limit lowered after the
# probe is met by the start's clone, and the run falls back to proot all the same. As root of a
# user namespace of the test's own, whose user.max_mnt_namespaces only it sees.
test_proot_fallback_when_a_namespace_limit_is_lowered_later() {
	proot_env
	require_cmd unshare
	unshare -Ur true 2>/dev/null || skip "this host refuses user namespaces already"
	cat >"$TEST_TMP/inner.sh" <<-'EOF'
		"$CELLA" run busybox echo first >"$T/1.out" 2>"$T/1.err" || exit 11
		[ -s "$CELLA_RUN_ROOT/probe-ns" ] || exit 12
		echo 0 >/proc/sys/user/max_mnt_namespaces || { : >"$T/limit-refused"; exit 99; }
		"$CELLA" run busybox echo second >"$T/2.out" 2>"$T/2.err"
		echo $? >"$T/2.rc"
		[ -e "$CELLA_RUN_ROOT/probe-ns" ] && : >"$T/still-kept"
		exit 0
	EOF
	T=$TEST_TMP CELLA=$CELLA run_cmd unshare -Ur sh "$TEST_TMP/inner.sh"
	[ -e "$TEST_TMP/limit-refused" ] && skip "the kernel does not let the root of a user namespace lower user.max_mnt_namespaces"
	assert_ok "the script in the user namespace (11: the first run failed: $(cat "$TEST_TMP/1.err" 2>/dev/null))"
	assert_eq first "$(cat "$TEST_TMP/1.out")" "the first run, in namespaces"
	assert_eq "" "$(cat "$TEST_TMP/1.err")" "without a notice"
	assert_eq 0 "$(cat "$TEST_TMP/2.rc")" "the run after the limit was lowered: $(cat "$TEST_TMP/2.err")"
	assert_eq second "$(cat "$TEST_TMP/2.out")"
	assert_contains "$(cat "$TEST_TMP/2.err")" "using the proot backend" "it fell back"
	assert_contains "$(cat "$TEST_TMP/2.err")" "ENOSPC" "naming the limit"
	[ ! -e "$TEST_TMP/still-kept" ] || fail "the wrong answer is still kept"
}

# -p with proot: the same port works as is (host network); an nginx container gets its listen
# port rewritten (real traffic over loopback); anything else is refused clearly.
test_proot_published_ports() {
	proot_env
	require_cmd curl
	make_rootfs "$TEST_TMP/rootfs"
	local r=$TEST_TMP/rootfs a
	for a in sed httpd; do ln -sf busybox "$r/bin/$a"; done
	mkdir -p "$r/usr/sbin" "$r/etc/nginx/conf.d" "$r/www"
	printf 'server {\n\tlisten 80;\n\tlisten [::]:80;\n}\n' >"$r/etc/nginx/conf.d/default.conf"
	# an "nginx" that serves /www on the port its config says
	cat >"$r/usr/sbin/nginx" <<'SH'
#!/bin/sh
port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*\([0-9]*\);.*/\1/p' /etc/nginx/conf.d/default.conf | head -1)
exec httpd -f -p "127.0.0.1:$port" -h /www
SH
	chmod 755 "$r/usr/sbin/nginx"
	echo "hello through proot" >"$r/www/index.html"
	run_cella image import "$r" local/nginx-like
	assert_ok
	local port=$((20000 + RANDOM % 20000))
	run_cella run -d --name web --backend proot -p "$port:80" local/nginx-like
	assert_ok
	local i body=""
	for i in $(seq 50); do
		body=$(curl -s --max-time 1 "http://127.0.0.1:$port/") && break
		sleep 0.1
	done
	assert_eq "hello through proot" "$body" "the page on the published host port"
	run_cella port web
	assert_eq "80/tcp -> 0.0.0.0:$port" "$OUT" "cella port lists it"
	run_cella exec web cat /etc/nginx/conf.d/default.conf
	assert_contains "$OUT" "listen $port;" "the container's copy of the config was rewritten"
	assert_contains "$(cat "$r/etc/nginx/conf.d/default.conf")" "listen 80;" "the image was not"
	run_cella rm -f web
	assert_ok
	run_cella run --backend proot -p 8080:80 busybox true
	assert_cella_error 125 "cannot remap"
	run_cella run --backend proot -p 8080:8080 busybox echo same-port
	assert_ok
	assert_eq same-port "$OUT" "a port published as itself needs nothing"
	run_cella run -p 8080:80 busybox true
	assert_cella_error 125 "private networks"
	run_cella run --backend proot -p 80 busybox true
	assert_cella_error 125 "HOST:CTR"
}

# --proot-path: that program runs the container (a wrapper that says so, then runs proot); a path
# that is not there, or the option without the proot backend, is refused naming it.
test_proot_path() {
	proot_env
	local real
	real=$(command -v proot)
	printf '#!/bin/sh\necho wrapper-ran >&2\nexec %s "$@"\n' "$real" >"$TEST_TMP/my-proot"
	chmod +x "$TEST_TMP/my-proot"
	run_cella run --backend proot --proot-path "$TEST_TMP/my-proot" busybox echo hi
	assert_ok
	assert_eq hi "$OUT"
	assert_contains "$ERR" "wrapper-ran" "the program given by --proot-path ran"
	run_cella run --backend proot busybox echo hi
	assert_ok
	assert_not_contains "$ERR" "wrapper-ran" "without --proot-path"
	run_cella run --backend proot --proot-path "$TEST_TMP/nosuch" busybox true
	assert_cella_error 125 "--proot-path \`$TEST_TMP/nosuch\`: No such file or directory"
	run_cella run --backend ns --proot-path "$TEST_TMP/my-proot" busybox true
	assert_cella_error 125 "--proot-path: only for the proot backend"
}

# The proot backend's workload starts with default signal dispositions and an empty mask, in the
# foreground and under the monitor, whatever its caller ignored.
test_proot_workload_default_signals() {
	proot_env
	trap '"$CELLA" rm -f psig >/dev/null 2>&1' EXIT
	local want="SigBlk:0000000000000000 SigIgn:0000000000000000 "
	trap '' HUP INT PIPE QUIT TERM USR1
	run_cella run --backend proot busybox grep -E '^Sig(Ign|Blk)' /proc/self/status
	assert_ok
	assert_eq "$want" "$(printf '%s\n' "$OUT" | awk '$1 == "SigIgn:" || $1 == "SigBlk:" { printf "%s%s ", $1, $2 }')" "foreground"
	run_cella run -d --backend proot --name psig busybox grep -E '^Sig(Ign|Blk)' /proc/self/status
	assert_ok
	wait_log psig SigBlk
	run_cella logs psig
	assert_eq "$want" "$(printf '%s\n' "$OUT" | awk '$1 == "SigIgn:" || $1 == "SigBlk:" { printf "%s%s ", $1, $2 }')" "run -d"
	trap - HUP INT PIPE QUIT TERM USR1
	"$CELLA" rm -f psig >/dev/null
}
