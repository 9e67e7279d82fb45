# shellcheck shell=bash disable=SC2016,SC2154
# passes: root user
# passes-why: the image tool packs as in the root and cellatest passes (CI time)
# A container's changes: `cella diff` (A/C/D like docker), `cella commit` (its upper dir as a new
# layer over its image, with --change and a history entry) and `cella image history`.
# Every test keeps its containers and images in its own data and run roots.
# A commit packs, compresses, stores and unpacks a layer: on a loaded 2-core machine one took 20 s.
# test-timeout: 150
# cmd-timeout: 60

commit_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	export XDG_CONFIG_HOME="$TEST_TMP/config"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG
}

# What every test's container does to the embedded busybox: adds a file and a tree, changes
# /etc/passwd, deletes /bin/ls and /mnt, and replaces /opt (an opaque directory in the upper dir).
CHANGES='echo new >/new; mkdir -p /dir/sub; echo f >/dir/sub/f; echo x >>/etc/passwd; rm /bin/ls; rm -rf /mnt; rm -rf /opt; mkdir /opt; echo o >/opt/o'
EXPECTED_DIFF='C /bin
D /bin/ls
A /dir
A /dir/sub
A /dir/sub/f
C /etc
C /etc/passwd
D /mnt
A /new
D /opt
A /opt/o'

test_diff_of_a_stopped_container() {
	commit_env
	run_cella run --name d1 busybox sh -c "$CHANGES"
	assert_ok
	run_cella diff d1
	assert_ok
	assert_eq "$EXPECTED_DIFF" "$OUT" "diff lists adds, changes and deletes, sorted"
	run_cella diff --format json d1
	assert_ok
	assert_eq "D /bin/ls" "$(printf '%s' "$OUT" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[1]["Kind"], a[1]["Path"])')" \
		"json: Kind and Path"
	assert_eq 11 "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "json: every change"
	# a container that changed nothing has nothing to list
	run_cella run --name d2 busybox true
	assert_ok
	run_cella diff d2
	assert_ok
	assert_eq "" "$OUT" "no changes, no lines"
}

test_diff_of_a_running_container() {
	commit_env
	run_cella run -d --name r1 busybox sh -c "$CHANGES; touch /ready; sleep 60"
	assert_ok
	local i
	for i in $(seq 100); do
		run_cella diff r1
		case $OUT in *"A /ready"*) break ;; esac
		sleep 0.1
	done
	assert_ok
	assert_eq "$EXPECTED_DIFF
A /ready" "$OUT" "diff of a running container"
	run_cella rm -f r1
	assert_ok
}

test_commit_then_run_the_image() {
	commit_env
	run_cella run --name c1 busybox sh -c "$CHANGES; mkdir /owned; chown 1000:1000 /owned 2>/dev/null || true"
	assert_ok
	run_cella commit -m "first commit" -a "Tester <t@example.com>" -c 'CMD ["cat", "/new"]' -c 'ENV FOO=bar' \
		-c 'WORKDIR /dir' c1 localhost/committed:v1
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "commit prints the new image id"
	local id=$OUT
	run_cella images
	assert_ok
	assert_match "$OUT" "localhost/committed +v1 +${id:7:12} " "images lists the committed image"
	run_cella run --rm localhost/committed:v1
	assert_ok
	assert_eq "new" "$OUT" "--change CMD is the new image's command, and the added file is there"
	run_cella run --rm localhost/committed:v1 sh -c 'echo $FOO; pwd; cat /dir/sub/f /opt/o; tail -n1 /etc/passwd
		test -e /bin/ls || echo ls-gone; test -e /mnt || echo mnt-gone'
	assert_ok
	assert_eq "bar
/dir
f
o
x
ls-gone
mnt-gone" "$OUT" "ENV, WORKDIR, added, changed and deleted files as the container left them"
	# (a container can own files as 1000 only where cella has more than one id: not under unshare -r)
	if awk '{s += $3} END {exit !(s > 1)}' /proc/self/uid_map; then
		run_cella run --rm localhost/committed:v1 stat -c %u:%g /owned
		assert_ok
		assert_eq "1000:1000" "$OUT" "owners as the container saw them"
	fi
	run_cella image history localhost/committed:v1
	assert_ok
	assert_match "$(printf '%s\n' "$OUT" | sed -n 2p)" "^${id:7:12} .* first commit$" "history: the new layer on top, with its comment"
	assert_eq 3 "$(printf '%s\n' "$OUT" | wc -l)" "history: a header, the new layer, the busybox layer"
	run_cella image history --format json localhost/committed:v1
	assert_ok
	assert_eq "$id|first commit|yes" "$(printf '%s' "$OUT" | python3 -c 'import json,sys
a = json.load(sys.stdin)
print(a[0]["Id"], a[0]["Comment"], "yes" if "echo new" in a[0]["CreatedBy"] else a[0]["CreatedBy"], sep="|")')" \
		"history json: id, comment and the container's command"
}

