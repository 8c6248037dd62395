"""The local tools: the ``pubsub-kit`` CLI, the local runtime and emulator control, the demo,
provisioning, packaging, contract and service-catalog export, and dead-letter inspection and
replay.

Nothing under ``shared/tools/`` is deployed: ``pubsub-kit package`` leaves this folder out of
every function zip, and no module outside it imports it.
"""
