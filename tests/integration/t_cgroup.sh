# shellcheck shell=bash disable=SC2034
# cgroup limits (docs/resources.md): --memory and the OOM killer, --pids-limit, the values in the
# container's cgroup files, stats, exec joining the cgroup, removal, bad values, and the rootless
# notice. Engine tests keep their containers in their own data and run roots.

engine_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

field() {
	"$CELLA" inspect -f "$2" "$1" 2>/dev/null
}

# Limits apply only where this user can make cgroups (root of the host, or a delegated v2
# subtree: lib.sh's require_cgroups probes which); elsewhere cella says so once and runs without
# them (test_rootless_notice_once).

is_v2() { [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; }

# cg_dir PID CONTROLLER: the host directory of PID's cgroup for that controller (v2: the one tree)
cg_dir() {
	local line
	if is_v2; then
		line=$(grep '^0::' "/proc/$1/cgroup")
		echo "/sys/fs/cgroup${line#0::}"
	else
		line=$(grep -E "^[0-9]+:([^:]*,)?$2(,[^:]*)?:" "/proc/$1/cgroup")
		echo "/sys/fs/cgroup/$2${line##*:}"
	fi
}

test_memory_limit_oom_foreground() {
	require_cgroups
	run_cella run -m 32m busybox sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}'
	assert_rc 137 "a workload allocating 100 MB under --memory 32m is killed"
	assert_not_contains "$OUT" "survived"
	assert_contains "$ERR" "killed by the OOM killer"
	run_cella run -m 32m busybox sh -c 'x=$(head -c 1000000 /dev/zero | tr "\0" a); echo ok ${#x}'
	assert_ok
	assert_eq "ok 1000000" "$OUT" "1 MB fits under --memory 32m"
	assert_not_contains "$ERR" "OOM"
}

test_memory_limit_oom_engine() {
	require_cgroups
	engine_env
	run_cella run -d --name hog -m 32m busybox sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived'
	assert_ok
	run_cella wait hog
	assert_eq "137" "$OUT" "exit code of the OOM-killed container"
	assert_eq "true" "$(field hog '{{.State.OOMKilled}}')" "inspect .State.OOMKilled"
	assert_eq "33554432" "$(field hog '{{.HostConfig.Memory}}')" "inspect .HostConfig.Memory"
	run_cella run --name fine -m 32m busybox true
	assert_ok
	assert_eq "false" "$(field fine '{{.State.OOMKilled}}')" "a container that fits is not OOMKilled"
	run_cella rm -f hog fine
	assert_ok
}

test_pids_limit_stops_fork_bomb() {
	require_cgroups
	run_cella run --pids-limit 10 busybox sh -c 'for i in $(seq 50); do sleep 5 & echo $i; done'
	assert_rc_ne 0 "the shell cannot fork past the limit"
	assert_contains "$ERR" "Resource temporarily unavailable"
	local last
	last=$(printf '%s\n' "$OUT" | tail -1)
	[ "$last" -ge 5 ] && [ "$last" -le 9 ] || fail "started $last sleeps under --pids-limit 10 (the shell is one)"
}

