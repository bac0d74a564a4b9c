#!/usr/bin/env python3
"""Counts the instructions a binary runs from exec to its first Runtime API
poll, with valgrind's callgrind (repeatable on a noisy machine, unlike
timings). Usage: init_instructions.py BINARY [BINARY ...]; prints one line per
binary and leaves the profiles in target/bench/callgrind.<name>.1 for
callgrind_annotate --inclusive=yes."""
import http.server
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def count(binary):
    name = pathlib.Path(binary).name
    out = ROOT / f"target/bench/callgrind.{name}"
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    state = {}
    polled = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            subprocess.run(["callgrind_control", "--dump=first-poll", str(state["proc"].pid)], capture_output=True)
            polled.set()
            time.sleep(3)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="instances", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST")
    state["proc"] = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not polled.wait(120):
        sys.exit(f"{binary} did not poll")
    time.sleep(1)
    state["proc"].kill()
    server.shutdown()
    text = pathlib.Path(f"{out}.1").read_text()
    total = int(re.search(r"^summary: (\d+)", text, re.M).group(1))
    print(f"{name}: {total:,} instructions from exec to the first poll ({out}.1)")


if __name__ == "__main__":
    os.makedirs(ROOT / "target/bench", exist_ok=True)
    for b in sys.argv[1:]:
        count(b)
