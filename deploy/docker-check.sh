#!/usr/bin/env bash
# `make docker-check`: build the image from the working tree (uncommitted changes
# included), smoke-test it, then bring up compose.yaml's stack and check that
# `convsync run` reaches PostgreSQL, turns healthy and keeps its ledger across
# `docker compose down` / `up`. Prints the figures (image size, build times, the health
# probe's CPU per call, health timings). Not part of `make test`: it takes minutes.
#
#   deploy/docker-check.sh            set up (once), build, test; leaves dockerd running
#   deploy/docker-check.sh teardown   stop what it started, purge what it installed
#
# Made for a machine with the docker CLI but no daemon, no Docker Hub and no network but
# the Python and Debian package indexes (the project's CI machines):
# * Docker Engine 26 (Debian trixie's docker.io, unpacked into $W, not installed) runs
#   with Debian bookworm's containerd and runc: bookworm's own dockerd (20.10) knows no
#   HEALTHCHECK --start-interval. No bridge and no iptables: no private-range network is
#   made; builds use the host's network (pip and apt reach their indexes as the host
#   does), containers get none.
# * Stand-ins for the Docker Hub images, built here and tagged with their names in this
#   daemon only: python:3.11-slim = Debian bookworm (debootstrap) with Debian's Python
#   3.11; postgres:16 = the same with Debian's PostgreSQL 15 and a small entrypoint that
#   honours POSTGRES_USER/PASSWORD/DB and PGDATA like the real image's;
#   prom/prometheus = the same with Debian's Prometheus. Grafana has no Debian package:
#   its service is left out of the check (its provisioning is checked by unit tests).
# * The compose stack runs from a copy of compose.yaml that changes networking only:
#   PostgreSQL's container has no network but loopback, the others share its network
#   namespace (network_mode: service:postgres), ports are not published, and service
#   names resolve to 127.0.0.1 there. Nothing reaches the real ad platforms.
# W = work dir (default: a folder under the system temp dir).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=${W:-${TMPDIR:-/tmp}/convsync-docker-check}
PROJECT=convsync-check
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$W"
# the compose and buildx plugins of trixie's packages, without installing them
export DOCKER_CONFIG="$W/docker-config"

