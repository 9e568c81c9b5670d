"""The sites of the REST API: those where the caller holds a role, read-only.

Token actions are `sites.list` and `sites.retrieve`; a site out of scope answers 404.
"""

import django_filters
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from portal.api.filters import BooleanFilter, StrictFilterSet
from portal.core.ids import ID_PATTERN
from sites.models import Site
from sites.selectors import site_list_for_user
from sites.serializers import SiteSerializer

SITE_EXAMPLE = {
    "id": 1,
    "code": "AMS",
    "name": "Amsterdam DC",
    "region": {"id": 1, "code": "BNL", "name": "Benelux"},
    "time_zone": "Europe/Amsterdam",
    "currency": "EUR",
    "active": True,
    "opens_at": "07:00:00",
    "closes_at": "18:00:00",
    "business_days": "12345",
    "odoo_warehouse_id": 1,
}


class SiteFilter(StrictFilterSet):
    region = django_filters.CharFilter(field_name="region__code", help_text="Region code.")
    active = BooleanFilter(help_text="true: open sites; false: closed ones.")

    class Meta:
        model = Site
        fields = []


class SiteViewSet(viewsets.GenericViewSet):
    """The sites where the caller holds a role, directly or through their region."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = SiteFilter
    queryset = Site.objects.none()  # the model, for the schema; rows: get_queryset
    serializer_class = SiteSerializer
    lookup_value_regex = ID_PATTERN
    cursor_ordering = ("id",)

    def get_queryset(self):
        return site_list_for_user(self.request.user)

    @extend_schema(
        summary="List your sites",
        responses={200: SiteSerializer(many=True)},
        examples=[OpenApiExample("Amsterdam", response_only=True, value=SITE_EXAMPLE)],
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(SiteSerializer(page, many=True).data)

    @extend_schema(
        summary="One site",
        responses={200: SiteSerializer},
        examples=[OpenApiExample("Amsterdam", response_only=True, value=SITE_EXAMPLE)],
    )
    def retrieve(self, request, pk=None):
        site = self.get_queryset().filter(pk=int(pk)).first()
        if site is None:
            raise Http404("No such site.")
        return Response(SiteSerializer(site).data)
