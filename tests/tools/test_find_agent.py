"""find_agent: searching the shipped agent catalog the way a user's words would, typos and all."""

from __future__ import annotations

import json

import pytest
from chat_core.tools.base import ToolContext, ToolRegistry
from chat_core.tools.find_agent import Agent, AgentCatalog, FindAgent, default_catalog

CTX = ToolContext(session_id="session-1", user_id=None, task_id="task-1", tool_call_id="call-1")

DOMAINS = {
    "money-making", "marketing", "content-writing", "research", "customer-support", "sales-crm",
    "productivity", "data-analytics", "developer-tools", "social-media", "hr-recruiting",
    "finance-accounting", "e-commerce", "education", "legal", "travel", "health-fitness",
}  # fmt: skip


async def find(query: str, limit: int | None = None) -> dict:
    args = (
        FindAgent.Args(query=query) if limit is None else FindAgent.Args(query=query, limit=limit)
    )
    return await FindAgent().run(CTX, args)


def ids(output: dict) -> list[str]:
    return [agent["id"] for agent in output["agents"]]


async def test_a_misspelled_money_printing_query_finds_money_making_agents_first() -> None:
    output = await find("moneny printing agent")

    assert output["type"] == "agents_found"
    assert output["query"] == "moneny printing agent"
    assert output["count"] == 5
    for agent in output["agents"]:
        assert "money-making" in agent["categories"], agent["id"]


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("passive income ideas", "passive-income-planner"),
        ("pasive incom", "passive-income-planner"),
        ("chase unpaid invoices", "invoice-chaser"),
        ("affiliate marketing", "affiliate-marketing-pro"),
        ("side hustle", "side-hustle-scout"),
        ("marketting strategy", "marketing-strategy-planner"),
        ("seo keyword rankings", "seo-optimizer"),
        ("write blog posts", "blog-post-writer"),
        ("reply to customer support tickets", "support-ticket-triage"),
        ("sales leads", "lead-generation-prospector"),
        ("summarize my meetings", "meeting-notes-summarizer"),
        ("dashbord kpis", "dashboard-reporter"),
        ("review my pull request", "code-reviewer"),
        ("debug my code", "bug-hunter"),
        ("instagram captoins", "short-video-idea-generator"),
        ("screen resumes for hiring", "resume-screener"),
        ("bookkeeping", "bookkeeping-assistant"),
        ("e-commerce store", "ecommerce-profit-optimizer"),
        ("learn spanish", "language-tutor"),
        ("check a contract for risky clauses", "contract-reviewer"),
        ("plan a trip to japan", "trip-itinerary-planner"),
        ("book cheap flights", "flight-deal-hunter"),
        ("meal plan for weight loss", "meal-planner"),
    ],
)
async def test_queries_land_on_the_right_agent(query: str, best: str) -> None:
    output = await find(query)

    assert output["type"] == "agents_found"
    assert ids(output)[0] == best


@pytest.mark.parametrize(
    ("query", "unrelated"),
    [
        ("learn", "side-hustle-scout"),  # "earn"
        ("side", "presentation-designer"),  # "slide"
        ("investors", "inventory-forecaster"),  # "inventory"
    ],
)
async def test_a_real_word_is_not_taken_for_a_typo_of_its_neighbour(
    query: str, unrelated: str
) -> None:
    output = await find(query, limit=10)

    found = ids(output) if output["type"] == "agents_found" else []
    assert unrelated not in found


async def test_limit_caps_the_results() -> None:
    everything = await find("marketing", limit=10)
    two = await find("marketing", limit=2)
    default = await find("marketing")

    assert everything["count"] > 5
    assert (two["count"], ids(two)) == (2, ids(everything)[:2])
    assert (default["count"], ids(default)) == (5, ids(everything)[:5])


@pytest.mark.parametrize("query", ["moneny printing agent", "marketing", "write", "shop", "health"])
async def test_results_come_best_first_and_ties_by_id(query: str) -> None:
    output = await find(query, limit=10)

    scores = [agent["score"] for agent in output["agents"]]
    assert all(0 < score <= 1 for score in scores)
    assert output["agents"] == sorted(output["agents"], key=lambda a: (-a["score"], a["id"]))


def desk(id_: str, topic: str) -> Agent:
    return Agent(id=id_, name=f"{topic} desk", description=f"Handles {topic}.", categories=("ops",))


