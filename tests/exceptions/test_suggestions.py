"""Suggested resolution codes: trained from resolved cases, stored as numbers, shown on the
case page with the model's measured accuracy, and only above the confidence threshold."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from exceptions import services, suggestions, tasks
from exceptions.models import ResolutionCode, ResolutionModel

# What carriers said, and how the warehouse ended it.
ENDINGS = [
    ("Port congestion; the carrier offers a new slot", "rescheduled", "New slot agreed."),
    ("Truck breakdown; the customer needs it urgently", "expedited", "Sent by express courier."),
    ("Missed the evening cut-off; arrives tomorrow", "delivered_late", "Arrived next morning."),
]


def _case(site, n: int, note: str, *, words: str = ""):
    case, _ = services.case_raise(
        kind="shipment_delay",
        site=site,
        severity="medium",
        title=f"Delivery {n} is late",
        source="odoo",
        dedupe_key=f"suggest:{n}",
        payload={},
        evidence={"days_late": 2, "carrier_note": note + words},
    )
    return case


@pytest.fixture
def resolved(site_a1, site_manager):
    """Thirty delayed shipments, ten ended each way, resolved through the services."""
    for n in range(30):
        note, code, done = ENDINGS[n % 3]
        case = _case(site_a1, n, note)
        services.case_assign(actor=site_manager, case_id=case.pk, owner=site_manager)
        services.case_resolve(actor=site_manager, case_id=case.pk, code=code, note=done)


def test_training_stores_a_model_of_plain_numbers_with_its_held_out_accuracy(resolved):
    trained = suggestions.train("shipment_delay")

    model = trained.model
    assert model is not None and model.kind == "shipment_delay"
    assert sorted(model.classes) == ["delivered_late", "expedited", "rescheduled"]
    assert (model.trained_on, model.tested_on) == (22, 8)
    assert model.accuracy == 1  # the carriers' words tell the endings apart
    # Nothing but JSON numbers and words: nothing that could run when loaded.
    stored = ResolutionModel.objects.get(pk=model.pk)
    json.dumps([stored.vocabulary, stored.idf, stored.coefficients, stored.intercepts])
    assert "congestion" in stored.vocabulary and len(stored.idf) == len(stored.vocabulary)


def test_too_few_cases_or_a_single_code_give_no_model(site_a1, site_manager):
    for n in range(3):
        case = _case(site_a1, n, ENDINGS[0][0])
        services.case_assign(actor=site_manager, case_id=case.pk, owner=site_manager)
        services.case_resolve(actor=site_manager, case_id=case.pk, code="rescheduled", note="Ok.")

    trained = suggestions.train("shipment_delay")

    assert trained.model is None
    assert trained.reason == "only 3 resolved cases, 8 needed"
    assert suggestions.train("invoice_mismatch").reason == "only 0 resolved cases, 8 needed"


@pytest.mark.parametrize("classes", [2, 3])
def test_the_stored_numbers_give_what_scikit_learn_gives(classes):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [f"{note} case {n}" for n in range(12) for note, _, _ in ENDINGS[:classes]]
    labels = [code for _ in range(12) for _, code, _ in ENDINGS[:classes]]
    vectorizer = TfidfVectorizer(token_pattern=suggestions.WORD_PATTERN)
    classifier = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(texts), labels)
    model = ResolutionModel(
        classes=list(classifier.classes_),
        vocabulary={term: int(column) for term, column in vectorizer.vocabulary_.items()},
        idf=list(vectorizer.idf_),
        coefficients=classifier.coef_.tolist(),
        intercepts=classifier.intercept_.tolist(),
    )

    for text in ["Port congestion again", "truck BREAKDOWN, urgent", "unheard words only"]:
        expected = classifier.predict_proba(vectorizer.transform([text]))[0]
        ours = suggestions.probabilities(model, text)
        assert [ours[code] for code in classifier.classes_] == pytest.approx(list(expected))


def test_an_open_case_gets_the_likely_codes_with_the_models_accuracy(resolved, site_a1):
    suggestions.train("shipment_delay")
    case = _case(site_a1, 99, ENDINGS[1][0])

    found = suggestions.suggest(case)

    assert found[0].code == "expedited"
    assert found[0].label == "Shipped by a faster service"
    assert found[0].confidence >= 40 and found[0].accuracy == 100 and found[0].tested_on == 8
    assert all(item.confidence >= 40 for item in found)


def test_nothing_is_suggested_below_the_threshold_or_for_a_withdrawn_code(
    resolved, site_a1, settings
):
    suggestions.train("shipment_delay")
    case = _case(site_a1, 99, ENDINGS[1][0])
    ResolutionCode.objects.create(
        kind="shipment_delay", code="expedited", label="Shipped by a faster service", active=False
    )

    assert "expedited" not in {item.code for item in suggestions.suggest(case)}
    settings.RESOLUTION_ADVICE_MIN_CONFIDENCE = 100
    assert suggestions.suggest(case) == []


def test_the_case_page_shows_suggestions_with_their_accuracy(
    client, resolved, site_a1, site_manager, settings
):
    suggestions.train("shipment_delay")
    case = _case(site_a1, 99, ENDINGS[0][0])
    client.force_login(site_manager)
    url = reverse("exceptions:detail", args=[case.pk])

    page = client.get(url).text

    assert 'id="suggestions"' in page
    assert "New date agreed with the carrier and the customer" in page
    assert "Tried on 8 past cases kept aside from its learning" in page
    assert "the suggestion was right on 100 % of them" in page
    settings.DECISION_ADVICE = False
    assert 'id="suggestions"' not in client.get(url).text


def test_someone_outside_the_site_sees_no_case_and_no_suggestion(
    client, resolved, site_a1, outsider
):
    suggestions.train("shipment_delay")
    case = _case(site_a1, 99, ENDINGS[0][0])
    client.force_login(outsider)

    response = client.get(reverse("exceptions:detail", args=[case.pk]))

    assert response.status_code == 404
    assert "Suggested resolutions" not in response.text


def test_the_beat_job_trains_every_kind_it_can(resolved):
    outcome = tasks.train_resolution_models.delay().get()

    assert outcome["shipment_delay"] == "100%"
    assert outcome["invoice_mismatch"] == "only 0 resolved cases, 8 needed"
    assert ResolutionModel.objects.filter(kind="shipment_delay").count() == 1


def test_the_command_reports_each_kinds_accuracy(resolved):
    out = io.StringIO()

    call_command("train_resolution_models", stdout=out)

    assert "Shipment delay: 100% right on 8 held-out cases (8 of 8; trained on 22)." in (
        out.getvalue()
    )
    assert "Invoice mismatch: no model (only 0 resolved cases, 8 needed)." in out.getvalue()
