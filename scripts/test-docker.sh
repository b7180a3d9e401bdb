#!/usr/bin/env bash
# `npm run test:docker`: the Docker image and the compose grid, end to end, against a running
# Docker engine. Not part of `npm test` (it needs Docker and builds an image: ~3 min the first
# time, ~1 min when the build is cached).
#
#  1. base image: $DRILL_DOCKER_BASE if set; else debian:bookworm-slim if it is present or can be
#     pulled; else matrix-drill-base:bookworm, made from Debian's packages when missing
#     (scripts/docker-base-image.sh, ~2 min, needs root and debootstrap).
#  2. docker build -t $DRILL_IMAGE (default matrix-drill:test).
#  3. docker run IMAGE — the demo — with /data on a temporary folder: exit 0, "DONE", and its
#     outputs checked against the golden ones by scripts/check-golden.ts, outside the container.
#  4. compose.yaml up (project matrix-drill-test, free host ports): the three workers join the
#     coordinator through the shared address file and the coordinator turns healthy (HEALTHCHECK
#     on /healthz); the cnn job is submitted from this machine over the published HTTP API
#     (drill submit --api, as README shows) and its outputs checked the same way; drill status
#     --api lists the workers and the dashboard is served; the coordinator is restarted and must
#     keep its peer id and get its workers back; then down -v.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${DRILL_IMAGE:-matrix-drill:test}"
PROJECT=matrix-drill-test
# Limits for waiting on containers: the first start of a worker runs the ~1.5 s device benchmark,
# three at once on a small machine take several times that.
JOIN_TIMEOUT_S=180
T0=$(date +%s)
say() { printf '[test:docker %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker engine (docker info failed): start dockerd, or run as a user allowed to use it"
if docker compose version >/dev/null 2>&1; then DC=(docker compose); elif command -v docker-compose >/dev/null; then DC=(docker-compose); else fail "neither 'docker compose' nor 'docker-compose' is installed"; fi
# The classic builder when BuildKit's client (buildx) is not installed (Debian's docker.io).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

# ---- 1. base image ---------------------------------------------------------------------------
BASE="${DRILL_DOCKER_BASE:-}"
if [ -z "$BASE" ]; then
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1 || docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    BASE=debian:bookworm-slim
  else
    BASE=matrix-drill-base:bookworm
    say "debian:bookworm-slim cannot be pulled: using $BASE"
    scripts/docker-base-image.sh "$BASE"
  fi
fi

# ---- 2. build --------------------------------------------------------------------------------
# CA certificates added to this machine (a TLS-intercepting proxy, as in CI sandboxes) are passed
# to the build stage, which downloads Node and the npm packages.
EXTRA_CA=""
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then EXTRA_CA="$(cat /usr/local/share/ca-certificates/*.crt)"; fi
say "docker build -t $IMAGE (base $BASE)"
BUILD_LOG="$(mktemp)"
if ! docker build --build-arg BASE="$BASE" --build-arg EXTRA_CA_CERTS="$EXTRA_CA" -t "$IMAGE" . >"$BUILD_LOG" 2>&1; then
  tail -40 "$BUILD_LOG"; fail "docker build"
fi
rm -f "$BUILD_LOG"
say "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), $(docker run --rm "$IMAGE" --version)"

TMP="$(mktemp -d /tmp/drill-docker-test.XXXXXX)"
export DRILL_IMAGE="$IMAGE" COMPOSE_PROJECT_NAME="$PROJECT"
dc() { "${DC[@]}" -f compose.yaml -p "$PROJECT" "$@"; }
cleanup() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
# The demo's /data: the image's user (uid 10001) writes there.
mkdir -p "$TMP/demo" "$TMP/out"
chmod 0777 "$TMP/demo"

# ---- 3. the demo -----------------------------------------------------------------------------
say "docker run $IMAGE (the demo)"
if ! docker run --rm -v "$TMP/demo:/data" "$IMAGE" >"$TMP/demo.log" 2>&1; then cat "$TMP/demo.log"; fail "the demo exited non-zero"; fi
grep -E '^job cnn \(job-[^)]+\): DONE$' "$TMP/demo.log" || { cat "$TMP/demo.log"; fail "the demo did not end DONE"; }
grep -E 'probs: matches the golden output' "$TMP/demo.log" || { cat "$TMP/demo.log"; fail "the demo's own golden check"; }
node scripts/check-golden.ts "$TMP/demo/drill-out/demo" workloads/cnn || fail "demo outputs differ from the golden ones"

# ---- 4. the compose grid ---------------------------------------------------------------------
export DRILL_P2P_PORT
DRILL_P2P_PORT="$(node -e "const s = require('node:net').createServer().listen(0, () => { console.log(s.address().port); s.close(); })")"
dc down -v --remove-orphans >/dev/null 2>&1 || true
export DRILL_API_PORT
DRILL_API_PORT="$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")"
say "compose up: coordinator + 3 workers (host ports: libp2p $DRILL_P2P_PORT, HTTP API 127.0.0.1:$DRILL_API_PORT)"
dc up -d --no-build >/dev/null 2>&1 || { dc up -d --no-build; fail "compose up"; }

