"""The mail rule as a property (hypothesis): random workflows and paths (the restart test's generator),
simulated over months with a tick at every moment a mail falls due and a digest queued every morning.
Whatever happens, what goes out is true: only in the mail window of working days, no reminder after its
deadline is due or once it ended, at most one reminder a day, exactly one escalation for a deadline
that passed undone and never before due + after, the same calendar UID for a deadline in every mail."""

from __future__ import annotations

import email.policy
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from notifier.dispatch import Dispatcher
from notifier.render import calendar_uid, header_message_id
from notifier.transports import MemoryTransport
from workflow import DefinitionError, DefinitionLibrary, Engine, FixedClock, load_definition
from workflow.calendar import working_calendar
from workflow.config import Settings
from workflow.store import MemoryStore

from .test_restart_property import AMT, _values, workflows

BERLIN = ZoneInfo("Europe/Berlin")
SENDER = "fristen@stadt.example"
MORNING, EVENING = 8, 18


def _deliver_until(engine: Engine, worker: Dispatcher, clock: FixedClock, target: datetime) -> None:
    """Tick at every moment a mail falls due up to ``target`` (as `serve` would), queueing each morning's
    digest; bounded."""
    outbox = engine.store.outbox
    for _ in range(2000):
        due = outbox.reminders(due_before=target, limit=1)
        morning = datetime.combine(clock.now().astimezone(BERLIN).date() + timedelta(days=1),
                                   datetime.min.time(), BERLIN).replace(hour=7).astimezone(UTC)
        if not due and morning > target:
            break
        moment = max(clock.now(), min(due[0].next_attempt_at if due else morning, morning))
        clock.set(moment)
        if moment == morning:
            worker.queue_digests(moment)
        worker.tick(moment)
    else:
        raise AssertionError("the simulation did not settle")
    clock.set(max(clock.now(), target))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(text=workflows(), data=st.data())
def test_what_goes_out_is_true(text: str, data: st.DataObject, tmp_path_factory: Any) -> None:
    remind = data.draw(st.sampled_from(["[{days: 2}]", "[{days: 3}, {days: 1}]", "[{days: 7}, {days: 2}, {days: 1}]",
                                        "[{working_days: 3}, {days: 1}]"]), label="remind")
    text = text.replace("remind: [{days: 2}]", f"remind: {remind}")
    try:
        definition = load_definition(text, "zufall.yaml", expect_id="zufall")
    except DefinitionError:
        assume(False)
    folder = tmp_path_factory.mktemp("defs")
    (folder / "zufall.yaml").write_text(text, encoding="utf-8")
    start = datetime(2020, 9, 1, 7, tzinfo=UTC) + timedelta(hours=data.draw(st.integers(0, 24 * 60), label="start"))
    clock = FixedClock(start)
    engine = Engine(MemoryStore(), DefinitionLibrary(folder), clock)
    transport = MemoryTransport()
    worker = Dispatcher(engine, transport, Settings(mail_from=SENDER, morning_hour=MORNING, evening_hour=EVENING),
                        "truth")
    engine.create("zufall", "P-1", AMT, {"title": "Zufall"})
    for _ in range(data.draw(st.integers(2, 12), label="steps")):
        _deliver_until(engine, worker, clock, clock.now() + timedelta(hours=data.draw(st.integers(1, 240), label="h")))
        now = clock.now()
        status = engine.status("P-1")
        if status.final:
            break
        open_branches = [b.body for b in status.branches if b.status == "open"]
        choices: list[tuple[str, ...]] = [("meeting", b) for b in open_branches] * 2  # meetings: often
        if status.body:
            choices += [("meeting", "")] * 3
        for t in definition.transitions_from(status.state):
            choices += [("fire", t.trigger, b) for b in open_branches] if t.branch else [("fire", t.trigger, "")]
        choice = data.draw(st.sampled_from(choices), label="action")
        meeting = (now + timedelta(days=data.draw(st.integers(1, 40), label="days"))).isoformat()
        branch = (choice[2] if choice[0] == "fire" else choice[1]) or None
        actor = f"{branch}@stadt.example" if branch else AMT
        if choice[0] == "meeting":
            engine.set_meeting("P-1", meeting, actor, branch=branch)
        else:
            engine.fire("P-1", choice[1], actor, branch=branch,
                        values=_values(definition, status.state, choice[1], branch, meeting))
    end = clock.now() + timedelta(days=90)
    _deliver_until(engine, worker, clock, end)

    calendar = working_calendar(definition.calendar)
    outbox = engine.store.outbox
    deadlines = {d.id: d for d in outbox.deadlines("P-1", running_only=False)}
    sent = outbox.reminders(statuses=("sent",))
    reminders_a_day: Counter[tuple[int, Any]] = Counter()
    escalations: Counter[int] = Counter()
    by_header: dict[str, Any] = {}
    for mail in sent:
        assert mail.sent_at is not None
        local = mail.sent_at.astimezone(BERLIN)
        # only on working days of the workflow's calendar, from the morning to the evening hour
        assert MORNING <= local.hour < EVENING, (mail.kind, local)
        assert calendar.is_working_day(local.date()), (mail.kind, local)
        for r in mail.recipients:
            by_header[header_message_id(mail.message_id, SENDER, r if len(mail.recipients) > 1 else None)] = mail
        if mail.kind == "digest":
            continue
        assert mail.deadline_id is not None
        d = deadlines[mail.deadline_id]
        # nothing for a deadline that had ended (left, decided or marked done) before the mail's time
        assert d.ended_at is None or mail.sent_at <= d.ended_at, (mail.kind, local, d)
        if mail.kind == "remind":
            assert mail.sent_at <= d.due_at, ("reminder after due", local, d.due_at)
            reminders_a_day[(d.id, local.date())] += 1
        if mail.kind == "escalate":
            escalations[d.id] += 1
            # never before the end of the due day + 1 day (escalate.after of the generator)
            assert mail.sent_at > d.due_at + timedelta(days=1), ("escalation too early", local, d.due_at)
    assert all(n == 1 for n in reminders_a_day.values()), reminders_a_day
    for d in deadlines.values():
        spec = next(s for s in definition.deadlines if s.name == d.name)
        late = d.due_at <= d.started_at
        passed_undone = d.ended_at is None and d.due_at + timedelta(days=10) < end
        if spec.escalate is not None and not late and passed_undone and spec.notify:
            assert escalations[d.id] == 1, ("one escalation per deadline that passed undone", d)
        else:
            assert escalations[d.id] <= 1
        if d.ended_at is not None and d.ended_at <= d.due_at:
            assert escalations[d.id] == 0

    # the same calendar UID for the same deadline in every mail
    uids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for message in transport.sent:
        mail = by_header[str(message["Message-ID"])]
        if mail.kind == "digest":
            continue
        d = deadlines[mail.deadline_id]
        raw = message.as_bytes(policy=email.policy.SMTP)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        [part] = [p for p in parsed.iter_attachments() if p.get_content_type() == "text/calendar"]
        events = Calendar.from_ical(part.get_content()).walk("VEVENT")
        frist = [str(e["UID"]) for e in events if str(e["SUMMARY"]).startswith("Frist:")]
        assert frist == [calendar_uid("frist", "P-1", d.name, d.branch)]
        uids[(d.name, d.branch)].update(frist)
    assert all(len(u) == 1 for u in uids.values())
