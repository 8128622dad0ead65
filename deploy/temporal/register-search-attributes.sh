#!/bin/sh
# Registers custom search attributes on a Temporal namespace, safe to run on every start.
#
#   register-search-attributes.sh --name SparkifyAssets --type KeywordList [--name N --type T ...]
#
# Environment: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE (default: default),
# SETUP_TIMEOUT_SECONDS (default: 300). Needs the `temporal` CLI on PATH.
#
# The server may still be creating the namespace when this starts, so every failure is retried
# until the deadline. An attribute that already exists with the wanted type counts as done; one
# that exists with another type is an error, because workflows would then fail to upsert it and
# only an operator can decide whether to drop the old one.
set -eu

address="${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS to the frontend host:port}"
namespace="${TEMPORAL_NAMESPACE:-default}"
timeout="${SETUP_TIMEOUT_SECONDS:-300}"
deadline=$(($(date +%s) + timeout))

die() {
  echo "register-search-attributes: $*" >&2
  exit 1
}

# CLI versions print types as KeywordList, KEYWORD_LIST or INDEXED_VALUE_TYPE_KEYWORD_LIST.
normalize() {
  printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -d '_' | sed 's/^indexedvaluetype//'
}

register() {
  name=$1
  type=$2
  while :; do
    if out=$(temporal operator search-attribute list --address "$address" --namespace "$namespace" 2>&1); then
      have=$(printf '%s\n' "$out" | awk -v n="$name" '$1 == n { print $2; exit }')
      if [ -n "$have" ]; then
        [ "$(normalize "$have")" = "$(normalize "$type")" ] ||
          die "$name is registered on $namespace as $have, not $type; remove it (temporal operator search-attribute remove) or rename ours"
        echo "$name ($type): already registered on $namespace"
        return 0
      fi
      if out=$(temporal operator search-attribute create --address "$address" --namespace "$namespace" \
        --name "$name" --type "$type" 2>&1); then
        echo "$name ($type): registered on $namespace"
        return 0
      fi
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "gave up on $name after ${timeout}s: $out"
    echo "waiting for namespace $namespace at $address: $(printf '%s' "$out" | tail -n 1)"
    sleep 2
  done
}

[ $# -gt 0 ] || die "usage: $0 --name NAME --type TYPE [--name NAME --type TYPE ...]"
while [ $# -gt 0 ]; do
  [ $# -ge 4 ] && [ "$1" = --name ] && [ "$3" = --type ] ||
    die "expected --name NAME --type TYPE pairs, got: $*"
  register "$2" "$4"
  shift 4
done
