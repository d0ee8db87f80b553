"""The processes' entry points: the only modules that read the environment (Settings) and may import
every package (graph, workers, infrastructure). Nothing imports them back.

- `entrypoints.cli`: the `genhub` command;
- `entrypoints.api`: the ASGI app factory (`genhub serve`, uvicorn's `--factory` for several processes);
- `entrypoints.worker`: the broker and scheduler factories `genhub worker` and `genhub scheduler` hand to taskiq.
"""
