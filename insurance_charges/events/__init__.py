"""Estimates for events: a Kafka consumer that answers each message as the JSON API would.

An adapter: ``messages`` translates message values to the core's input and its answers (or
problems) back to messages; ``kafka`` runs the consume-publish-commit loop; ``cli`` is the
command, ``python -m insurance_charges.events kafka ...`` (docs/events.md).
"""
