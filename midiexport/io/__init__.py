"""Input and output at the edges: files on disk and the API over HTTP.

``files`` finds inputs, names outputs safely and writes them atomically; ``client``
talks to the API. OSError and httpx's errors are translated here, nowhere else.
"""
