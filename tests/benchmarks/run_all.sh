#!/usr/bin/env bash
# Run every benchmark in this folder, one after the other (never in parallel: they time CPU).
#
#   bash tests/benchmarks/run_all.sh            # full runs (~16 minutes on 2 cores)
#   bash tests/benchmarks/run_all.sh --quick    # smoke run (~1.5 minutes)
#
# Python: $PYTHON if set, else the active virtualenv, else ./.venv (what `make bench` builds), else python3.
# The output is also saved to $BENCH_OUT (default: /tmp/agentcost-bench-<timestamp>.txt).
# Exit status: non-zero when a benchmark failed to run or found events missing (not for a missed target).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    py="$VIRTUAL_ENV/bin/python"
elif [[ -x "$root/.venv/bin/python" ]]; then
    py="$root/.venv/bin/python"
else
    py="python3"
fi
out="${BENCH_OUT:-${TMPDIR:-/tmp}/agentcost-bench-$(date +%Y%m%d-%H%M%S).txt}"

run_all() {
    local status=0
    echo "# agentcost benchmarks — $(date -Iseconds) — $("$py" -V 2>&1) — $(nproc) CPU(s)"
    for bench in bench_langchain_callback bench_otel bench_budget_call bench_llamaindex_handler bench_ledger bench_budgets bench_context bench_routing bench_llamaindex_instructions bench_langchain_instructions bench_profile_replay bench_dashboard bench_tool_cache; do
        echo
        echo "================================================================ $bench"
        "$py" "$here/$bench.py" "$@" || { echo "!! $bench exited with status $?"; status=1; }
    done
    for bench in bench_response_cache; do  # the response cache against LangChain's caches
        echo
        echo "================================================================ $bench"
        "$py" "$here/$bench.py" "$@" || { echo "!! $bench exited with status $?"; status=1; }
    done
    return "$status"
}

# Offline tiktoken: the scripts default TIKTOKEN_CACHE_DIR to <workspace>/shared/tiktoken-cache when it exists.
run_all "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo
echo "saved to $out"
exit "$rc"
