"""mail.thread's `message_post`, on every model that has a chatter."""

import html

from portal.integrations.odoo.sandbox.actions.common import xmlid_res_id
from portal.integrations.odoo.sandbox.errors import singleton_expected


def message_post(
    env,
    model,
    ids,
    *,
    body="",
    subject=None,
    message_type="notification",
    subtype_xmlid=None,
    subtype_id=False,
    partner_ids=None,
    attachments=None,
    attachment_ids=None,
    body_is_html=False,
    author_id=None,
    **kwargs,
):
    """A note or message in the record's chatter; keyword-only, one record, returns its id."""
    ids = env.existing(model, ids)
    if len(ids) != 1:
        raise singleton_expected(model, ids)
    if subtype_xmlid:
        module, _, name = subtype_xmlid.partition(".")
        subtype_id = xmlid_res_id(env, module, name)
    if not subtype_id and message_type == "comment":
        subtype_id = xmlid_res_id(env, "mail", "mt_note")
    text = str(body or "")
    author = author_id or (env.row("res.users", env.uid) or {}).get("partner_id")
    return env.create(
        "mail.message",
        {
            "model": model,
            "res_id": ids[0],
            "record_name": env.display_name(model, ids[0]),
            "body": text if body_is_html else f"<p>{html.escape(text)}</p>",
            "subject": subject or False,
            "message_type": message_type,
            "subtype_id": subtype_id or False,
            "author_id": author or False,
            "date": env.now,
        },
    )