@pytest.mark.parametrize(
    "query",
    # The second query meets "zeta" first (through its first word), so only an explicit
    # tie-break puts "alpha" ahead.
    ["desk", "invoices payroll"],
)
async def test_equally_good_agents_are_ordered_by_id(query: str) -> None:
    catalog = AgentCatalog([desk("zeta", "invoices"), desk("alpha", "payroll")])

    output = await FindAgent(catalog).run(CTX, FindAgent.Args(query=query))

    assert ids(output) == ["alpha", "zeta"]
    assert output["agents"][0]["score"] == output["agents"][1]["score"]


@pytest.mark.parametrize(
    "query",
    [
        "asdfgh qwerty",
        "zzzz",
        "!!!",
        "   ",
        "please find me an agent",
        "agent that can help",
        "football scores",  # "scores" is in two descriptions; one word in two is not a match
    ],
)
async def test_nothing_matching_suggests_categories(query: str) -> None:
    output = await find(query)

    assert output["type"] == "no_results"
    assert output["query"] == query
    assert "agents" not in output
    assert repr(query) in output["message"]
    assert "money-making" in output["suggestions"]
    assert set(output["suggestions"]) <= {c for a in default_catalog().agents for c in a.categories}


async def test_results_show_each_agent_as_the_user_sees_it() -> None:
    output = await find("chase unpaid invoices", limit=1)

    (agent,) = output["agents"]
    assert set(agent) == {"id", "name", "description", "categories", "score"}
    assert agent["name"] == "Invoice Chaser"
    assert "invoices" in agent["description"]
    assert agent["categories"] == ["money-making", "finance-accounting"]


@pytest.mark.parametrize("query", ["moneny printing agent", "qwerty asdfgh"])
async def test_output_is_plain_json(query: str) -> None:
    output = await find(query)

    assert json.loads(json.dumps(output)) == output


async def test_runs_through_the_registry_from_raw_json_arguments() -> None:
    registry = ToolRegistry([FindAgent()])
    raw_arguments = '{"query": "moneny printing agent", "limit": 3}'

    outcome = await registry.execute("find_agent", raw_arguments, CTX)

    assert outcome.ok, outcome.error
    assert outcome.output["type"] == "agents_found"
    assert outcome.output["count"] == 3
    assert all("money-making" in agent["categories"] for agent in outcome.output["agents"])


@pytest.mark.parametrize(
    ("raw_arguments", "field"),
    [
        ('{"query": ""}', "query"),
        (json.dumps({"query": "x" * 201}), "query"),
        ('{"query": "seo", "limit": 11}', "limit"),
        ('{"limit": 3}', "query"),
    ],
    ids=["empty-query", "long-query", "limit-too-big", "no-query"],
)
async def test_bad_arguments_come_back_as_readable_errors(raw_arguments: str, field: str) -> None:
    outcome = await ToolRegistry([FindAgent()]).execute("find_agent", raw_arguments, CTX)

    assert not outcome.ok
    assert "find_agent" in outcome.error and field in outcome.error


def test_the_model_sees_when_to_use_it_and_the_argument_bounds() -> None:
    (tool,) = ToolRegistry([FindAgent()]).openai_tools()

    function = tool["function"]
    assert function["name"] == "find_agent"
    properties = function["parameters"]["properties"]
    assert (properties["query"]["minLength"], properties["query"]["maxLength"]) == (1, 200)
    assert (properties["limit"]["minimum"], properties["limit"]["maximum"]) == (1, 10)
    assert properties["limit"]["default"] == 5
    assert function["parameters"]["required"] == ["query"]


def test_the_shipped_catalog_covers_the_domains_with_a_money_making_cluster() -> None:
    agents = default_catalog().agents

    assert len(agents) >= 50
    assert DOMAINS <= {category for agent in agents for category in agent.categories}
    assert sum("money-making" in agent.categories for agent in agents) >= 10


def test_a_catalog_with_duplicate_ids_is_refused() -> None:
    agent = Agent(id="same", name="A", description="An agent.", categories=("misc",))

    with pytest.raises(ValueError, match="same"):
        AgentCatalog([agent, agent])


async def test_the_catalog_loads_at_the_first_search_and_only_once() -> None:
    default_catalog.cache_clear()
    tool = FindAgent()
    assert default_catalog.cache_info().currsize == 0

    await tool.run(CTX, FindAgent.Args(query="seo"))
    assert default_catalog.cache_info().currsize == 1
    await FindAgent().run(CTX, FindAgent.Args(query="tax"))

    info = default_catalog.cache_info()
    assert (info.misses, info.hits) == (1, 1)
