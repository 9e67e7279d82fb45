# shellcheck shell=bash disable=SC2034
# config.json coverage, end to end: `cella run --bundle DIR ID` (runc's run) on a busybox bundle,
# each section's effect checked inside the container; invalid configs refused with the JSON path.
# As an ordinary user the bundle gets a user namespace mapping the caller to root (what
# `cella spec --rootless` writes); what needs the real root (device nodes with owners, a netns
# made by `ip netns add`, supplementary groups) says so and is skipped there.

# bundle DIR ARGS_JSON [PROCESS_EXTRA] [LINUX_EXTRA] [TOP_EXTRA] [MOUNTS_EXTRA]: a bundle whose
# process runs ARGS_JSON (a JSON array); the extras are JSON members (with a leading comma).
bundle() {
	local dir=$1 args=$2 pex=${3:-} lex=${4:-} tex=${5:-} mex=${6:-}
	make_rootfs "$dir/rootfs"
	oci_rootless_userns
	cat >"$dir/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs"},
  "hostname": "ocibox",
  "process": {
    "args": $args, "cwd": "/", "env": ["PATH=/bin"],
    "user": {"uid": 0, "gid": 0},
    "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL", "CAP_CHOWN"],
                     "permitted": ["CAP_KILL", "CAP_CHOWN"]}
    $pex
  },
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    $mex
  ],
  "linux": {
    "namespaces": [$OCI_USERNS_ENTRY{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]
    $OCI_USERNS_MAPS
    $lex
  }
  $tex
}
EOF
}

oci_run() { # oci_run DIR
	run_cella run --bundle "$1" "oc-$$-$RANDOM"
}

test_process_user_rlimits_umask() {
	bundle b '["sh", "-c", "id; ulimit -n; ulimit -Hn; umask"]' \
		', "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128}]' ''
	local groups='"additionalGids": [10, 20]' want="groups=10,20"
	# one id mapped (the bundle's user namespace as a user, or cella under `unshare -r`): no other
	# group exists
	awk '{s += $3} END {exit !(s > 1)}' /proc/self/uid_map && is_root || groups='"additionalGids": []' want="groups=0(root)"
	sed -i "s/\"user\": {\"uid\": 0, \"gid\": 0}/\"user\": {\"uid\": 0, \"gid\": 0, \"umask\": 23, $groups}/" b/config.json
	oci_run b
	assert_rc 0
	# where setgroups is denied (unshare -r) the process keeps no group id can name: no groups= part
	[ "$want" = "groups=0(root)" ] && case "$OUT" in "uid=0(root) gid=0(root)"$'\n'*) OUT="uid=0(root) gid=0(root) $want${OUT#uid=0(root) gid=0(root)}" ;; esac
	assert_eq "uid=0(root) gid=0(root) $want
64
128
0027" "$OUT" "id, rlimits, umask"
}

test_rlimit_raise_hard_refused_clearly() {
	local hard
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] && skip "the host's hard RLIMIT_NOFILE is unlimited"
	bundle b '["true"]' ", \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 16, \"hard\": $((hard * 2))}]"
	oci_run b
	# CAP_SYS_RESOURCE counts for rlimits only in the initial user namespace (not under unshare -r)
	if grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map && (((0x$(awk '/^CapEff/ { print $2 }' /proc/self/status) >> 24) & 1)); then
		assert_rc 0 "raising a hard limit with CAP_SYS_RESOURCE"
	else
		assert_rc_ne 0
		assert_contains "$ERR" "raising the hard limit above $hard needs CAP_SYS_RESOURCE"
	fi
}

test_additional_gids_refused_when_not_mapped() {
	is_root && skip "as root every group is mapped"
	bundle b '["true"]'
	sed -i 's/"user": {"uid": 0, "gid": 0}/"user": {"uid": 0, "gid": 0, "additionalGids": [10]}/' b/config.json
	oci_run b
	assert_rc_ne 0
	assert_contains "$ERR" "additionalGids"
}

test_capabilities_five_sets_and_no_new_privs() {
	bundle b '["sh", "-c", "grep -E \"^(Cap|NoNewPrivs)\" /proc/self/status"]' \
		', "noNewPrivileges": true'
	sed -i 's/"permitted": \["CAP_KILL", "CAP_CHOWN"\]}/"permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}/' b/config.json
	oci_run b
	assert_rc 0
	assert_eq 0000000000000021 "$(status_field "$OUT" CapBnd)" CapBnd
	assert_eq 0000000000000021 "$(status_field "$OUT" CapEff)" CapEff
	assert_eq 0000000000000020 "$(status_field "$OUT" CapInh)" CapInh
	assert_eq 0000000000000020 "$(status_field "$OUT" CapAmb)" CapAmb
	assert_eq 1 "$(status_field "$OUT" NoNewPrivs)" NoNewPrivs
}

