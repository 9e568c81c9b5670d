"""What every scoped page of Django's admin shares."""

from django.http import Http404


class AbsentIsNotFound:
    """An object the person may not open answers 404, exactly as one that does not exist.

    Django's admin answers an unknown id with a redirect to its index and a message that repeats
    the id; for a page whose rows are scoped, that would tell an id that exists elsewhere from
    one that exists nowhere only by what the person may see. Put it before `ModelAdmin`.
    """

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"No {opts.verbose_name} with that id.")