test_cgroup_files_hold_the_values() {
	require_cgroups
	engine_env
	run_cella run -d --name lim -m 48m --memory-reservation 16m --cpu-shares 512 --cpus 1.5 --pids-limit 20 \
		--cpuset-cpus 0 busybox sleep 30
	assert_ok
	local pid
	pid=$(field lim '{{.State.Pid}}')
	[ "$pid" -gt 0 ] || fail "no pid"
	if is_v2; then
		local d
		d=$(cg_dir "$pid" memory)
		assert_eq "50331648" "$(cat "$d/memory.max")" "memory.max"
		assert_eq "16777216" "$(cat "$d/memory.low")" "memory.low"
		assert_eq "20" "$(cat "$d/pids.max")" "pids.max"
		assert_eq "150000 100000" "$(cat "$d/cpu.max")" "cpu.max"
		assert_eq "20" "$(cat "$d/cpu.weight")" "cpu.weight from shares 512"
	else
		assert_eq "50331648" "$(cat "$(cg_dir "$pid" memory)/memory.limit_in_bytes")" "memory.limit_in_bytes"
		assert_eq "16777216" "$(cat "$(cg_dir "$pid" memory)/memory.soft_limit_in_bytes")" "memory.soft_limit_in_bytes"
		if [ -e "$(cg_dir "$pid" memory)/memory.memsw.limit_in_bytes" ]; then
			assert_eq "100663296" "$(cat "$(cg_dir "$pid" memory)/memory.memsw.limit_in_bytes")" "memsw: docker's default, twice --memory"
		fi
		assert_eq "20" "$(cat "$(cg_dir "$pid" pids)/pids.max")" "pids.max"
		assert_eq "512" "$(cat "$(cg_dir "$pid" cpu)/cpu.shares")" "cpu.shares"
		assert_eq "150000" "$(cat "$(cg_dir "$pid" cpu)/cpu.cfs_quota_us")" "cpu.cfs_quota_us"
		assert_eq "100000" "$(cat "$(cg_dir "$pid" cpu)/cpu.cfs_period_us")" "cpu.cfs_period_us"
		assert_eq "0" "$(cat "$(cg_dir "$pid" cpuset)/cpuset.cpus")" "cpuset.cpus"
	fi
	run_cella exec lim grep Cpus_allowed_list /proc/self/status
	assert_ok
	assert_match "$OUT" 'Cpus_allowed_list:[[:space:]]+0$' 
	assert_eq "1500000000" "$(field lim '{{.HostConfig.NanoCpus}}')" "inspect NanoCpus"
	assert_eq "512" "$(field lim '{{.HostConfig.CpuShares}}')" "inspect CpuShares"
	assert_eq "20" "$(field lim '{{.HostConfig.PidsLimit}}')" "inspect PidsLimit"
	run_cella rm -f lim
	assert_ok
}

test_stats_reads_limits_back() {
	require_cgroups
	engine_env
	run_cella run -d --name st -m 48m --pids-limit 20 busybox sleep 30
	assert_ok
	run_cella stats --no-stream --format json st
	assert_ok
	local line
	line=$(printf '%s\n' "$OUT" | head -1)
	assert_eq "50331648" "$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["MemoryLimit"])')" "stats MemoryLimit"
	assert_eq "20" "$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["PidsLimit"])')" "stats PidsLimit"
	assert_eq "1" "$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["PIDs"])')" "stats PIDs"
	assert_match "$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["MemUsage"])')" ' / 48MiB$'
	run_cella stats --no-stream
	assert_ok
	assert_match "$OUT" 'CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +BLOCK I/O +PIDS'
	assert_match "$OUT" ' st +[0-9.]+% +[0-9.]+[KMG]?i?B / 48MiB '
	run_cella stats --no-stream --format yaml st
	assert_cella_error 125 "--format"
	run_cella rm -f st
	assert_ok
}

test_exec_joins_the_cgroup() {
	require_cgroups
	engine_env
	run_cella run -d --name ex -m 64m busybox sleep 30
	assert_ok
	run_cella exec ex cat /proc/1/cgroup
	assert_ok
	local init=$OUT
	run_cella exec ex cat /proc/self/cgroup
	assert_ok
	assert_eq "$init" "$OUT" "an exec'd process is in the cgroups of the container's init"
	# and from the host: the container's memory cgroup holds two processes while exec runs
	local pid d
	pid=$(field ex '{{.State.Pid}}')
	d=$(cg_dir "$pid" memory)
	"$CELLA" exec ex sleep 2 &
	sleep 0.5
	assert_eq "2" "$(wc -l <"$d/cgroup.procs")" "processes in $d"
	wait
	run_cella rm -f ex
	assert_ok
}

test_cgroup_removed_after_rm_and_exit() {
	require_cgroups
	engine_env
	run_cella run -d --name gone -m 64m busybox sleep 30
	assert_ok
	local pid d
	pid=$(field gone '{{.State.Pid}}')
	d=$(cg_dir "$pid" memory)
	case "$d" in */cella/*) ;; *) fail "the container's cgroup is not under cella/: $d" ;; esac
	[ -d "$d" ] || fail "no cgroup dir $d"
	run_cella rm -f gone
	assert_ok
	[ ! -e "$d" ] || fail "cgroup $d left after rm -f"
	# a foreground run leaves nothing either: count cella's cgroups before and after
	local before after
	before=$(find /sys/fs/cgroup -maxdepth 4 -path '*/cella/*' ! -regex '.*/cella/devices-[0-9a-f]*' -type d 2>/dev/null | grep -c . || true)
	run_cella run -m 32m --pids-limit 50 busybox true
	assert_ok
	after=$(find /sys/fs/cgroup -maxdepth 4 -path '*/cella/*' ! -regex '.*/cella/devices-[0-9a-f]*' -type d 2>/dev/null | grep -c . || true)
	[ "$after" -le "$before" ] || fail "a foreground run left cgroups ($before before, $after after)"
}

