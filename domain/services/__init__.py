"""The use cases bound to their ports and policy, once per process, by the composition root.

`infrastructure/bootstrap.py` builds one of each from the Settings it is given; the
transports (`graph/`, `workers/`, the CLI) call these with only what a request brings
(the caller, its arguments, the transport's own rate-limit buckets). The use case
functions themselves stay plain functions of their ports (`domain/use_cases/`), which is
what the unit tests call with fakes.
"""
