"""Key authentication for the whole API, and the dependencies of the integrations routes.

A key is a principal only on the endpoints listed in `KEY_SCOPES`, each needing one scope;
everywhere else it is refused (403 `key_not_allowed`), so a key can never reach a staff
action (assign, reply, …) through its staff-like principal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.core.db import Database, SessionDep
from app.core.deps import AdminPrincipal, CurrentPrincipal
from app.core.errors import Forbidden
from app.core.security import Principal, Role
from app.core.types import MAX_ID
from app.integrations import service
from app.integrations.models import Integrator, Scope

API = "/api/v1"

# (method, route path under /api/v1) -> the scope a key needs there.
KEY_SCOPES: dict[tuple[str, str], Scope] = {
    ("POST", "/cases"): Scope.cases_submit,
    ("GET", "/cases"): Scope.cases_read,
    ("GET", "/cases/{case_id}"): Scope.cases_read,
    ("GET", "/attachments/{attachment_id}"): Scope.cases_read,
    ("GET", "/stats/overview"): Scope.stats_read,
    ("GET", "/stats/cases"): Scope.stats_read,
    ("GET", "/stats/deputies"): Scope.stats_read,
    ("GET", "/webhooks"): Scope.webhooks_manage,
    ("POST", "/webhooks"): Scope.webhooks_manage,
    ("PATCH", "/webhooks/{webhook_id}"): Scope.webhooks_manage,
    ("DELETE", "/webhooks/{webhook_id}"): Scope.webhooks_manage,
}


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def route_path(request: Request) -> str | None:
    """The matched route's template under /api/v1 ("/cases/{case_id}"); None elsewhere."""
    if not request.url.path.startswith(API + "/"):
        return None
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    if path is None:
        return None
    # Depending on how the router was included, the template carries the prefix or not.
    return path[len(API) :] if path.startswith(API + "/") else path


async def authenticate_key(request: Request, raw_key: str, scope: Scope | None = None) -> Principal:
    """Registered as `app.state.authenticate_key`: the key's principal for this call, in a
    short transaction of its own that commits the rate-limit count and the audit entry
    whether the call is allowed or not."""
    path = route_path(request)
    needed = scope or (KEY_SCOPES.get((request.method, path)) if path else None)
    db: Database = request.app.state.db
    # write=False: on SQLite this must not wait for the in-process write lock, which the
    # request's own session may already hold (routes resolve it before the principal).
    # The request has written nothing yet, so SQLite's own locking orders the two.
    async with db.transaction(write=False) as session:
        check = await service.check_call(
            session,
            raw_key,
            scope=needed,
            method=request.method,
            path=request.url.path,
            client_ip=client_ip(request),
        )
    if check.error is not None:
        raise check.error
    assert check.principal is not None
    request.state.api_key_prefix = check.principal.key_prefix
    return check.principal


async def _admin_or_key(principal: CurrentPrincipal) -> Principal:
    """An admin, or a key (which got here only with `webhooks:manage`)."""
    if principal.is_api_key or principal.role is Role.admin:
        return principal
    raise Forbidden()


AdminOrKey = Annotated[Principal, Depends(_admin_or_key)]


async def _integrator_or_404(
    session: SessionDep,
    _admin: AdminPrincipal,
    integrator_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Integrator:
    """Admins only: who asks is settled before what is looked up."""
    return await service.integrator_or_404(session, integrator_id)


TargetIntegrator = Annotated[Integrator, Depends(_integrator_or_404)]
