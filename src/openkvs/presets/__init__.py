"""Preset rules, one module per preset type: ``Param`` → a frozen, typed spec.

The service validates a preset by parsing it (``ApiError(1001)`` naming the key when a value
is wrong); a task stores the parsed spec (:func:`openkvs.presets.codec.dump`) beside the
client's ``Param``, and the worker runs from the stored spec without parsing again.
"""
