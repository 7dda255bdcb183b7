"""The `find_agent` tool: search the shipped catalog of ready-made agents, ranked and typo-tolerant.

    tool = FindAgent()
    out = await tool.run(ctx, FindAgent.Args(query="moneny printing agent"))
    out["type"], out["agents"][0]["categories"]   # ('agents_found', ['money-making', ...])

The catalog (`data/agents.json`) is read and indexed once per process, at the first search,
so a cold start that never searches pays nothing for it.

How a query is scored, so results can be explained:

1. The query is lowercased and split into words; filler ("agent", "find", "me", "that",
   "please", ...) is dropped.
2. Each word is widened with `SYNONYMS` ("money" also looks for "income", "revenue",
   "profit", ...), at `SYNONYM_WEIGHT` of a direct hit.
3. Each word (or synonym) is compared with every word of the catalog (`word_similarity`):
   equal counts 1.0; the same word with a common ending ("market"/"marketing",
   "write"/"writing") 0.9; a typo within a small edit budget that keeps the first letter
   ("moneny"/"money") a little less.
4. Per agent, a query word scores its best hit in the name, the categories or the
   description, weighted by `FIELD_WEIGHTS`, plus a little for every field it hits.
5. An agent's score is the mean over the query words, so a query that is mostly about
   something else ("football scores") does not ride on one coincidental word. Agents under
   `MIN_SCORE` are left out; ties go by id.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.utils import default_process

from chat_core.tools.base import Tool, ToolContext

CATALOG_RESOURCE = "data/agents.json"

AgentField = Literal["name", "categories", "description"]
FIELD_WEIGHTS: dict[AgentField, float] = {"name": 1.0, "categories": 0.9, "description": 0.6}
BEST_FIELD_SHARE = 0.8
"""A query word's score: this share from its best field, the rest from how many fields it hits."""
SYNONYM_WEIGHT = 0.85
MIN_SCORE = 0.3
"""The mean an agent needs; for scale, a query word found in a name scores about 0.87, one
found only in a description about 0.55, one found nowhere 0."""
SUGGESTED_CATEGORIES = 12

STEM_SIMILARITY = 0.9
TYPO_PENALTY = 0.08
"""Per edit: one typo (0.92) counts about as much as a different ending (0.9)."""
SHORTLIST_CUTOFF = 0.75
"""Jaro-Winkler floor of the C-speed shortlist `word_similarity` then judges; every pair it
accepts (checked over the catalog's words and thousands of typos of them) scores above it."""

COMMON_ENDINGS = (
    "s", "es", "ed", "ing", "er", "ers", "or", "ors", "ion", "ions", "ation", "ations",
    "ment", "ments", "al", "ly", "ity", "ive", "ize", "ise", "est",
)  # fmt: skip

FILLER_WORDS = frozenset(
    """
    a an the and or but of to for in on at by with from into about as than then so
    i me my mine we us our you your yours it its this that these those there here
    is are was were be been being am do does did done can could would should will shall may
    might must have has had get gets got give show tell let lets
    what which who whom whose where when why how any some something someone anything
    please help helps helping find finding search searching look looking see want wants
    need needs like would love recommend suggest best good great new just really very also
    agent agents bot bots assistant assistants tool tools app apps ai thing things one ones
    youre im ive dont doesnt cant
    """.split()
)
"""Words that say "find me an agent" rather than what the agent is for; dropped from the query
and left out of the index."""

SYNONYMS: dict[str, tuple[str, ...]] = {
    # Query word → catalog words that mean the same thing to someone asking for an agent.
    # One-way and deliberately small: each entry fixes a query that found nothing useful.
    "money": ("income", "revenue", "profit", "earn", "monetize", "cash", "finance"),
    "printing": ("make", "making", "generate", "earn"),  # "money printing" = making money
    "cash": ("money", "income", "revenue"),
    "rich": ("money", "income", "wealth", "profit"),
    "earn": ("income", "money", "revenue"),
    "hustle": ("side", "gig", "freelance", "income"),
    "passive": ("recurring", "royalties", "dividend"),
    "bug": ("debug", "error", "fix"),
    "debug": ("bug", "bugs", "error", "fix"),
    "coding": ("code", "developer", "programming"),
    "programming": ("code", "developer"),
    "job": ("hiring", "recruiting", "career", "resume"),
    "hire": ("hiring", "recruiting", "recruiters", "candidates"),
    "trip": ("travel", "itinerary"),
    "vacation": ("travel", "trip", "itinerary"),
    "fitness": ("workout", "training", "exercise"),
    "diet": ("meal", "nutrition", "calorie"),
    "stocks": ("stock", "trading", "investment", "portfolio"),
    "crypto": ("trading", "forex"),
    "ads": ("advertising", "ad", "campaigns"),
    "shop": ("ecommerce", "store", "shopify"),
    "store": ("ecommerce", "shop"),
    "lawyer": ("legal", "contract"),
    "study": ("exams", "education", "tutor", "learn"),
    "tweets": ("social", "posts"),
}


