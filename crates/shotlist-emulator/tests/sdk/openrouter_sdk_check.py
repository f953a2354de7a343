#!/usr/bin/env python3
"""Drive `shotlist emulator` with OpenRouter's official Python client, unchanged.

Lists the video models with `video_generation.list_videos_models()` (the model must be
there), checks that a length the model does not take raises the client's
`BadRequestResponseError`, and that a credit the job exceeds raises
`PaymentRequiredResponseError` when `--expect-402` is given, submits a video with
`video_generation.generate(...)` (status `pending`), polls
`video_generation.get_generation(job_id=...)` until it is `completed` (the client has no
polling helper), and downloads it with `video_generation.get_video_content(job_id=...,
index=0)`. Writes the MP4 and checks it is one (`ftyp` box at offset 4). Exits non-zero
on any failure.

Usage:
    python3 tests/sdk/openrouter_sdk_check.py --server-url http://127.0.0.1:PORT/api/v1 \\
        --api-key KEY --model OWNER/NAME --request '{"resolution": ..., "duration": ...}' \\
        --out out.mp4

Needs `pip install openrouter` (OpenRouter's Speakeasy-generated SDK).
"""

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", default="A paper boat, OpenRouter SDK check")
    parser.add_argument("--request", required=True, help="size and length fields, JSON")
    parser.add_argument("--bad-duration", type=int, required=True)
    parser.add_argument("--expect-402", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        from openrouter import OpenRouter, errors
    except ImportError:
        print("error: the `openrouter` package is not installed (pip install openrouter)", file=sys.stderr)
        return 2
    fields = json.loads(args.request)

    with OpenRouter(api_key=args.api_key, server_url=args.server_url) as client:
        videos = client.video_generation
        listed = [m.id for m in videos.list_videos_models().data]
        if args.model not in listed:
            print(f"error: {args.model} is not in the model list {listed}", file=sys.stderr)
            return 1
        try:
            videos.generate(model=args.model, prompt=args.prompt, **{**fields, "duration": args.bad_duration})
            print(f"error: a duration of {args.bad_duration} s was accepted", file=sys.stderr)
            return 1
        except errors.BadRequestResponseError as e:
            if e.data.error.code != 400:
                print(f"error: a 400 says code {e.data.error.code}", file=sys.stderr)
                return 1

        job = videos.generate(model=args.model, prompt=args.prompt, **fields)
        if job.status != "pending":
            print(f"error: a new job is {job.status}", file=sys.stderr)
            return 1
        if args.expect_402:
            try:
                videos.generate(model=args.model, prompt=args.prompt, **fields)
                print("error: a job beyond the credit was accepted", file=sys.stderr)
                return 1
            except errors.PaymentRequiredResponseError as e:
                if e.data.error.code != 402:
                    print(f"error: a 402 says code {e.data.error.code}", file=sys.stderr)
                    return 1
        deadline = time.monotonic() + 60
        while job.status in ("pending", "in_progress"):
            if time.monotonic() > deadline:
                print(f"error: {job.id} is still {job.status}", file=sys.stderr)
                return 1
            time.sleep(0.05)
            job = videos.get_generation(job_id=job.id)
        if job.status != "completed" or not job.unsigned_urls:
            print(f"error: {job.id} ended as {job.status}: {job.error}", file=sys.stderr)
            return 1

        response = videos.get_video_content(job_id=job.id, index=0)
        try:
            data = response.read()
        finally:
            response.close()
        if len(data) < 8 or data[4:8] != b"ftyp":
            print(f"error: the content of {job.id} is not an MP4 ({len(data)} bytes)", file=sys.stderr)
            return 1
        with open(args.out, "wb") as f:
            f.write(data)
        cost = job.usage.cost if job.usage else None
        print(f"ok: {job.id} completed (cost {cost}); {len(data)} bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
