"""What production refuses to start with, checked once by every process that serves.

The core settings judge themselves (`Settings.production_problems`); the notification
templates are the domain's to judge. All problems are reported in one sentence, so an
operator fixes them in one go. Migrating and creating the first admin need only the
database, so `migrate` and `create-admin` do not ask for the rest.
"""

from __future__ import annotations

from app.core.config import ConfigError, Settings
from app.notify.templates import (
    TemplateConfigError,
    TemplateRegistry,
    malformed_template_ids,
    placeholder_events,
)


def production_problems(settings: Settings) -> list[str]:
    if not settings.is_production:
        return []
    problems = settings.production_problems()
    try:
        registry = TemplateRegistry.from_settings(settings)
    except TemplateConfigError as exc:
        problems.append(f"NOTIFY_TEMPLATES is invalid ({exc})")
    else:
        placeholders = placeholder_events(registry)
        malformed = malformed_template_ids(registry)
        if placeholders:
            problems.append(
                "NOTIFY_TEMPLATES must give the subscribe-message template id your "
                "mini-program account was given for every event (placeholders left: "
                + ", ".join(placeholders)
                + ")"
            )
        if malformed:
            problems.append(
                "NOTIFY_TEMPLATES has template ids that are not WeChat template ids "
                "(letters, digits, - and _) for " + ", ".join(malformed)
            )
    return problems


def refuse_unsafe_production(settings: Settings) -> None:
    problems = production_problems(settings)
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
