# cella push: images of the store (pulled ones, the embedded busybox) to a real registry (Debian's
# passes: root user
# passes-why: the image tool's registry client is the same code in every pass; root and cellatest cover its two store layouts
# docker-registry on 127.0.0.1: plain, htpasswd, token), read back by skopeo and by cella pull.
# shellcheck disable=SC2154

push_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	export XDG_CONFIG_HOME="$TEST_TMP/config"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
}

# The digest skopeo reads for REF (with --creds USER:PASS as $2 when given).
skopeo_digest() {
	local args=(inspect --tls-verify=false --format '{{.Digest}}')
	[ -z "${2:-}" ] || args+=(--creds "$2")
	skopeo "${args[@]}" "docker://$1" 2>&1
}

skopeo_raw() {
	local args=(inspect --tls-verify=false --raw)
	[ -z "${2:-}" ] || args+=(--creds "$2")
	skopeo "${args[@]}" "docker://$1" 2>&1
}

test_push_pulled_image_same_digest_and_second_push_skips() {
	push_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	local orig=$REG_DIGEST
	run_cella pull -q "$REG_HOST/test/bb:v1"
	assert_ok
	run_cella push "$REG_HOST/test/bb:v1" "$REG_HOST/x/copy:1"
	assert_ok
	assert_eq "$orig" "$OUT" "push prints the manifest digest: the stored manifest's, unchanged"
	assert_contains "$ERR" "mounted from test/bb" "blobs of the same registry are mounted from the source repository"
	assert_eq "$orig" "$(skopeo_digest "$REG_HOST/x/copy:1")" "skopeo reads the digest cella printed"
	# DEST defaults to the image's own name
	run_cella push "$REG_HOST/test/bb:v1"
	assert_ok
	assert_eq "$orig" "$OUT"
	assert_eq 2 "$(printf '%s\n' "$ERR" | grep -c 'skipped: already exists')" "the registry has every blob: none sent"
	assert_not_contains "$ERR" " done" "no blob uploaded"
	run_cella push "$REG_HOST/test/bb:v1" "$REG_HOST/x/copy:1"
	assert_ok
	assert_eq 2 "$(printf '%s\n' "$ERR" | grep -c 'skipped: already exists')" "a second push skips every blob"
	# pulled back by cella under the new name: the same image
	run_cella pull "$REG_HOST/x/copy:1"
	assert_ok
	assert_contains "$ERR" "Digest: $orig"
	run_cella run --rm "$REG_HOST/x/copy:1"
	assert_ok
	assert_eq "hello from test/bb" "$OUT"
}

test_push_embedded_busybox_chunked() {
	push_env
	registry_start plain
	run_cella push --chunk-size 64k --digestfile "$TEST_TMP/digest" busybox "$REG_HOST/x/busybox:1"
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "the digest on stdout"
	local d=$OUT
	assert_eq "$d" "$(cat "$TEST_TMP/digest")" "--digestfile holds it too"
	assert_contains "$ERR" "done" "the blobs were uploaded"
	assert_eq "$d" "$(skopeo_digest "$REG_HOST/x/busybox:1")" "skopeo reads the digest cella printed"
	# skopeo checks every blob's digest as it copies
	run_cmd skopeo copy --quiet --src-tls-verify=false "docker://$REG_HOST/x/busybox:1" "oci:$TEST_TMP/layout:1"
	assert_ok
	run_cella pull -q "$REG_HOST/x/busybox:1"
	assert_ok
	run_cella run --rm "$REG_HOST/x/busybox:1" sh -c 'echo pushed busybox'
	assert_ok
	assert_eq "pushed busybox" "$OUT"
}

test_push_docker_and_oci_formats() {
	push_env
	registry_start plain
	registry_push_busybox test/bb v1 gzip >/dev/null
	run_cella pull -q "$REG_HOST/test/bb:v1"
	assert_ok
	run_cella push -q --format docker "$REG_HOST/test/bb:v1" "$REG_HOST/fmt/docker:1"
	assert_ok
	local d=$OUT raw
	assert_eq "" "$ERR" "--quiet: nothing on stderr"
	raw=$(skopeo_raw "$REG_HOST/fmt/docker:1")
	assert_eq application/vnd.docker.distribution.manifest.v2+json "$(jq -r .mediaType <<<"$raw")"
	assert_eq application/vnd.docker.container.image.v1+json "$(jq -r .config.mediaType <<<"$raw")"
	assert_eq application/vnd.docker.image.rootfs.diff.tar.gzip "$(jq -r '.layers[0].mediaType' <<<"$raw")"
	assert_eq "$d" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" "the printed digest is the manifest's"
	# and back: the docker image pulled, then pushed as OCI
	run_cella pull -q "$REG_HOST/fmt/docker:1"
	assert_ok
	run_cella push -q --format oci "$REG_HOST/fmt/docker:1" "$REG_HOST/fmt/oci:1"
	assert_ok
	raw=$(skopeo_raw "$REG_HOST/fmt/oci:1")
	assert_eq application/vnd.oci.image.manifest.v1+json "$(jq -r .mediaType <<<"$raw")"
	assert_eq application/vnd.oci.image.layer.v1.tar+gzip "$(jq -r '.layers[0].mediaType' <<<"$raw")"
	assert_eq "$OUT" "$(skopeo_digest "$REG_HOST/fmt/oci:1")"
	run_cmd skopeo copy --quiet --src-tls-verify=false "docker://$REG_HOST/fmt/oci:1" "oci:$TEST_TMP/l2:1"
	assert_ok
}

