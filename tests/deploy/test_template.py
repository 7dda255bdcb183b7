"""template.yaml, checked offline on what SAM makes of it: cfn-lint, the contract's routes,
which stream and which buffer, who serves them, identity, per-function permissions and
secrets, the worker's async config, retention, PITR, alarms, outputs, the environment.

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
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.sessions.dynamodb_table import TABLE_PROPERTIES
from chat_core.settings import Settings
from chat_core.worker.jobs import RunTurn, parse_job
from samtranslator.translator.transform import transform
from starlette.routing import Match, compile_path

from .conftest import (
    DEFAULT_CONDITIONS,
    FUNCTION_IDS,
    FUNCTIONS,
    HTTP_FUNCTIONS,
    ROOT,
    STREAMING_FUNCTIONS,
    TEMPLATE,
    function_environment,
    load_handler,
    resolve,
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
    ("PATCH", "/api/chat/sessions/{session_id}", "SessionsFunction"),
    ("PATCH", "/api/chat/sessions/{session_id}/assign-user", "SessionsFunction"),
    ("GET", "/api/chat/users/me/understanding", "SessionsFunction"),
    ("PUT", "/api/chat/users/me/understanding", "SessionsFunction"),
    ("GET", "/api/chat/users/me/agents", "SessionsFunction"),
    ("GET", "/api/chat/users/me/agents/{agent_id}", "SessionsFunction"),
    ("GET", "/api/chat/sessions/{session_id}/messages", "SessionsFunction"),
    ("POST", "/api/chat/sessions/{session_id}/stream", "StreamStartFunction"),
    ("GET", "/api/chat/sessions/{session_id}/stream", "TaskReconnectFunction"),
    ("POST", "/api/chat", "StreamStartFunction"),
    ("GET", "/api/chat/{session_id}/stream", "TaskReconnectFunction"),
    ("POST", "/api/chat/{session_id}/stop", "TaskReconnectFunction"),
    ("GET", "/api/chat/tasks/{task_id}", "TaskReconnectFunction"),
    ("GET", "/api/chat/tasks/{task_id}/stream", "TaskReconnectFunction"),
    ("POST", "/api/chat/tasks/{task_id}/cancel", "TaskReconnectFunction"),
    ("POST", "/api/chat/operations/{operation_id}/complete", "WebhookFunction"),
    ("GET", "/api/chat/events", "TaskReconnectFunction"),
    ("GET", "/api/chat/config/ttl", "SessionsFunction"),
    ("GET", "/api/chat/health", "SessionsFunction"),
    ("GET", "/api/chat/users/me/understanding", "SessionsFunction"),
    ("PUT", "/api/chat/users/me/understanding", "SessionsFunction"),
]
# The routes whose answer is an SSE stream: they must stream in the default deployment.
SSE_ROUTES = {
    ("POST", "/api/chat/sessions/{session_id}/stream"),
    ("POST", "/api/chat"),
    ("GET", "/api/chat/sessions/{session_id}/stream"),
    ("GET", "/api/chat/{session_id}/stream"),
    ("GET", "/api/chat/tasks/{task_id}/stream"),
    ("GET", "/api/chat/events"),
}
DISPATCHERS = {"StreamStartFunction", "WebhookFunction", "WorkerFunction", "SweeperFunction"}
SESSION_WRITERS = {
    "StreamStartFunction",
    "TaskReconnectFunction",  # resume and stop read the history and may store a folded message
    "SessionsFunction",
    "WebhookFunction",  # applies a result: the pending tool message, the saved agent
    "WorkerFunction",
    "SweeperFunction",
}
MODEL_CALLERS = {"WorkerFunction"}  # the sweeper re-dispatches, it never runs the model
# SAM inlines some parameters into the API body at transform time, so the translated
# template no longer references them; with real parameter values they are used.
INLINED_BY_SAM = "W2001"


def functions() -> dict[str, dict[str, Any]]:
    return {
        k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }


def prop(logical_id: str, name: str) -> Any:
    """A function property as deployed by default: its own, else Globals', conditions resolved."""
    properties = functions()[logical_id]["Properties"]
    value = properties.get(name, template()["Globals"]["Function"].get(name))
    return resolve(value, {}, DEFAULT_CONDITIONS)


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


