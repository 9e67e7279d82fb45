# shellcheck shell=bash disable=SC2034
# User namespaces: none as root (by default); as an ordinary user always one, with the caller
# mapped to 0 and, when /etc/subuid and /etc/subgid give a range and newuidmap/newgidmap exist,
# the whole range mapped after it.

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
