from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Pieces every app shares: how values read on screen and in files."""

    name = "portal.core"
    label = "core"

    def ready(self):
        # The start-up checks of the security settings.
        from portal import checks  # noqa: F401
