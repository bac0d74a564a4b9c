#!/usr/bin/env python3
"""`make run`'s HTTP front: serves 127.0.0.1:LISTEN_PORT as API Gateway's REST
API does (what the template deploys) and hands each request, as a REST proxy
event, to the function behind `cargo lambda watch`'s Lambda Invoke API on
INVOKE_PORT: the real runtime loop. (`cargo lambda watch`'s own HTTP front
answers a header value or a body that is not UTF-8 with a 500 of its own,
`{"type":"https://httpstatuses.com/500",...}`, before the function runs;
API Gateway hands such bytes over, and the function answers them.)

  api-front.py LISTEN_PORT INVOKE_PORT"""
import os
import pathlib
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_function import ApiGatewayFront  # noqa: E402


class Behind:
    def __init__(self, port):
        self.port = port


def main():
    listen, invoke = int(sys.argv[1]), int(sys.argv[2])
    front = ApiGatewayFront(Behind(invoke), listen_port=listen)
    # At once, with nothing in flight to keep: no interpreter shutdown to race.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    print(f"front on {front.url}, the function's invoke API on 127.0.0.1:{invoke}", file=sys.stderr, flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
