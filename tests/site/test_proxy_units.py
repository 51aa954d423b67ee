"""The proxy's pieces without sockets: envelopes, bundles, the inbox, the mailbox."""

import datetime as dt
import json
import time
import uuid

import pytest

from engine.errors import FederationTimeout, PeerFailed
from fedweb.proxy import envelope as envelopes
from fedweb.proxy import events, mailbox, pki
from projects import pairing
from projects.models import Partner, Project, ProjectStatus, RemoteTable

pytestmark = pytest.mark.django_db


def _bundle(party_id="telco", **changes):
    key, cert = pki.make_self_signed(party_id)
    bundle = {"format": "fedweb-site-bundle/1", "party_id": party_id, "name": "Telco", "proxy_address": "127.0.0.1:7443",
              "certificates": [cert.decode()]}
    bundle.update(changes)
    return bundle


def test_the_mac_covers_every_header_field_and_the_body():
    token = b"t" * 32
    env = envelopes.build(sender="a", receiver="b", kind="event", project_id=str(uuid.uuid4()), body=b"{}", token=token, token_version=1)
    assert envelopes.mac_is_valid(env, token)
    for field, value in [("receiver", "c"), ("project_id", str(uuid.uuid4())), ("body", b"{ }"), ("timestamp_ms", 1),
                         ("nonce", b"n" * 16), ("kind", "chunk"), ("token_version", 2), ("key", "x"), ("chunk_index", 3)]:
        forged = type(env)()
        forged.CopyFrom(env)
        setattr(forged, field, value)
        assert not envelopes.mac_is_valid(forged, token), field
    assert not envelopes.mac_is_valid(env, b"u" * 32)


def test_freshness_allows_clock_skew_within_the_window_only():
    now = time.time()
    env = envelopes.build(sender="a", receiver="b", kind="ping", timestamp_ms=int((now - 200) * 1000))
    assert envelopes.is_fresh(env, now)
    env.timestamp_ms = int((now + envelopes.FRESHNESS_SECONDS + 5) * 1000)
    assert not envelopes.is_fresh(env, now)


@pytest.mark.parametrize("changes, words", [
    ({"format": "x"}, "not a FedWeb site bundle"),
    ({"party_id": "site-1"}, "own bundle"),
    ({"proxy_address": "nohostport"}, "host:port"),
    ({"certificates": []}, "no certificate"),
    ({"certificates": ["-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"]}, "cannot be used"),
])
def test_a_bad_bundle_is_refused_with_a_clear_reason(changes, words, admin, settings):
    settings.SITE_PARTY_ID = "site-1"
    with pytest.raises(pairing.PairingError, match=words):
        pairing.import_bundle(_bundle(**changes), by=admin)


def test_a_bundle_whose_certificate_names_another_site_is_refused(admin):
    _key, other = pki.make_self_signed("someone-else")
    with pytest.raises(pairing.PairingError, match="belongs to someone-else"):
        pairing.import_bundle(_bundle(certificates=[other.decode()]), by=admin)


def test_an_expired_certificate_is_refused_at_import(admin):
    _key, old = pki.make_self_signed("telco", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=5))
    with pytest.raises(pairing.PairingError, match="expired"):
        pairing.import_bundle(_bundle(certificates=[old.decode()]), by=admin)


def test_an_expired_site_certificate_is_a_clear_error(settings):
    pki.create_site_certificate(days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    with pytest.raises(pki.CertificateError, match="expired"):
        pki.current()


def test_reimporting_a_bundle_retires_pins_the_partner_no_longer_publishes(admin):
    first = _bundle()
    partner = pairing.import_bundle(first, by=admin)
    second = _bundle()
    pairing.import_bundle(second, by=admin)
    assert [c.certificate_pem for c in partner.pinned()] == second["certificates"]


@pytest.fixture
def partner(admin):
    return pairing.import_bundle(_bundle(), by=admin)


def _event(project_id, seq, event_type="table.authorised", **payload):
    payload = payload or {"table_id": str(uuid.uuid4()), "name": "t", "row_count": 1, "columns": []}
    return {"event_id": str(uuid.uuid4()), "stream": str(project_id), "seq": seq, "type": event_type, "payload": payload}


def test_a_duplicate_delivery_changes_nothing(partner):
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.ACTIVE)
    body = _event(project.pk, 1)
    assert events.receive(partner, str(project.pk), project, body) == "applied"
    assert events.receive(partner, str(project.pk), project, body) == "duplicate"
    assert RemoteTable.objects.count() == 1
    assert project.events.count() == 1