test_hostname_domainname_sysctl() {
	# a net sysctl and an ipc one, each set to a value the host does not have: written in the
	# host's namespaces instead of the container's, the host's value would change
	local host_somaxconn host_shmmni
	host_somaxconn=$(cat /proc/sys/net/core/somaxconn) host_shmmni=$(cat /proc/sys/kernel/shmmni)
	assert_ne 1234 "$host_somaxconn" "the host's net.core.somaxconn (pick another test value)"
	bundle b '["sh", "-c", "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni"]' '' \
		', "sysctl": {"net.core.somaxconn": "1234", "kernel.shmmni": "1235"}' ', "domainname": "example.org"'
	oci_run b
	local now_somaxconn now_shmmni
	now_somaxconn=$(cat /proc/sys/net/core/somaxconn) now_shmmni=$(cat /proc/sys/kernel/shmmni)
	if is_real_root; then # put the host back before failing
		[ "$now_somaxconn" = "$host_somaxconn" ] || echo "$host_somaxconn" >/proc/sys/net/core/somaxconn
		[ "$now_shmmni" = "$host_shmmni" ] || echo "$host_shmmni" >/proc/sys/kernel/shmmni
	fi
	assert_rc 0
	assert_eq "ocibox
example.org
1234
1235" "$OUT" "hostname, domainname, sysctls in the container"
	assert_eq "$host_somaxconn" "$now_somaxconn" "the host's net.core.somaxconn"
	assert_eq "$host_shmmni" "$now_shmmni" "the host's kernel.shmmni"
}

# Each masked path is a mount point in the container (an empty read-only tmpfs on a directory,
# /dev/null on a file) and /proc/sys is mounted read-only: asked of mountinfo, because as a user
# the kernel already hides /proc/kcore and refuses writes to /proc/sys, mask or not.
test_masked_and_readonly_paths() {
	local f
	for f in /proc/kcore /proc/keys /proc/timer_list ""; do [ -f "$f" ] && break; done
	[ -n "$f" ] || skip "the host's /proc has none of kcore, keys, timer_list to mask"
	[ -d /proc/acpi ] || skip "the host's /proc has no acpi directory to mask"
	bundle b '["sh", "-c", "cat '"$f"' | wc -c; ls /proc/acpi 2>/dev/null | wc -l; echo 1 >/proc/sys/kernel/domainname 2>/dev/null && echo writable || echo ro; cat /proc/self/mountinfo"]' '' \
		', "maskedPaths": ["'"$f"'", "/proc/acpi", "/proc/nothere"], "readonlyPaths": ["/proc/sys"]'
	oci_run b
	assert_rc 0
	assert_eq "0
0
ro" "$(printf '%s\n' "$OUT" | head -n3)" "masked file, masked dir, read-only /proc/sys"
	local mi
	mi=$(printf '%s\n' "$OUT" | tail -n +4)
	assert_match "$mi" "^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ $f [^ ]+.* - (devtmpfs|tmpfs) " "$f masked by a bind of /dev/null"
	assert_match "$mi" '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ /proc/acpi ro,.* - tmpfs ' "/proc/acpi masked by a read-only tmpfs"
	assert_match "$mi" '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ /proc/sys ro,' "/proc/sys mounted read-only"
	assert_not_contains "$mi" " /proc/nothere " "a masked path that does not exist"
	# without the keys: none of these mounts
	bundle c '["cat", "/proc/self/mountinfo"]'
	oci_run c
	assert_rc 0
	assert_not_contains "$OUT" " $f " "mountinfo without maskedPaths"
	assert_not_contains "$OUT" " /proc/sys " "mountinfo without readonlyPaths"
}

test_devices() {
	require_real_root
	bundle b '["sh", "-c", "stat -c \"%F %t:%T %a %u\" /dev/fuse /dev/net/tun; stat -c %F /dev/fifo1; touch /dev/new && echo dev-writable"]' '' \
		', "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 5},
		             {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200},
		             {"path": "/dev/fifo1", "type": "p"}]'
	oci_run b
	assert_rc 0
	assert_eq "character special file a:e5 600 5
character special file a:c8 666 0
fifo
dev-writable" "$OUT" "device nodes, a writable /dev"
}

test_seccomp_profile_errno() {
	bundle b '["sh", "-c", "mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status"]' '' \
		', "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
		   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
		                {"names": ["no_such_call"], "action": "SCMP_ACT_KILL"}]}'
	oci_run b
	assert_rc 0
	assert_contains "$OUT" "rc=1"
	assert_contains "$ERR" "Operation not permitted"
	assert_match "$OUT" "^Seccomp:[[:space:]]+2$"
}

test_seccomp_rule_with_args() {
	# kill(pid, 0) fails with ENOSYS; kill with another signal is let through
	bundle b '["sh", "-c", "kill -0 $$ 2>/dev/null; echo $?; kill -CONT $$; echo $?"]' '' \
		', "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
		   "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
		                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}'
	oci_run b
	assert_rc 0
	assert_eq "1
0" "$OUT" "kill -0 refused, kill -CONT allowed"
}