test_bad_values_rejected() {
	engine_env
	run_cella run --memory 12q busybox true
	assert_cella_error 125 "--memory 12q: expected a size"
	run_cella create --name bad1 -m 12q busybox true
	assert_cella_error 125 "--memory 12q"
	run_cella run --cpus abc busybox true
	assert_cella_error 125 "--cpus abc"
	run_cella run --cpus 0 busybox true
	assert_cella_error 125 "--cpus 0"
	run_cella run --cpu-shares 1 busybox true
	assert_cella_error 125 "--cpu-shares 1: expected an integer from 2 to 262144"
	run_cella run --pids-limit x busybox true
	assert_cella_error 125 "--pids-limit x"
	run_cella run --memory-swap 1g busybox true
	assert_cella_error 125 "--memory-swap 1g: needs --memory"
	run_cella run -m 64m --memory-swap 32m busybox true
	assert_cella_error 125 "--memory-swap 32m: must be at least --memory 64m"
	run_cella run --cpus 1 --cpu-quota 50000 busybox true
	assert_cella_error 125 "--cpus 1: conflicts with --cpu-quota"
	run_cella run --cpuset-cpus 0-x busybox true
	assert_cella_error 125 "--cpuset-cpus 0-x"
	run_cella run --blkio-weight 5 busybox true
	assert_cella_error 125 "--blkio-weight 5"
	run_cella ps -a -q
	assert_ok
	assert_eq "" "$OUT" "nothing created by a refused run or create"
}

# Where no cgroup is writable (ordinary users on this host, `unshare -r`), limits are not applied
# and cella says so once per command; where one is, no notice.
test_rootless_notice_once() {
	run_cella run -m 32m --pids-limit 10 --cpus 1 busybox echo hi
	assert_ok
	assert_eq "hi" "$OUT" "the container ran"
	if cgroup_probe; then
		assert_eq "" "$ERR" "no notice where this user can make cgroups"
	else
		assert_eq "1" "$(printf '%s\n' "$ERR" | grep -c 'no writable cgroup')" "the notice comes once (no cgroup here: $CGROUP_WHY)"
		assert_match "$ERR" '^cella: no writable cgroup for this user: --memory is not applied \(.+\)$'
		run_cella run busybox echo hi
		assert_ok
		assert_eq "" "$ERR" "no notice without limits"
	fi
}

# --blkio-weight: written where the block I/O controller has weights, else a clear error
test_blkio_weight() {
	require_cgroups
	engine_env
	run_cella run -d --name bw --blkio-weight 300 busybox sleep 30
	if [ "$RC" != 0 ]; then
		assert_cella_error 125 "cgroup: blkio weight 300 was asked, but"
		assert_contains "$ERR" "has no weight file"
		return 0
	fi
	local d f
	d=$(cg_dir "$(field bw '{{.State.Pid}}')" blkio)
	if is_v2; then
		f=$d/io.bfq.weight
		[ -e "$d/io.weight" ] && f=$d/io.weight
		assert_match "$(cat "$f")" '(^|default )(300|2930)$'
	else
		f=$d/blkio.bfq.weight
		[ -e "$d/blkio.weight" ] && f=$d/blkio.weight
		assert_match "$(cat "$f")" '(^|default )300$'
	fi
	assert_eq "300" "$(field bw '{{.HostConfig.BlkioWeight}}')" "inspect BlkioWeight"
	run_cella rm -f bw
	assert_ok
}

