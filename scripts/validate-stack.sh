#!/usr/bin/env bash
# Validates stack.yml offline, without a Docker engine:
#   1. against the Compose specification's JSON schema (check-jsonschema, bundled schema);
#   2. with `docker stack config`, which interpolates ${VARS} and checks Swarm's own v3 schema
#      (skipped, with a note, when the docker client is not installed);
#   3. that every network, volume, secret and config a service names is declared at the top level
#      (neither check above looks across sections; `docker stack deploy` would refuse the stack);
#   4. whether the files the stack reads at deploy time (its configs) exist. One is the operator's
#      (config/inboxes.toml, written from config/inboxes.example.toml), so in CI a missing one is
#      only reported; with --deploy, the check an operator runs before deploying, it is an error.
#
# Usage: scripts/validate-stack.sh [--deploy] [path/to/stack.yml]
# CHECK_JSONSCHEMA names the check-jsonschema binary (default: .venv/bin/check-jsonschema, then PATH);
# PYTHON an interpreter with PyYAML (default: .venv/bin/python, then python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy=0
if [[ "${1:-}" == "--deploy" ]]; then
    deploy=1
    shift
fi
stack="${1:-$root/stack.yml}"

if [[ ! -f "$stack" ]]; then
    echo "validate-stack: $stack not found" >&2
    exit 1
fi

# The project's virtualenv first, then PATH.
find_tool() {
    if [[ -x "$root/.venv/bin/$1" ]]; then
        echo "$root/.venv/bin/$1"
    else
        command -v "$2" || true
    fi
}

checker="${CHECK_JSONSCHEMA:-$(find_tool check-jsonschema check-jsonschema)}"
if [[ -z "$checker" || ! -x "$checker" ]]; then
    echo "validate-stack: check-jsonschema not found; pip install check-jsonschema or set CHECK_JSONSCHEMA" >&2
    exit 1
fi
python="${PYTHON:-$(find_tool python python3)}"

echo "== Compose spec schema: $checker --builtin-schema vendor.compose-spec"
"$checker" --builtin-schema vendor.compose-spec "$stack"

if command -v docker > /dev/null; then
    echo "== docker stack config ($(docker --version))"
    # A stand-in for the one variable the stack requires, unless the caller has set it.
    FRONTEND_URL="${FRONTEND_URL:-https://chat.example.com}" docker stack config --compose-file "$stack" > /dev/null
    echo "ok -- docker stack config accepted $stack"
else
    echo "== docker stack config: skipped, the docker client is not installed"
fi

echo "== references between sections"
"$python" - "$stack" <<'PY'
import sys

import yaml

doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))


def named(kind, entries):
    """The top-level names a service's networks/volumes/secrets/configs entry refers to."""
    if isinstance(entries, dict):  # networks: {name: {...}}
        return list(entries)
    names = []
    for entry in entries or []:
        if isinstance(entry, dict):
            if kind != "volumes" or entry.get("type", "volume") == "volume":
                names.append(entry["source"])
        elif kind == "volumes":
            source = entry.split(":")[0]
            if ":" in entry and not source.startswith(("/", ".", "~")):  # not a bind mount
                names.append(source)
        else:
            names.append(entry)
    return names


problems = [
    f"services.{service}.{kind}: {name!r} is not declared under the top-level {kind}:"
    for service, spec in doc["services"].items()
    for kind in ("networks", "volumes", "secrets", "configs")
    for name in named(kind, spec.get(kind))
    if name not in (doc.get(kind) or {})
]
for problem in problems:
    print("validate-stack: " + problem, file=sys.stderr)
if problems:
    sys.exit(1)
print("ok -- every network, volume, secret and config a service uses is declared")
PY

echo "== files read at deploy time"
missing=0
stack_dir="$(dirname "$stack")"
while read -r path; do
    if [[ -f "$stack_dir/$path" ]]; then
        echo "ok -- $path"
    else
        echo "missing -- $path (docker stack deploy reads it)"
        missing=1
    fi
done < <(sed -n -E 's/^[[:space:]]+file:[[:space:]]+([^[:space:]#]+).*/\1/p' "$stack")
if (( missing && deploy )); then
    echo "validate-stack: not ready to deploy: create the missing files above" >&2
    exit 1
fi
echo "stack.yml is valid"
