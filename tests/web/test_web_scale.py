"""Patient list at scale: server-side pagination, search and site isolation.

Both back ends (the ``env`` fixture). Patients are bulk-inserted (as an import does);
expected pages are computed independently in Python from the inserted IDs.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from fastapi.testclient import TestClient
from sqlalchemy import insert
from webhelpers import basic, login

from cartrial.store.models import Patient

N_A, N_B = 170, 37
ODD = ["A-100%", "A-1_01", "a-lower"]  # LIKE wildcards and case in study IDs


def _fill(engine) -> dict[str, list[str]]:
    ids = {"A": [f"A-{i:04d}" for i in range(N_A)] + ODD, "B": [f"B-{i:04d}" for i in range(N_B)]}
    rows = [
        {"patient_id": pid, "site": site, "version": 1, "locked": False}
        for site, pids in ids.items()
        for pid in pids
    ]
    with engine.begin() as conn:
        conn.execute(insert(Patient.__table__), rows)
    return ids


def _links(html: str) -> list[str]:
    return [unquote(i) for i in re.findall(r'<td><a href="/patients/([^"]+)">', html)]


def _walk(c: TestClient, first: str) -> tuple[list[str], list[str]]:
    """All patient IDs over the pages by following the Next links, and each page's count
    line."""
    seen, counts, url = [], [], first
    while url:
        html = c.get(url).text
        seen += _links(html)
        counts.append(re.search(r'<p id="patient-count">([^<]*)</p>', html).group(1))
        nxt = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert len(counts) < 50
    return seen, counts


def test_pages_cover_every_visible_patient_once_in_stable_order(env):
    engine, app = env
    ids = _fill(engine)
    regular = ids["A"][:N_A] + ids["B"]  # uniform IDs: Python and database order agree
    with TestClient(app) as c:
        login(c, "mon")
        seen, counts = _walk(c, "/patients?per_page=25")
        assert len(seen) == len(set(seen)) == N_A + len(ODD) + N_B
        assert set(seen) == set(ids["A"]) | set(ids["B"])
        assert [s for s in seen if s in set(regular)] == sorted(regular)
        pages = -(-(N_A + len(ODD) + N_B) // 25)
        assert len(counts) == pages
        assert counts[0].startswith(f"{N_A + len(ODD) + N_B} patients")
        assert f"page {pages} of {pages}" in counts[-1]
        # a page past the end shows the last page; page numbers are clamped to 1..pages,
        # per_page to 1..200 (not a number: the default)
        assert (
            _links(c.get(f"/patients?per_page=25&page={pages + 9}").text)
            == seen[(pages - 1) * 25 :]
        )
        assert len(_links(c.get("/patients?page=x&per_page=-3").text)) == 1
        assert len(_links(c.get("/patients?per_page=100000").text)) == 200
        assert len(_links(c.get("/patients").text)) == 50


def test_search_on_study_id_and_site_case_insensitive_literal(env):
    engine, app = env
    ids = _fill(engine)
    with TestClient(app) as c:
        login(c, "stat")

        def search(q: str) -> set[str]:
            seen, counts = _walk(c, f"/patients?per_page=200&q={q}")
            assert counts[0].startswith(f"{len(seen)} patient")
            return set(seen)

        assert search("b-001") == {f"B-{i:04d}" for i in range(10, 20)}
        assert search("A-LOWER") == {"a-lower"}
        assert search("%25") == {"A-100%"}  # a literal %, not "anything"
        assert search("_") == {"A-1_01"}  # a literal _, not "any character"
        assert search("b") == set(ids["B"])  # site code B (and no A ID has a b)
        assert search("zzz") == set()
        assert "No patient matches." in c.get("/patients?q=zzz").text
        # a search page past the end: the last page of the matches, counted
        last = c.get("/patients?q=b-00&per_page=5&page=99").text
        assert _links(last) == [f"B-{i:04d}" for i in range(35, N_B)]
        assert f"{N_B} patients matching" in last and "page 8 of 8" in last


def test_data_entry_sees_only_their_site_in_pages_search_and_api(env):
    engine, app = env
    ids = _fill(engine)
    with TestClient(app) as c:
        login(c, "entryB")
        seen, counts = _walk(c, "/patients?per_page=10")
        assert seen == sorted(ids["B"]) and counts[0].startswith(f"{N_B} patients")
        assert _walk(c, "/patients?q=A-00")[0] == []
        assert _walk(c, "/patients?site=A")[0] == []
        r = c.get("/api/patients", params={"q": "a-", "per_page": 200}, headers=basic("entryB"))
        assert r.status_code == 200 and r.json() == [] and r.headers["X-Total-Count"] == "0"
        r = c.get("/api/patients", headers=basic("entryB"), params={"per_page": 200})
        assert [p["patient_id"] for p in r.json()] == sorted(ids["B"])


def test_api_list_pages_with_total_and_links(env):
    engine, app = env
    ids = _fill(engine)
    total = N_A + len(ODD) + N_B
    with TestClient(app) as c:
        got, url, n = [], "/api/patients?per_page=40", 0
        while url:
            r = c.get(url, headers=basic("mon"))
            assert r.status_code == 200 and r.headers["X-Total-Count"] == str(total)
            got += [p["patient_id"] for p in r.json()]
            nxt = re.search(r'<([^>]+)>; rel="next"', r.headers.get("Link", ""))
            url = nxt.group(1) if nxt else None
            n += 1
        assert n == -(-total // 40) and len(got) == len(set(got)) == total
        assert set(got) == set(ids["A"]) | set(ids["B"])
        assert all(k in r.json()[0] for k in ("patient_id", "site", "version"))
        assert c.get("/api/patients?per_page=201", headers=basic("mon")).status_code == 422
        assert c.get("/api/patients?page=0", headers=basic("mon")).status_code == 422
        r = c.get("/api/patients", params={"q": "A-1_0"}, headers=basic("mon"))
        assert [p["patient_id"] for p in r.json()] == ["A-1_01"]
