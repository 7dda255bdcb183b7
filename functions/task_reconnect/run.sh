#!/bin/bash
# Handler of the streaming function (ReadMode=stream): the Lambda Web Adapter
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs this, waits for the port, then forwards each
# invocation to it as plain HTTP and streams the response back through API Gateway.
# /opt/python is the shared layer; --app-dir makes this folder's app.py importable wherever
# the code was unpacked (LAMBDA_TASK_ROOT on AWS, the build output or the repo locally).
export PYTHONPATH="/opt/python${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn --app-dir "$(dirname "$0")" --host 127.0.0.1 --port "${PORT:-8080}" \
  --no-access-log app:app
