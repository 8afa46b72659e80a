#!/bin/bash
# A worker for the restart benchmark (bench.py). It logs its start (restart count, rank, time in
# ns) to $BENCH_LOG. In the first attempt, rank $FAIL_RANK waits until every rank has started,
# logs "fail" and exits 1; the others sleep until the launcher stops them. Later attempts exit 0.
set -u
echo "start $TORCHELASTIC_RESTART_COUNT $RANK $(date +%s%N)" >>"$BENCH_LOG"
if [ "$TORCHELASTIC_RESTART_COUNT" = 0 ]; then
  if [ "$RANK" = "$FAIL_RANK" ]; then
    for _ in $(seq 2000); do
      [ "$(grep -c '^start 0 ' "$BENCH_LOG")" -ge "$WORLD_SIZE" ] && break
      sleep 0.01
    done
    echo "fail 0 $RANK $(date +%s%N)" >>"$BENCH_LOG"
    exit 1
  fi
  exec sleep 60
fi
exit 0
