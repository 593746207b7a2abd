#!/usr/bin/env bash
# Builds NextNum's image with podman, runs its CMD under chroot (no Docker daemon needed), reads examples/ via /predict.
#
# Usage, as root, from anywhere in the repository:
#   bench/docker_smoke.sh
# Needs podman and mmdebstrap (Debian: apt-get install podman mmdebstrap), curl, and a host Python 3.11
# with pip and gradio_client (the project's virtual environment will do). It installs nothing itself.
# Settings, all optional, from the environment:
#   PYTHON=python3                          host Python 3.11: fills wheelhouse/, drives /predict
#   BASE=localhost/nextnum-base:bookworm    base image; made from Debian bookworm with mmdebstrap when missing
#   IMAGE=localhost/nextnum:smoke           tag of the image built
#   OUT=bench/out/docker                    base tarball, download, build and app logs, result.json
#   NO_CACHE=1                              build without podman's layer cache (a from-scratch build time)
#   TRAINING=1                              the image with PyTorch (the Dockerfile's build argument; default 0:
#                                           the serving image, onnxruntime only, from requirements-serve.txt)
#   STARTUP_TIMEOUT=600                     seconds to wait for the app's first /gradio_api/info
# It prints image size, build time, seconds from starting the CMD to the first answer, examples read
# right, the uid the app ran as, then one line of JSON with the same figures. Exit status 0 only when
# every example is read right by an app running as non-root and listening on 0.0.0.0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root: the build context
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
BASE=${BASE:-localhost/nextnum-base:bookworm}
IMAGE=${IMAGE:-localhost/nextnum:smoke}
OUT=${OUT:-bench/out/docker}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-600}
TRAINING=${TRAINING:-0}
REQUIREMENTS=requirements-serve.txt
[ "$TRAINING" = 1 ] && REQUIREMENTS=requirements.txt
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

