# shellcheck shell=bash disable=SC2016,SC2154
# passes: root user
# passes-why: the rootless pass checks that COPY --chown and RUN keep the owners the container sees
# `cella build`: a Containerfile run step by step into an image (src/engine/build.c), over the
# embedded busybox (no network): multi-stage, the config instructions, COPY/ADD from the context
# and from a stage, the layer cache, --no-cache, --build-arg, --target, .dockerignore, and the
# failures, which leave no image, layer, temp dir or container behind; ONBUILD triggers, --platform,
# --pull, ADD of a URL (a local http server), RUN --mount/--network, parallel stages, the cache
# across prunes, and a built image pushed to a real registry and pulled back (skopeo, cella pull).
# Each RUN or COPY packs and stores a layer: on a loaded 2-core machine a build takes seconds.
# test-timeout: 180
# cmd-timeout: 90

build_env() {
	export CELLA_ROOT="$TEST_TMP/data" CELLA_RUN_ROOT="$TEST_TMP/run"
	export XDG_CONFIG_HOME="$TEST_TMP/config"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG
	CTX="$TEST_TMP/ctx"
	mkdir -p "$CTX/sub/deeper"
	echo hello >"$CTX/a.txt"
	echo s >"$CTX/sub/s.txt"
	echo d >"$CTX/sub/deeper/d.txt"
	echo secret >"$CTX/ignored.txt"
	ln -s /etc "$CTX/etclink"
	printf 'ignored.txt\n*.log\n' >"$CTX/.dockerignore"
	echo log >"$CTX/x.log"
	mkdir -p "$TEST_TMP/tarsrc/t"
	echo intar >"$TEST_TMP/tarsrc/t/in.txt"
	tar -C "$TEST_TMP/tarsrc" -czf "$CTX/arch.tar.gz" t
	cat >"$CTX/Containerfile" <<'EOF'
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hi
RUN echo "$GREETING" > /greet && echo "RAN-BUILDER-$((40+2))"
COPY a.txt /opt/

FROM busybox AS unused
RUN echo "RAN-UNUSED-$((40+2))" && false

FROM builder
ENV FOO=bar \
    BAZ="two words"
WORKDIR /app
COPY --from=builder /greet ./greet
COPY sub/ /data/
COPY etclink /lnk
COPY --chown=1000:1000 --chmod=640 a.txt /owned.txt
COPY *.txt /globbed/
ADD arch.tar.gz /unpacked/
RUN echo "RAN-FINAL-$((40+2))" && echo app:x:1234:1234::/app:/bin/sh >> /etc/passwd && mkdir -p /app/w && chown 1234:1234 /app/w
USER app
LABEL org.test.k=v other="x y"
EXPOSE 8080 9090/udp
VOLUME /vol
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD true
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $FOO; cat /app/greet"]
EOF
}

# What a failed build must not leave: records, layers, build temp dirs, containers.
store_count() {
	local n=0 d
	for d in "$CELLA_ROOT/images/records" "$CELLA_ROOT/layers" "$CELLA_ROOT/build" "$CELLA_ROOT/containers"; do
		[ -d "$d" ] && n=$((n + $(find "$d" -mindepth 1 -maxdepth 1 | wc -l)))
	done
	echo "$n"
}

test_build_multistage_and_run() {
	build_env
	run_cella build -t built --build-arg GREETING=hello-arg "$CTX"
	assert_ok
	assert_match "$OUT" '^\[1/3\] STEP 1/[0-9]+: FROM \$BASE AS builder$' "progress lines name each step"
	assert_contains "$OUT" "RAN-BUILDER-42" "RUN output is streamed"
	assert_not_contains "$OUT" "RAN-UNUSED-42" "a stage the target does not need is not built"
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "the image id last"
	local id
	id=$(printf '%s\n' "$OUT" | tail -n1)
	run_cella run --rm built
	assert_ok
	assert_eq "bar
hello-arg" "$OUT" "ENTRYPOINT + CMD, ENV, --build-arg, COPY --from"
	run_cella run --rm --entrypoint "" built sh -c 'id -u; pwd; echo "$BAZ"; readlink /lnk; cat /data/s.txt /data/deeper/d.txt /opt/a.txt /unpacked/t/in.txt; ls /globbed; ls -ln /owned.txt | cut -c1-10; stat -c "%u:%g" /owned.txt /app/w /data/s.txt'
	assert_ok
	assert_eq "1234
/app
two words
/etc
s
d
hello
intar
a.txt
-rw-r-----
1000:1000
1234:1234
0:0" "$OUT" "user, workdir, env, the symlink kept as a link, dir contents, ADD unpacked, globs and .dockerignore, --chown/--chmod, owners"
	run_cella image inspect built
	assert_ok
	assert_contains "$OUT" "$id" "the printed id is the image's"
	# the config blob itself (inspect shows only some of its fields)
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c.get("Labels", {}).get("org.test.k") == "v", c
assert c.get("Labels", {}).get("other") == "x y", c
assert "8080/tcp" in c.get("ExposedPorts", {}) and "9090/udp" in c.get("ExposedPorts", {}), c
assert "/vol" in c.get("Volumes", {}), c
assert c.get("StopSignal") == "SIGTERM", c
assert c.get("Healthcheck", {}).get("Test") == ["CMD-SHELL", "true"], c
assert c.get("Healthcheck", {}).get("Interval") == 5000000000, c
' "$CELLA_ROOT/blobs/sha256/${id#sha256:}"|| fail "the config holds what the instructions set"
	# -q: only the id; `image build` without --from is the same command
	run_cella image build -q -t built2 "$CTX"
	assert_ok
	assert_match "$OUT" '^sha256:[0-9a-f]{64}$' "-q prints the id"
	assert_eq 1 "$(printf '%s\n' "$OUT" | wc -l)" "-q prints only the id"
}

