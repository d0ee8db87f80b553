"""What every provider adapter does alike before it submits a job: build the input.

Submit rates are not the adapters' business: each provider's is counted once, across every
worker, by routed submission (domain/use_cases/routed_submission.py).
"""

from __future__ import annotations

from typing import Any

from domain.ports import ProviderJob


def job_input(job: ProviderJob) -> dict[str, Any]:
    """The job's params with its prompt; keys starting with "_" are genhub's own bookkeeping (e.g. the attempt)."""
    arguments: dict[str, Any] = {key: value for key, value in job.params.items() if not key.startswith("_")}
    arguments["prompt"] = job.prompt
    return arguments