say() { printf '%s\n' "--- $*" >&2; }
die() { printf 'docker_smoke: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }  # seconds since $1

# ------------------------------------------------------------------ what the host must have
[ "$(id -u)" -eq 0 ] || die "run as root: the image is mounted and its CMD run under chroot"
for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "'$tool' not found: this script needs podman and mmdebstrap (Debian: apt-get install -y podman mmdebstrap)"
done
for tool in chroot curl ss mount umount awk; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; install it first"
done
# The wheels must suit the image's Python (Debian bookworm's and python:3.11-slim's are both 3.11).
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
    || die "PYTHON=$PYTHON is not Python 3.11; point PYTHON at one (e.g. the project's virtual environment)"
"$PYTHON" -c 'import gradio_client' 2>/dev/null \
    || die "PYTHON=$PYTHON has no gradio_client; use the project's virtual environment (pip install -r requirements.txt)"

# Podman's defaults for these limits make the build fail on some VMs; these values are ample.
BUILD_FLAGS=(--isolation chroot --network=host --ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

# ------------------------------------------------------------------ base image
if ! podman image exists "$BASE"; then
    tarball="$OUT/nextnum-base-bookworm.tar"
    say "making the base image $BASE (Debian bookworm, Python 3.11) with mmdebstrap"
    # Debian's Python refuses pip installs outside a venv (EXTERNALLY-MANAGED); the image's installs
    # go into a venv anyway, but the marker is dropped so the base behaves like python:3.11-slim.
    # shellcheck disable=SC2016  # "$1" is the hook's argument (the new root), expanded by mmdebstrap's shell
    nice -n 19 mmdebstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
        bookworm "$tarball"
    podman import "$tarball" "$BASE" >/dev/null
fi

# ------------------------------------------------------------------ wheelhouse
# pip download fetches only what wheelhouse/ lacks: this fills it the first time and keeps it in step with
# the requirements after. A failed download stops here, before a build from a partial wheelhouse.
say "filling wheelhouse/ for $REQUIREMENTS (log: $OUT/pip-download.log)"
if ! nice -n 19 "$PYTHON" -m pip download -r "$REQUIREMENTS" -d wheelhouse >"$OUT/pip-download.log" 2>&1; then
    tail -n 20 "$OUT/pip-download.log" >&2
    die "pip download failed; see $OUT/pip-download.log"
fi
say "wheelhouse/: $(find wheelhouse -type f | wc -l) files, $(du -sh wheelhouse | cut -f1)"

# ------------------------------------------------------------------ build
cache=()
[ "${NO_CACHE:-0}" = 1 ] && cache=(--no-cache)
say "building $IMAGE from $BASE (log: $OUT/build.log)"
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
t_build=$(date +%s.%N)
if ! nice -n 19 podman build "${BUILD_FLAGS[@]}" "${cache[@]}" --format docker \
        --build-arg "BASE=$BASE" --build-arg "TRAINING=$TRAINING" -t "$IMAGE" . >"$OUT/build.log" 2>&1; then
    tail -n 30 "$OUT/build.log" >&2
    die "the build failed; see $OUT/build.log"
fi
build_s=$(elapsed "$t_build")
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")

# The image's Env, WorkingDir, User, Cmd and HEALTHCHECK command, NUL-separated for bash arrays.
inspect() {
    podman image inspect "$IMAGE" | "$PYTHON" -c '
import json, sys
image = json.load(sys.stdin)[0]
cfg = image["Config"]
what = sys.argv[1]
if what == "env":
    items = cfg.get("Env") or []
elif what == "cmd":
    items = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
elif what == "health":  # ["CMD-SHELL", "..."] becomes sh -c "...", ["CMD", ...] stays as it is
    test = (image.get("Healthcheck") or cfg.get("Healthcheck") or {}).get("Test") or []  # podman: top level
    items = ["/bin/sh", "-c", test[1]] if test[:1] == ["CMD-SHELL"] else test[1:]
else:
    items = [cfg.get(what) or ""]
sys.stdout.write("".join(i + "\0" for i in items))
' "$1"
}
mapfile -d '' img_env < <(inspect env)
mapfile -d '' img_cmd < <(inspect cmd)
mapfile -d '' health_cmd < <(inspect health)
workdir=$(inspect WorkingDir | tr -d '\0')
user=$(inspect User | tr -d '\0')
[ "${#img_cmd[@]}" -gt 0 ] || die "the image has no CMD"

# ------------------------------------------------------------------ run the CMD under chroot
# A container of the image (created, never started) gives a writable root, as a container's own layer
# would be: the app writes /tmp and its home. Mounts below are undone by cleanup, whatever happens.
cid="" root="" app_pid=""
mounted=()
in_root() {  # pids of the processes whose root directory is the image's: the app and anything it started
    local p
    [ -n "$root" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
    done
    return 0
}
cleanup() {
    local status=$? pids=()
    mapfile -t pids < <(in_root)
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 50); do [ -n "$(in_root)" ] || break; sleep 0.2; done
        mapfile -t pids < <(in_root)
        [ "${#pids[@]}" -eq 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
    fi
    # innermost first
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null \
            || echo "docker_smoke: could not unmount ${mounted[i]}" >&2
    done
    if [ -n "$cid" ]; then
        podman umount "$cid" >/dev/null 2>&1 || true
        podman rm -f "$cid" >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() {  # mnt TARGET MOUNT-ARGS...: mount, and remember it for cleanup
    local target=$1; shift
    mount "$@" "$target"
    mounted+=("$target")
}

cid=$(podman create "$IMAGE")
root=$(podman mount "$cid")
mnt "$root/proc" -t proc proc
mnt "$root/sys" -t sysfs -o ro,nosuid,nodev,noexec sysfs
# A fresh /dev holding only the usual device nodes (bound from the host's), as container runtimes give.
mkdir -p "$root/dev"
mnt "$root/dev" -t tmpfs -o nosuid,mode=755 dev
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mnt "$root/dev/$node" --bind "/dev/$node"
done
mkdir -p "$root/dev/shm"
mnt "$root/dev/shm" -t tmpfs -o nosuid,nodev,mode=1777 shm
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

# Container runtimes write /etc/hosts at start (images leave it empty); Gradio checks its own URL by name.
printf '127.0.0.1\tlocalhost nextnum-smoke\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# USER may be a name or a uid, with or without a group: resolved in the image's own /etc/passwd.
uname=${user%%:*}
pw=$(awk -F: -v u="${uname:-root}" '$1 == u || $3 == u { print $3 ":" $4 ":" $6; exit }' "$root/etc/passwd")
[ -n "$pw" ] || die "user '$user' is not in the image's /etc/passwd"
IFS=: read -r run_uid run_gid run_home <<<"$pw"
case $user in *:*) run_gid=${user#*:} ;; esac

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The image's Env, then what a container runtime adds (HOME, HOSTNAME), then the free port.
run_env=("${img_env[@]}" "HOME=$run_home" "HOSTNAME=nextnum-smoke" "GRADIO_SERVER_PORT=$port")
# Runs what follows it in the image's root, as the image's user, in its WorkingDir, with only the image's
# Env. env, chroot and sh each exec the next, so a command started with it keeps one pid throughout.
# shellcheck disable=SC2016  # "$0" and "$@" are for the inner sh
in_image=(env -i "${run_env[@]}" "$(command -v chroot)" --userspec="$run_uid:$run_gid" --groups="$run_gid" "$root"
          /bin/sh -c 'cd "$0" && exec "$@"' "${workdir:-/}")

say "running '${img_cmd[*]}' in $workdir as $user ($run_uid:$run_gid) on port $port (log: $OUT/app.log)"
t_start=$(date +%s.%N)
"${in_image[@]}" "${img_cmd[@]}" >"$OUT/app.log" 2>&1 &
app_pid=$!  # the app's own pid (see in_image)

url="http://127.0.0.1:$port"
deadline=$((SECONDS + STARTUP_TIMEOUT))
until curl -fsS -o /dev/null "$url/gradio_api/info" 2>/dev/null; do
    if ! kill -0 "$app_pid" 2>/dev/null; then
        tail -n 30 "$OUT/app.log" >&2
        die "the app exited before answering; see $OUT/app.log"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no answer from $url/gradio_api/info after ${STARTUP_TIMEOUT}s"
    sleep 0.5
done
info_s=$(elapsed "$t_start")

# Who the app runs as and where it listens, read from the kernel rather than trusted from the image.
app_comm=$(cat "/proc/$app_pid/comm")
app_uid=$(awk '/^Uid:/ { print $3 }' "/proc/$app_pid/status")  # the effective uid
server_name=$(tr '\0' '\n' <"/proc/$app_pid/environ" | sed -n 's/^GRADIO_SERVER_NAME=//p')
listen=$(ss -ltnH "sport = :$port" | awk '{ print $4 }' | head -n 1)

health="none"
if [ "${#health_cmd[@]}" -gt 0 ]; then
    if "${in_image[@]}" "${health_cmd[@]}" >/dev/null 2>&1; then health="healthy"; else health="unhealthy"; fi
fi

say "reading examples/*.png through /predict"
reads=$("$PYTHON" - "$url" "$REPO/examples" "$t_start" <<'PY'
import json, sys, time
from pathlib import Path

from gradio_client import Client, handle_file

url, folder, t_start = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
labels = json.loads((folder / "labels.json").read_text())
client = Client(url, verbose=False)
first, rows = None, []
for path in sorted(folder.glob("*.png")):
    out = client.predict(handle_file(str(path)), api_name="/predict")
    if first is None:
        first = time.time() - t_start
    rows.append({"file": path.name, "true": labels.get(path.name), "read": out[0]})
print(json.dumps({"first_answer_s": first, "rows": rows}))
PY
)

# whether serving those readings loaded PyTorch into the app (libtorch mapped)
torch_loaded=$(grep -c libtorch "/proc/$app_pid/maps" || true)

# ------------------------------------------------------------------ report
TRAINING="$TRAINING" TORCH_LOADED="$torch_loaded" IMAGE="$IMAGE" BASE="$BASE" SIZE="$size_bytes" BUILD_S="$build_s" INFO_S="$info_s" APP_UID="$app_uid" \
SERVER_NAME="$server_name" LISTEN="$listen" HEALTH="$health" APP_COMM="$app_comm" READS="$reads" RESULT="$OUT/result.json" \
"$PYTHON" - <<'PY'
import json, os, sys

e = os.environ
reads = json.loads(e["READS"])
rows = reads["rows"]
for r in rows:
    mark = "ok" if r["read"] == r["true"] else "WRONG"
    print(f"  {r['file']:<12} true {r['true']!s:<7} read {r['read']!s:<7} {mark}")
right = sum(r["read"] == r["true"] for r in rows)
first = reads["first_answer_s"]
res = {
    "image": e["IMAGE"], "base": e["BASE"], "training": e["TRAINING"] == "1",
    "torch_loaded": int(e["TORCH_LOADED"] or 0) > 0,
    "image_size_bytes": int(e["SIZE"]), "image_size_gb": round(int(e["SIZE"]) / 1e9, 2),
    "build_s": float(e["BUILD_S"]),
    "info_s": float(e["INFO_S"]),
    "first_answer_s": None if first is None else round(first, 1),
    "examples_right": right, "examples_total": len(rows),
    "process": e["APP_COMM"], "uid": int(e["APP_UID"]), "gradio_server_name": e["SERVER_NAME"], "listen": e["LISTEN"],
    "healthcheck": e["HEALTH"],
}
res["ok"] = (bool(rows) and right == len(rows) and res["uid"] != 0
             and res["gradio_server_name"] == "0.0.0.0" and res["listen"].startswith("0.0.0.0:"))
print(f"image size:          {res['image_size_gb']} GB ({res['image_size_bytes']} bytes)")
print(f"build time:          {res['build_s']} s")
print(f"CMD start to /gradio_api/info: {res['info_s']} s; to the first /predict answer: {res['first_answer_s']} s")
print(f"examples read right: {right}/{len(rows)}")
print(f"app ran as:          {res['process']}, uid {res['uid']}, GRADIO_SERVER_NAME={res['gradio_server_name']}, "
      f"listening on {res['listen']}")
print(f"HEALTHCHECK:         {res['healthcheck']}")
print(f"PyTorch loaded by the readings: {res['torch_loaded']} (image with training: {res['training']})")
with open(e["RESULT"], "w") as f:
    f.write(json.dumps(res) + "\n")
print(json.dumps(res))
sys.exit(0 if res["ok"] else 1)
PY
