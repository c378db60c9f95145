"""The durable default under a SIGKILL: every acknowledged write and every acknowledged call's
audit record survives, and no change survives without its record (issue 16: group commit with the
audit record in the change's transaction)."""

from __future__ import annotations

import signal
import threading

from support import UserWriters, random_key_id, random_secret, unique


def lookup_all(ct, key: str, value: str) -> list[dict]:
    events, token = [], None
    while True:
        kw = {"LookupAttributes": [{"AttributeKey": key, "AttributeValue": value}], "MaxResults": 50}
        if token:
            kw["NextToken"] = token
        page = ct.lookup_events(**kw)
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def test_sigkill_under_concurrent_load_loses_no_acknowledged_write_or_record(spawn_server):
    srv = spawn_server(account_id="135792468013", access_key_id=random_key_id(), secret_access_key=random_secret())
    path = f"/{unique('kill')}/"
    reader_name = unique("reader")
    srv.client("iam").create_user(UserName=reader_name)
    reads = [0]
    stop = threading.Event()

    def reader():
        client = srv.client("iam")
        while not stop.is_set():
            try:
                client.get_user(UserName=reader_name)
            except Exception:  # the server died under us
                return
            reads[0] += 1  # one reader thread per counter slot: no lock needed

    readers = [threading.Thread(target=reader) for _ in range(1)]
    for t in readers:
        t.start()
    writers = UserWriters(srv, path, threads=6)
    writers.wait_for(60)  # let writes flow before the kill
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    acked = writers.stop()
    stop.set()
    for t in readers:
        t.join(30)
    acked_reads = reads[0]
    assert len(acked) >= 60

    srv.proc = None
    srv.start()
    iam, ct = srv.client("iam"), srv.client("cloudtrail")
    users = {u["UserName"] for page in iam.get_paginator("list_users").paginate(PathPrefix=path) for u in page["Users"]}
    assert acked <= users, f"lost acknowledged users: {sorted(acked - users)[:5]}"
    # Every user that exists (acknowledged or not) has exactly its CreateUser record: no change
    # without its record, no acknowledged call without its record.
    for name in users:
        events = lookup_all(ct, "ResourceName", name)
        assert [e["EventName"] for e in events] == ["CreateUser"], (name, events)
    gets = [e for e in lookup_all(ct, "ResourceName", reader_name) if e["EventName"] == "GetUser"]
    assert len(gets) >= acked_reads, f"{acked_reads} acknowledged reads, {len(gets)} records"
