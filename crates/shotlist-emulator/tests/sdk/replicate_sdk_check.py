#!/usr/bin/env python3
"""Drive `shotlist emulator` with Replicate's official Python client, unchanged.

Creates a prediction with `replicate.models.predictions.create`, waits with
`prediction.wait()` (polling), checks it is listed and readable, then runs the same input
with `replicate.run` (a create with `Prefer: wait`) and downloads its output with the
client's own `FileOutput.read()`. Writes the MP4 and checks it is one (`ftyp` box at
offset 4). Exits non-zero on any failure.

Usage (the client reads its environment):
    REPLICATE_BASE_URL=https://127.0.0.1:PORT REPLICATE_API_TOKEN=KEY \\
    SSL_CERT_FILE=cert.pem REPLICATE_POLL_INTERVAL=0.05 \\
    python3 tests/sdk/replicate_sdk_check.py --model OWNER/NAME --input '{...}' --out out.mp4

Needs `pip install replicate` (1.x: `REPLICATE_BASE_URL` has no `/v1`).
"""

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="the model input, JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import replicate
    except ImportError:
        print("error: the `replicate` package is not installed (pip install replicate)", file=sys.stderr)
        return 2
    model_input = json.loads(args.input)

    prediction = replicate.models.predictions.create(model=args.model, input=model_input)
    if prediction.status != "starting":
        print(f"error: a new prediction is {prediction.status}", file=sys.stderr)
        return 1
    prediction.wait()
    if prediction.status != "succeeded" or not isinstance(prediction.output, str):
        print(f"error: {prediction.id} ended as {prediction.status}: {prediction.error}", file=sys.stderr)
        return 1
    if replicate.predictions.get(prediction.id).output != prediction.output:
        print(f"error: {prediction.id} reads back differently", file=sys.stderr)
        return 1
    listed = [p.id for p in replicate.predictions.list().results]
    if prediction.id not in listed:
        print(f"error: {prediction.id} is missing from the list {listed}", file=sys.stderr)
        return 1

    output = replicate.run(args.model, input=model_input)
    data = output.read()
    if len(data) < 8 or data[4:8] != b"ftyp":
        print(f"error: the output of `replicate.run` is not an MP4 ({len(data)} bytes)", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"ok: {prediction.id} succeeded; run() output {output.url}: {len(data)} bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
