# passes: root user
# passes-why: the registry client and unpacking are the same code as in the root and cellatest passes (CI time)
# Images: pull from a real registry (Debian's docker-registry on 127.0.0.1, images pushed by
# skopeo), token and basic auth, digests, import of every format, save/export, tag/rm/prune.
# shellcheck disable=SC2154

img_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	export XDG_CONFIG_HOME="$TEST_TMP/config"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
}

# The store must hold no half-written object: no .tmp leftovers in blobs/ or layers/.
assert_store_clean() {
	local left
	left=$(find "$CELLA_ROOT/blobs" "$CELLA_ROOT/layers" -maxdepth 2 -name '.tmp-*' 2>/dev/null)
	[ -z "$left" ] || fail "temp files left in the store: $left"
}

test_pull_and_run_gzip_image() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	local digest=$REG_DIGEST
	run_cella pull "$REG_HOST/test/bb:v1"
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "pull prints the image id"
	assert_contains "$ERR" "$digest" "pull reports the manifest digest"
	run_cella images
	assert_ok
	assert_match "$OUT" "$REG_HOST/test/bb +v1 +[0-9a-f]{12} " "images lists it"
	run_cella image inspect -f '{{.RepoDigests}}' "$REG_HOST/test/bb:v1"
	assert_contains "$OUT" "$REG_HOST/test/bb@$digest" "inspect has the repo digest"
	run_cella run --rm "$REG_HOST/test/bb:v1"
	assert_ok
	assert_eq "hello from test/bb" "$OUT" "the image's Cmd runs"
	run_cella run "$REG_HOST/test/bb:v1" sh -c 'echo $FOO $PATH; pwd'
	assert_ok
	assert_eq "bar /bin
/tmp" "$OUT" "Env and WorkingDir from the image config"
	run_cella image inspect -f '{{.Config.Labels}} {{.Config.ExposedPorts}}' "$REG_HOST/test/bb:v1"
	assert_eq '{"org.test":"yes"} {"80/tcp":{}}' "$OUT" "labels and ports from the config"
	assert_store_clean
}

test_pull_zstd_layer() {
	img_env
	registry_start plain
	registry_push_busybox test/z v1 zstd >/dev/null
	run_cella pull -q "$REG_HOST/test/z:v1"
	assert_ok
	run_cella run "$REG_HOST/test/z:v1" cat /etc/passwd
	assert_ok
	assert_contains "$OUT" "root:x:0:0" "files of a zstd layer"
	run_cella image inspect -f '{{.Store.Layers}}' "$REG_HOST/test/z:v1"
	assert_contains "$OUT" "tar+zstd" "the layer's media type is kept"
}

test_pull_multi_layer_whiteouts() {
	img_env
	registry_start plain
	registry_push_busybox test/multi v1 multi >/dev/null
	run_cella pull -q "$REG_HOST/test/multi:v1"
	assert_ok
	run_cella run "$REG_HOST/test/multi:v1" sh -c 'cat /etc/motd /etc/layer3 >/dev/null && echo files; ls /etc/removeme 2>&1 || echo gone; ls /opq'
	assert_ok
	assert_eq "files
ls: /etc/removeme: No such file or directory
gone
c" "$OUT" "layers merged: whiteout removes, opaque dir hides the lower ones"
	run_cella image inspect -f '{{.Store.Layers}}' "$REG_HOST/test/multi:v1"
	assert_eq 3 "$(printf '%s' "$OUT" | grep -o '"Digest"' | wc -l)" "three layers"
	# a second container of the same image: the layers are shared, not copied
	local before after
	before=$(du -sk "$CELLA_ROOT/layers" | cut -f1)
	for i in 1 2 3 4 5 6 7 8 9 10; do
		run_cella create "$REG_HOST/test/multi:v1" true
		assert_ok
	done
	after=$(du -sk "$CELLA_ROOT/containers" | cut -f1)
	[ "$after" -lt $((before / 4 + 200)) ] || fail "10 containers use ${after} kB next to ${before} kB of layers"
}

test_pull_manifest_list_picks_platform() {
	img_env
	registry_start plain
	registry_push_busybox test/multiarch v1 index >/dev/null
	local index_digest=$REG_DIGEST
	run_cella pull "$REG_HOST/test/multiarch:v1"
	assert_ok
	local arch
	case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) skip "no test image for $(uname -m)" ;; esac
	run_cella image inspect -f '{{.Architecture}}' "$REG_HOST/test/multiarch:v1"
	assert_eq "$arch" "$OUT" "this machine's image was chosen"
	run_cella run "$REG_HOST/test/multiarch:v1" echo runs
	assert_eq runs "$OUT"
	run_cella image inspect -f '{{.RepoDigests}}' "$REG_HOST/test/multiarch:v1"
	assert_contains "$OUT" "$index_digest" "the repo digest is the index's"
	local other=arm64
	[ "$arch" = arm64 ] && other=amd64
	run_cella pull --platform "linux/$other" "$REG_HOST/test/multiarch:v1"
	assert_ok
	run_cella image inspect -f '{{.Architecture}}' "$REG_HOST/test/multiarch:v1"
	assert_eq "$other" "$OUT" "--platform picks the other image"
	run_cella pull --platform linux/s390x "$REG_HOST/test/multiarch:v1"
	assert_cella_error 125 "linux/s390x"
	assert_contains "$ERR" "--platform" "the error says how to choose"
}

