#!/usr/bin/env python3
"""Drive `shotlist emulator` with the official OpenAI Python SDK.

Creates a Sora 2 video with `client.videos.create_and_poll`, downloads it with
`client.videos.download_content`, writes the MP4 and checks it is one (`ftyp` box at
offset 4). Exits non-zero on any failure.

Usage:
    shotlist emulator --listen 127.0.0.1:0 --time-scale 600 --api-key KEY &
    python3 tests/sdk/openai_sdk_check.py --base-url http://127.0.0.1:PORT/v1 \
        --api-key KEY --out /tmp/sdk.mp4

Needs `pip install openai`. The base URL ends in `/v1` (the SDK appends `/videos`).
"""

import argparse
import os
import sys
import warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("SHOTLIST_EMULATOR_URL", "http://127.0.0.1:8089/v1"))
    parser.add_argument("--api-key", default=os.environ.get("SHOTLIST_EMULATOR_API_KEY", "emulator"))
    parser.add_argument("--out", default="openai_sdk_check.mp4")
    parser.add_argument("--poll-interval-ms", type=int, default=50)
    args = parser.parse_args()

    # The SDK warns that OpenAI's own Sora API is deprecated; the emulator is not.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from openai import OpenAI
    except ImportError:
        print("error: the `openai` package is not installed (pip install openai)", file=sys.stderr)
        return 2

    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=3)
    video = client.videos.create_and_poll(
        model="sora-2",
        prompt="A paper boat drifting down a rainy street, shotlist SDK check",
        size="1280x720",
        seconds="4",
        poll_interval_ms=args.poll_interval_ms,
    )
    if video.status != "completed":
        print(f"error: video {video.id} ended as {video.status}: {video.error}", file=sys.stderr)
        return 1
    if video.size != "1280x720" or video.seconds != "4" or video.progress != 100:
        print(f"error: unexpected video fields: {video}", file=sys.stderr)
        return 1

    content = client.videos.download_content(video.id, variant="video")
    data = content.read()
    if len(data) < 8 or data[4:8] != b"ftyp":
        print(f"error: the download of {video.id} is not an MP4 ({len(data)} bytes)", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(data)

    listed = client.videos.list(limit=10)
    if video.id not in [v.id for v in listed.data]:
        print(f"error: {video.id} is missing from the list", file=sys.stderr)
        return 1
    deleted = client.videos.delete(video.id)
    if not deleted.deleted:
        print(f"error: {video.id} was not deleted", file=sys.stderr)
        return 1

    print(f"ok: {video.id} completed, {len(data)} bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