# The v2 code paths, on a hybrid host: its cgroup2 tree (hugetlb only) mounted at /sys/fs/cgroup in
# a private mount namespace looks like a v2 host without memory or pids controllers. A container
# gets /cella/<id> there, exec joins it, rm kills (cgroup.kill) and removes it; a limit whose
# controller is missing is a clear error.
test_v2_paths_on_hybrid_unified() {
	require_real_root
	require_cmd unshare
	[ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] ||
		skip "not a hybrid cgroup host (this test drives v2 code through a hybrid host's cgroup2 tree)"
	engine_env
	cat >"$TEST_TMP/v2.sh" <<'EOS'
mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup || exit 99
"$CELLA" run --pids-limit 10 busybox true 2>&1; echo "limit-rc=$?"
"$CELLA" run -d --name v2c busybox sleep 30 >/dev/null || exit 98
pid=$("$CELLA" inspect -f '{{.State.Pid}}' v2c)
line=$(grep '^0::' "/proc/$pid/cgroup"); echo "cgroup=${line#0::}"
dir=/sys/fs/cgroup${line#0::}
"$CELLA" exec v2c sleep 2 &
sleep 0.5; echo "procs=$(wc -l <"$dir/cgroup.procs")"
"$CELLA" exec v2c cat /proc/self/cgroup | sed 's/^/inside=/'
wait
"$CELLA" stats --no-stream --format json v2c | sed 's/^/stats=/'
"$CELLA" rm -f v2c >/dev/null
[ -e "$dir" ] && echo "left=$dir" || echo "removed"
EOS
	run_cmd unshare -m env CELLA="$CELLA" CELLA_ROOT="$CELLA_ROOT" CELLA_RUN_ROOT="$CELLA_RUN_ROOT" bash "$TEST_TMP/v2.sh"
	assert_ok
	assert_contains "$OUT" "cella: cgroup: a pids limit was asked, but the \`pids\` controller is not available in \`/sys/fs/cgroup/cella/"
	assert_contains "$OUT" "limit-rc=125"
	assert_match "$OUT" 'cgroup=/cella/[0-9a-f]{64}'
	assert_contains "$OUT" "procs=2"
	assert_contains "$OUT" "inside=0::/"
	assert_match "$OUT" 'stats=.*"PIDs":"1"'
	assert_contains "$OUT" "removed"
}

# --cpu-quota/--cpu-period, --cpuset-mems, -c (--cpu-shares), --memory-swap with a value and -1:
# each in the container's cgroup files and in inspect.
test_cpu_quota_period_cpuset_mems_shares_swap() {
	require_cgroups
	engine_env
	run_cella run -d --name qp --cpu-quota 25000 --cpu-period 50000 --cpuset-mems 0 -c 300 -m 32m --memory-swap 64m \
		busybox sleep 30
	assert_ok
	local pid d
	pid=$(field qp '{{.State.Pid}}')
	if is_v2; then
		d=$(cg_dir "$pid" memory)
		assert_eq "25000 50000" "$(cat "$d/cpu.max")" "cpu.max"
		assert_eq "0" "$(cat "$d/cpuset.mems")" "cpuset.mems"
		assert_eq "12" "$(cat "$d/cpu.weight")" "cpu.weight from shares 300"
		assert_eq "33554432" "$(cat "$d/memory.swap.max")" "memory.swap.max: --memory-swap less --memory"
	else
		assert_eq "25000" "$(cat "$(cg_dir "$pid" cpu)/cpu.cfs_quota_us")" "cpu.cfs_quota_us"
		assert_eq "50000" "$(cat "$(cg_dir "$pid" cpu)/cpu.cfs_period_us")" "cpu.cfs_period_us"
		assert_eq "0" "$(cat "$(cg_dir "$pid" cpuset)/cpuset.mems")" "cpuset.mems"
		assert_eq "300" "$(cat "$(cg_dir "$pid" cpu)/cpu.shares")" "cpu.shares from -c"
		d=$(cg_dir "$pid" memory)
		[ -e "$d/memory.memsw.limit_in_bytes" ] &&
			assert_eq "67108864" "$(cat "$d/memory.memsw.limit_in_bytes")" "memory.memsw.limit_in_bytes"
	fi
	assert_eq "25000 50000 0 300 67108864" \
		"$(field qp '{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpusetMems}} {{.HostConfig.CpuShares}} {{.HostConfig.MemorySwap}}')" \
		"inspect's CpuQuota CpuPeriod CpusetMems CpuShares MemorySwap"
	run_cella rm -f qp
	assert_ok
	# -1: swap without limit
	run_cella run -d --name sw -m 32m --memory-swap -1 busybox sleep 30
	assert_ok
	pid=$(field sw '{{.State.Pid}}')
	d=$(cg_dir "$pid" memory)
	if is_v2; then
		assert_eq max "$(cat "$d/memory.swap.max")" "memory.swap.max with --memory-swap -1"
	elif [ -e "$d/memory.memsw.limit_in_bytes" ]; then
		assert_eq 9223372036854771712 "$(cat "$d/memory.memsw.limit_in_bytes")" "memsw with --memory-swap -1"
	fi
	assert_eq "-1" "$(field sw '{{.HostConfig.MemorySwap}}')" "inspect's MemorySwap"
	run_cella rm -f sw
	assert_ok
	run_cella run --cpuset-mems 99 busybox true
	assert_cella_error 125 "--cpuset-mems"
	run_cella run --cpu-period 10 busybox true
	assert_cella_error 125 "--cpu-period 10"
}