# Wait until `worker` has logged "joined coordinator" `n` times.
wait_joined() {
  local w="$1" n="$2" deadline=$(( $(date +%s) + JOIN_TIMEOUT_S ))
  until [ "$(dc logs --no-color "$w" 2>/dev/null | grep -c 'joined coordinator')" -ge "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { dc logs --no-color; fail "$w did not join the coordinator ($n) within ${JOIN_TIMEOUT_S} s"; }
    sleep 1
  done
}
# Wait until the coordinator's HEALTHCHECK (docker/healthcheck.js: GET /healthz) says healthy.
wait_healthy() {
  local c deadline=$(( $(date +%s) + JOIN_TIMEOUT_S ))
  c="$(dc ps -q coordinator)"
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { docker inspect -f '{{json .State.Health}}' "$c"; fail "the coordinator was not healthy within ${JOIN_TIMEOUT_S} s"; }
    sleep 1
  done
}
for w in worker-1 worker-2 worker-3; do wait_joined "$w" 1; done
ADDR="$(dc exec -T coordinator cat /grid/coordinator.addr | head -n 1 | tr -d '\r')"
case "$ADDR" in /dns4/coordinator/tcp/9360/p2p/12D3Koo*) ;; *) fail "unexpected address file: '$ADDR'" ;; esac
say "3 workers joined $ADDR"
wait_healthy
say "coordinator healthy (HEALTHCHECK on /healthz)"
# Workers report healthy too (they have no HTTP side): the check must not mark them unhealthy.
[ "$(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q worker-1)")" != unhealthy ] || fail "worker-1 reported unhealthy"

API="http://127.0.0.1:$DRILL_API_PORT"
say "drill submit --api $API (cnn workload, from this machine as the README shows)"
if ! node bin/drill.js submit --api "$API" --job workloads/cnn/job.json --out "$TMP/out/cnn" --quiet >"$TMP/submit.log" 2>&1; then
  cat "$TMP/submit.log"; dc logs --no-color --tail 50; fail "drill submit --api"
fi
grep -E 'DONE' "$TMP/submit.log" || { cat "$TMP/submit.log"; fail "the job did not end DONE"; }
node scripts/check-golden.ts "$TMP/out/cnn" workloads/cnn || fail "grid outputs differ from the golden ones"
RAN="$(node -e "const r = JSON.parse(require('node:fs').readFileSync('$TMP/out/cnn/report.json', 'utf8')); console.log(r.workers.filter((w) => w.unitsRun > 0).length)")"
[ "$RAN" -ge 2 ] || fail "only $RAN worker(s) ran units"
say "job DONE on the grid: $RAN workers ran units"
node bin/drill.js status --api "$API" >"$TMP/status.log" 2>&1 || { cat "$TMP/status.log"; fail "drill status --api"; }
[ "$(grep -c '12D3Koo' "$TMP/status.log")" -ge 3 ] || { cat "$TMP/status.log"; fail "drill status lists fewer than 3 workers"; }
curl -fsS "$API/" | grep -qi '<html' || fail "the dashboard page is not served on $API/"

say "compose restart coordinator: same peer id, workers rejoin"
dc restart coordinator >/dev/null 2>&1
for w in worker-1 worker-2 worker-3; do wait_joined "$w" 2; done
AFTER="$(dc exec -T coordinator cat /grid/coordinator.addr | head -n 1 | tr -d '\r')"
[ "$AFTER" = "$ADDR" ] || fail "the coordinator's address changed across a restart: $ADDR -> $AFTER"

dc down -v --remove-orphans >/dev/null 2>&1
say "PASS: image, demo, compose grid (job, coordinator restart)"
