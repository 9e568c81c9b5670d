"""Files attached to approval requests, checked on the way in and carried to a resubmission."""

from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction

from approvals import policies, uploads
from approvals.models import ApprovalRequest, Attachment
from approvals.services.common import locked
from portal.audit.services import audit_record


def attachment_add(*, actor, request_id: int, upload) -> Attachment:
    """Keep a document with a request, stored under its SHA-256 and named in the ledger.

    The content is judged by its first bytes (PDF, PNG, JPEG or WebP) and by the size limit
    ATTACHMENT_MAX_BYTES. Locks the request row.
    """
    checked = uploads.check(upload)
    with transaction.atomic():
        request = locked(request_id)
        if not policies.may_attach(actor, request):
            raise PermissionDenied("Only the requester may add documents, while it is open.")
        return attach(request, actor, checked)


def attach(request: ApprovalRequest, actor, upload: uploads.CheckedUpload) -> Attachment:
    attachment = Attachment(
        request=request,
        name=upload.name,
        content_type=upload.content_type,
        size=upload.size,
        sha256=upload.sha256,
        uploaded_by=actor,
    )
    field = attachment.file
    path = field.field.generate_filename(attachment, upload.name)
    # Stored by digest: the same document given twice is one object in the store. An object
    # left by a transaction that then failed is the same bytes under the same name, so harmless.
    if not field.storage.exists(path):
        path = field.storage.save(path, ContentFile(upload.content))
    field.name = path
    attachment.save()
    audit_record(
        action="attachment.added",
        actor=actor,
        obj=request,
        site=request.site,
        after={
            "name": upload.name,
            "sha256": upload.sha256,
            "size": upload.size,
            "content_type": upload.content_type,
        },
        comment=f"{upload.name}, SHA-256 {upload.sha256}",
    )
    return attachment


def carry_attachments(old: ApprovalRequest, new: ApprovalRequest, actor) -> None:
    """The documents of a rejected request come with its revision (the same stored objects)."""
    for kept in old.attachments.all():
        Attachment.objects.create(
            request=new,
            file=kept.file.name,
            name=kept.name,
            content_type=kept.content_type,
            size=kept.size,
            sha256=kept.sha256,
            uploaded_by=kept.uploaded_by,
            uploaded_at=kept.uploaded_at,
        )
        audit_record(
            action="attachment.added",
            actor=actor,
            obj=new,
            site=new.site,
            after={"name": kept.name, "sha256": kept.sha256, "from": old.reference},
            comment=f"{kept.name}, SHA-256 {kept.sha256}, kept from {old.reference}",
        )