test_push_zstd_as_docker_refused() {
	push_env
	registry_start plain
	registry_push_busybox test/z v1 zstd >/dev/null
	run_cella pull -q "$REG_HOST/test/z:v1"
	assert_ok
	run_cella push --format docker "$REG_HOST/test/z:v1" "$REG_HOST/fmt/z:1"
	assert_cella_error 125 "Docker schema2 has no media type"
	assert_contains "$ERR" "zstd"
	assert_contains "$ERR" "--format oci"
	run_cella push --format yaml "$REG_HOST/test/z:v1" "$REG_HOST/fmt/z:1"
	assert_cella_error 125 "--format"
	run_cella push nosuchimage "$REG_HOST/fmt/z:1"
	assert_cella_error 125 "nosuchimage"
}

test_push_basic_auth() {
	push_env
	registry_start htpasswd bob pw123
	run_cella push busybox "$REG_HOST/priv/bb:1"
	assert_cella_error 125 "cella login $REG_HOST"
	run_cella push --creds bob:wrong busybox "$REG_HOST/priv/bb:1"
	assert_cella_error 125 "unauthorized"
	assert_contains "$ERR" "$REG_HOST" "the error names the registry"
	run_cella login -u bob -p pw123 "$REG_HOST"
	assert_ok
	run_cella push busybox "$REG_HOST/priv/bb:1"
	assert_ok
	assert_eq "$OUT" "$(skopeo_digest "$REG_HOST/priv/bb:1" bob:pw123)" "skopeo reads the digest cella printed"
}

test_push_token_auth() {
	push_env
	registry_start token alice s3cret
	registry_push_busybox priv/app v1 gzip >/dev/null
	local orig=$REG_DIGEST
	run_cella pull -q --creds alice:s3cret "$REG_HOST/priv/app:v1"
	assert_ok
	run_cella push "$REG_HOST/priv/app:v1" "$REG_HOST/priv/copy:1"
	assert_cella_error 125 "login"
	run_cella push --creds alice:nope "$REG_HOST/priv/app:v1" "$REG_HOST/priv/copy:1"
	assert_cella_error 125 "unauthorized"
	assert_contains "$ERR" "$REG_HOST" "the error names the registry"
	run_cmd sh -c "echo s3cret | '$CELLA' login -u alice --password-stdin '$REG_HOST'"
	assert_ok
	run_cella push "$REG_HOST/priv/app:v1" "$REG_HOST/priv/copy:1"
	assert_ok
	assert_eq "$orig" "$OUT"
	assert_contains "$ERR" "mounted from priv/app" "the token covered pull on the source repository too"
	assert_eq "$orig" "$(skopeo_digest "$REG_HOST/priv/copy:1" alice:s3cret)"
	run_cella push busybox "$REG_HOST/priv/bb:1"
	assert_ok
	assert_eq "$OUT" "$(skopeo_digest "$REG_HOST/priv/bb:1" alice:s3cret)"
}

test_push_imported_multi_layer_image_uploads_in_parallel() {
	push_env
	registry_start plain
	registry_push_busybox test/multi v1 multi >/dev/null
	local orig=$REG_DIGEST
	# through an OCI layout and `image import`: the store does not know the source repository, so
	# nothing can be mounted and every blob (3 layers, one zstd, and the config) is uploaded
	run_cmd skopeo copy --quiet --src-tls-verify=false "docker://$REG_HOST/test/multi:v1" "oci:$TEST_TMP/multi:v1"
	assert_ok
	run_cella image import "$TEST_TMP/multi" local/multi:v1
	assert_ok
	run_cella push local/multi:v1 "$REG_HOST/up/multi:v1"
	assert_ok
	assert_eq "$orig" "$OUT" "the same manifest, the same digest"
	assert_eq 4 "$(printf '%s\n' "$ERR" | grep -c 'done')" "four blobs uploaded"
	assert_not_contains "$ERR" "mounted" "nothing to mount from"
	run_cmd skopeo copy --quiet --src-tls-verify=false "docker://$REG_HOST/up/multi:v1" "oci:$TEST_TMP/back:v1"
	assert_ok
	run_cella pull -q "$REG_HOST/up/multi:v1"
	assert_ok
	run_cella run --rm "$REG_HOST/up/multi:v1" cat /etc/motd /etc/layer3
	assert_ok
	assert_eq "welcome to the cella test image
layer 3" "$OUT"
}

test_push_tls_registry() {
	push_env
	REG_TLS=1 registry_start plain
	# a local registry with a self-signed certificate: its certificate is not checked unless told
	run_cella push --tls-verify=true busybox "$REG_HOST/tls/bb:1"
	assert_cella_error 125 "TLS error talking to $REG_HOST"
	assert_contains "$ERR" "--tls-verify=false"
	run_cella push -q --tls-verify=false busybox "$REG_HOST/tls/bb:1"
	assert_ok
	assert_eq "$OUT" "$(skopeo_digest "$REG_HOST/tls/bb:1")" "pushed over https"
	run_cella push -q --tls-verify=maybe busybox "$REG_HOST/tls/bb:1"
	assert_cella_error 125 "--tls-verify"
}
