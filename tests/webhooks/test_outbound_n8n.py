"""The example n8n workflow imports as a graph and its Code node verifies Tollgate's signature.

The Code node's JavaScript runs under Node.js with the few n8n globals it uses stood in for.
"""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from portal.webhooks.outbound import new_event_id, new_secret

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "n8n" / "approval-decided.json"

HARNESS = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const node = new AsyncFunction('$env', '$input', 'require', input.code);
const context = { helpers: { getBinaryDataBuffer: async () => Buffer.from(input.raw, 'utf8') } };
const item = { json: { headers: input.headers } };
node.call(context, { TOLLGATE_WEBHOOK_SECRET: input.secret }, { first: () => item }, require)
  .then((out) => process.stdout.write(JSON.stringify(out[0].json)));
"""


def workflow() -> dict:
    return json.loads(WORKFLOW.read_text())


def test_workflow_goes_from_webhook_through_verification_to_the_outcome():
    flow = workflow()
    nodes = {node["name"]: node for node in flow["nodes"]}
    hook = nodes["Tollgate webhook"]
    assert hook["type"] == "n8n-nodes-base.webhook"
    assert hook["parameters"]["options"]["rawBody"] is True

    def next_of(name, branch=0):
        return [link["node"] for link in flow["connections"][name]["main"][branch]]

    assert next_of("Tollgate webhook") == ["Verify signature"]
    assert next_of("Verify signature") == ["Signed by Tollgate?"]
    assert next_of("Signed by Tollgate?", 1) == ["Answer 401"]
    assert next_of("Answer 204") == ["Approved?"]
    assert nodes["Answer 401"]["parameters"]["options"]["responseCode"] == 401


@pytest.fixture
def run_code_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; the Code node's JavaScript cannot run")
    code = next(n for n in workflow()["nodes"] if n["name"] == "Verify signature")
    source = code["parameters"]["jsCode"]

    def run(*, secret: str, headers: dict, raw: str) -> dict:
        stdin = json.dumps({"code": source, "secret": secret, "headers": headers, "raw": raw})
        done = subprocess.run(
            [node, "-e", HARNESS], input=stdin, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def signed(secret: str, raw: str, *, at: datetime | None = None) -> dict:
    at = at or datetime.now(UTC)
    webhook_id = new_event_id()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, raw),
    }


BODY = json.dumps(
    {
        "type": "approval.decided",
        "timestamp": "2026-05-04T09:30:00+00:00",
        "data": {"outcome": "approved"},
    },
    separators=(",", ":"),
)


def test_code_node_accepts_a_signed_event(run_code_node):
    secret = new_secret()

    result = run_code_node(secret=secret, headers=signed(secret, BODY), raw=BODY)

    assert result["verified"] is True
    assert result["data"] == {"outcome": "approved"}


def test_code_node_rejects_a_changed_body(run_code_node):
    secret = new_secret()
    headers = signed(secret, BODY)

    result = run_code_node(secret=secret, headers=headers, raw=BODY.replace("approved", "rejected"))

    assert result == {"verified": False, "reason": "signature does not match"}


def test_code_node_rejects_another_secret(run_code_node):
    result = run_code_node(secret=new_secret(), headers=signed(new_secret(), BODY), raw=BODY)

    assert result["verified"] is False


def test_code_node_rejects_a_stale_timestamp(run_code_node):
    secret = new_secret()
    old = datetime.now(UTC) - timedelta(minutes=10)

    result = run_code_node(secret=secret, headers=signed(secret, BODY, at=old), raw=BODY)

    assert result == {"verified": False, "reason": "stale or unreadable webhook-timestamp"}
