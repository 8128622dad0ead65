#!/bin/sh
# A stand-in for spark-submit that does no Spark work: it reads the job's arguments as
# spark/run.py would, writes a well-formed report (report_version 2) for the assets it was asked
# for, and exits 0. The orchestration benchmark runs the local EMR with it, so what it measures is
# Temporal, the local EMR and the bookkeeping, not Spark, and not this command either: POSIX sh
# starts in about a millisecond where node took some 80 ms of CPU per step.
#
# Which assets are daily comes from SPARKIFY_NOOP_DAILY_ASSETS (comma-separated), set by whoever
# starts the local EMR from the asset graph (assets/), so the graph stays the one place it is said.
set -eu

assets='' start='' end='' report='' raw='' lake=''
while [ $# -gt 0 ]; do
  case $1 in
    --assets | --start | --end | --report | --raw | --lake)
      [ $# -ge 2 ] || { echo "noop-spark-submit: $1 needs a value" >&2; exit 2; }
      # The last occurrence wins, as in run.py's argparse.
      case $1 in
        --assets) assets=$2 ;; --start) start=$2 ;; --end) end=$2 ;;
        --report) report=$2 ;; --raw) raw=$2 ;; --lake) lake=$2 ;;
      esac
      shift 2 ;;
    *) shift ;;
  esac
done
if [ -z "$report" ] || [ -z "$assets" ]; then
  echo 'noop-spark-submit: --assets and --report are required' >&2
  exit 2
fi
if [ -z "${SPARKIFY_NOOP_DAILY_ASSETS+set}" ]; then
  echo 'noop-spark-submit: set SPARKIFY_NOOP_DAILY_ASSETS to the daily assets (comma-separated)' >&2
  exit 2
fi

# The days of [start, end), one date(1) call for all of them.
days=''
if [ -n "$start" ] && [ -n "$end" ]; then
  n=$((($(date -u -d "$end" +%s) - $(date -u -d "$start" +%s)) / 86400))
  if [ "$n" -gt 0 ]; then
    days=$(i=0; while [ "$i" -lt "$n" ]; do echo "$start + $i day"; i=$((i + 1)); done | date -u -f - +%F)
  fi
fi

# {"2018-11-01":<value>,…} over the days.
per_day() {
  out='' sep=''
  for d in $days; do out="$out$sep\"$d\":$1"; sep=','; done
  printf '{%s}' "$out"
}

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
json_or_null() { if [ -n "$1" ]; then printf '"%s"' "$1"; else printf 'null'; fi; }
assets_json='' assets_list='' sep=''
old_ifs=$IFS
IFS=','
for a in $assets; do
  daily=false
  for k in $SPARKIFY_NOOP_DAILY_ASSETS; do [ "$k" = "$a" ] && daily=true; done
  if $daily; then
    rows_per_day=$(IFS=$old_ifs; per_day 0)
    versions=$(IFS=$old_ifs; per_day '"0000000000000000"')
    shape="\"rows_per_day\":$rows_per_day,\"table_rows\":null,\"data_version\":null,\"data_versions\":$versions"
  else
    shape='"rows_per_day":null,"table_rows":0,"data_version":"0000000000000000","data_versions":null'
  fi
  assets_json="$assets_json$sep\"$a\":{\"rows\":0,$shape,\"quarantined\":{},\"quarantine\":{\"rows\":0,\"location\":null},\"duplicates_dropped\":0,\"input_files\":0,\"duration_s\":0,\"checks\":[],\"details\":{},\"published\":true,\"not_published\":null,\"error\":null}"
  assets_list="$assets_list$sep\"$a\""
  sep=','
done
IFS=$old_ifs

case $report in
  file://*) file=${report#file://} ;;
  *) file=$report ;;
esac
mkdir -p "$(dirname "$file")"
printf '%s\n' "{\"report_version\":2,\"status\":\"succeeded\",\"published\":true,\"staging\":null,\"spark_version\":\"noop\",\"started_at\":\"$now\",\"finished_at\":\"$now\",\"duration_s\":0,\"args\":{\"assets\":[$assets_list],\"raw\":\"$raw\",\"lake\":\"$lake\",\"start\":$(json_or_null "$start"),\"end\":$(json_or_null "$end")},\"quarantine\":{\"rows\":0,\"by_reason\":{},\"location\":null},\"assets\":{$assets_json},\"failed_checks\":[],\"warnings\":[],\"error\":null}" >"$file"
