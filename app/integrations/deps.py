"""Key authentication for the whole API, and the dependencies of the integrations routes.

A key is a principal only on the endpoints listed in `KEY_SCOPES`, each needing one scope;
everywhere else it is refused (403 `key_not_allowed`), so a key can never reach a staff
action (assign, reply, …) through its staff-like principal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.core.db import Database, SessionDep
from app.core.deps import CurrentPrincipal
from app.core.errors import Forbidden
from app.core.security import Principal, Role
from app.core.types import MAX_ID
from app.integrations import service
from app.integrations.models import Integrator, Scope

API = "/api/v1"

# (method, route path) -> the scope a key needs there.
KEY_SCOPES: dict[tuple[str, str], Scope] = {
    ("POST", f"{API}/cases"): Scope.cases_submit,
    ("GET", f"{API}/cases"): Scope.cases_read,
    ("GET", f"{API}/cases/{{case_id}}"): Scope.cases_read,
    ("GET", f"{API}/stats/overview"): Scope.stats_read,
    ("GET", f"{API}/stats/cases"): Scope.stats_read,
    ("GET", f"{API}/stats/deputies"): Scope.stats_read,
    ("GET", f"{API}/webhooks"): Scope.webhooks_manage,
    ("POST", f"{API}/webhooks"): Scope.webhooks_manage,
    ("PATCH", f"{API}/webhooks/{{webhook_id}}"): Scope.webhooks_manage,
    ("DELETE", f"{API}/webhooks/{{webhook_id}}"): Scope.webhooks_manage,
}


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path_format", None) or request.url.path


async def authenticate_key(request: Request, raw_key: str, scope: Scope | None = None) -> Principal:
    """Registered as `app.state.authenticate_key`: the key's principal for this call, in a
    short transaction of its own that commits the rate-limit count and the audit entry
    whether the call is allowed or not."""
    path = route_path(request)
    needed = scope or KEY_SCOPES.get((request.method, path))
    db: Database = request.app.state.db
    async with db.transaction() as session:
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
    session: SessionDep, integrator_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Integrator:
    return await service.integrator_or_404(session, integrator_id)


TargetIntegrator = Annotated[Integrator, Depends(_integrator_or_404)]
