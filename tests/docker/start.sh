# Sourced by tests/run.sh (or by a developer's shell before `cargo test --test cli docker`):
# starts a Docker engine of the suite's own, builds the test image, exports DOCKER_HOST and
# CLUTCH_TEST_DOCKER_IMAGE, and defines stop_docker.
#
# The engine is Debian's dockerd (docker.io, Engine 20.10, API 1.41) in a directory of its own,
# ~/.cache/clutch-docker (CLUTCH_DOCKER_DIR), so it never meets a system daemon; its data
# directory is kept between runs, so the image is built once. It runs with
#   --iptables=false --ip-forward=false
# so the suite never rewrites the host's firewall or forwarding: a container with network=any
# reaches the host over the docker0 bridge and nothing beyond it (see docs/runtime-docker.md).
#
# The test image is `FROM scratch` with the static busybox of busybox-static, linked as sh,
# echo, cat, nc, wget, sha256sum…: a few megabytes, built from files on this machine, no
# registry involved.
#
# stop_docker fails (returns 1) when a container labelled clutch.run is left: every run must
# remove its container, whatever happened to it.

docker_dir="${CLUTCH_DOCKER_DIR:-$HOME/.cache/clutch-docker}"

_docker() { docker -H "unix://$docker_dir/docker.sock" "$@"; }

stop_docker() {
    local status=0 left pid
    if [ -S "$docker_dir/docker.sock" ] && _docker version >/dev/null 2>&1; then
        left="$(_docker ps -aq --filter label=clutch.run)"
        if [ -n "$left" ]; then
            echo "error: the tests left containers labelled clutch.run behind (every run must remove its container):" >&2
            _docker ps -a --filter label=clutch.run >&2
            # shellcheck disable=SC2086
            _docker rm -f $left >/dev/null 2>&1 || true
            status=1
        fi
    fi
    pid="$(cat "$docker_dir/docker.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            [ -d "/proc/$pid" ] || break
            sleep 0.2
        done
        if [ -d "/proc/$pid" ]; then
            echo "error: dockerd ($pid) did not stop within 30s; see $docker_dir/dockerd.log" >&2
            status=1
        fi
    fi
    return "$status"
}

_start_docker() {
    local need=() sudo="" pid
    command -v dockerd >/dev/null || need+=(docker.io)
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
    if ((${#need[@]})); then
        echo "installing ${need[*]}"
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
    fi
    command -v docker >/dev/null || { echo "error: no docker client on PATH after installing docker.io" >&2; return 1; }

    mkdir -p "$docker_dir"
    pid="$(cat "$docker_dir/docker.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -d "/proc/$pid" ] && _docker version >/dev/null 2>&1; then
        echo "reusing the engine already running at $docker_dir (pid $pid)"
    else
        rm -f "$docker_dir/docker.sock" "$docker_dir/docker.pid"
        # Started in its own session (setsid) so a Ctrl-C to the suite does not reach it first.
        setsid dockerd \
            --host "unix://$docker_dir/docker.sock" \
            --data-root "$docker_dir/data" \
            --exec-root "$docker_dir/exec" \
            --pidfile "$docker_dir/docker.pid" \
            --iptables=false --ip-forward=false \
            >"$docker_dir/dockerd.log" 2>&1 </dev/null &
        local up=0
        for _ in $(seq 1 150); do
            if [ -S "$docker_dir/docker.sock" ] && _docker version >/dev/null 2>&1; then
                up=1
                break
            fi
            sleep 0.2
        done
        if [ "$up" = 0 ]; then
            echo "error: dockerd did not answer on $docker_dir/docker.sock within 30s; its log ends with:" >&2
            tail -n 20 "$docker_dir/dockerd.log" >&2 || true
            return 1
        fi
    fi
    export DOCKER_HOST="unix://$docker_dir/docker.sock"
    echo "engine: $(_docker version --format 'Docker Engine {{.Server.Version}}, API {{.Server.APIVersion}}')"

    export CLUTCH_TEST_DOCKER_IMAGE="clutch-test/busybox:1"
    if ! _docker image inspect "$CLUTCH_TEST_DOCKER_IMAGE" >/dev/null 2>&1; then
        local context="$docker_dir/image"
        rm -rf "$context"
        mkdir -p "$context/bin"
        cp /bin/busybox "$context/bin/busybox"
        cat >"$context/Dockerfile" <<'EOF'
FROM scratch
COPY bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
EOF
        # The legacy builder: it needs no buildx plugin and works with every client version.
        DOCKER_BUILDKIT=0 _docker build -q -t "$CLUTCH_TEST_DOCKER_IMAGE" "$context" >/dev/null
    fi
    echo "test image: $CLUTCH_TEST_DOCKER_IMAGE"
}

_start_docker