test_pull_by_digest_and_errors() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	local digest=$REG_DIGEST
	run_cella pull -q "$REG_HOST/test/bb@$digest"
	assert_ok
	run_cella run "$REG_HOST/test/bb@$digest" echo by-digest
	assert_eq by-digest "$OUT"
	run_cella pull "$REG_HOST/test/bb@sha256:$(printf '%064d' 0)"
	assert_cella_error 125 "not found"
	run_cella pull "$REG_HOST/test/nosuch:v1"
	assert_cella_error 125 "test/nosuch"
	run_cella pull "$REG_HOST/Test/BAD:v1"
	assert_cella_error 125 "not a valid repository name"
	run_cella pull "127.0.0.1:1/test/bb:v1"
	assert_cella_error 125 "127.0.0.1:1"
	run_cella run --pull never "$REG_HOST/test/notpulled:v1" true
	assert_cella_error 125 "not found locally"
}

test_pull_short_name_default_registry() {
	img_env
	registry_start plain
	registry_push_busybox tiny latest gzip >/dev/null
	CELLA_DEFAULT_REGISTRY=$REG_HOST run_cella pull -q tiny
	assert_ok
	# run pulls what is missing by itself (--pull missing)
	registry_push_busybox other/app v2 gzip >/dev/null
	CELLA_DEFAULT_REGISTRY=$REG_HOST run_cella run other/app:v2 echo auto
	assert_ok
	assert_eq auto "$OUT" "run pulled the image"
	assert_contains "$ERR" "Unable to find image" "and said so"
	CELLA_DEFAULT_REGISTRY=$REG_HOST run_cella images --format json
	assert_contains "$OUT" "$REG_HOST/tiny:latest" "stored under the full name"
}

test_pull_token_auth() {
	img_env
	registry_start token alice s3cret
	registry_push_busybox priv/app v1 gzip >/dev/null
	run_cella pull "$REG_HOST/priv/app:v1"
	assert_cella_error 125 "login"
	run_cella login -u alice -p wrong "$REG_HOST"
	assert_cella_error 125 "unauthorized"
	run_cmd sh -c "echo s3cret | '$CELLA' login -u alice --password-stdin '$REG_HOST'"
	assert_ok
	local f=$XDG_CONFIG_HOME/cella/auth.json
	[ -f "$f" ] || fail "no $f"
	assert_eq 600 "$(stat -c %a "$f")" "auth.json is private"
	run_cella pull -q "$REG_HOST/priv/app:v1"
	assert_ok
	run_cella run "$REG_HOST/priv/app:v1" echo private
	assert_eq private "$OUT"
	run_cella logout "$REG_HOST"
	assert_ok
	run_cella image rm "$REG_HOST/priv/app:v1"
	assert_ok
	run_cella pull "$REG_HOST/priv/app:v1"
	assert_cella_error 125 "login"
}

test_pull_basic_auth() {
	img_env
	registry_start htpasswd bob pw123
	registry_push_busybox priv/b v1 gzip >/dev/null
	run_cella pull "$REG_HOST/priv/b:v1"
	assert_cella_error 125 "login"
	run_cella pull -q --creds bob:pw123 "$REG_HOST/priv/b:v1"
	assert_ok
	run_cella run "$REG_HOST/priv/b:v1" echo basic
	assert_eq basic "$OUT"
}

test_pull_tampered_blob_refused() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	# flip a byte of the layer blob inside the registry's storage
	local layer data
	layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG_HOST/test/bb:v1" | jq -r '.layers[0].digest')
	data=$(find "$REG_DIR" -path "*blobs/sha256/*/${layer#sha256:}/data" | head -1)
	[ -f "$data" ] || fail "no blob file for $layer under $REG_DIR"
	printf 'X' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
	run_cella pull "$REG_HOST/test/bb:v1"
	assert_cella_error 125 "digest mismatch"
	[ ! -e "$CELLA_ROOT/blobs/sha256/${layer#sha256:}" ] || fail "the tampered blob was stored"
	run_cella images -q
	assert_eq "" "$OUT" "no image was recorded"
	assert_store_clean
}

test_pull_killed_then_again() {
	img_env
	registry_start plain
	registry_push_busybox test/multi v1 multi >/dev/null
	local ms pid
	for ms in 5 20 40 80 150; do
		"$CELLA" pull -q "$REG_HOST/test/multi:v1" >/dev/null 2>&1 &
		pid=$!
		sleep "0.$(printf '%03d' "$ms")"
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		# what the store holds is whole or absent: any named layer dir is complete
		run_cella images -q
		assert_ok
		if [ -n "$OUT" ]; then
			run_cella run --rm --pull never "$REG_HOST/test/multi:v1" cat /etc/motd
			assert_ok
		fi
		run_cella image rm -f "$REG_HOST/test/multi:v1" >/dev/null 2>&1
	done
	run_cella pull -q "$REG_HOST/test/multi:v1"
	assert_ok
	assert_store_clean
	run_cella run "$REG_HOST/test/multi:v1" cat /etc/layer3
	assert_ok
}

