# shellcheck shell=bash
# passes: root user
# passes-why: volumes are engine records and binds as in the root and cellatest passes (CI time)
# Named and anonymous volumes: `cella volume create|ls|inspect|rm|prune`, -v NAME:/path,
# --mount type=volume, --volumes-from, copy-up of the image's content, rm -v.

. "$(dirname "${BASH_SOURCE[0]}")/engine_lib.sh"

# vol_image NAME VOLUME...: import an image (busybox root, /srv with a file owned 33:34, a
# symlink, and /var/lib/app owned 33:33 mode 750) whose config declares the VOLUMEs.
vol_image() {
	local name=$1
	shift
	require_cmd python3
	make_rootfs "$TEST_TMP/rootfs"
	mkdir -p "$TEST_TMP/rootfs/srv"
	echo seed >"$TEST_TMP/rootfs/srv/seed"
	ln -s seed "$TEST_TMP/rootfs/srv/link"
	tar -C "$TEST_TMP/rootfs" -cf "$TEST_TMP/base.tar" --owner=0 --group=0 .
	python3 - "$TEST_TMP/base.tar" "$TEST_TMP/oci" "$@" <<'EOF'
import hashlib, io, json, os, sys, tarfile
tar, out, vols = sys.argv[1], sys.argv[2], sys.argv[3:]
with tarfile.open(tar, "a") as t:
    f = tarfile.TarInfo("srv/owned"); f.size = 3; f.uid = 33; f.gid = 34; f.mode = 0o640
    t.addfile(f, io.BytesIO(b"abc"))
    d = tarfile.TarInfo("var/lib/app"); d.type = tarfile.DIRTYPE; d.uid = d.gid = 33; d.mode = 0o750
    t.addfile(d)
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(data)
    return "sha256:" + h, len(data)
ld, ls = blob(open(tar, "rb").read())
cfg = {"architecture": "amd64", "os": "linux", "config": {"Volumes": {v: {} for v in vols}, "Cmd": ["sh"]},
       "rootfs": {"type": "layers", "diff_ids": [ld]}}
cd, cs = blob(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}
md, ms = blob(json.dumps(man).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": man["mediaType"], "digest": md, "size": ms}]},
          open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
EOF
	run_cella image import "$TEST_TMP/oci" "$name"
	assert_ok
}

vol_names() { "$CELLA" volume ls -q 2>/dev/null | sort | tr '\n' ' '; }

test_volume_create_inspect_ls_rm() {
	engine_env
	require_cmd jq
	run_cella volume create --label app=web --label tier=db --opt type=tmpfs --opt o=size=8m v1
	assert_ok
	assert_eq v1 "$OUT" "create prints the name"
	run_cella volume inspect v1
	assert_ok
	assert_eq "v1 local local app=web,tier=db tmpfs size=8m" \
		"$(jq -r '.[0] | "\(.Name) \(.Driver) \(.Scope) \(.Labels | to_entries | map("\(.key)=\(.value)") | join(",")) \(.Options.type) \(.Options.o)"' <<<"$OUT")" \
		"inspect's fields"
	assert_eq "$CELLA_ROOT/volumes/v1/_data" "$(jq -r '.[0].Mountpoint' <<<"$OUT")" "Mountpoint under the data root"
	assert_match "$(jq -r '.[0].CreatedAt' <<<"$OUT")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "CreatedAt"
	[ -d "$CELLA_ROOT/volumes/v1/_data" ] || fail "no _data directory"
	run_cella volume create
	assert_ok
	assert_match "$OUT" '^[0-9a-f]{64}$' "no name: a random one"
	local anon=$OUT
	run_cella volume create v1
	assert_cella_error 125 "v1"
	assert_eq "$anon v1 " "$(vol_names)" "ls -q"
	run_cella volume ls --filter label=app=web
	assert_ok
	assert_contains "$OUT" "v1"
	assert_not_contains "$OUT" "$anon" "--filter label= keeps only the labelled one"
	run_cella volume ls --format json --filter label=tier
	assert_ok
	assert_eq v1 "$(jq -r '.[].Name' <<<"$OUT")" "ls --format json with a filter"
	run_cella volume ls --filter bogus=1
	assert_cella_error 125 "bogus=1"
	run_cella volume inspect nosuch
	assert_cella_error 125 "no such volume: \`nosuch\`"
	run_cella volume rm v1 "$anon"
	assert_ok
	assert_eq "" "$(vol_names)" "rm removed both"
	[ ! -e "$CELLA_ROOT/volumes/v1" ] || fail "the volume's directory is left"
	run_cella volume rm v1
	assert_cella_error 125 "no such volume"
	run_cella volume rm -f v1
	assert_ok
	# what a killed create or rm leaves is hidden from ls and removed by the next one to lock
	mkdir -p "$CELLA_ROOT/volumes/.tmp-0123-half/_data" "$CELLA_ROOT/volumes/.rm-4567-gone/_data"
	assert_eq "" "$(vol_names)" "ls shows no half-made volume"
	run_cella volume create after
	assert_ok
	if [ -e "$CELLA_ROOT/volumes/.tmp-0123-half" ] || [ -e "$CELLA_ROOT/volumes/.rm-4567-gone" ]; then
		fail "leftovers not removed: $(ls -A "$CELLA_ROOT/volumes")"
	fi
}

test_volume_bad_names_and_options() {
	engine_env
	run_cella volume create good.name_1-x
	assert_ok
	run_cella volume create 'bad/name'
	assert_cella_error 125 "invalid volume name \`bad/name\`"
	run_cella volume create _x
	assert_cella_error 125 "invalid volume name \`_x\`"
	run_cella volume create --opt type=nfs v
	assert_cella_error 125 "type=nfs"
	run_cella volume create --opt type=bind v
	assert_cella_error 125 "device="
	run_cella run --rm -v ./rel:/d busybox true
	assert_cella_error 125 "neither an absolute host path nor a volume name"
	run_cella run --rm --mount type=volume,source=-x,target=/d busybox true
	assert_cella_error 125 "invalid volume name \`-x\`"
	run_cella run --rm --mount type=volume,source=v busybox true
	assert_cella_error 125 "target="
	assert_eq "good.name_1-x " "$(vol_names)" "nothing made by the refused commands"
}

test_named_volume_shared_and_readonly() {
	engine_env
	run_cella run --rm -v shared:/data busybox sh -c 'echo from-one >/data/f'
	assert_ok
	assert_eq "shared " "$(vol_names)" "-v NAME:/path created the volume"
	run_cella run --rm --mount type=volume,source=shared,target=/mnt busybox cat /mnt/f
	assert_ok
	assert_eq from-one "$OUT" "the second container reads what the first wrote"
	run_cella run --rm -v shared:/data:ro busybox sh -c 'cat /data/f; echo x >/data/g'
	assert_rc_ne 0
	assert_contains "$OUT" from-one
	assert_contains "$ERR" "Read-only file system" ":ro refuses writes"
	run_cella run --rm --mount type=volume,src=shared,dst=/d,readonly busybox sh -c 'echo x >/d/g'
	assert_rc_ne 0
	assert_contains "$ERR" "Read-only file system" "--mount readonly refuses writes"
	[ ! -e "$CELLA_ROOT/volumes/shared/_data/g" ] || fail "a read-only mount was written"
}

test_volume_rm_refuses_in_use_and_prune() {
	engine_env
	run_cella volume create keep
	run_cella volume create idle
	run_cella create --name user1 -v keep:/d busybox true
	assert_ok
	run_cella volume rm keep
	assert_cella_error 125 "volume \`keep\` is in use by container \`user1\`"
	run_cella volume ls -q --filter dangling=true
	assert_eq idle "$OUT" "dangling=true: the unused one"
	run_cella volume prune -f
	assert_ok
	assert_eq idle "$OUT" "prune removed the unused volume only"
	assert_eq "keep " "$(vol_names)"
	run_cella start -a user1
	run_cella volume rm keep
	assert_cella_error 125 "in use by container \`user1\`"
	run_cella rm user1
	assert_ok
	run_cella volume rm keep
	assert_ok
	assert_eq "" "$(vol_names)"
}

# --driver: only docker's `local` exists; prune --filter label= removes only the matching unused ones
test_volume_driver_and_prune_filter() {
	engine_env
	run_cella volume create --driver local --label tier=cache c1
	assert_ok
	run_cella volume create -d local --label tier=db d1
	assert_ok
	run_cella volume create --driver nfs n1
	assert_cella_error 125 "--driver \`nfs\`: only the local driver exists here"
	run_cella volume prune -f --filter label=tier=cache
	assert_ok
	assert_eq c1 "$OUT" "only the volume with the label"
	assert_eq "d1 " "$(vol_names)"
	run_cella volume prune --filter color
	assert_cella_error 125 "--filter \`color\`: prune takes label=KEY[=VALUE]"
	run_cella volume rm d1
	assert_ok
}

test_volume_rm_refuses_while_a_foreground_run_uses_it() {
	engine_env
	"$CELLA" run -v held:/h busybox sh -c 'touch /h/started; sleep 4' >/dev/null 2>&1 &
	local _
	for _ in $(seq 100); do
		[ -e "$CELLA_ROOT/volumes/held/_data/started" ] && break
		sleep 0.1
	done
	run_cella volume rm held
	assert_cella_error 125 "volume \`held\` is in use by a running container"
	wait
	run_cella volume rm held
	assert_ok
	assert_eq "" "$(vol_names)" "removed once the run ended"
}

test_anonymous_volumes_removed_by_rm_v_only() {
	engine_env
	vol_image local/vol /var/lib/app
	run_cella create --name a1 -v named:/n local/vol sh -c 'echo a1 >/var/lib/app/f; echo n >/n/f'
	assert_ok
	local anon
	anon=$("$CELLA" volume ls -q | grep -v '^named$')
	assert_match "$anon" '^[0-9a-f]{64}$' "the image's VOLUME got an anonymous volume"
	run_cella volume inspect "$anon"
	assert_eq true "$(jq -r '.[0].Anonymous' <<<"$OUT")"
	run_cella inspect a1
	assert_eq "$anon /var/lib/app true true|named /n true false|" \
		"$(jq -r '.[0].Mounts[] | "\(.Name) \(.Destination) \(.RW) \(.Anonymous)"' <<<"$OUT" | sort | tr '\n' '|')" \
		"inspect's Mounts"
	run_cella start -a a1
	assert_ok
	run_cella run --rm -v "$anon:/x" busybox cat /x/f
	assert_eq a1 "$OUT" "the workload wrote into the anonymous volume"
	run_cella create --name a2 -v /scratch local/vol true
	assert_ok
	[ "$("$CELLA" volume ls -q | wc -l)" = 4 ] || fail "-v /path and VOLUME: two more anonymous volumes: $(vol_names)"
	run_cella rm a2
	assert_ok
	[ "$("$CELLA" volume ls -q | wc -l)" = 4 ] || fail "rm without -v removed volumes: $(vol_names)"
	run_cella rm -v a1
	assert_ok
	run_cella volume ls -q
	assert_not_contains "$OUT" "$anon" "rm -v removed the anonymous volume"
	assert_contains "$OUT" named "rm -v keeps the named volume"
	run_cella run --rm -v /tmpvol local/vol true
	assert_ok
	[ "$("$CELLA" volume ls -q | wc -l)" = 3 ] || fail "a --rm run left its anonymous volumes: $(vol_names)"
}

test_volume_copy_up_content_and_owners() {
	engine_env
	require_id_range
	vol_image local/vol /srv /var/lib/app
	run_cella run --rm -v fresh:/srv local/vol sh -c 'cat /srv/seed /srv/link; stat -c "%u:%g %a %F" /srv/owned /srv/link /srv'
	assert_ok
	assert_eq "seed
seed
33:34 640 regular file
0:0 777 symbolic link
0:0 755 directory" "$OUT" "the image's /srv copied into the new volume, owners and links kept"
	run_cella run --rm -v fresh:/srv local/vol sh -c 'rm /srv/seed; echo mine >/srv/new'
	assert_ok
	run_cella run --rm -v fresh:/srv local/vol sh -c 'ls /srv | tr "\n" " "'
	assert_eq "link new owned " "$OUT" "a volume with content is not copied up again"
	run_cella run --name own local/vol stat -c '%u:%g %a' /var/lib/app
	assert_ok
	assert_eq "33:33 750" "$OUT" "the anonymous volume took the directory's owner and mode"
	run_cella run --rm -v nc:/srv:nocopy local/vol ls /srv
	assert_ok
	assert_eq "" "$OUT" "-v NAME:/path:nocopy: no copy-up"
	run_cella run --rm --mount type=volume,src=nc2,dst=/srv,volume-nocopy local/vol ls /srv
	assert_ok
	assert_eq "" "$OUT" "--mount volume-nocopy: no copy-up"
	run_cella run --rm --mount type=volume,src=nc3,dst=/srv,volume-opt=x local/vol true
	assert_cella_error 125 "unknown key \`volume-opt\`"
	run_cella volume create empty
	run_cella run --rm -v empty:/srv local/vol ls /srv
	assert_ok
	assert_eq "" "$OUT" "an existing volume is mounted as it is (docker copies into volumes it creates only here)"
}

test_volumes_from() {
	engine_env
	run_cella create --name src -v data:/data busybox true
	assert_ok
	run_cella run --rm -v data:/data busybox sh -c 'echo shared >/data/f'
	assert_ok
	run_cella run --rm --volumes-from src busybox cat /data/f
	assert_ok
	assert_eq shared "$OUT" "--volumes-from mounts the other container's volumes at their paths"
	run_cella run --rm --volumes-from src:ro busybox sh -c 'echo x >/data/g'
	assert_rc_ne 0
	assert_contains "$ERR" "Read-only file system" "--volumes-from CTR:ro"
	run_cella run --rm --volumes-from nosuch busybox true
	assert_cella_error 125 "nosuch"
	run_cella create --name user2 --volumes-from src busybox true
	assert_ok
	run_cella rm src
	run_cella volume rm data
	assert_cella_error 125 "in use by container \`user2\`"
}

test_volume_tmpfs_and_bind_types() {
	engine_env
	mkdir -p "$TEST_TMP/hostdir"
	echo from-host >"$TEST_TMP/hostdir/x"
	run_cella volume create --opt type=tmpfs --opt o=size=8m,mode=700 tv
	assert_ok
	run_cella volume create --opt type=bind --opt device="$TEST_TMP/hostdir" bv
	assert_ok
	run_cella run --rm -v tv:/t -v bv:/b busybox sh -c 'grep " /t " /proc/mounts; stat -c %a /t; cat /b/x; echo w >/b/y'
	assert_ok
	assert_match "$OUT" '^tmpfs /t tmpfs rw,.*size=8192k' "a tmpfs-typed volume mounts a tmpfs with its o= options"
	assert_contains "$OUT" "700
from-host" "mode= and the bind-typed volume's device"
	assert_eq w "$(cat "$TEST_TMP/hostdir/y")" "writes reach the device directory"
	run_cella volume create --opt type=bind --opt device="$TEST_TMP/nosuch" bad
	assert_cella_error 125 "nosuch"
}

test_volume_copy_up_userns_auto() {
	is_root || skip "--userns auto is for containers run by root"
	awk '$1 == 0 && $2 == 0 && $3 == 4294967295 { ok = 1 } END { exit !ok }' /proc/self/uid_map ||
		skip "root of a user namespace here, not the machine's root (--userns auto needs subordinate ids)"
	engine_env
	vol_image local/vol /srv
	run_cella run --rm --userns=auto -v ua:/srv -v empty:/nothing local/vol sh -c \
		'stat -c "%u:%g %n" /srv/owned /srv/seed /srv /nothing; touch /srv/new /nothing/new && echo wrote; cat /proc/self/uid_map'
	assert_ok
	assert_contains "$OUT" "33:34 /srv/owned
0:0 /srv/seed
0:0 /srv
0:0 /nothing
wrote" "the container sees the image's owners in its new volumes, its root can write"
	local base
	base=$(printf '%s\n' "$OUT" | awk '$1 == 0 { print $2; exit }')
	assert_eq "$((base + 33)):$((base + 34))" "$(stat -c %u:%g "$CELLA_ROOT/volumes/ua/_data/owned")" \
		"on the host, the container's range"
}

test_volume_help() {
	local c
	for c in create ls inspect rm prune; do
		run_cella volume "$c" --help
		assert_ok "volume $c --help"
		assert_contains "$OUT" "Usage: cella volume $c" "volume $c --help"
	done
	run_cella volume
	assert_rc 125
	assert_contains "$OUT" "Usage: cella volume COMMAND"
	run_cella volume frob
	assert_cella_error 125 "volume frob: unknown command"
}
