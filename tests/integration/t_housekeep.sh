# shellcheck shell=bash
# passes: root
# passes-why: prune, df and the records they read are the data root's, the same code for any user; pause and update need a cgroup, which cellatest lacks on this host (CI time)
# Housekeeping: system df, container/network/system prune, pause/unpause and update of engine
# containers.
# test-timeout: 90

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

# df_field TYPE KEY: KEY of TYPE's line of `system df --format json`
df_field() {
	"$CELLA" system df --format json | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o["Type"] == sys.argv[1]:
        print(o[sys.argv[2]])' "$1" "$2"
}

test_system_df_counts_what_is_added() {
	engine_env
	require_cmd python3
	run_cella system df
	assert_ok
	assert_match "$OUT" '^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$' "header"
	assert_match "$OUT" '^Local Volumes +0 +0 +0B' "no volumes yet"
	assert_eq "$(df_field Images TotalCount)" 0 "no images yet"
	# an image: its layers' size counts, all of it reclaimable while no container uses it
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/df:v1
	assert_ok
	assert_eq "$(df_field Images TotalCount)" 1 "one image"
	size=$(df_field Images Size)
	[ "$size" -gt 500000 ] || fail "image size $size: less than its busybox"
	assert_eq "$(df_field Images Reclaimable)" "$size" "an unused image is reclaimable"
	# a volume with a copy of busybox in it, used by a stopped container: counted, active, not
	# reclaimable
	run_cella volume create dfvol
	assert_ok
	run_cella run --name dfc -v dfvol:/data local/df:v1 sh -c 'cat /bin/busybox >/data/f'
	assert_ok
	assert_eq "$(df_field 'Local Volumes' TotalCount)" 1 "one volume"
	assert_eq "$(df_field 'Local Volumes' Active)" 1 "used by dfc"
	vsize=$(df_field 'Local Volumes' Size)
	bb=$(stat -c %s "$TEST_TMP/rootfs/bin/busybox")
	[ "$vsize" -ge "$bb" ] || fail "volume size $vsize: less than the $bb bytes written"
	assert_eq "$(df_field 'Local Volumes' Reclaimable)" 0 "a used volume is not reclaimable"
	assert_eq "$(df_field Images Active)" 1 "the image is in use"
	assert_eq "$(df_field Images Reclaimable)" 0 "an image in use is not reclaimable"
	assert_eq "$(df_field Containers TotalCount)" 1 "one container"
	assert_eq "$(df_field Containers Active)" 0 "not running"
	run_cella system df -v
	assert_ok
	assert_contains "$OUT" "dfvol" "-v lists the volume"
	assert_contains "$OUT" "dfc" "-v lists the container"
	run_cella system df --format yaml
	assert_cella_error 125 "yaml"
}

# The build cache: a build's cached steps show in system df's Build Cache row, all of it
# reclaimable; system prune empties it (and the next build of the file runs its step again).
test_system_df_counts_the_build_cache() {
	engine_env
	require_cmd python3
	mkdir -p "$TEST_TMP/ctx"
	printf 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1k count=300 2>/dev/null\n' >"$TEST_TMP/ctx/Containerfile"
	assert_eq "$(df_field 'Build Cache' Size)" 0 "no build cache yet"
	CMD_TIMEOUT=60 run_cella build -t local/bc:1 "$TEST_TMP/ctx"
	assert_ok "build"
	local cs
	cs=$(df_field 'Build Cache' Size)
	[ "$cs" -gt 0 ] || fail "Build Cache size $cs after a build with a RUN step"
	assert_eq "$(df_field 'Build Cache' Reclaimable)" "$cs" "the build cache is reclaimable"
	run_cella system df
	assert_match "$OUT" '^Build Cache +' "the table's Build Cache row"
	run_cella system prune -f
	assert_ok "system prune"
	assert_eq "$(df_field 'Build Cache' Size)" 0 "the build cache after system prune"
	CMD_TIMEOUT=60 run_cella build -t local/bc:1 "$TEST_TMP/ctx"
	assert_ok "build again"
	assert_not_contains "$OUT$ERR" "Using cache" "the pruned cache is not used"
}

