# shellcheck shell=bash disable=SC2016,SC2154
# passes: root user
# passes-why: the rootless pass checks that COPY --chown and RUN keep the owners the container sees
# `cella build`: a Containerfile run step by step into an image (src/engine/build.c), over the
# embedded busybox (no network): multi-stage, the config instructions, COPY/ADD from the context
# and from a stage, the layer cache, --no-cache, --build-arg, --target, .dockerignore, and the
# failures, which leave no image, layer, temp dir or container behind.
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
