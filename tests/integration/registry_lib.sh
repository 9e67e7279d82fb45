# shellcheck shell=bash
# A real OCI registry for integration tests: Debian's docker-registry (distribution 2.8) on
# 127.0.0.1, and images built from the host's static busybox pushed to it with skopeo.
#
#   . tests/integration/registry_lib.sh
#   registry_start [plain|htpasswd|token] [USER PASS]
#       Start a registry on 127.0.0.1:<free port>, storage under $TEST_TMP. Exports REG_HOST
#       (127.0.0.1:PORT), REG_MODE, REG_DIR (its files), REG_LOG (its log); with auth, REG_USER and
#       REG_PASS (default cella / cella-secret). Returns once /v2/ answers.
#         plain     no auth
#         htpasswd  Basic auth against an htpasswd file (bcrypt)
#         token     Bearer tokens from tests/integration/token_server.py (REG_TOKEN_URL): with
#                   USER PASS, only those credentials get access (anonymous gets a token without
#                   access, so the registry answers 401; REG_TOKEN_ANON_PULL=1 grants anonymous
#                   pulls); without, everybody gets everything. REG_TOKEN_FIELD=token|access_token|both
#                   picks the JSON field(s) of the token reply (default both).
#       REG_TLS=1: https with a self-signed certificate for 127.0.0.1 (REG_CA, its file); clients
#       need --tls-verify=false (or the CA). REG_SCHEME is http or https.
#       Do not call it inside $(...): the registry would hold the substitution's pipe open.
#   registry_push_busybox REPO TAG [gzip|zstd|multi|index|docker]
#       Build an OCI image layout from the host's busybox-static and push it to $REG_HOST/REPO:TAG
#       (with the credentials when the registry has auth). Prints the pushed manifest's digest
#       (the index's for `index`) on stdout and sets REG_DIGEST. Prefer `registry_push_busybox … >/dev/null;
#       d=$REG_DIGEST` to `d=$(registry_push_busybox …)`: in $(...) a failure or a skip only ends
#       the subshell.
#         gzip    one gzip layer (the default)
#         zstd    one zstd layer (application/vnd.oci.image.layer.v1.tar+zstd)
#         multi   three layers: 1 gzip busybox + /etc/removeme + /opq/{a,b};
#                 2 zstd: /etc/motd, a whiteout of /etc/removeme, /opq made opaque + /opq/c;
#                 3 gzip: /etc/layer3. Merged: motd and layer3 there, removeme gone, /opq = {c}.
#         index   an OCI index: the host's architecture (the real image, as gzip) and the other of
#                 amd64/arm64 (a config and a one-file layer, /ARCH), pushed with --all
#         docker  the gzip image converted by skopeo to Docker schema2 media types
#         bomb    the gzip image and a second gzip layer holding /big, 64 MiB of zeros (a ~64 KiB blob)
#         baddiff the gzip image whose config's rootfs.diff_ids names another digest than its layer's
#       Every image: Env PATH=/bin FOO=bar, Cmd ["/bin/sh","-c","echo hello from REPO"],
#       WorkingDir /tmp, Labels {"org.test":"yes"}, ExposedPorts {"80/tcp":{}}; files bin/busybox,
#       bin/{sh,echo,cat,ls,true,sleep} → busybox, etc/passwd (root, nobody), etc/group, tmp;
#       all owned 0:0, sorted, mtime fixed: the same REPO and variant always give the same digest.
#   registry_stop
#       Stop what registry_start started (also done when the test's shell exits).
#
# Needs docker-registry, skopeo, python3, curl, a static busybox; htpasswd (apache2-utils) for
# htpasswd; openssl for token. A missing one skips the test (skip from lib.sh when sourced).

REG_HOST="" REG_MODE="" REG_DIR="" REG_LOG="" REG_USER="" REG_PASS="" REG_TOKEN_URL="" REG_DIGEST=""
REG_SCHEME=http REG_CA=""
_REG_PID="" _REG_TOKEN_PID="" _REG_WATCH_PID=""
_REG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_reg_skip() {
	if declare -F skip >/dev/null; then
		skip "$@"
	fi
	echo "SKIP: $*" >&2
	exit 0
}

