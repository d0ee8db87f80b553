"""Where a request came from, as the audit log records it (the client address the app computed, the request id)."""

from __future__ import annotations

from domain.audit import RequestOrigin
from graph.context import Info


def origin_of(info: Info) -> RequestOrigin:
    context = info.context
    return RequestOrigin(client_address=context.client_ip, request_id=context.request_id)