test_mount_options_ro_noexec_tmpcopyup() {
	mkdir -p data
	echo hello >data/f
	bundle b '["sh", "-c", "cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; cp /bin/busybox /scratch/bb && /scratch/bb true && echo exec || echo noexec; cat /etc/passwd | wc -l"]' '' '' '' \
		", {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$PWD/data\", \"options\": [\"rbind\", \"ro\", \"nosuid\"]},
		 {\"destination\": \"/scratch\", \"type\": \"tmpfs\", \"options\": [\"noexec\", \"size=8m\"]},
		 {\"destination\": \"/etc\", \"type\": \"tmpfs\", \"options\": [\"tmpcopyup\", \"mode=755\"]}"
	oci_run b
	assert_rc 0
	assert_eq "hello
ro
noexec
2" "$OUT" "ro bind, noexec tmpfs, tmpcopyup"
}

test_propagation_of_root_and_mounts() {
	mkdir -p data
	bundle b '["sh", "-c", "awk \"\\$5 == \\\"/\\\" || \\$5 == \\\"/data\\\" { print \\$5, \\$7 }\" /proc/self/mountinfo"]' '' \
		', "rootfsPropagation": "rshared"' '' \
		", {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$PWD/data\", \"options\": [\"bind\", \"private\"]}"
	ln -sf busybox b/rootfs/bin/awk
	oci_run b
	assert_rc 0
	assert_match "$OUT" "^/ shared:[0-9]+$" "the root is shared"
	assert_match "$OUT" "^/data -$" "the private bind has no peer group"
}

test_idmapped_bind() {
	require_real_root
	mkdir -p idm
	echo hi >idm/f
	chown 1000:1000 idm/f
	bundle b '["stat", "-c", "%u:%g", "/idm/f"]' '' '' '' \
		", {\"destination\": \"/idm\", \"type\": \"bind\", \"source\": \"$PWD/idm\", \"options\": [\"bind\", \"idmap\"],
		   \"uidMappings\": [{\"containerID\": 1000, \"hostID\": 0, \"size\": 1}],
		   \"gidMappings\": [{\"containerID\": 1000, \"hostID\": 0, \"size\": 1}]}"
	# whether the kernel and this file system take an idmapped mount: asked of the kernel itself
	require_cmd cc
	cc -O -o idmap_probe "$(dirname "${BASH_SOURCE[0]}")/idmap_probe.c" 2>cc.err || fail "cannot build idmap_probe.c: $(cat cc.err)"
	local why
	why=$(./idmap_probe "$PWD/idm") || skip "no idmapped mount of $PWD/idm here ($(stat -f -c %T idm)): $why"
	oci_run b
	assert_rc 0
	assert_eq "0:0" "$OUT" "a file of 1000:1000 seen through the mount's mappings"
	assert_eq "1000:1000" "$(stat -c %u:%g idm/f)" "the host's file is unchanged"
}

test_join_netns_by_path() {
	require_real_root
	require_cmd ip
	local ns="cella-oci-$$"
	local want
	ip netns add "$ns" || skip "ip netns add failed"
	want=$(ip netns exec "$ns" readlink /proc/self/ns/net)
	bundle b '["readlink", "/proc/self/ns/net"]'
	ln -sf busybox b/rootfs/bin/readlink
	sed -i "s|{\"type\": \"network\"}|{\"type\": \"network\", \"path\": \"/run/netns/$ns\"}|" b/config.json
	oci_run b
	ip netns delete "$ns"
	assert_rc 0
	assert_eq "$want" "$OUT" "the container's network namespace is the one made by ip netns add"
}

test_join_user_namespace_by_path() {
	require_cmd unshare
	local holder want
	unshare -U --map-root-user sleep 30 &
	holder=$!
	sleep 0.3
	want=$(readlink "/proc/$holder/ns/user")
	bundle b '["sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map"]'
	ln -sf busybox b/rootfs/bin/readlink
	# (as a user, instead of the new user namespace the bundle has)
	sed -i -e 's/{"type": "user"}, //' -e '/Mappings/d' \
		-e "s|{\"type\": \"network\"}|{\"type\": \"network\"}, {\"type\": \"user\", \"path\": \"/proc/$holder/ns/user\"}|" b/config.json
	oci_run b
	kill "$holder"
	wait "$holder" 2>/dev/null
	assert_rc 0
	assert_eq "$want" "$(printf '%s\n' "$OUT" | head -1)" "the container's user namespace is the joined one"
	assert_match "$OUT" "^ +0 +$(id -u) +1$"
}

# Root runs a bundle whose user namespace maps its root to a range (the rootfs owned by that
# range, as podman or a userns-remapped docker prepare it): the container's first process becomes
# root of the namespace before it builds anything, as runc does (before, the staging directory
# failed with EOVERFLOW: cella's own root is not mapped there).
test_root_runs_a_bundle_with_a_shifted_user_namespace() {
	is_root || skip "a user namespace of mapped ranges is written by root"
	[ "$(echo $(cat /proc/self/uid_map))" = "0 0 4294967295" ] || skip "root of a user namespace here: it maps one id"
	bundle b '["sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u:%g /etc/passwd; touch /tmp/new && stat -c %u:%g /tmp/new"]'
	sed -i -e 's/"namespaces": \[/"namespaces": [{"type": "user"}, /' \
		-e 's/"linux": {/"linux": {"uidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}], "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}],/' \
		b/config.json
	chown -R 300000:300000 b/rootfs
	oci_run b
	assert_rc 0
	assert_eq "0" "$(printf '%s\n' "$OUT" | head -1)" "root inside"
	assert_match "$OUT" "^ +0 +300000 +65536$"
	assert_contains "$OUT" "0:0
0:0" "owners inside: the rootfs's and a new file's"
	assert_eq "300000:300000" "$(stat -c %u:%g b/rootfs/tmp/new)" "the new file on the host"
}

test_hooks_create_and_start_container() {
	local log=$PWD/hooks.log
	bundle b '["true"]' '' '' \
		", \"hooks\": {\"createContainer\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"read s; echo create \$s >>$log\"]}],
		 \"startContainer\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo start >/start.mark; read s; echo \$s >/start.state\"], \"timeout\": 5}]},
		 \"annotations\": {\"k\": \"v\"}"
	# startContainer runs in the container: its files land in the container's root (here the bundle's)
	oci_run b
	assert_rc 0
	assert_contains "$(cat "$log")" "create {\"ociVersion\""
	assert_contains "$(cat "$log")" "\"status\":\"creating\""
	assert_contains "$(cat "$log")" "\"annotations\":{\"k\":\"v\"}"
	assert_eq start "$(cat b/rootfs/start.mark)" "startContainer ran in the container"
	assert_contains "$(cat b/rootfs/start.state)" "\"bundle\":\"$PWD/b\""
}

test_hook_failure_stops_the_container() {
	bundle b '["sh", "-c", "echo should-not-run"]' '' '' \
		', "hooks": {"startContainer": [{"path": "/bin/false"}]}'
	oci_run b
	assert_rc_ne 0
	assert_not_contains "$OUT" should-not-run
	assert_contains "$ERR" "startContainer hook 0"
}

test_personality_linux32() {
	bundle b '["uname", "-m"]' '' ', "personality": {"domain": "LINUX32"}'
	ln -sf busybox b/rootfs/bin/uname
	oci_run b
	assert_rc 0
	assert_eq i686 "$OUT" "uname -m under LINUX32"
}

test_time_namespace_offsets() {
	[ -e /proc/self/ns/time ] || skip "this kernel has no time namespaces"
	bundle b '["cat", "/proc/uptime"]'
	sed -i 's/{"type": "network"}\]/{"type": "network"}, {"type": "time"}], "timeOffsets": {"boottime": {"secs": 864000, "nanosecs": 0}}/' b/config.json
	oci_run b
	assert_rc 0
	[ "${OUT%%.*}" -ge 864000 ] || fail "uptime in the container is not offset by 10 days: $OUT"
}

test_invalid_configs_name_the_path() {
	bundle b '["true"]'
	sed -i 's/"cwd": "\/"/"cwd": "relative"/' b/config.json
	oci_run b
	assert_rc_ne 0
	assert_contains "$ERR" "config.json: process.cwd: \`relative\`: must be an absolute path"

	bundle c '["true"]' '' '' '' ', {"destination": "/x", "type": "tmpfs", "options": ["rwx"]}'
	oci_run c
	assert_rc_ne 0
	assert_contains "$ERR" "config.json: mounts[4].options[0]: unknown option \`rwx\`"

	bundle d '["true"]' '' ', "resources": {"memory": {"limit": "64m"}}'
	oci_run d
	assert_rc_ne 0
	assert_contains "$ERR" "config.json: linux.resources.memory.limit: must be an integer"

	# runc and crun refuse it too: the hostname has a field of its own
	bundle e '["true"]' '' ', "sysctl": {"kernel.hostname": "other"}'
	oci_run e
	assert_rc_ne 0
	assert_contains "$ERR" "linux.sysctl.kernel.hostname: not allowed: it conflicts with the config's \`hostname\` field"
	run_cella list -q
	assert_not_contains "$OUT" "oc-$$" "nothing was created"
}

# `exec --process FILE`: the same process section (rlimits, umask, capabilities) for a process
# started in a running container.
test_exec_process_json() {
	local id="oc-x-$$"
	bundle b '["sleep", "20"]'
	run_cella run -d --bundle b "$id" </dev/null
	assert_rc 0
	cat >p.json <<'EOP'
{"args": ["sh", "-c", "ulimit -n; umask; grep CapEff /proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
 "user": {"uid": 0, "gid": 0, "umask": 63}, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 33, "hard": 44}],
 "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}}
EOP
	run_cella exec --process p.json "$id"
	"$CELLA" delete --force "$id" >/dev/null 2>&1
	assert_rc 0
	assert_eq "33
0077
CapEff:	0000000000000020" "$OUT" "the exec'd process's rlimits, umask, capabilities"
}

# --- what runc's and podman's configs hold (issue 15, 2b) -------------------------------------

# podman --privileged copies each host device with its whole st_mode (type bits included); a
# device may live outside /dev (runtime-spec 1.1).
test_device_file_mode_with_type_bits_and_outside_dev() {
	require_real_root
	bundle b '["sh", "-c", "stat -c \"%F %t:%T %a\" /dev/mynull /opt/dev/zero; head -c 4 /opt/dev/zero | wc -c"]' '' \
		', "devices": [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 8630},
		             {"path": "/opt/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 8624}]'
	oci_run b
	assert_rc 0
	assert_eq "character special file 1:3 666
character special file 1:5 660
4" "$OUT" "fileMode 0o20666 and a device outside /dev"
}

# A user namespace made by root: the container's root may not mknod; the node is made on the
# host with the config's owner, not the host node's (root:root) bound.
test_devices_keep_owner_in_user_namespace() {
	require_real_root
	bundle b '["stat", "-c", "%F %t:%T %a %u:%g", "/dev/mynull"]' '' \
		', "devices": [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 416, "uid": 1000, "gid": 1001}]'
	sed -i -e 's/"namespaces": \[/"namespaces": [{"type": "user"}, /' \
		-e 's/"linux": {/"linux": {"uidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}], "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}],/' b/config.json
	oci_run b
	assert_rc 0
	assert_eq "character special file 1:3 640 1000:1001" "$OUT" "the device's owner and mode in the user namespace"
	[ -z "$(ls -d /dev/.cella-dev.* 2>/dev/null)" ] || fail "the host-side device directory was left in /dev"
}

# runc warns and leaves out an ambient capability the kernel would refuse (buildah's RUN steps ask
# for them) and, as runtime-spec 1.1 says, an unknown capability name.
test_capabilities_unknown_and_ambient_warned() {
	require_cmd jq
	bundle b '["grep", "-E", "^Cap(Bnd|Amb)", "/proc/self/status"]' ', "noNewPrivileges": true'
	jq '.process.capabilities = {"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_TELEPORT"], "effective": ["CAP_KILL"],
		"permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}' \
		b/config.json >b/c.json && mv b/c.json b/config.json
	oci_run b
	assert_rc 0
	assert_eq 0000000000000021 "$(status_field "$OUT" CapBnd)" "CapBnd without the unknown name"
	assert_eq 0000000000000020 "$(status_field "$OUT" CapAmb)" "CapAmb: CAP_KILL kept, CAP_CHOWN (not inheritable) left out"
	assert_contains "$ERR" "warning: config.json: process.capabilities.bounding[2]: unknown capability \`CAP_TELEPORT\`: ignored"
	assert_contains "$ERR" "warning: config.json: process.capabilities.ambient: CAP_CHOWN: not also permitted and inheritable"
}

# strictatime, noatime, nodiratime, sync and dirsync are applied, not only accepted.
test_mount_atime_and_sync_options_applied() {
	mkdir -p data
	bundle b '["awk", "$5 ~ /^\\/(t1|t2|data)$/ { print $5, $6, $NF }", "/proc/self/mountinfo"]' '' '' '' \
		", {\"destination\": \"/t1\", \"type\": \"tmpfs\", \"options\": [\"strictatime\", \"sync\", \"dirsync\"]},
		 {\"destination\": \"/t2\", \"type\": \"tmpfs\", \"options\": [\"noatime\", \"nodiratime\"]},
		 {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$PWD/data\", \"options\": [\"rbind\", \"noatime\"]}"
	ln -sf busybox b/rootfs/bin/awk
	oci_run b
	assert_rc 0
	assert_match "$OUT" "^/t1 rw rw,sync,dirsync" "strictatime (no relatime), sync and dirsync on the new tmpfs"
	assert_match "$OUT" "^/t2 [^ ]*noatime,nodiratime" "noatime, nodiratime on /t2"
	# in a user namespace a bind keeps its source's (locked) atime mode, as with runc
	is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map || return 0
	assert_match "$OUT" "^/data [^ ]*noatime" "noatime on a bind"
}

# A destination with repeated slashes, and one that is a dangling symlink in the root: resolved
# inside the root (never on the host) and its target created there, as runc does.
test_mount_destination_slashes_and_dangling_symlink() {
	local escape="/tmp/cella-oci-escape-$$"
	bundle b '["cut", "-d", " ", "-f5", "/proc/self/mountinfo"]' '' '' '' \
		', {"destination": "/a//b/", "type": "tmpfs"},
		 {"destination": "/mnt/link", "type": "tmpfs"},
		 {"destination": "/mnt/up", "type": "tmpfs"}'
	ln -sf busybox b/rootfs/bin/cut
	mkdir -p b/rootfs/mnt
	ln -s /real/dir b/rootfs/mnt/link
	ln -s "../../../../../../..$escape" b/rootfs/mnt/up
	oci_run b
	[ ! -e "$escape" ] || { rmdir "$escape"; fail "a symlink in the root made cella create $escape on the host"; }
	assert_rc 0
	assert_match "$OUT" "^/a/b$" "the tmpfs on /a//b/"
	assert_match "$OUT" "^/real/dir$" "the tmpfs on the dangling absolute symlink's target"
	assert_match "$OUT" "^$escape$" "the tmpfs on the relative symlink's target, inside the root"
	[ -d b/rootfs/real/dir ] && [ -d "b/rootfs$escape" ] || fail "the targets were not created in the root"
}

# process.cwd that the root lacks is created (runc); HOME comes from the container's /etc/passwd
# for the process's user (or /) when env has none.
test_cwd_created_and_home_from_passwd() {
	bundle b '["sh", "-c", "pwd; echo HOME=$HOME"]'
	sed -i 's|"cwd": "/"|"cwd": "/work/new"|' b/config.json
	oci_run b
	assert_rc 0
	assert_eq "/work/new
HOME=/root" "$OUT" "created cwd, HOME of root"
	bundle c '["sh", "-c", "echo HOME=$HOME"]'
	sed -i 's|"env": \["PATH=/bin"\]|"env": ["PATH=/bin", "HOME=/given"]|' c/config.json
	oci_run c
	assert_rc 0
	assert_eq "HOME=/given" "$OUT" "a HOME in the config is kept"
}

test_home_of_user_without_passwd_line() {
	is_root || skip "the rootless bundle maps one id: no user but root exists"
	require_id_range
	bundle d '["sh", "-c", "echo HOME=$HOME"]'
	sed -i 's/"user": {"uid": 0, "gid": 0}/"user": {"uid": 4321, "gid": 4321}/' d/config.json
	oci_run d
	assert_rc 0
	assert_eq "HOME=/" "$OUT" "a user without a passwd line: HOME=/"
}

# A hook without env gets the runtime's environment (runc, crun), not an empty one.
test_hook_without_env_gets_runtime_env() {
	local log=$PWD/hook.env
	bundle b '["true"]' '' '' \
		", \"hooks\": {\"prestart\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo PATH=\$PATH MARK=\$CELLA_HOOK_MARK >$log\"]}]}"
	CELLA_HOOK_MARK=from-cella oci_run b
	assert_rc 0
	assert_contains "$(cat "$log")" "MARK=from-cella" "the hook's environment"
	assert_not_contains "$(cat "$log")" "PATH= " "PATH is set"
}

# An OCI /dev tmpfs gets no /dev/shm of cella's own: the config mounts one (podman --ipc=none
# mounts none and must get none).
test_no_dev_shm_unless_mounted() {
	bundle b '["sh", "-c", "ls -d /dev/shm 2>&1; ls -d /dev/pts"]'
	oci_run b
	assert_rc 0
	assert_contains "$OUT" "/dev/shm: No such file or directory"
	bundle c '["sh", "-c", "grep \" /dev/shm \" /proc/self/mountinfo | wc -l"]' '' '' '' \
		', {"destination": "/dev/shm", "type": "tmpfs", "options": ["mode=1777"]}'
	oci_run c
	assert_rc 0
	assert_eq 1 "$OUT" "the config's own /dev/shm, once"
}

# An overlay mount from the config (podman --mount type=image): lowerdir only, read-only.
test_overlay_mount() {
	mkdir -p l1 l2
	echo top >l1/f
	echo low >l2/f
	echo only-low >l2/g
	bundle b '["sh", "-c", "cat /img/f /img/g; touch /img/h 2>/dev/null && echo rw || echo ro"]' '' '' '' \
		", {\"destination\": \"/img\", \"type\": \"overlay\", \"source\": \"overlay\", \"options\": [\"lowerdir=$PWD/l1:$PWD/l2\", \"private\"]}"
	oci_run b
	assert_rc 0
	assert_eq "top
only-low
ro" "$OUT" "the merged layers, read-only"
}

# linux.seccomp.listenerPath: the SCMP_ACT_NOTIFY filter's fd goes to the agent with the state;
# the agent answers the container's calls (here: ENOSPC for mkdir).
test_seccomp_listener_agent() {
	require_cmd python3 jq
	local agent=$(dirname "${BASH_SOURCE[0]}")/seccomp_agent.py
	python3 "$agent" "$PWD/agent.sock" "$PWD/agent.state" 28 &
	local apid=$!
	for _ in $(seq 50); do [ -S agent.sock ] && break; sleep 0.05; done
	bundle b '["sh", "-c", "mkdir /tmp/x; echo rc=$?"]' '' \
		", \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"$PWD/agent.sock\", \"listenerMetadata\": \"meta-$$\",
		   \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}"
	oci_run b
	kill "$apid" 2>/dev/null
	wait "$apid" 2>/dev/null
	assert_rc 0
	assert_contains "$OUT" "rc=1"
	assert_contains "$ERR" "No space left on device" "the agent's answer"
	assert_eq '["seccompFd"]' "$(jq -c .fds agent.state)" "fds"
	assert_eq "meta-$$" "$(jq -r .metadata agent.state)" "metadata"
	assert_eq "$(jq -r .pid agent.state)" "$(jq -r .state.pid agent.state)" "pid"
	assert_eq "$PWD/b" "$(jq -r .state.bundle agent.state)" "the container's state"
}

# userns_bundle DIR ARGS UIDMAPS GIDMAPS: a bundle with a user namespace of the given mappings
# (root of the host only: any host id may be mapped).
userns_bundle() {
	bundle "$1" "$2"
	sed -i -e 's/"namespaces": \[/"namespaces": [{"type": "user"}, /' \
		-e "s/\"linux\": {/\"linux\": {\"uidMappings\": $3, \"gidMappings\": $4,/" "$1/config.json"
}

# Maps that leave out host uid 0 (the container's root is host 300000): failed with EOVERFLOW
# creating the root's mount point before; several ranges as root: written directly (root needs
# no /etc/subuid line), setgroups stays allowed (additionalGids work).
test_user_namespace_maps_as_root() {
	require_real_root
	local m='[{"containerID": 0, "hostID": 300000, "size": 65536}]'
	userns_bundle b '["sh", "-c", "cat /proc/self/uid_map; id -u"]' "$m" "$m"
	oci_run b
	assert_rc 0
	assert_match "$OUT" "^ +0 +300000 +65536$" "uid_map"
	# create + start: the exec fifo belongs to the container's root (host 300000), as runc makes it
	local status rc
	run_cella create --bundle b "oc-u-$$" </dev/null
	rc=$RC
	run_cella state "oc-u-$$"
	status=$(jq -r .status <<<"$OUT")
	run_cella start "oc-u-$$"
	"$CELLA" delete --force "oc-u-$$" >/dev/null 2>&1
	[ "$rc" = 0 ] || fail "create failed"
	assert_eq created "$status" "status after create"
	assert_rc 0 "start"
	m='[{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 300001, "size": 1000}]'
	userns_bundle c '["sh", "-c", "cat /proc/self/uid_map; id -G"]' "$m" "$m"
	sed -i 's/"user": {"uid": 0, "gid": 0}/"user": {"uid": 0, "gid": 0, "additionalGids": [5, 10]}/' c/config.json
	oci_run c
	assert_rc 0
	assert_match "$OUT" "^ +0 +0 +1$" "uid_map, first range"
	assert_match "$OUT" "^ +1 +300001 +1000$" "uid_map, second range"
	assert_match "$OUT" "^0 5 10$" "supplementary groups"
}

# A bind source under a directory that only the host's root may enter (0700): the container's
# root (host 300000) could not clone it; cella makes the mount on the host.
test_bind_source_only_root_can_reach_in_user_namespace() {
	require_real_root
	local m='[{"containerID": 0, "hostID": 300000, "size": 65536}]'
	mkdir -p private/data
	echo secret >private/data/f
	chmod 700 private
	chmod 755 private/data
	userns_bundle b '["cat", "/data/f"]' "$m" "$m"
	mkdir -p b/rootfs/data
	sed -i "s|\"mounts\": \[|\"mounts\": [{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$PWD/private/data\", \"options\": [\"rbind\", \"ro\"]}, |" b/config.json
	oci_run b
	assert_rc 0
	assert_eq secret "$OUT" "the bind's content"
}

# exec --process: user.additionalGids are the process's groups (they were replaced by the
# container's /etc/group lookup of the uid).
test_exec_process_additional_gids() {
	require_id_range
	is_root || skip "the rootless bundle maps one group: setgroups is denied"
	local id="oc-g-$$"
	bundle b '["sleep", "20"]'
	run_cella run -d --bundle b "$id" </dev/null
	assert_rc 0
	cat >p.json <<'EOP'
{"args": ["id", "-G"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0, "additionalGids": [7, 8]}}
EOP
	run_cella exec --process p.json "$id"
	"$CELLA" delete --force "$id" >/dev/null 2>&1
	assert_rc 0
	assert_eq "0 7 8" "$OUT" "the exec'd process's groups"
}

# The container's first process leads its own session and process group (runc): conmon's
# kill(-pid) on `podman run --timeout` must reach the container only.
test_process_leads_its_session() {
	bundle b '["sh", "-c", "read -r pid comm state ppid pgrp session rest </proc/self/stat; echo $pid $pgrp $session"]'
	oci_run b
	assert_rc 0
	assert_eq "1 1 1" "$OUT" "pid, process group and session of the container's init"
}

# mount_fields MOUNTINFO MOUNTPOINT: "TYPE SOURCE" of each mountinfo line of that mount point.
mount_fields() {
	printf '%s\n' "$1" | awk -v p="$2" '$5 == p { for (i = 7; $i != "-"; i++); print $(i + 1), $(i + 2) }'
}

# Each filesystem shows the type and source of its config entry (runc and docker show the same;
# runtime-tools' runtimetest matches mounts by them), and each mount point appears once.
test_mountinfo_type_and_source() {
	bundle b '["cat", "/proc/self/mountinfo"]' '' '' '' \
		', {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		   {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
		   {"destination": "/scratch", "type": "tmpfs", "source": "scratchfs", "options": ["size=1m"]}'
	oci_run b
	assert_rc 0
	local want
	for want in "/proc proc proc" "/dev tmpfs tmpfs" "/dev/pts devpts devpts" "/dev/shm tmpfs shm" \
		"/dev/mqueue mqueue mqueue" "/sys sysfs sysfs" "/scratch tmpfs scratchfs"; do
		assert_eq "${want#* }" "$(mount_fields "$OUT" "${want%% *}")" "mountinfo type and source of ${want%% *}"
	done
}

# With a seccomp profile, no_new_privs follows process.noNewPrivileges and nothing else
# (libseccomp would set it by default).
test_seccomp_keeps_no_new_privs_as_configured() {
	local sc='"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]}'
	bundle b '["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]' '' ", $sc"
	oci_run b
	assert_rc 0
	assert_eq 0 "$(status_field "$OUT" NoNewPrivs)" "NoNewPrivs without noNewPrivileges"
	assert_eq 2 "$(status_field "$OUT" Seccomp)" "the filter is loaded"
	bundle c '["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]' ', "noNewPrivileges": false' ", $sc"
	oci_run c
	assert_rc 0
	assert_eq 0 "$(status_field "$OUT" NoNewPrivs)" "NoNewPrivs with noNewPrivileges false"
	bundle d '["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]' ', "noNewPrivileges": true' ", $sc"
	oci_run d
	assert_rc 0
	assert_eq 1 "$(status_field "$OUT" NoNewPrivs)" "NoNewPrivs with noNewPrivileges true"
}

# The same for a user other than root, who has no CAP_SYS_ADMIN of its own: the filter must be
# loaded before the capabilities go.
test_seccomp_without_no_new_privs_as_a_user() {
	require_id_range
	is_root || skip "the rootless bundle maps one id"
	bundle b '["grep", "-E", "^(NoNewPrivs|Seccomp|CapEff|Uid):", "/proc/self/status"]' '' \
		', "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]}'
	sed -i 's/"user": {"uid": 0, "gid": 0}/"user": {"uid": 1000, "gid": 1000}/' b/config.json
	oci_run b
	assert_rc 0
	assert_eq 0 "$(status_field "$OUT" NoNewPrivs)" NoNewPrivs
	assert_eq 2 "$(status_field "$OUT" Seccomp)" Seccomp
	assert_eq 1000 "$(status_field "$OUT" Uid)" Uid
	assert_eq 0000000000000000 "$(status_field "$OUT" CapEff)" CapEff
}

# A bind mount's data options (mode=, size=...) mean nothing to the kernel: runc and crun ignore them.
test_bind_with_data_options() {
	mkdir -p data
	echo hi >data/f
	bundle b '["cat", "/data/f"]' '' '' '' \
		", {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$PWD/data\", \"options\": [\"rbind\", \"mode=755\", \"size=1k\"]}"
	oci_run b
	assert_rc 0
	assert_eq hi "$OUT" "the bind with mode=755"
}

# A user namespace whose root is not the caller: container 0 is host 1000 (runtime-tools'
# linux_uid_mappings maps 0 to 1000 with 3200 ids).
test_user_namespace_root_mapped_to_another_id() {
	require_real_root
	bundle b '["sh", "-c", "id -u; cat /proc/self/uid_map"]'
	sed -i -e 's/{"type": "pid"}/{"type": "user"}, {"type": "pid"}/' \
		-e 's/"namespaces": \[/"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 3200}], "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 3200}], "namespaces": [/' b/config.json
	oci_run b
	assert_rc 0
	assert_match "$OUT" "^ +0 +1000 +3200$" "uid_map"
	assert_eq 0 "$(printf '%s\n' "$OUT" | head -1)" "root in the container"
}

# No mount namespace in the config: the container shares the runtime's (runtime-tools'
# linux_ns_itype), its root entered with chroot; what it mounted there is gone after delete.
test_no_mount_namespace() {
	require_real_root
	local root id="oc-nomnt-$$"
	bundle b '["sh", "-c", "readlink /proc/self/ns/mnt; ls /proc/self/ns >/dev/null && echo proc"]'
	ln -sf busybox b/rootfs/bin/readlink
	sed -i 's/{"type": "mount"}, //' b/config.json
	root=$(cd b/rootfs && pwd -P)
	oci_run b
	assert_rc 0
	assert_eq "$(readlink /proc/self/ns/mnt)
proc" "$OUT" "the runtime's mount namespace, /proc mounted in the root"
	assert_eq 0 "$(mounts_under "$root")" "mounts left under the root after run"
	# created, exec'd into (in its root), deleted: its mounts are there until delete
	sed -i 's/"args": \[[^]]*\]/"args": ["sleep", "30"]/' b/config.json
	touch b/rootfs/in-the-root
	run_cella create --bundle b "$id"
	assert_rc 0 "create"
	[ "$(mounts_under "$root")" -gt 0 ] || fail "no mount under the root of the created container"
	run_cella exec "$id" ls /in-the-root
	assert_rc 0 "exec"
	assert_eq "/in-the-root" "$OUT" "exec sees the container's root"
	run_cella delete --force "$id"
	assert_rc 0 "delete"
	assert_eq 0 "$(mounts_under "$root")" "mounts left under the root after delete"
}

mounts_under() { # DIR: how many mounts the host has at DIR or below
	awk -v d="$1" '$5 == d || index($5, d "/") == 1' /proc/self/mountinfo | wc -l
}

# Mounts appear in mountinfo in the config's order (runtime-tools' "mounts in order"), binds
# included: Linux 6.8+ lists mounts in the order they were made.
test_mountinfo_in_config_order() {
	mkdir -p data
	bundle b '["cat", "/proc/self/mountinfo"]' '' '' '' \
		", {\"destination\": \"/m1\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"},
		   {\"destination\": \"/m2\", \"type\": \"bind\", \"source\": \"$PWD/data\", \"options\": [\"bind\"]},
		   {\"destination\": \"/m3\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"}"
	oci_run b
	assert_rc 0
	assert_eq "/m1 /m2 /m3" "$(printf '%s\n' "$OUT" | awk '$5 ~ /^\/m[0-9]$/ { printf "%s%s", s, $5; s = " " }')" "mount order"
}
