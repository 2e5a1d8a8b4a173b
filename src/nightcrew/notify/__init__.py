"""Notifications through Apprise: a subscriber of the run's bus
(:class:`~nightcrew.notify.notifier.Notifier`) that maps typed events to
messages, groups them, and sends them on a thread of its own."""
