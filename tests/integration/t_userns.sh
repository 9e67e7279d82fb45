# shellcheck shell=bash disable=SC2034
# User namespaces: none as root (by default, --userns host); as an ordinary user always one, with
# the caller mapped to 0 and, when /etc/subuid and /etc/subgid give a range and newuidmap/newgidmap
# exist, the whole range mapped after it. As root, --userns auto (a range of ids of its own per
# container, the image idmapped) and keep-id (the tests of those skip where cella does not run as
# the machine's root).

test_user_namespace_only_when_unprivileged() {
	run_cella run busybox readlink /proc/self/ns/user
	assert_rc 0
	if is_root; then
		assert_eq "$(readlink /proc/self/ns/user)" "$OUT" "user namespace as root (none by default)"
	else
		assert_ne "$(readlink /proc/self/ns/user)" "$OUT" "user namespace as $(id -un)"
	fi
}

_map_has() { # MAP-TEXT INSIDE OUTSIDE COUNT
	printf '%s\n' "$1" | awk -v i="$2" -v o="$3" -v c="$4" '$1 == i && $2 == o && $3 == c { f = 1 } END { exit !f }'
}

test_caller_mapped_to_root() {
	run_cella run busybox sh -c 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u'
	assert_rc 0
	local uidmap gidmap
	uidmap=$(printf '%s\n' "$OUT" | sed -n '1,/^--$/p' | sed '$d')
	gidmap=$(printf '%s\n' "$OUT" | sed -n '/^--$/,/^--$/p' | sed '1d;$d')
	if is_root; then
		# as root cella makes no user namespace: the container's maps are the caller's own
		# (the identity for the machine's root; one id under `unshare -r`)
		[ "$(echo $uidmap)" = "$(echo $(cat /proc/self/uid_map))" ] || fail "uid_map as root is not the caller's: $uidmap"
		[ "$(echo $gidmap)" = "$(echo $(cat /proc/self/gid_map))" ] || fail "gid_map as root is not the caller's: $gidmap"
	else
		_map_has "$uidmap" 0 "$(id -u)" 1 || fail "uid_map does not map 0 to $(id -u): $uidmap"
		_map_has "$gidmap" 0 "$(id -g)" 1 || fail "gid_map does not map 0 to $(id -g): $gidmap"
	fi
	assert_eq 0 "$(printf '%s\n' "$OUT" | tail -n1)" "id -u inside"
}

test_subordinate_range_mapped() {
	is_root && skip "not applicable as root (identity map, see caller_mapped_to_root)"
	command -v newuidmap >/dev/null && command -v newgidmap >/dev/null ||
		skip "newuidmap/newgidmap not installed (package uidmap)"
	local me sub subg
	me=$(id -un)
	sub=$(awk -F: -v u="$me" -v id="$(id -u)" '($1 == u || $1 == id) { print $2, $3; exit }' /etc/subuid 2>/dev/null)
	subg=$(awk -F: -v u="$me" -v id="$(id -u)" '($1 == u || $1 == id) { print $2, $3; exit }' /etc/subgid 2>/dev/null)
	[ -n "$sub" ] && [ -n "$subg" ] || skip "no /etc/subuid and /etc/subgid range for $me"
	run_cella run busybox sh -c 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map'
	assert_rc 0
	local uidmap gidmap
	uidmap=$(printf '%s\n' "$OUT" | sed -n '1,/^--$/p' | sed '$d')
	gidmap=$(printf '%s\n' "$OUT" | sed -n '/^--$/,$p' | sed '1d')
	_map_has "$uidmap" 1 "${sub% *}" "${sub#* }" || fail "uid_map does not map 1.. to $sub: $uidmap"
	_map_has "$gidmap" 1 "${subg% *}" "${subg#* }" || fail "gid_map does not map 1.. to $subg: $gidmap"
}

test_user_files_created_as_caller() {
	# Root in the container is the caller on the host: a file written through a volume is theirs.
	mkdir "$TEST_TMP/vol"
	run_cella run -v "$TEST_TMP/vol:/vol" busybox touch /vol/f
	assert_rc 0
	assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$TEST_TMP/vol/f")" "owner of the file on the host"
}

test_group_name_resolved() {
	require_id_range
	run_cella run -u cella:cella busybox sh -c 'id -u; id -g'
	assert_rc 0
	assert_eq "1000 1000" "$(echo $OUT)" "uid gid of cella:cella"
}

