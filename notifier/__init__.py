"""Reminders and mail for councilflow deadlines (render, transports, dispatch, scheduler).

The package is reserved by the architecture; its modules arrive with the deadlines issue.
"""

__all__: list[str] = []