_reg_fail() {
	if declare -F fail >/dev/null; then
		fail "$@"
	fi
	echo "FAIL: $*" >&2
	exit 1
}

_reg_require() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || _reg_skip "$c not installed"
	done
}

_reg_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The HTTP status of GET URL, 000 when nothing answers.
_reg_http_status() {
	curl -k -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

_reg_htpasswd() { # FILE USER PASS
	_reg_require htpasswd
	htpasswd -Bbn "$2" "$3" >"$1" 2>/dev/null || _reg_fail "htpasswd -Bbn failed"
}

_reg_token_server_start() { # USER PASS
	local args=() port
	_reg_require openssl
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cella-test-token \
		-keyout "$REG_DIR/token.key" -out "$REG_DIR/token.crt" >/dev/null 2>&1 ||
		_reg_fail "openssl could not make the token signing certificate"
	args=(--key "$REG_DIR/token.key" --cert "$REG_DIR/token.crt" --issuer cella-test-issuer
		--service cella-test-registry --port-file "$REG_DIR/token.port" --field "${REG_TOKEN_FIELD:-both}")
	[ -z "$1" ] || args+=(--user "$1" --pass "$2")
	[ "${REG_TOKEN_ANON_PULL:-0}" = 0 ] || args+=(--anonymous-pull)
	python3 "$_REG_LIB_DIR/token_server.py" "${args[@]}" >>"$REG_DIR/token.log" 2>&1 &
	_REG_TOKEN_PID=$!
	for _ in $(seq 50); do
		[ -s "$REG_DIR/token.port" ] && break
		kill -0 "$_REG_TOKEN_PID" 2>/dev/null || break
		sleep 0.1
	done
	port=$(cat "$REG_DIR/token.port" 2>/dev/null)
	[ -n "$port" ] || _reg_fail "the token server did not start: $(cat "$REG_DIR/token.log")"
	REG_TOKEN_URL=http://127.0.0.1:$port/token
}

_reg_config() { # PORT
	cat <<-EOF
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $REG_DIR/storage
		  delete:
		    enabled: true
		  cache:
		    blobdescriptor: inmemory
		http:
		  addr: 127.0.0.1:$1
		  headers:
		    X-Content-Type-Options: [nosniff]
	EOF
	if [ "$REG_SCHEME" = https ]; then
		printf '  tls:\n    certificate: %s\n    key: %s\n' "$REG_DIR/tls.crt" "$REG_DIR/tls.key"
	fi
	case $REG_MODE in
	htpasswd)
		printf 'auth:\n  htpasswd:\n    realm: cella-test\n    path: %s\n' "$REG_DIR/htpasswd"
		;;
	token)
		printf 'auth:\n  token:\n    realm: %s\n    service: cella-test-registry\n' "$REG_TOKEN_URL"
		printf '    issuer: cella-test-issuer\n    rootcertbundle: %s\n' "$REG_DIR/token.crt"
		;;
	esac
}

# Kill the registry and the token server when the test's shell goes away without registry_stop
# (a failed assertion exits, the runner's timeout kills).
_reg_watchdog() {
	local owner=$$ pids="$_REG_PID $_REG_TOKEN_PID"
	(
		trap '' HUP INT
		while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
	) </dev/null >/dev/null 2>&1 &
	_REG_WATCH_PID=$!
}

