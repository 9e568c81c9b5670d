"""Suggested resolution codes for a case, learnt from how past cases of its kind were resolved.

Per kind of case, a TF-IDF text model and a logistic regression (scikit-learn) are trained on
the resolved cases' titles, evidence and resolution notes. A quarter of the cases, drawn with a
fixed seed, is held out of training and the model is scored on them as an open case reads
(title and evidence; an open case has no note yet): that accuracy is stored with the model and
shown beside every suggestion. The model is stored as numbers, not as a pickle, and applied
here in plain Python, so the case page neither imports scikit-learn nor loads anything that
could run code. A suggestion is shown only at or above RESOLUTION_ADVICE_MIN_CONFIDENCE and
only for codes the kind still allows; it is advice, and resolving stays the person's act.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from exceptions.models import CaseKind, CaseState, ExceptionCase, ResolutionModel
from exceptions.rules import resolution_codes

# Words of two letters or more, as scikit-learn's default; the same pattern serves prediction.
WORD_PATTERN = r"(?u)\b\w\w+\b"
_TOKENS = re.compile(WORD_PATTERN)
MIN_CASES = 8
# The most recent resolved cases of a kind are enough to learn from, and bound the nightly job.
MAX_CASES = 5000
HELD_OUT = 0.25
SEED = 20261207


@dataclass(frozen=True)
class Suggestion:
    code: str
    label: str
    confidence: int
    accuracy: int
    tested_on: int


def case_text(case: ExceptionCase, *, with_note: bool = False) -> str:
    """What the model reads of a case: its title, the words and numbers of its evidence and,
    for a resolved case in training, the note it was resolved with."""
    parts = [case.title, *_flatten(case.evidence)]
    if with_note:
        parts.append(case.resolution_note)
    return " ".join(part for part in parts if part)


def _flatten(value) -> list[str]:
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [str(key), *_flatten(item)]]
    if isinstance(value, list):
        return [text for item in value for text in _flatten(item)]
    return [] if value is None else [str(value)]


# --- training (scikit-learn, imported only here) --------------------------------------------


@dataclass(frozen=True)
class Trained:
    kind: str
    model: ResolutionModel | None
    reason: str = ""


def train_all() -> list[Trained]:
    """Train a model for every kind with enough resolved cases; one row per kind trained."""
    return [train(kind) for kind in CaseKind.values]


def train(kind: str) -> Trained:
    """Train and store the model of one kind, or say why there is none."""
    cases = list(
        ExceptionCase.objects.filter(kind=kind, state=CaseState.RESOLVED)
        .exclude(resolution_code="")
        .order_by("-pk")
        .only("title", "evidence", "resolution_code", "resolution_note")[:MAX_CASES]
    )
    codes = Counter(case.resolution_code for case in cases)
    if len(cases) < MIN_CASES:
        return Trained(kind, None, f"only {len(cases)} resolved cases, {MIN_CASES} needed")
    if len(codes) < 2:
        return Trained(kind, None, "every resolved case has the same code")
    return Trained(kind, _fit_and_store(kind, cases, codes))


def _fit_and_store(kind: str, cases: list[ExceptionCase], codes: Counter) -> ResolutionModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    labels = [case.resolution_code for case in cases]
    # Stratified when every code has at least two cases, so each is seen in training.
    stratify = labels if min(codes.values()) >= 2 else None
    train_cases, test_cases = train_test_split(
        cases, test_size=HELD_OUT, random_state=SEED, stratify=stratify
    )
    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=WORD_PATTERN)
    fitted = vectorizer.fit_transform([case_text(c, with_note=True) for c in train_cases])
    classifier = LogisticRegression(max_iter=1000, C=10.0)
    classifier.fit(fitted, [case.resolution_code for case in train_cases])
    tested = vectorizer.transform([case_text(c) for c in test_cases])
    predicted = classifier.predict(tested)
    right = sum(int(p == c.resolution_code) for p, c in zip(predicted, test_cases, strict=True))
    with transaction.atomic():
        return ResolutionModel.objects.create(
            kind=kind,
            classes=[str(code) for code in classifier.classes_],
            vocabulary={term: int(column) for term, column in vectorizer.vocabulary_.items()},
            idf=[float(weight) for weight in vectorizer.idf_],
            coefficients=[[float(w) for w in row] for row in classifier.coef_],
            intercepts=[float(b) for b in classifier.intercept_],
            accuracy=Decimal(right) / len(test_cases),
            trained_on=len(train_cases),
            tested_on=len(test_cases),
        )


# --- applying a stored model (plain Python) -------------------------------------------------


def latest(kind: str) -> ResolutionModel | None:
    return ResolutionModel.objects.filter(kind=kind).order_by("-trained_at", "-pk").first()


def probabilities(model: ResolutionModel, text: str) -> dict[str, float]:
    """Each code's probability for `text`, as scikit-learn's predict_proba would give it."""
    counts = Counter(
        model.vocabulary[token]
        for token in _TOKENS.findall(text.lower())
        if token in model.vocabulary
    )
    weights = {column: count * model.idf[column] for column, count in counts.items()}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    scores = [
        sum(row[column] * w / norm for column, w in weights.items()) + intercept
        for row, intercept in zip(model.coefficients, model.intercepts, strict=True)
    ]
    if len(model.classes) == 2:
        positive = 1 / (1 + math.exp(-scores[0]))
        return {model.classes[0]: 1 - positive, model.classes[1]: positive}
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return {code: e / total for code, e in zip(model.classes, exps, strict=True)}


def suggest(case: ExceptionCase, *, model: ResolutionModel | None = None) -> list[Suggestion]:
    """The codes the kind's latest model ranks for `case`, most likely first, at or above the
    confidence threshold, with the model's measured accuracy (one query)."""
    model = model or latest(case.kind)
    if model is None:
        return []
    allowed = resolution_codes(case.kind)
    floor = settings.RESOLUTION_ADVICE_MIN_CONFIDENCE / 100
    accuracy = round(100 * model.accuracy)
    ranked = sorted(probabilities(model, case_text(case)).items(), key=lambda item: -item[1])
    return [
        Suggestion(code, allowed[code], round(100 * p), accuracy, model.tested_on)
        for code, p in ranked
        if p >= floor and code in allowed
    ]
