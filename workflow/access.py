"""Who may see and do what: the one place of the visibility and action rules the front ends ask.

The permission to fire a trigger itself is decided by the pure core (:func:`workflow.paper.decide_fire`)
when the trigger is fired; these rules say which papers a person is shown and which actions are
offered to them, and that auditors read everything and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .definition import Definition, Transition
from .errors import NotPermittedError
from .i18n import _
from .paper import PaperState, missing_signoffs
from .paper import may_create as _may_create

__all__ = ["Action", "Person", "actions", "is_public", "may_create", "may_read", "may_read_private", "writer"]


@dataclass(frozen=True)
class Person:
    """A signed-in person: the e-mail address (lower case) and whether they are an auditor."""

    email: str
    auditor: bool = False


@dataclass(frozen=True)
class Action:
    """A trigger the person may fire now, with the branches (bodies) they may fire it for."""

    transition: Transition
    branches: tuple[str, ...] = ()
    #: The step ``requires: [signoffs]`` and a sign-off is still missing (or refused): offered, but it cannot
    #: fire yet (the rule of :func:`workflow.paper.missing_signoffs`).
    awaits_signoffs: bool = False

    @property
    def trigger(self) -> str:
        return self.transition.trigger


def may_read(definition: Definition, state: PaperState, who: Person) -> bool:
    """Auditors read everything; a paper marked ``public: false`` only the members of its workflow's roles
    and the contacts of its bodies; every other paper anyone signed in."""
    return is_public(state) or may_read_private(definition, who)


def is_public(state: PaperState) -> bool:
    """Whether anyone signed in may read the paper (it is not marked ``public: false``); the store keeps this
    as a column, so lists filter by it."""
    return state.fields.get("public", True) is not False


def may_read_private(definition: Definition, who: Person) -> bool:
    """Whether ``who`` may read the papers of ``definition`` marked ``public: false`` (the second half of
    :func:`may_read`; lists ask it once per stored definition, not once per paper)."""
    if who.auditor:
        return True
    members = {m.lower() for ms in definition.roles.values() for m in ms}
    members |= {b.contact.lower() for b in definition.bodies.values() if b.contact}
    return who.email in members


def actions(definition: Definition, state: PaperState, who: Person) -> list[Action]:
    """The triggers ``who`` may fire in the paper's state (branch triggers: for which open branches)."""
    spec = definition.states[state.state]
    if who.auditor or spec.final:
        return []
    body = spec.consultation.body if spec.consultation else None
    out = []
    for t in definition.transitions_from(state.state):
        if t.branch is not None:
            allowed = tuple(b.body for b in state.open_branches() if definition.holds_any(who.email, t.roles, b.body))
            if allowed:
                out.append(Action(t, allowed))
        elif definition.holds_any(who.email, t.roles, body):
            out.append(Action(t, awaits_signoffs=t.needs_signoffs and bool(missing_signoffs(definition, state))))
    return out


def may_create(definition: Definition, who: Person) -> bool:
    """Whether ``who`` may create papers of the workflow (the rule of :func:`workflow.paper.decide_create`);
    auditors create nothing."""
    return not who.auditor and _may_create(definition, who.email)


def writer(who: Person) -> str:
    """The actor for a change made by ``who``: auditors read everything and fire nothing."""
    if who.auditor:
        raise NotPermittedError(_("{email} is an auditor: auditors read everything and fire nothing").format(
            email=who.email))
    return who.email
