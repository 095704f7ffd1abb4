"""The shapes of the graph's and the search's answers, for the OpenAPI schema.

The views answer with dicts built in missioncontrol/graph.py and missioncontrol/search.py;
these serializers only describe them. Nothing is serialized through them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from missioncontrol import search
from missioncontrol.graph import EDGE_KINDS, ENTITY_KINDS


class GraphEntitySerializer(serializers.Serializer[Any]):
    """A node of the graph; its id says its kind: `server:git`, `tool:git/git_log`, `thread:T-1`."""

    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=ENTITY_KINDS)
    name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    data = serializers.DictField(help_text="What else the kind knows (`in_catalog`, `registered`, ...).")


class GraphEdgeSerializer(serializers.Serializer[Any]):
    """An edge between two entities, by their ids."""

    source = serializers.CharField()
    target = serializers.CharField()
    kind = serializers.ChoiceField(choices=EDGE_KINDS)
    weight = serializers.IntegerField()


class GraphEntityListSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="How many match, on every page.")
    results = GraphEntitySerializer(many=True)


class GraphEdgeListSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="How many match, on every page.")
    results = GraphEdgeSerializer(many=True)


class SearchHitSerializer(serializers.Serializer[Any]):
    """One row that matched, typed by its kind, with where to read it whole."""

    kind = serializers.ChoiceField(choices=list(search.KINDS))
    id = serializers.CharField()
    title = serializers.CharField()
    snippet = serializers.CharField(allow_blank=True)
    timestamp = serializers.DateTimeField(allow_null=True)
    thread_id = serializers.CharField(allow_null=True)
    url = serializers.CharField(help_text="The API path that shows it.")
    rank = serializers.FloatField(help_text="Relevance from 0 to 1.")


class SearchResultsSerializer(serializers.Serializer[Any]):
    query = serializers.CharField()
    order = serializers.ChoiceField(choices=["rank", "time"])
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text=f"Matches per kind, at most {search.COUNT_CAP}."
    )
    more = serializers.ListField(
        child=serializers.ChoiceField(choices=list(search.KINDS)),
        help_text=f"The kinds with more than {search.COUNT_CAP} matches.",
    )
    results = SearchHitSerializer(many=True)
