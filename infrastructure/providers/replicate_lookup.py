"""Find the prediction of an uncertain submit in Replicate's list (`GET /v1/predictions`, newest first).

After a create whose answer was lost, the prediction may exist without our knowing its id. The list is
walked from the newest page back to the uncertain submit (at most `MAX_PAGES` pages), and a prediction
may be the generation's when it was created since then for the same model (or version) with the same
input; an input file URL is compared by its scheme, host and path (each attempt presigns its query anew,
but another user's file is another object); when the listing shows its webhook URL, that URL must name
the generation (domain/provider_callbacks.py). Every match is a candidate: the caller passes over those
another generation holds and takes none when several are left (domain/use_cases/routed_submission.py).
A prediction of the model since then whose input was removed (`data_removed`) may be it too, and nothing
tells: the search is then not complete (inconclusive, never proof of absence).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from domain.provider_callbacks import GENERATION_QUERY
from infrastructure.providers.replicate_wire import ModelRef, is_prediction_id

MAX_PAGES = 5
#: Inputs that carry presigned URLs (a new query on every attempt): compared without their query.
FILE_INPUTS = frozenset({"image", "image_input"})


def created_at(prediction: Mapping[str, Any]) -> datetime | None:
    raw = prediction.get("created_at")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def matches(
    prediction: Mapping[str, Any],
    *,
    model: ModelRef,
    sent_input: Mapping[str, Any],
    callback_query: Mapping[str, str],
    since: datetime,
) -> bool:
    """Whether `prediction` (an item of the list) is the one the generation's create would have made."""
    if not is_prediction_id(prediction.get("id")):
        return False
    made = created_at(prediction)
    if made is None or made.tzinfo is None or made < since:
        return False
    if not _same_model(prediction, model):
        return False
    listed_input = prediction.get("input")
    if not isinstance(listed_input, dict) or _comparable(listed_input) != _comparable(sent_input):
        return False
    webhook = prediction.get("webhook")
    generation = callback_query.get(GENERATION_QUERY)
    if isinstance(webhook, str) and generation is not None:
        named = parse_qs(urlsplit(webhook).query).get(GENERATION_QUERY, [])
        return named == [generation]
    return True


def input_removed(prediction: Mapping[str, Any], *, model: ModelRef, since: datetime) -> bool:
    """Whether `prediction` is one of the model's since `since` whose input Replicate removed (`data_removed`,
    or no input listed): it cannot be told apart from the generation's job, so it never proves that absent."""
    if not is_prediction_id(prediction.get("id")) or not _same_model(prediction, model):
        return False
    made = created_at(prediction)
    # An unreadable creation time is read as recent: it cannot prove the prediction older than the submit.
    if made is not None and made.tzinfo is not None and made < since:
        return False
    return prediction.get("data_removed") is True or not isinstance(prediction.get("input"), dict)


def _same_model(prediction: Mapping[str, Any], model: ModelRef) -> bool:
    if model.version is not None:
        return prediction.get("version") == model.version
    return prediction.get("model") == f"{model.owner}/{model.name}"


def next_cursor(page: Mapping[str, Any]) -> str | None:
    """The cursor of the page after this one (only its cursor is used: the token goes to our base URL only)."""
    link = page.get("next")
    if not isinstance(link, str) or not link:
        return None
    cursors = parse_qs(urlsplit(link).query).get("cursor", [])
    return cursors[0] if cursors and cursors[0] else None


def older_than(page: Mapping[str, Any], since: datetime) -> bool:
    """Whether the page reaches back before `since` (newest first: later pages are older still)."""
    results = page.get("results")
    if not isinstance(results, list) or not results:
        return True
    last = results[-1]
    made = created_at(last) if isinstance(last, dict) else None
    return made is not None and made.tzinfo is not None and made < since


def _comparable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _file(value) if key in FILE_INPUTS else value for key, value in values.items()}


def _file(value: Any) -> Any:
    """A file input (a URL, or a list of them) as the object it names: scheme, host and path, no query."""
    if isinstance(value, list):
        return [_file(item) for item in value]
    if not isinstance(value, str):
        return value
    try:
        parts = urlsplit(value)
        return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.path)
    except ValueError:
        return value
