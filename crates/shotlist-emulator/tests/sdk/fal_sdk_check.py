#!/usr/bin/env python3
"""Drive `shotlist emulator` with fal's official Python client (`fal-client`), unchanged.

Submits with `fal_client.submit`, polls `handle.status(with_logs=True)` until
`Completed`, reads the result with `handle.get()`, reads status and result again by
request id (`fal_client.status`/`fal_client.result`, which rebuild the URLs from
`FAL_QUEUE_RUN_HOST`), then downloads `video.url` with no credential. Writes the MP4 and
checks it is one (`ftyp` box at offset 4). Exits non-zero on any failure.

Usage: the client reads `FAL_QUEUE_RUN_HOST` when it is imported and always speaks
https, so the emulator runs with `--tls-cert/--tls-key` and the client trusts the
certificate through `SSL_CERT_FILE` (httpx reads it):
    FAL_QUEUE_RUN_HOST=127.0.0.1:PORT FAL_KEY=KEY SSL_CERT_FILE=cert.pem \\
    python3 tests/sdk/fal_sdk_check.py --model fal-ai/veo3.1 --input '{...}' --out out.mp4

Needs `pip install fal-client`.
"""

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="the model input, JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import fal_client
        import httpx
    except ImportError:
        print("error: the `fal-client` package is not installed (pip install fal-client)", file=sys.stderr)
        return 2
    arguments = json.loads(args.input)

    handle = fal_client.submit(args.model, arguments=arguments)
    seen = []
    deadline = time.monotonic() + 60
    while True:
        status = handle.status(with_logs=True)
        seen.append(type(status).__name__)
        if isinstance(status, fal_client.Completed):
            break
        if time.monotonic() > deadline:
            print(f"error: {handle.request_id} did not complete: {seen}", file=sys.stderr)
            return 1
        time.sleep(0.05)
    if status.error is not None or "inference_time" not in status.metrics:
        print(f"error: {handle.request_id} completed as {status}", file=sys.stderr)
        return 1
    result = handle.get()
    again = fal_client.result(args.model, handle.request_id)
    by_id = fal_client.status(args.model, handle.request_id)
    if again != result or not isinstance(by_id, fal_client.Completed):
        print(f"error: {handle.request_id} reads back differently by id", file=sys.stderr)
        return 1

    video = result["video"]
    response = httpx.get(video["url"])
    response.raise_for_status()
    data = response.content
    if len(data) < 8 or data[4:8] != b"ftyp" or len(data) != video["file_size"]:
        print(f"error: {video['url']} is not the announced MP4 ({len(data)} bytes)", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"ok: {handle.request_id} went {' -> '.join(dict.fromkeys(seen))}; {len(data)} bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
