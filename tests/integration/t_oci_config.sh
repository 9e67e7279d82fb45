# shellcheck shell=bash disable=SC2034
# config.json coverage, end to end: `cella run --bundle DIR ID` (runc's run) on a busybox bundle,
# each section's effect checked inside the container; invalid configs refused with the JSON path.
# As an ordinary user the bundle gets a user namespace mapping the caller to root (what
# `cella spec --rootless` writes); what needs the real root (device nodes with owners, a netns
# made by `ip netns add`, supplementary groups) says so and is skipped there.

# bundle DIR ARGS_JSON [PROCESS_EXTRA] [LINUX_EXTRA] [TOP_EXTRA] [MOUNTS_EXTRA]: a bundle whose
# process runs ARGS_JSON (a JSON array); the extras are JSON members (with a leading comma).
bundle() {
	local dir=$1 args=$2 pex=${3:-} lex=${4:-} tex=${5:-} mex=${6:-} userns="" usertype=""
	make_rootfs "$dir/rootfs"
	if ! is_root; then
		usertype='{"type": "user"}, '
		userns=", \"uidMappings\": [{\"containerID\": 0, \"hostID\": $(id -u), \"size\": 1}],
		 \"gidMappings\": [{\"containerID\": 0, \"hostID\": $(id -g), \"size\": 1}]"
	fi
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
    "namespaces": [$usertype{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]
    $userns
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
	bundle b '["sh", "-c", "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni"]' '' \
		', "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}' ', "domainname": "example.org"'
	oci_run b
	assert_rc 0
	assert_eq "ocibox
example.org
1
1234" "$OUT" "hostname, domainname, sysctls"
	assert_eq "$(cat /proc/sys/kernel/shmmni)" "$(cat /proc/sys/kernel/shmmni)" "host untouched"
	[ "$(cat /proc/sys/kernel/shmmni)" != 1234 ] || fail "the host's kernel.shmmni was changed"
}

test_masked_and_readonly_paths() {
	bundle b '["sh", "-c", "cat /proc/kcore | wc -c; ls /proc/acpi 2>/dev/null | wc -l; echo 1 >/proc/sys/kernel/domainname 2>/dev/null && echo writable || echo ro"]' '' \
		', "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/nothere"], "readonlyPaths": ["/proc/sys"]'
	oci_run b
	assert_rc 0
	assert_eq "0
0
ro" "$OUT" "masked file, masked dir, read-only /proc/sys"
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
	oci_run b
	[ "$RC" != 0 ] && case "$ERR" in *"does not support idmapped mounts"*) skip "this file system has no idmapped mounts" ;; esac
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

	bundle e '["true"]' '' ', "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}'
	oci_run e
	assert_rc_ne 0
	assert_contains "$ERR" "linux.seccomp.listenerPath: seccomp listeners (user notification) are not supported"
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
	bundle b '["sh", "-c", "readlink /proc/self/ns/mnt; ls /proc/self/ns >/dev/null && echo proc"]'
	ln -sf busybox b/rootfs/bin/readlink
	sed -i 's/{"type": "mount"}, //' b/config.json
	check_no_leftovers oci_run b
	assert_rc 0
	assert_eq "$(readlink /proc/self/ns/mnt)
proc" "$OUT" "the runtime's mount namespace, /proc mounted in the root"
	# created, exec'd into (in its root), deleted: its mounts go with it
	sed -i 's/"args": \[[^]]*\]/"args": ["sleep", "30"]/' b/config.json
	touch b/rootfs/in-the-root
	check_no_leftovers created_exec_deleted b
	assert_eq "in-the-root" "$EXEC_OUT" "exec sees the container's root"
}

created_exec_deleted() { # BUNDLE
	local id="oc-nomnt-$$"
	run_cella create --bundle "$1" "$id"
	assert_rc 0 "create"
	run_cella exec "$id" ls /in-the-root
	assert_rc 0 "exec"
	EXEC_OUT=${OUT##*/}
	run_cella delete --force "$id"
	assert_rc 0 "delete"
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