test_commit_of_a_committed_image() {
	commit_env
	run_cella run --name c1 busybox sh -c "$CHANGES"
	assert_ok
	run_cella commit -m "first commit" -c 'CMD ["cat", "/new"]' c1 localhost/committed:v1
	assert_ok
	# a container of the committed image: its changes go on top again, the parent's layers stay shared
	run_cella run --name c2 localhost/committed:v1 sh -c 'echo second >/second; rm /new'
	assert_ok
	run_cella diff c2
	assert_ok
	assert_eq "D /new
A /second" "$OUT" "diff against a store image's layers"
	run_cella commit c2 localhost/committed:v2
	assert_ok
	run_cella run --rm localhost/committed:v2 sh -c 'cat /second /opt/o; test -e /new || echo new-gone'
	assert_ok
	assert_eq "second
o
new-gone" "$OUT" "a commit of a commit"
	run_cella image history -q localhost/committed:v2
	assert_ok
	assert_eq 3 "$(printf '%s\n' "$OUT" | wc -l)" "three layers"
	assert_eq "$(printf '%s\n' "$OUT" | sed -n 2,3p)" "<missing>
<missing>" "-q: the image's id, then <missing> for the layers below"
	run_cella image history --no-trunc localhost/committed:v2
	assert_ok
	assert_match "$(printf '%s\n' "$OUT" | sed -n 3p)" '^<missing> +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +.*echo new.* first commit$' \
		"--no-trunc: exact times and the whole command"
	# the plain `history` spelling works too
	run_cella history localhost/committed:v2
	assert_ok
}

test_commit_a_running_container() {
	commit_env
	run_cella run -d --name live busybox sh -c 'echo live >/live; sleep 60'
	assert_ok
	local i
	for i in $(seq 100); do
		run_cella diff live
		case $OUT in *"A /live"*) break ;; esac
		sleep 0.1
	done
	run_cella commit live localhost/live:1
	assert_ok
	run_cella inspect -f '{{.State.Status}}' live
	assert_eq running "$OUT" "the container runs on after commit (paused, then resumed)"
	run_cella commit --pause=false live localhost/live:2
	assert_ok
	run_cella run --rm localhost/live:2 cat /live
	assert_ok
	assert_eq live "$OUT" "a running container's file is in the image"
	run_cella rm -f live
	assert_ok
}

test_commit_an_image_from_the_registry() {
	commit_env
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	run_cella pull -q "$REG_HOST/test/bb:v1"
	assert_ok
	run_cella history "$REG_HOST/test/bb:v1"
	assert_ok
	assert_eq 2 "$(printf '%s\n' "$OUT" | wc -l)" "history of a pulled image: a header and its layer"
	# CREATED is the image's own date (its config's, 2023-11-14T22:13:20Z), not when it was pulled
	run_cella images
	assert_match "$(printf '%s\n' "$OUT" | grep "^$REG_HOST/test/bb ")" " v1 +[0-9a-f]{12} +[0-9]+ days ago " "images: CREATED"
	run_cella images --format json
	assert_contains "$OUT" '"Created": 1700000000' "images --format json: Created in unix seconds"
	run_cella run --name p1 "$REG_HOST/test/bb:v1" sh -c 'echo added >/etc/added'
	assert_ok
	run_cella diff p1
	assert_eq "C /etc
A /etc/added" "$OUT" "diff against a pulled image"
	run_cella commit -m "on the registry image" p1 localhost/fromreg:1
	assert_ok
	# the new layer holds the change, not the mount points cella made (/etc/hosts, /proc ...)
	run_cella image inspect -f '{{.Store.Layers}}' localhost/fromreg:1
	assert_ok
	local top
	top=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["Path"])')
	assert_eq "/etc
