# shellcheck shell=bash
# `cella image build`, for real: debootstrap from the Debian mirror, the image stored, run, listed.
# It needs root (debootstrap) and the mirror over the network; it takes minutes.
# root-only
# test-timeout: 1200
# cmd-timeout: 1150

test_image_build_debian() {
	require_real_root
	require_cmd debootstrap curl
	local mirror=http://deb.debian.org/debian
	curl -sfI --max-time 15 "$mirror/dists/bookworm/Release" >/dev/null ||
		skip "the Debian mirror $mirror is not reachable from this machine"
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	run_cella image build --from debian:bookworm --variant minbase --mirror "$mirror" -t local/deb:12
	assert_ok
	run_cella images
	assert_match "$OUT" '^local/deb +12 +[0-9a-f]{12} ' "the built image is listed"
	run_cella run --rm local/deb:12 sh -c 'cat /etc/debian_version; dpkg-query -W -f "\${Package}\n" base-files'
	assert_ok
	assert_match "$OUT" '^12\.[0-9]+$' "Debian 12 in the image"
	assert_contains "$OUT" "base-files" "dpkg knows its packages"
	run_cella image build --from debian:bookworm --variant nosuchvariant --mirror "$mirror" -t local/bad
	assert_rc 125
	assert_contains "$ERR" "nosuchvariant"
	assert_eq "" "$(cella_images_named local/bad)" "nothing stored from a failed build"
}

cella_images_named() { "$CELLA" images --format json 2>/dev/null | jq -r ".[] | select(.Repository == \"$1\") | .ID"; }