test_import_rootfs_dir_and_tarballs() {
	img_env
	make_rootfs "$TEST_TMP/rootfs"
	echo imported >"$TEST_TMP/rootfs/etc/motd"
	run_cella image import "$TEST_TMP/rootfs" local/dir:v1
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "import prints the id"
	run_cella run local/dir:v1 cat /etc/motd
	assert_eq imported "$OUT"
	tar -C "$TEST_TMP/rootfs" -czf "$TEST_TMP/r.tar.gz" .
	run_cella image import "$TEST_TMP/r.tar.gz" local/tgz
	assert_ok
	run_cella run local/tgz cat /etc/motd
	assert_eq imported "$OUT"
	# one history entry for the one layer (buildah refuses to build on an image whose history
	# does not match its layers)
	run_cella image history --format json local/tgz
	assert_ok
	assert_eq "1 imported from a tarball" "$(jq -r 'length, .[0].Comment' <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')" "history of an imported image"
	tar -C "$TEST_TMP/rootfs" -cf - . | zstd -q -o "$TEST_TMP/r.tar.zst"
	run_cella import "$TEST_TMP/r.tar.zst" local/zst
	assert_ok
	run_cella run local/zst cat /etc/motd
	assert_eq imported "$OUT"
	tar -C "$TEST_TMP/rootfs" -cJf "$TEST_TMP/r.tar.xz" .
	run_cella import "$TEST_TMP/r.tar.xz" local/xz
	assert_cella_error 125 "gzip or zstd"
	run_cella import "$TEST_TMP/nosuch.tar" x
	assert_cella_error 125 "nosuch.tar"
}

test_import_oci_and_docker_archives() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 multi >/dev/null
	registry_push_busybox test/gz v1 gzip >/dev/null
	skopeo copy -q --src-tls-verify=false "docker://$REG_HOST/test/bb:v1" "oci:$TEST_TMP/layout:v1" || fail "skopeo to oci"
	skopeo copy -q --src-tls-verify=false "docker://$REG_HOST/test/bb:v1" "oci-archive:$TEST_TMP/oci.tar:v1" || fail "skopeo to oci-archive"
	skopeo copy -q --src-tls-verify=false "docker://$REG_HOST/test/gz:v1" "docker-archive:$TEST_TMP/docker.tar:example.com/saved/bb:v9" ||
		fail "skopeo to docker-archive"
	run_cella image import "$TEST_TMP/layout" local/layout:v1
	assert_ok
	run_cella run local/layout:v1 cat /etc/layer3
	assert_ok
	run_cella image import "$TEST_TMP/oci.tar" local/ociarch:v1
	assert_ok
	run_cella run local/ociarch:v1
	assert_eq "hello from test/bb" "$OUT" "the config came along"
	run_cella image import "$TEST_TMP/docker.tar"
	assert_ok
	run_cella run example.com/saved/bb:v9 sh -c 'cat /etc/passwd; echo $FOO'
	assert_contains "$OUT" "root:x:0:0" "docker-archive: the layer"
	assert_contains "$OUT" "bar" "docker-archive: the config"
}

test_save_and_export_round_trip() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	run_cella pull -q "$REG_HOST/test/bb:v1"
	local id=$OUT
	run_cella save -o "$TEST_TMP/saved.tar" "$REG_HOST/test/bb:v1"
	assert_ok
	skopeo inspect "oci-archive:$TEST_TMP/saved.tar" >/dev/null 2>&1 || fail "skopeo cannot read the saved archive"
	run_cella image rm "$REG_HOST/test/bb:v1"
	assert_ok
	run_cella image import "$TEST_TMP/saved.tar"
	assert_ok
	assert_eq "$id" "$OUT" "the same image id after save and import"
	run_cella run "$REG_HOST/test/bb:v1" echo back
	assert_eq back "$OUT" "the saved name came back"
	run_cella run --name c1 "$REG_HOST/test/bb:v1" sh -c 'echo changed >/etc/motd; rm /bin/ls'
	assert_ok
	run_cella export -o "$TEST_TMP/c1.tar" c1
	assert_ok
	run_cella image import "$TEST_TMP/c1.tar" local/c1:snap
	assert_ok
	run_cella run local/c1:snap sh -c 'cat /etc/motd; test -e /bin/ls || echo no-ls'
	assert_eq "changed
no-ls" "$OUT" "the container's changes, deletions included"
	run_cella save "$REG_HOST/test/bb:v1" /dev/null
	assert_cella_error 125 "/dev/null"
}

test_tag_rm_prune() {
	img_env
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/a:v1
	assert_ok
	local id=$OUT
	run_cella tag local/a:v1 local/b:v2
	assert_ok
	run_cella image inspect -f '{{.Id}}' local/b:v2
	assert_eq "$id" "$OUT" "the tag names the same image"
	run_cella image rm "$id"
	assert_cella_error 125 "2 names"
	run_cella image rm local/a:v1
	assert_ok
	assert_eq "Untagged: local/a:v1" "$OUT" "only the name went"
	run_cella create --name user1 local/b:v2 true
	assert_ok
	run_cella image rm local/b:v2
	assert_cella_error 125 "used by a container"
	run_cella rm user1
	assert_ok
	run_cella image rm local/b:v2
	assert_ok
	assert_contains "$OUT" "Deleted: $id" "its last name removes the image"
	run_cella image prune
	assert_ok
	[ -z "$(ls "$CELLA_ROOT/layers")" ] || fail "layers left after prune: $(ls "$CELLA_ROOT/layers")"
	[ -z "$(ls "$CELLA_ROOT/blobs/sha256")" ] || fail "blobs left after prune"
	run_cella image rm local/nosuch
	assert_cella_error 125 "local/nosuch"
}

