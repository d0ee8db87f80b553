"""Taskiq workers: the broker, the tasks and the schedule (provider work happens only here)."""