test_rebuild_cache_invalidation_no_cache() {
	build_env
	run_cella build -t c1 "$CTX"
	assert_ok
	assert_contains "$OUT" "RAN-FINAL-42" "the first build runs RUN"
	local first start end
	first=$(printf '%s\n' "$OUT" | tail -n1)
	start=$(date +%s%N)
	run_cella build -t c1 "$CTX"
	end=$(date +%s%N)
	assert_ok
	assert_not_contains "$OUT" "-42" "an unchanged rebuild runs no RUN"
	assert_eq 9 "$(printf '%s\n' "$OUT" | grep -c -- '--> Using cache')" "every RUN/COPY/ADD step hits the cache"
	assert_eq "$first" "$(printf '%s\n' "$OUT" | tail -n1)" "the same image"
	echo "rebuild, all cached: $(((end - start) / 1000000)) ms" >&2
	# a changed file invalidates from its COPY on: the builder's RUN stays cached, the final RUN runs
	echo changed >"$CTX/sub/s.txt"
	run_cella build -t c1 "$CTX"
	assert_ok
	assert_not_contains "$OUT" "RAN-BUILDER-42" "steps before the changed COPY stay cached"
	assert_contains "$OUT" "RAN-FINAL-42" "steps after the changed COPY run again"
	assert_ne "$first" "$(printf '%s\n' "$OUT" | tail -n1)" "a new image"
	run_cella run --rm --entrypoint "" c1 cat /data/s.txt
	assert_eq "changed" "$OUT" "the new content"
	# a file .dockerignore excludes changes nothing
	echo other >"$CTX/ignored.txt"
	run_cella build "$CTX"
	assert_ok
	assert_not_contains "$OUT" "-42" "an ignored file is not part of the cache key"
	# --no-cache runs everything again
	run_cella build --no-cache "$CTX"
	assert_ok
	assert_contains "$OUT" "RAN-BUILDER-42" "--no-cache: the builder's RUN runs"
	assert_contains "$OUT" "RAN-FINAL-42" "--no-cache: the final RUN runs"
	assert_not_contains "$OUT" "Using cache" "--no-cache: no hit"
	# another --build-arg value is another RUN
	run_cella build --build-arg GREETING=other "$CTX"
	assert_ok
	assert_contains "$OUT" "RAN-BUILDER-42" "a new ARG value runs the RUN that sees it"
}

test_target_and_scratch() {
	build_env
	run_cella build --target builder -t tgt "$CTX"
	assert_ok
	assert_not_contains "$OUT" "RAN-FINAL-42" "--target stops at that stage"
	run_cella run --rm tgt cat /greet /opt/a.txt
	assert_ok
	assert_eq "hi
hello" "$OUT" "the target stage's files"
	run_cella run --rm tgt sh -c 'test -e /app'
	assert_rc 1 "nothing of the later stage"
	# FROM scratch with a file copied from a stage
	mkdir -p "$TEST_TMP/s"
	cat >"$TEST_TMP/s/Dockerfile" <<'EOF'
FROM busybox AS b
RUN echo x > /x
FROM scratch
COPY --from=b /x /x
COPY --from=b /bin/busybox /bin/sh
CMD ["/bin/sh", "-c", "echo from-scratch; cat /x"]
EOF
	run_cella build -t scr "$TEST_TMP/s"
	assert_ok
	run_cella run --rm scr
	assert_ok
	assert_eq "from-scratch
x" "$OUT" "a FROM scratch image runs"
}