# --- --userns for containers run by root ------------------------------------------------------

# The machine's root, in the initial user namespace (not `unshare -r`), on a kernel whose
# overlayfs takes idmapped layers (5.19).
_require_real_root() {
	is_root || skip "--userns auto/keep-id are for containers run by root"
	[ "$(echo $(cat /proc/self/uid_map))" = "0 0 4294967295" ] ||
		skip "root of a user namespace here (uid_map: $(echo $(cat /proc/self/uid_map))), not the machine's root"
	local v
	v=$(uname -r)
	v=${v%%-*}
	[ "${v%%.*}" -gt 5 ] || { [ "${v%%.*}" = 5 ] && [ "$(echo "$v" | cut -d. -f2)" -ge 19 ]; } ||
		skip "Linux $(uname -r) has no idmapped overlay layers (5.19)"
}

_userns_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
}

# the outside id of inside 0 in a uid_map text
_map_base() { printf '%s\n' "$1" | awk '$1 == 0 { print $2; exit }'; }
_map_count() { printf '%s\n' "$1" | awk '$1 == 0 { print $3; exit }'; }

test_userns_auto_maps_a_range_and_files_keep_their_owners() {
	_require_real_root
	_userns_env
	run_cella run --userns=auto busybox sh -c 'cat /proc/self/uid_map; echo --; readlink /proc/self/ns/user;
		stat -c "%u:%g %n" /etc/passwd / /root; touch /new && stat -c "%u:%g %n" /new; id -u'
	assert_rc 0
	local map base
	map=$(printf '%s\n' "$OUT" | sed -n '1,/^--$/p' | sed '$d')
	base=$(_map_base "$map")
	[ -n "$base" ] && [ "$base" != 0 ] || fail "root inside is not mapped to a range: $map"
	assert_eq 65536 "$(_map_count "$map")" "the default size"
	assert_ne "$(readlink /proc/self/ns/user)" "$(printf '%s\n' "$OUT" | sed -n '/^--$/{n;p}')" "a user namespace of its own"
	assert_contains "$OUT" "0:0 /etc/passwd" "an image file keeps its owner inside (idmapped layer)"
	assert_contains "$OUT" "0:0 /root"
	assert_contains "$OUT" "0:0 /new" "a new file belongs to root inside"
	assert_eq 0 "$(printf '%s\n' "$OUT" | tail -n1)" "id -u inside"
	[ -z "$(ls "$CELLA_ROOT/userns" 2>/dev/null)" ] || fail "a foreground run left its range recorded: $(ls "$CELLA_ROOT/userns")"
}

# What the container writes belongs, on the host, to its range (the base for its root), and the
# image's files stay as they are on the host.
test_userns_auto_files_written_belong_to_the_range_on_the_host() {
	_require_real_root
	_userns_env
	run_cella run -d --name un1 --network none --userns=auto:size=70000 busybox sh -c \
		'touch /made; echo x >>/etc/passwd; mkdir /home/u && chown 1000:1000 /home/u; sleep 60'
	assert_ok
	local pid base upper i
	for i in $(seq 50); do
		pid=$("$CELLA" inspect -f '{{.State.Pid}}' un1)
		[ -n "$pid" ] && [ "$pid" != 0 ] && [ -d "/proc/$pid" ] && break
		sleep 0.1
	done
	base=$(_map_base "$(cat "/proc/$pid/uid_map")")
	assert_eq 70000 "$(_map_count "$(cat "/proc/$pid/uid_map")")" "auto:size=70000"
	upper=$("$CELLA" inspect -f '{{.UpperDir}}' un1)
	for i in $(seq 50); do [ -d "$upper/home/u" ] && break; sleep 0.1; done
	assert_eq "$base:$base" "$(stat -c %u:%g "$upper/made")" "a new file on the host"
	assert_eq "$base:$base" "$(stat -c %u:%g "$upper/etc/passwd")" "a changed image file (copied up) on the host"
	assert_eq "$((base + 1000)):$((base + 1000))" "$(stat -c %u:%g "$upper/home/u")" "uid 1000 inside on the host"
	assert_eq "0:0" "$(stat -c %u:%g "$("$CELLA" inspect -f '{{.Rootfs}}' un1)/etc/passwd")" "the image's own file is untouched"
	run_cella exec un1 sh -c 'cat /proc/self/uid_map; stat -c "%u:%g" /made /etc/passwd /home/u'
	assert_rc 0
	assert_eq "$base" "$(_map_base "$OUT")" "exec joins the same user namespace"
	assert_contains "$OUT" "0:0
0:0
1000:1000" "owners seen by exec"
	echo hi >"$TEST_TMP/cp.txt"
	run_cella cp "$TEST_TMP/cp.txt" un1:/cp.txt
	assert_ok
	assert_eq "$base:$base" "$(stat -c %u:%g "$upper/cp.txt")" "a file cp put into the running container, on the host"
	run_cella exec un1 stat -c %u:%g /cp.txt
	assert_eq 0:0 "$OUT" "the same file inside"
	run_cella inspect -f '{{.HostConfig.UsernsMode}}' un1
	assert_eq auto "$OUT" "inspect shows the mode"
	run_cella rm -f un1
	assert_ok
}

