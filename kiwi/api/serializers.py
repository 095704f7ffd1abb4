from __future__ import annotations

from typing import Any

from rest_framework import serializers

from kiwi.models import KiwiItem, KiwiWorkspace


class KiwiWorkspaceSerializer(serializers.ModelSerializer[KiwiWorkspace]):
    items = serializers.IntegerField(
        source="item_count", read_only=True, help_text="Files indexed, parsed or not."
    )
    broken = serializers.IntegerField(
        source="broken_count", read_only=True, help_text="Files that did not parse."
    )

    class Meta:
        model = KiwiWorkspace
        fields = [
            "name",
            "scope",
            "root",
            "project_path",
            "server",
            "source",
            "indexed_at",
            "last_error",
            "items",
            "broken",
        ]


class KiwiItemSerializer(serializers.Serializer[KiwiItem]):
    id = serializers.IntegerField()
    workspace = serializers.CharField()
    kind = serializers.ChoiceField(choices=KiwiItem.Kind.choices)
    name = serializers.CharField()
    version = serializers.CharField(allow_blank=True)
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True, help_text="At most 500 characters here.")
    category = serializers.CharField(allow_blank=True)
    path = serializers.CharField(help_text="Below the workspace's .ai folder.")
    error = serializers.CharField(allow_blank=True, help_text="Why the file did not parse; empty if it did.")
    indexed_at = serializers.DateTimeField()


class KiwiLinkSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField(help_text="requires, suggests, extends, related or references.")
    target = serializers.CharField()
    target_kind = serializers.CharField(allow_blank=True)


class KiwiItemDetailSerializer(KiwiItemSerializer):
    data = serializers.DictField(help_text="The parsed structure: permissions, inputs, steps, outputs...")
    links = KiwiLinkSerializer(many=True)
    entity = serializers.CharField(help_text="Its id in the graph (/api/graph/*).")
