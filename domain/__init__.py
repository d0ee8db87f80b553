"""Pure business rules of genhub: entities, state machine, credit rules, ports, use cases.

Nothing in this package imports from graph, infrastructure or workers.
"""