test_failures_leave_nothing() {
	build_env
	run_cella build -q "$CTX"
	assert_ok
	local before
	before=$(store_count)
	mkdir -p "$TEST_TMP/f"
	# a RUN that fails: its FILE:LINE, the instruction, the exit status, its output
	printf 'FROM busybox\nRUN echo step-one > /one\nRUN echo FAILING-OUTPUT-$((1+1)); exit 3\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 'Containerfile:3: RUN echo FAILING-OUTPUT-$((1+1)); exit 3'
	assert_contains "$ERR" "status 3" "the exit status"
	assert_contains "$OUT" "FAILING-OUTPUT-2" "the failing step's output"
	run_cella build -q "$TEST_TMP/f"
	assert_rc 125 "-q: still fails"
	assert_contains "$ERR" "FAILING-OUTPUT-2" "-q shows the failing step's output"
	# a COPY source that is not there
	printf 'FROM busybox\nCOPY nothere /x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "Containerfile:2: COPY nothere /x"
	assert_contains "$ERR" "nothere" "names the source"
	# a source outside the context, by .. and through a symlink
	printf 'FROM busybox\nCOPY ../outside /x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "outside the build context"
	ln -s /etc "$TEST_TMP/f/etc"
	printf 'FROM busybox\nCOPY etc/passwd /x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "Containerfile:2: COPY etc/passwd /x"
	assert_contains "$ERR" "outside the build context" "a symlink out of the context is not followed"
	# an unknown stage
	printf 'FROM busybox\nCOPY --from=nostage /x /x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "nostage"
	# an unknown --target, a parse error
	run_cella build --target nope "$CTX"
	assert_cella_error 125 "--target \`nope\`"
	printf 'FROM busybox\nFROBNICATE x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "Containerfile:2"
	# a failing step in a multi-stage build after steps that succeeded
	printf 'FROM busybox AS a\nRUN echo a > /a\nFROM a\nCOPY missing /m\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_cella_error 125 "Containerfile:4"
	# step-one's layer and the multi-stage's first RUN were stored (they are cache); what counts is
	# that nothing half-made stays: no build temp dir, no container, no named image
	assert_eq "" "$(find "$CELLA_ROOT/build" -mindepth 1 -maxdepth 1 2>/dev/null)" "no build temp dir left"
	assert_eq "" "$(find "$CELLA_ROOT/containers" -mindepth 1 -maxdepth 1 2>/dev/null)" "no container left"
	assert_eq "" "$(find "$CELLA_ROOT/layers" "$CELLA_ROOT/blobs" -name '.tmp-*' 2>/dev/null)" "no temp layer"
	run_cella images
	assert_not_contains "$OUT" "f:latest" "no image named"
	# the failures that fail before a step succeeds add nothing at all
	before=$(store_count)
	printf 'FROM busybox\nRUN exit 7\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_rc 125
	printf 'FROM busybox\nCOPY nothere /x\n' >"$TEST_TMP/f/Containerfile"
	run_cella build "$TEST_TMP/f"
	assert_rc 125
	assert_eq "$before" "$(store_count)" "records, layers, build dirs and containers as before"
	# the temp dir of a build that was killed goes with the next build
	mkdir -p "$CELLA_ROOT/build/tmp-killedbuild/step-3/upper"
	run_cella build -q "$CTX"
	assert_ok
	assert_eq "" "$(find "$CELLA_ROOT/build" -mindepth 1 -maxdepth 1 2>/dev/null)" "a stale build temp dir is swept"
}

test_heredocs_shell_onbuild_file() {
	build_env
	mkdir -p "$TEST_TMP/h"
	cat >"$TEST_TMP/h/other.df" <<'ZZZ'
FROM busybox
ARG NAME=world
SHELL ["/bin/sh", "-ec"]
RUN <<EOF
echo "heredoc-run $NAME" > /h1
echo line2 >> /h1
EOF
COPY <<EOT /etc/greeting
hello ${NAME}
EOT
RUN cat <<X > /h2
inside
X
ONBUILD RUN echo child
ENTRYPOINT ["cat"]
CMD ["/h1", "/h2", "/etc/greeting"]
ZZZ
	run_cella build -f "$TEST_TMP/h/other.df" -t hd --build-arg NAME=you --label added=yes "$TEST_TMP/h"
	assert_ok
	local id
	id=$(printf '%s\n' "$OUT" | tail -n1)
	run_cella run --rm hd
	assert_ok
	assert_eq "heredoc-run you
line2
inside
hello you" "$OUT" "RUN <<EOF runs its body, COPY <<EOT writes its (expanded) body, the shell reads a heredoc"
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c.get("Shell") == ["/bin/sh", "-ec"], c
assert c.get("OnBuild") == ["RUN echo child"], c
assert c.get("Labels", {}).get("added") == "yes", c
' "$CELLA_ROOT/blobs/sha256/${id#sha256:}" || fail "SHELL, ONBUILD and --label are in the config"
	run_cella image history hd
	assert_ok
	assert_contains "$OUT" "ONBUILD RUN echo child" "history has the config steps"
}

