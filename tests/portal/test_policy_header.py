"""The content security policy header, built once per process, says what django-csp would."""

import pytest
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from portal.core.middleware import ContentSecurityPolicyMiddleware

HEADER = "Content-Security-Policy"
REPORT_ONLY = "Content-Security-Policy-Report-Only"


def _served(middleware_class, path="/approvals/", prepare=None):
    """What `middleware_class` puts on a plain page's response at `path`."""
    request = RequestFactory().get(path)

    def view(request):
        response = HttpResponse("page")
        if prepare:
            prepare(request, response)
        return response

    middleware = middleware_class(view)
    return middleware(request), request


@pytest.mark.parametrize(
    "prepare",
    [
        None,
        lambda request, response: setattr(response, "_csp_update", {"img-src": ["https:"]}),
        lambda request, response: setattr(response, "_csp_replace", {"script-src": None}),
        lambda request, response: setattr(response, "_csp_exempt", True),
        lambda request, response: response.__setitem__(HEADER, "default-src 'none'; sandbox"),
        lambda request, response: str(request.csp_nonce),
    ],
    ids=["plain", "update", "replace", "exempt", "own-header", "nonce"],
)
def test_the_header_is_the_librarys(prepare):
    ours, _ = _served(ContentSecurityPolicyMiddleware, prepare=prepare)
    theirs, _ = _served(CSPMiddleware, prepare=prepare)

    assert ours.get(HEADER) == theirs.get(HEADER)
    assert ours.get(REPORT_ONLY) == theirs.get(REPORT_ONLY)


def test_a_plain_page_gets_the_site_policy_and_an_excluded_path_none():
    page, request = _served(ContentSecurityPolicyMiddleware)
    redoc, _ = _served(ContentSecurityPolicyMiddleware, path="/api/v1/redoc/")

    assert "default-src 'self'" in page[HEADER] and "frame-ancestors 'none'" in page[HEADER]
    assert HEADER not in redoc
    with pytest.raises(Exception, match="after the CSP header has been written"):
        str(request.csp_nonce)


def test_changed_settings_build_the_policy_again(settings):
    before, _ = _served(ContentSecurityPolicyMiddleware)
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}

    after, _ = _served(ContentSecurityPolicyMiddleware)
    theirs, _ = _served(CSPMiddleware)

    assert "default-src 'self'" in before[HEADER]
    assert after[HEADER] == "default-src 'none'"
    assert "img-src 'self'" in after[REPORT_ONLY]
    assert after[REPORT_ONLY] == theirs[REPORT_ONLY]


def test_the_policy_is_built_once_for_every_plain_page(monkeypatch, settings):
    from portal.core import middleware

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"]}}
    built = []
    real = middleware.build_policy

    def counted(**kwargs):
        built.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(middleware, "build_policy", counted)

    pages = [_served(ContentSecurityPolicyMiddleware)[0] for _ in range(5)]

    assert {page[HEADER] for page in pages} == {"default-src 'self'"}
    assert len(built) == 2  # the policy and the report-only one, once each