def test_an_event_must_carry_the_next_sequence_number(partner):
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.ACTIVE)
    with pytest.raises(events.EventOutOfOrder, match="number 1 is expected before number 2") as gap:
        events.receive(partner, str(project.pk), project, _event(project.pk, 2))
    assert gap.value.retry  # a gap waits: the sender tries again later
    with pytest.raises(events.EventOutOfOrder) as jump:
        events.receive(partner, str(project.pk), project, _event(project.pk, 10**12))
    assert not jump.value.retry  # a jump can never be filled: refused
    assert not RemoteTable.objects.exists()
    assert events.receive(partner, str(project.pk), project, _event(project.pk, 1)) == "applied"
    assert events.receive(partner, str(project.pk), project, _event(project.pk, 2)) == "applied"
    assert RemoteTable.objects.count() == 2


def test_an_old_sequence_number_under_a_new_event_id_is_refused_not_called_a_duplicate(partner):
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.ACTIVE)
    assert events.receive(partner, str(project.pk), project, _event(project.pk, 1)) == "applied"
    with pytest.raises(events.EventRejected, match="already used by another event"):
        events.receive(partner, str(project.pk), project, _event(project.pk, 1))
    assert RemoteTable.objects.count() == 1


def test_an_authenticated_event_that_cannot_be_applied_is_refused_and_the_stream_moves_on(partner):
    from fedweb.proxy.models import InboxEvent

    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco",
                                     status=ProjectStatus.SUSPENDED, suspended_here=True)
    refused = _event(project.pk, 1, "project.resume", comment="")  # we suspended it, not the partner
    with pytest.raises(events.EventRejected, match="only this site can lift"):
        events.receive(partner, str(project.pk), project, refused)
    with pytest.raises(events.EventRejected, match="only this site can lift"):
        events.receive(partner, str(project.pk), project, refused)  # the retry gets the same answer
    assert InboxEvent.objects.get(seq=1).error
    project.refresh_from_db()
    assert project.status == ProjectStatus.SUSPENDED
    assert events.receive(partner, str(project.pk), project, _event(project.pk, 2, "project.revoke", comment="")) == "applied"


def test_a_failing_applier_leaves_nothing_behind(partner, monkeypatch):
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.ACTIVE)

    def broken(**kwargs):
        RemoteTable.objects.create(project=project, table_id="half", name="half-applied")
        raise RuntimeError("crash half-way")

    monkeypatch.setitem(events.APPLIERS, "table.authorised", broken)
    with pytest.raises(RuntimeError):
        events.receive(partner, str(project.pk), project, _event(project.pk, 1))
    assert not RemoteTable.objects.exists()
    from fedweb.proxy.models import InboxEvent

    assert not InboxEvent.objects.exists()  # so the retry applies it


def test_secrets_in_events_are_not_stored_in_the_inbox(partner):
    from fedweb.proxy.models import InboxEvent

    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="site-1", label_holder="site-1", status=ProjectStatus.PENDING)
    import base64, os

    token = base64.b64encode(os.urandom(32)).decode()
    events.receive(partner, str(project.pk), project, _event(project.pk, 1, "project.accept", token=token, version=1))
    assert token not in json.dumps(list(InboxEvent.objects.values_list("payload", flat=True)))
    project.refresh_from_db()
    assert project.status == "active" and project.token_version == 1


def test_an_unknown_event_type_is_refused(partner):
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.ACTIVE)
    with pytest.raises(events.EventRejected, match="does not know"):
        events.receive(partner, str(project.pk), project, _event(project.pk, 1, "evil.type", x=1))


def test_the_mailbox_hands_over_a_complete_message_once(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    writer = mailbox.Writer("sess-1", "telco", "bank", "psi/blinded", 2)
    writer.write(0, b"hello ")
    with pytest.raises(FederationTimeout):
        mailbox.take("sess-1", "bank", "telco", "psi/blinded", time.monotonic() + 0.05)
    writer.write(1, b"world")
    writer.close()
    assert mailbox.take("sess-1", "bank", "telco", "psi/blinded", time.monotonic() + 1) == b"hello world"
    with pytest.raises(FederationTimeout):
        mailbox.take("sess-1", "bank", "telco", "psi/blinded", time.monotonic() + 0.05)


def test_a_partner_abort_wakes_a_waiting_job_at_once(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    mailbox.record_abort("sess-2", "telco", "out of memory")
    started = time.monotonic()
    with pytest.raises(PeerFailed, match="out of memory"):
        mailbox.take("sess-2", "bank", "telco", "any", time.monotonic() + 30)
    assert time.monotonic() - started < 5


def test_mailbox_names_cannot_escape_its_folder(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    with pytest.raises(ValueError):
        mailbox.Writer("../x", "telco", "bank", "k", 1)
    with pytest.raises(ValueError):
        mailbox.Writer("s", "../telco", "bank", "k", 1)
    writer = mailbox.Writer("sess-3", "telco", "bank", "../../etc/passwd", 1)
    writer.write(0, b"x")
    writer.close()
    assert all(tmp_path in p.parents for p in (tmp_path / "mailbox").rglob("*"))
