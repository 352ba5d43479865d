"""Stages: pure steps on plain data, each with one entry point.

normalize (JSON -> Record) -> tempo (Record -> TempoEstimate) -> timing (seconds ->
ticks) -> convert (Record -> Song). Stages import only the foundation modules
(errors, model, options, protocol, gm, defaults) and stages upstream of them.
"""
