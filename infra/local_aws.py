"""The local AWS endpoint: moto's server, with DynamoDB requests taken one at a time.

moto's DynamoDB backend is not safe under concurrent requests: TransactWriteItems deep-copies a
table while another request thread changes it, and answers 500 ("dictionary changed size during
iteration") under the load the fault suite and a busy `make run` produce. Real DynamoDB serializes
conflicting writes itself, so taking DynamoDB requests one at a time here changes no behaviour we
rely on; SQS requests (long polls of up to 20 s) keep running side by side.

    python -m infra.local_aws -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def one_dynamodb_request_at_a_time(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:  # the whole body is produced under the lock: moto answers with a complete list
            return list(app(environ, start_response))

    return serialized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds queue URLs from it, as moto_server does
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, one_dynamodb_request_at_a_time(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
