"""Celery beat's periodic jobs: what each is for and how often it runs.

Every job is written so that an overlapping or repeated run is harmless; `portal/beat.py` makes
sure only one beat sends them.
"""

from celery.schedules import crontab

from portal.env import env_int


def beat_schedule(*, debug: bool, seal_every: int | None) -> dict:
    """The schedule; `seal_every` is how often beat seals the ledger, None where writers seal
    their own events."""
    schedule: dict = {
        "approvals-sla-sweep": {
            "task": "approvals.sla_sweep",
            "schedule": env_int("APPROVAL_SLA_SWEEP_SECONDS", 60, minimum=5),
        },
        # Reminds and escalates exception cases; marks each case, so an overlapping run is harmless.
        "exceptions-sla-sweep": {
            "task": "exceptions.sla_sweep",
            "schedule": 60,
            "options": {"expires": 60},
        },
        "odoo-sync": {
            "task": "odoo.sync",
            "schedule": env_int("ODOO_SYNC_SECONDS", 60, minimum=5),
            # A run that is still going makes the next one pointless; drop it rather than queue.
            "options": {"expires": env_int("ODOO_SYNC_SECONDS", 60, minimum=5)},
        },
        # Once a day; a second run within 20 hours sends nothing to the same person.
        "approvals-daily-digest": {
            "task": "approvals.daily_digest",
            "schedule": crontab(hour=env_int("APPROVAL_DIGEST_HOUR_UTC", 6, minimum=0), minute=0),
        },
        "audit-checkpoint": {
            "task": "audit.checkpoint",
            # A demo takes one every five minutes, so its auditor sees exports tied to one.
            "schedule": env_int("AUDIT_CHECKPOINT_SECONDS", 300 if debug else 86400, minimum=60),
        },
        "odoo-drain-outbox": {
            "task": "odoo.drain_outbox",
            "schedule": 30,
            "options": {"expires": 30},
        },
        "accounts-purge-sign-in-failures": {
            "task": "accounts.purge_sign_in_failures",
            "schedule": 86400,
            "options": {"expires": 3600},
        },
        # Notifications whose task was lost (broker down or restarted) or whose retry is due.
        "notify-drain-outbox": {
            "task": "notify.drain_outbox",
            "schedule": 30,
            "options": {"expires": 30},
        },
        "notify-purge-sent": {
            "task": "notify.purge_sent",
            "schedule": 3600,
            "options": {"expires": 3600},
        },
        "api-purge-idempotency-keys": {
            "task": "api.purge_idempotency_keys",
            "schedule": 3600,
            "options": {"expires": 3600},
        },
        "webhooks-deliver-due": {
            "task": "webhooks.deliver_due",
            "schedule": 30,
            "options": {"expires": 30},
        },
        # Suggested resolutions learn from the day's resolved cases; a model is only ever added.
        "exceptions-train-resolution-models": {
            "task": "exceptions.train_resolution_models",
            "schedule": crontab(hour=env_int("RESOLUTION_TRAIN_HOUR_UTC", 2, minimum=0), minute=30),
            "options": {"expires": 3600},
        },
        # Inbound deliveries whose processing task was lost (broker down, worker killed).
        "webhooks-process-stranded": {
            "task": "webhooks.process_stranded",
            "schedule": 300,
            "options": {"expires": 300},
        },
        # Reads the shared mailboxes; an overlapping run stores nothing twice.
        "mail-poll": {
            "task": "mail.poll",
            "schedule": env_int("MAIL_POLL_SECONDS", 60, minimum=10),
            "options": {"expires": env_int("MAIL_POLL_SECONDS", 60, minimum=10)},
        },
    }
    if seal_every is not None:
        # Seals whatever the writers left unsealed; an overlapping run finds the lock taken.
        schedule["audit-seal"] = {
            "task": "audit.seal",
            "schedule": seal_every,
            "options": {"expires": seal_every},
        }
    return schedule
