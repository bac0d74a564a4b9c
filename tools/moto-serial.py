#!/usr/bin/env python3
"""moto's server, answering one request at a time.

moto runs each request on its own thread without locking its tables, and
rolls a failed TransactWriteItems back by restoring a copy of the whole table
taken when that transaction began: writes that other requests committed in
between are lost, and a transaction can be seen half done. DynamoDB serializes
conflicting writes; serving one request at a time gives the tests the same
atomicity. (Found by tests/faults.rs: a load with faults left an instance
without its idempotency record.) Arguments are moto_server's."""
import moto.server
import werkzeug.serving

_run_simple = moto.server.run_simple


def serial_run_simple(*args, **kwargs):
    kwargs["threaded"] = False
    return _run_simple(*args, **kwargs)


moto.server.run_simple = serial_run_simple
werkzeug.serving.run_simple = serial_run_simple

if __name__ == "__main__":
    moto.server.main()