step() { printf '\n== %s\n' "$*"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# Python with PyYAML and packaging (the project's venv: `make docker-check` makes it)
PY=${PY:-$REPO/.venv/bin/python}
"$PY" -c 'import yaml, packaging' || { echo "$PY lacks PyYAML or packaging: run make docker-check" >&2; exit 1; }

compose() { docker compose -p "$PROJECT" --project-directory "$W/stack" -f "$W/stack/compose.check.yaml" "$@"; }

teardown() {
    if docker info >/dev/null 2>&1; then
        [ -f "$W/stack/compose.check.yaml" ] && compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
        docker ps -aq --filter name=convsync-check | xargs -r docker rm -f >/dev/null
        docker volume ls -q --filter name=convsync-check | xargs -r docker volume rm -f >/dev/null
    fi
    if [ -f "$W/dockerd.pid" ]; then
        kill "$(cat "$W/dockerd.pid")" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$(cat "$W/dockerd.pid")" 2>/dev/null || break; sleep 1; done
        rm -f "$W/dockerd.pid"
    fi
    umount /run/docker/netns/default 2>/dev/null || true   # left mounted by dockerd
    if [ -s "$W/installed-packages" ]; then
        # only what this script installed (the list was taken before and after)
        xargs -r apt-get purge -y -qq <"$W/installed-packages" >/dev/null || true
        rm -f "$W/installed-packages"
    fi
    rm -rf "$W" /run/docker /var/run/docker.sock /etc/docker
    getent group docker >/dev/null && ! dpkg -s docker.io >/dev/null 2>&1 && groupdel docker 2>/dev/null || true
    echo "torn down"
}

if [ "${1:-}" = teardown ]; then teardown; exit 0; fi

# --- 1. a daemon ---------------------------------------------------------------------
start_daemon() {
    local need=() pkg
    for pkg in containerd runc tini debootstrap; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        dpkg-query -W -f '${Package}\n' | sort >"$W/packages.before"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        dpkg-query -W -f '${Package}\n' | sort | comm -13 "$W/packages.before" - >>"$W/installed-packages"
    fi
    if [ ! -x "$W/engine/usr/sbin/dockerd" ]; then
        # trixie's packages fetched with a private apt state: the host's sources stay as they are
        local apt="$W/apt"
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$apt/sources.list"
        local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
                    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
        apt-get "${opts[@]}" update -qq
        (cd "$apt/debs" && apt-get "${opts[@]}" download docker.io docker-cli docker-compose docker-buildx 2>/dev/null)
        for deb in "$apt"/debs/*.deb; do dpkg-deb -x "$deb" "$W/engine"; done
    fi
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    ln -sf "$W/engine/usr/libexec/docker/cli-plugins/docker-compose" "$DOCKER_CONFIG/cli-plugins/"
    ln -sf "$W/engine/usr/libexec/docker/cli-plugins/docker-buildx" "$DOCKER_CONFIG/cli-plugins/"
    mkdir -p "$W/dr"
    PATH="$W/engine/usr/sbin:$W/engine/usr/bin:$PATH" setsid nohup "$W/engine/usr/sbin/dockerd" \
        --data-root "$W/dr" --bridge=none --iptables=false --ip6tables=false \
        --ip-forward=false >"$W/dockerd.log" 2>&1 &
    echo $! >"$W/dockerd.pid"
    for _ in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
}

step "daemon"
if ! docker info >/dev/null 2>&1; then start_daemon; fi
# the docker CLI in PATH, or trixie's where there is none
command -v docker >/dev/null || export PATH="$W/engine/usr/bin:$PATH"
server=$(docker version -f '{{.Server.Version}}')
case "$server" in
    2[5-9].*|[3-9][0-9].*) echo "Docker Engine $server";;
    *) echo "Docker Engine $server is too old for HEALTHCHECK --start-interval (25 or newer):" \
            "stop it (e.g. docker-local.sh teardown) and run this again" >&2; exit 1;;
esac
docker compose version

# --- 2. stand-ins for the Docker Hub images -----------------------------------------
step "base images"
if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    rm -rf "$W/rootfs"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "$W/rootfs" >"$W/debootstrap.log"
    # the host's extra CAs (if any): pip and apt in a build trust what the host trusts
    cp /usr/local/share/ca-certificates/*.crt "$W/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$W/rootfs" update-ca-certificates >/dev/null
    rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
    tar -C "$W/rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - python:3.11-slim >/dev/null
    rm -rf "$W/rootfs"
    echo "python:3.11-slim: stand-in built (Debian bookworm, Python $(docker run --rm --network none python:3.11-slim python3 -c 'import platform; print(platform.python_version())'))"
fi
if ! docker image inspect postgres:16 >/dev/null 2>&1; then
    rm -rf "$W/postgres" && mkdir -p "$W/postgres"
    cp "$REPO/deploy/check/postgres-entrypoint.sh" "$W/postgres/"
    cat >"$W/postgres/Dockerfile" <<'EOF'
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["sh", "/usr/local/bin/docker-entrypoint.sh"]
EOF
    docker build -q --network host -t postgres:16 "$W/postgres" >/dev/null
    echo "postgres:16: stand-in built (Debian's PostgreSQL 15)"
fi
PROMETHEUS_IMAGE=$(sed -n 's/^ *image: *\(prom\/prometheus:.*\)$/\1/p' "$REPO/compose.yaml")
if ! docker image inspect "$PROMETHEUS_IMAGE" >/dev/null 2>&1; then
    rm -rf "$W/prometheus" && mkdir -p "$W/prometheus"
    cat >"$W/prometheus/Dockerfile" <<'EOF'
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown nobody /prometheus
USER nobody
VOLUME /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
    docker build -q --network host -t "$PROMETHEUS_IMAGE" "$W/prometheus" >/dev/null
    echo "$PROMETHEUS_IMAGE: stand-in built (Debian's Prometheus)"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(python|postgres|prom)'

# --- 3. the image, from the working tree ---------------------------------------------
step "image"
rm -rf "$W/src" && mkdir -p "$W/src"
# tracked and untracked files, less what .gitignore leaves out: what a commit of the
# working tree would hold (files deleted but not yet committed are skipped)
(cd "$REPO" && git ls-files -z -co --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$W/src" -xf -
build() {  # build LOG [docker build options]: prints the seconds it took
    local log=$1 t0; shift
    t0=$(date +%s%N)
    docker build --progress=plain --network host -t convsync:check -t convsync "$@" "$W/src" \
        >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
    local ms; ms=$(ms_since "$t0")
    echo "$(( ms / 1000 )).$(( ms % 1000 / 100 ))"
}
cold=$(build "$W/build-cold.log" --no-cache)
echo "cold build (no cache; downloads included): ${cold}s"
size=$(docker image inspect convsync:check -f '{{.Size}}')
echo "image: $(( size / 1000000 )) MB ($size bytes), $(docker image inspect convsync:check \
    -f '{{len .RootFS.Layers}} layers, user {{.Config.User}}'); base python:3.11-slim (stand-in)" \
    "$(( $(docker image inspect python:3.11-slim -f '{{.Size}}') / 1000000 )) MB"
printf '# docker-check: a change to src/ at %s\n' "$(date +%s)" >>"$W/src/src/convsync/probe.py"
again=$(build "$W/build-src.log")
deps_cached=$(grep -A1 'RUN .*-r /build/requirements/runtime.txt' "$W/build-src.log" | grep -c CACHED || true)
echo "rebuild after a change to src/: ${again}s (dependency layer reused: $([ "$deps_cached" -gt 0 ] && echo yes || echo NO))"
[ "$deps_cached" -gt 0 ]

# the venv holds exactly the locked versions, and nothing in the image can install
docker run --rm --network none --entrypoint python convsync:check -c '
import importlib.metadata as m, importlib.util as u, shutil
for d in m.distributions():
    print(d.metadata["Name"], d.version)
print("INSTALLERS", *[x for x in ("pip", "setuptools", "wheel") if u.find_spec(x)],
      *[x for x in ("pip", "pip3", "uv") if shutil.which(x)])
' >"$W/installed.txt"
"$PY" - "$REPO/requirements/runtime.txt" "$W/installed.txt" <<'PYEOF'
import re, sys
from packaging.requirements import Requirement
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
env = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11",
       "python_full_version": "3.11.2", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
lines = open(sys.argv[1]).read().replace("\\\n", " ").splitlines()
locked = {}
for line in lines:
    line = re.sub(r"--hash=\S+", "", line.split("#")[0]).strip()
    if line:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            locked[canon(req.name)] = str(req.specifier).lstrip("=")
out = open(sys.argv[2]).read().splitlines()
installers = out.pop().split()[1:]
installed = {canon(n): v for n, v in (l.split() for l in out)}
installed.pop("convsync")
diff = {n: (locked.get(n), installed.get(n)) for n in locked.keys() | installed.keys()
        if locked.get(n) != installed.get(n)}
print(f"installed = locked: {'yes' if not diff else diff} ({len(installed)} packages);"
      f" pip/setuptools/wheel in the image: {installers or 'none'}")
sys.exit(1 if diff or installers else 0)
PYEOF

# --- 4. smoke tests (no network) -----------------------------------------------------
step "smoke tests"
ENVS=(-e GOOGLE_ADS_CLIENT_ID=demo -e GOOGLE_ADS_CLIENT_SECRET=demo-secret
      -e GOOGLE_ADS_REFRESH_TOKEN=demo-refresh -e METRICA_TOKEN=demo-token
      -e VK_ID=demo -e VK_SECRET=demo-secret)
# the header's example: a folder with convsync.yaml (and the files it names) at /config
rm -rf "$W/config" && mkdir -p "$W/config"
cp -L "$REPO/config/example.yaml" "$W/config/convsync.yaml"
cp -rL "$REPO/config/sample" "$W/config/sample"
# For `convsync run`: the same config, its samples cut to their header lines. With no
# network every destination that has something to deliver stops, and a run whose
# destinations all stop is `failed` (/healthz 503, by design); with nothing to deliver
# it is `degraded` (Google's token and Metrica's pending uploads are still asked for),
# which /healthz answers 200.
rm -rf "$W/config-quiet" && mkdir -p "$W/config-quiet/sample"
cp "$W/config/convsync.yaml" "$W/config-quiet/"
for csv in "$W"/config/sample/*.csv; do head -n 1 "$csv" >"$W/config-quiet/sample/${csv##*/}"; done
MNT=(-v "$W/config-quiet:/config:ro" -v convsync-check-data:/data)
docker rm -f convsync-check-run >/dev/null 2>&1 || true
docker volume rm -f convsync-check-data >/dev/null 2>&1 || true

docker run --rm --network none convsync:check --help >/dev/null && echo "--help: ok"
echo "uid: $(docker run --rm --network none --entrypoint id convsync:check -u)"
rc=0
docker run --rm --network none "${ENVS[@]}" -v "$W/config:/config:ro" convsync:check \
    sync --once --dry-run --output - >"$W/dry-run.jsonl" 2>"$W/dry-run.err" || rc=$?
echo "dry run with -v \"\$PWD/config:/config:ro\": exit $rc (1 = the sample's rejected rows), $(wc -l <"$W/dry-run.jsonl") plan lines"

# /data a host folder that uid 10001 may not write
rm -rf "$W/root-owned" && mkdir -p "$W/root-owned"
rc=0
docker run --rm --network none "${ENVS[@]}" -v "$W/config:/config:ro" -v "$W/root-owned:/data" \
    convsync:check >"$W/root-owned.out" 2>&1 || rc=$?
echo "run with a root-owned host folder at /data: exit $rc: $(grep -m1 -o '/data is not writable.*' "$W/root-owned.out" || tail -3 "$W/root-owned.out")"
[ "$rc" -ne 0 ] && grep -q '/data is not writable by uid 10001' "$W/root-owned.out"

cat >"$W/health_timings.py" <<'PYEOF'
"""docker inspect's .State: health status, and each check's end in seconds after start."""
import json, sys
from datetime import datetime

def moment(text):  # Docker writes nanoseconds; fromisoformat takes microseconds
    text = text.replace("Z", "+00:00")
    head, sign, zone = text.rpartition("+")
    if "." in head:
        base, fraction = head.split(".")
        head = f"{base}.{fraction[:6]}"
    return datetime.fromisoformat(f"{head}+{zone}")

state = json.loads(sys.argv[1])
health = state.get("Health") or {}
start = moment(state["StartedAt"])
checks = [
    f"{(moment(check['End']) - start).total_seconds():.1f}:{'ok' if check['ExitCode'] == 0 else 'fail'}"
    for check in health.get("Log", [])
]
print(health.get("Status"), "- checks ended (s after start):", " ".join(checks))
PYEOF
health_timings() { "$PY" "$W/health_timings.py" "$(docker inspect "$1" -f '{{json .State}}')"; }
wait_healthy() {  # container timeout-seconds
    local status=""
    for _ in $(seq "$2"); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || true)
        [ "$status" = healthy ] && return 0
        sleep 1
    done
    echo "$1: $status after $2 s" >&2
    docker logs --tail 30 "$1" >&2
    return 1
}
docker run -d --name convsync-check-run --network none "${ENVS[@]}" "${MNT[@]}" convsync:check >/dev/null
wait_healthy convsync-check-run 90
echo "HEALTHCHECK: $(health_timings convsync-check-run)"
CPU_PY='
import resource, subprocess, sys
n = int(sys.argv[1])
for _ in range(n):
    subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{(r.ru_utime + r.ru_stime) / n * 1000:.0f} ms CPU per call (user+sys, mean of {n})")'
