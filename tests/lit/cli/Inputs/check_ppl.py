"""Compares `nibble perplexity --json` output with llama-perplexity's figure in
shared/reference/perplexity.json, within the reference README's relative tolerance
(1e-3 for f32/f16, 5e-3 for quantized models). Usage: check_ppl.py OUT.json REF.json VARIANT CTX"""
import json
import sys

got = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))
variant, ctx = sys.argv[3], int(sys.argv[4])
want = next(r for r in ref["results"] if r["variant"] == variant and r["n_ctx"] == ctx)
tol = 1e-3 if variant in ("f32", "f16") else 5e-3
rel = abs(got["ppl"] - want["ppl"]) / want["ppl"]
status = "ok" if rel <= tol and got["chunks"] == want["n_chunks"] else "MISMATCH"
print(f"{status} {variant} c={ctx}: nibble {got['ppl']:.4f} llama.cpp {want['ppl']:.4f} rel {rel:.2e} (tol {tol:g})")
sys.exit(0 if status == "ok" else 1)
