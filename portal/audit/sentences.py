"""Ledger events told as words: one mapping, read by the request page's timeline and by the
auditor's pages alike, so an event never reads one way to an approver and another to an auditor.
"""

from portal.audit.models import AuditEvent

# What each recorded action means, said once: "{actor}" is who acted. A decision taken for
# someone else adds "on behalf of <name>"; actions by Tollgate itself read without an actor.
EVENT_SENTENCES = {
    "request.created": "Raised by {actor}",
    "request.submitted": "Submitted by {actor}",
    "request.edited": "Changed by {actor}",
    "request.in_review": "Sent for review",
    "request.auto_approved": "Approved by policy on the fast path",
    "request.approved": "Approved at every tier: the request is approved",
    "request.rejected": "The request is rejected",
    "request.withdrawn": "Withdrawn by {actor}",
    "request.resubmitted": "Resubmitted by {actor}",
    "request.drifted": "Changed in Odoo after it was raised; decided again from the first tier",
    "request.applied": "Odoo updated with the decision",
    "request.apply_failed": "Odoo update failed",
    "request.apply_retried": "Odoo update sent again by {actor}",
    "request.write_back_failed": "Odoo update could not be queued",
    "request.post_reviewed": "Reviewed after the fast path by {actor}",
    "request.expired": "Expired: nobody decided in time",
    "attachment.added": "Document attached by {actor}",
    "approval_link.used": "Decided from an e-mail link by {actor}",
    "decision.approve": "Approved by {actor}",
    "decision.reject": "Rejected by {actor}",
    "decision.auto_approve": "Approved by policy on the fast path",
    "step.escalated": "Escalated: the tier was not decided in time",
    "step.reminded": "Reminder sent to the people who decide",
    "delegation.created": "Delegation given by {actor}",
    "delegation.revoked": "Delegation withdrawn by {actor}",
    "case.opened": "Case opened by {actor}",
    "case.seen_again": "The same problem was seen again",
    "case.assigned": "Case assigned by {actor}",
    "case.started": "Work on the case started by {actor}",
    "case.resolved": "Case resolved by {actor}",
    "case.resolution_awaits_approval": "Resolution sent for approval by {actor}",
    "case.resolution_refused": "Resolution refused",
    "case.dismissed": "Case dismissed by {actor}",
    "case.reopened": "Case reopened by {actor}",
    "case.reminded": "Reminder sent about the case",
    "case.escalated": "Case escalated: it was not handled in time",
    "policy.created": "Policy drafted by {actor}",
    "policy.published": "Policy published by {actor}",
    "policy.retired": "Policy retired by {actor}",
    "site.created": "Site added by {actor}",
    "site.changed": "Site changed by {actor}",
    "region.created": "Region added by {actor}",
    "region.renamed": "Region renamed by {actor}",
    "membership.granted": "Role given by {actor}",
    "membership.changed": "Role changed by {actor}",
    "membership.ended": "Role ended by {actor}",
    "currency_rate.added": "Exchange rate added by {actor}",
    "notifications.preferences_changed": "Notification preferences changed by {actor}",
    "api_token.created": "API token created by {actor}",
    "api_token.revoked": "API token revoked by {actor}",
    "auth.signed_in": "Signed in: {actor}",
    "auth.signed_out": "Signed out: {actor}",
    "auth.sign_in_failed": "Failed sign-ins began (one summary per address and window)",
    "auth.locked_out": "Sign-in locked after repeated failures (once per window)",
    "auth.password_reset": "Password reset by {actor}",
    "audit.exported": "Ledger exported by {actor}",
    "audit.export_refused": "Ledger export refused",
    "audit.verified": "Ledger chain verified",
    "audit.checkpoint": "Ledger checkpoint taken",
    "odoo.write_back_applied": "Odoo updated with the decision",
    "odoo.write_back_failed": "Odoo update failed",
    "odoo.write_back_retrying": "Odoo update will be tried again",
    "webhook.source_created": "Webhook sender added by {actor}",
    "webhook.secret_added": "Webhook signing secret added by {actor}",
    "webhook.secret_retired": "Webhook signing secret retired by {actor}",
    "webhook.subscription_created": "Outbound webhook subscription added by {actor}",
    "webhook.subscription_changed": "Outbound webhook subscription changed by {actor}",
    "webhook.subscription_enabled": "Outbound webhook subscription turned on by {actor}",
    "webhook.subscription_disabled": "Outbound webhook subscription turned off",
    "webhook.subscription_secret_rotated": "Outbound webhook secret rotated by {actor}",
    "webhook.subscription_secrets_retired": "Outbound webhook's old secrets retired by {actor}",
    "webhook.outbound_redelivered": "Outbound webhook sent again by {actor}",
    "mail.received": "Mail received in a shared mailbox",
    "mail.refused": "Mail refused: not stored in full",
    "mail.event_raised": "Mail read and its event raised",
    "mail.no_event": "Mail read: nothing for Tollgate to do",
    "mail.sent_to_triage": "Mail sent to triage for a person to check",
    "mail.reading_failed": "Mail could not be read; it will be tried again",
    "triage.confirmed": "Mail confirmed in triage by {actor}",
    "triage.corrected": "Mail corrected and confirmed in triage by {actor}",
    "triage.dismissed": "Mail dismissed in triage by {actor}",
    "triage.placed": "Mail placed at a site by {actor}",
    "mailbox.created": "Shared mailbox added by {actor}",
    "mailbox.changed": "Shared mailbox changed by {actor}",
    "sender_template.created": "Mail sender template added by {actor}",
    "sender_template.changed": "Mail sender template changed by {actor}",
}

_TOLLGATE = ("", "tollgate", "system")


def person_name(person) -> str:
    """A person as people name them: the full name, the username only when there is none."""
    if person is None:
        return ""
    return person.get_full_name() or person.get_username()


def actor_name(event: AuditEvent) -> str:
    """Who acted, by name; "" when Tollgate itself did."""
    if event.actor is not None:
        return person_name(event.actor)
    return "" if event.actor_label in _TOLLGATE else event.actor_label


def _phrase(action: str, with_actor: bool) -> str:
    phrase = EVENT_SENTENCES.get(action)
    if phrase is None:
        words = action.replace(".", " ").replace("_", " ").strip()
        phrase = words[:1].upper() + words[1:] + (" by {actor}" if with_actor else "")
    return phrase


def _without_actor(phrase: str) -> str:
    for joint in (" by {actor}", ": {actor}"):
        phrase = phrase.split(joint)[0]
    return phrase


def event_sentence(event: AuditEvent) -> str:
    """One ledger event as a sentence: 'Approved by Sam Site on behalf of Rita Region'."""
    actor = actor_name(event)
    phrase = _phrase(event.action, bool(actor))
    if "{actor}" in phrase:
        phrase = phrase.replace("{actor}", actor) if actor else _without_actor(phrase)
    behalf = person_name(event.on_behalf_of)
    return f"{phrase} on behalf of {behalf}" if behalf else phrase


def event_words(event_or_action) -> str:
    """What happened, without who did it ('Approved', 'Document attached'), for a table that
    names the actor in a column of its own."""
    action = getattr(event_or_action, "action", event_or_action)
    return _without_actor(_phrase(str(action), False))
