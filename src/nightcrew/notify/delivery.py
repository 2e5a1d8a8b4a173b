"""One message to one target through Apprise.

The body is sent as ``NotifyFormat.TEXT``: Apprise turns plain text into each
service's own format and escapes it on the way (HTML entities for Telegram and
e-mail, backslashes for Markdown services, Slack's ``&amp;``), so nothing a user
or an agent wrote is taken as markup. ``json://`` posts
``{"version", "title", "message", "attachments", "type"}`` with the text as it
is (or escaped, with ``?format=markdown`` or ``html``)."""

from __future__ import annotations

from nightcrew.config_notify import Target, apprise
from nightcrew.notify.messages import Message

SEND_TIMEOUT_SECONDS = 30.0  # one target's whole send, retries included


def send(target: Target, message: Message, timeout: float = SEND_TIMEOUT_SECONDS) -> str | None:
    """Why ``message`` did not reach ``target`` (its secrets taken out), or None."""
    module = apprise()
    notifier = module.Apprise()
    if not notifier.add(target.url):
        return f"Apprise could not load this {target.scheme}:// URL"
    result = notifier.notify(
        body=message.body,
        title=message.title,
        notify_type=module.NotifyType(message.level),  # our levels are its types
        body_format=module.NotifyFormat.TEXT,
        timeout=timeout,
    )
    if result:
        return None
    told = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    why = told[-1] if told else f"not delivered ({result.status.name.lower()})"
    return target.scrub(why.rstrip("."))