/etc/added" "$(find "$top" -mindepth 1 | sed "s|^$top||" | sort)" "the committed layer's files"
	run_cella run --rm localhost/fromreg:1
	assert_ok
	assert_eq "hello from test/bb" "$OUT" "the parent's Cmd is kept"
	run_cella run --rm localhost/fromreg:1 sh -c 'echo $FOO; cat /etc/added'
	assert_eq "bar
added" "$OUT" "the parent's Env and the new file"
	run_cella image history localhost/fromreg:1
	assert_ok
	assert_contains "$OUT" "on the registry image" "history shows the comment"
	assert_eq 3 "$(printf '%s\n' "$OUT" | wc -l)" "the pulled layer and the committed one"
}

test_history_of_the_embedded_busybox() {
	commit_env
	run_cella image history busybox
	assert_ok
	assert_contains "$OUT" "embedded busybox" "the embedded image has one layer"
	run_cella history --format json busybox
	assert_ok
	assert_eq 1 "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "one entry"
}

test_commit_diff_history_errors() {
	commit_env
	run_cella diff nosuchctr
	assert_cella_error 125 "nosuchctr"
	run_cella commit nosuchctr
	assert_cella_error 125 "nosuchctr"
	run_cella history localhost/nosuchimage:1
	assert_cella_error 125 "localhost/nosuchimage:1"
	run_cella run --name e1 busybox sh -c 'echo x >/x'
	assert_ok
	run_cella commit -c 'FROB x' e1 localhost/bad:1
	assert_cella_error 125 "FROB"
	run_cella commit -c 'CMD ["unclosed"' e1 localhost/bad:1
	assert_cella_error 125 'CMD ["unclosed"'
	run_cella commit -c 'EXPOSE 99999' e1 localhost/bad:1
	assert_cella_error 125 "99999"
	run_cella commit --pause=maybe e1 localhost/bad:1
	assert_cella_error 125 "maybe"
	run_cella images -q
	assert_eq "" "$OUT" "a refused commit stores no image"
	[ -z "$(find "$CELLA_ROOT/blobs" -maxdepth 2 -name '.tmp-*' 2>/dev/null)" ] || fail "temp blobs left"
	# a container whose root is a directory, not an overlay over an image
	make_rootfs "$TEST_TMP/rootfs"
	run_cella run --name dirroot "$TEST_TMP/rootfs" true
	assert_ok
	run_cella diff dirroot
	assert_cella_error 125 "not an overlay"
	run_cella commit dirroot localhost/bad:2
	assert_cella_error 125 "dirroot"
	run_cella commit --help
	assert_ok
	assert_contains "$OUT" "--change" "commit --help"
}

test_commit_of_a_docker_schema2_image() {
	commit_env
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
	registry_start plain
	registry_push_busybox test/dock v1 docker >/dev/null
	run_cella pull -q "$REG_HOST/test/dock:v1"
	assert_ok
	run_cella run --name dk "$REG_HOST/test/dock:v1" sh -c 'echo d >/d'
	assert_ok
	run_cella commit dk localhost/dock:1
	assert_ok
	run_cella image inspect -f '{{.Store.Layers}}' localhost/dock:1
	assert_ok
	assert_not_contains "$OUT" "vnd.docker" "the new OCI manifest names the parent's layers by their OCI media type"
	assert_eq 2 "$(printf '%s' "$OUT" | grep -o 'tar+gzip' | wc -l)" "two gzip layers"
	run_cella run --rm localhost/dock:1 cat /d
	assert_ok
	assert_eq d "$OUT" "the committed image of a Docker schema2 image runs"
}