test_userns_auto_concurrent_containers_get_disjoint_ranges_released_at_rm() {
	_require_real_root
	_userns_env
	"$CELLA" run -d --name ua --network none --userns=auto busybox sleep 60 >"$TEST_TMP/a.out" 2>&1 &
	"$CELLA" run -d --name ub --network none --userns=auto busybox sleep 60 >"$TEST_TMP/b.out" 2>&1 &
	wait
	local n pid a b first
	for n in ua ub; do
		pid=$("$CELLA" inspect -f '{{.State.Pid}}' $n) || fail "$n: $(cat "$TEST_TMP/${n#u}.out")"
		[ "$pid" != 0 ] || fail "$n does not run: $(cat "$TEST_TMP/${n#u}.out")"
		eval "$n=\$(_map_base \"\$(cat /proc/$pid/uid_map)\")"
	done
	a=$ua b=$ub
	[ -n "$a" ] && [ -n "$b" ] || fail "no range: ua=$a ub=$b"
	[ "$b" -ge $((a + 65536)) ] || [ "$a" -ge $((b + 65536)) ] || fail "overlapping ranges: $a and $b (65536 each)"
	[ "$(ls "$CELLA_ROOT/userns" | wc -l)" = 2 ] || fail "two recorded ranges expected: $(ls "$CELLA_ROOT/userns")"
	first=$a
	[ "$b" -lt "$a" ] && first=$b
	run_cella rm -f ua ub
	assert_ok
	assert_eq "" "$(ls "$CELLA_ROOT/userns")" "ranges recorded after rm"
	run_cella run --network none --userns=auto busybox cat /proc/self/uid_map
	assert_rc 0
	assert_eq "$first" "$(_map_base "$OUT")" "the lowest range is given again once released"
}

test_userns_dry_run_shows_the_maps_and_takes_nothing() {
	_require_real_root
	_userns_env
	run_cella run --dry-run --userns=auto:size=4096 busybox true
	assert_rc 0
	assert_eq auto "$(printf '%s' "$OUT" | jq -r .usernsMode)" "usernsMode in the plan"
	assert_eq "0 4096" "$(printf '%s' "$OUT" | jq -r '.uidMappings[0] | "\(.inside) \(.count)"')" "uidMappings"
	assert_eq "0 4096" "$(printf '%s' "$OUT" | jq -r '.gidMappings[0] | "\(.inside) \(.count)"')" "gidMappings"
	printf '%s' "$OUT" | jq -e '.namespaces | index("user")' >/dev/null || fail "no user namespace in the plan"
	[ -z "$(ls "$CELLA_ROOT/userns" 2>/dev/null)" ] || fail "a dry run recorded a range"
}

test_userns_auto_cp_into_a_stopped_container() {
	_require_real_root
	_userns_env
	run_cella create --name ucp --network none --userns=auto busybox stat -c '%u:%g %n' /etc/added /etc
	assert_ok
	echo hi >"$TEST_TMP/added"
	run_cella cp "$TEST_TMP/added" ucp:/etc/added
	assert_ok
	run_cella start -a ucp
	assert_rc 0
	assert_eq "0:0 /etc/added
0:0 /etc" "$OUT" "owners inside of a copied file and of the directory it was copied into"
	run_cella rm -f ucp
}

test_userns_keep_id_is_a_namespace_with_the_hosts_ids() {
	_require_real_root
	run_cella run --userns=keep-id busybox sh -c 'cat /proc/self/uid_map; readlink /proc/self/ns/user; stat -c %u /etc/passwd'
	assert_rc 0
	assert_eq "0 0 4294967295" "$(echo $(printf '%s\n' "$OUT" | head -n1))" "the identity map"
	assert_ne "$(readlink /proc/self/ns/user)" "$(printf '%s\n' "$OUT" | sed -n 2p)" "a user namespace of its own"
	assert_eq 0 "$(printf '%s\n' "$OUT" | tail -n1)" "owner of /etc/passwd"
	run_cella run --userns=host busybox readlink /proc/self/ns/user
	assert_eq "$(readlink /proc/self/ns/user)" "$OUT" "--userns=host: the host's user namespace"
}

test_userns_refusals() {
	run_cella run --userns=private busybox true
	assert_cella_error 125 "--userns \`private\`: unknown mode (expected host, auto[:size=N] or keep-id)"
	run_cella run --userns=auto:size=0 busybox true
	assert_cella_error 125 "--userns auto:size=0: size must be a number of ids"
	run_cella run --backend vm --userns=auto busybox true
	assert_cella_error 125 "--userns auto: the vm backend makes no user namespace"
	if ! is_root; then
		run_cella run --userns=auto busybox true
		assert_cella_error 125 "--userns auto: for containers run by root"
		run_cella run --userns=keep-id busybox true
		assert_cella_error 125 "--userns keep-id: for containers run by root"
	elif [ "$(echo $(cat /proc/self/uid_map))" != "0 0 4294967295" ]; then
		run_cella run --userns=auto busybox true
		assert_cella_error 125 "--userns auto: needs the machine's root"
	else
		run_cella run --userns=auto --privileged busybox true
		assert_cella_error 125 "--userns auto: not with --privileged"
		run_cella run -d --userns=keep-id --network container:nosuch busybox true
		assert_cella_error 125 "--userns keep-id: not with --network container:nosuch"
	fi
	run_cella run --userns=host busybox true
	assert_rc 0 "--userns=host is always accepted"
}

# Layers stored by root mark opaque directories with trusted.overlay.opaque, which an overlay
# mounted inside a user namespace (`userxattr`) would not read: the root overlay of a
# --userns container is the host's, so whiteouts and opaque directories still hide what is below.
test_userns_auto_multi_layer_image_whiteouts() {
	_require_real_root
	_userns_env
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
	registry_start plain
	registry_push_busybox test/multi v1 multi >/dev/null
	run_cella pull -q "$REG_HOST/test/multi:v1"
	assert_ok
	run_cella run --userns=auto "$REG_HOST/test/multi:v1" sh -c 'ls /etc/removeme 2>&1 || echo gone; ls /opq; stat -c %u /etc/motd /etc/layer3'
	assert_ok
	assert_eq "ls: /etc/removeme: No such file or directory
gone
c
0
0" "$OUT" "whiteout, opaque directory, and owners of every layer's files"
}

# What --userns=auto is for: root inside is nobody to the host's files. A root-owned file on a
# volume cannot be written, nor chmod'ed, by the container's root; with --userns=host it can.
test_userns_auto_root_inside_is_not_root_on_host_files() {
	_require_real_root
	mkdir "$TEST_TMP/vol"
	echo host >"$TEST_TMP/vol/f"
	chmod 644 "$TEST_TMP/vol/f"
	chmod 755 "$TEST_TMP/vol"
	run_cella run --userns=auto -v "$TEST_TMP/vol:/vol" busybox sh -c \
		'stat -c %u /vol/f; echo x >>/vol/f || echo denied; chmod 666 /vol/f || echo chmod-denied; touch /vol/new || echo create-denied'
	assert_rc 0
	assert_eq "65534
denied
chmod-denied
create-denied" "$(printf '%s\n' "$OUT" | grep -v '^$')" "the host's root-owned file from inside"
	assert_eq host "$(cat "$TEST_TMP/vol/f")" "the file is unchanged"
	run_cella run --userns=host -v "$TEST_TMP/vol:/vol" busybox sh -c 'echo x >>/vol/f && echo written'
	assert_eq written "$OUT" "the control: root of --userns=host writes it"
}
