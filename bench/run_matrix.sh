#!/usr/bin/env bash
# The standard benchmark matrix: synthetic TinyLlama-1.1B shapes (the shapes of
# ../shared/docs/baselines.md) x formats x targets x threads, measured with `nibble bench`, plus the
# machine's DRAM read ceiling and the JIT matmul kernels (bench/matmul_bench). Prints a markdown
# report (bench/RESULTS.md holds one for this machine).
#
#   bench/run_matrix.sh [-o REPORT.md] [--formats "q4_k_m q4_0 q8_0 f16"] [--threads "1 2"]
#                       [--targets "cpu vulkan"] [--models DIR] [--quick]
#
# --quick: fewer repetitions and no matmul_bench (a smoke run, minutes instead of ~20).
# Models are written once to --models (default build/bench-models; about 4.5 GiB for all formats).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
formats="q4_k_m q4_0 q8_0 f16"
threads_list="1 2"
targets="cpu vulkan"
models=build/bench-models
quick=0
while (($#)); do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --formats) formats=$2; shift 2 ;;
    --threads) threads_list=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "run_matrix.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done

nibble=build/bin/nibble
[ -x "$nibble" ] || { echo "run_matrix.sh: $nibble is missing: run scripts/setup.sh first" >&2; exit 1; }
mkdir -p "$models"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

reps=3; [ "$quick" = 1 ] && reps=1
for f in $formats; do
  model="$models/tinyllama-1.1b-$f.gguf"
  [ -f "$model" ] || "$nibble" synth --preset tinyllama-1.1b -t "$f" -q -o "$model" >&2
  for target in $targets; do
    if [ "$target" = cpu ]; then
      for t in $threads_list; do
        echo "bench: $f cpu, $t threads" >&2
        "$nibble" bench "$model" --target cpu --threads "$t" -p 128 -n 32 -r "$reps" --json >>"$results"
      done
    else
      # lavapipe runs shaders on the CPU: a short run (llama.cpp's shaders do 0.3-0.7 t/s here).
      if ! "$nibble" devices | grep -q '^vulkan:0'; then echo "bench: no Vulkan device, skipping $target" >&2; continue; fi
      echo "bench: $f $target" >&2
      "$nibble" bench "$model" --target "$target" -p 16 -n 4 -r 1 --json >>"$results" ||
        echo "bench: $f $target failed" >&2
    fi
  done
done

# The machine's ceilings always; the kernel matrix (2 threads, the issue's shapes) unless --quick.
kernels=$(mktemp)
trap 'rm -f "$results" "$kernels"' EXIT
filter='peak|dram_read'
[ "$quick" = 0 ] && filter='peak|dram_read|/t2/|compile'
if [ -x build/bin/matmul_bench ]; then
  echo "bench: matmul kernels ($filter)" >&2
  build/bin/matmul_bench --benchmark_filter="$filter" --benchmark_out="$kernels" --benchmark_out_format=json \
    >/dev/null 2>&1 || echo "bench: matmul_bench failed" >&2
fi

python3 - "$results" "$kernels" <<'EOF' | if [ -n "$out" ]; then tee "$out"; else cat; fi
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
try:
    kernels = [k for k in json.load(open(sys.argv[2]))["benchmarks"] if k.get("run_type") != "aggregate"]
except (OSError, ValueError, KeyError):
    kernels = []
llama = {"f16": (85, 14.2), "q8_0": (96, 22.4), "q4_0": (98, 41.4), "q4_k_m": (62, 34.4)}
def threads_of(name):
    return 2 if "/t2" in name else 1
ceil = {}
for k in kernels:
    base = k["name"].split("/")[0]
    if base in ("dram_read", "peak"):
        what = base if base == "dram_read" else k["name"].split("/")[1]
        ceil[(what, threads_of(k["name"]))] = k.get("GB/s", k.get("GFLOP/s", k.get("GOP/s", 0)))
dram = {t: v for (w, t), v in ceil.items() if w == "dram_read"}
dev = subprocess.run(["build/bin/nibble", "devices"], capture_output=True, text=True).stdout.strip()
print("## Machine\n")
print("```\n" + dev + "\n```\n")
if ceil:
    print("| ceiling (measured in this run) | 1 thread | 2 threads |\n|---|---|---|")
    for what, unit in (("dram_read", "GB/s"), ("f32_fma", "GFLOP/s"), ("int8_dot", "GOP/s")):
        print(f"| {what} | " + " | ".join(f"{ceil[(what, t)]:.1f} {unit}" if (what, t) in ceil else "" for t in (1, 2)) + " |")
    print()
print("## End to end: synthetic TinyLlama-1.1B shapes (`nibble bench`)\n")
print("| weights | target | threads | load | pp t/s | tg t/s | tg weight GB/s | of DRAM | llama.cpp pp / tg (2 threads, baselines.md) | peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    f = r["model"].rsplit("-", 1)[-1].removesuffix(".gguf")
    pp = f"{r['pp_tps']:.1f} ± {r['pp_tps_sd']:.1f} (p{r['n_prompt']})"
    tg = f"{r['tg_tps']:.2f} ± {r['tg_tps_sd']:.2f} (n{r['n_gen']})"
    of = f"{100 * r['tg_weight_gbps'] / dram[r['threads']]:.0f}%" if r["target"] == "cpu" and r["threads"] in dram else ""
    ref = "%s / %s" % llama[f] if f in llama else ""
    print(f"| {f} | {r['target']} | {r['threads']} | {r['load_s']:.2f} s | {pp} | {tg} | {r['tg_weight_gbps']:.1f} | {of} | {ref} | {r['peak_rss_mib']:.0f} MiB |")
mm = [k for k in kernels if k["name"].split("/")[0] not in ("dram_read", "peak")]
if mm:
    print("\n## Kernels (`bench/matmul_bench`, 2 threads; median iteration)\n")
    print("| benchmark | time | weight GB/s | GFLOP/s (GOP/s) | x f32 | of DRAM | kernel |")
    print("|---|---|---|---|---|---|---|")
    num = lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else ""
    for k in mm:
        name = k["name"].split("/min_time")[0].split("/iterations")[0]
        print(f"| {name} | {k['real_time']:.3f} {k['time_unit']} | {num(k.get('GB/s'))} | {num(k.get('GFLOP/s'))} | "
              f"{num(k.get('x_f32'))} | {num(k.get('of_dram'))} | {k.get('label', '')} |")
EOF