# ONBUILD: the base's triggers run right after the child's FROM (in the child's context), and the
# child does not pass them on; `image inspect` shows OnBuild, StopSignal, Healthcheck.
test_onbuild_triggers_and_inspect() {
	build_env
	mkdir -p "$TEST_TMP/ob/base" "$TEST_TMP/ob/child" "$TEST_TMP/ob/grand"
	cat >"$TEST_TMP/ob/base/Containerfile" <<'ZZZ'
FROM busybox
ONBUILD RUN echo "TRIGGER-RAN-$((40+2))" && echo trig > /onbuild-ran
ONBUILD COPY child.txt /from-child-context
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=7s --retries=2 CMD test -e /onbuild-ran
ZZZ
	run_cella build -t obbase "$TEST_TMP/ob/base"
	assert_ok
	assert_not_contains "$OUT" "TRIGGER-RAN-42" "the base's own build does not run its triggers"
	run_cella image inspect -f '{{.Config.OnBuild}} {{.Config.StopSignal}} {{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}}' obbase
	assert_ok
	assert_eq '["RUN echo \"TRIGGER-RAN-$((40+2))\" && echo trig > /onbuild-ran","COPY child.txt /from-child-context"] SIGUSR1 ["CMD-SHELL","test -e /onbuild-ran"] 7000000000' "$OUT" \
		"inspect shows OnBuild, StopSignal, Healthcheck"
	echo from-child >"$TEST_TMP/ob/child/child.txt"
	printf 'FROM obbase\nRUN echo child-step > /child\n' >"$TEST_TMP/ob/child/Containerfile"
	run_cella build -t obchild "$TEST_TMP/ob/child"
	assert_ok
	assert_contains "$OUT" "TRIGGER-RAN-42" "the trigger runs in the child's build"
	assert_contains "$OUT" "--> ONBUILD trigger: COPY child.txt /from-child-context" "each trigger is shown"
	run_cella run --rm obchild cat /onbuild-ran /from-child-context /child
	assert_ok
	assert_eq "trig
from-child
child-step" "$OUT" "RUN and COPY triggers ran before the child's own steps, COPY from the child's context"
	run_cella image inspect -f '{{.Config.OnBuild}} {{.Config.StopSignal}}' obchild
	assert_ok
	assert_eq "<no value> SIGUSR1" "$OUT" "the triggers are not inherited; the stop signal is"
	# the grandchild runs nothing of them
	printf 'FROM obchild\nRUN echo grand\n' >"$TEST_TMP/ob/grand/Containerfile"
	run_cella build "$TEST_TMP/ob/grand"
	assert_ok
	assert_not_contains "$OUT" "TRIGGER-RAN-42" "triggers run one generation only"
	assert_not_contains "$OUT" "ONBUILD trigger" "no trigger in the grandchild"
	# a failing trigger fails the child's build at its FROM, and names the trigger
	printf 'FROM busybox\nONBUILD RUN exit 4\n' >"$TEST_TMP/ob/base/Containerfile"
	run_cella build -q -t obbad "$TEST_TMP/ob/base"
	assert_ok
	printf 'FROM obbad\nRUN echo never\n' >"$TEST_TMP/ob/child/Containerfile"
	run_cella build "$TEST_TMP/ob/child"
	assert_cella_error 125 "Containerfile:1: FROM obbad: ONBUILD trigger"
	assert_contains "$ERR" "RUN exit 4" "the trigger is named"
	assert_contains "$ERR" "status 4" "with its exit status"
}

# --platform: this machine's is accepted (the automatic ARGs say it), another is refused naming
# it and what is supported, for the option and for FROM --platform=.
test_platform() {
	build_env
	local arch
	case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) skip "the test knows amd64 and arm64 hosts only" ;; esac
	mkdir -p "$TEST_TMP/p"
	cat >"$TEST_TMP/p/Containerfile" <<'ZZZ'
FROM --platform=$BUILDPLATFORM busybox
ARG TARGETARCH
ARG TARGETPLATFORM
RUN echo "arch=$TARGETARCH platform=$TARGETPLATFORM"
ZZZ
	run_cella build --platform "linux/$arch" "$TEST_TMP/p"
	assert_ok
	assert_contains "$OUT" "arch=$arch platform=linux/$arch" "the host's platform builds; TARGETARCH/TARGETPLATFORM are set"
	local other=arm64
	[ "$arch" = amd64 ] || other=amd64
	run_cella build --platform "linux/$other" "$TEST_TMP/p"
	assert_cella_error 125 "--platform \`linux/$other\`: not supported"
	assert_contains "$ERR" "linux/$arch" "names the platform that is supported"
	run_cella build --platform "windows/$arch" "$TEST_TMP/p"
	assert_cella_error 125 "--platform \`windows/$arch\`"
	run_cella build --platform bogus "$TEST_TMP/p"
	assert_cella_error 125 "expected OS/ARCH"
	printf 'FROM --platform=linux/%s busybox\nRUN true\n' "$other" >"$TEST_TMP/p/Containerfile"
	run_cella build "$TEST_TMP/p"
	assert_cella_error 125 "Containerfile:1: FROM --platform=linux/$other busybox"
	assert_contains "$ERR" "not supported" "FROM --platform= is checked too"
	run_cella build --help
	assert_ok
	assert_contains "$OUT" "--platform" "--help lists --platform"
	assert_contains "$OUT" "--pull" "--help lists --pull"
}

