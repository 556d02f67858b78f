"""The local stack (`make run`): the whole system in one process, AWS embedded (moto)."""

from devstack.stack import Stack, start_stack

__all__ = ["Stack", "start_stack"]
