"""Attachments: judged by their bytes, stored by SHA-256, named in the ledger, shown only to
people who may see the request."""

import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from approvals import services
from approvals.models import ApprovalRequest, Attachment
from portal.audit.models import AuditEvent
from tests.approvals.conftest import raise_request
from tests.approvals.test_raise_views import form_data, new_url

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"
HTML = b"<!doctype html><script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture(autouse=True)
def _files_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


def upload(name: str, content: bytes, content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def draft(matrix, requester, site_a1):
    return raise_request(requester, site_a1, kind="write_off", category="Frozen", submit=False)


def test_pdf_is_stored_by_its_digest_and_named_in_the_audit_trail(requester, draft):
    attachment = services.attachment_add(
        actor=requester, request_id=draft.pk, upload=upload("quote.pdf", PDF)
    )

    digest = hashlib.sha256(PDF).hexdigest()
    assert attachment.sha256 == digest
    assert attachment.content_type == "application/pdf" and attachment.size == len(PDF)
    assert attachment.file.name == f"attachments/{digest[:2]}/{digest}"
    with default_storage.open(attachment.file.name) as stored:
        assert stored.read() == PDF
    event = AuditEvent.objects.get(action="attachment.added", object_id=str(draft.pk))
    assert event.after["sha256"] == digest and digest in event.comment


@pytest.mark.parametrize(
    ("content", "content_type", "name"),
    [(PNG, "image/png", "quote.png"), (JPEG, "image/jpeg", "quote.jpg")],
)
def test_a_pdf_name_on_image_bytes_is_typed_by_its_content(
    requester, draft, content, content_type, name
):
    attachment = services.attachment_add(
        actor=requester, request_id=draft.pk, upload=upload("quote.pdf", content)
    )

    assert attachment.content_type == content_type
    assert attachment.name == name


def test_webp_photo_is_accepted(requester, draft):
    attachment = services.attachment_add(
        actor=requester, request_id=draft.pk, upload=upload("damage.webp", WEBP, "image/webp")
    )

    assert attachment.content_type == "image/webp"


@pytest.mark.parametrize(
    ("name", "content"),
    [("quote.pdf", HTML), ("photo.svg", SVG), ("photo.png", SVG), ("notes.txt", b"just text")],
)
def test_html_svg_and_other_content_is_refused_and_nothing_is_stored(
    requester, draft, name, content
):
    with pytest.raises(ValidationError, match="not a PDF, PNG, JPEG or WebP file"):
        services.attachment_add(
            actor=requester, request_id=draft.pk, upload=upload(name, content, "application/pdf")
        )

    assert not Attachment.objects.exists()
    assert not AuditEvent.objects.filter(action="attachment.added").exists()


def test_file_over_the_size_limit_is_refused(settings, requester, draft):
    settings.ATTACHMENT_MAX_BYTES = 2048

    with pytest.raises(ValidationError, match="larger than 2 KB"):
        services.attachment_add(
            actor=requester, request_id=draft.pk, upload=upload("big.pdf", PDF + b"0" * 4096)
        )

    assert not Attachment.objects.exists()


def test_only_the_requester_adds_documents(site_manager, draft):
    with pytest.raises(PermissionDenied):
        services.attachment_add(
            actor=site_manager, request_id=draft.pk, upload=upload("quote.pdf", PDF)
        )

    assert not Attachment.objects.exists()


def test_raised_in_the_browser_with_a_pdf_the_page_lists_it_and_serves_it(
    client, matrix, requester, site_a1
):
    client.force_login(requester)
    data = form_data(site_a1, amount="300") | {"attachments": [upload("quote.pdf", PDF)]}

    client.post(new_url(), data)

    request = ApprovalRequest.objects.get()
    attachment = request.attachments.get()
    digest = hashlib.sha256(PDF).hexdigest()
    page = client.get(reverse("approvals:detail", args=[request.pk])).content.decode()
    download = reverse("approvals:attachment", args=[request.pk, attachment.pk])
    assert f'href="{download}"' in page and f'title="{digest}"' in page and digest[:12] in page
    response = client.get(download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_download_answers_404_to_people_who_may_not_see_the_request(
    client, matrix, requester, site_a1, outsider
):
    request = raise_request(requester, site_a1, kind="write_off", category="Frozen", submit=False)
    attachment = services.attachment_add(
        actor=requester, request_id=request.pk, upload=upload("quote.pdf", PDF)
    )
    other = raise_request(requester, site_a1, kind="write_off", category="Frozen", submit=False)
    client.force_login(outsider)

    response = client.get(reverse("approvals:attachment", args=[request.pk, attachment.pk]))

    assert response.status_code == 404
    client.force_login(requester)
    wrong_request = reverse("approvals:attachment", args=[other.pk, attachment.pk])
    assert client.get(wrong_request).status_code == 404


def test_refused_submission_keeps_nothing_and_asks_to_choose_files_again(
    client, matrix, requester, site_a1
):
    client.force_login(requester)
    data = form_data(site_a1, category="") | {"attachments": [upload("quote.pdf", PDF)]}

    response = client.post(new_url(), data)

    assert response.status_code == 400
    assert 'id="choose-again"' in response.content.decode()
    assert not Attachment.objects.exists() and not ApprovalRequest.objects.exists()


def test_refused_file_in_the_form_is_named_next_to_the_field(client, matrix, requester, site_a1):
    client.force_login(requester)
    data = form_data(site_a1) | {"attachments": [upload("invoice.pdf", HTML)]}

    response = client.post(new_url(), data)

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_attachments-error"' in page and "invoice.pdf is not a PDF" in page
    assert not ApprovalRequest.objects.exists()


def test_a_revision_keeps_the_documents_of_the_rejected_request(
    client, matrix, requester, site_a1, site_manager
):
    old = raise_request(requester, site_a1, kind="write_off", category="Frozen", submit=False)
    kept = services.attachment_add(
        actor=requester, request_id=old.pk, upload=upload("quote.pdf", PDF)
    )
    services.request_submit(actor=requester, request_id=old.pk)
    services.request_reject(actor=site_manager, request_id=old.pk, reason="Add the photo")

    new = services.request_resubmit(
        actor=requester,
        request_id=old.pk,
        reason="Photo added",
        attachments=[upload("damage.png", PNG, "image/png")],
        submit=True,
    )

    assert [a.sha256 for a in new.attachments.all()] == [
        kept.sha256,
        hashlib.sha256(PNG).hexdigest(),
    ]
    assert new.attachments.first().file.name == kept.file.name
    assert old.attachments.get() == kept
    assert AuditEvent.objects.filter(
        action="attachment.added", object_id=str(new.pk), after__sha256=kept.sha256
    ).exists()