# A tiny http server on 127.0.0.1 serving DIR; sets HTTP_PORT, stopped when the test's shell exits.
http_serve() {
	python3 - "$1" "$TEST_TMP/http.port" <<'PY' >"$TEST_TMP/http.log" 2>&1 &
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
open(sys.argv[2] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
PY
	HTTP_PID=$!
	trap 'kill $HTTP_PID 2>/dev/null; wait $HTTP_PID 2>/dev/null' EXIT
	for _ in $(seq 100); do
		[ -s "$TEST_TMP/http.port" ] && break
		sleep 0.1
	done
	HTTP_PORT=$(cat "$TEST_TMP/http.port" 2>/dev/null) || fail "the http server did not start: $(cat "$TEST_TMP/http.log")"
}

# ADD of an http URL: downloaded (libcurl, through the image tool), mtime from Last-Modified,
# --checksum verified, not unpacked, cached by content.
test_add_url() {
	build_env
	require_cmd python3
	mkdir -p "$TEST_TMP/www/d" "$TEST_TMP/u"
	echo "remote content" >"$TEST_TMP/www/d/file.txt"
	touch -d '2021-03-04 05:06:07 UTC' "$TEST_TMP/www/d/file.txt"
	cp "$CTX/arch.tar.gz" "$TEST_TMP/www/arch.tar.gz"
	http_serve "$TEST_TMP/www"
	local sum
	sum=$(sha256sum "$TEST_TMP/www/d/file.txt" | cut -d' ' -f1)
	cat >"$TEST_TMP/u/Containerfile" <<ZZZ
FROM busybox
ADD http://127.0.0.1:$HTTP_PORT/d/file.txt /opt/
ADD --checksum=sha256:$sum http://127.0.0.1:$HTTP_PORT/d/file.txt?x=1 /named.txt
ADD http://127.0.0.1:$HTTP_PORT/arch.tar.gz /tars/
RUN echo "URL-RUN-\$((40+2))"
ZZZ
	run_cella build -t urlimg "$TEST_TMP/u"
	assert_ok
	assert_contains "$OUT" "URL-RUN-42"
	run_cella run --rm urlimg sh -c 'cat /opt/file.txt /named.txt; stat -c "%Y %a %u:%g" /opt/file.txt; ls /tars'
	assert_ok
	assert_eq "remote content
remote content
$(date -d '2021-03-04 05:06:07 UTC' +%s) 600 0:0
arch.tar.gz" "$OUT" "the file downloaded, named by the URL's path, mtime from Last-Modified, mode 600, owned by root, a remote archive not unpacked"
	run_cella build "$TEST_TMP/u"
	assert_ok
	assert_not_contains "$OUT" "URL-RUN-42" "unchanged remote files: all cached"
	echo "new remote content" >"$TEST_TMP/www/d/file.txt"
	sum=$(sha256sum "$TEST_TMP/www/d/file.txt" | cut -d' ' -f1)
	printf 'FROM busybox\nADD http://127.0.0.1:%s/d/file.txt /opt/\nRUN echo "URL-RUN-$((40+2))"\n' "$HTTP_PORT" >"$TEST_TMP/u/Containerfile"
	run_cella build -t urlimg2 "$TEST_TMP/u"
	assert_ok
	assert_contains "$OUT" "URL-RUN-42" "a changed remote file invalidates the cache"
	run_cella run --rm urlimg2 cat /opt/file.txt
	assert_eq "new remote content" "$OUT"
	# a wrong checksum, a 404, a mix with local files: errors naming FILE:LINE, and nothing left
	local before
	before=$(store_count)
	printf 'FROM busybox\nADD --checksum=sha256:%064d http://127.0.0.1:%s/d/file.txt /x\n' 0 "$HTTP_PORT" >"$TEST_TMP/u/Containerfile"
	run_cella build "$TEST_TMP/u"
	assert_cella_error 125 "checksum mismatch"
	assert_contains "$ERR" "Containerfile:2: ADD --checksum" "names the step"
	assert_contains "$ERR" "sha256:$sum" "names the content's digest"
	printf 'FROM busybox\nADD http://127.0.0.1:%s/nothere /x\n' "$HTTP_PORT" >"$TEST_TMP/u/Containerfile"
	run_cella build "$TEST_TMP/u"
	assert_cella_error 125 "HTTP 404"
	assert_contains "$ERR" "Containerfile:2: ADD http://127.0.0.1:$HTTP_PORT/nothere /x"
	echo local >"$TEST_TMP/u/local.txt"
	printf 'FROM busybox\nADD http://127.0.0.1:%s/d/file.txt local.txt /x/\n' "$HTTP_PORT" >"$TEST_TMP/u/Containerfile"
	run_cella build "$TEST_TMP/u"
	assert_cella_error 125 "a URL and local sources in one ADD"
	printf 'FROM busybox\nADD --checksum=sha256:%064d local.txt /x\n' 0 >"$TEST_TMP/u/Containerfile"
	run_cella build "$TEST_TMP/u"
	assert_cella_error 125 "--checksum is for an ADD of a URL"
	printf 'FROM busybox\nCOPY http://127.0.0.1:%s/d/file.txt /x\n' "$HTTP_PORT" >"$TEST_TMP/u/Containerfile"
	run_cella build "$TEST_TMP/u"
	assert_cella_error 125 "COPY does not download URLs"
	assert_eq "$before" "$(store_count)" "failed downloads leave nothing"
	assert_eq "" "$(find "$CELLA_ROOT/build" -mindepth 1 -maxdepth 1 2>/dev/null)" "no build temp dir left"
}

# A built image pushed to a real registry, read by skopeo (inspect, copy: every blob's digest
# checked) and pulled back by cella with the same manifest digest, then run; --pull takes the
# registry's image again even when the store has the name.
test_build_push_pull_roundtrip_and_pull_option() {
	build_env
	. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
	registry_start plain
	run_cella build -t "$REG_HOST/built/app:1" "$CTX"
	assert_ok
	local id d
	id=$(printf '%s\n' "$OUT" | tail -n1)
	run_cella push "$REG_HOST/built/app:1"
	assert_ok
	d=$OUT
	assert_match "$d" '^sha256:[0-9a-f]{64}$' "push prints the manifest digest"
	run_cmd skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_HOST/built/app:1"
	assert_ok
	assert_eq "$d" "$OUT" "skopeo reads the digest cella printed"
	run_cmd skopeo inspect --tls-verify=false --config "docker://$REG_HOST/built/app:1"
	assert_ok
	assert_contains "$OUT" '"org.test.k": "v"' "the config's labels reached the registry"
	run_cmd skopeo copy --quiet --src-tls-verify=false "docker://$REG_HOST/built/app:1" "oci:$TEST_TMP/layout:1"
	assert_ok
	# pulled back into a fresh store: the same manifest, the same image id, and it runs
	CELLA_ROOT="$TEST_TMP/data2"
	run_cella pull "$REG_HOST/built/app:1"
	assert_ok
	assert_contains "$ERR" "Digest: $d" "cella pull gets the manifest cella pushed"
	run_cella image inspect -f '{{.Id}}' "$REG_HOST/built/app:1"
	assert_eq "$id" "$OUT" "the same config: the same image id"
	run_cella run --rm "$REG_HOST/built/app:1"
	assert_ok
	assert_eq "bar
hi" "$OUT" "the pulled image runs as built"
	# --pull: the store names a local image that the registry does not have under that name
	registry_push_busybox base/img v1 gzip >/dev/null
	mkdir -p "$TEST_TMP/nb" "$TEST_TMP/pl"
	printf 'FROM busybox\nRUN echo marker-v2 > /etc/marker\n' >"$TEST_TMP/nb/Containerfile"
	run_cella build -q -t "$REG_HOST/base/img:v1" "$TEST_TMP/nb"
	assert_ok
	printf 'FROM %s/base/img:v1\nRUN cat /etc/marker 2>/dev/null || echo no-marker\n' "$REG_HOST" >"$TEST_TMP/pl/Containerfile"
	run_cella build "$TEST_TMP/pl"
	assert_ok
	assert_contains "$OUT" "marker-v2" "without --pull the store's image is used"
	run_cella build --pull "$TEST_TMP/pl"
	assert_ok
	assert_contains "$OUT" "no-marker" "--pull takes the registry's image"
	run_cella image inspect -f '{{.Store.Manifest}}' "$REG_HOST/base/img:v1"
	assert_eq "$REG_DIGEST" "$OUT" "the store's name now points at the registry's manifest"
	# a --pull that cannot reach the registry fails naming the step
	registry_stop
	run_cella build --pull "$TEST_TMP/pl"
	assert_cella_error 125 "Containerfile:1: FROM $REG_HOST/base/img:v1: --pull"
}

# RUN --mount: type=cache (a dir under the data root kept across builds, not in the layer),
# type=bind (the context read-only by default, a stage, rw writes dropped), type=tmpfs; --network.
test_run_mount_and_network() {
	build_env
	mkdir -p "$TEST_TMP/m/src"
	echo ctx-file >"$TEST_TMP/m/src/in.txt"
	cat >"$TEST_TMP/m/Containerfile" <<'ZZZ'
FROM busybox AS tool
RUN mkdir /out && echo from-stage > /out/s.txt

FROM busybox
ARG N=1
RUN --mount=type=cache,target=/cache,id=c1,sharing=locked echo "run-$N" >> /cache/log && cat /cache/log | tr '\n' ' ' > /seen
RUN --mount=type=bind,source=src,target=/ctx cat /ctx/in.txt > /ctxcopy && ! touch /ctx/new 2>/dev/null
RUN --mount=type=bind,from=tool,source=/out,target=/st cat /st/s.txt > /stcopy
RUN --mount=type=bind,source=src,target=/rwctx,rw echo written > /rwctx/w.txt && cat /rwctx/w.txt > /rwseen
RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/t && grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs-ok > /tmpfsseen
RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ' > /nets
ZZZ
	run_cella build -t mnt "$TEST_TMP/m"
	assert_ok
	run_cella run --rm mnt sh -c 'cat /seen; echo; cat /ctxcopy /stcopy /rwseen /tmpfsseen /nets'
	assert_ok
	assert_eq "run-1 
ctx-file
from-stage
written
tmpfs-ok
lo " "$OUT" "cache, bind from the context and a stage, rw bind, tmpfs, --network=none (only lo)"
	run_cella run --rm mnt sh -c 'for d in /cache /ctx /st /rwctx /scratch; do ls -A "$d" 2>/dev/null; done | wc -l'
	assert_eq "0" "$OUT" "nothing of the mounts in the image (empty mount points at most)"
	assert_eq "in.txt" "$(cd "$TEST_TMP/m/src" && echo *)" "the context is not written (rw writes go to a copy)"
	# the cache dir lives on under the data root: a second build (another ARG: the RUN runs) sees it
	run_cella build --build-arg N=2 -t mnt2 "$TEST_TMP/m"
	assert_ok
	run_cella run --rm mnt2 cat /seen
	assert_eq "run-1 run-2 " "$OUT" "the cache mount kept the first build's file"
	# a changed bind-mounted context file runs its RUN again
	run_cella build --build-arg N=2 "$TEST_TMP/m"
	assert_ok
	assert_eq 7 "$(printf '%s\n' "$OUT" | grep -c -- '--> Using cache')" "unchanged: every RUN cached"
	echo ctx-file2 >"$TEST_TMP/m/src/in.txt"
	run_cella build --build-arg N=2 -t mnt3 "$TEST_TMP/m"
	assert_ok
	run_cella run --rm mnt3 cat /ctxcopy
	assert_eq "ctx-file2" "$OUT" "the bind mount's content is part of the cache key"
	# errors: unsupported types and options are named
	printf 'FROM busybox\nRUN --mount=type=secret,id=x cat /run/secrets/x\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "Containerfile:2: RUN --mount=type=secret,id=x cat /run/secrets/x: --mount type=secret: not supported (supported: bind, cache, tmpfs)"
	printf 'FROM busybox\nRUN --mount=type=ssh true\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "--mount type=ssh: not supported"
	printf 'FROM busybox\nRUN --mount=type=cache,target=/c,bogus=1 true\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "unknown option \`bogus\`"
	printf 'FROM busybox\nRUN --mount=type=bind,source=../..,target=/x true\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "Containerfile:2"
	assert_contains "$ERR" "--mount source \`../..\`: outside the build context" "a bind source outside the context is refused"
	printf 'FROM busybox\nRUN --network=bridge true\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "--network=bridge: none, host or default"
	printf 'FROM busybox\nRUN --security=insecure true\n' >"$TEST_TMP/m/Containerfile"
	run_cella build "$TEST_TMP/m"
	assert_cella_error 125 "--security: not supported for RUN"
}

# The layer cache outlives `image prune` (its images are kept though nameless) and `image prune -a`;
# `system df` counts it; `system prune -a` removes it, cache mounts included.
test_cache_survives_image_prune() {
	build_env
	printf 'FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f && echo "PRUNE-RUN-$((40+2))"\n' >"$CTX/Containerfile.p"
	run_cella build -q -f "$CTX/Containerfile.p" "$CTX"
	assert_ok
	run_cella build -t pr "$CTX"
	assert_ok
	run_cella image prune
	assert_ok
	run_cella image prune -a
	assert_ok
	run_cella build "$CTX"
	assert_ok
	assert_not_contains "$OUT" "-42" "after image prune (-a): every step still cached"
	run_cella build -f "$CTX/Containerfile.p" "$CTX"
	assert_not_contains "$OUT" "PRUNE-RUN-42" "the cache-mount step too"
	run_cella system df
	assert_ok
	assert_match "$OUT" 'Build Cache' "system df lists the build cache"
	[ -n "$(find "$CELLA_ROOT/build-cache/mounts" -type f 2>/dev/null)" ] || fail "the cache mount's file is under build-cache/mounts"
	run_cella system prune -a
	assert_ok
	assert_eq "" "$(ls -A "$CELLA_ROOT/build-cache" 2>/dev/null)" "system prune -a removes the cache and the cache mounts"
	run_cella build "$CTX"
	assert_ok
	assert_contains "$OUT" "RAN-FINAL-42" "after system prune -a the steps run again"
}

# Independent stages are built two at a time: each RUN waits (30 s at most) for the other stage's
# RUN to have started, through a shared cache mount; built one after the other, the first would
# time out. A failing parallel stage fails the build naming its step, and leaves nothing.
test_parallel_stages() {
	build_env
	mkdir -p "$TEST_TMP/par"
	cat >"$TEST_TMP/par/Containerfile" <<'ZZZ'
FROM busybox AS a
RUN --mount=type=cache,target=/sync,id=rv touch /sync/a && for i in $(seq 300); do [ -e /sync/b ] && break; sleep 0.1; done && [ -e /sync/b ] && echo a-saw-b > /a

FROM busybox AS b
RUN --mount=type=cache,target=/sync,id=rv touch /sync/b && for i in $(seq 300); do [ -e /sync/a ] && break; sleep 0.1; done && [ -e /sync/a ] && echo b-saw-a > /b

FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
CMD ["cat", "/a", "/b"]
ZZZ
	run_cella build -t par "$TEST_TMP/par"
	assert_ok
	assert_match "$OUT" '^\[1/3\] STEP 1/8: FROM busybox AS a$' "stage a's steps keep their numbers"
	assert_match "$OUT" '^\[2/3\] STEP 3/8: FROM busybox AS b$' "stage b's too"
	run_cella run --rm par
	assert_ok
	assert_eq "a-saw-b
b-saw-a" "$OUT" "both stages ran at the same time"
	run_cella build "$TEST_TMP/par"
	assert_ok
	assert_eq 4 "$(printf '%s\n' "$OUT" | grep -c -- '--> Using cache')" "a rebuild: every step cached (the parallel stages' too)"
	# a failing parallel stage
	printf 'FROM busybox AS a\nRUN exit 5\nFROM busybox AS b\nRUN echo b > /b\nFROM busybox\nCOPY --from=a /etc/passwd /p\nCOPY --from=b /b /b\n' >"$TEST_TMP/par/Containerfile"
	run_cella build "$TEST_TMP/par"
	assert_cella_error 125 "Containerfile:2: RUN exit 5: the command exited with status 5"
	assert_eq "" "$(find "$CELLA_ROOT/build" -mindepth 1 -maxdepth 1 2>/dev/null)" "no build temp dir left"
	assert_eq "" "$(find "$CELLA_ROOT/containers" -mindepth 1 -maxdepth 1 2>/dev/null)" "no container left"
}

# --backend vm: RUN steps in a microVM (QEMU; TCG here), the guest's root handed back as a tar
# stream and turned into the step's layer (added, changed, deleted as whiteouts, owners and modes);
# the same Containerfile built with ns gives the same layer. A failing RUN in the VM: its output and
# exit status, no image, no layer, no VM work dir; check_no_leftovers: no QEMU (or other process),
# tap, lease or mount left by either build.
vm_build_require() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
	[ -x /usr/sbin/mkfs.ext4 ] || skip "mkfs.ext4 not installed (apt-get install e2fsprogs)"
	[ -x "$(dirname "$CELLA")/cella-vminit" ] || fail "no cella-vminit next to $CELLA (make builds it; the runner copies it)"
}