# The vm backend's cached image disks ($data/vm/disks/KEY.ext4, KEY the image's manifest digest
# with `-` for `:`, as a vm run leaves them: see system_prune_removes_vm_disks_of_gone_images) show
# in system df's VM Disks row: that of an image in the store active, that of a gone image
# reclaimable, as system prune removes it. Files of that name and known size stand in for disks.
test_system_df_counts_vm_disks() {
	engine_env
	require_cmd python3
	local disks=$CELLA_ROOT/vm/disks key kept gone ksz gsz
	assert_eq "$(df_field 'VM Disks' TotalCount)" 0 "no vm disks yet"
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/vd:v1
	assert_ok
	run_cella image inspect local/vd:v1
	key=$(printf '%s\n' "$OUT" | grep -o '@sha256:[0-9a-f]*' | head -n 1)
	[ -n "$key" ] || fail "no manifest digest in the image's RepoDigests"
	kept=$disks/sha256-${key#@sha256:}.ext4
	gone=$disks/sha256-$(printf '%064d' 7).ext4
	mkdir -p "$disks"
	dd if=/dev/urandom of="$kept" bs=64k count=40 2>/dev/null
	dd if=/dev/urandom of="$gone" bs=64k count=24 2>/dev/null
	ksz=$(($(stat -c '%b * %B' "$kept")))
	gsz=$(($(stat -c '%b * %B' "$gone")))
	assert_eq "$(df_field 'VM Disks' TotalCount)" 2 "two cached disks"
	assert_eq "$(df_field 'VM Disks' Active)" 1 "the disk of the image in the store"
	assert_eq "$(df_field 'VM Disks' Size)" $((ksz + gsz)) "both disks' bytes"
	assert_eq "$(df_field 'VM Disks' Reclaimable)" "$gsz" "the gone image's disk is reclaimable"
	run_cella system df
	assert_match "$OUT" '^VM Disks +2 +1 +4\.[0-9]+MB +1\.[0-9]+MB' "the table's VM Disks row"
	run_cella system prune -f
	assert_ok
	[ ! -e "$gone" ] || fail "system prune kept the disk df called reclaimable"
	assert_eq "$(df_field 'VM Disks' TotalCount)" 1 "one disk after prune"
	assert_eq "$(df_field 'VM Disks' Reclaimable)" 0 "nothing reclaimable after prune"
	run_cella rmi local/vd:v1
	assert_ok
	assert_eq "$(df_field 'VM Disks' Reclaimable)" "$ksz" "the disk of a removed image is reclaimable"
}

test_container_prune_removes_only_stopped() {
	engine_env
	run_cella run -d --name keep busybox sleep 1000
	assert_ok
	run_cella run --name gone1 busybox true
	assert_ok
	run_cella run --name gone2 busybox sh -c 'exit 2'
	assert_rc 2
	run_cella create --name gone3 busybox true
	assert_ok
	run_cella container prune -f
	assert_ok
	assert_contains "$OUT" "Deleted Containers:" "header"
	assert_contains "$OUT" "Total reclaimed space:" "total"
	run_cella ps -a --format json
	assert_ok
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(" ".join(sorted(c["Names"] for c in json.load(sys.stdin))))')" \
		"keep" "only the running container is left"
	# until=: only those created before
	run_cella run --name old busybox true
	assert_ok
	sleep 1.2
	t=$(date +%s.%N)
	run_cella run --name new busybox true
	assert_ok
	run_cella container prune --filter "until=$t"
	assert_ok
	run_cella ps -a --format json
	assert_eq "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(" ".join(sorted(c["Names"] for c in json.load(sys.stdin))))')" \
		"keep new" "until= kept the newer one"
	run_cella container prune --filter colour=red
	assert_cella_error 125 "colour=red"
	run_cella rm -f keep
	assert_ok
}

test_network_prune_removes_unused_only() {
	engine_env
	is_real_root || skip "user-defined networks are root's (of the initial user namespace)"
	run_cella network create hkused
	assert_ok
	run_cella network create hkfree
	assert_ok
	run_cella run -d --name netc --network hkused busybox sleep 1000
	assert_ok
	run_cella network prune -f
	assert_ok
	assert_contains "$OUT" "hkfree" "the unused network is removed"
	assert_not_contains "$OUT" "hkused" "the used one is not"
	run_cella network ls
	assert_contains "$OUT" "hkused" "still there"
	assert_not_contains "$OUT" "hkfree" "gone"
	# a stopped container still holds its network
	run_cella stop -t 0 netc
	assert_ok
	run_cella network prune
	assert_ok
	run_cella network ls
	assert_contains "$OUT" "hkused" "kept for the stopped container"
	run_cella rm netc
	assert_ok
	run_cella network prune
	assert_contains "$OUT" "hkused" "removed once nothing uses it"
}

test_system_prune() {
	engine_env
	run_cella run -d --name sp_run busybox sleep 1000
	assert_ok
	run_cella run --name sp_done busybox true
	assert_ok
	run_cella volume create sp_vol
	assert_ok
	run_cella system prune -f
	assert_ok
	run_cella ps -a -q
	assert_eq "$(printf '%s\n' "$OUT" | grep -c .)" 1 "the running container stays"
	run_cella volume ls -q
	assert_contains "$OUT" "sp_vol" "volumes stay without --volumes"
	run_cella system prune -f --volumes
	assert_ok
	run_cella volume ls -q
	assert_not_contains "$OUT" "sp_vol" "--volumes removes unused volumes"
	run_cella system prune --bogus
	assert_cella_error 125 "--bogus"
	run_cella rm -f sp_run
	assert_ok
	# a named image no container uses: kept by system prune, removed by system prune -a
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/sp:v1
	assert_ok
	run_cella system prune -f
	assert_ok
	run_cella images -q
	assert_match "$OUT" '[0-9a-f]' "a named image stays"
	run_cella system prune -a -f
	assert_ok
	run_cella images -q
	assert_eq "$OUT" "" "system prune -a removes unused images"
}

# The vm backend caches one ext4 disk per image ($data/vm/disks): system prune removes those of
# images that are gone (and of root directories that changed) and keeps the ones still of use.
test_system_prune_removes_vm_disks_of_gone_images() {
	engine_env
	command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
	[ -x /usr/sbin/mkfs.ext4 ] || skip "mkfs.ext4 not installed (apt-get install e2fsprogs)"
	local disks=$CELLA_ROOT/vm/disks kept gone
	run_cella run --rm --backend vm --network none --vm-snapshot=off busybox true
	assert_ok
	kept=$(ls "$disks"/*.ext4)
	assert_eq 1 "$(printf '%s\n' "$kept" | grep -c .)" "one cached disk: busybox's"
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/spvm:v1
	assert_ok
	run_cella run --rm --backend vm --network none --vm-snapshot=off local/spvm:v1 true
	assert_ok
	gone=$(ls "$disks"/*.ext4 | grep -vxF "$kept")
	[ -f "$gone" ] || fail "no second cached disk for local/spvm:v1 in $disks: $(ls "$disks")"
	run_cella system prune -f
	assert_ok
	[ -f "$gone" ] || fail "system prune removed the disk of an image still in the store: $gone"
	run_cella rmi local/spvm:v1
	assert_ok
	run_cella system prune -f
	assert_ok
	[ ! -e "$gone" ] || fail "system prune kept the disk of a removed image: $gone"
	[ -f "$kept" ] || fail "system prune removed busybox's disk, still of use: $kept"
	run_cella run --rm --backend vm --network none --vm-snapshot=off busybox echo again
	assert_ok
	assert_eq "$OUT" "again" "busybox still boots from its kept disk"
}

# last_count NAME: the last number in the container's log
last_count() {
	"$CELLA" logs "$1" 2>/dev/null | tail -n 1
}

test_pause_freezes_and_unpause_resumes() {
	engine_env
	require_cgroups
	run_cella run -d --name pz busybox sh -c 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done'
	assert_ok
	wait_log pz 3
	run_cella pause pz
	assert_ok
	assert_eq "$OUT" "pz" "pause prints the name"
	a=$(last_count pz)
	sleep 1
	b=$(last_count pz)
	assert_eq "$b" "$a" "the counter stands still while paused"
	run_cella ps
	assert_match "$OUT" 'Up .*\(Paused\) +pz$' "ps shows Paused"
	run_cella inspect -f '{{.State.Status}} {{.State.Paused}} {{.State.Running}}' pz
	assert_eq "$OUT" "paused true true" "inspect"
	run_cella ps --filter status=paused -q
	assert_match "$OUT" '^[0-9a-f]{12}$' "status=paused filter"
	run_cella pause pz
	assert_cella_error 125 "already paused"
	run_cella exec pz true
	assert_cella_error 125 "paused"
	run_cella unpause pz
	assert_ok
	sleep 0.5
	c=$(last_count pz)
	[ "$c" -gt "$b" ] || fail "the counter did not move after unpause ($b, then $c)"
	run_cella unpause pz
	assert_cella_error 125 "not paused"
	# stop of a paused container: thawed, then stopped
	run_cella pause pz
	assert_ok
	run_cella stop -t 2 pz
	assert_ok
	run_cella inspect -f '{{.State.Status}} {{.State.Paused}}' pz
	assert_eq "$OUT" "exited false" "stopped"
	run_cella pause pz
	assert_cella_error 125 "not running"
	# rm -f of a paused one
	run_cella run -d --name pz2 busybox sleep 1000
	assert_ok
	run_cella pause pz2
	assert_ok
	run_cella rm -f pz2
	assert_ok
	run_cella pause nosuch
	assert_cella_error 125 "nosuch"
}

# mem_limit NAME: the memory limit of the container's cgroup (v1 or v2)
mem_limit() {
	local pid line
	pid=$("$CELLA" inspect -f '{{.State.Pid}}' "$1")
	line=$(grep -E '^[0-9]+:memory:' "/proc/$pid/cgroup")
	if [ -n "$line" ]; then
		cat "/sys/fs/cgroup/memory${line#*:memory:}/memory.limit_in_bytes"
	else
		cat "/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")/memory.max"
	fi
}

test_update_limits_live_and_after_restart() {
	engine_env
	require_cgroups
	run_cella run -d --name up busybox sleep 1000
	assert_ok
	run_cella update --memory 96m --pids-limit 77 --restart on-failure:3 up
	assert_ok
	assert_eq "$(mem_limit up)" 100663296 "the cgroup's limit now"
	run_cella inspect -f '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}' up
	assert_eq "$OUT" "100663296 77 on-failure 3" "inspect"
	run_cella restart -t 0 up
	assert_ok
	assert_eq "$(mem_limit up)" 100663296 "kept after restart"
	run_cella update --cpus 0.5 up
	assert_ok
	run_cella inspect -f '{{.HostConfig.NanoCpus}}' up
	assert_eq "$OUT" 500000000 "--cpus"
	run_cella update --memory-swap 300m --memory-reservation 32m --cpu-shares 512 up
	assert_ok
	run_cella inspect -f '{{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}}' up
	assert_eq "$OUT" "314572800 33554432 512" "swap, reservation, shares"
	run_cella update --memory-swap 10m up
	assert_cella_error 125 "--memory-swap"
	# a stopped container: kept for its next start
	run_cella stop -t 0 up
	assert_ok
	run_cella update --memory 128m up
	assert_ok
	run_cella start up
	assert_ok
	assert_eq "$(mem_limit up)" 134217728 "applied at the next start"
	run_cella update --memory lots up
	assert_cella_error 125 "lots"
	run_cella update --cpus -2 up
	assert_cella_error 125 "-2"
	run_cella update --restart sometimes up
	assert_cella_error 125 "sometimes"
	run_cella update up
	assert_cella_error 125 "nothing to change"
	run_cella update --memory 64m nosuch
	assert_cella_error 125 "nosuch"
	run_cella rm -f up
	assert_ok
}

test_help_of_the_new_commands() {
	for c in "events" "system df" "system prune" "container prune" "network prune" "pause" "unpause" "update"; do
		# shellcheck disable=SC2086
		run_cella $c --help
		assert_ok "$c --help"
		assert_contains "$OUT" "Usage: cella $c" "$c --help"
	done
}

test_pause_without_a_cgroup_names_the_container() {
	engine_env
	if cgroup_probe; then
		skip "this user has cgroups: pause works (test_pause_freezes_and_unpause_resumes)"
	fi
	run_cella run -d --name nocg busybox sleep 1000
	assert_ok
	run_cella pause nocg
	assert_cella_error 125 "nocg"
	assert_contains "$ERR" "no cgroup" "says why"
	run_cella inspect -f '{{.State.Status}}' nocg
	assert_eq "$OUT" "running" "nothing changed"
	run_cella rm -f nocg
	assert_ok
}
