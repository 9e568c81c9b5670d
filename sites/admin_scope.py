"""Django's admin for staff who are not superusers: only what concerns the sites they administer.

Whoever set a staff member up may have given them any of Django's model permissions; those say
which kinds of record they may open, never which ones. Which ones is said here, from the one
statement of who administers what (`sites.policies.sites_administered_by`):

* every admin's rows are those of the sites the person administers (`ScopedAdmin.scope`);
* a choice on a form (a site, a region, a person) and a list filter offer only those too, so a
  page never names another region's site or people, and a forged choice is refused;
* an object outside the rows answers 404, as one that does not exist (Django's admin would
  redirect to its index with a message naming the id);
* what belongs to the whole company (`SuperuserOnlyAdmin`: exchange rates, webhook sources and
  their secrets, groups and their permissions, the sign-in records, the ledger's checkpoints) is
  for superusers alone, whatever permissions a staff member holds.

A superuser sees and chooses everything, as before.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from portal.core.admin_mixins import AbsentIsNotFound
from sites.models import Region, Site
from sites.policies import is_company_admin, people_seen_by, sites_administered_by


def is_superuser(request) -> bool:
    return is_company_admin(request.user)


def administered_sites(request) -> QuerySet[Site]:
    """The sites the signed-in person administers (all of them for a superuser)."""
    return sites_administered_by(request.user)


def administered_regions(request) -> QuerySet[Region]:
    """The regions with at least one site the person administers: the only regions named to
    them. Changing a region itself still needs every one of its sites (sites.services)."""
    if is_superuser(request):
        return Region.objects.all()
    return Region.objects.filter(pk__in=administered_sites(request).values("region"))


def choices_for(model, request) -> QuerySet | None:
    """The rows of `model` a form or a filter may offer the person, when scoped; else None."""
    if is_superuser(request):
        return None
    if model is Site:
        return Site.objects.filter(pk__in=administered_sites(request).values("pk"))
    if model is Region:
        return administered_regions(request)
    if model is get_user_model():
        return people_seen_by(request.user)
    return None


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a site, a region or a person that names only those in the person's
    scope (Django's own lists every row of the related model)."""

    def field_choices(self, field, request, model_admin):
        scoped = choices_for(field.related_model, request)
        if scoped is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to=Q(pk__in=scoped.values("pk"))
        )


def scoped_list_filter(model, list_filter) -> list:
    """`list_filter` with every plain filter on a foreign key or a many-to-many field made to
    offer only what is in scope: sites, regions and people through ScopedRelatedFilter, any
    other related row only when a row of this admin points at it."""
    scoped = []
    for entry in list_filter:
        if isinstance(entry, str) and "__" not in entry:
            field = model._meta.get_field(entry)
            if field.is_relation:
                if field.related_model in (Site, Region, get_user_model()):
                    entry = (entry, ScopedRelatedFilter)
                else:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
        scoped.append(entry)
    return scoped


class ScopedAdmin(AbsentIsNotFound, admin.ModelAdmin):
    """An admin whose rows, choices and filters keep to the sites the person administers.

    Say which rows are in scope with `site_field` (the path from the model to its Site) or by
    overriding `scope`; a superuser's rows are never narrowed.
    """

    site_field: str | None = None

    def scope(self, request) -> Q:
        if self.site_field is None:
            raise NotImplementedError(f"{type(self).__name__} must say what is in scope.")
        return Q(**{f"{self.site_field}__in": administered_sites(request)})

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if is_superuser(request):
            return rows
        return rows.filter(self.scope(request))

    def get_list_filter(self, request):
        return scoped_list_filter(self.model, super().get_list_filter(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        scoped = choices_for(db_field.related_model, request)
        if scoped is not None:
            kwargs["queryset"] = scoped
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        scoped = choices_for(db_field.related_model, request)
        if scoped is not None:
            kwargs["queryset"] = scoped
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class SuperuserOnlyAdmin(AbsentIsNotFound, admin.ModelAdmin):
    """The whole company's records: superusers only, whatever a staff member's permissions."""

    def has_module_permission(self, request) -> bool:
        return is_superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args) -> bool:
        return is_superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows if is_superuser(request) else rows.none()
