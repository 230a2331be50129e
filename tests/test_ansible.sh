#!/usr/bin/env bash
# test_ansible: the playbook for real. site.yml deploys a coordinator and two
# nodes on localhost (ansible_connection=local), each host in a throwaway
# prefix of its own, with stemfarm_service_manager=none since systemd is not
# PID 1 here. Then: a second run changes nothing; a session rendered through
# the deployed farm (CURVE, a client key the role made) gives the stems of
# an embedded render byte for byte; no secret key appears in the playbook's
# output; ansible-lint passes and systemd-analyze verifies the units.
# Arguments: the build folder, the source folder.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d)
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_NOCOLOR=1
export ANSIBLE_CONFIG="$src/ansible/ansible.cfg" ANSIBLE_ROLES_PATH="$src/ansible/roles"
cleanup() {
  for p in "$work"/*/bin/stemfarm-service; do
    [ -x "$p" ] || continue
    name=$(basename "$(dirname "$(dirname "$p")")")
    case "$name" in coordinator) "$p" stop coordinator >/dev/null || true ;; *) "$p" stop "node-$name" >/dev/null || true ;; esac
  done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test_ansible: $*" >&2; for f in "$work"/*/var/log/stemfarm/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
http_port=$(free_port)

# The README's localhost inventory, moved into the scratch folder and onto free ports.
play=(ansible-playbook -i "$src/ansible/inventory.localhost.yml" "$src/ansible/site.yml" -e "stemfarm_farm_root=$work"
  -e "stemfarm_build_dir=$build" -e "stemfarm_coordinator_port=$port" -e "stemfarm_http=127.0.0.1:$http_port")
"${play[@]}" > "$work/run1.log" 2>&1 ||
  { cat "$work/run1.log" >&2; fail "the first run failed"; }
"${play[@]}" > "$work/run2.log" 2>&1 ||
  { cat "$work/run2.log" >&2; fail "the second run failed"; }
recap=$(sed -n '/PLAY RECAP/,$p' "$work/run2.log")
echo "$recap" | grep -q 'changed=0' || fail "no recap in the second run"
if echo "$recap" | grep -E 'changed=[1-9]|failed=[1-9]' >/dev/null; then
  cat "$work/run2.log" >&2
  fail "the second run changed something: not idempotent"
fi

# No secret key in what the playbook printed.
for key in "$work"/*/etc/stemfarm/keys/*.key "$work"/coordinator/etc/stemfarm/keys/clients/*.key; do
  secret=$(sed -n 's/^ *secret-key *= *"\(.*\)"/\1/p' "$key")
  [ -n "$secret" ] || fail "no secret in $key"
  if grep -qF "$secret" "$work/run1.log" "$work/run2.log"; then fail "a secret key is in the playbook's output"; fi
done
[ "$(stat -c %a "$work/coordinator/etc/stemfarm/keys/coordinator.key")" = 600 ] || fail "coordinator.key is not 0600"
[ -f "$work/coordinator/etc/stemfarm/keys/allow/node-node-1.pub" ] || fail "node-1's key is not in the allowlist"

# A render through the deployed farm equals an embedded render.
"$build/stemfarm-gen" bench "$work/session" --tracks 6 --seconds 30 --stems 3 >/dev/null
"$build/stemfarm" render "$work/session/session.yaml" -o "$work/embedded" --nodes 1 >/dev/null 2>&1 ||
  fail "the embedded render failed"
for i in $(seq 100); do
  "$work/coordinator/bin/stemfarm" status --farm "tcp://127.0.0.1:$port" --json \
    --key "$work/coordinator/etc/stemfarm/keys/clients/me.key" \
    --server-key "$work/coordinator/etc/stemfarm/keys/coordinator.pub" > "$work/status.json" 2>/dev/null || true
  grep -q '"node-2"' "$work/status.json" && grep -q '"node-1"' "$work/status.json" && break
  sleep 0.1
done
grep -q '"node-2"' "$work/status.json" || fail "the nodes did not join: $(cat "$work/status.json")"
"$work/coordinator/bin/stemfarm" render "$work/session/session.yaml" --farm "tcp://127.0.0.1:$port" \
  -o "$work/deliveries/bench" --key "$work/coordinator/etc/stemfarm/keys/clients/me.key" \
  --server-key "$work/coordinator/etc/stemfarm/keys/coordinator.pub" > "$work/render.log" 2>&1 ||
  { cat "$work/render.log" >&2; fail "the render through the deployed farm failed"; }
n=0
for f in "$work"/embedded/*.wav; do
  cmp -s "$f" "$work/deliveries/bench/$(basename "$f")" || fail "$(basename "$f") differs from the embedded render"
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n stems"

# The deployed coordinator's metrics saw the render.
metrics=$(curl -sf "http://127.0.0.1:$http_port/metrics") || fail "no metrics on port $http_port"
grep -q '^stemfarm_renders_finished_total{outcome="delivered"} 1$' <<<"$metrics" || fail "metrics: $metrics"

# Lint and unit checks.
(cd "$src/ansible" && ansible-lint -q site.yml roles/ > "$work/lint.log" 2>&1) || { cat "$work/lint.log" >&2; fail "ansible-lint"; }
for unit in "$work"/coordinator/etc/systemd/system/stemfarm-coordinator.service "$work"/node-1/etc/systemd/system/stemfarm-node.service; do
  out=$(systemd-analyze verify --man=no "$unit" 2>&1 | grep -v -e "Failed to connect to" -e "is not a valid user" -e "Unknown user" || true)
  [ -z "$out" ] || fail "systemd-analyze verify $(basename "$unit"): $out"
done
echo "test_ansible: ok: deployed, idempotent, rendered $n stems byte-identical through the farm on port $port"