# The last layer of an image as lines: type+mode, owner, size, path, link text, content hash.
last_layer_tree() {
	run_cella image inspect "$1"
	assert_ok
	printf '%s\n' "$OUT" | python3 -c '
import hashlib, json, os, stat, sys
top = json.load(sys.stdin)[0]["Store"]["Layers"][-1]["Path"]
for d, dirs, files in os.walk(top):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        extra = ""
        if stat.S_ISLNK(st.st_mode):
            extra = os.readlink(p)
        elif stat.S_ISCHR(st.st_mode):
            extra = "dev %d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        elif stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK):
            extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
        size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
        print(stat.filemode(st.st_mode), st.st_uid, st.st_gid, size, os.path.relpath(p, top), extra)
' | sort -k5
}

test_build_backend_vm() {
	vm_build_require
	require_cmd python3
	build_env
	mkdir -p "$TEST_TMP/v/src"
	echo from-context >"$TEST_TMP/v/src/in.txt"
	cat >"$TEST_TMP/v/Containerfile" <<'ZZZ'
FROM busybox
RUN --mount=type=bind,source=src,target=/ctx --mount=type=cache,target=/cache,id=vmtest echo "RAN-IN-VM-$((40+2))" && \
    echo added > /added && cat /ctx/in.txt > /ctxcopy && echo vm:x:1234:567::/home/vm:/bin/sh >> /etc/passwd && \
    rm /bin/vi && rmdir /srv && mkdir -p /d/e && echo x > /d/e/f && chown -R 1234:567 /d && chmod 0640 /d/e/f && \
    chmod 0700 /home && ln -s /added /d/link && mkfifo /d/fifo && echo c >> /cache/log && \
    echo h > /d/h1 && ln /d/h1 /d/h2
ZZZ
	check_no_leftovers run_cella build --backend vm -t vmimg "$TEST_TMP/v"
	assert_ok
	assert_contains "$OUT" "RAN-IN-VM-42" "the RUN's output is streamed"
	run_cella run --rm vmimg sh -c 'cat /added /ctxcopy; tail -n1 /etc/passwd; ls /bin/vi /srv 2>&1 | wc -l;
		stat -c "%u:%g %a" /d/e/f /d /home; readlink /d/link; ls -A /cache /ctx 2>/dev/null | wc -l;
		stat -c "%h %i" /d/h1 /d/h2 | sort -u'
	assert_ok
	assert_eq "added
from-context
vm:x:1234:567::/home/vm:/bin/sh
2
1234:567 640
1234:567 755
0:0 700
/added
0" "$(printf '%s\n' "$OUT" | sed '$d')" "the image has the added and changed files, not the deleted ones, the owners and modes, no mount's files"
	assert_match "$(printf '%s\n' "$OUT" | tail -n1)" '^2 [0-9]+$' "a hard link made by the RUN kept: one inode with two names"
	local vmtree nstree
	vmtree=$(last_layer_tree vmimg)
	assert_contains "$vmtree" "bin/vi dev 0:0" "a deleted file is a whiteout in the layer"
	assert_not_contains "$vmtree" "lost+found" "the guest disk's lost+found is not in the layer"
	assert_not_contains "$vmtree" "resolv.conf" "the VM's resolv.conf is not in the layer"
	run_cella build -t nsimg "$TEST_TMP/v"
	assert_ok
	assert_not_contains "$OUT" "Using cache" "the ns build does not take the vm build's layer (the backend is in the key)"
	nstree=$(last_layer_tree nsimg)
	assert_eq "$nstree" "$vmtree" "the vm backend's layer has the same tree as the ns backend's"
	# the vm build again: cached
	run_cella build --backend vm -t vmimg "$TEST_TMP/v"
	assert_ok
	assert_contains "$OUT" "Using cache" "an unchanged vm step is cached"
	# a failing RUN in the VM
	local before
	before=$(store_count)
	printf 'FROM busybox\nRUN echo VM-FAILING-$((1+1)); exit 3\n' >"$TEST_TMP/v/Containerfile"
	check_no_leftovers run_cella build --backend vm -t vmfail "$TEST_TMP/v"
	assert_cella_error 125 'Containerfile:2: RUN echo VM-FAILING-$((1+1)); exit 3: the command exited with status 3'
	assert_contains "$OUT" "VM-FAILING-2" "the failing step's output"
	assert_eq "$before" "$(store_count)" "no image, layer, build dir or container"
	assert_eq "" "$(find "$CELLA_ROOT/vm" -maxdepth 1 -name 'run-*' 2>/dev/null)" "no VM work dir left"
	run_cella images
	assert_not_contains "$OUT" "vmfail" "no image named"
	# the backends build cannot use
	run_cella build --backend proot "$TEST_TMP/v"
	assert_cella_error 125 "--backend proot: not supported by cella build"
	run_cella build --backend nope "$TEST_TMP/v"
	assert_cella_error 125 "--backend \`nope\`: unknown"
}