registry_start() {
	local mode=${1:-plain} port st
	[ -z "$_REG_PID" ] || _reg_fail "registry_start: a registry is already running ($REG_HOST)"
	case $mode in plain | htpasswd | token) ;; *) _reg_fail "registry_start: unknown mode '$mode'" ;; esac
	_reg_require docker-registry python3 curl
	REG_MODE=$mode
	REG_USER="" REG_PASS=""
	if [ "$mode" = htpasswd ] || { [ "$mode" = token ] && [ $# -ge 3 ]; }; then
		REG_USER=${2:-cella} REG_PASS=${3:-cella-secret}
	fi
	REG_DIR=$(mktemp -d "${TEST_TMP:-/tmp}/registry.XXXXXX") || _reg_fail "mktemp"
	REG_LOG=$REG_DIR/registry.log
	mkdir -p "$REG_DIR/storage"
	[ "$mode" != htpasswd ] || _reg_htpasswd "$REG_DIR/htpasswd" "$REG_USER" "$REG_PASS"
	[ "$mode" != token ] || _reg_token_server_start "$REG_USER" "$REG_PASS"
	REG_SCHEME=http REG_CA=""
	if [ "${REG_TLS:-0}" = 1 ]; then
		_reg_require openssl
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
			-keyout "$REG_DIR/tls.key" -out "$REG_DIR/tls.crt" >/dev/null 2>&1 ||
			_reg_fail "openssl could not make the registry's certificate"
		REG_SCHEME=https REG_CA=$REG_DIR/tls.crt
	fi
	for _ in 1 2 3; do
		port=$(_reg_free_port)
		_reg_config "$port" >"$REG_DIR/config.yml"
		docker-registry serve "$REG_DIR/config.yml" >>"$REG_LOG" 2>&1 </dev/null &
		_REG_PID=$!
		REG_HOST=127.0.0.1:$port
		for _ in $(seq 100); do
			st=$(_reg_http_status "$REG_SCHEME://$REG_HOST/v2/")
			case $st in 200 | 401) break ;; esac
			kill -0 "$_REG_PID" 2>/dev/null || break
			sleep 0.1
		done
		case $st in 200 | 401) break ;; esac
		kill "$_REG_PID" 2>/dev/null
		wait "$_REG_PID" 2>/dev/null
		_REG_PID=""
	done
	[ -n "$_REG_PID" ] || { registry_stop; _reg_fail "docker-registry did not start: $(tail -5 "$REG_LOG")"; }
	_reg_watchdog
	[ -n "$(trap -p EXIT)" ] || trap registry_stop EXIT
	export REG_HOST REG_MODE REG_DIR REG_LOG REG_USER REG_PASS REG_TOKEN_URL REG_SCHEME REG_CA
}

registry_stop() {
	local p
	for p in $_REG_PID $_REG_TOKEN_PID $_REG_WATCH_PID; do
		kill "$p" 2>/dev/null
	done
	for p in $_REG_PID $_REG_TOKEN_PID $_REG_WATCH_PID; do
		for _ in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	_REG_PID="" _REG_TOKEN_PID="" _REG_WATCH_PID=""
	return 0
}

# --- images -----------------------------------------------------------------------------------

_reg_busybox() {
	local b
	for b in /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && LC_ALL=C ldd "$b" 2>&1 | grep -q 'not a dynamic'; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

_reg_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) uname -m ;;
	esac
}

# A blob into the layout from a file: sets _D (digest) and _S (size).
_reg_blob() { # LAYOUT FILE
	local hex
	hex=$(sha256sum "$2" | cut -d' ' -f1)
	_S=$(stat -c %s "$2")
	_D=sha256:$hex
	mv "$2" "$1/blobs/sha256/$hex"
}

# Reproducible tar of DIR's contents: root-owned, sorted, fixed mtime, no "./" prefix.
_reg_tar() { # DIR OUT
	local names
	names=$(cd "$1" && LC_ALL=C ls -A)
	# shellcheck disable=SC2086
	(cd "$1" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
		--format=gnu -cf - $names) >"$2"
}

# Compress TAR with ALGO into the layout: sets _LD _LS (blob), _DIFF (diff id), _LMT (media type).
_reg_layer() { # LAYOUT TAR gzip|zstd
	_DIFF=sha256:$(sha256sum "$2" | cut -d' ' -f1)
	case $3 in
	gzip)
		gzip -n -c "$2" >"$2.z"
		_LMT=application/vnd.oci.image.layer.v1.tar+gzip
		;;
	zstd)
		_reg_require zstd
		zstd -q -c "$2" >"$2.z"
		_LMT=application/vnd.oci.image.layer.v1.tar+zstd
		;;
	esac
	_reg_blob "$1" "$2.z"
	_LD=$_D _LS=$_S
	rm -f "$2"
}