test_image_config_feeds_the_plan() {
	img_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	run_cella pull -q "$REG_HOST/test/bb:v1"
	run_cella run --entrypoint /bin/echo "$REG_HOST/test/bb:v1" a b
	assert_eq "a b" "$OUT" "--entrypoint with arguments"
	run_cella run -w / -e FOO=override "$REG_HOST/test/bb:v1" sh -c 'pwd; echo $FOO'
	assert_eq "/
override" "$OUT" "-w and -e win over the image"
	run_cella run -d --name web "$REG_HOST/test/bb:v1" sleep 30
	assert_ok
	run_cella inspect -f '{{.Image}}' web
	assert_contains "$OUT" "test/bb" "inspect names the image"
	run_cella rm -f web
}

test_image_user_from_its_passwd() {
	img_env
	require_id_range
	make_rootfs "$TEST_TMP/rootfs"
	echo 'svc:x:4321:4321::/home/svc:/bin/sh' >>"$TEST_TMP/rootfs/etc/passwd"
	echo 'svc:x:4321:' >>"$TEST_TMP/rootfs/etc/group"
	run_cella image import "$TEST_TMP/rootfs" local/users
	assert_ok
	run_cella run -u svc local/users sh -c 'id -u; echo $HOME'
	assert_eq "4321
/home/svc" "$OUT" "-u resolved in the image's /etc/passwd"
}

test_layer_owners_kept_and_pruned() {
	img_env
	require_id_range
	require_cmd python3
	make_rootfs "$TEST_TMP/rootfs"
	tar -C "$TEST_TMP/rootfs" -cf "$TEST_TMP/base.tar" --owner=0 --group=0 .
	python3 - "$TEST_TMP/base.tar" <<'EOF2'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "a") as t:
    d = tarfile.TarInfo("srv"); d.type = tarfile.DIRTYPE; d.uid = d.gid = 33; d.mode = 0o750; t.addfile(d)
    f = tarfile.TarInfo("srv/data"); f.size = 3; f.uid = 33; f.gid = 34; f.mode = 0o640; t.addfile(f, io.BytesIO(b"abc"))
EOF2
	run_cella image import "$TEST_TMP/base.tar" local/owners
	assert_ok
	run_cella run local/owners stat -c '%u:%g %a' /srv /srv/data
	assert_eq "33:33 750
33:34 640" "$OUT" "owners and modes from the layer"
	run_cella image rm local/owners
	assert_ok
	run_cella image prune
	assert_ok
	[ -z "$(ls "$CELLA_ROOT/layers")" ] || fail "layers left after prune: $(ls "$CELLA_ROOT/layers")"
}

test_malicious_tarball_refused() {
	img_env
	require_cmd python3
	local out=$TEST_TMP/outside
	mkdir -p "$out"
	python3 - "$TEST_TMP" <<'EOF'
import io, sys, tarfile
d = sys.argv[1]
def mk(name, entries):
    with tarfile.open(f"{d}/{name}", "w") as t:
        for kind, n, arg in entries:
            ti = tarfile.TarInfo(n)
            if kind == "file":
                ti.size = len(arg); t.addfile(ti, io.BytesIO(arg))
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE; ti.linkname = arg; t.addfile(ti)
            elif kind == "hard":
                ti.type = tarfile.LNKTYPE; ti.linkname = arg; t.addfile(ti)
mk("dotdot.tar", [("file", "../outside/evil", b"x")])
mk("symlink.tar", [("sym", "link", d + "/outside"), ("file", "link/evil", b"x")])
mk("hardlink.tar", [("hard", "pw", "../../../../../etc/passwd")])
mk("longname.tar", [("file", "a" * 300, b"x")])
EOF
	local why
	for t in dotdot symlink hardlink longname; do
		case $t in
		dotdot) why="layer entry \`../outside/evil\`: path leaves the layer" ;;
		symlink) why="layer entry \`link/evil\`: \`link\` is a symlink, which is not followed" ;;
		hardlink) why="layer entry \`pw\`: hard link target \`../../../../../etc/passwd\` leaves the layer" ;;
		longname) why="path: name too long (a component of 300 bytes, at most 255)" ;;
		esac
		run_cella image import "$TEST_TMP/$t.tar" "local/$t"
		assert_cella_error 125 "$why"
		[ -z "$(ls -A "$out")" ] || fail "$t.tar wrote outside the store: $(ls -A "$out")"
	done
	run_cella images -q
	assert_eq "" "$OUT" "no image from a bad tarball"
}

# Two images made from rootfs directories: local/a (/etc/motd "image A") and local/b ("image B").
import_a_and_b() {
	make_rootfs "$TEST_TMP/ra"
	echo "image A" >"$TEST_TMP/ra/etc/motd"
	run_cella image import "$TEST_TMP/ra" local/a
	assert_ok
	A_ID=$OUT
	make_rootfs "$TEST_TMP/rb"
	echo "image B" >"$TEST_TMP/rb/etc/motd"
	run_cella image import "$TEST_TMP/rb" local/b
	assert_ok
	run_cella image inspect -f '{{.Store.Manifest}}' local/a
	A_MAN=$OUT
	run_cella image inspect -f '{{.Store.Manifest}}' local/b
	B_MAN=$OUT
}