class Agent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    categories: tuple[str, ...] = Field(min_length=1)

    def field_text(self, field: AgentField) -> str:
        return " ".join(self.categories) if field == "categories" else getattr(self, field)


def words(text: str) -> list[str]:
    """Lowercase words of two letters or more, apostrophes closed up ("you're" → "youre")."""
    text = text.replace("'", "").replace("\u2019", "")
    return [word for word in default_process(text).split() if len(word) > 1]


def query_words(query: str) -> list[str]:
    return [word for word in dict.fromkeys(words(query)) if word not in FILLER_WORDS]


def index_words(text: str) -> set[str]:
    """The words of a catalog text, plus hyphenated compounds closed up, so "ecommerce" finds
    "e-commerce" and "moneymaking" finds "money-making"."""
    found = set(words(text))
    compounds = (chunk.replace("-", "") for chunk in text.split() if "-" in chunk)
    found.update(word for compound in compounds for word in words(compound))
    return found - FILLER_WORDS


def _same_stem(shorter: str, longer: str) -> bool:
    """`longer` is `shorter` plus a common ending, allowing for a dropped final e
    ("write"/"writing") or a doubled final consonant ("plan"/"planner")."""
    if len(shorter) < 3:
        return False
    bases = {shorter, shorter[:-1] if shorter.endswith("e") else shorter + shorter[-1]}
    return any(longer == base + ending for base in bases for ending in COMMON_ENDINGS)


def _typo_budget(word: str) -> int:
    # Words of four letters or fewer are one letter away from too many others ("side"/"slide",
    # "ads"/"add") to guess at; nine letters still have near neighbours two edits away
    # ("printing"/"pricing", "investors"/"inventory").
    return 0 if len(word) <= 4 else 1 if len(word) <= 9 else 2


def word_similarity(query_word: str, word: str) -> float:
    """1.0 for the same word, STEM_SIMILARITY for the same stem, less per typo, else 0.0."""
    if query_word == word:
        return 1.0
    shorter, longer = sorted((query_word, word), key=len)
    if _same_stem(shorter, longer):
        return STEM_SIMILARITY
    # Typos are taken to spare the first letter: otherwise "learn" would find "earn".
    budget = _typo_budget(query_word) if query_word[0] == word[0] else 0
    edits = OSA.distance(query_word, word, score_cutoff=budget)
    return 1.0 - TYPO_PENALTY * edits if budget and edits <= budget else 0.0


def expand(query_word: str) -> dict[str, float]:
    """The word and its synonyms, each with the weight a hit on it is worth."""
    terms = {query_word: 1.0}
    for key, synonyms in SYNONYMS.items():
        similarity = word_similarity(query_word, key)
        if not similarity:
            continue
        terms[key] = max(terms.get(key, 0.0), similarity)
        for synonym in synonyms:
            terms[synonym] = max(terms.get(synonym, 0.0), similarity * SYNONYM_WEIGHT)
    return terms