_reg_rootfs_busybox() { # DIR BUSYBOX
	local a
	mkdir -p "$1/bin" "$1/etc" "$1/tmp"
	cp "$2" "$1/bin/busybox"
	chmod 0755 "$1/bin/busybox"
	for a in sh echo cat ls true sleep; do
		ln -s busybox "$1/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$1/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
	chmod 0755 "$1" "$1/bin" "$1/etc"
	chmod 1777 "$1/tmp"
	chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

# Write the config and the manifest of an image made of the layers in _LAYERS (lines
# "MEDIATYPE DIGEST SIZE DIFFID"): sets _MD _MS (the manifest blob).
_reg_image() { # LAYOUT REPO ARCH
	local created=2023-11-14T22:13:20Z diffs="" layers="" hist="" mt d s diff cfg man
	while read -r mt d s diff; do
		[ -n "$mt" ] || continue
		diffs+="${diffs:+,}\"$diff\""
		layers+="${layers:+,}{\"mediaType\":\"$mt\",\"digest\":\"$d\",\"size\":$s}"
		hist+="${hist:+,}{\"created\":\"$created\",\"created_by\":\"registry_lib.sh\"}"
	done <<<"$_LAYERS"
	cfg=$1/config.json
	printf '{"created":"%s","architecture":"%s","os":"linux","config":{"Env":["PATH=/bin","FOO=bar"],' "$created" "$3" >"$cfg"
	printf '"Cmd":["/bin/sh","-c","echo hello from %s"],"WorkingDir":"/tmp","Labels":{"org.test":"yes"},' "$2" >>"$cfg"
	printf '"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' "$diffs" "$hist" >>"$cfg"
	_reg_blob "$1" "$cfg"
	man=$1/manifest.json
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' >"$man"
	printf '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},' "$_D" "$_S" >>"$man"
	printf '"layers":[%s]}' "$layers" >>"$man"
	_reg_blob "$1" "$man"
	_MD=$_D _MS=$_S
}

_reg_layout_index() { # LAYOUT MEDIATYPE DIGEST SIZE TAG
	printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
		"$2" "$3" "$4" "$5" >"$1/index.json"
}

# A layer that expands a thousandfold: /big, 64 MiB of zeros, gzip.
_reg_bomb_layer() { # LAYOUT WORK
	mkdir -p "$2/bomb"
	head -c 64M /dev/zero >"$2/bomb/big"
	_reg_tar "$2/bomb" "$2/bomb.tar"
	rm -f "$2/bomb/big"
	_reg_layer "$1" "$2/bomb.tar" gzip
	_LAYERS+=$'\n'"$_LMT $_LD $_LS $_DIFF"
}

# The layers of the busybox image; with zstd, that one layer compressed with zstd.
_reg_busybox_layers() { # LAYOUT WORK BUSYBOX gzip|zstd
	_reg_rootfs_busybox "$2/rootfs" "$3"
	_reg_tar "$2/rootfs" "$2/l1.tar"
	_reg_layer "$1" "$2/l1.tar" "$4"
	_LAYERS="$_LMT $_LD $_LS $_DIFF"
}

_reg_multi_layers() { # LAYOUT WORK BUSYBOX
	local r=$2/r1
	_reg_rootfs_busybox "$r" "$3"
	echo "to be removed by layer 2" >"$r/etc/removeme"
	mkdir -p "$r/opq"
	echo a >"$r/opq/a"
	echo b >"$r/opq/b"
	_reg_tar "$r" "$2/l1.tar"
	_reg_layer "$1" "$2/l1.tar" gzip
	_LAYERS="$_LMT $_LD $_LS $_DIFF"
	r=$2/r2
	mkdir -p "$r/etc" "$r/opq"
	echo "welcome to the cella test image" >"$r/etc/motd"
	: >"$r/etc/.wh.removeme"
	: >"$r/opq/.wh..wh..opq"
	echo c >"$r/opq/c"
	_reg_tar "$r" "$2/l2.tar"
	_reg_layer "$1" "$2/l2.tar" zstd
	_LAYERS+=$'\n'"$_LMT $_LD $_LS $_DIFF"
	r=$2/r3
	mkdir -p "$r/etc"
	echo "layer 3" >"$r/etc/layer3"
	_reg_tar "$r" "$2/l3.tar"
	_reg_layer "$1" "$2/l3.tar" gzip
	_LAYERS+=$'\n'"$_LMT $_LD $_LS $_DIFF"
}

# An OCI index of the real image for the host's architecture and a stand-in for the other one.
_reg_index() { # LAYOUT WORK BUSYBOX REPO
	local arch other real_d real_s idx
	arch=$(_reg_arch)
	other=arm64
	[ "$arch" != arm64 ] || other=amd64
	_reg_busybox_layers "$1" "$2" "$3" gzip
	_reg_image "$1" "$4" "$arch"
	real_d=$_MD real_s=$_MS
	mkdir -p "$2/other"
	echo "$other" >"$2/other/ARCH"
	_reg_tar "$2/other" "$2/o.tar"
	_reg_layer "$1" "$2/o.tar" gzip
	_LAYERS="$_LMT $_LD $_LS $_DIFF"
	_reg_image "$1" "$4" "$other"
	idx=$1/idx.json
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[' >"$idx"
	printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}},' \
		"$real_d" "$real_s" "$arch" >>"$idx"
	printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"%s}}]}' \
		"$_MD" "$_MS" "$other" "$([ "$other" = arm64 ] && echo ',"variant":"v8"')" >>"$idx"
	_reg_blob "$1" "$idx"
	_MD=$_D _MS=$_S
}