def integration(method: str, path: str, streaming: bool = True) -> dict[str, Any]:
    """The route's integration in the translated API, for ReadMode=stream or buffered."""
    body = translated()["Resources"]["ChatApi"]["Properties"]["Body"]
    value = body["paths"][path][method.lower()]["x-amazon-apigateway-integration"]
    return resolve(value, {}, {**DEFAULT_CONDITIONS, "Streaming": streaming})


def routes() -> dict[tuple[str, str], str]:
    """(METHOD, path) → the function its integration invokes (the translated API)."""
    body = translated()["Resources"]["ChatApi"]["Properties"]["Body"]
    found = {}
    for path, operations in body["paths"].items():
        for method in operations:
            if method == "options":
                continue
            uri = json.dumps(integration(method, path)["uri"])
            [function] = re.findall(r"\$\{(\w+)\.Arn\}", uri)
            found[(method.upper(), path)] = function
    return found


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
        layers = json.dumps(function["Properties"]["Layers"])
        assert json.dumps({"Ref": layer_id}) in layers, logical_id
        assert function["Properties"]["VpcConfig"]["SubnetIds"] == {"Ref": "SubnetIds"}


def test_the_layer_is_built_by_its_makefile_without_what_the_runtime_has() -> None:
    layer = template()["Resources"]["ChatLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/chat"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers/chat/Makefile").read_text()
    assert "build-ChatLayer:" in makefile
    requirements = [
        line.lower()
        for line in (ROOT / "layers/chat/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [r for r in requirements if r.startswith(("boto3", "botocore"))]


@pytest.mark.parametrize("folder", sorted(FUNCTION_IDS))
def test_each_function_points_at_its_handler(folder: str) -> None:
    logical_id = FUNCTION_IDS[folder]
    assert functions()[logical_id]["Properties"]["CodeUri"].rstrip("/") == f"functions/{folder}"
    handler = prop(logical_id, "Handler")
    if folder in STREAMING_FUNCTIONS:
        assert handler == "run.sh"
        assert os.access(FUNCTIONS / folder / "run.sh", os.X_OK)
        buffered = resolve(
            functions()[logical_id]["Properties"]["Handler"], {}, {"Streaming": False}
        )
        assert buffered == "app.handler"
    module, attribute = ("app.handler" if folder in STREAMING_FUNCTIONS else handler).split(".")
    assert module == "app"
    assert callable(getattr(load_handler(folder), attribute))


# --- routes -----------------------------------------------------------------------------------
def test_one_api_serves_every_route() -> None:
    apis = [
        r for r in translated()["Resources"].values() if r["Type"].startswith("AWS::ApiGateway")
    ]
    assert [r["Type"] for r in apis].count("AWS::ApiGateway::RestApi") == 1
    assert not [
        r for r in translated()["Resources"].values() if r["Type"].startswith("AWS::ApiGatewayV2")
    ]
    assert not [r for r in translated()["Resources"].values() if r["Type"] == "AWS::Lambda::Url"]


@pytest.mark.parametrize(
    ("method", "path", "owner"), CONTRACT_ROUTES, ids=[f"{m} {p}" for m, p, _ in CONTRACT_ROUTES]
)
def test_every_contract_route_reaches_a_function_that_serves_it(
    method: str, path: str, owner: str
) -> None:
    found = {(m, placeholders_normalized(p)): v for (m, p), v in routes().items()}
    assert (method, placeholders_normalized(path)) in found, f"{method} {path} is not routed"
    logical_id = found[(method, placeholders_normalized(path))]
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


def test_every_route_of_the_api_is_deployed() -> None:
    """What the dev server serves (every router), the deployed API serves too."""
    whole = create_app(*ALL_ROUTERS)
    deployed = {(m, placeholders_normalized(p)) for m, p in routes()}
    missing = [
        f"{method} {path}"
        for method, path in declared(whole)
        if (method, placeholders_normalized(path)) not in deployed
    ]
    assert missing == []


@pytest.mark.parametrize("folder", HTTP_FUNCTIONS)
def test_every_route_a_function_serves_is_routed_to_it(folder: str) -> None:
    routed = {
        (m, placeholders_normalized(p))
        for (m, p), i in routes().items()
        if i == FUNCTION_IDS[folder]
    }
    for method, path in declared(load_handler(folder).app):
        assert (method, placeholders_normalized(path)) in routed, f"{method} {path} is unreachable"


@pytest.mark.parametrize(("method", "path"), sorted(routes()), ids=lambda v: str(v))
def test_stream_routes_stream_and_the_rest_buffer(method: str, path: str) -> None:
    streamed = integration(method, path, streaming=True)
    buffered = integration(method, path, streaming=False)
    assert streamed["type"] == buffered["type"] == "aws_proxy"
    function = routes()[(method, path)]
    if function in {FUNCTION_IDS[f] for f in STREAMING_FUNCTIONS}:
        # The Lambda Web Adapter functions: every route of theirs streams by default (SAM
        # reacts to nothing but these exact values: STREAM and the 2021-11-15 URI).
        assert streamed["responseTransferMode"] == "STREAM"
        assert "/2021-11-15/functions/" in streamed["uri"]["Fn::Sub"]
        assert streamed["uri"]["Fn::Sub"].endswith("/response-streaming-invocations")
        assert streamed["timeoutInMillis"] == 900_000
        assert prop(function, "Timeout") == 900
    else:
        assert (method, path) not in SSE_ROUTES
    # ReadMode=buffered, or a buffered function: Mangum within the 29 s integration limit.
    for answer in (
        [buffered] if function in {FUNCTION_IDS[f] for f in STREAMING_FUNCTIONS} else [streamed]
    ):
        assert answer.get("responseTransferMode", "BUFFERED") == "BUFFERED"
        assert answer["uri"]["Fn::Sub"].endswith("/invocations")
        assert "/2015-03-31/functions/" in answer["uri"]["Fn::Sub"]
        assert answer["timeoutInMillis"] <= 29_000


def test_streaming_functions_run_the_web_adapter_and_buffered_mode_runs_mangum() -> None:
    for folder in STREAMING_FUNCTIONS:
        logical_id = FUNCTION_IDS[folder]
        properties = functions()[logical_id]["Properties"]
        streaming = {**DEFAULT_CONDITIONS, "Streaming": True}
        buffered = {**DEFAULT_CONDITIONS, "Streaming": False}
        [adapter] = properties["Layers"]
        assert re.fullmatch(
            r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:753240598075"
            r":layer:LambdaAdapterLayerArm64:\$\{LwaLayerVersion\}",
            resolve(adapter, {}, streaming)["Fn::Sub"],
        )
        assert resolve(adapter, {}, buffered) is None
        environment = properties["Environment"]["Variables"]
        assert resolve(environment["AWS_LAMBDA_EXEC_WRAPPER"], {}, streaming) == "/opt/bootstrap"
        assert resolve(environment["AWS_LAMBDA_EXEC_WRAPPER"], {}, buffered) is None
        assert environment["AWS_LWA_INVOKE_MODE"] == "response_stream"
        assert environment["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"] == "true"
        assert resolve(environment["CHAT_READ_MODE"], {}, streaming) == "stream"
        assert resolve(environment["CHAT_READ_MODE"], {}, buffered) == "buffered"
        assert resolve(properties["Timeout"], {}, buffered) == 29
    assert template()["Parameters"]["ReadMode"]["Default"] == "stream"


def test_no_gateway_authorizer_stands_in_front_the_functions_verify_tokens() -> None:
    """A cached authorizer needs an identity source, and API Gateway refuses a request
    without it: anonymous users could not get through. The app verifies instead."""
    api = translated()["Resources"]["ChatApi"]["Properties"]["Body"]
    assert "securityDefinitions" not in api and "security" not in json.dumps(api["paths"])
    assert "securitySchemes" not in api.get("components", {})
    environment = template()["Globals"]["Function"]["Environment"]["Variables"]
    jwks = resolve(
        environment["CHAT_JWT_JWKS_URL"], {"JwtIssuer": "https://idp"}, DEFAULT_CONDITIONS
    )
    assert jwks == "https://idp/.well-known/jwks.json"
    assert environment["CHAT_JWT_AUDIENCE"] == {"Ref": "JwtAudience"}
    assert environment["CHAT_JWT_REQUIRED_CLAIMS"] == {"Ref": "JwtRequiredClaims"}
    assert template()["Parameters"]["JwtAudience"]["Default"] == ""  # optional (Cognito)


# --- permissions, secrets and async config -------------------------------------------------------
def role_statements(logical_id: str, secrets_manager: bool = False) -> list[dict[str, Any]]:
    role = translated()["Resources"][f"{logical_id}Role"]["Properties"]
    conditions = {**DEFAULT_CONDITIONS, "UseSecretsManager": secrets_manager}
    statements = [
        resolve(s, {}, conditions) if "Fn::If" in s else s
        for p in role.get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
    ]
    return [s for s in statements if s is not None]


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


def test_only_functions_that_write_sessions_get_the_table() -> None:
    users = set()
    for logical_id in FUNCTION_IDS.values():
        for statement in role_statements(logical_id):
            if any(a.startswith("dynamodb:") for a in actions(statement)):
                assert "SessionsTable" in json.dumps(statement["Resource"])
                assert "*" not in json.dumps(statement["Resource"]).replace("/index/*", "")
                users.add(logical_id)
    assert users == SESSION_WRITERS


@pytest.mark.parametrize("secrets_manager", [False, True], ids=["ssm", "secretsmanager"])
def test_each_function_may_read_exactly_the_secrets_it_uses(secrets_manager: bool) -> None:
    readers: dict[str, set[str]] = {}
    for logical_id in FUNCTION_IDS.values():
        for statement in role_statements(logical_id, secrets_manager):
            reading = [a for a in actions(statement) if a.startswith(("ssm:", "secretsmanager:"))]
            if not reading:
                continue
            assert reading == (
                ["secretsmanager:GetSecretValue"] if secrets_manager else ["ssm:GetParameter"]
            )
            resource = statement["Resource"]["Fn::Sub"]
            assert "*" not in resource
            [name] = re.findall(r"\$\{(\w+Name)\}", resource)
            if secrets_manager:  # Secrets Manager appends 6 random characters to the ARN
                assert resource.endswith(f":secret:${{{name}}}-??????")
            else:
                assert resource.endswith(f":parameter${{{name}}}")
            readers.setdefault(name, set()).add(logical_id)
    assert readers == {"WebhookSecretName": {"WebhookFunction"}, "LlmApiKeyName": MODEL_CALLERS}


def test_no_secret_is_an_environment_value() -> None:
    parameters = template()["Parameters"]
    secret_parameters = {n for n, p in parameters.items() if p.get("NoEcho")}
    assert secret_parameters == {"RedisUrl"}  # a password may be in the URL; nothing else
    for logical_id in FUNCTION_IDS:
        environment = function_environment(FUNCTION_IDS[logical_id])
        for name, value in environment.items():
            assert not re.search(r"SECRET$|API_KEY$|PASSWORD|TOKEN", name), name
            assert "whsec_" not in json.dumps(value) and "sk-" not in json.dumps(value)
    holders = {
        variable: {i for i in FUNCTION_IDS.values() if variable in function_environment(i)}
        for variable in ("CHAT_WEBHOOK_SECRET_PARAMETER", "CHAT_LLM_API_KEY_PARAMETER")
    }
    assert holders == {
        "CHAT_WEBHOOK_SECRET_PARAMETER": {"WebhookFunction"},
        "CHAT_LLM_API_KEY_PARAMETER": MODEL_CALLERS,
    }


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


def test_the_sweeper_runs_every_minute() -> None:
    [rule] = [r for r in translated()["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SweeperFunction", "Arn"]}


# --- production basics ---------------------------------------------------------------------------
def test_every_function_logs_to_a_group_with_retention() -> None:
    resources = translated()["Resources"]
    for logical_id in FUNCTION_IDS.values():
        group = resources[logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template()["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_the_api_logs_access_throttles_and_its_stage_waits_for_the_log_role() -> None:
    resources = translated()["Resources"]
    [stage] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    access = stage["Properties"]["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.status" in access["Format"] and "$context.requestId" in access["Format"]
    assert resources["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }
    [settings] = stage["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    # Access logs need the account's CloudWatch role first.
    description = resources["ChatApi"]["Properties"]["Description"]
    assert "ApiGatewayAccount" in json.dumps(description)


def test_the_sessions_table_is_the_layers_definition_with_point_in_time_recovery() -> None:
    properties = dict(template()["Resources"]["SessionsTable"]["Properties"])
    assert properties.pop("PointInTimeRecoverySpecification") == {
        "PointInTimeRecoveryEnabled": True
    }
    assert properties == TABLE_PROPERTIES


def test_alarms_watch_errors_throttles_dead_letters_and_failed_tasks() -> None:
    alarms = {
        k: r["Properties"]
        for k, r in translated()["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }

    def watching(namespace: str, metric: str) -> list[str]:
        found = []
        for name, alarm in alarms.items():
            stats = [alarm] + [
                m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m
            ]
            if any(
                s.get("Namespace") == namespace and s.get("MetricName") == metric for s in stats
            ):
                found.append(name)
        return found

    assert watching("AWS/ApiGateway", "5XXError")
    throttles = alarms[watching("AWS/Lambda", "Throttles")[0]]
    watched = {
        json.dumps(m["MetricStat"]["Metric"]["Dimensions"])
        for m in throttles["Metrics"]
        if "MetricStat" in m
    }
    assert len(watched) == len(FUNCTION_IDS)  # every function's throttles count
    for metric in ("DeadLetters", "SweptTasks"):
        [name] = watching("ChatStreaming", metric)
        assert alarms[name]["Dimensions"] == [
            {"Name": "service", "Value": {"Ref": "AWS::StackName"}}
        ]
    assert any(
        {"Ref": "WorkerFunction"} in [d["Value"] for d in alarms[n]["Dimensions"]]
        for n in watching("AWS/Lambda", "Errors")
    )
    assert any(
        "WorkerFailureQueue" in json.dumps(alarms[n])
        for n in watching("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    )
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


def test_the_stack_can_create_its_cache_or_use_one() -> None:
    resources = template()["Resources"]
    cache = resources["Cache"]
    assert cache["Condition"] == "CreateCache"
    assert cache["Type"] == "AWS::ElastiCache::ServerlessCache"
    assert cache["Properties"]["Engine"] == {"Ref": "CacheEngine"}
    assert template()["Parameters"]["CacheEngine"]["Default"] == "valkey"
    assert cache["Properties"]["SubnetIds"] == {"Ref": "SubnetIds"}
    [ingress] = resources["CacheSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    assert (ingress["FromPort"], ingress["ToPort"]) == (6379, 6380)
    url = template()["Globals"]["Function"]["Environment"]["Variables"]["CHAT_REDIS_URL"]
    assert resolve(url, {}, {**DEFAULT_CONDITIONS, "CreateCache": False}) == ""  # RedisUrl
    created = resolve(url, {}, {**DEFAULT_CONDITIONS, "CreateCache": True})
    assert created == {"Fn::Sub": "rediss://${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"}
    groups = template()["Globals"]["Function"]["VpcConfig"]["SecurityGroupIds"]
    assert "FunctionSecurityGroup" in json.dumps(
        resolve(groups, {}, {**DEFAULT_CONDITIONS, "CreateCache": True})
    )
    assert set(template()["Rules"]) == {"CacheIsCreatedOrGiven", "CreatedCacheNeedsItsVpc"}


def test_outputs_name_the_one_public_url() -> None:
    outputs = template()["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${ChatApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}/api/chat"
    }
    assert "IAM" not in json.dumps(outputs)
    public = resolve(
        function_environment("WorkerFunction")["CHAT_PUBLIC_BASE_URL"], {}, DEFAULT_CONDITIONS
    )
    assert public["Fn::Sub"] + "/api/chat" == outputs["ApiUrl"]["Value"]["Fn::Sub"]


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"CHAT_{name.upper()}")
        choices = getattr(field.validation_alias, "choices", None) or []
        names.update(c for c in choices if isinstance(c, str))
    return names


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "buffered"])
@pytest.mark.parametrize("logical_id", sorted(FUNCTION_IDS.values()))
def test_every_chat_variable_is_a_setting_with_a_valid_value(
    logical_id: str, streaming: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    conditions = {**DEFAULT_CONDITIONS, "Streaming": streaming}
    environment = function_environment(logical_id)
    chat = {k: v for k, v in environment.items() if k.startswith("CHAT_")}
    assert set(chat) <= setting_names(), f"unknown settings: {set(chat) - setting_names()}"
    for name, value in chat.items():
        value = resolve(value, {"RedisUrl": "rediss://cache:6379"}, conditions)
        if isinstance(value, (str, int)):
            monkeypatch.setenv(name, str(value))
    settings = Settings()  # raises on a value the app would refuse
    assert settings.session_store == "dynamodb"
    assert settings.dispatch == "lambda"
    folder = next(f for f, i in FUNCTION_IDS.items() if i == logical_id)
    properties = functions()[logical_id]["Properties"]
    timeout = resolve(
        properties.get("Timeout", template()["Globals"]["Function"]["Timeout"]), {}, conditions
    )
    if folder in STREAMING_FUNCTIONS and streaming:
        assert settings.read_mode == "stream"
        assert settings.stream_budget_seconds < timeout
    elif folder in HTTP_FUNCTIONS:
        assert settings.read_mode in ("buffered", "stream")
        # A window must answer before API Gateway cuts the buffered request at 29 s.
        assert settings.long_poll_seconds + 1 < timeout <= 29


# --- sample events --------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", HTTP_FUNCTIONS)
def test_each_http_sample_is_a_rest_api_request_to_a_route_of_its_function(folder: str) -> None:
    event = sample_event(folder)
    method, resource = event["httpMethod"], event["resource"]
    assert routes()[(method, resource)] == FUNCTION_IDS[folder]
    context = event["requestContext"]
    assert (context["httpMethod"], context["resourcePath"]) == (method, resource)
    filled = resource
    for name, value in (event.get("pathParameters") or {}).items():
        filled = filled.replace(f"{{{name}}}", value)
    assert event["path"] == filled
    assert context["path"] == f"/{context['stage']}{filled}"
    assert "authorizer" not in context  # no gateway authorizer; the samples are anonymous
    if event.get("body"):
        assert int(event["headers"]["Content-Length"]) == len(event["body"].encode())


def test_the_worker_and_sweeper_samples_are_what_invokes_them() -> None:
    assert isinstance(parse_job(sample_event("worker")), RunTurn)
    scheduled = sample_event("sweeper")
    assert (scheduled["source"], scheduled["detail-type"]) == ("aws.events", "Scheduled Event")
    webhook = sample_event("webhook")["headers"]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(webhook)
    assert webhook["webhook-signature"].startswith("v1,")


def test_browsers_get_cors_from_preflights_and_from_the_gateways_own_errors() -> None:
    body = translated()["Resources"]["ChatApi"]["Properties"]["Body"]
    allow_origin = {"Fn::Sub": "'${AllowedOrigins}'"}
    for path, operations in body["paths"].items():
        preflight = operations["options"]["x-amazon-apigateway-integration"]
        headers = preflight["responses"]["default"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == allow_origin, path
        assert "authorization" in headers["method.response.header.Access-Control-Allow-Headers"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        answer = body["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"]
        assert answer["gatewayresponse.header.Access-Control-Allow-Origin"] == allow_origin
    # The functions' own answers carry the same origin.
    environment = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["CHAT_CORS_ORIGINS"] == {"Ref": "AllowedOrigins"}
    one_origin = re.compile(template()["Parameters"]["AllowedOrigins"]["AllowedPattern"])
    assert one_origin.fullmatch("*") and one_origin.fullmatch("https://chat.example.com")
    assert not one_origin.fullmatch("https://a.example,https://b.example")
