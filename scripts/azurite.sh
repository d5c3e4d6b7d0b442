#!/usr/bin/env bash
# A throwaway Azurite (Microsoft's Azure Storage emulator) blob service for fresco's tests.
#
#   eval "$(scripts/azurite.sh)"          # start (or find running), print `export` lines
#   FRESCO_TEST_AZURITE=1 cargo test -p fresco-store
#   scripts/azurite.sh stop               # stop it and remove its data
#
# Azurite comes from the npm registry into the project-local .fresco/node (git-ignored) and
# serves only the blob service on 127.0.0.1:${FRESCO_AZURITE_PORT:-10000}, with its data in a
# temporary folder. stdout carries nothing but the `export` lines; progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$root/.fresco/node"
state_dir="$root/.fresco/azurite"
pid_file="$state_dir/pid"
data_file="$state_dir/data-dir"
log_file="$state_dir/azurite.log"
host=127.0.0.1
port="${FRESCO_AZURITE_PORT:-10000}"
# Azurite's well-known development account: public, documented by Microsoft, not a secret.
# https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key
account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

say() { echo "azurite.sh: $*" >&2; }

answers() {
  # Any HTTP status means the blob service is up (an unauthenticated GET gets 4xx).
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$host:$port/" || true)"
  [[ "$code" != "000" && -n "$code" ]]
}

our_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

print_env() {
  local url="http://$host:$port"
  cat <<ENV
export AZURE_STORAGE_USE_EMULATOR=true
export AZURITE_BLOB_STORAGE_URL=$url
export AZURE_STORAGE_ACCOUNT_NAME=$account
export AZURE_STORAGE_ACCOUNT_KEY='$key'
export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=$url/$account;'
ENV
}

install() {
  if [[ -x "$node_dir/node_modules/.bin/azurite-blob" ]]; then
    return
  fi
  command -v npm >/dev/null || { say "npm not found: install Node.js 18+ and npm"; exit 1; }
  say "installing azurite from the npm registry into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error azurite >&2
}

start() {
  mkdir -p "$state_dir"
  if pid="$(our_pid)" && answers; then
    say "already running (pid $pid) on $host:$port"
    print_env
    return
  fi
  if answers; then
    say "something already answers on $host:$port; assuming it is Azurite"
    print_env
    return
  fi
  install
  # A stale run (killed, machine rebooted) left its data behind: it is ours to remove.
  if [[ -f "$data_file" ]]; then
    rm -rf "$(cat "$data_file")"
  fi
  local data
  data="$(mktemp -d "${TMPDIR:-/tmp}/fresco-azurite.XXXXXX")"
  echo "$data" >"$data_file"
  # setsid: its own session, so it outlives this script and the shell that ran it.
  setsid "$node_dir/node_modules/.bin/azurite-blob" \
    --blobHost "$host" --blobPort "$port" --location "$data" \
    --silent --skipApiVersionCheck --loose --disableProductStyleUrl --disableTelemetry \
    >"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  for _ in $(seq 1 100); do
    if answers; then
      say "started (pid $(cat "$pid_file")) on $host:$port, data in $data"
      print_env
      return
    fi
    if ! our_pid >/dev/null; then
      say "azurite exited; its log ($log_file):"
      tail -n 30 "$log_file" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  say "azurite did not answer on $host:$port within 20 s; its log ($log_file):"
  tail -n 30 "$log_file" >&2 || true
  exit 1
}

stop() {
  if pid="$(our_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    say "stopped (pid $pid)"
  else
    say "not running"
  fi
  rm -f "$pid_file"
  if [[ -f "$data_file" ]]; then
    rm -rf "$(cat "$data_file")"
    rm -f "$data_file"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) say "usage: scripts/azurite.sh [start|stop|env]"; exit 2 ;;
esac