registry_push_busybox() {
	local repo=$1 tag=$2 variant=${3:-gzip} bb work layout mt=application/vnd.oci.image.manifest.v1+json
	local args=(--insecure-policy copy --quiet --dest-tls-verify=false)
	[ -n "$REG_HOST" ] || _reg_fail "registry_push_busybox: no registry (call registry_start first)"
	_reg_require skopeo
	# the same bytes whatever the caller's umask: the digests stay stable
	_REG_UMASK=$(umask)
	umask 022
	bb=$(_reg_busybox) || _reg_skip "no static busybox on the host (Debian package busybox-static)"
	work=$(mktemp -d "$REG_DIR/image.XXXXXX") || _reg_fail "mktemp"
	layout=$work/layout
	mkdir -p "$layout/blobs/sha256"
	case $variant in
	gzip | docker) _reg_busybox_layers "$layout" "$work" "$bb" gzip && _reg_image "$layout" "$repo" "$(_reg_arch)" ;;
	zstd) _reg_busybox_layers "$layout" "$work" "$bb" zstd && _reg_image "$layout" "$repo" "$(_reg_arch)" ;;
	multi) _reg_multi_layers "$layout" "$work" "$bb" && _reg_image "$layout" "$repo" "$(_reg_arch)" ;;
	bomb)
		_reg_busybox_layers "$layout" "$work" "$bb" gzip
		_reg_bomb_layer "$layout" "$work"
		_reg_image "$layout" "$repo" "$(_reg_arch)"
		;;
	baddiff)
		_reg_busybox_layers "$layout" "$work" "$bb" gzip
		_LAYERS="$_LMT $_LD $_LS sha256:$(printf 'not this layer' | sha256sum | cut -d' ' -f1)"
		_reg_image "$layout" "$repo" "$(_reg_arch)"
		;;
	index)
		_reg_index "$layout" "$work" "$bb" "$repo"
		mt=application/vnd.oci.image.index.v1+json
		args+=(--all)
		;;
	*) _reg_fail "registry_push_busybox: unknown variant '$variant'" ;;
	esac
	_reg_layout_index "$layout" "$mt" "$_MD" "$_MS" "$tag"
	if [ "$variant" = docker ]; then
		args+=(--format v2s2)
	else
		args+=(--preserve-digests)
	fi
	if [ -n "$REG_USER" ]; then
		args+=(--dest-creds "$REG_USER:$REG_PASS")
	fi
	skopeo "${args[@]}" --digestfile "$work/digest" "oci:$layout:$tag" "docker://$REG_HOST/$repo:$tag" >"$work/push.log" 2>&1 ||
		_reg_fail "skopeo copy to $REG_HOST/$repo:$tag failed: $(cat "$work/push.log")"
	REG_DIGEST=$(cat "$work/digest")
	if [ "$variant" != docker ] && [ "$REG_DIGEST" != "$_MD" ]; then
		_reg_fail "skopeo pushed $REG_DIGEST, not the layout's $_MD"
	fi
	rm -rf "$work"
	umask "$_REG_UMASK"
	echo "$REG_DIGEST"
}