# An archive that reuses a stored image's config with other layers must not change what that
# image runs: layers are checked against the config's rootfs.diff_ids, and records are keyed by
# manifest digest and never rewritten.
test_import_reusing_a_config_cannot_replace_an_image() {
	img_env
	require_cmd python3
	import_a_and_b
	run_cella save -o "$TEST_TMP/a.tar" local/a
	assert_ok
	python3 - "$TEST_TMP" <<'EOF'
import io, json, sys, tarfile
d = sys.argv[1]
src = tarfile.open(f"{d}/a.tar")
blob = lambda dg: src.extractfile("blobs/sha256/" + dg[7:]).read()
man = json.loads(blob(json.loads(src.extractfile("index.json").read())["manifests"][0]["digest"]))
cfg, base = blob(man["config"]["digest"]), blob(man["layers"][0]["digest"])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    ti = tarfile.TarInfo("etc/motd"); ti.size = 5; t.addfile(ti, io.BytesIO(b"evil\n"))
evil = buf.getvalue()
def docker_archive(name, layers):
    with tarfile.open(f"{d}/{name}", "w") as t:
        def add(n, data):
            ti = tarfile.TarInfo(n); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        add("config.json", cfg)
        for i, l in enumerate(layers):
            add(f"l{i}/layer.tar", l)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["local/evil:latest"],
                                          "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]).encode())
docker_archive("extra.tar", [base, evil])  # A's config and layer, and one more layer
docker_archive("swapped.tar", [evil])      # A's config, another layer in place of A's
EOF
	local t
	for t in extra swapped; do
		run_cella image import "$TEST_TMP/$t.tar"
		local rc=$RC err=$ERR
		run_cella run --rm --pull never local/a cat /etc/motd
		assert_eq "image A" "$OUT" "after importing $t.tar, local/a runs its own layers"
		RC=$rc ERR=$err
		assert_cella_error 125 "rootfs.diff_ids"
	done
	run_cella image inspect -f '{{.Id}} {{.Store.Manifest}}' local/a
	assert_eq "$A_ID $A_MAN" "$OUT" "local/a is the same image"
	run_cella image inspect local/evil
	assert_cella_error 125 "local/evil"
	assert_store_clean
}

# Every byte used is the stored, verified one: an archive whose manifest file is not the bytes of
# the digest it is filed under is refused, even when that digest is in the store already.
test_import_manifest_bytes_must_match_their_digest() {
	img_env
	require_cmd python3
	import_a_and_b
	run_cella save -o "$TEST_TMP/a.tar" local/a
	assert_ok
	mkdir "$TEST_TMP/layout"
	tar -C "$TEST_TMP/layout" -xf "$TEST_TMP/a.tar"
	python3 - "$TEST_TMP/layout" <<'EOF'
import hashlib, io, json, sys, tarfile
d = sys.argv[1]
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return "sha256:" + h, len(data)
index = json.load(open(f"{d}/index.json"))
mdig = index["manifests"][0]["digest"]
man = json.load(open(f"{d}/blobs/sha256/{mdig[7:]}"))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    ti = tarfile.TarInfo("etc/motd"); ti.size = 5; t.addfile(ti, io.BytesIO(b"evil\n"))
ld, ls = put(buf.getvalue())
cfg = json.load(open(f"{d}/blobs/sha256/{man['config']['digest'][7:]}"))
cfg["rootfs"]["diff_ids"].append(ld)
cd, cs = put(json.dumps(cfg).encode())
man["config"].update(digest=cd, size=cs)
man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls})
# filed under A's manifest digest, which the store holds already
open(f"{d}/blobs/sha256/{mdig[7:]}", "w").write(json.dumps(man))
EOF
	run_cella image import "$TEST_TMP/layout" local/crafted
	local rc=$RC err=$ERR
	run_cella run --rm --pull never "local/a@$A_MAN" cat /etc/motd
	assert_eq "image A" "$OUT" "local/a@ITS-MANIFEST-DIGEST runs A"
	RC=$rc ERR=$err
	assert_cella_error 125 "digest mismatch"
	run_cella image inspect local/crafted
	assert_cella_error 125 "local/crafted"
	assert_store_clean
}

# NAME@DIGEST is an image of repository NAME with that digest (docker's reference store, current
# containers/common; podman 4.3 took any image with the digest): another repository's image with
# the digest is not used, and a tag next to the digest does not override it.
test_digest_reference_stays_in_its_repository() {
	img_env
	import_a_and_b
	run_cella run --rm --pull never "local/a@$A_MAN" cat /etc/motd
	assert_ok
	assert_eq "image A" "$OUT" "NAME@DIGEST of the image"
	run_cella run --rm --pull never "local/b@$A_MAN" cat /etc/motd
	assert_cella_error 125 "not found locally"
	assert_not_contains "$OUT" "image A" "local/b@A's digest does not run A"
	run_cella run --rm --pull never "local/a:latest@$B_MAN" cat /etc/motd
	assert_cella_error 125 "not found locally"
	assert_not_contains "$OUT" "image" "NAME:TAG@DIGEST needs the digest to match"
	run_cella run --rm --pull never "local/b:latest@$B_MAN" cat /etc/motd
	assert_eq "image B" "$OUT" "NAME:TAG@DIGEST with its own digest"
	# the digest reference outlives the tag that moved away (docker keeps repo@digest)
	run_cella tag local/b local/a
	assert_ok
	run_cella run --rm --pull never "local/a@$A_MAN" cat /etc/motd
	assert_eq "image A" "$OUT" "local/a@A's digest after local/a moved to B"
}

