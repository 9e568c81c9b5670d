"""A plain HTTP client that plays a list of operations against a running Tollgate.

It imports nothing of Django, so the same code runs in threads of the test process and in
processes of their own (`python -m tests.hardening.load`, the plan as JSON on stdin, the
results as JSON on stdout). An operation is a dict: `method`, `path`, optional `token`,
`json` body, extra `headers` and raw `body`, and a `tag` that comes back with its status.
A webhook operation may carry `sign` (`secret`, `id`) instead of its headers: it is signed
the moment it is sent, as a sender would, so that a long run stays within the timestamp
tolerance. A network failure is status 0, so that a caller can count it like any other answer.
"""

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from standardwebhooks import Webhook

TIMEOUT_SECONDS = 60


def perform(base_url: str, op: dict) -> dict:
    """Send one operation; its tag with the HTTP status (0 when no answer came)."""
    headers = dict(op.get("headers") or {})
    if op.get("sign"):
        now = datetime.now(UTC)
        headers["webhook-id"] = op["sign"]["id"]
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(op["sign"]["secret"]).sign(
            op["sign"]["id"], now, op["body"]
        )
    if op.get("token"):
        headers["Authorization"] = f"Bearer {op['token']}"
    data = None
    if op.get("json") is not None:
        data = json.dumps(op["json"]).encode()
        headers["Content-Type"] = "application/json"
    elif op.get("body") is not None:
        data = op["body"].encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(
        base_url + op["path"], data=data, method=op["method"], headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        # What Tollgate said, so that an unexpected refusal explains itself in a failure.
        detail = error.read()[:300].decode(errors="replace")
        return {"tag": op.get("tag"), "status": error.code, "detail": detail}
    except OSError as error:
        return {"tag": op.get("tag"), "status": 0, "detail": type(error).__name__}
    return {"tag": op.get("tag"), "status": status}


def play(base_url: str, ops: list[dict], threads: int) -> list[dict]:
    """Run `ops` on `threads` threads at once; results in the order of `ops`."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda op: perform(base_url, op), ops))


def main() -> None:
    plan = json.load(sys.stdin)
    json.dump(play(plan["base_url"], plan["ops"], plan["threads"]), sys.stdout)


if __name__ == "__main__":
    main()
