"""How sites read over the API: where they are, their time zone, currency and working hours."""

from rest_framework import serializers


class RegionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="e.g. BNL.")
    name = serializers.CharField()


class SiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="e.g. AMS; equal to the Odoo warehouse code.")
    name = serializers.CharField()
    region = RegionSerializer()
    time_zone = serializers.CharField(help_text="IANA name; times are shown in it on screen.")
    currency = serializers.CharField(help_text="ISO 4217 code of the site's own currency.")
    active = serializers.BooleanField(help_text="A closed site keeps its history, takes no work.")
    # Wall-clock times of the site's own zone (HH:MM:SS), not instants: no UTC offset.
    opens_at = serializers.CharField(help_text="Opening time, HH:MM:SS in the site's time zone.")
    closes_at = serializers.CharField(help_text="Closing time, HH:MM:SS in the site's time zone.")
    business_days = serializers.CharField(help_text="ISO weekdays worked, 1 = Monday: 12345.")
    odoo_warehouse_id = serializers.IntegerField(allow_null=True)