class AgentCatalog:
    """The agents and an index from each catalog word to the agents and fields it occurs in."""

    def __init__(self, agents: Iterable[Agent]) -> None:
        self.agents: tuple[Agent, ...] = tuple(sorted(agents, key=lambda agent: agent.id))
        duplicates = [id_ for id_, n in Counter(a.id for a in self.agents).items() if n > 1]
        if duplicates:
            raise ValueError(f"duplicate agent ids in the catalog: {', '.join(duplicates)}")
        self._postings: dict[str, dict[int, set[AgentField]]] = defaultdict(
            lambda: defaultdict(set)
        )
        for position, agent in enumerate(self.agents):
            for field in FIELD_WEIGHTS:
                for word in index_words(agent.field_text(field)):
                    self._postings[word][position].add(field)
        self._vocabulary = sorted(self._postings)
        counts = Counter(category for agent in self.agents for category in agent.categories)
        self.categories: tuple[str, ...] = tuple(
            sorted(counts, key=lambda category: (-counts[category], category))
        )
        """Every category, the most populated first."""

    @classmethod
    def from_json(cls, text: str) -> AgentCatalog:
        return cls(TypeAdapter(list[Agent]).validate_json(text))

    def search(self, query: str, limit: int) -> list[tuple[Agent, float]]:
        """The best agents for the query with their scores (0..1), best first."""
        per_word = [self._word_scores(word) for word in query_words(query)]
        if not any(per_word):
            return []
        totals: dict[int, float] = defaultdict(float)
        for scores in per_word:
            for position, score in scores.items():
                totals[position] += score
        # Rounded before sorting so that the order shown and the scores shown agree on ties.
        scored = [
            (self.agents[position], round(total / len(per_word), 3))
            for position, total in totals.items()
        ]
        ranked = sorted(scored, key=lambda pair: (-pair[1], pair[0].id))
        return [(agent, score) for agent, score in ranked if score >= MIN_SCORE][:limit]

    def _word_scores(self, query_word: str) -> dict[int, float]:
        """Agent position → how well this one query word matches that agent."""
        hits: dict[int, dict[AgentField, float]] = defaultdict(dict)
        for term, weight in expand(query_word).items():
            for word, similarity in self._similar_words(term):
                for position, fields in self._postings[word].items():
                    for field in fields:
                        best = hits[position].get(field, 0.0)
                        hits[position][field] = max(best, weight * similarity)
        return {
            position: BEST_FIELD_SHARE * max(FIELD_WEIGHTS[f] * s for f, s in found.items())
            + (1 - BEST_FIELD_SHARE) * sum(found.values()) / len(FIELD_WEIGHTS)
            for position, found in hits.items()
        }

    def _similar_words(self, term: str) -> Iterator[tuple[str, float]]:
        shortlist = process.extract(
            term, self._vocabulary, scorer=JaroWinkler.normalized_similarity,
            score_cutoff=SHORTLIST_CUTOFF, limit=None,
        )  # fmt: skip
        for word, _, _ in shortlist:
            if similarity := word_similarity(term, word):
                yield word, similarity


@functools.cache
def default_catalog() -> AgentCatalog:
    """The shipped catalog, read and indexed on first use and kept for the process."""
    text = resources.files("chat_core.tools").joinpath(CATALOG_RESOURCE).read_text("utf-8")
    return AgentCatalog.from_json(text)


class FindAgent(Tool):
    name = "find_agent"
    description = (
        "Search the catalog of ready-made AI agents and return the best matches for what the "
        "user wants done. Use it whenever the user asks for an agent, bot or assistant for some "
        "job, asks which agents exist for a topic (making money, marketing, coding, customer "
        "support, ...), or describes a task that an existing agent could take on; use it before "
        "offering to build a new agent. Pass the need in a few words; spelling mistakes are "
        "fine. If nothing fits, it returns categories the user can choose from instead."
    )

    class Args(BaseModel):
        query: str = Field(
            min_length=1,
            max_length=200,
            description="What the user wants an agent for, in a few words, e.g. "
            "'write SEO blog posts' or 'make money online'.",
        )
        limit: int = Field(default=5, ge=1, le=10, description="At most this many agents.")

    def __init__(self, catalog: AgentCatalog | None = None) -> None:
        self._catalog = catalog
        """None = the shipped catalog, loaded at the first search rather than here."""

    async def run(self, ctx: ToolContext, args: Args) -> dict[str, Any]:
        catalog = self._catalog if self._catalog is not None else default_catalog()
        found = catalog.search(args.query, args.limit)
        if not found:
            return {
                "type": "no_results",
                "query": args.query,
                "message": f"No agent in the catalog matches {args.query!r} closely enough. "
                "Try describing the task in other words, or pick one of these categories.",
                "suggestions": list(catalog.categories[:SUGGESTED_CATEGORIES]),
            }
        return {
            "type": "agents_found",
            "query": args.query,
            "count": len(found),
            "agents": [
                {
                    "id": agent.id,
                    "name": agent.name,
                    "description": agent.description,
                    "categories": list(agent.categories),
                    "score": score,
                }
                for agent, score in found
            ],
        }
