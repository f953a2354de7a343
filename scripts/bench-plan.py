#!/usr/bin/env python3
"""Benchmark `shotlist plan` on generated storyboards of 1,000 and 10,000 shots.

Every shot is already rendered (a lockfile entry and a small file on disk), so `plan`
does its full steady-state work: parse and validate the manifest, read the lockfile,
hash each shot's inputs and stat each output. Reported as ratios against baselines
measured in the same run, never as absolute pass/fail times:

  * plan / validate on the same manifest: the cost of lockfile + freshness checks
    over parsing and validation alone;
  * plan(10k) / plan(1k): how planning scales (10.0 is linear).

Peak memory (max RSS) of each command comes from wait4(2).

Usage: python3 scripts/bench-plan.py [--runs 5] [--binary target/release/shotlist]
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = ["480x480", "480x854", "854x480", "720x720", "720x1280", "1280x720", "1080x1080", "1080x1920", "1920x1080"]
MAX_VARIANTS = {"480x480": 4, "480x854": 4, "854x480": 4, "720x720": 2, "720x1280": 2, "1280x720": 2}


def input_hash(prompt, size, seconds, variants):
    w, h = (int(x) for x in size.split("x"))
    key = {"scheme": 1, "api": "azure-jobs", "model": "sora", "prompt": prompt,
           "width": w, "height": h, "seconds": seconds, "variants": variants}
    text = json.dumps(key, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def generate(folder, n):
    os.makedirs(os.path.join(folder, "renders"), exist_ok=True)
    manifest = ["version: 1", "defaults:", "  model: sora", "shots:"]
    lock = ["version: 1", "shots:"]
    entries = []
    for i in range(n):
        sid = f"shot-{i:05d}"
        size = SIZES[i % len(SIZES)]
        seconds = 1 + i % 20
        variants = 1 + i % MAX_VARIANTS.get(size, 1)
        prompt = f"Shot {i}: a slow dolly across a rain-soaked street at night, neon reflections, take {i % 7}."
        manifest += [f"  - id: {sid}", f"    prompt: \"{prompt}\"", f"    size: {size}",
                     f"    seconds: {seconds}", f"    variants: {variants}", "    tags: [bench]"]
        gens = []
        for v in range(1, variants + 1):
            name = f"{sid}.mp4" if v == 1 else f"{sid}-{v}.mp4"
            path = os.path.join(folder, "renders", name)
            data = f"{sid}/{v}".encode()
            with open(path, "wb") as f:
                f.write(data)
            st = os.stat(path)
            gens.append((v, name, hashlib.sha256(data).hexdigest(), len(data), st.st_mtime_ns))
        entries.append((sid, prompt, size, seconds, variants, gens))
    for sid, prompt, size, seconds, variants, gens in sorted(entries):
        w, h = size.split("x")
        lock += [f"  {sid}:", f"    input_hash: {input_hash(prompt, size, seconds, variants)}",
                 "    api: azure-jobs", "    endpoint: local", "    model: sora",
                 "    request:", f"      prompt: {json.dumps(prompt)}", f"      width: {w}", f"      height: {h}",
                 f"      n_seconds: {seconds}", f"      n_variants: {variants}", "      model: sora",
                 "    jobs:", f"    - id: task_{sid}", "      status: succeeded",
                 "      created_at: 2026-11-26T00:00:00Z", "      expires_at: 2099-01-01T00:00:00Z",
                 "      generations:"]
        for v, name, digest, size_b, mtime in gens:
            lock += [f"      - id: gen_{sid}_{v}", f"        variant: {v}", "        file:",
                     f"          path: renders/{name}", f"          sha256: {digest}",
                     f"          bytes: {size_b}", f"          mtime_ns: {mtime}"]
    path = os.path.join(folder, "shotlist.yaml")
    with open(path, "w") as f:
        f.write("\n".join(manifest) + "\n")
    with open(os.path.join(folder, "shotlist.lock"), "w") as f:
        f.write("\n".join(lock) + "\n")
    return path


def measure(cmd, runs):
    """Median wall time of `runs` runs, and the last run's stdout."""
    times, out = [], b""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[:2000]}")
        out = proc.stdout
    return statistics.median(times), out


def measure_rss(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    return usage.ru_maxrss  # KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default="target/release/shotlist")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 10000):
            folder = os.path.join(tmp, str(n))
            manifest = generate(folder, n)
            validate_t, _ = measure([args.binary, "validate", manifest], args.runs)
            plan_t, out = measure([args.binary, "plan", manifest, "--local", "--json"], args.runs)
            plan = json.loads(out)
            if plan["totals"]["fresh"] != n:
                sys.exit(f"expected all {n} shots fresh, plan says {plan['totals']}")
            rss = measure_rss([args.binary, "plan", manifest, "--local"])
            results[n] = (validate_t, plan_t, rss)
            print(f"{n:>6} shots: validate {validate_t * 1000:8.1f} ms   plan {plan_t * 1000:8.1f} ms   "
                  f"plan/validate {plan_t / validate_t:5.2f}x   plan peak RSS {rss / 1024:6.1f} MiB")
    print(f"scaling plan(10k)/plan(1k): {results[10000][1] / results[1000][1]:.2f}x (10.00x is linear)")


if __name__ == "__main__":
    main()
