#!/usr/bin/env python3
"""Serving benchmark: aggregate decode tokens/s and time to first token at several numbers of
concurrent streams, against `dsv3 serve` on a random-weight model (loopback only).

  scripts/bench_serve.py --binary build/dsv3 --config bench/configs/bench-small.json \
      --tokenizer tests/golden/tokenizer/trained --streams 1,2,4,8 --max-tokens 64

It starts the server itself (--random-config, hidden development option), runs every level
once (each stream sends one chat request with a fixed seed), prints a table and stops the server
with SIGTERM. Decode tokens/s = completion tokens of all streams / wall time from the first
token to the last; TTFT = from sending the request to its first content chunk.
"""
import argparse
import http.client
import json
import re
import signal
import subprocess
import threading
import time


def stream_request(port, body, out):
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = last = None
    usage = None
    buf = b""
    while True:
        data = resp.read1(65536)
        if not data:
            break
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            chunk = json.loads(event[6:])
            now = time.perf_counter()
            if chunk.get("usage"):
                usage = chunk["usage"]
            # The first chunk carries the first token; every later chunk (text or finish) a later one.
            if chunk["choices"]:
                if first is None:
                    first = now
                last = now
    conn.close()
    out.append({"status": resp.status, "t0": t0, "first": first, "last": last, "usage": usage})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/dsv3")
    ap.add_argument("--config", default="bench/configs/bench-small.json", help="random weights of this config")
    ap.add_argument("--model", help="serve this model directory instead of random weights")
    ap.add_argument("--tokenizer", default="tests/golden/tokenizer/trained")
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt", default="Tell me about the history of the city and its bridges.")
    args = ap.parse_args()
    levels = [int(x) for x in args.streams.split(",")]
    source = ["--model", args.model] if args.model else ["--random-config", args.config, "--tokenizer", args.tokenizer]
    server = subprocess.Popen([args.binary, "serve", *source,
                               "--port", "0", "--max-batch", str(max(levels)), "--kv-cache-mb", "512"],
                              stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    port = int(re.search(r":(\d+) ", line).group(1))
    print(line.strip())
    print(f"{'streams':>7} {'decode tok/s':>13} {'tok/s/stream':>13} {'TTFT mean ms':>13} {'TTFT max ms':>12}")
    try:
        # One warm-up request (first-touch page faults of the weights).
        stream_request(port, {"model": "dsv3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
                              "stream": True}, [])
        for n in levels:
            results = []
            threads = [threading.Thread(target=stream_request, args=(port, {
                "model": "dsv3", "messages": [{"role": "user", "content": f"{args.prompt} ({i})"}],
                "max_tokens": args.max_tokens, "temperature": 0.7, "seed": i, "stream": True,
                "stream_options": {"include_usage": True}}, results)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert all(r["status"] == 200 and r["first"] for r in results), results
            tokens = sum(r["usage"]["completion_tokens"] for r in results)
            span = max(r["last"] for r in results) - min(r["first"] for r in results)
            # Tokens after each stream's first one are decode tokens.
            decode = (tokens - n) / span if span > 0 else float("nan")
            ttft = [(r["first"] - r["t0"]) * 1000 for r in results]
            print(f"{n:>7} {decode:>13.1f} {decode / n:>13.1f} {sum(ttft) / n:>13.1f} {max(ttft):>12.1f}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
