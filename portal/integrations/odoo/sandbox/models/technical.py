"""The chatter (messages and their subtypes) and the technical models: ir.model and
ir.model.data."""

from portal.integrations.odoo.sandbox.models.fields import (
    ModelSpec,
    boolean,
    char,
    datetime_,
    html,
    integer,
    many2one,
    now,
    selection,
    titled,
)

MESSAGE_TYPES = titled("email", "comment", "notification", "auto_comment", "user_notification")


def specs() -> list[ModelSpec]:
    """The chatter and technical models."""
    return [
        ModelSpec(
            "mail.message",
            "Message",
            {
                "subject": char(),
                "body": html("Contents", default=""),
                "model": char("Related Document Model"),
                "res_id": integer("Related Document ID"),
                "record_name": char("Message Record Name"),
                "message_type": selection(MESSAGE_TYPES, "Type", default="comment", required=True),
                "subtype_id": many2one("mail.message.subtype", "Subtype"),
                "author_id": many2one("res.partner", "Author"),
                "date": datetime_(default=now),
            },
            order="id desc",
            display=lambda env, row: row.get("record_name") or row.get("subject") or "",
        ),
        ModelSpec(
            "mail.message.subtype",
            "Message subtypes",
            {"name": char(required=True), "internal": boolean("Internal Only")},
        ),
        ModelSpec(
            "ir.model",
            "Models",
            {
                "name": char("Model Description", required=True),
                "model": char("Model", required=True),
                "state": selection(
                    [("manual", "Custom Object"), ("base", "Base Object")], default="base"
                ),
                "transient": boolean(),
            },
            order="model",
        ),
        ModelSpec(
            "ir.model.data",
            "Model Data",
            {
                "name": char("External Identifier", required=True),
                "module": char(required=True),
                "model": char("Model Name", required=True),
                "res_id": integer("Record ID"),
            },
            order="module, model, name",
            display=lambda env, row: f"{row['module']}.{row['name']}",
        ),
    ]
