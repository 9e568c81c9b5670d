"""What a notification is about, in words, as the app whose record it names says it.

The outbox keeps a topic and an id; the apps that write its rows own the records those name.
Each registers, in its AppConfig.ready(), a function that names many records of its topic at
once (`{id: label}`, one query for a page of rows, none where an id is enough).
"""

from collections.abc import Callable, Iterable

GONE = "(gone)"

_labellers: dict[str, Callable[[list[int]], dict[int, str]]] = {}


def register_labeller(topic: str, labeller: Callable[[list[int]], dict[int, str]]) -> None:
    """Name the records of `topic` with `labeller(ids)`."""
    _labellers[topic] = labeller


def labels(topic: str, object_ids: Iterable[int]) -> dict[int, str]:
    """The label of each record of `topic` named by `object_ids`; one that is gone is missing."""
    ids = list(dict.fromkeys(object_ids))
    return _labellers[topic](ids) if ids else {}