echo "probe  python -I /opt/venv/bin/convsync-probe: $(docker exec convsync-check-run python -c "$CPU_PY" 50 python -I /opt/venv/bin/convsync-probe)"
echo "the old HEALTHCHECK, convsync health:        $(docker exec convsync-check-run python -c "$CPU_PY" 5 convsync health)"
docker exec convsync-check-run python -I /opt/venv/bin/convsync-probe >/dev/null && echo "probe exit 0 on the running container"
docker exec convsync-check-run convsync report --since 7d >/dev/null && echo "exec report: ok"
runs1=$(docker exec convsync-check-run convsync runs | grep -c schedule || true)
t0=$(date +%s%N)
docker stop convsync-check-run >/dev/null
echo "docker stop: $(ms_since "$t0") ms, exit $(docker inspect -f '{{.State.ExitCode}}' convsync-check-run)"
docker rm convsync-check-run >/dev/null
docker run --rm --network none "${ENVS[@]}" "${MNT[@]}" convsync:check sync --once >/dev/null 2>&1 || true
runs2=$(docker run --rm --network none -v convsync-check-data:/data convsync:check runs | grep -cE 'schedule|once' || true)
echo "SQLite ledger in the /data volume: $runs1 run(s) before the container was removed, $runs2 with a new one"
[ "$runs2" -gt "$runs1" ]
docker volume rm -f convsync-check-data >/dev/null