# A layer that expands beyond the limits is refused with the layer and the limit named, and leaves
# no layer directory, no record, no name.
test_import_gzip_bomb_refused_by_the_limits() {
	img_env
	require_cmd python3
	python3 - "$TEST_TMP" <<'EOF'
import io, sys, tarfile
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
d = sys.argv[1]
with tarfile.open(f"{d}/bomb.tar.gz", "w:gz", compresslevel=1) as t:
    ti = tarfile.TarInfo("big"); ti.size = 64 << 20; t.addfile(ti, Zeros(ti.size))
with tarfile.open(f"{d}/many.tar", "w") as t:
    for i in range(10):
        ti = tarfile.TarInfo(f"f{i}"); t.addfile(ti, io.BytesIO())
EOF
	local blob
	blob=sha256:$(sha256sum "$TEST_TMP/bomb.tar.gz" | cut -d' ' -f1)
	[ "$(stat -c %s "$TEST_TMP/bomb.tar.gz")" -lt $((1 << 20)) ] || fail "the bomb is not small"
	CELLA_MAX_LAYER_SIZE=8M run_cella image import "$TEST_TMP/bomb.tar.gz" local/bomb
	assert_cella_error 125 "$blob"
	assert_contains "$ERR" "8 MiB" "the limit is named"
	assert_contains "$ERR" "CELLA_MAX_LAYER_SIZE" "and how to raise it"
	run_cella image import --max-layer-size 16M "$TEST_TMP/bomb.tar.gz" local/bomb
	assert_cella_error 125 "16 MiB"
	assert_contains "$ERR" "--max-layer-size" "the option is named"
	run_cella image import --max-image-size 20M "$TEST_TMP/bomb.tar.gz" local/bomb
	assert_cella_error 125 "--max-image-size"
	run_cella image import --max-layer-entries 4 "$TEST_TMP/many.tar" local/many
	assert_cella_error 125 "--max-layer-entries"
	run_cella image import --max-layer-size 1x "$TEST_TMP/bomb.tar.gz" local/bomb
	assert_cella_error 125 "--max-layer-size"
	[ -z "$(ls -A "$CELLA_ROOT/layers")" ] || fail "layer dirs left: $(ls -A "$CELLA_ROOT/layers")"
	run_cella images -a -q
	assert_eq "" "$OUT" "no image recorded"
	assert_store_clean
	# the defaults are generous: the same archive imports, whole
	run_cella image import "$TEST_TMP/bomb.tar.gz" local/bomb
	assert_ok
	[ "$(stat -c %s "$CELLA_ROOT/layers/${blob#sha256:}/big")" = $((64 << 20)) ] || fail "the layer is not whole"
}

test_pull_limits_and_diff_ids() {
	img_env
	registry_start plain
	registry_push_busybox test/bomb v1 bomb >/dev/null
	registry_push_busybox test/baddiff v1 baddiff >/dev/null
	run_cella pull "$REG_HOST/test/baddiff:v1"
	assert_cella_error 125 "rootfs.diff_ids"
	run_cella images -a -q
	assert_eq "" "$OUT" "no image recorded"
	[ -z "$(ls -A "$CELLA_ROOT/layers")" ] || fail "a layer that failed its diff_id was named: $(ls -A "$CELLA_ROOT/layers")"
	local big
	big=$(skopeo inspect --raw --tls-verify=false "docker://$REG_HOST/test/bomb:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][1]["digest"])')
	run_cella pull --max-layer-size 16M "$REG_HOST/test/bomb:v1"
	assert_cella_error 125 "$big"
	assert_contains "$ERR" "limit per layer" "the layer limit is named"
	run_cella pull --max-image-size 40M "$REG_HOST/test/bomb:v1"
	assert_cella_error 125 "--max-image-size"
	[ ! -e "$CELLA_ROOT/layers/${big#sha256:}" ] || fail "the bomb's layer dir was kept"
	run_cella images -a -q
	assert_eq "" "$OUT" "no image recorded"
	assert_store_clean
}

test_image_build_maps_names() {
	img_env
	run_cella image build --from ubuntu --dry-run
	assert_ok
	assert_contains "$OUT" "debootstrap --variant=minbase noble ROOTFS http://archive.ubuntu.com/ubuntu" "ubuntu → noble"
	assert_contains "$OUT" "image name: localhost/ubuntu:noble" "default name"
	run_cella image build --from debian:trixie -t my/deb:13 --dry-run
	assert_ok
	assert_contains "$OUT" "minbase trixie ROOTFS http://deb.debian.org/debian" "a codename"
	run_cella image build --from bookworm --dry-run
	assert_contains "$OUT" "bookworm" "a bare suite name"
	run_cella image build --from debian:nosuch
	assert_cella_error 125 "unknown debian suite"
	run_cella image build
	assert_cella_error 125 "a CONTEXT directory is required" # (without --from: a Containerfile build)
	if ! is_root && [ -x /usr/sbin/debootstrap ]; then
		run_cella image build --from debian
		assert_cella_error 125 "needs root"
	fi
}

# A data root where the kernel refuses an overlay upper dir (here: on an overlayfs itself, made in a
# mount namespace of the test's own): engine containers get a copy of their image instead.
test_engine_copy_when_overlay_upper_refused() {
	img_env
	local wrap="unshare -rm"
	if is_root && grep -qE '^ +0 +0 +4294967295' /proc/self/uid_map; then wrap="unshare -m"; fi
	$wrap true 2>/dev/null || skip "cannot make a mount namespace here"
	make_rootfs "$TEST_TMP/rootfs"
	echo image >"$TEST_TMP/rootfs/etc/motd"
	mkdir -p "$TEST_TMP/ovl/l" "$TEST_TMP/ovl/u" "$TEST_TMP/ovl/w" "$TEST_TMP/ovl/m"
	run_cmd $wrap bash -c '
		set -e
		mount -t overlay overlay -o "lowerdir=$1/l,upperdir=$1/u,workdir=$1/w" "$1/m"
		export CELLA_ROOT=$1/m/data
		"$2" image import "$3" local/cp >/dev/null
		"$2" create --name c local/cp sh -c "echo changed >/etc/motd; cat /etc/motd"
		"$2" start -a c
		"$2" inspect -f "{{.RootCopy}} {{.UpperDir}}" c
		"$2" start -a c
		"$2" rm c
		"$2" run --rm local/cp cat /etc/motd
		ls "$1/m/data/containers"
	' _ "$TEST_TMP/ovl" "$CELLA" "$TEST_TMP/rootfs"
	assert_ok
	assert_contains "$ERR" "no overlay on" "create says why it copies"
	assert_match "$OUT" "^[0-9a-f]{64}
changed
(reflink|copy_file_range|read/write) null
changed
c?
?image$" "the container runs on a copy; its changes stay with it; the image is untouched"
}

# images / image ls / image list and their options; rmi; image prune -a -f.
test_image_listing_options_rmi_prune_all() {
	img_env
	make_rootfs "$TEST_TMP/rootfs"
	run_cella image import "$TEST_TMP/rootfs" local/a:v1
	assert_ok
	local old=$OUT new
	echo changed >"$TEST_TMP/rootfs/etc/changed"
	run_cella image import "$TEST_TMP/rootfs" local/a:v1 # the name moves: the first image has none now
	assert_ok
	new=$OUT
	run_cella images
	assert_ok
	assert_match "$OUT" "^local/a +v1 +${new:7:12} " "images"
	assert_not_contains "$OUT" "${old:7:12}" "an image without a name, without -a"
	run_cella images -a
	assert_match "$OUT" "^<none> +<none> +${old:7:12} " "images -a lists the image without a name"
	run_cella image ls --all
	assert_match "$OUT" "^<none> +<none> +${old:7:12} " "image ls --all"
	run_cella image list -a -q
	assert_eq "$(printf '%s\n' "${old:7:12}" "${new:7:12}" | sort)" "$(printf '%s\n' "$OUT" | sort)" "image list -a -q"
	run_cella images --no-trunc
	assert_match "$OUT" "^local/a +v1 +$new " "--no-trunc: the whole id"
	run_cella images --digests
	assert_match "$OUT" "^local/a +v1 +sha256:[0-9a-f]{64} +${new:7:12} " "--digests: the manifest digest"
	assert_match "$OUT" "DIGEST" "--digests: its column"
	# prune removes the image without a name; prune -a also the named one no container uses
	run_cella create --name user local/a:v1 true
	assert_ok
	run_cella image prune
	assert_ok
	assert_contains "$OUT" "Deleted: $old"
	run_cella image prune -a -f
	assert_ok
	run_cella images -q
	assert_eq "${new:7:12}" "$OUT" "prune -a keeps an image a container uses"
	run_cella rm user
	assert_ok
	run_cella image prune --all --force
	assert_ok
	assert_contains "$OUT" "Untagged: local/a:v1"
	assert_contains "$OUT" "Deleted: $new"
	run_cella images -a -q
	assert_eq "" "$OUT" "nothing left after prune -a"
	run_cella image import "$TEST_TMP/rootfs" local/b:v1
	assert_ok
	run_cella rmi local/b:v1
	assert_ok
	assert_contains "$OUT" "Untagged: local/b:v1"
	run_cella images -a -q
	assert_eq "" "$OUT" "rmi removed it"
	run_cella rmi local/b:v1
	assert_cella_error 125 "image \`local/b:v1\`: not found"
}

# --entrypoint "" clears the image's Entrypoint: the command runs as given.
test_entrypoint_empty_clears_the_images() {
	img_env
	registry_start plain
	REG_ENTRYPOINT='["/bin/echo","from-entrypoint"]' registry_push_busybox test/ep v1 gzip >/dev/null
	run_cella pull -q "$REG_HOST/test/ep:v1"
	assert_ok
	run_cella run "$REG_HOST/test/ep:v1" sh -c 'echo direct'
	assert_ok
	assert_eq "from-entrypoint sh -c echo direct" "$OUT" "the image's Entrypoint runs with the command as its arguments"
	run_cella run --entrypoint "" "$REG_HOST/test/ep:v1" sh -c 'echo direct'
	assert_ok
	assert_eq "direct" "$OUT" "--entrypoint \"\": the command alone"
	run_cella run --entrypoint= "$REG_HOST/test/ep:v1" echo plain
	assert_eq "plain" "$OUT" "--entrypoint="
}

# --pull always fetches the tag again; missing (the default) uses what the store has; never
# does not pull.
test_pull_always_fetches_the_tag_again() {
	img_env
	registry_start plain
	registry_push_busybox test/pa v1 gzip >/dev/null
	run_cella run --pull always "$REG_HOST/test/pa:v1" cat /etc/motd
	assert_rc 1 "the first image has no /etc/motd"
	assert_contains "$ERR" "Pulling"
	# the tag now names another image (three layers, one of them with /etc/motd)
	registry_push_busybox test/pa v1 multi >/dev/null
	run_cella run "$REG_HOST/test/pa:v1" cat /etc/motd
	assert_rc 1 "--pull missing: the stored image"
	assert_not_contains "$ERR" "Pulling" "no pull when the store has the tag"
	run_cella run --pull never "$REG_HOST/test/pa:v1" cat /etc/motd
	assert_rc 1 "--pull never: the stored image"
	run_cella run --pull always "$REG_HOST/test/pa:v1" cat /etc/motd
	assert_ok
	assert_eq "welcome to the cella test image" "$OUT" "--pull always: the tag's new image"
	run_cella run --pull always "$REG_HOST/test/nosuch:v1" true
	assert_cella_error 125 "test/nosuch:v1"
}

# A registry over TLS with a certificate nobody signed, on 127.0.0.1: a local registry is docker's
# insecure one (https without a certificate check, then http), unless --tls-verify=true, which
# refuses it; --tls-verify=false takes it (pull and login).
test_tls_verify() {
	img_env
	REG_TLS=1 registry_start htpasswd alice pw123
	registry_push_busybox test/tls v1 gzip >/dev/null
	run_cella login --tls-verify=true -u alice -p pw123 "$REG_HOST"
	assert_rc 125 "login to a registry whose certificate is not trusted, with --tls-verify=true"
	assert_contains "$ERR" "certificate"
	run_cella login --tls-verify=false -u alice -p pw123 "$REG_HOST"
	assert_ok
	run_cella pull -q --tls-verify=true "$REG_HOST/test/tls:v1"
	assert_rc 125
	assert_contains "$ERR" "certificate"
	run_cella pull -q --tls-verify=false "$REG_HOST/test/tls:v1"
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$'
	run_cella image rm "$REG_HOST/test/tls:v1"
	assert_ok
	run_cella pull -q "$REG_HOST/test/tls:v1"
	assert_ok "a local registry over TLS, without --tls-verify"
	run_cella pull --tls-verify maybe "$REG_HOST/test/tls:v1"
	assert_cella_error 125 "--tls-verify \`maybe\`"
	run_cella login --tls-verify maybe -u alice -p pw123 "$REG_HOST"
	assert_cella_error 125 "--tls-verify \`maybe\`"
}

# A layer 1,539 directories deep (layer entries are at most 4095 bytes long: a tar holds no
# deeper one): prune removes all of it, without a descriptor per level (it used to report
# success and leave the layer).
test_prune_removes_a_deep_layer() {
	img_env
	local p=d _
	for _ in 1 2 3 4 5 6 7 8 9; do p=$p/$p; done
	mkdir -p "$TEST_TMP/root/etc"
	(cd "$TEST_TMP/root" && mkdir -p "t/$p" && for _ in 1 2; do mkdir -p "c/$p" && mv t "c/$p/t" && mv c t || exit 1; done) ||
		fail "make a deep tree"
	tar -C "$TEST_TMP/root" -cf "$TEST_TMP/deep.tar" . || fail "tar the deep tree"
	run_cella import "$TEST_TMP/deep.tar" deep:1
	assert_ok
	[ -n "$(ls "$CELLA_ROOT/layers")" ] || fail "the import stored no layer"
	run_cella rmi deep:1
	assert_ok
	(ulimit -n 1024 && run_cella image prune && [ "$RC" = 0 ]) || fail "image prune failed: $ERR"
	[ -z "$(ls "$CELLA_ROOT/layers")" ] || fail "layers left after prune: $(ls -A "$CELLA_ROOT/layers")"
	assert_store_clean
}

# `cella save busybox`: the embedded image (no store image of that name) saved like a store image,
# read by skopeo and podman-compatible tools, imported back under busybox's name and run.
test_save_embedded_busybox() {
	img_env
	run_cella save -o "$TEST_TMP/bb.tar" busybox
	assert_ok
	require_cmd skopeo
	run_cmd skopeo inspect --format '{{.Digest}} {{.Os}}' "oci-archive:$TEST_TMP/bb.tar"
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64} linux$' "skopeo reads the archive"
	run_cmd tar -xOf "$TEST_TMP/bb.tar" index.json
	assert_ok
	assert_eq "docker.io/library/busybox:latest" "$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])')" "named busybox in the archive"
	export CELLA_ROOT="$TEST_TMP/data2"
	run_cella image import "$TEST_TMP/bb.tar"
	assert_ok
	run_cella images
	assert_contains "$OUT" "busybox" "imported under busybox's name"
	run_cella run --rm busybox sh -c 'echo saved-busybox'
	assert_ok
	assert_eq "saved-busybox" "$OUT" "the saved busybox runs (now a store image)"
	run_cella save -o "$TEST_TMP/x.tar" no-such-image-here
	assert_cella_error 125 "image \`no-such-image-here\`: not found"
	[ ! -e "$TEST_TMP/x.tar" ] || fail "a failed save leaves no archive"
}
