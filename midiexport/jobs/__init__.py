"""Jobs: the pipeline applied to inputs, tasks and payloads, alone or many at once.

Jobs join io, stages and outputs; the CLI calls them and prints what they return.
"""
