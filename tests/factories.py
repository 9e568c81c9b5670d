"""Test data built through the real services, so grant rows exist exactly as in production."""

import factory
from django.contrib.auth import get_user_model

from sites import services


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.django.Password("correct-horse-battery")


class RegionFactory(factory.Factory):
    class Meta:
        model = dict

    code = factory.Sequence(lambda n: f"R{n}")
    name = factory.LazyAttribute(lambda region: f"Region {region.code}")

    @classmethod
    def _create(cls, model_class, **fields):
        return services.region_create(actor=None, **fields)


class SiteFactory(factory.Factory):
    class Meta:
        model = dict

    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.LazyAttribute(lambda site: f"Site {site.code}")
    region = factory.SubFactory(RegionFactory)
    time_zone = "Europe/Amsterdam"
    currency = "EUR"
    odoo_company_id = 1

    @classmethod
    def _create(cls, model_class, **fields):
        return services.site_create(actor=None, **fields)


def grant(user, role, *, site=None, region=None, **period):
    """Give `user` a role the way an administrator would."""
    return services.membership_grant(
        actor=None, user=user, role=role, site=site, region=region, **period
    )
