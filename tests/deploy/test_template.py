"""template.yaml, checked offline: SAM translation and cfn-lint, the contract's routes and
who serves them, authorizers, permissions, the worker's async config, the table, the
environment, and the streaming variant.

    .venv/bin/python -m pytest tests/deploy/test_template.py -q
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from typing import Any

import pytest
from cfnlint.api import lint
from samtranslator.translator.transform import transform
from starlette.routing import Match, compile_path

from chat_core.sessions.dynamodb_table import TABLE_PROPERTIES
from chat_core.settings import Settings
from chat_core.worker.jobs import RunTurn, parse_job

from .conftest import (
    FUNCTION_IDS,
    FUNCTIONS,
    MANGUM_FUNCTIONS,
    ROOT,
    TEMPLATE,
    function_environment,
    load_handler,
    sample_event,
    template,
)

# The contract's HTTP table (ARCHITECTURE.md, prefix /api/chat) and the function that owns
# each route per its function table.
CONTRACT_ROUTES = [
    ("POST", "/api/chat/sessions", "SessionsFunction"),
    ("GET", "/api/chat/sessions", "SessionsFunction"),
    ("GET", "/api/chat/sessions/{session_id}", "SessionsFunction"),
    ("DELETE", "/api/chat/sessions/{session_id}", "SessionsFunction"),
    ("PATCH", "/api/chat/sessions/{session_id}/assign-user", "SessionsFunction"),
    ("POST", "/api/chat/sessions/{session_id}/stream", "StreamStartFunction"),
    ("GET", "/api/chat/sessions/{session_id}/stream", "TaskReconnectFunction"),
    ("POST", "/api/chat", "StreamStartFunction"),
    ("GET", "/api/chat/{session_id}/stream", "TaskReconnectFunction"),
    ("GET", "/api/chat/tasks/{task_id}", "TaskReconnectFunction"),
    ("GET", "/api/chat/tasks/{task_id}/stream", "TaskReconnectFunction"),
    ("POST", "/api/chat/tasks/{task_id}/cancel", "TaskReconnectFunction"),
    ("POST", "/api/chat/operations/{operation_id}/complete", "WebhookFunction"),
    ("GET", "/api/chat/events", "TaskReconnectFunction"),
    ("GET", "/api/chat/config/ttl", "SessionsFunction"),
    ("GET", "/api/chat/health", "SessionsFunction"),
]
PUBLIC_ROUTES = {
    ("POST", "/api/chat/operations/{operation_id}/complete"),  # Standard Webhooks signature
    ("GET", "/api/chat/health"),
    ("GET", "/api/chat/config/ttl"),
}
DISPATCHERS = {
    "StreamStartFunction",
    "WebhookFunction",
    "WorkerFunction",
    "SweeperFunction",
    "StreamingFunction",
}
SESSION_USERS = {
    "StreamStartFunction",
    "TaskReconnectFunction",
    "SessionsFunction",
    "WorkerFunction",
    "SweeperFunction",
    "StreamingFunction",
}
# SAM inlines some parameters into the API body at transform time, so the translated
# template no longer references them; with real parameter values they are used.
INLINED_BY_SAM = "W2001"


def functions() -> dict[str, dict[str, Any]]:
    return {
        k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }


def http_routes() -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(METHOD, path) → (function logical id, the event's properties)."""
    routes = {}
    for logical_id, resource in functions().items():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                key = (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                assert key not in routes, f"{key} routed twice"
                routes[key] = (logical_id, event["Properties"])
    return routes


@cache
def translated() -> dict[str, Any]:
    """The CloudFormation SAM makes of the template, without AWS: local code replaced by S3
    URIs, and a policy loader that knows no managed policies."""
    tpl = copy.deepcopy(template())
    for logical_id, resource in tpl["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://chat-artifacts/{logical_id}.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        return transform(tpl, {}, NoManagedPolicies())
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def declared(app: Any) -> list[tuple[str, str]]:
    """(METHOD, path template) of every route the app serves, in declaration order."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc-123", path)


def placeholders_normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


# --- offline validation -----------------------------------------------------------------------
def test_the_template_translates_and_lints_clean() -> None:
    raw = lint(TEMPLATE.read_text(), regions=["us-east-1"])
    assert [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in raw] == []

    output = lint(json.dumps(translated()), regions=["us-east-1"])
    problems = [f"{m.rule.id} {m.message}" for m in output if m.rule.id != INLINED_BY_SAM]
    assert problems == []


def test_the_translated_functions_run_python312_on_the_shared_layer() -> None:
    resources = translated()["Resources"]
    lambdas = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    assert set(lambdas) == set(FUNCTION_IDS.values())
    [layer_id] = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::LayerVersion"]
    for logical_id, function in lambdas.items():
        assert function["Properties"]["Runtime"] == "python3.12", logical_id
        assert {"Ref": layer_id} in function["Properties"]["Layers"], logical_id
        assert function["Properties"]["VpcConfig"]["SubnetIds"] == {"Ref": "SubnetIds"}


def test_the_layer_builds_chat_core_from_its_requirements() -> None:
    layer = template()["Resources"]["ChatLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/chat"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / "layers/chat/requirements.txt").is_file()
    assert (ROOT / "layers/chat/chat_core/__init__.py").is_file()


@pytest.mark.parametrize("folder", sorted(FUNCTION_IDS))
def test_each_function_points_at_its_handler(folder: str) -> None:
    properties = functions()[FUNCTION_IDS[folder]]["Properties"]
    assert properties["CodeUri"].rstrip("/") == f"functions/{folder}"
    handler = properties.get("Handler", template()["Globals"]["Function"]["Handler"])
    if folder == "streaming":
        assert handler == "run.sh"
        assert os.access(FUNCTIONS / folder / "run.sh", os.X_OK)
    else:
        module, attribute = handler.split(".")
        assert callable(getattr(load_handler(folder), attribute))
        assert module == "app"


# --- routes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "owner"), CONTRACT_ROUTES, ids=[f"{m} {p}" for m, p, _ in CONTRACT_ROUTES]
)
def test_every_contract_route_reaches_a_function_that_serves_it(
    method: str, path: str, owner: str
) -> None:
    routes = {(m, placeholders_normalized(p)): v for (m, p), v in http_routes().items()}
    assert (method, placeholders_normalized(path)) in routes, f"{method} {path} is not routed"
    logical_id, _ = routes[(method, placeholders_normalized(path))]
    assert logical_id == owner

    app = load_handler(next(f for f, i in FUNCTION_IDS.items() if i == logical_id)).app
    scope = {"type": "http", "method": method, "path": concrete(path), "root_path": ""}
    assert any(r.matches(scope)[0] == Match.FULL for r in app.router.routes), (
        f"{logical_id}'s app does not serve {method} {path}"
    )
    # Routes answer in declaration order: no earlier route of that app shadows this one.
    first = next(
        p for m, p in declared(app) if m == method and compile_path(p)[0].match(concrete(path))
    )
    assert placeholders_normalized(first) == placeholders_normalized(path)


@pytest.mark.parametrize("folder", MANGUM_FUNCTIONS)
def test_every_route_a_function_serves_is_routed_to_it(folder: str) -> None:
    routed = {
        (m, placeholders_normalized(p))
        for (m, p), (i, _) in http_routes().items()
        if i == FUNCTION_IDS[folder]
    }
    for method, path in declared(load_handler(folder).app):
        assert (method, placeholders_normalized(path)) in routed, f"{method} {path} is unreachable"


def test_user_routes_need_a_jwt_and_the_webhook_health_and_ttl_do_not() -> None:
    api = template()["Resources"]["ChatApi"]["Properties"]["Auth"]
    jwt = api["Authorizers"][api["DefaultAuthorizer"]]
    assert jwt["JwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }
    assert jwt["IdentitySource"] == "$request.header.Authorization"

    paths = translated()["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    for method, path, _ in CONTRACT_ROUTES:
        security = paths[path][method.lower()].get("security", [])
        if (method, path) in PUBLIC_ROUTES:
            assert security == [{"NONE": []}], f"{method} {path} must not need a user token"
        else:
            assert security == [{api["DefaultAuthorizer"]: []}], (
                f"{method} {path} must need a user token"
            )


# --- permissions and async config --------------------------------------------------------------
def role_statements(logical_id: str) -> list[dict[str, Any]]:
    role = translated()["Resources"][f"{logical_id}Role"]["Properties"]
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_only_dispatching_functions_may_invoke_the_worker() -> None:
    worker_arn = {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
        ":function:${AWS::StackName}-worker"
    }
    assert functions()["WorkerFunction"]["Properties"]["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-worker"
    }
    invokers = set()
    for logical_id in FUNCTION_IDS.values():
        for statement in role_statements(logical_id):
            if any(a.startswith("lambda:") for a in actions(statement)):
                assert actions(statement) == ["lambda:InvokeFunction"]
                assert statement["Resource"] == worker_arn
                invokers.add(logical_id)
    assert invokers == DISPATCHERS
    assert template()["Globals"]["Function"]["Environment"]["Variables"][
        "CHAT_WORKER_FUNCTION"
    ] == {"Fn::Sub": "${AWS::StackName}-worker"}


def test_only_functions_that_touch_sessions_get_the_table() -> None:
    users = set()
    for logical_id in FUNCTION_IDS.values():
        for statement in role_statements(logical_id):
            if any(a.startswith("dynamodb:") for a in actions(statement)):
                assert "SessionsTable" in json.dumps(statement["Resource"])
                assert "*" not in json.dumps(statement["Resource"]).replace("/index/*", "")
                users.add(logical_id)
    assert users == SESSION_USERS


def test_the_worker_is_never_retried_and_its_failures_land_in_a_watched_queue() -> None:
    resources = translated()["Resources"]
    config = resources["WorkerFunctionEventInvokeConfig"]["Properties"]
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["WorkerFailureQueue", "Arn"]
    }
    assert any(
        s["Action"] == "sqs:SendMessage"
        and s["Resource"] == {"Fn::GetAtt": ["WorkerFailureQueue", "Arn"]}
        for s in role_statements("WorkerFunction")
    )
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = [json.dumps(a.get("Dimensions")) for a in alarms]
    assert any("WorkerFailureQueue" in w and "QueueName" in w for w in watched)
    assert any(
        a["MetricName"] == "Errors"
        and {"Ref": "WorkerFunction"} in [d["Value"] for d in a["Dimensions"]]
        for a in alarms
    )


def test_the_sweeper_runs_every_minute() -> None:
    [rule] = [r for r in translated()["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SweeperFunction", "Arn"]}


# --- table, parameters, environment -------------------------------------------------------------
def test_the_sessions_table_is_the_layers_definition() -> None:
    assert template()["Resources"]["SessionsTable"]["Properties"] == TABLE_PROPERTIES


def test_secrets_are_not_echoed_and_redis_is_tls_in_cluster_mode_by_default() -> None:
    parameters = template()["Parameters"]
    for name in ("RedisUrl", "WebhookSecret", "LlmApiKey"):
        assert parameters[name].get("NoEcho") is True, name
    assert parameters["RedisMode"]["Default"] == "cluster"
    tls_only = re.compile(parameters["RedisUrl"]["AllowedPattern"])
    assert tls_only.fullmatch("rediss://chat-abc.serverless.use1.cache.amazonaws.com:6379")
    assert not tls_only.fullmatch("redis://chat-abc.serverless.use1.cache.amazonaws.com:6379")
    assert re.fullmatch(
        parameters["WebhookSecret"]["AllowedPattern"], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )


def test_each_secret_reaches_only_the_functions_that_use_it() -> None:
    holders = {
        secret: {i for i in FUNCTION_IDS.values() if secret in function_environment(i)}
        for secret in ("CHAT_WEBHOOK_SECRET", "CHAT_LLM_API_KEY")
    }
    assert holders["CHAT_WEBHOOK_SECRET"] == {"WebhookFunction"}
    # Model calls happen where turns run: the worker, and the sweeper continuing a
    # reclaimed completion.
    assert holders["CHAT_LLM_API_KEY"] == {"WorkerFunction", "SweeperFunction"}


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"CHAT_{name.upper()}")
        choices = getattr(field.validation_alias, "choices", None) or []
        names.update(c for c in choices if isinstance(c, str))
    return names


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_IDS.values()))
def test_every_chat_variable_is_a_setting_with_a_valid_value(
    logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = function_environment(logical_id)
    chat = {k: v for k, v in environment.items() if k.startswith("CHAT_")}
    assert set(chat) <= setting_names(), f"unknown settings: {set(chat) - setting_names()}"
    for name, value in chat.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = Settings()  # raises on a value the app would refuse
    assert settings.session_store == "dynamodb"
    assert settings.dispatch == "lambda"
    folder = next(f for f, i in FUNCTION_IDS.items() if i == logical_id)
    if folder in MANGUM_FUNCTIONS:
        assert settings.read_mode == "buffered"
        # The window must answer before API Gateway cuts the request at 30 s.
        assert (
            settings.long_poll_seconds + 1
            < functions()[logical_id]["Properties"].get(
                "Timeout", template()["Globals"]["Function"]["Timeout"]
            )
            <= 30
        )
    if folder == "streaming":
        assert settings.read_mode == "stream"
        assert settings.stream_budget_seconds < functions()[logical_id]["Properties"]["Timeout"]


# --- the streaming variant ----------------------------------------------------------------------
def test_the_streaming_variant_runs_the_web_adapter_behind_a_streaming_function_url() -> None:
    streaming = functions()["StreamingFunction"]
    assert streaming["Condition"] == "StreamingEnabled"
    assert template()["Conditions"]["StreamingEnabled"] == {
        "Fn::Equals": [{"Ref": "EnableStreaming"}, "true"]
    }
    assert template()["Parameters"]["EnableStreaming"]["Default"] == "false"
    properties = streaming["Properties"]
    assert properties["FunctionUrlConfig"]["InvokeMode"] == "RESPONSE_STREAM"
    [adapter] = properties["Layers"]
    assert re.fullmatch(
        r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:753240598075"
        r":layer:LambdaAdapterLayerArm64:\$\{LwaLayerVersion\}",
        adapter["Fn::Sub"],
    )
    environment = properties["Environment"]["Variables"]
    assert environment["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert environment["AWS_LWA_INVOKE_MODE"] == "response_stream"

    resources = translated()["Resources"]
    url = resources["StreamingFunctionUrl"]
    assert url["Condition"] == "StreamingEnabled"
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert resources["StreamingFunction"]["Condition"] == "StreamingEnabled"
    assert resources["StreamingFunctionRole"]["Condition"] == "StreamingEnabled"


# --- sample events --------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", MANGUM_FUNCTIONS)
def test_each_http_sample_is_a_request_to_a_route_of_its_function(folder: str) -> None:
    event = sample_event(folder)
    method, path = event["routeKey"].split(" ", 1)
    assert http_routes()[(method, path)][0] == FUNCTION_IDS[folder]
    assert event["requestContext"]["http"]["method"] == method
    filled = path
    for name, value in event.get("pathParameters", {}).items():
        filled = filled.replace(f"{{{name}}}", value)
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == filled
    needs_token = (method, path) not in PUBLIC_ROUTES
    assert ("authorizer" in event["requestContext"]) == needs_token
    if needs_token:
        assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        assert event["headers"]["authorization"].startswith("Bearer ")
    if "body" in event:
        assert int(event["headers"]["content-length"]) == len(event["body"].encode())


def test_the_worker_and_sweeper_samples_are_what_invokes_them() -> None:
    assert isinstance(parse_job(sample_event("worker")), RunTurn)
    scheduled = sample_event("sweeper")
    assert (scheduled["source"], scheduled["detail-type"]) == ("aws.events", "Scheduled Event")
    webhook = sample_event("webhook")["headers"]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(webhook)
    assert webhook["webhook-signature"].startswith("v1,")
