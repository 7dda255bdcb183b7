#!/bin/bash
# Handler of the streaming function: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# runs this, waits for the port, then forwards each invocation to it as plain HTTP.
# /opt/python is the shared layer; --app-dir makes this folder's app.py importable wherever
# the code was unpacked (LAMBDA_TASK_ROOT on AWS, the repo locally).
export PYTHONPATH="/opt/python${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn --app-dir "$(dirname "$0")" --host 127.0.0.1 --port "${PORT:-8080}" app:app