# --- 5. compose.yaml -------------------------------------------------------------------
step "compose"
S="$W/stack"
rm -rf "$S" && mkdir -p "$S"
cp "$REPO/compose.yaml" "$REPO/.env.example" "$S/"
cp -r "$REPO/deploy" "$S/deploy"
cp -r "$W/config-quiet" "$S/config"
sed "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')/" \
    "$REPO/.env.example" >"$S/.env"
docker compose --project-directory "$S" -f "$S/compose.yaml" config -q \
    && docker compose --project-directory "$S" -f "$S/compose.yaml" --profile monitoring config -q \
    && echo "docker compose config: compose.yaml is valid (with and without --profile monitoring)"
# networking only: see the header
"$PY" - "$S/compose.yaml" "$S/compose.check.yaml" "$PROMETHEUS_IMAGE" <<'PYEOF'
import sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
del services["grafana"]          # no image to be had here (not in Debian)
del services["convsync"]["build"]  # the image built above, tagged convsync
for name, service in services.items():
    service.pop("ports", None)
    service["network_mode"] = "none" if name == "postgres" else "service:postgres"
services["postgres"]["extra_hosts"] = [f"{name}:127.0.0.1" for name in services]
yaml.safe_dump(compose, open(sys.argv[2], "w"), sort_keys=False)
PYEOF
compose down -v --remove-orphans >/dev/null 2>&1 || true
t0=$(date +%s%N)
compose up -d --quiet-pull 2>"$W/compose-up.log" || { cat "$W/compose-up.log"; exit 1; }
echo "docker compose up -d returned after $(ms_since "$t0") ms (it waits for postgres to be healthy)"
C=$PROJECT-convsync-1 P=$PROJECT-postgres-1
wait_healthy "$C" 120
echo "postgres: $(health_timings "$P" | cut -c1-120)"
started() { docker inspect -f '{{.State.StartedAt}}' "$1"; }
echo "convsync: started $("$PY" -c '
import sys
from datetime import datetime
a, b = (datetime.fromisoformat(s[:26].rstrip("Z")) for s in sys.argv[1:])
print(f"{(a - b).total_seconds():.1f}")' "$(started "$C")" "$(started "$P")") s after postgres; $(health_timings "$C")"
docker exec "$C" printenv CONVSYNC_DATABASE_URL | sed 's#://\([^:]*\):[^@]*@#://\1:***@#; s/^/CONVSYNC_DATABASE_URL=/'
count_runs() { docker exec "$P" psql -U convsync -d convsync -Atc 'select count(*) from runs'; }
runs_a=$(count_runs)
echo "ledger on PostgreSQL: $runs_a run(s) in its runs table; convsync runs says:"
docker exec "$C" convsync runs | head -5
compose down >/dev/null 2>&1
echo "docker compose down (volumes kept); up again"
compose up -d 2>>"$W/compose-up.log"
wait_healthy "$C" 120
runs_b=$(count_runs)
echo "after down/up: $runs_b run(s) (were $runs_a): the ledger is kept in the pgdata volume"
[ "$runs_b" -ge "$runs_a" ] && [ "$runs_a" -gt 0 ]
echo "restart policy: $(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$C") / $(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$P")"

step "monitoring profile (Prometheus; Grafana has no image here)"
compose --profile monitoring up -d prometheus 2>>"$W/compose-up.log"
TARGETS_PY=$(cat <<'PYEOF'
import json, urllib.request
answer = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/targets", timeout=5))
print(" ".join(f"{t['scrapeUrl']}={t['health']}" for t in answer["data"]["activeTargets"]))
PYEOF
)
targets=""
for _ in $(seq 60); do
    targets=$(docker exec "$C" python -c "$TARGETS_PY" 2>/dev/null || true)
    case "$targets" in *=up*) break;; esac
    sleep 1
done
echo "Prometheus targets: ${targets:-none}"
case "$targets" in *convsync:8080/metrics=up*) ;; *) exit 1;; esac
compose --profile monitoring down >/dev/null 2>&1

step "done"
echo "all checks passed; the daemon is still running: $0 teardown stops it and purges what this installed"
