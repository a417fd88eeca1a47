"""The HTTP API, the pages and the OParl endpoint, against both backends through FastAPI's TestClient."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from workflow import Engine
from workflow.config import Settings
from workflow.tokens import create_token, revoke_token
from workflow.web import create_app

from .conftest import LANDRAT, SITZ, to_councils
from .test_oparl import assert_valid

AUDITOR = "pruefung@kreis-coesfeld.example"
OUTSIDER = "buerger@example.org"


PROXY = ("127.0.0.1", 50000)  # the requests come through the administration's reverse proxy


def as_user(email: str) -> dict[str, str]:
    return {"X-Remote-User": email}


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    engine.clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))  # type: ignore[attr-defined]
    app = create_app(engine, Settings(auditors=AUDITOR, secret="test-secret", trusted_header="X-Remote-User",
                                      trusted_proxies="127.0.0.1"))
    with TestClient(app, client=PROXY) as c:
        yield c


def create_sv(client: TestClient, reference: str = "SV-9-1809", public: bool = True) -> dict[str, object]:
    response = client.post("/api/papers", headers=as_user(LANDRAT), json={
        "workflow": "sachstandsbericht", "reference": reference,
        "fields": {"title": "Digitalisierungsstrategie", "public": public, "references": ["SV-9-1334"]}})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_identity_is_required(client: TestClient, engine: Engine) -> None:
    """No identity is 401; a bearer token works until it is revoked."""
    response = client.get("/api/definitions")
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("Bitte zuerst anmelden")
    token_id, token = create_token(engine.store, SITZ, "RIS", engine.clock.now())
    assert client.get("/api/definitions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoke_token(engine.store, token_id, engine.clock.now())
    response = client.get("/api/definitions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "widerrufen" in response.json()["detail"]


def test_definitions_endpoints(client: TestClient) -> None:
    """Definitions are listed, shown as JSON and as a Mermaid diagram."""
    listed = client.get("/api/definitions", headers=as_user(SITZ)).json()
    assert {d["workflow"] for d in listed} == {"kreisstrategie", "sachstandsbericht"}
    shown = client.get("/api/definitions/kreisstrategie", headers=as_user(SITZ)).json()
    assert len(shown["states"]["kommunale_raete"]["parallel"]["bodies"]) == 11
    diagram = client.get("/api/definitions/kreisstrategie/diagram?current=bmk", headers=as_user(SITZ))
    assert diagram.text.startswith("stateDiagram-v2") and "class bmk current" in diagram.text
    missing = client.get("/api/definitions/kreistrategie", headers=as_user(SITZ))
    assert missing.status_code == 404 and "gemeint: 'kreisstrategie'" in missing.json()["detail"]


def test_paper_lifecycle_over_the_api(client: TestClient) -> None:
    """Create, set a meeting, fire with fields, read history and deadlines; errors are problem details."""
    created = create_sv(client)
    assert created["state"] == "entwurf" and created["fields"]["references"] == ["SV-9-1334"]  # type: ignore[index]
    fired = client.post("/api/papers/SV-9-1809/fire", headers=as_user(LANDRAT),
                        json={"trigger": "einbringen", "values": {"meeting": "2020-08-27T17:00"}})
    assert fired.status_code == 200 and fired.json()["state"] == "ausschuss"
    moved = client.post("/api/papers/SV-9-1809/meeting", headers=as_user(SITZ), json={"when": "2020-08-27T18:00"})
    assert moved.json()["meeting"] == "2020-08-27T16:00:00+00:00"
    deadlines = client.get("/api/papers/SV-9-1809/deadlines", headers=as_user(SITZ)).json()
    assert [d["name"] for d in deadlines] == ["ladung"] and deadlines[0]["reminders"][0]["recipients"] == [SITZ]
    history = client.get("/api/papers/SV-9-1809/history", headers=as_user(SITZ)).json()
    assert [h["trigger"] for h in history] == ["create", "einbringen", "meeting"]
    then = client.get("/api/papers/SV-9-1809", params={"as_of": "2020-08-01"}, headers=as_user(SITZ))
    assert then.status_code == 400 and "noch nicht" in then.json()["detail"]
    reminders = client.get("/api/reminders", headers=as_user(SITZ)).json()
    assert [r["reference"] for r in reminders] == ["SV-9-1809"]


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        ({"trigger": "einbrigen"}, 400, "unbekannter Übergang 'einbrigen' im Ablauf 'sachstandsbericht' "
                                        "(gemeint: 'einbringen'?)"),
        ({"trigger": "einbringen"}, 400, "SV-9-1809 einbringen: 'einbringen' braucht meeting: bitte --set meeting=… "
                                         "angeben"),
        ({"trigger": "einbringen", "values": {"meeting": "bald"}}, 400, "'bald' ist kein Zeitpunkt nach ISO 8601"),
        ({"trigger": "kenntnis_nehmen", "values": {"result": "x"}}, 409, "ist im Zustand 'entwurf'"),
        ({"trigger": "einbringen", "values": {"meeting": "2020-08-27T17:00"}, "version": 7}, 409,
         "SV-9-1809 wurde inzwischen von jemand anderem geändert; bitte wiederholen"),
        ({}, 400, "der Inhalt braucht 'trigger'"),
    ],
    ids=["unknown-trigger", "missing-field", "bad-date", "not-now", "stale-version", "no-trigger"],
)
def test_bad_input_is_4xx_problem(client: TestClient, payload: dict[str, object], status: int, detail: str) -> None:
    """Bad input comes back as a 4xx problem detail with the message the CLI prints, never a 500."""
    create_sv(client)
    response = client.post("/api/papers/SV-9-1809/fire", headers=as_user(LANDRAT), json=payload)
    assert response.status_code == status and response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    garbage = client.post("/api/papers/SV-9-1809/fire", headers=as_user(LANDRAT), content=b"{nicht json")
    assert garbage.status_code == 422


@pytest.mark.parametrize(
    ("actor", "trigger", "public", "status"),
    [
        (LANDRAT, "einbringen", True, 200), (SITZ, "einbringen", True, 403), (OUTSIDER, "einbringen", True, 403),
        (AUDITOR, "einbringen", True, 403), (LANDRAT, "zurueckziehen", True, 200),
        (LANDRAT, "einbringen", False, 200), (SITZ, "einbringen", False, 403), (OUTSIDER, "einbringen", False, 404),
        (AUDITOR, "einbringen", False, 403), (OUTSIDER, "zurueckziehen", False, 404),
    ],
    ids=lambda v: str(v).split("@")[0] if isinstance(v, str) else str(v),
)
def test_permission_matrix(client: TestClient, actor: str, trigger: str, public: bool, status: int) -> None:
    """Role × trigger × public flag: roles decide firing; non-public papers are hidden from outsiders."""
    create_sv(client, public=public)
    response = client.post("/api/papers/SV-9-1809/fire", headers=as_user(actor),
                           json={"trigger": trigger, "values": {"meeting": "2020-08-27T17:00"} if trigger ==
                                 "einbringen" else {}})
    assert response.status_code == status, response.text
    seen = client.get("/api/papers/SV-9-1809", headers=as_user(actor)).status_code
    assert seen == (404 if not public and actor == OUTSIDER else 200)
    listed = [p["reference"] for p in client.get("/api/papers", headers=as_user(actor)).json()]
    assert listed == ([] if not public and actor == OUTSIDER else ["SV-9-1809"])


def test_audit_endpoints_are_for_auditors(client: TestClient, engine: Engine) -> None:
    """The trail, verify and head are for auditors; CSV streams with a header row."""
    create_sv(client)
    assert client.get("/api/audit", headers=as_user(SITZ)).status_code == 403
    entries = client.get("/api/audit", headers=as_user(AUDITOR)).json()
    assert [e["trigger"] for e in entries] == ["definition", "create"]  # the definition's first use, the paper
    response = client.get("/api/audit", params={"format": "csv", "actor": LANDRAT}, headers=as_user(AUDITOR))
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv") and rows[1]["reference"] == "SV-9-1809"
    assert rows[0]["kind"] == "admin" and rows[0]["reference"] == ""  # the definition, first used by LANDRAT
    verify = client.get("/api/audit/verify", headers=as_user(AUDITOR)).json()
    head = client.get("/api/audit/head", headers=as_user(AUDITOR)).json()
    assert verify["ok"] and verify["head_hash"] == head["hash"] and head["seq"] == 2
    bad = client.get("/api/audit", params={"since": "gestern"}, headers=as_user(AUDITOR))
    assert bad.status_code == 400 and "since" in bad.json()["detail"]


def test_oparl_endpoint_is_public_and_valid(client: TestClient, engine: Engine) -> None:
    """The OParl endpoint needs no sign-in, lists public papers only, paginates and validates."""
    create_sv(client, "SV-1")
    create_sv(client, "SV-2", public=False)
    system = client.get("/oparl/v1.1/system").json()
    assert_valid("System", system)
    body = client.get(system["body"]).json()["data"][0]
    assert_valid("Body", body)
    papers = client.get(body["paper"]).json()
    assert [p["reference"] for p in papers["data"]] == ["SV-1"]
    assert papers["pagination"]["totalElements"] == 1 and "first" in papers["links"]
    for paper in papers["data"]:
        assert_valid("Paper", paper)
    later = client.get(body["paper"], params={"modified_since": "2030-01-01T00:00:00+00:00"}).json()
    assert later["data"] == []
    assert client.get(body["paper"], params={"page": 9}).status_code == 404
    assert client.get(body["paper"], params={"modified_since": "2030-01-01"}).status_code == 400
    for name in ("meeting", "organization"):
        assert client.get(body[name]).status_code == 200


def test_pages_and_forms(client: TestClient, engine: Engine) -> None:
    """Meine Fristen, the paper page with its diagram and forms, CSRF, and the audit page."""
    create_sv(client)
    client.post("/api/papers/SV-9-1809/fire", headers=as_user(LANDRAT),
                json={"trigger": "einbringen", "values": {"meeting": "2020-08-27T17:00"}})
    mine = client.get("/", headers=as_user(SITZ))
    assert mine.status_code == 200 and "Einladung mit Vorlage versenden" in mine.text and 'lang="de"' in mine.text
    assert "<td>Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung</td>" in mine.text
    page = client.get("/vorlagen/SV-9-1809", headers=as_user(SITZ)).text
    assert "<svg" in page and "Beratung im Ausschuss" in page and 'name="trigger" value="kenntnis_nehmen"' in page
    assert '<a href="/vorlagen/SV-9-1334">SV-9-1334</a>' in page
    csrf = re.search(r'name="csrf" value="([0-9]+\.[0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    forged = client.post("/vorlagen/SV-9-1809/fire", headers=as_user(SITZ), follow_redirects=False,
                         data={"trigger": "kenntnis_nehmen", "result": "zur Kenntnis genommen", "csrf": "0" * 64,
                               "version": version})
    assert forged.status_code == 403 and "CSRF" in forged.text
    done = client.post("/vorlagen/SV-9-1809/fire", headers=as_user(SITZ), follow_redirects=False,
                       data={"trigger": "kenntnis_nehmen", "result": "zur Kenntnis genommen", "csrf": csrf,
                             "version": version})
    assert done.status_code == 303 and done.headers["location"] == "/vorlagen/SV-9-1809"
    assert engine.status("SV-9-1809").state == "zur_kenntnis_genommen"
    listing = client.get("/vorlagen", params={"workflow": "sachstandsbericht"}, headers=as_user(SITZ)).text
    assert "Zur Kenntnis genommen" in listing
    assert client.get("/pruefpfad", headers=as_user(SITZ)).status_code == 403
    audit = client.get("/pruefpfad", params={"verify": "true"}, headers=as_user(AUDITOR)).text
    # 3 changes and the definition's first use
    assert "Prüfpfad intakt: 4 Einträge." in audit and "Als CSV herunterladen" in audit


def test_branch_grid_on_the_paper_page(client: TestClient, engine: Engine) -> None:
    """A paper in the councils' state shows the grid of branches; a council contact may decide its own."""
    to_councils(engine)
    page = client.get("/vorlagen/KS-1", headers=as_user("hauptamt@olfen.example")).text
    assert page.count("<td>Rat der") == 11
    assert '<input type="hidden" name="branch" value="rat_olfen">' in page and "<option" not in page
    assert json.loads(client.get("/api/papers/KS-1", headers=as_user(SITZ)).text)["state"] == "kommunale_raete"




def test_the_paper_list_counts_in_german(engine: Engine, client: TestClient) -> None:
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    assert "<caption>1 Vorlage</caption>" in client.get("/vorlagen", headers=as_user(LANDRAT)).text
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "Bericht"})
    assert "<caption>2 Vorlagen</caption>" in client.get("/vorlagen", headers=as_user(LANDRAT)).text
